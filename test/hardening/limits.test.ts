/**
 * Every documented limit through the CLI: exceeding it gives the documented answer (and
 * a log line where docs/reliability.md says so), and a normal request works afterwards.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zmq from 'zeromq';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { rawRequest, get, publish, waitFor, openStream } from './util.js';

/** Sends a raw publish request and returns the reply text. */
async function rawPublish(port: number, data: string): Promise<string> {
  return (await rawRequest(port, data, { deadlineMs: 5000 })).text;
}

describe('hardening: client limits', () => {
  let backend: Backend;
  let g: GripdInstance;
  before(async () => {
    backend = await startBackend((req, res, body) => {
      if (req.url?.startsWith('/grip')) {
        res.writeHead(200, { 'Grip-Hold': 'response', 'Grip-Channel': 'lim', 'Grip-Timeout': '5', 'Content-Type': 'text/plain' });
        res.end('timeout\n');
        return;
      }
      if (req.url?.startsWith('/channels')) {
        const n = Number(new URL(req.url, 'http://x').searchParams.get('n'));
        res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': Array.from({ length: n }, (_, i) => `many-${i}`).join(', '), 'Content-Type': 'text/plain' });
        res.end('start\n');
        return;
      }
      if (req.url?.startsWith('/filters')) {
        const n = Number(new URL(req.url, 'http://x').searchParams.get('n'));
        const filters = Array.from({ length: n }, () => 'skip-self').map((f) => `filter=${f}`).join('; ');
        res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': `filt; ${filters}`, 'Content-Type': 'text/plain' });
        res.end('start\n');
        return;
      }
      res.end(`ok ${body.length}`);
    });
    g = await startGripd({
      routes: [`* 127.0.0.1:${backend.port}`],
      sections: { runner: ['client_maxconn=8', 'client_buffer_size=4096'], handler: ['push_in_http_max_body_size=20000', 'push_in_http_max_headers_size=2000'] },
    });
  });
  after(async () => { await g.stop(); await backend.close(); });

  test('limit client_maxconn: connections beyond it are closed at accept, logged, and service resumes', async () => {
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const s = net.connect(g.httpPort, '127.0.0.1');
        s.on('error', () => undefined);
        await new Promise((r) => s.once('connect', r));
        socks.push(s);
      }
      // The ninth gets no answer at all, only a close.
      let extra = { text: '', closed: false };
      await waitFor('a refused connection', async () => {
        extra = await rawRequest(g.httpPort, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { deadlineMs: 2000 });
        return extra.closed && extra.text === '';
      });
      await waitFor('the client_maxconn log line', () => g.output().includes('client_maxconn'));
    } finally {
      for (const s of socks) s.destroy();
    }
    await waitFor('service after the flood', async () => {
      try { return (await get(`${g.url}/x`)).body === 'ok 0'; } catch { return false; }
    });
  });

  test('limit client_buffer_size: a bigger head gets 431 and never reaches the backend', async () => {
    const before = backend.requests.length;
    const r = await rawRequest(g.httpPort, `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
    assert.equal(backend.requests.length, before);
    assert.equal((await get(`${g.url}/x`)).body, 'ok 0');
  });

  test('limit MAX_CLIENT_HEADERS (64, as Pushpin): 65 header fields are a 400 and never reach the backend (regression: Node dropped fields past its own count silently)', async () => {
    const before = backend.requests.length;
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `x-h${i}: v`).join('\r\n');
    const over = await rawRequest(g.httpPort, `GET /over HTTP/1.1\r\nHost: a\r\n${fields(64)}\r\n\r\n`);
    assert.match(over.text, /^HTTP\/1\.1 400 /);
    assert.equal(backend.requests.length, before);
    const at = await rawRequest(g.httpPort, `GET /at HTTP/1.1\r\nHost: a\r\n${fields(63)}\r\nConnection: close\r\n\r\n`.replace(`x-h62: v\r\n`, ''));
    assert.match(at.text, /^HTTP\/1\.1 200 /);
    assert.equal((await get(`${g.url}/x`)).body, 'ok 0');
  });

  test('limit header count: many small headers are bounded by client_buffer_size (431)', async () => {
    const headers = Array.from({ length: 1500 }, (_, i) => `h${i}: v`).join('\r\n');
    const r = await rawRequest(g.httpPort, `GET /many HTTP/1.1\r\nHost: a\r\n${headers}\r\n\r\n`);
    assert.match(r.text, /^HTTP\/1\.1 431 /);
    assert.equal((await get(`${g.url}/x`)).body, 'ok 0');
  });

  test('limit request body on a GRIP answer (MAX_GRIP_REQUEST_BODY = 100 000): 400, then normal service', async () => {
    const r = await fetch(`${g.url}/grip`, { method: 'POST', body: Buffer.alloc(100_001, 0x61), signal: AbortSignal.timeout(10_000) });
    assert.equal(r.status, 400);
    await r.text();
    // A plain (non-GRIP) upload of the same size streams through untouched.
    const plain = await fetch(`${g.url}/upload`, { method: 'POST', body: Buffer.alloc(300_000, 0x61), signal: AbortSignal.timeout(10_000) });
    assert.equal(await plain.text(), 'ok 300000');
  });

  test('limit connection_subscription_max (20): channels past it are not subscribed', async () => {
    const s = await openStream(g.httpPort, '/channels?n=25');
    try {
      await s.wait(/start\n/);
      await waitFor('subscription', async () => (await publish(g.publishUrl, [{ channel: 'many-0', formats: { 'http-stream': { content: 'probe\n' } } }])).status === 200 && s.text().includes('probe'));
      assert.equal((await publish(g.publishUrl, [
        { channel: 'many-24', formats: { 'http-stream': { content: 'beyond\n' } } },
        { channel: 'many-19', formats: { 'http-stream': { content: 'within\n' } } },
      ])).status, 200);
      await s.wait(/within\n/);
      assert.ok(!s.text().includes('beyond'), 'a channel past connection_subscription_max was subscribed');
    } finally { s.close(); }
  });

  test('limit filters per channel (MAX_FILTERS_PER_CHANNEL = 5): more is a 502', async () => {
    const ok = await openStream(g.httpPort, '/filters?n=5');
    try { await ok.wait(/start\n/); } finally { ok.close(); }
    const r = await get(`${g.url}/filters?n=6`);
    assert.equal(r.status, 502);
    assert.equal((await get(`${g.url}/x`)).body, 'ok 0');
  });

  test('limit push_in_http_max_body_size: a bigger publish body is a 400, then publishing works', async () => {
    const body = JSON.stringify({ items: [{ channel: 'x', formats: { 'http-stream': { content: 'a'.repeat(25_000) } } }] });
    const text = await rawPublish(g.publishPort, `POST /publish/ HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.equal((await publish(g.publishUrl, [{ channel: 'x', formats: { 'http-stream': { content: 'a' } } }])).status, 200);
  });

  test('limit push_in_http_max_headers_size: a bigger publish head is refused, then publishing works', async () => {
    const text = await rawPublish(g.publishPort, `POST /publish/ HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(3000)}\r\nContent-Length: 2\r\n\r\n{}`);
    assert.match(text, /^HTTP\/1\.1 4\d\d /);
    assert.equal((await publish(g.publishUrl, [{ channel: 'x', formats: { 'http-stream': { content: 'a' } } }])).status, 200);
  });

  test('limit MAX_ITEMS_PER_PUBLISH (1 000) and MAX_CHANNEL_NAME_BYTES (1 024): 400 naming the field', async () => {
    const many = await publish(g.publishUrl, Array.from({ length: 1001 }, () => ({ channel: 'x', formats: { 'http-stream': { content: '' } } })));
    // 1 001 tiny items fit under the 20 000-byte body limit only if small; either limit gives 400.
    assert.equal(many.status, 400);
    const long = await publish(g.publishUrl, [{ channel: 'c'.repeat(1025), formats: { 'http-stream': { content: 'a' } } }]);
    assert.equal(long.status, 400);
    assert.match(long.body, /channel/);
    assert.equal((await publish(g.publishUrl, [{ channel: 'x', formats: { 'http-stream': { content: 'a' } } }])).status, 200);
  });
});

describe('hardening: publish item count at the default body limit', () => {
  let g: GripdInstance;
  before(async () => { g = await startGripd({}); });
  after(async () => { await g.stop(); });

  test('limit MAX_ITEMS_PER_PUBLISH: 1 001 items is a 400 naming items; 1 000 is accepted', async () => {
    const item = { channel: 'x', formats: { 'http-stream': { content: '' } } };
    const over = await publish(g.publishUrl, Array.from({ length: 1001 }, () => item));
    assert.equal(over.status, 400);
    assert.match(over.body, /items/);
    assert.equal((await publish(g.publishUrl, Array.from({ length: 1000 }, () => item))).status, 200);
  });
});

describe('hardening: ZeroMQ frame limit', () => {
  let g: GripdInstance;
  before(async () => { g = await startGripd({}); });
  after(async () => { await g.stop(); });

  test('limit MAX_PUBLISH_MESSAGE_BYTES (64 MiB): a bigger PULL frame is dropped, the socket keeps serving', async () => {
    const push = new zmq.Push({ linger: 0 });
    push.connect(`tcp://127.0.0.1:${g.pullPort}`);
    try {
      const s = await openStream(g.httpPort, '/stream?channel=zlim');
      try {
        await s.wait(/stream opened/);
        // Oversized: libzmq drops the peer connection instead of delivering it.
        const big = Buffer.alloc(64 * 1024 * 1024 + 16, 0x20);
        big.write('J{"channel":"zlim","formats":{"http-stream":{"content":"huge"}}}');
        await push.send(big);
        // The PUSH socket reconnects; a normal frame is then delivered.
        const small = 'J' + JSON.stringify({ channel: 'zlim', formats: { 'http-stream': { content: 'small\n' } } });
        await waitFor('a normal frame after the oversized one', async () => {
          await push.send(small);
          return s.text().includes('small');
        }, 20_000);
        assert.ok(!s.text().includes('huge'));
      } finally { s.close(); }
    } finally { push.close(); }
  });
});
