/**
 * New long-poll holds per second through a backend. Per run, a fresh proxy; L lanes
 * (`--connections`, default 64) each loop: open a new connection from 127.0.0.31–34, send
 * `GET /hold?channel=h<run>-<k>` on a channel no one else uses; the backend (in this
 * process) answers `Grip-Hold: response`, `Grip-Channel`, `Grip-Timeout: 300`, and the
 * lane moves on to the next hold once the backend has answered. The held connection stays
 * open. Opening stops after the window (`--holds-window`, default 5 s; 2 with --quick) or
 * at MAX_HOLDS_PER_RUN.
 *
 * Then every channel the backend answered is published once (HTTP API, batches of
 * VERIFY_BATCH); a hold counts as completed only if its client receives that item. Holds
 * the proxy had not registered yet when the publish arrived do not count, so a proxy that
 * queues work behind the backend answers gains nothing. holds/s = completed ÷ window.
 * Holds per server CPU-second uses the CPU of the opening window. Rate limits do not
 * apply (each item reaches one client); Pushpin runs with them raised.
 *
 *   node dist/bench/compare/holds.js [--quick] [--compare pushpin] [--connections 64]
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { startProxy, type ProxyServer } from '../lib/servers.js';
import { publishItems, closePublishConnections, type PublishItemJson } from '../lib/publish.js';
import { median, fmt, formatTable, sleep } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { busyNote } from '../lib/busy.js';

/** Hold timeout the backend asks for, seconds (long: no hold ends by timeout in a run). */
const HOLD_TIMEOUT_SEC = 300;
/** Bound on held connections per run (this process and the proxy each hold one fd per hold; the limit is 20 000). */
const MAX_HOLDS_PER_RUN = 12_000;
/** Bound on one lane's wait for the backend to see its request. */
const LANE_WAIT_MS = 10_000;
/** Items per verification publish request (the publish API takes up to 1 000). */
const VERIFY_BATCH = 500;
/** Bound on waiting for the verification items to arrive. */
const VERIFY_WAIT_MS = 15_000;
/** Source addresses the lanes rotate over. */
const SOURCE_ADDRESSES = ['127.0.0.31', '127.0.0.32', '127.0.0.33', '127.0.0.34'];
/** Bound on bytes read per client connection (one small response). */
const MAX_CLIENT_BYTES = 16_384;
const POLL_MS = 20;
/** Verification: give up waiting once no item arrived for this long. */
const STALL_MS = 2000;

/** One server's runs. */
export interface HoldsCase {
  server: string;
  lanes: number;
  windowSec: number;
  busy?: string;
  runs: Array<{ answered: number; completed: number; refused: number; holdsPerSec: number; cpuSec: number; holdsPerCpuSec: number; late: number; benchCpuCores: number }>;
  median: { holdsPerSec: number; holdsPerCpuSec: number; completedPct: number };
  error?: string;
}

interface HoldBackend { port: number; waiters: Map<string, () => void>; close(): Promise<void> }

async function startHoldBackend(): Promise<HoldBackend> {
  const waiters = new Map<string, () => void>();
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const channel = new URL(req.url ?? '/', 'http://b').searchParams.get('channel') ?? 'none';
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': channel, 'Grip-Timeout': String(HOLD_TIMEOUT_SEC), 'Content-Length': '10' });
    res.end('timed out\n');
    const w = waiters.get(channel);
    if (w) { waiters.delete(channel); w(); }
  });
  server.on('clientError', (_e, s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port, waiters,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

interface Client { sock: net.Socket; data: string; outcome: 'waiting' | 'delivered' | 'refused' }

async function oneRun(o: BenchOptions, server: ProxyServer, backend: HoldBackend, run: number): Promise<HoldsCase['runs'][number]> {
  const clients = new Map<string, Client>();
  const answered: string[] = [];
  let refused = 0;
  const maxHolds = o.quick ? 3000 : MAX_HOLDS_PER_RUN;
  const windowMs = o.holdsWindowSec * 1000;
  let next = 0;
  const start = Date.now();
  const cpu0 = server.sample().cpuSec;
  // This process is the clients and the backend: its CPU shows when it, not the proxy, limits the rate.
  const own0 = process.cpuUsage();
  try {
    await Promise.all(Array.from({ length: o.connections }, async (_, lane) => {
      while (Date.now() - start < windowMs && next < maxHolds) {
        const channel = `h${run}-${next++}`;
        const c: Client = { sock: net.connect({ host: '127.0.0.1', port: server.httpPort, localAddress: SOURCE_ADDRESSES[lane % SOURCE_ADDRESSES.length]! }), data: '', outcome: 'waiting' };
        clients.set(channel, c);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => { backend.waiters.delete(channel); resolve(); }, LANE_WAIT_MS);
          const done = () => { clearTimeout(timer); resolve(); };
          backend.waiters.set(channel, () => { answered.push(channel); done(); });
          c.sock.setEncoding('latin1');
          c.sock.on('connect', () => c.sock.write(`GET /hold?channel=${channel} HTTP/1.1\r\nHost: bench\r\n\r\n`));
          c.sock.on('data', (d: string) => {
            if (c.data.length < MAX_CLIENT_BYTES) c.data += d;
            if (c.outcome !== 'waiting' || !c.data.includes('\r\n\r\n')) return;
            if (c.data.startsWith('HTTP/1.1 200') && c.data.includes('@held')) c.outcome = 'delivered';
            else if (!c.data.startsWith('HTTP/1.1 200')) { c.outcome = 'refused'; refused++; backend.waiters.delete(channel); done(); }
          });
          c.sock.on('error', () => { if (c.outcome === 'waiting') { c.outcome = 'refused'; refused++; } backend.waiters.delete(channel); done(); });
        });
      }
    }));
    const windowSec = (Date.now() - start) / 1000;
    const cpuSec = server.sample().cpuSec - cpu0;
    const own = process.cpuUsage(own0);
    const benchCpuCores = (own.user + own.system) / 1e6 / windowSec;
    // Verify: one item per answered channel; count the clients that get it.
    for (let i = 0; i < answered.length; i += VERIFY_BATCH) {
      const items: PublishItemJson[] = answered.slice(i, i + VERIFY_BATCH).map((channel) => ({ channel, formats: { 'http-response': { body: '@held\n' } } }));
      const status = await publishItems(server.publishUrl, items);
      if (status !== 200) throw new Error(`verification publish answered ${status}`);
    }
    const delivered = () => answered.reduce((a, ch) => a + (clients.get(ch)?.outcome === 'delivered' ? 1 : 0), 0);
    // Wait for every item, or until nothing has arrived for STALL_MS (bounded by VERIFY_WAIT_MS).
    const end = Date.now() + VERIFY_WAIT_MS;
    let completed = delivered();
    let progressAt = Date.now();
    while (completed < answered.length && Date.now() < end && Date.now() - progressAt < STALL_MS) {
      await sleep(POLL_MS);
      const now = delivered();
      if (now > completed) progressAt = Date.now();
      completed = now;
    }
    // Holds not registered when their item arrived: publish again to tell "late" from "lost".
    const missing = answered.filter((ch) => clients.get(ch)?.outcome !== 'delivered');
    for (let i = 0; i < missing.length; i += VERIFY_BATCH) {
      await publishItems(server.publishUrl, missing.slice(i, i + VERIFY_BATCH).map((channel) => ({ channel, formats: { 'http-response': { body: '@held\n' } } })));
    }
    if (missing.length > 0) await sleep(1000);
    const late = delivered() - completed;
    return { answered: answered.length, completed, refused, holdsPerSec: completed / windowSec, cpuSec, holdsPerCpuSec: completed / cpuSec, late, benchCpuCores };
  } finally {
    // Reset rather than close: a close leaves each connection in TIME_WAIT on this side for
    // a minute, and binding the next run's connections to the same four source addresses
    // then has to search past tens of thousands of them (seen as runs at a quarter of the
    // rate with this process's CPU, not the proxy's, saturated).
    for (const c of clients.values()) if (!c.sock.destroyed) c.sock.resetAndDestroy();
  }
}

/** Runs the holds/s comparison for every configured proxy. */
export async function runHolds(o: BenchOptions): Promise<ScenarioResult> {
  const backend = await startHoldBackend();
  const cases: HoldsCase[] = [];
  try {
    for (const kind of o.servers) {
      const c: HoldsCase = { server: kind === 'pushpin' ? 'pushpin (raised)' : 'gripd', lanes: o.connections, windowSec: o.holdsWindowSec, runs: [], median: { holdsPerSec: NaN, holdsPerCpuSec: NaN, completedPct: NaN } };
      const busy = await busyNote(o.quick);
      if (busy) c.busy = busy;
      for (let run = 0; run < o.runs; run++) {
        let server: ProxyServer | undefined;
        try {
          server = await startProxy(kind, { routes: [`* 127.0.0.1:${backend.port}`], raiseRateLimits: kind === 'pushpin', workers: o.gripdWorkers });
          c.runs.push(await oneRun(o, server, backend, run));
        } catch (err) {
          c.error = (err as Error).message.split('\n')[0];
        } finally {
          closePublishConnections();
          await server?.stop();
        }
      }
      c.median = {
        holdsPerSec: median(c.runs.map((r) => r.holdsPerSec)), holdsPerCpuSec: median(c.runs.map((r) => r.holdsPerCpuSec)),
        completedPct: median(c.runs.map((r) => (100 * r.completed) / Math.max(1, r.answered))),
      };
      cases.push(c);
    }
  } finally {
    await backend.close();
  }
  const rows = cases.map((c) => [
    c.server, String(c.lanes), fmt(c.median.holdsPerSec), c.runs.map((r) => fmt(r.holdsPerSec)).join(' / '), fmt(c.median.holdsPerCpuSec),
    fmt(c.median.completedPct, 1), c.runs.map((r) => `${r.late}/${r.refused}`).join(' '), fmt(median(c.runs.map((r) => r.cpuSec / c.windowSec)), 2), fmt(median(c.runs.map((r) => r.benchCpuCores)), 2),
    [c.error, c.busy ? `busy: ${c.busy}` : undefined].filter(Boolean).join('; '),
  ]);
  const lines = [
    `new long-poll holds/s: ${o.connections} lanes, each opening a new connection and a hold on its own channel (Grip-Timeout ${HOLD_TIMEOUT_SEC}) as soon as the backend answered its previous one; ${o.holdsWindowSec} s window (≤ ${o.quick ? 3000 : MAX_HOLDS_PER_RUN} holds); a hold counts once its client received a publish sent right after the window; median of ${o.runs} run(s)`,
    formatTable(['server', 'lanes', 'holds/s', 'runs', 'holds/CPU-s', 'completed %', 'late/refused', 'server cores', 'bench cores', 'note'], rows),
  ];
  const g = cases.find((c) => c.server === 'gripd');
  const p = cases.find((c) => c.server.startsWith('pushpin'));
  if (g && p) lines.push(`ratio gripd/pushpin: holds/s ${fmt(g.median.holdsPerSec / p.median.holdsPerSec, 2)}, per CPU-s ${fmt(g.median.holdsPerCpuSec / p.median.holdsPerCpuSec, 2)}`);
  return { scenario: 'holds', text: lines.join('\n'), data: { params: { lanes: o.connections, windowSec: o.holdsWindowSec, holdTimeoutSec: HOLD_TIMEOUT_SEC, runs: o.runs }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log((await runHolds(parseBenchArgs(process.argv.slice(2)))).text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
