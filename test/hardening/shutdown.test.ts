/**
 * Graceful shutdown: SIGTERM ends streams with the terminating chunk, answers held
 * long-polls with their timeout response, refuses new connections, and exits 0 within
 * a bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGripd } from '../helpers/gripd.js';
import { startBackend } from '../helpers/backend.js';
import { openStream, rawRequest, waitFor } from './util.js';

/** Bound on a graceful stop with idle held clients (gripd's own deadline is longer). */
const STOP_BOUND_MS = 8000;

test('shutdown: SIGTERM ends streams cleanly, answers long-polls with their timeout response, exits 0 in time', async () => {
  const backend = await startBackend((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'bye' });
      res.end('open\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'bye-lp', 'Grip-Timeout': '50' });
    res.end('lp timeout answer\n');
  });
  const g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  try {
    const streams = await Promise.all(Array.from({ length: 10 }, () => openStream(g.httpPort, '/stream')));
    for (const s of streams) await s.wait(/open\n/);
    const lps = Array.from({ length: 5 }, () => rawRequest(g.httpPort, 'GET /lp HTTP/1.1\r\nHost: a\r\n\r\n', { deadlineMs: 20_000 }));
    await waitFor('the long-poll holds', () => backend.requests.length >= 15);
    const started = Date.now();
    const code = await g.stop('SIGTERM');
    const took = Date.now() - started;
    assert.equal(code, 0);
    assert.ok(took < STOP_BOUND_MS, `stop took ${took} ms`);
    for (const s of streams) {
      await s.wait(/0\r\n\r\n$/, 5000);
      assert.ok(s.closed() || s.text().endsWith('0\r\n\r\n'));
    }
    for (const lp of lps) {
      const r = await lp;
      assert.match(r.text, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nlp timeout answer\n$/);
    }
    // Nothing listens any more.
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(g.httpPort, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(false); });
      s.once('error', () => resolve(true));
    });
    assert.ok(refused, 'the client port still accepts after exit');
  } finally {
    await g.stop().catch(() => undefined);
    await backend.close();
  }
});

test('shutdown: SIGINT behaves as SIGTERM (exit 0, streams terminated)', async () => {
  const backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'bye2' });
    res.end('open\n');
  });
  const g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  try {
    const s = await openStream(g.httpPort, '/stream');
    await s.wait(/open\n/);
    assert.equal(await g.stop('SIGINT'), 0);
    await s.wait(/0\r\n\r\n$/, 5000);
  } finally {
    await g.stop().catch(() => undefined);
    await backend.close();
  }
});
