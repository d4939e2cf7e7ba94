/**
 * WebSocket fan-out benchmark: C WebSocket clients connect through the proxy to an
 * `over_http` route; the WebSocket-over-HTTP backend (in this process) accepts OPEN with
 * the grip extension and subscribes each connection to one channel. Then M ws-message
 * publishes go out back to back; deliveries/s is counted from the first publish to the
 * last delivery (every client must get every message). gripd and Pushpin side by side:
 * gripd with its defaults, Pushpin with message_rate/message_hwm raised.
 *
 * Clients live in child processes (this file run with `--ws-child`), spread over
 * 127.0.0.x source addresses so 10 000 connections never run out of ephemeral ports.
 *
 *   node dist/bench/compare/ws-fanout.js [--quick] [--compare pushpin] [--runs 3]
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { startProxy, type ProxyServer, type ProxyKind } from '../lib/servers.js';
import { median, fmt, formatTable, sleep } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll, trackChild } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';

const CHANNEL = 'wsbench';
/** Client counts measured (the C values); --quick keeps the first. */
export const WS_CLIENT_COUNTS = [1_000, 5_000, 10_000];
/** Client processes the connections are spread over. */
const CLIENT_PROCS = 2;
/** Publishes per throughput phase (fewer with --quick). */
const PUBLISHES = 200;
const PUBLISHES_QUICK = 50;
/** Publish requests in flight at once. */
const PUBLISH_CONCURRENCY = 8;
/** Bound on opening every connection. */
const CONNECT_DEADLINE_MS = 120_000;
/** Bound on one warm-up or throughput phase. */
const PHASE_DEADLINE_MS = 120_000;
/** Connections opened at once per client process (a burst of handshakes). */
const CONNECT_BATCH = 200;
/** Bound on the warm-up publish reaching every connection. */
const WARMUP_DEADLINE_MS = 20_000;
/** Share of connections the warm-up must reach for the case to be measured. */
const WARMUP_MIN_SHARE = 0.99;
const POLL_MS = 20;

interface ChildStatus { opened: number; failed: number; received: number }

/** One C value on one server. */
export interface WsFanoutCase {
  server: string;
  clients: number;
  connected: number;
  connectSec: number;
  runs: Array<{ deliveriesPerSec: number; delivered: number; expected: number; cpuSec: number }>;
  median: { deliveriesPerSec: number; deliveriesPerCpuSec: number; deliveredPct: number };
  error?: string;
}

// ---------------------------------------------------------------------------------------
// Client child process.

async function childMain(url: string, count: number, srcAddr: string): Promise<void> {
  const st: ChildStatus = { opened: 0, failed: 0, received: 0 };
  const socks: WebSocket[] = [];
  process.on('message', (m: unknown) => {
    if (m === 'status') process.send?.(st);
    if (m === 'exit') {
      for (const s of socks) s.terminate();
      process.exit(0);
    }
  });
  for (let i = 0; i < count; i += CONNECT_BATCH) {
    const batch = Math.min(CONNECT_BATCH, count - i);
    await Promise.all(Array.from({ length: batch }, () => new Promise<void>((resolve) => {
      const ws = new WebSocket(url, { localAddress: srcAddr, perMessageDeflate: false });
      socks.push(ws);
      ws.on('open', () => { st.opened++; resolve(); });
      ws.on('message', () => { st.received++; });
      ws.on('error', () => { st.failed++; resolve(); });
    })));
  }
}

// ---------------------------------------------------------------------------------------
// Parent.

/** WebSocket-over-HTTP backend: OPEN with grip and a subscription; anything else: nothing. */
async function startWohBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const sub = `c:${JSON.stringify({ type: 'subscribe', channel: CHANNEL })}`;
  const openBody = Buffer.from(`OPEN\r\nTEXT ${Buffer.byteLength(sub).toString(16)}\r\n${sub}\r\n`);
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const open = Buffer.concat(chunks).subarray(0, 4).toString() === 'OPEN';
      const body = open ? openBody : Buffer.alloc(0);
      res.writeHead(200, {
        'Content-Type': 'application/websocket-events',
        ...(open ? { 'Sec-WebSocket-Extensions': 'grip' } : {}),
        'Content-Length': String(body.length),
      });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: PUBLISH_CONCURRENCY });

function publishWs(publishUrl: string, content: string): Promise<void> {
  const body = JSON.stringify({ items: [{ channel: CHANNEL, formats: { 'ws-message': { content } } }] });
  return new Promise((resolve, reject) => {
    const req = http.request(publishUrl + '/publish/', {
      method: 'POST', agent, timeout: 10_000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`publish answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('publish timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Longest wait for a client process's counts (it answers between socket batches). */
const STATUS_REPLY_TIMEOUT_MS = 30_000;

class Clients {
  private readonly kids: ChildProcess[] = [];
  private readonly replies = new Map<ChildProcess, (s: ChildStatus) => void>();

  constructor(url: string, total: number) {
    const self = fileURLToPath(import.meta.url);
    for (let i = 0; i < CLIENT_PROCS; i++) {
      const n = Math.floor(total / CLIENT_PROCS) + (i < total % CLIENT_PROCS ? 1 : 0);
      const kid = trackChild(fork(self, ['--ws-child', url, String(n), `127.0.0.${i + 2}`], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
      kid.on('message', (m) => { this.replies.get(kid)?.(m as ChildStatus); });
      this.kids.push(kid);
    }
  }

  /** Asks every client process for its counts; a process that does not answer in time fails the case instead of hanging the bench. */
  async status(): Promise<ChildStatus> {
    const all = await Promise.all(this.kids.map((k) => new Promise<ChildStatus>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client process ${k.pid} did not report within ${STATUS_REPLY_TIMEOUT_MS} ms`)), STATUS_REPLY_TIMEOUT_MS);
      this.replies.set(k, (st) => {
        clearTimeout(timer);
        resolve(st);
      });
      k.send('status');
    })));
    return all.reduce((a, s) => ({ opened: a.opened + s.opened, failed: a.failed + s.failed, received: a.received + s.received }), { opened: 0, failed: 0, received: 0 });
  }

  async waitFor(pred: (s: ChildStatus) => boolean, deadlineMs: number): Promise<ChildStatus> {
    const end = Date.now() + deadlineMs;
    let s = await this.status();
    while (!pred(s) && Date.now() < end) {
      await sleep(POLL_MS);
      s = await this.status();
    }
    return s;
  }

  async close(): Promise<void> {
    for (const k of this.kids) k.send('exit');
    await sleep(500);
    for (const k of this.kids) k.kill('SIGKILL');
  }
}

async function measure(o: BenchOptions, server: ProxyServer, clientsN: number): Promise<WsFanoutCase> {
  const c: WsFanoutCase = { server: server.kind, clients: clientsN, connected: 0, connectSec: NaN, runs: [], median: { deliveriesPerSec: NaN, deliveriesPerCpuSec: NaN, deliveredPct: NaN } };
  const t0 = Date.now();
  const clients = new Clients(server.url.replace(/^http/, 'ws') + '/ws', clientsN);
  try {
    const s = await clients.waitFor((x) => x.opened + x.failed >= clientsN, CONNECT_DEADLINE_MS);
    c.connected = s.opened;
    c.connectSec = (Date.now() - t0) / 1000;
    if (s.opened === 0) throw new Error(`no connection opened (${s.failed} failed)`);
    // Warm-up: one publish reaches everyone (subscriptions are in place).
    let base = s.received;
    await publishWs(server.publishUrl, 'warmup');
    const w = await clients.waitFor((x) => x.received - base >= c.connected, WARMUP_DEADLINE_MS);
    // A server that loses a few deliveries is still measured; the table shows delivered %.
    if (w.received - base < c.connected * WARMUP_MIN_SHARE) throw new Error(`warm-up reached ${w.received - base} of ${c.connected}`);
    const m = o.quick ? PUBLISHES_QUICK : PUBLISHES;
    const payload = 'x'.repeat(64);
    for (let run = 0; run < o.runs; run++) {
      base = (await clients.status()).received;
      const expected = m * c.connected;
      const cpu0 = server.sample().cpuSec;
      const start = process.hrtime.bigint();
      let next = 0;
      await Promise.all(Array.from({ length: PUBLISH_CONCURRENCY }, async () => {
        while (next < m) { next++; await publishWs(server.publishUrl, payload); }
      }));
      const done = await clients.waitFor((x) => x.received - base >= expected, PHASE_DEADLINE_MS);
      const sec = Number(process.hrtime.bigint() - start) / 1e9;
      const delivered = done.received - base;
      const cpuSec = server.sample().cpuSec - cpu0;
      c.runs.push({ deliveriesPerSec: delivered / sec, delivered, expected, cpuSec });
    }
    c.median = {
      deliveriesPerSec: median(c.runs.map((r) => r.deliveriesPerSec)),
      deliveriesPerCpuSec: median(c.runs.map((r) => (r.cpuSec > 0 ? r.delivered / r.cpuSec : NaN))),
      deliveredPct: median(c.runs.map((r) => (100 * r.delivered) / r.expected)),
    };
  } catch (err) {
    c.error = (err as Error).message;
  } finally {
    await clients.close();
  }
  return c;
}

/** Runs the scenario for every server in `o.servers`; the table quotes medians. */
export async function runWsFanout(o: BenchOptions): Promise<ScenarioResult> {
  const backend = await startWohBackend();
  const counts = o.quick ? WS_CLIENT_COUNTS.slice(0, 1) : WS_CLIENT_COUNTS;
  const cases: WsFanoutCase[] = [];
  try {
    for (const kind of o.servers as ProxyKind[]) {
      for (const n of counts) {
        // gripd with its defaults (no message_rate: no delivery queue); Pushpin with its
        // rate limits raised (its defaults cap every fan-out at 2 500 deliveries/s).
        const server = await startProxy(kind, { routes: [`* 127.0.0.1:${backend.port},over_http`], raiseRateLimits: kind === 'pushpin', workers: o.gripdWorkers });
        try {
          cases.push(await measure(o, server, n));
        } finally {
          agent.destroy();
          await server.stop();
        }
      }
    }
  } finally {
    await backend.close();
  }
  const rows = cases.map((c) => [
    c.server, String(c.clients), String(c.connected), fmt(c.connectSec, 1), fmt(c.median.deliveriesPerSec), fmt(c.median.deliveriesPerCpuSec),
    fmt(c.median.deliveredPct, 1), c.error ?? '',
  ]);
  const text = 'ws-fanout (over_http clients on one channel; medians of ' + o.runs + ' runs)\n'
    + formatTable(['server', 'C', 'connected', 'connect s', 'deliveries/s', 'deliv/CPU-s', 'delivered %', 'error'], rows);
  return { scenario: 'ws-fanout', text, data: cases };
}

if (process.argv[2] === '--ws-child') {
  childMain(process.argv[3] ?? '', Number(process.argv[4] ?? '0'), process.argv[5] ?? '127.0.0.1').catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const o = parseBenchArgs(process.argv.slice(2));
  runWsFanout(o).then((r) => {
    console.log(r.text);
    process.exit(0);
  }, (err: unknown) => {
    console.error((err as Error).message);
    killAll();
    process.exit(1);
  });
}
