/**
 * Faults: a backend that crashes mid-answer or restarts, a ZeroMQ publisher that
 * vanishes mid-message, a routes file replaced by garbage, SIGHUP under load. Held
 * clients stay connected (a backend restart never disconnects them) and a reload never
 * drops a connection.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import zmq from 'zeromq';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';
import { get, publish, waitFor, openStream, rawRequest, type OpenStream } from './util.js';

/** A GRIP backend on a fixed port that can be killed and restarted. */
class Restartable {
  server: http.Server | undefined;
  requests = 0;
  constructor(readonly port: number) {}
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      this.requests++;
      if (req.url === '/crash') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 50);
        return;
      }
      if (req.url?.startsWith('/stream')) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': 'faults' });
        res.end('open\n');
        return;
      }
      if (req.url?.startsWith('/lp')) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'faults-lp', 'Grip-Timeout': '20' });
        res.end('lp-timeout\n');
        return;
      }
      res.end('ok');
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
  }
  async kill(): Promise<void> {
    const s = this.server;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
    this.server = undefined;
  }
}

describe('hardening: backend faults', () => {
  let backend: Restartable;
  let g: GripdInstance;
  before(async () => {
    backend = new Restartable(await freePort());
    await backend.start();
    g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  });
  after(async () => { await g.stop(); await backend.kill(); });

  test('faults: a backend that crashes mid-answer ends that client only; others are served', async () => {
    const r = await rawRequest(g.httpPort, 'GET /crash HTTP/1.1\r\nHost: a\r\n\r\n', { deadlineMs: 5000 });
    assert.match(r.text, /^HTTP\/1\.1 200 /);
    assert.ok(r.closed, 'the client connection should be closed when the backend dies mid-body');
    assert.ok(!/\r\n0\r\n\r\n$/.test(r.text), 'a cut-short body must not look complete');
    assert.equal((await get(`${g.url}/x`)).body, 'ok');
  });

  test('faults: held streams and long-polls survive a backend restart and keep receiving publishes', async () => {
    const streams: OpenStream[] = [];
    const base = backend.requests;
    try {
      for (let i = 0; i < 5; i++) streams.push(await openStream(g.httpPort, '/stream'));
      for (const s of streams) await s.wait(/open\n/);
      const lp = rawRequest(g.httpPort, 'GET /lp HTTP/1.1\r\nHost: a\r\n\r\n', { deadlineMs: 15_000, until: /after-restart/ });
      // update_on_first_subscription (Pushpin's default: on) refreshes the new long-poll
      // channel against the backend after a second; let that happen before the outage.
      await waitFor('the long-poll hold and its first-subscription refresh', () => backend.requests >= base + 7);
      await backend.kill();
      // While the backend is down: new requests fail, held clients stay.
      assert.equal((await get(`${g.url}/x`)).status, 502);
      assert.equal((await publish(g.publishUrl, [{ channel: 'faults', formats: { 'http-stream': { content: 'during-outage\n' } } }])).status, 200);
      for (const s of streams) await s.wait(/during-outage\n/);
      await backend.start();
      assert.equal((await get(`${g.url}/x`)).body, 'ok');
      assert.equal((await publish(g.publishUrl, [
        { channel: 'faults', formats: { 'http-stream': { content: 'after-restart\n' } } },
        { channel: 'faults-lp', formats: { 'http-response': { body: 'after-restart\n' } } },
      ])).status, 200);
      for (const s of streams) { await s.wait(/after-restart\n/); assert.equal(s.closed(), false); }
      assert.match((await lp).text, /^HTTP\/1\.1 200 [\s\S]*after-restart/);
    } finally { for (const s of streams) s.close(); }
  });

  test('faults: an unreachable backend is a 502 and gripd recovers when it returns', async () => {
    await backend.kill();
    try {
      assert.equal((await get(`${g.url}/x`)).status, 502);
    } finally { await backend.start(); }
    assert.equal((await get(`${g.url}/x`)).body, 'ok');
  });
});

describe('hardening: ZeroMQ and routes faults', () => {
  let backend: Restartable;
  let g: GripdInstance;
  before(async () => {
    backend = new Restartable(await freePort());
    await backend.start();
    g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  });
  after(async () => { await g.stop(); await backend.kill(); });

  test('faults: a ZeroMQ publisher that vanishes mid-message leaves the PULL socket serving', async () => {
    const s = await openStream(g.httpPort, '/stream');
    try {
      await s.wait(/open\n/);
      // A raw ZMTP 3.0 peer: greeting, READY as PUSH, then half a message frame, then gone.
      for (let round = 0; round < 5; round++) {
        const raw = net.connect(g.pullPort, '127.0.0.1');
        raw.on('error', () => undefined);
        await new Promise((r) => raw.once('connect', r));
        const greeting = Buffer.alloc(64);
        greeting[0] = 0xff; greeting[9] = 0x7f; greeting[10] = 3; greeting[11] = 0;
        greeting.write('NULL', 12, 'latin1');
        const props = Buffer.concat([Buffer.from([11]), Buffer.from('Socket-Type'), Buffer.from([0, 0, 0, 4]), Buffer.from('PUSH')]);
        const readyBody = Buffer.concat([Buffer.from([5]), Buffer.from('READY'), props]);
        const ready = Buffer.concat([Buffer.from([0x04, readyBody.length]), readyBody]);
        const frameHead = Buffer.from([0x00, 200]);
        raw.write(Buffer.concat([greeting, ready, frameHead, Buffer.from('J{"channel":"faults","formats":{"http-str')]));
        await new Promise((r) => setTimeout(r, 50));
        raw.destroy();
      }
      const push = new zmq.Push({ linger: 0 });
      push.connect(`tcp://127.0.0.1:${g.pullPort}`);
      try {
        await waitFor('a whole message after the broken ones', async () => {
          await push.send('J' + JSON.stringify({ channel: 'faults', formats: { 'http-stream': { content: 'zmq-ok\n' } } }));
          return s.text().includes('zmq-ok');
        }, 15_000);
      } finally { push.close(); }
      assert.equal(g.proc.exitCode, null);
    } finally { s.close(); }
  });

  test('faults: a routes file replaced with garbage keeps the running table; the bad lines are logged as file:line', async () => {
    await writeFile(g.routesFile, '\u0000\u00ff garbage "unterminated\n,,,, ,\n* \n');
    await waitFor('the file:line diagnostics', () => g.output().includes(`${g.routesFile}:1:`), 10_000);
    await waitFor('the keep-routes notice', () => g.output().includes('keeping the running routes'), 10_000);
    assert.equal((await get(`${g.url}/x`)).body, 'ok');
  });

  test('faults: SIGHUP with a garbage routes file keeps the running table', async () => {
    await writeFile(g.routesFile, '\u0000 garbage\n');
    await waitFor('the keep-routes notice', () => (g.output().match(/keeping the running routes/g) ?? []).length >= 2, 10_000).catch(() => undefined);
    const before = (g.output().match(/configuration reloaded/g) ?? []).length;
    process.kill(g.proc.pid!, 'SIGHUP');
    await waitFor('the reload', () => (g.output().match(/configuration reloaded/g) ?? []).length > before, 10_000);
    try {
      assert.equal((await get(`${g.url}/x`)).body, 'ok');
    } finally {
      await writeFile(g.routesFile, `* 127.0.0.1:${backend.port}\n`);
      process.kill(g.proc.pid!, 'SIGHUP');
      await waitFor('routes restored', async () => (await get(`${g.url}/x`)).body === 'ok', 10_000);
    }
  });

  test('faults: SIGHUP under load drops no connection and no request', async () => {
    // A valid routes file (an earlier test may have left garbage in it).
    await writeFile(g.routesFile, `* 127.0.0.1:${backend.port}\n`);
    process.kill(g.proc.pid!, 'SIGHUP');
    await waitFor('routes in place', async () => (await get(`${g.url}/x`)).body === 'ok', 10_000);
    const streams: OpenStream[] = [];
    try {
      for (let i = 0; i < 20; i++) streams.push(await openStream(g.httpPort, '/stream'));
      for (const s of streams) await s.wait(/open\n/);
      let failures = 0;
      let done = 0;
      let stop = false;
      const load = (async () => {
        const workers = Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 2000 && !stop; i++) {
            try { if ((await get(`${g.url}/x`)).body !== 'ok') failures++; } catch { failures++; }
            done++;
          }
        });
        await Promise.all(workers);
      })();
      for (let i = 0; i < 5; i++) {
        process.kill(g.proc.pid!, 'SIGHUP');
        await new Promise((r) => setTimeout(r, 200));
      }
      await waitFor('five reloads', () => (g.output().match(/configuration reloaded/g) ?? []).length >= 5, 10_000);
      stop = true;
      await load;
      assert.ok(done > 0);
      assert.equal(failures, 0, `${failures} of ${done} requests failed across SIGHUPs`);
      assert.equal((await publish(g.publishUrl, [{ channel: 'faults', formats: { 'http-stream': { content: 'after-hup\n' } } }])).status, 200);
      for (const s of streams) { await s.wait(/after-hup\n/); assert.equal(s.closed(), false); }
    } finally { for (const s of streams) s.close(); }
  });
});
