/**
 * WebSocket-over-HTTP through gripd started via its CLI: handshake and OPEN, events both
 * ways, control messages, ws-message publishing, rejection, retries and bad input.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Publisher, WebSocketMessageFormat } from '@fanoutio/grip';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';
import { connect, ev, OPEN_GRIP, publish, startWohBackend, waitFor, type WohBackend, type WohReply, type WohRequest } from './ws-helpers.js';

const ctrl = (o: unknown): string => ev('TEXT', 'c:' + JSON.stringify(o));

/** The scripted backend used by most tests: behaviour picked by the request path. */
function script(r: WohRequest): WohReply {
  const path = r.url.split('?')[0];
  const open = r.body.startsWith('OPEN');
  switch (path) {
    case '/chat':
      if (open) {
        return {
          headers: { 'Sec-WebSocket-Extensions': 'grip', 'Set-Meta-User': 'alice', 'Sec-WebSocket-Protocol': 'p2', 'X-Extra': 'yes' },
          body: ev('OPEN') + ctrl({ type: 'subscribe', channel: 'room' }) + ev('TEXT', 'm:welcome') + ev('TEXT', 'unprefixed'),
        };
      }
      if (r.body.includes('TEXT 4\r\nping')) return { body: ev('TEXT', 'm:pong!') };
      if (r.body.includes('TEXT 3\r\nbad')) return { body: ev('TEXT', 'c:{not json') + ev('TEXT', 'm:after-bad') };
      if (r.body.includes('TEXT 6\r\ndetach')) return { body: ctrl({ type: 'detach' }) };
      if (r.body.includes('TEXT 3\r\nbye')) return { body: ev('CLOSE', Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('later')])) };
      return { body: '' };
    case '/reject':
      return { status: 403, headers: { 'Content-Type': 'text/plain' }, body: 'go away\n' };
    case '/malformed':
      return open ? OPEN_GRIP : { body: 'TEXT zz\r\n' };
    case '/wrongtype':
      return open ? OPEN_GRIP : { headers: { 'Content-Type': 'text/plain' }, body: 'oops' };
    case '/plain':
      return { body: ev('OPEN') + ev('TEXT', 'no grip here') };
    default:
      return open ? OPEN_GRIP : { body: '' };
  }
}

describe('ws over_http', () => {
  let gripd: GripdInstance;
  let backend: WohBackend;
  let wsUrl: string;

  before(async () => {
    backend = await startWohBackend(script);
    gripd = await startGripd({
      routes: [
        `* 127.0.0.1:${backend.port},over_http,sub=implicit`,
        `*,path_beg=/one 127.0.0.1:${backend.port},over_http,one_event`,
      ],
    });
    wsUrl = gripd.url.replace(/^http/, 'ws');
  });
  after(async () => {
    await gripd.stop();
    await backend.close();
  });

  test('ws: OPEN carries the handshake headers, Connection-Id and Grip-Sig; the 101 carries the backend headers and protocol', async () => {
    const c = connect(`${wsUrl}/chat`, ['p1', 'p2']);
    const res = await c.opened;
    assert.equal(res.headers['x-extra'], 'yes');
    assert.equal(res.headers['sec-websocket-protocol'], 'p2');
    assert.equal(res.headers['sec-websocket-extensions'], undefined, 'the grip extension never reaches the client');
    assert.equal(res.headers['set-meta-user'], undefined);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    const open = backend.requests.find((r) => r.body === 'OPEN\r\n' && r.url === '/chat')!;
    assert.equal(open.headers['content-type'], 'application/websocket-events');
    assert.equal(open.headers['accept'], 'application/websocket-events');
    assert.equal(open.headers['sec-websocket-extensions'], 'grip');
    assert.match(String(open.headers['sec-websocket-protocol']), /^p1, ?p2$/);
    assert.match(String(open.headers['grip-sig']), /^ey/);
    assert.match(String(open.headers['connection-id']), /^[0-9a-f-]{36}$/);
    assert.equal(open.headers['upgrade'], undefined);
    // Prefixed messages arrive without the prefix; unprefixed ones are dropped.
    c.ws.send('ping');
    await waitFor(() => c.texts().includes('pong!'), 'pong!');
    assert.deepEqual(c.texts(), ['welcome', 'pong!']);
    const cid = String(open.headers['connection-id']);
    const later = backend.requests.filter((r) => r.headers['connection-id'] === cid && r.body.includes('TEXT 4\r\nping'));
    assert.equal(later.length, 1);
    assert.equal(later[0]!.headers['meta-user'], 'alice', 'Set-Meta-* comes back as Meta-*');
    assert.equal(later[0]!.body, 'TEXT 4\r\nping\r\n');
    c.ws.close(1000, 'done');
    await c.closed;
    await waitFor(() => backend.bodies(cid).some((b) => b.startsWith('CLOSE 6\r\n\x03\xe8done')), 'CLOSE event');
  });

  test('ws: a subscribed connection receives ws-message publishes (Publisher.publishFormats), text and binary', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    const pub = new Publisher({ control_uri: gripd.publishUrl });
    await pub.publishFormats('room', new WebSocketMessageFormat('hello room'));
    await waitFor(() => c.texts().includes('hello room'), 'published text');
    await pub.publishFormats('room', new WebSocketMessageFormat(Buffer.from([0, 1, 2, 255])));
    await waitFor(() => c.messages.some((m) => m.binary), 'published binary');
    assert.deepEqual([...c.messages.find((m) => m.binary)!.data], [0, 1, 2, 255]);
    // sub= on the target adds an implicit subscription.
    await publish(gripd.publishUrl, [{ channel: 'implicit', formats: { 'ws-message': { content: 'implicit!' } } }]);
    await waitFor(() => c.texts().includes('implicit!'), 'implicit subscription');
    c.ws.close();
    await c.closed;
  });

  test('ws: a publish with action close closes the client with its code and tells the backend', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    const cid = String(backend.requests.filter((r) => r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);
    await publish(gripd.publishUrl, [{ channel: 'room', formats: { 'ws-message': { action: 'close', code: 4001, reason: 'kicked' } } }]);
    const closed = await c.closed;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, 'kicked');
    await waitFor(() => backend.bodies(cid).includes('CLOSE\r\n'), 'CLOSE to backend');
  });

  test('ws: backend CLOSE reaches the client with code and reason; its reply goes back as CLOSE', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    c.ws.send('bye');
    const closed = await c.closed;
    assert.equal(closed.code, 4000);
    assert.equal(closed.reason, 'later');
  });

  test('ws: a client that vanishes makes gripd send DISCONNECT', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    const cid = String(backend.requests.filter((r) => r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);
    c.ws.terminate();
    await waitFor(() => backend.bodies(cid).includes('DISCONNECT\r\n'), 'DISCONNECT');
  });

  test('ws: client pings reach the backend as PING events and are not answered by gripd', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    const cid = String(backend.requests.filter((r) => r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);
    let pongs = 0;
    c.ws.on('pong', () => pongs++);
    c.ws.ping('pp');
    await waitFor(() => backend.bodies(cid).some((b) => b.includes('PING 2\r\npp\r\n')), 'PING event');
    assert.equal(pongs, 0);
    c.ws.close();
    await c.closed;
  });

  test('ws: a backend refusing OPEN refuses the handshake with its status and body', async () => {
    const c = connect(`${wsUrl}/reject`);
    const r = await c.rejected;
    assert.equal(r.status, 403);
    assert.equal(r.body, 'go away\n');
  });

  test('ws: without the grip extension every backend message reaches the client unchanged', async () => {
    const c = connect(`${wsUrl}/plain`);
    await waitFor(() => c.texts().includes('no grip here'), 'plain message');
    c.ws.close();
    await c.closed;
  });

  test('ws: a control message that is not JSON is ignored; the connection keeps working', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    c.ws.send('bad');
    await waitFor(() => c.texts().includes('after-bad'), 'message after the bad control');
    assert.ok(gripd.output().includes('control message ignored'));
    c.ws.close();
    await c.closed;
  });

  test('ws: detach stops relaying to the backend (which hears CLOSE) while publishes still arrive', async () => {
    const c = connect(`${wsUrl}/chat`);
    await waitFor(() => c.texts().includes('welcome'), 'welcome');
    const cid = String(backend.requests.filter((r) => r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);
    c.ws.send('detach');
    await waitFor(() => backend.bodies(cid).includes('CLOSE\r\n'), 'CLOSE after detach');
    const n = backend.bodies(cid).length;
    c.ws.send('ping');
    await publish(gripd.publishUrl, [{ channel: 'room', formats: { 'ws-message': { content: 'still here' } } }]);
    await waitFor(() => c.texts().includes('still here'), 'publish after detach');
    assert.equal(backend.bodies(cid).length, n, 'nothing more reaches the backend');
    c.ws.close();
    await c.closed;
  });

  test('ws: one_event sends one event per request', async () => {
    const c = connect(`${wsUrl}/one/x`);
    await c.opened;
    const cid = String(backend.requests.filter((r) => r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);
    for (const m of ['a', 'b', 'c', 'd']) c.ws.send(m);
    await waitFor(() => backend.bodies(cid).filter((b) => b.startsWith('TEXT')).length === 4, 'four requests');
    assert.deepEqual(backend.bodies(cid).slice(1, 5), ['TEXT 1\r\na\r\n', 'TEXT 1\r\nb\r\n', 'TEXT 1\r\nc\r\n', 'TEXT 1\r\nd\r\n']);
    c.ws.close();
    await c.closed;
  });

  test('ws: malformed events from the backend close the client with 1011; others are unaffected', async () => {
    const other = connect(`${wsUrl}/chat`);
    await waitFor(() => other.texts().includes('welcome'), 'welcome');
    const c = connect(`${wsUrl}/malformed`);
    await c.opened;
    c.ws.send('x');
    assert.equal((await c.closed).code, 1011);
    const w = connect(`${wsUrl}/wrongtype`);
    await w.opened;
    w.ws.send('x');
    assert.equal((await w.closed).code, 1011);
    other.ws.send('ping');
    await waitFor(() => other.texts().includes('pong!'), 'other connection still works');
    other.ws.close();
    await other.closed;
  });

  test('ws: an oversized message closes with 1009, invalid UTF-8 with 1007', async () => {
    const big = connect(`${wsUrl}/chat`);
    await big.opened;
    big.ws.send(Buffer.alloc(1_000_001, 0x61));
    assert.equal((await big.closed).code, 1009);
    // A raw client sends a TEXT frame with invalid UTF-8 (masked, as clients must).
    const c = connect(`${wsUrl}/chat`);
    await c.opened;
    const sock = (c.ws as unknown as { _socket: net.Socket })._socket;
    const payload = Buffer.from([0xc3, 0x28]);
    sock.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]));
    assert.equal((await c.closed).code, 1007);
  });

  test('ws: an untrusted client posting application/websocket-events gets 403', async () => {
    const r = await fetch(`${gripd.url}/chat`, { method: 'POST', headers: { 'Content-Type': 'application/websocket-events' }, body: 'OPEN\r\n' });
    assert.equal(r.status, 403);
    assert.match(await r.text(), /not allowed/);
  });

  test('ws: a client that never reads is dropped once its buffer is full; others keep receiving', async () => {
    const reader = connect(`${wsUrl}/chat`);
    await waitFor(() => reader.texts().includes('welcome'), 'welcome');
    // A raw client completes the handshake and then never reads.
    const port = Number(new URL(gripd.url).port);
    const raw = net.connect(port, '127.0.0.1');
    raw.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await new Promise<void>((r) => raw.once('data', () => r()));
    raw.pause();
    const opens = backend.requests.filter((r) => r.body === 'OPEN\r\n');
    const cid = String(opens.at(-1)!.headers['connection-id']);
    const chunk = 'x'.repeat(200_000);
    let received = 0;
    reader.ws.on('message', () => received++);
    for (let i = 0; i < 200 && !backend.bodies(cid).includes('DISCONNECT\r\n'); i++) {
      await publish(gripd.publishUrl, [{ channel: 'room', formats: { 'ws-message': { content: chunk } } }]);
    }
    await waitFor(() => backend.bodies(cid).includes('DISCONNECT\r\n'), 'the stuck client dropped');
    await waitFor(() => received > 10, 'the reading client keeps receiving');
    raw.destroy();
    reader.ws.close();
    await reader.closed;
  });
});

describe('ws over_http: backend down', () => {
  test('ws: requests are retried with backoff while the backend is down; the client stays connected', async () => {
    const port = await freePort();
    let backend = await startWohBackend((r) => (r.body.startsWith('OPEN') ? OPEN_GRIP : { body: ev('TEXT', 'm:got it') }), port);
    const gripd = await startGripd({ routes: [`* 127.0.0.1:${port},over_http`] });
    try {
      const c = connect(gripd.url.replace(/^http/, 'ws') + '/x');
      await c.opened;
      await backend.close();
      c.ws.send('while down');
      await new Promise((r) => setTimeout(r, 300));
      backend = await startWohBackend((r) => (r.body.startsWith('OPEN') ? OPEN_GRIP : { body: ev('TEXT', 'm:got it') }), port);
      await waitFor(() => c.texts().includes('got it'), 'reply after the backend came back', 15_000);
      assert.ok(backend.requests.some((r) => r.body === 'TEXT a\r\nwhile down\r\n'));
      assert.equal(c.ws.readyState, 1);
      c.ws.close();
      await c.closed;
    } finally {
      await gripd.stop();
      await backend.close();
    }
  });
});
