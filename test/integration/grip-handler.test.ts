/**
 * The GRIP handler over real sockets: long-polls, streams, keep-alives, hints, next and
 * gone links, sequencing, filters, slow consumers and shutdown. Publishes go through
 * the real HTTP publish API (and @fanoutio/grip's Publisher).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { Publisher } from '@fanoutio/grip';
import { RawClient, publishJson, startRig, waitSubscribers, type Rig } from './grip-rig.js';

const GET = (path: string, version = '1.1'): string => `GET ${path} HTTP/${version}\r\nHost: example\r\n\r\n`;

let hintCalls = 0;
let slow2Calls = 0;
let releaseSlow2: () => void = () => undefined;
const slow2Gate = new Promise<void>((r) => { releaseSlow2 = r; });
const goneHits: string[] = [];

function backend(req: http.IncomingMessage, res: http.ServerResponse): void {
  const u = new URL(req.url ?? '/', 'http://x');
  const ch = u.searchParams.get('ch') ?? 'lp';
  switch (u.pathname) {
    case '/lp':
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Hold': 'yes', 'Grip-Hold': 'response', 'Grip-Channel': ch });
      res.end('{"a":1,"b":[1]}\n');
      return;
    case '/st': {
      const h: Record<string, string> = { 'Content-Type': 'text/plain', 'X-Foo': 'bar', 'Grip-Hold': 'stream', 'Grip-Channel': ch };
      if (u.searchParams.has('ka')) h['Grip-Keep-Alive'] = 'ka\\n; format=cstring; timeout=1';
      if (u.searchParams.has('user')) {
        h['Grip-Set-Meta'] = `user=${u.searchParams.get('user')}`;
        h['Grip-Channel'] = `${ch}; filter=skip-self`;
      }
      if (u.searchParams.has('gone')) h['Grip-Link'] = '</gone-cb>; rel=gone';
      res.writeHead(200, h);
      res.end('opened\n');
      return;
    }
    case '/hint':
      hintCalls++;
      if (hintCalls === 1) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'hint' });
        res.end('held\n');
      } else {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Fresh': String(hintCalls) });
        res.end('fresh\n');
      }
      return;
    case '/next':
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Link': '</next2>; rel=next' });
      res.end('page1\n');
      return;
    case '/next2':
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'nx' });
      res.end('page2\n');
      return;
    case '/pn':
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'pn; prev-id=1', 'Grip-Link': '</pn2>; rel=next' });
      res.end('start\n');
      return;
    case '/pn2':
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'pn; prev-id=3', 'Grip-Link': '</pn2>; rel=next' });
      res.end(`recovered after ${String(req.headers['grip-last'])}\n`);
      return;
    case '/lpp':
      if (req.headers['grip-last'] !== undefined) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`caught up from ${String(req.headers['grip-last'])}\n`);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'lpp; prev-id=x' });
      res.end('held\n');
      return;
    case '/share':
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Link': '</slow2>; rel=next' });
      res.end('page1\n');
      return;
    case '/slow2':
      slow2Calls++;
      void slow2Gate.then(() => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'shared' });
        res.end('page2\n');
      });
      return;
    case '/gone-cb':
      goneHits.push(req.method ?? '');
      res.writeHead(200);
      res.end();
      return;
    default:
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('nope\n');
  }
}

describe('grip handler', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(backend, {
      tweak(instruct, req) {
        if (req.url?.includes('short=1') && instruct.hold !== undefined) instruct.hold.timeoutS = 0.3;
      },
    });
  });
  after(async () => {
    await rig.close();
  });

  test('long-poll: a published http-response answers the held request, headers merged over the hold response', async () => {
    const c = new RawClient(rig.port, GET('/lp?ch=lp1'));
    await waitSubscribers(rig.handler, 'lp1', 1);
    const r = await publishJson(rig, { items: [{ channel: 'lp1', formats: { 'http-response': { body: 'hi\n', headers: { 'X-Pub': '1', 'Content-Type': 'text/x' } } } }] });
    assert.equal(r.status, 200);
    await c.until((x) => x.text.endsWith('hi\n'));
    const [head] = c.text.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 200 OK\r\n/);
    const lines = head!.split('\r\n').slice(1);
    // Hold headers first (minus the replaced one), then the published ones, as Pushpin orders them.
    const names = lines.map((l) => l.split(':')[0]!.toLowerCase()).filter((n) => !['date', 'connection', 'keep-alive', 'content-length'].includes(n));
    // (Pushpin orders published headers given as a JSON object by name; that order is the
    // publish parser's business, so only the hold-first rule is checked here.)
    assert.equal(names[0], 'x-hold');
    assert.deepEqual([...names].sort(), ['content-type', 'x-hold', 'x-pub']);
    assert.ok(lines.includes('Content-Type: text/x'));
    assert.ok(lines.includes('Content-Length: 3'));
    c.destroy();
    await waitSubscribers(rig.handler, 'lp1', 0).catch(() => undefined);
    assert.equal(rig.handler.subscriberCount('lp1').response, 0);
  });

  test('long-poll: @fanoutio/grip Publisher.publishHttpResponse reaches the client', async () => {
    const c = new RawClient(rig.port, GET('/lp?ch=lp2'));
    await waitSubscribers(rig.handler, 'lp2', 1);
    const pub = new Publisher({ control_uri: rig.publishUrl });
    await pub.publishHttpResponse('lp2', 'from publisher\n');
    await c.until((x) => x.text.endsWith('from publisher\n'));
    c.destroy();
  });

  test('long-poll: timeout sends the hold response exactly once', async () => {
    const c = new RawClient(rig.port, GET('/lp?ch=lp3&short=1'));
    await c.until((x) => x.text.endsWith('{"a":1,"b":[1]}\n'));
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(c.text, /\r\nX-Hold: yes\r\n/);
    assert.doesNotMatch(c.text, /Grip-/i);
    assert.equal(rig.handler.subscriberCount('lp3').response, 0);
    // A publish after the timeout must not produce a second response.
    await publishJson(rig, { items: [{ channel: 'lp3', formats: { 'http-response': { body: 'late\n' } } }] });
    assert.equal((c.text.match(/HTTP\/1\.1/g) ?? []).length, 1);
    c.destroy();
  });

  test('long-poll: body-patch applies JSON Patch to the hold body, keeping its newline', async () => {
    const c = new RawClient(rig.port, GET('/lp?ch=lp4'));
    await waitSubscribers(rig.handler, 'lp4', 1);
    await publishJson(rig, { items: [{ channel: 'lp4', formats: { 'http-response': { code: 201, 'body-patch': [{ op: 'replace', path: '/a', value: 2 }] } } }] });
    await c.until((x) => x.text.includes('\r\n\r\n{'));
    assert.match(c.text, /^HTTP\/1\.1 201 Created\r\n/);
    assert.ok(c.text.endsWith('\r\n\r\n{"a":2,"b":[1]}\n'));
    c.destroy();
  });

  test('long-poll: action hint re-requests the original request and relays the new answer', async () => {
    const c = new RawClient(rig.port, GET('/hint'));
    await waitSubscribers(rig.handler, 'hint', 1);
    await publishJson(rig, { items: [{ channel: 'hint', formats: { 'http-response': { action: 'hint' } } }] });
    await c.until((x) => x.text.endsWith('fresh\n'));
    assert.match(c.text, /X-Fresh: 2/);
    c.destroy();
  });

  test('stream: head, initial body and published chunks are byte-exact as Pushpin frames them', async () => {
    const c = new RawClient(rig.port, GET('/st?ch=s1'));
    await waitSubscribers(rig.handler, 's1', 1);
    await c.until((x) => x.text.endsWith('opened\n\r\n'));
    const head = c.text.slice(0, c.text.indexOf('\r\n\r\n') + 4);
    const lines = head.split('\r\n').filter((l) => !l.startsWith('Date:'));
    assert.deepEqual(lines, ['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'X-Foo: bar', 'Connection: Transfer-Encoding', 'Transfer-Encoding: chunked', '', '']);
    const pub = new Publisher({ control_uri: rig.publishUrl });
    await pub.publishHttpStream('s1', 'one\n');
    await c.until((x) => x.text.endsWith('4\r\none\n\r\n'));
    assert.ok(c.text.endsWith('\r\n\r\n7\r\nopened\n\r\n4\r\none\n\r\n'));
    await publishJson(rig, { items: [{ channel: 's1', formats: { 'http-stream': { action: 'close' } } }] });
    await c.until((x) => x.closed);
    assert.ok(c.text.endsWith('4\r\none\n\r\n0\r\n\r\n'));
    assert.equal(rig.handler.subscriberCount('s1').stream, 0);
  });

  test('stream: an HTTP/1.0 client gets a close-delimited body', async () => {
    const c = new RawClient(rig.port, GET('/st?ch=s10', '1.0'));
    await waitSubscribers(rig.handler, 's10', 1);
    await publishJson(rig, { items: [{ channel: 's10', formats: { 'http-stream': { content: 'x\n' } } }] });
    await c.until((x) => x.text.endsWith('opened\nx\n'));
    assert.match(c.text, /^HTTP\/1\.0 200 OK\r\n/);
    assert.doesNotMatch(c.text, /Transfer-Encoding/);
    await publishJson(rig, { items: [{ channel: 's10', formats: { 'http-stream': { action: 'close' } } }] });
    await c.until((x) => x.closed);
    assert.ok(c.text.endsWith('opened\nx\n'));
  });

  test('stream: the rest of a large backend body streams through before the hold starts', async () => {
    const c = new RawClient(rig.port, GET('/st?ch=s5&rest=1'));
    await waitSubscribers(rig.handler, 's5', 1);
    await publishJson(rig, { items: [{ channel: 's5', formats: { 'http-stream': { content: 'pub\n' } } }] });
    await c.until((x) => x.text.includes('pub\n'));
    assert.ok(c.text.endsWith('\r\n\r\n3\r\nope\r\n2\r\nne\r\n2\r\nd\n\r\n4\r\npub\n\r\n'));
    c.destroy();
  });

  test('stream: keep-alive data goes out when the stream is idle', async () => {
    const c = new RawClient(rig.port, GET('/st?ch=s2&ka=1'));
    await c.until((x) => x.text.includes('3\r\nka\n\r\n'));
    c.destroy();
  });

  test('stream: several items in one publish arrive in order', async () => {
    const c = new RawClient(rig.port, GET('/st?ch=s3'));
    await waitSubscribers(rig.handler, 's3', 1);
    const items = Array.from({ length: 20 }, (_, i) => ({ channel: 's3', formats: { 'http-stream': { content: `m${i}\n` } } }));
    await publishJson(rig, { items });
    await c.until((x) => x.text.includes('m19\n'));
    const got = [...c.text.matchAll(/m(\d+)\n/g)].map((m) => Number(m[1]));
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i));
    c.destroy();
  });

  test('next link: the linked response is appended and its stream hold applies', async () => {
    const c = new RawClient(rig.port, GET('/next'));
    await waitSubscribers(rig.handler, 'nx', 1);
    await publishJson(rig, { items: [{ channel: 'nx', formats: { 'http-stream': { content: 'live\n' } } }] });
    await c.until((x) => x.text.endsWith('5\r\nlive\n\r\n'));
    assert.ok(c.text.endsWith('\r\n\r\n6\r\npage1\n\r\n6\r\npage2\n\r\n5\r\nlive\n\r\n'));
    c.destroy();
  });

  test('next link: identical concurrent next-link requests share one backend request', async () => {
    const a = new RawClient(rig.port, GET('/share'));
    const b = new RawClient(rig.port, GET('/share'));
    await a.until((x) => x.text.includes('page1\n'));
    await b.until((x) => x.text.includes('page1\n'));
    releaseSlow2();
    await waitSubscribers(rig.handler, 'shared', 2);
    await publishJson(rig, { items: [{ channel: 'shared', formats: { 'http-stream': { content: 'both\n' } } }] });
    await a.until((x) => x.text.includes('both\n'));
    await b.until((x) => x.text.includes('both\n'));
    assert.equal(slow2Calls, 1);
    assert.ok(a.text.includes('page2\n') && b.text.includes('page2\n'));
    a.destroy();
    b.destroy();
  });

  test('gone link: POSTed once when the held session ends', async () => {
    const before = goneHits.length;
    const c = new RawClient(rig.port, GET('/st?ch=s4&gone=1'));
    await waitSubscribers(rig.handler, 's4', 1);
    c.destroy();
    const end = Date.now() + 10_000;
    while (goneHits.length === before && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(goneHits.slice(before), ['POST']);
  });

  test('sequencing: an out-of-order item waits for its predecessor', async () => {
    const c = new RawClient(rig.port, GET('/st?ch=seq'));
    await waitSubscribers(rig.handler, 'seq', 1);
    const item = (id: string, prev: string | undefined, text: string): unknown => ({ channel: 'seq', id, ...(prev !== undefined ? { 'prev-id': prev } : {}), formats: { 'http-stream': { content: text } } });
    await publishJson(rig, { items: [item('1', undefined, 'first\n')] });
    await publishJson(rig, { items: [item('3', '2', 'third\n')] });
    await publishJson(rig, { items: [item('2', '1', 'second\n')] });
    await c.until((x) => x.text.includes('third\n'));
    const order = [...c.text.matchAll(/(first|second|third)\n/g)].map((m) => m[1]);
    assert.deepEqual(order, ['first', 'second', 'third']);
    // The same id again is dropped as a duplicate.
    await publishJson(rig, { items: [item('4', '3', 'fourth\n')] });
    await c.until((x) => x.text.includes('fourth\n'));
    c.destroy();
  });

  test('prev-id: a stream that misses an item fetches its next link with Grip-Last', async () => {
    const c = new RawClient(rig.port, GET('/pn'));
    await waitSubscribers(rig.handler, 'pn', 1);
    await c.until((x) => x.text.includes('start\n'));
    await publishJson(rig, { items: [{ channel: 'pn', id: '3', 'prev-id': '2', formats: { 'http-stream': { content: 'skipped\n' } } }] });
    await c.until((x) => x.text.includes('recovered after pn; last-id=1\n'));
    assert.ok(!c.text.includes('skipped\n'));
    // The new hold follows id 3: the next item in sequence is delivered.
    await publishJson(rig, { items: [{ channel: 'pn', id: '4', 'prev-id': '3', formats: { 'http-stream': { content: 'four\n' } } }] });
    await c.until((x) => x.text.includes('four\n'));
    c.destroy();
  });

  test('prev-id: a long-poll whose prev-id is stale is retried at once with Grip-Last', async () => {
    await waitSubscribers(rig.handler, 'lpp', 0);
    // Something must hold the channel for its last id to be tracked.
    const holder = new RawClient(rig.port, GET('/st?ch=lpp'));
    await waitSubscribers(rig.handler, 'lpp', 1);
    await publishJson(rig, { items: [{ channel: 'lpp', id: 'y', formats: { 'http-stream': { content: 'y\n' } } }] });
    await holder.until((x) => x.text.includes('y\n'));
    const c = new RawClient(rig.port, GET('/lpp'));
    await c.until((x) => x.text.endsWith('caught up from lpp; last-id=x\n'));
    holder.destroy();
    c.destroy();
  });

  test('filters: skip-self drops the publisher\'s own message for that subscriber only', async () => {
    const alice = new RawClient(rig.port, GET('/st?ch=f1&user=alice'));
    const bob = new RawClient(rig.port, GET('/st?ch=f1&user=bob'));
    await waitSubscribers(rig.handler, 'f1', 2);
    await publishJson(rig, { items: [{ channel: 'f1', meta: { sender: 'alice' }, formats: { 'http-stream': { content: 'from alice\n' } } }] });
    await publishJson(rig, { items: [{ channel: 'f1', formats: { 'http-stream': { content: 'marker\n' } } }] });
    await bob.until((x) => x.text.includes('marker\n'));
    await alice.until((x) => x.text.includes('marker\n'));
    assert.ok(bob.text.includes('from alice\n'));
    assert.ok(!alice.text.includes('from alice\n'));
    alice.destroy();
    bob.destroy();
  });

  test('subscribe/unsubscribe events follow the first and last subscriber of a channel', async () => {
    const events: string[] = [];
    const onSub = (ch: string): void => { if (ch === 'ev') events.push('sub'); };
    const onUnsub = (ch: string): void => { if (ch === 'ev') events.push('unsub'); };
    rig.handler.on('subscribe', onSub);
    rig.handler.on('unsubscribe', onUnsub);
    const a = new RawClient(rig.port, GET('/st?ch=ev'));
    const b = new RawClient(rig.port, GET('/lp?ch=ev'));
    await waitSubscribers(rig.handler, 'ev', 2);
    assert.ok([...rig.handler.channels()].includes('ev'));
    a.destroy();
    b.destroy();
    const end = Date.now() + 10_000;
    while (events.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    rig.handler.off('subscribe', onSub);
    rig.handler.off('unsubscribe', onUnsub);
    assert.deepEqual(events, ['sub', 'unsub']);
    assert.ok(![...rig.handler.channels()].includes('ev'));
  });
});

describe('grip handler: slow consumers', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(backend, { outboundMaxBytes: 256 * 1024 });
  });
  after(async () => {
    await rig.close();
  });

  test('a client that never reads is dropped without holding back the others', async () => {
    const slow = new RawClient(rig.port, GET('/st?ch=slow'));
    slow.sock.pause();
    const fast = new RawClient(rig.port, GET('/st?ch=slow'));
    await waitSubscribers(rig.handler, 'slow', 2);
    const payload = 'x'.repeat(64 * 1024);
    let sent = 0;
    // Bounded: kernel buffers plus the limit are far below 400 x 64 KB.
    for (let i = 0; i < 400 && rig.handler.counters.drops === 0; i++) {
      const r = await publishJson(rig, { items: [{ channel: 'slow', formats: { 'http-stream': { content: payload } } }] });
      assert.equal(r.status, 200);
      sent++;
      await fast.until((x) => x.data.length >= sent * payload.length);
    }
    assert.equal(rig.handler.counters.drops, 1);
    // Reading again lets the paused client notice that gripd closed it.
    slow.sock.resume();
    await slow.until((x) => x.closed);
    assert.equal(rig.handler.subscriberCount('slow').stream, 1);
    await publishJson(rig, { items: [{ channel: 'slow', formats: { 'http-stream': { content: 'after\n' } } }] });
    await fast.until((x) => x.text.endsWith('after\n\r\n'));
    assert.equal(rig.handler.subscriberCount('slow').stream, 1);
    fast.destroy();
  });
});

describe('grip handler: route prefix', () => {
  test('route prefix= is prepended to held channels', async () => {
    const rig = await startRig(backend, { routePrefix: 'app1-' });
    try {
      const c = new RawClient(rig.port, GET('/st?ch=news'));
      await waitSubscribers(rig.handler, 'app1-news', 1);
      assert.equal(rig.handler.subscriberCount('news').stream, 0);
      await publishJson(rig, { items: [{ channel: 'news', formats: { 'http-stream': { content: 'wrong\n' } } }, { channel: 'app1-news', formats: { 'http-stream': { content: 'right\n' } } }] });
      await c.until((x) => x.text.includes('right\n'));
      assert.ok(!c.text.includes('wrong\n'));
      c.destroy();
    } finally {
      await rig.close();
    }
  });
});

describe('grip handler: auto cross-origin', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(backend, { aco: true });
  });
  after(async () => {
    await rig.close();
  });

  test('aco: a published long-poll answer carries CORS headers for the client origin', async () => {
    const c = new RawClient(rig.port, 'GET /lp?ch=cors1 HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n\r\n');
    await waitSubscribers(rig.handler, 'cors1', 1);
    await publishJson(rig, { items: [{ channel: 'cors1', formats: { 'http-response': { body: 'ok\n' } } }] });
    await c.until((x) => x.text.endsWith('ok\n'));
    assert.match(c.text, /\r\nAccess-Control-Allow-Origin: http:\/\/a\.example\r\n/);
    assert.match(c.text, /\r\nAccess-Control-Allow-Credentials: true\r\n/);
    c.destroy();
  });

  test('aco: a stream head carries CORS headers', async () => {
    const c = new RawClient(rig.port, 'GET /st?ch=cors2 HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until((x) => x.text.includes('opened\n'));
    assert.match(c.text, /\r\nAccess-Control-Allow-Origin: \*\r\n/);
    c.destroy();
  });

  test('aco: JSON-P long-polls get the held response wrapped in the callback', async () => {
    const c = new RawClient(rig.port, GET('/lp?ch=jp1&callback=cb'));
    await waitSubscribers(rig.handler, 'jp1', 1);
    await publishJson(rig, { items: [{ channel: 'jp1', formats: { 'http-response': { body: 'hey\n' } } }] });
    await c.until((x) => x.text.endsWith(');\n'));
    assert.match(c.text, /\r\nContent-Type: application\/javascript\r\n/);
    assert.match(c.text, /\r\n\r\n\/\*\*\/cb\(\{"body":"hey\\n","code":200,"headers":\{.*\},"reason":"OK"\}\);\n$/);
    c.destroy();
  });
});

describe('grip handler: metrics', () => {
  test('metrics: holds, subscriptions, items and deliveries are reported', async () => {
    const events: string[] = [];
    const metrics = {
      requestReceived() {}, connectionChange() {}, backendResponse() {},
      holdChange(kind: string, d: number) { events.push(`hold ${kind} ${d}`); },
      subscriptionsChange(c: number, s: number) { events.push(`subs ${c} ${s}`); },
      itemsReceived(src: string, n: number) { events.push(`items ${src} ${n}`); },
      delivered(n: number) { events.push(`delivered ${n}`); },
      dropped(reason: string, n: number) { events.push(`dropped ${reason} ${n}`); },
    };
    const rig = await startRig(backend, { metrics });
    try {
      const c = new RawClient(rig.port, GET('/st?ch=m1'));
      await waitSubscribers(rig.handler, 'm1', 1);
      await publishJson(rig, { items: [{ channel: 'm1', formats: { 'http-stream': { content: 'a\n' } } }] });
      await c.until((x) => x.text.includes('a\n\r\n'));
      c.destroy();
      const end = Date.now() + 10_000;
      while (!events.includes('hold stream -1') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(events, ['hold stream 1', 'subs 1 1', 'items http 1', 'delivered 1', 'subs 0 0', 'hold stream -1']);
    } finally {
      await rig.close();
    }
  });
});

describe('grip handler: bursts', () => {
  test('a burst bigger than the outbound limit in one publish does not drop a reading client', async () => {
    const rig = await startRig(backend, { outboundMaxBytes: 256 * 1024 });
    try {
      const c = new RawClient(rig.port, GET('/st?ch=burst'));
      await waitSubscribers(rig.handler, 'burst', 1);
      const payload = 'y'.repeat(8 * 1024);
      const items = Array.from({ length: 100 }, () => ({ channel: 'burst', formats: { 'http-stream': { content: payload } } }));
      const r = await publishJson(rig, { items });
      assert.equal(r.status, 200);
      await c.until((x) => x.data.length >= 100 * payload.length);
      assert.equal(rig.handler.counters.drops, 0);
      assert.equal(rig.handler.counters.deliveries, 100);
      c.destroy();
    } finally {
      await rig.close();
    }
  });
});

describe('grip handler: shutdown', () => {
  test('stop() answers long-polls with the hold response and ends streams with the last chunk', async () => {
    const rig = await startRig(backend);
    try {
      const lp = new RawClient(rig.port, GET('/lp?ch=sd1'));
      const st = new RawClient(rig.port, GET('/st?ch=sd2'));
      await waitSubscribers(rig.handler, 'sd1', 1);
      await waitSubscribers(rig.handler, 'sd2', 1);
      await st.until((x) => x.text.endsWith('opened\n\r\n'));
      await rig.handler.stop();
      await lp.until((x) => x.text.endsWith('{"a":1,"b":[1]}\n'));
      await st.until((x) => x.closed);
      assert.ok(st.text.endsWith('opened\n\r\n0\r\n\r\n'));
      lp.destroy();
    } finally {
      await rig.close();
    }
  });
});
