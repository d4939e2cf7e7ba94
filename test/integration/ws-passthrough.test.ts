/**
 * WebSocket pass-through (routes without over_http) with the GRIP extension, and the
 * test handler's /ws, through gripd started via its CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { connect, publish, waitFor } from './ws-helpers.js';

interface PtBackend {
  port: number;
  /** Handshake headers seen, per path. */
  handshakes: Array<{ url: string; headers: http.IncomingHttpHeaders }>;
  /** Close codes/reasons the backend saw from gripd. */
  closes: Array<{ code: number; reason: string }>;
  received: string[];
  close(): Promise<void>;
}

async function startPtBackend(): Promise<PtBackend> {
  const handshakes: PtBackend['handshakes'] = [];
  const closes: PtBackend['closes'] = [];
  const received: string[] = [];
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on('headers', (headers, req) => {
    const offered = String(req.headers['sec-websocket-extensions'] ?? '');
    if (req.url === '/grip' && offered.split(',').some((e) => e.trim().split(';')[0] === 'grip')) headers.push('Sec-WebSocket-Extensions: grip');
    if (req.url === '/prefix') headers.push('Sec-WebSocket-Extensions: grip; message-prefix="p:"');
  });
  server.on('upgrade', (req, socket, head) => {
    handshakes.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnope!');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
      ws.on('message', (d, isBinary) => {
        const m = d.toString();
        received.push(m);
        if (m === 'close-me') ws.close(4002, 'pt bye');
        else if (req.url === '/prefix') ws.send(`p:echo:${m}`);
        else if (req.url === '/grip') ws.send(`m:echo:${m}`);
        else ws.send(d as Buffer, { binary: isBinary });
      });
      if (req.url === '/grip') {
        ws.send('c:' + JSON.stringify({ type: 'subscribe', channel: 'pt' }));
        ws.send('m:hello');
        ws.send('noprefix');
      } else if (req.url === '/prefix') {
        ws.send('p:prefixed');
        ws.send('m:dropped');
      } else {
        ws.send('c:not control');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    handshakes, closes, received,
    close: () => new Promise<void>((r) => { wss.close(); server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('ws pass-through', () => {
  let gripd: GripdInstance;
  let backend: PtBackend;
  let wsUrl: string;
  before(async () => {
    backend = await startPtBackend();
    gripd = await startGripd({ routes: [`*,path_beg=/t test`, `* 127.0.0.1:${backend.port}`] });
    wsUrl = gripd.url.replace(/^http/, 'ws');
  });
  after(async () => {
    await gripd.stop();
    await backend.close();
  });

  test('passthrough: gripd offers grip; control messages act, prefixed ones lose the prefix, unprefixed are dropped', async () => {
    const c = connect(`${wsUrl}/grip`);
    const res = await c.opened;
    assert.equal(res.headers['sec-websocket-extensions'], undefined, 'the extension never reaches the client');
    await waitFor(() => c.texts().includes('hello'), 'hello');
    const hs = backend.handshakes.find((h) => h.url === '/grip')!;
    assert.match(String(hs.headers['sec-websocket-extensions']), /^grip/);
    assert.match(String(hs.headers['grip-sig']), /^ey/);
    await publish(gripd.publishUrl, [{ channel: 'pt', formats: { 'ws-message': { content: 'published' } } }]);
    await waitFor(() => c.texts().includes('published'), 'publish through the grip subscription');
    c.ws.send('yo');
    await waitFor(() => c.texts().includes('echo:yo'), 'echo');
    assert.deepEqual(c.texts(), ['hello', 'published', 'echo:yo']);
    c.ws.close(1000, 'client done');
    await c.closed;
    await waitFor(() => backend.closes.some((x) => x.code === 1000 && x.reason === 'client done'), 'close reaches the backend');
  });

  test('passthrough: a custom message-prefix is honoured', async () => {
    const c = connect(`${wsUrl}/prefix`);
    c.ws.on('open', () => c.ws.send('x'));
    await waitFor(() => c.texts().includes('echo:x'), 'prefixed echo');
    assert.deepEqual(c.texts(), ['prefixed', 'echo:x']);
    c.ws.close();
    await c.closed;
  });

  test('passthrough: without the extension messages pass unchanged, binary included, and backend close codes reach the client', async () => {
    const c = connect(`${wsUrl}/plain`);
    await waitFor(() => c.texts().includes('c:not control'), 'unprefixed message');
    c.ws.send(Buffer.from([1, 2, 3]));
    await waitFor(() => c.messages.some((m) => m.binary), 'binary echo');
    c.ws.send('close-me');
    const closed = await c.closed;
    assert.equal(closed.code, 4002);
    assert.equal(closed.reason, 'pt bye');
  });

  test('passthrough: a backend refusing the handshake refuses the client with its status and body', async () => {
    const c = connect(`${wsUrl}/refuse`);
    const r = await c.rejected;
    assert.equal(r.status, 401);
    assert.equal(r.body, 'nope!');
  });

  test('passthrough: a client that vanishes closes the backend connection', async () => {
    const before = backend.closes.length;
    const c = connect(`${wsUrl}/plain`);
    await waitFor(() => c.texts().length > 0, 'first message');
    c.ws.terminate();
    await waitFor(() => backend.closes.length > before, 'backend sees the close');
  });

  test('test handler: /ws echoes and receives publishes on channel test (or ?channel=)', async () => {
    const c = connect(`${wsUrl}/t/ws`);
    await c.opened;
    c.ws.send('echo me');
    await waitFor(() => c.texts().includes('echo me'), 'echo');
    const d = connect(`${wsUrl}/t/ws?channel=other`);
    await d.opened;
    await publish(gripd.publishUrl, [
      { channel: 'test', formats: { 'ws-message': { content: 'to test' } } },
      { channel: 'other', formats: { 'ws-message': { content: 'to other' } } },
    ]);
    await waitFor(() => c.texts().includes('to test') && d.texts().includes('to other'), 'publishes');
    assert.ok(!c.texts().includes('to other'));
    const missing = connect(`${wsUrl}/t/nope`);
    assert.equal((await missing.rejected).status, 404);
    c.ws.close();
    d.ws.close();
    await Promise.all([c.closed, d.closed]);
  });
});
