/**
 * Pure parts of the handler: chunk framing, stream heads, links, filters, the sequencer,
 * the timer wheel and the built-in test handler.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChunk, formatStreamHead, isUnsafeHeader, LAST_CHUNK } from '../../../src/handler/wire.js';
import { gripLastHeaders, resolveLink, withGripLast } from '../../../src/handler/links.js';
import { FilterError, applyContentFilters, buildIdContent, isDroppedByFilters, processFormat, substituteVars } from '../../../src/handler/filters.js';
import { Sequencer, CHANNEL_PENDING_MAX } from '../../../src/handler/sequencer.js';
import { TimerWheel, WHEEL_TICK_MS, type WheelEntry } from '../../../src/handler/timer-wheel.js';
import { testHandler } from '../../../src/handler/test-handler.js';
import type { PublishItem } from '../../../src/grip/types.js';

describe('wire', () => {
  test('wire: a chunk is hex length, CRLF, data, CRLF', () => {
    assert.equal(encodeChunk(Buffer.from('hello\n')).toString(), '6\r\nhello\n\r\n');
    assert.equal(encodeChunk(Buffer.alloc(300, 'a')).subarray(0, 5).toString(), '12c\r\n');
    assert.equal(LAST_CHUNK.toString(), '0\r\n\r\n');
  });

  test('wire: empty data gives no chunk (an empty chunk would end the body)', () => {
    assert.equal(encodeChunk(Buffer.alloc(0)).length, 0);
  });

  test('wire: stream head drops framing headers and adds chunked framing on HTTP/1.1 only', () => {
    const resp = { code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['Content-Length', '5'], ['Connection', 'keep-alive'], ['X-A', '1']] as Array<[string, string]>, body: Buffer.alloc(0) };
    assert.equal(formatStreamHead(resp, false).toString(), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n');
    assert.equal(formatStreamHead(resp, true).toString(), 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\n');
  });

  test('wire: headers with CR or LF are never written (response splitting)', () => {
    assert.ok(isUnsafeHeader('X-A', 'a\r\nSet-Cookie: x'));
    assert.ok(isUnsafeHeader('X\nA', 'a'));
    const resp = { code: 200, reason: 'OK', headers: [['X-Bad', 'a\r\nInjected: 1']] as Array<[string, string]>, body: Buffer.alloc(0) };
    assert.doesNotMatch(formatStreamHead(resp, true).toString(), /Injected/);
  });
});

describe('links', () => {
  test('links: relative links resolve against the current path; absolute ones keep the URL', () => {
    assert.deepEqual(resolveLink('/next?x=1', '/a/b'), { path: '/next?x=1' });
    assert.deepEqual(resolveLink('c', '/a/b'), { path: '/a/c' });
    assert.deepEqual(resolveLink('http://h:1/p?q', '/a'), { path: '/p?q', url: 'http://h:1/p?q' });
  });

  test('links: Grip-Last is sent for channels with a prev-id, replacing older ones', () => {
    const last = gripLastHeaders([{ name: 'a', prevId: '1', filters: [] }, { name: 'b', filters: [] }]);
    assert.deepEqual(last, [['Grip-Last', 'a; last-id=1']]);
    const req = withGripLast({ method: 'GET', path: '/', headers: [['grip-last', 'old; last-id=0'], ['X', 'y']], body: Buffer.alloc(0) }, last);
    assert.deepEqual(req.headers, [['X', 'y'], ['Grip-Last', 'a; last-id=1']]);
  });
});

describe('filters', () => {
  const ctx = (sub: Record<string, string>, pub: Record<string, string>, channels: string[] = []) => ({ subscriptionMeta: sub, publishMeta: pub, channels: new Set(channels) });

  test('filters: skip-self drops only when sender equals the subscriber user', () => {
    assert.equal(isDroppedByFilters(['skip-self'], ctx({ user: 'a' }, { sender: 'a' })), true);
    assert.equal(isDroppedByFilters(['skip-self'], ctx({ user: 'a' }, { sender: 'b' })), false);
    assert.equal(isDroppedByFilters(['skip-self'], ctx({}, { sender: 'a' })), false);
  });

  test('filters: skip-users reads a comma list from publish meta', () => {
    assert.equal(isDroppedByFilters(['skip-users'], ctx({ user: 'b' }, { skip_users: 'a, b ,c' })), true);
    assert.equal(isDroppedByFilters(['skip-users'], ctx({ user: 'd' }, { skip_users: 'a,b' })), false);
  });

  test('filters: require-sub needs the subscriber to hold the named channel', () => {
    assert.equal(isDroppedByFilters(['require-sub'], ctx({}, { require_sub: 'x' }, ['y'])), true);
    assert.equal(isDroppedByFilters(['require-sub'], ctx({}, { require_sub: 'x' }, ['x'])), false);
  });

  test('filters: var-subst replaces %(name)s from subscription meta and rejects unknown names', () => {
    assert.equal(substituteVars(Buffer.from('hi %(user)s, 100%%'), { user: 'ann' }).toString(), 'hi ann, 100%');
    assert.throws(() => substituteVars(Buffer.from('%(nope)s'), {}), FilterError);
    assert.throws(() => substituteVars(Buffer.from('50%'), {}), /Expected directive/);
    assert.throws(() => substituteVars(Buffer.from('%(open'), {}), /Unterminated/);
  });
});

describe('content filters', () => {
  test('filters: the template language handles %%, %X, %(arg)X and escapes, naming positions on errors', () => {
    const echo = (t: string, a: string | undefined): string => `[${t}:${a ?? '-'}]`;
    assert.equal(processFormat(Buffer.from('a%%b%I%(x\\)y)s'), echo).toString(), 'a%b[I:-][s:x)y]');
    assert.throws(() => processFormat(Buffer.from('ab%'), echo), /Expected directive after '%' at position 2/);
    assert.throws(() => processFormat(Buffer.from('%1'), echo), /Unknown directive '1' at position 1/);
    assert.throws(() => substituteVars(Buffer.from('xx%(a)q'), { a: '1' }), /Unknown directive 'q' at position 6/);
  });

  test('filters: build-id renders id_format from prev-ids into %I', () => {
    const meta = { id_format: '%(a)s-%(b)s' };
    const prev = new Map([['a', '1'], ['b', '2']]);
    assert.equal(buildIdContent(Buffer.from('id=%I;'), meta, prev).toString(), 'id=1-2;');
    assert.equal(buildIdContent(Buffer.from('%(lit)I'), meta, prev).toString(), 'lit');
    assert.equal(buildIdContent(Buffer.from('%I'), { ...meta, id_encoding: 'hex' }, prev).toString(), Buffer.from('1-2').toString('hex'));
    assert.throws(() => buildIdContent(Buffer.from('%I'), {}, prev), /no sub meta 'id_format'/);
    assert.throws(() => buildIdContent(Buffer.from('%I'), meta, new Map()), /No ID specified/);
    assert.throws(() => buildIdContent(Buffer.from('%I'), { ...meta, id_encoding: 'b64' }, prev), /unsupported encoding: b64/);
  });

  test('filters: content filters apply in their listed order', () => {
    const out = applyContentFilters(['var-subst', 'build-id'], Buffer.from('%(u)s'), { u: '%I', id_format: 'x' }, new Map([['c', '1']]));
    assert.equal(out.toString(), 'x');
  });

  test('filters: non-ASCII content and meta survive var-subst', () => {
    assert.equal(substituteVars(Buffer.from('héllo %(n)s ✓'), { n: 'zoë' }).toString(), 'héllo zoë ✓');
  });
});

describe('sequencer', () => {
  const item = (id: string | undefined, prevId: string | undefined, channel = 'c'): PublishItem => ({ channel, id, prevId, noSeq: false, meta: {}, formats: {} });

  test('sequencer: an item whose prev-id is not the last id waits for its predecessor', () => {
    const out: Array<string | undefined> = [];
    const s = new Sequencer(5000, 0, (i) => out.push(i.id));
    s.add(item('1', undefined), true);
    s.add(item('3', '2'), true);
    assert.deepEqual(out, ['1']);
    s.add(item('2', '1'), true);
    assert.deepEqual(out, ['1', '2', '3']);
    s.stop();
  });

  test('sequencer: no-seq items bypass ordering', () => {
    const out: Array<string | undefined> = [];
    const s = new Sequencer(5000, 0, (i) => out.push(i.id));
    s.add(item('1', undefined), true);
    s.add(item('3', '2'), false);
    assert.deepEqual(out, ['1', '3']);
    s.stop();
  });

  test('sequencer: ids seen within id_cache_ttl are dropped', () => {
    const out: Array<string | undefined> = [];
    const s = new Sequencer(5000, 60, (i) => out.push(i.id));
    s.add(item('a', undefined), false);
    s.add(item('a', undefined), false);
    s.add(item('a', undefined, 'other'), false);
    assert.deepEqual(out, ['a', 'a']);
    s.stop();
  });

  test('sequencer: pending items per channel are bounded', () => {
    const out: Array<string | undefined> = [];
    const s = new Sequencer(5000, 0, (i) => out.push(i.id));
    s.add(item('0', undefined), true);
    for (let i = 0; i < CHANNEL_PENDING_MAX + 50; i++) s.add(item(`x${i}`, `p${i}`), true);
    s.clearChannel('c');
    assert.deepEqual(out, ['0']);
    s.stop();
  });

  test('sequencer: a stuck item is sent after message_wait', async () => {
    const out: Array<string | undefined> = [];
    let now = 1000;
    const s = new Sequencer(100, 0, (i) => out.push(i.id), () => now);
    s.add(item('1', undefined), true);
    s.add(item('3', '2'), true);
    now += 200;
    // The expiry check runs on a 1 s interval; wait for it with a deadline.
    const end = Date.now() + 5000;
    while (out.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(out, ['1', '3']);
    s.stop();
  });
});

describe('timer wheel', () => {
  const entry = (fired: string[], name: string): WheelEntry => ({ wheelDeadlineMs: 0, wheelSlot: -1, onTimer: () => fired.push(name) });

  test('timer wheel: entries fire after their deadline, cancelled ones never', async () => {
    const w = new TimerWheel();
    const fired: string[] = [];
    const a = entry(fired, 'a');
    const b = entry(fired, 'b');
    const c = entry(fired, 'c');
    w.schedule(a, 50);
    w.schedule(b, 250);
    w.schedule(c, 100);
    w.cancel(c);
    assert.equal(w.count, 2);
    const end = Date.now() + 5000;
    while (fired.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, WHEEL_TICK_MS));
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(w.count, 0);
  });

  test('timer wheel: deadlines beyond one turn wait for a later turn', () => {
    let now = 0;
    const w = new TimerWheel(() => now);
    const fired: string[] = [];
    const e = entry(fired, 'far');
    w.schedule(e, 120_000);
    assert.ok(e.wheelSlot >= 0);
    assert.ok(e.wheelDeadlineMs === 120_000);
    w.clear();
    assert.equal(e.wheelSlot, -1);
    now = 1;
  });
});

describe('test handler', () => {
  const req = (path: string, body = Buffer.alloc(0)) => ({ method: 'GET', path, headers: [] as Array<[string, string]>, body });

  test('test handler: / says hello as Pushpin does', async () => {
    const r = await testHandler(req('/'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers, [['Content-Type', 'text/plain']]);
    assert.equal(r.body.toString(), 'Hello from the Pushpin test handler!\n');
  });

  test('test handler: /stream and /response hold on test or the given channels', async () => {
    const s = await testHandler(req('/stream/'));
    assert.deepEqual(s.headers, [['Content-Type', 'text/plain'], ['Grip-Hold', 'stream'], ['Grip-Channel', 'test']]);
    assert.equal(s.body.toString(), '[stream opened]\n');
    const r = await testHandler(req('/response?channel=a&channel=b'));
    assert.deepEqual(r.headers, [['Content-Type', 'text/plain'], ['Grip-Hold', 'response'], ['Grip-Channel', 'a, b']]);
    assert.equal(r.body.toString(), 'nothing for now\n');
  });

  test('test handler: unknown paths are 404 and big bodies 400', async () => {
    const n = await testHandler(req('/nope'));
    assert.equal(n.status, 404);
    assert.equal(n.body.toString(), 'no such test resource\n');
    const big = await testHandler(req('/', Buffer.alloc(100_001)));
    assert.equal(big.status, 400);
    assert.equal(big.body.toString(), 'request too large\n');
  });
});
