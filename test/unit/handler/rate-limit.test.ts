import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  BATCH_INTERVAL_MS, DeliveryLimiter, createDeliveryLimiter, deliveryWeight, type LimiterClock,
} from '../../../src/handler/rate-limit.js';

/** A manual clock: timers fire only when the test advances time. */
function fakeClock(): LimiterClock & { advance(ms: number): void; pending(): number } {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  return {
    now: () => now,
    schedule(fn, ms) {
      const t = { at: now + Math.max(0, ms), fn, live: true };
      timers.push(t);
      return () => { t.live = false; };
    },
    advance(ms) {
      const end = now + ms;
      // Bounded: each step fires at least one timer or ends.
      for (let guard = 0; guard < 100_000; guard++) {
        timers = timers.filter((t) => t.live);
        const next = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (next === undefined) break;
        now = Math.max(now, next.at);
        next.live = false;
        next.fn();
      }
      now = end;
    },
    pending: () => timers.filter((t) => t.live).length,
  };
}

describe('rate-limit: DeliveryLimiter', () => {
  test('rate-limit: no limiter without a rate (unlimited fast path)', () => {
    assert.equal(createDeliveryLimiter(undefined, 100), undefined);
    assert.equal(createDeliveryLimiter(0, undefined), undefined);
    assert.ok(createDeliveryLimiter(10, undefined) instanceof DeliveryLimiter);
  });

  test('rate-limit: actions never run inside add()', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 1000, clock });
    let ran = 0;
    l.add('', () => { ran++; return true; });
    assert.equal(ran, 0);
    clock.advance(0);
    assert.equal(ran, 1);
  });

  test('rate-limit: 10/s delivers one per 100 ms after the first', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 10, clock });
    assert.equal(l.burst, 1);
    let ran = 0;
    for (let i = 0; i < 50; i++) assert.equal(l.add('', () => { ran++; return true; }), true);
    clock.advance(0);
    assert.equal(ran, 1);
    clock.advance(99);
    assert.equal(ran, 1);
    clock.advance(1);
    assert.equal(ran, 2);
    clock.advance(1000);
    assert.equal(ran, 12);
    clock.advance(10_000);
    assert.equal(ran, 50);
    assert.equal(l.queued(), 0);
    assert.equal(clock.pending(), 0, 'no timer left once the queue is empty');
  });

  test('rate-limit: high rates go out in batches of rate x 25 ms', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 2000, clock });
    assert.equal(l.burst, 50);
    let ran = 0;
    for (let i = 0; i < 1000; i++) l.add('', () => { ran++; return true; });
    clock.advance(0);
    assert.equal(ran, 50);
    clock.advance(BATCH_INTERVAL_MS);
    assert.equal(ran, 100);
    clock.advance(1000 - BATCH_INTERVAL_MS);
    assert.equal(ran, 1000);
  });

  test('rate-limit: beyond the hwm, a key drops new actions; other keys have their own queue', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 10, hwm: 20, clock });
    let accepted = 0;
    for (let i = 0; i < 50; i++) if (l.add('a', () => true)) accepted++;
    assert.equal(accepted, 20);
    assert.equal(l.add('b', () => true), true);
    assert.equal(l.queued(), 21);
    // Room again once some have gone out.
    clock.advance(250);
    assert.equal(l.add('a', () => true), true);
  });

  test('rate-limit: keys take turns', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 10, clock });
    const order: string[] = [];
    for (let i = 0; i < 3; i++) l.add('a', () => { order.push('a'); return true; });
    for (let i = 0; i < 3; i++) l.add('b', () => { order.push('b'); return true; });
    clock.advance(1000);
    assert.deepEqual(order, ['a', 'b', 'a', 'b', 'a', 'b']);
  });

  test('rate-limit: an action for a gone connection costs no token', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 10, clock });
    let ran = 0;
    for (let i = 0; i < 5; i++) l.add('', () => false);
    l.add('', () => { ran++; return true; });
    clock.advance(0);
    assert.equal(ran, 1);
  });

  test('rate-limit: a throwing action does not stop the queue', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 1000, clock });
    let ran = 0;
    l.add('', () => { throw new Error('boom'); });
    l.add('', () => { ran++; return true; });
    clock.advance(100);
    assert.equal(ran, 1);
  });

  test('rate-limit: heavy items borrow from later turns', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 10, clock });
    let ran = 0;
    l.add('', () => { ran++; return true; }, 5);
    l.add('', () => { ran++; return true; }, 1);
    clock.advance(0);
    assert.equal(ran, 1);
    clock.advance(400);
    assert.equal(ran, 1, 'the debt of 4 tokens is paid first');
    clock.advance(100);
    assert.equal(ran, 2);
  });

  test('rate-limit: stop drops the queue and refuses new actions', () => {
    const clock = fakeClock();
    const l = new DeliveryLimiter({ ratePerS: 10, clock });
    let ran = 0;
    for (let i = 0; i < 5; i++) l.add('', () => { ran++; return true; });
    l.stop();
    clock.advance(10_000);
    assert.equal(ran, 0);
    assert.equal(l.add('', () => true), false);
    assert.equal(l.queued(), 0);
  });

  test('rate-limit: bad rates are refused', () => {
    assert.throws(() => new DeliveryLimiter({ ratePerS: 0 }), RangeError);
    assert.throws(() => new DeliveryLimiter({ ratePerS: Number.NaN }), RangeError);
  });

  test('rate-limit: deliveryWeight counts blocks only with a block size', () => {
    assert.equal(deliveryWeight(5000, -1), 1);
    assert.equal(deliveryWeight(5000, 0), 1);
    assert.equal(deliveryWeight(0, 1024), 1);
    assert.equal(deliveryWeight(1024, 1024), 1);
    assert.equal(deliveryWeight(1025, 1024), 2);
  });
});
