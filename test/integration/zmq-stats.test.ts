import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { freePort } from '../helpers/ports.js';
import { StatsPublisher, splitStatsMessage } from '../../src/zmq/stats.js';
import { decodeTnetstring } from '../../src/zmq/tnetstring.js';

test('zmq stats: a SUB client subscribed to "report" receives report messages from the PUB socket', async () => {
  const spec = `tcp://127.0.0.1:${await freePort()}`;
  const pub = await StatsPublisher.start(spec, 'tnetstring');
  const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 200 });
  sub.connect(spec);
  sub.subscribe('report ');
  try {
    // PUB drops messages until the subscription has propagated; resend until one arrives.
    let got: Buffer | undefined;
    for (let i = 0; i < 100 && !got; i++) {
      pub.send({ type: 'activity', count: 1 });
      pub.send({ type: 'report', from: 'gripd', connections: 2, duration: 1000 });
      try {
        [got] = await sub.receive();
      } catch {
        // receive timeout: try again
      }
    }
    assert.ok(got, 'no report received');
    const s = splitStatsMessage(got);
    assert.equal(s?.type, 'report');
    assert.deepEqual(decodeTnetstring(s!.payload), { from: Buffer.from('gripd'), connections: 2, duration: 1000 });
  } finally {
    sub.close();
    pub.close();
  }
});

test('zmq stats: messages are built only for types some subscriber asked for, and not after it leaves', async () => {
  const spec = `tcp://127.0.0.1:${await freePort()}`;
  const pub = await StatsPublisher.start(spec, 'tnetstring');
  const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 200 });
  const waitFor = async (cond: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond(), what);
  };
  try {
    assert.equal(pub.wants('report'), false, 'nobody subscribed yet');
    sub.connect(spec);
    sub.subscribe('report ');
    await waitFor(() => pub.wants('report'), 'the subscription to "report " never reached the publisher');
    assert.equal(pub.wants('conn'), false, 'only reports were asked for');
    assert.equal(pub.wants('rep'), false, '"report " does not match type "rep"');
    sub.subscribe('co');
    await waitFor(() => pub.wants('conn'), 'a prefix of the type matches');
    sub.unsubscribe('co');
    await waitFor(() => !pub.wants('conn'), 'the unsubscription was not seen');
    sub.subscribe('');
    await waitFor(() => pub.wants('message'), 'the empty prefix matches every type');
    sub.close();
    await waitFor(() => !pub.wants('report') && !pub.wants('message'), 'a closed subscriber still counted');
  } finally {
    if (!sub.closed) sub.close();
    pub.close();
  }
});

// ---------------------------------------------------------------------------
// startStats: the reporter fed by the handler's public surface.

import { EventEmitter } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log/index.js';
import { startStats, type StatsSource } from '../../src/zmq/stats-reporter.js';
import type { TnetDict } from '../../src/zmq/tnetstring.js';

/** Stand-in for the Handler's public surface (counters, subscribe events, channel list). */
class FakeHandler extends EventEmitter<{ subscribe: [string]; unsubscribe: [string] }> implements StatsSource {
  counters = { heldResponse: 0, heldStream: 0, deliveries: 0, itemsPublished: 0 };
  subs = new Map<string, { response: number; stream: number }>();
  channels(): Iterable<string> {
    return this.subs.keys();
  }
  subscriberCount(channel: string): { response: number; stream: number } {
    return this.subs.get(channel) ?? { response: 0, stream: 0 };
  }
}

async function statsConfig(spec: string, format: 'tnetstring' | 'json' = 'tnetstring'): Promise<Config> {
  const { config } = await loadConfig({ searchPaths: [] });
  return { ...config, handler: { ...config.handler, statsSpec: spec, statsFormat: format, statsSubscriptionTtlS: 60 } };
}

/** Receives frames until `pred` matches one (bounded), decoding tnetstring payloads. */
async function receiveUntil(sub: zmq.Subscriber, pred: (type: string, d: TnetDict) => boolean, poke: () => void): Promise<TnetDict> {
  for (let i = 0; i < 200; i++) {
    poke();
    try {
      const [frame] = await sub.receive();
      const s = splitStatsMessage(frame!);
      if (!s) continue;
      const d = decodeTnetstring(s.payload) as TnetDict;
      if (pred(s.type, d)) return d;
    } catch {
      // receive timeout: poke again
    }
  }
  throw new Error('expected stats message not received');
}

test('startStats: binds stats_spec (creating the ipc directory), reports every interval and announces subscriptions', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gripd-stats-'));
  const spec = `ipc://${path.join(dir, 'run', 'nested', 'stats')}`;
  const h = new FakeHandler();
  h.subs.set('already', { response: 0, stream: 2 });
  const logger = createLogger({ level: 0, json: true });
  const reporter = await startStats({ config: await statsConfig(spec), handler: h, logger, instanceId: 'gripd-t', reportIntervalMs: 100, subscriptionRefreshMs: 200 });
  const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 200 });
  try {
    await stat(path.join(dir, 'run', 'nested', 'stats'));
    sub.connect(spec);
    sub.subscribe('report ');
    sub.subscribe('sub ');
    reporter.event({ e: 'received', count: 5, blocks: -1 });
    reporter.event({ e: 'message', channel: 'c', transport: 'http-stream', count: 7, blocks: -1 });
    for (let i = 0; i < 3; i++) reporter.event({ e: 'conn', id: `c${i}`, route: '', connType: 'http', ssl: false });
    const rep = await receiveUntil(sub, (t, d) => t === 'report' && d['received'] !== undefined && Number(d['received']) > 0, () => undefined);
    assert.equal(rep['from']?.toString(), 'gripd-t');
    assert.equal(rep['received'], 5);
    assert.equal(rep['sent'], 7);
    assert.ok(Number(rep['connections']) >= 3);
    assert.equal(typeof rep['duration'], 'number');
    assert.equal(typeof rep['minutes'], 'number');
    // The refresh re-announces channels already subscribed at start.
    const old = await receiveUntil(sub, (t, d) => t === 'sub' && d['channel']?.toString() === 'already', () => undefined);
    assert.equal(old['mode']?.toString(), 'stream');
    assert.equal(old['subscribers'], 2);
    assert.equal(old['ttl'], 60);
    // A new subscription is announced; its removal sends unavailable.
    h.subs.set('fresh', { response: 1, stream: 0 });
    h.emit('subscribe', 'fresh');
    const fresh = await receiveUntil(sub, (t, d) => t === 'sub' && d['channel']?.toString() === 'fresh', () => undefined);
    assert.equal(fresh['mode']?.toString(), 'response');
    assert.equal(fresh['subscribers'], 1);
    h.subs.delete('fresh');
    h.emit('unsubscribe', 'fresh');
    const goneMsg = await receiveUntil(sub, (t, d) => t === 'sub' && d['channel']?.toString() === 'fresh' && d['unavailable'] === true, () => undefined);
    assert.equal(goneMsg['mode']?.toString(), 'response');
  } finally {
    sub.close();
    await reporter.close();
    await reporter.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('startStats: stats_format=json frames as `<type> J<json>`; an empty stats_spec is a no-op', async () => {
  const spec = `tcp://127.0.0.1:${await freePort()}`;
  const h = new FakeHandler();
  const logger = createLogger({ level: 0, json: true });
  const reporter = await startStats({ config: await statsConfig(spec, 'json'), handler: h, logger, reportIntervalMs: 100 });
  const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 300 });
  try {
    sub.connect(spec);
    sub.subscribe('report ');
    let frame: Buffer | undefined;
    for (let i = 0; i < 50 && !frame; i++) {
      try {
        [frame] = await sub.receive();
      } catch {
        // keep waiting
      }
    }
    assert.ok(frame);
    assert.match(frame.toString(), /^report J\{/);
    const doc = JSON.parse(frame.toString().slice('report J'.length)) as Record<string, unknown>;
    assert.equal(doc['from'], `gripd-handler_${process.pid}`);
  } finally {
    sub.close();
    await reporter.close();
  }
  const off = await startStats({ config: await statsConfig(''), handler: h, logger });
  await off.close();
  assert.equal(h.listenerCount('subscribe'), 0);
});

// Compile-time check: the real Handler satisfies what startStats reads.
import type { Handler } from '../../src/handler/index.js';
export const handlerIsStatsSource = (h: Handler): StatsSource => h;

// ---------------------------------------------------------------------------
// Pure pieces added with the client-side stats events.

import { blocksForData, encodeStatsMessage, largestBlocks } from '../../src/zmq/stats.js';

test('stats: counts encodes requests-received only when positive (as Pushpin)', () => {
  assert.equal(encodeStatsMessage({ type: 'counts', from: 'h', requestsReceived: 3 }, 'tnetstring').toString(), 'counts T36:4:from,1:h,17:requests-received,1:3#}');
  assert.equal(encodeStatsMessage({ type: 'counts', requestsReceived: 0 }, 'json').toString(), 'counts J{}');
});

test('stats: blocks are ceil(bytes / message_block_size), -1 when the block size is off; an item counts its largest format or its size', () => {
  assert.equal(blocksForData(0, 2), 0);
  assert.equal(blocksForData(5, 2), 3);
  assert.equal(blocksForData(5, 0), -1);
  const item = { channel: 'c', noSeq: false, meta: {}, formats: { httpStream: { content: Buffer.from('hello\n') }, httpResponse: { body: Buffer.from('abc') } } };
  assert.equal(largestBlocks(item as never, 2), 3);
  assert.equal(largestBlocks({ ...item, size: 100 } as never, 10), 10);
});
