/**
 * GRIP control messages over WebSocket-over-HTTP (keep-alive, send-delayed,
 * flush-delayed, set-meta, unsubscribe, filters), Content-Bytes-Accepted, and a backend
 * that hangs (in-process gripd with a short backend deadline).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Handler } from '../../src/handler/index.js';
import { createLogger } from '../../src/log/index.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.js';
import { parseRoutesText, RouteTable } from '../../src/routes/index.js';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { testConfig } from '../helpers/config.js';
import { freePort } from '../helpers/ports.js';
import { connect, ev, OPEN_GRIP, publish, startWohBackend, waitFor, type WohBackend, type WohReply, type WohRequest } from './ws-helpers.js';

const ctrl = (o: unknown): string => ev('TEXT', 'c:' + JSON.stringify(o));

function script(r: WohRequest): WohReply {
  const path = r.url.split('?')[0];
  if (r.body.startsWith('OPEN')) {
    const opens: Record<string, string> = {
      '/ka': ctrl({ type: 'keep-alive', content: 'ka!', timeout: 1 }),
      '/delayed': ctrl({ type: 'send-delayed', content: 'delayed!', timeout: 1 }),
      '/flush': ctrl({ type: 'send-delayed', content: 'flushed!', timeout: 600 }) + ctrl({ type: 'flush-delayed' }),
      '/meta': ctrl({ type: 'set-meta', name: 'room', value: 'blue' }),
      '/unsub': ctrl({ type: 'subscribe', channel: 'u1' }) + ctrl({ type: 'subscribe', channel: 'u2' }) + ctrl({ type: 'unsubscribe', channel: 'u1' }),
      '/skipself': ctrl({ type: 'set-meta', name: 'user', value: 'alice' }) + ctrl({ type: 'subscribe', channel: 'ss', filters: ['skip-self'] }),
      '/filters': ctrl({ type: 'subscribe', channel: 'f', filters: ['a', 'b', 'c', 'd', 'e', 'f'] }),
    };
    return { headers: { 'Sec-WebSocket-Extensions': 'grip' }, body: ev('OPEN') + (opens[path ?? ''] ?? '') };
  }
  if (path === '/partial' && r.body === 'TEXT 5\r\nhello\r\n') return { headers: { 'Content-Bytes-Accepted': '2' }, body: '' };
  return { body: '' };
}

describe('ws control messages', () => {
  let gripd: GripdInstance;
  let backend: WohBackend;
  let wsUrl: string;
  before(async () => {
    backend = await startWohBackend(script);
    gripd = await startGripd({ routes: [`* 127.0.0.1:${backend.port},over_http`] });
    wsUrl = gripd.url.replace(/^http/, 'ws');
  });
  after(async () => {
    await gripd.stop();
    await backend.close();
  });

  const lastCid = (): string => String(backend.requests.filter((r) => r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);

  test('control: keep-alive sends its message after the idle timeout, repeatedly', async () => {
    const c = connect(`${wsUrl}/ka`);
    await waitFor(() => c.texts().filter((t) => t === 'ka!').length >= 2, 'two keep-alives');
    c.ws.close();
    await c.closed;
  });

  test('control: send-delayed sends after its timeout; flush-delayed sends at once', async () => {
    const c = connect(`${wsUrl}/delayed`);
    await waitFor(() => c.texts().includes('delayed!'), 'delayed message');
    const f = connect(`${wsUrl}/flush`);
    await waitFor(() => f.texts().includes('flushed!'), 'flushed message', 5_000);
    c.ws.close();
    f.ws.close();
    await Promise.all([c.closed, f.closed]);
  });

  test('control: set-meta is sent back as Meta-* on later requests', async () => {
    const c = connect(`${wsUrl}/meta`);
    await c.opened;
    const cid = lastCid();
    c.ws.send('x');
    await waitFor(() => backend.requests.some((r) => r.headers['connection-id'] === cid && r.body.startsWith('TEXT')), 'TEXT request');
    const r = backend.requests.find((q) => q.headers['connection-id'] === cid && q.body.startsWith('TEXT'))!;
    assert.equal(r.headers['meta-room'], 'blue');
    c.ws.close();
    await c.closed;
  });

  test('control: unsubscribe leaves a channel', async () => {
    const c = connect(`${wsUrl}/unsub`);
    await c.opened;
    await waitFor(() => backend.requests.length > 0, 'open');
    await publish(gripd.publishUrl, [
      { channel: 'u1', formats: { 'ws-message': { content: 'one' } } },
      { channel: 'u2', formats: { 'ws-message': { content: 'two' } } },
    ]);
    await waitFor(() => c.texts().includes('two'), 'u2 message');
    assert.deepEqual(c.texts(), ['two']);
    c.ws.close();
    await c.closed;
  });

  test('control: the skip-self filter drops items whose sender is the connection user', async () => {
    const c = connect(`${wsUrl}/skipself`);
    await c.opened;
    await publish(gripd.publishUrl, [
      { channel: 'ss', meta: { sender: 'alice' }, formats: { 'ws-message': { content: 'mine' } } },
      { channel: 'ss', meta: { sender: 'bob' }, formats: { 'ws-message': { content: 'theirs' } } },
    ]);
    await waitFor(() => c.texts().includes('theirs'), 'bob message');
    assert.deepEqual(c.texts(), ['theirs']);
    c.ws.close();
    await c.closed;
  });

  test('control: more than 5 filters closes the connection, as Pushpin', async () => {
    const c = connect(`${wsUrl}/filters`);
    assert.equal((await c.closed).code, 1011);
  });

  test('Content-Bytes-Accepted: unaccepted content is sent again with Content-Bytes-Replayed', async () => {
    const c = connect(`${wsUrl}/partial`);
    await c.opened;
    const cid = lastCid();
    c.ws.send('hello');
    await waitFor(() => backend.bodies(cid).includes('TEXT 3\r\nllo\r\n'), 'replayed tail');
    const r = backend.requests.find((q) => q.headers['connection-id'] === cid && q.body === 'TEXT 3\r\nllo\r\n')!;
    assert.equal(r.headers['content-bytes-replayed'], '3');
    c.ws.close();
    await c.closed;
  });
});

describe('ws over_http: a backend that hangs', () => {
  let proxy: ProxyHandle;
  let handler: Handler;
  let backend: WohBackend;
  let port: number;
  before(async () => {
    backend = await startWohBackend((r) => {
      if (r.url === '/ids') return r.body.startsWith('OPEN') ? OPEN_GRIP : { body: '' };
      return r.url === '/hang-open' || !r.body.startsWith('OPEN') ? { hang: true } : OPEN_GRIP;
    });
    port = await freePort();
    const config = testConfig({ runner: { httpPorts: [{ host: '127.0.0.1', port }] } });
    const logger = createLogger({ level: 0, json: false, destination: new PassThrough().resume() });
    const table = new RouteTable(parseRoutesText(`* 127.0.0.1:${backend.port},over_http`, 'routes').routes);
    handler = new Handler({ config, logger, requester: { request: () => Promise.reject(new Error('unused')) } });
    proxy = await startProxy({
      config, logger, routes: () => table, acceptor: handler,
      testHandler: async () => ({ status: 404, reason: 'Not Found', headers: [], body: Buffer.alloc(0) }),
      backendTimeouts: { headersMs: 500 },
    });
  });
  after(async () => {
    await handler.stop();
    await proxy.close(100);
    await backend.close();
  });

  test('hang: OPEN unanswered in time refuses the handshake with 502', async () => {
    const c = connect(`ws://127.0.0.1:${port}/hang-open`);
    assert.equal((await c.rejected).status, 502);
  });

  test('hang: a request unanswered in time closes the client with 1011', async () => {
    const c = connect(`ws://127.0.0.1:${port}/x`);
    await c.opened;
    c.ws.send('anyone there?');
    assert.equal((await c.closed).code, 1011);
    await waitFor(() => handler.counters.heldWs === 0, 'connection deregistered');
  });

  test('by id: conncheck, refresh, sendToConnection and closeConnection address one connection', async () => {
    const c = connect(`ws://127.0.0.1:${port}/ids`);
    await c.opened;
    const cid = String(backend.requests.filter((r) => r.url === '/ids' && r.body === 'OPEN\r\n').at(-1)!.headers['connection-id']);
    await waitFor(() => handler.conncheck([cid]).length === 1, 'registered');
    assert.deepEqual(handler.conncheck([cid, 'nope']), [cid]);
    const before = backend.bodies(cid).length;
    handler.refresh({ cid });
    await waitFor(() => backend.bodies(cid).length === before + 1, 'refresh request');
    assert.equal(backend.bodies(cid).at(-1), '', 'a refresh is an empty request');
    assert.equal(handler.sendToConnection(cid, { type: 'text', content: Buffer.from('just you') }), true);
    await waitFor(() => c.texts().includes('just you'), 'direct message');
    assert.equal(handler.sendToConnection('nope', { type: 'text', content: Buffer.from('x') }), false);
    assert.equal(handler.closeConnection(cid, 4003, 'by id'), true);
    const closed = await c.closed;
    assert.deepEqual(closed, { code: 4003, reason: 'by id' });
    await waitFor(() => handler.conncheck([cid]).length === 0, 'deregistered');
  });
});

