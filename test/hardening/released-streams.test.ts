/**
 * Soak suspect, ruled out: stream holds whose HTTP parser was released
 * (src/proxy/listeners.ts releaseHttpParser) must not be closed by node:http's own
 * connection checking. The 10-minute soak saw 38 stream/SSE connections reset by gripd;
 * one theory was that node's headersTimeout / keepAliveTimeout (checked every
 * connectionsCheckingInterval) still applied to released sockets, or hit them through a
 * freed parser that node reused for a later connection. This pins the behaviour with the
 * timeouts scaled down: held streams outlive several headers and keep-alive timeouts
 * while later connections reuse the freed parsers and time out themselves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { releaseHttpParser } from '../../src/proxy/listeners.js';

/** Held streams opened (each releases its parser). */
const HELD = 100;
/** Scaled-down node:http timeouts; the test outlives each of them several times. */
const HEADERS_TIMEOUT_MS = 400;
const KEEP_ALIVE_TIMEOUT_MS = 500;
const CHECK_INTERVAL_MS = 100;
/** How long the held streams must survive (several timeouts' worth). */
const SURVIVE_MS = 2500;
/** Upper bound on churned connections (each may reuse a freed parser). */
const CHURN_MAX = 400;

test('regression: released stream holds survive node:http headers/keep-alive timeouts and parser reuse', { timeout: 30_000 }, async () => {
  const server = http.createServer({
    keepAlive: true, requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, connectionsCheckingInterval: CHECK_INTERVAL_MS,
  });
  let released = 0;
  let timeouts = 0;
  server.on('request', (req, res) => {
    if (req.url === '/plain') {
      res.end('ok');
      return;
    }
    // As a stream hold once the backend has answered (the request is complete by then):
    // the head is written on the raw socket, then the parser is released.
    setImmediate(() => {
      res.socket!.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
      if (releaseHttpParser(req, res)) released++;
    });
  });
  server.on('clientError', (err: Error & { code?: string }, s: net.Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') timeouts++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const held: net.Socket[] = [];
  const churned: net.Socket[] = [];
  let heldClosed = 0;
  try {
    let heads = 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${heads} of ${HELD} stream heads arrived`)), 10_000);
      for (let i = 0; i < HELD; i++) {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n'));
        let got = false;
        s.on('data', () => {
          if (got) return;
          got = true;
          if (++heads === HELD) { clearTimeout(t); resolve(); }
        });
        s.on('error', () => undefined);
        s.on('close', () => { heldClosed++; });
        held.push(s);
      }
    });
    assert.equal(released, HELD, 'every stream released its parser');
    // Meanwhile later connections reuse the freed parsers: half go idle after a complete
    // request (keep-alive timeout), half stop mid-header (headers timeout).
    const until = Date.now() + SURVIVE_MS;
    for (let i = 0; i < CHURN_MAX && Date.now() < until; i++) {
      const k = net.connect(port, '127.0.0.1', () => k.write(i % 2 === 0 ? 'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n' : 'GET /plain HTTP/1.1\r\nHo'));
      k.on('error', () => undefined);
      k.resume();
      churned.push(k);
      await new Promise((r) => setTimeout(r, 10));
    }
    const rest = until - Date.now();
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    assert.ok(timeouts > 0, 'the connection check ran and timed out churned connections');
    assert.equal(heldClosed, 0, `${heldClosed} released stream connections were closed by the server`);
    // And they still carry data both ways: the server can write to each.
    for (const s of held) assert.equal(s.destroyed, false);
  } finally {
    for (const s of [...held, ...churned]) s.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
