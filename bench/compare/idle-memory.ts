/**
 * Idle memory per held stream connection: N clients (default 10 000 and 30 000) hold an
 * HTTP stream on one channel through the proxy and then sit idle. Per run, a fresh server:
 *   baseline = median of 3 RSS samples after start-up, before any client connects;
 *   held     = median of 3 RSS samples once every client got one warm-up item and the
 *              server had SETTLE_MS to settle;
 *   per connection = (held − baseline) ÷ connections held.
 * RSS is VmRSS summed over the server's whole process tree (Pushpin: runner, condure,
 * zurl, pushpin-proxy, pushpin-handler; gripd: the CLI and its workers). Clients come from
 * ≥ 2 processes on ≥ 2 source addresses (127.0.0.11, .12, …), ≤ 15 000 sockets each.
 *
 * gripd runs with `--gripd-workers` (default: gripd's own, one per CPU), and with at least
 * 2 where N exceeds what one process may hold open (the 20 000 open-files hard limit
 * here); the table says which. Rate limits do not matter here; Pushpin runs with the reference
 * script's config.
 *
 *   node dist/bench/compare/idle-memory.js [--quick] [--compare pushpin] [--idle-conns 10000,30000]
 */
import { pathToFileURL } from 'node:url';
import { startBackend } from '../lib/backend.js';
import { startProxy, type ProxyServer, type ProxyKind } from '../lib/servers.js';
import { SubscriberPool } from '../lib/clients.js';
import { publishStream, closePublishConnections } from '../lib/publish.js';
import { nowUs, formatMarker } from '../lib/subscriber-protocol.js';
import { median, fmt, formatTable, sleep } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { busyNote } from '../lib/busy.js';

const CHANNEL = 'idle';
/** Connections one server process can hold: the open-files hard limit (20 000) minus headroom for listeners, backend and log fds. */
const MAX_CONNS_PER_SERVER_PROCESS = 19_000;
/** Client processes at least (the issue asks for ≥ 2 at 30 000; use 2 everywhere). */
const MIN_CLIENT_PROCS = 2;
/** RSS samples per reading, and the gap between them. */
const RSS_SAMPLES = 3;
const RSS_SAMPLE_GAP_MS = 300;
/** Quiet time after start-up before the baseline, and after the warm-up before the reading. */
const BASELINE_SETTLE_MS = 1000;
const SETTLE_MS = 2000;
const SETTLE_MS_QUICK = 300;
/** Bound on the warm-up (every client gets one item: proves every hold is in place). */
const WARMUP_DEADLINE_MS = 30_000;
/** Rounds of re-subscribing after a burst refused some (Pushpin's 502s), while the failures stay few. */
const SUBSCRIBE_RETRIES = 2;
const POLL_MS = 20;

/** One server at one connection count. */
export interface IdleMemoryCase {
  server: string;
  /** gripd [proxy] workers= used (undefined for Pushpin). */
  workers?: number;
  conns: number;
  busy?: string;
  runs: Array<{ connected: number; baselineMB: number; heldMB: number; perConnKB: number; processes: number; error?: string }>;
  median: { perConnKB: number; baselineMB: number; heldMB: number; connected: number };
  error?: string;
}

async function rssMedian(server: ProxyServer): Promise<{ bytes: number; processes: number }> {
  const v: number[] = [];
  let processes = 0;
  for (let i = 0; i < RSS_SAMPLES; i++) {
    if (i > 0) await sleep(RSS_SAMPLE_GAP_MS);
    const s = server.sample();
    v.push(s.rssBytes);
    processes = s.pids.length;
  }
  return { bytes: median(v), processes };
}

async function waitWarmed(pool: SubscriberPool, target: number, deadlineMs: number): Promise<number> {
  const end = Date.now() + deadlineMs;
  let last = 0;
  while (Date.now() < end) {
    last = (await pool.status()).warmed;
    if (last >= target) return last;
    await sleep(POLL_MS);
  }
  return last;
}

async function oneRun(o: BenchOptions, kind: ProxyKind, workers: number, conns: number, backendTarget: string): Promise<IdleMemoryCase['runs'][number]> {
  let server: ProxyServer | undefined;
  const pool = SubscriberPool.start(MIN_CLIENT_PROCS, conns);
  try {
    server = await startProxy(kind, { routes: [`* ${backendTarget}`], workers });
    await sleep(o.quick ? SETTLE_MS_QUICK : BASELINE_SETTLE_MS);
    const base = await rssMedian(server);
    let ok = 0; let firstError: string | undefined;
    for (let attempt = 0; attempt <= SUBSCRIBE_RETRIES && ok < conns; attempt++) {
      const r = await pool.connect({ port: server.httpPort, path: `/stream?channel=${CHANNEL}`, total: conns - ok, deadlineMs: Math.max(30_000, conns * 4) });
      ok += r.ok;
      firstError ??= r.errors[0];
      // Beyond a server's limit every retry would fail the same way: stop.
      if (r.ok === 0 || r.failed > conns / 10) break;
    }
    if (ok === 0) throw new Error(`no connection held (${firstError ?? '?'})`);
    let warmed = 0;
    const warmEnd = Date.now() + WARMUP_DEADLINE_MS;
    for (let seq = 0; Date.now() < warmEnd && warmed < ok; seq++) {
      await publishStream(server.publishUrl, CHANNEL, formatMarker('w', seq, nowUs()));
      warmed = await waitWarmed(pool, ok, 500);
    }
    await sleep(o.quick ? SETTLE_MS_QUICK : SETTLE_MS);
    const held = await rssMedian(server);
    const errs = [ok < conns ? `${conns - ok} of ${conns} refused (${firstError ?? '?'})` : undefined, warmed < ok ? `${ok - warmed} never got the warm-up` : undefined].filter(Boolean);
    return {
      connected: ok, baselineMB: base.bytes / 2 ** 20, heldMB: held.bytes / 2 ** 20, perConnKB: (held.bytes - base.bytes) / ok / 1024, processes: held.processes,
      ...(errs.length > 0 ? { error: errs.join('; ') } : {}),
    };
  } finally {
    await pool.stop();
    closePublishConnections();
    await server?.stop();
  }
}

/** Runs the idle-memory comparison for every connection count and proxy. */
export async function runIdleMemory(o: BenchOptions): Promise<ScenarioResult> {
  const backend = await startBackend(o.backendWorkers);
  const cases: IdleMemoryCase[] = [];
  try {
    for (const conns of o.idleConns) {
      for (const kind of o.servers) {
        const workers = kind === 'gripd' ? (conns > MAX_CONNS_PER_SERVER_PROCESS ? Math.max(2, o.gripdWorkers) : o.gripdWorkers) : undefined;
        const c: IdleMemoryCase = { server: kind, conns, runs: [], median: { perConnKB: NaN, baselineMB: NaN, heldMB: NaN, connected: NaN }, ...(workers !== undefined ? { workers } : {}) };
        const busy = await busyNote(o.quick);
        if (busy) c.busy = busy;
        for (let run = 0; run < o.runs; run++) {
          try {
            c.runs.push(await oneRun(o, kind, workers ?? 1, conns, backend.target));
          } catch (err) {
            c.error = (err as Error).message.split('\n')[0];
          }
        }
        const m = (f: (r: IdleMemoryCase['runs'][number]) => number) => median(c.runs.map(f));
        c.median = { perConnKB: m((r) => r.perConnKB), baselineMB: m((r) => r.baselineMB), heldMB: m((r) => r.heldMB), connected: m((r) => r.connected) };
        c.error ??= c.runs.find((r) => r.error)?.error;
        cases.push(c);
      }
    }
  } finally {
    await backend.stop();
  }
  const rows = cases.map((c) => [
    c.server + (c.workers !== undefined ? ` workers=${c.workers}` : ''), String(c.conns), fmt(c.median.connected), fmt(c.median.baselineMB, 1), fmt(c.median.heldMB, 1),
    fmt(c.median.perConnKB, 1), c.runs.map((r) => fmt(r.perConnKB, 1)).join(' / '), String(c.runs[0]?.processes ?? '-'),
    [c.error, c.busy ? `busy: ${c.busy}` : undefined].filter(Boolean).join('; '),
  ]);
  const lines = [
    `idle memory per held stream: fresh server per run; per conn = (median RSS held - median RSS before connecting) / connections held; RSS summed over the server's process tree; median of ${o.runs} run(s)`,
    formatTable(['server', 'conns', 'held', 'baseline MB', 'held MB', 'KB/conn', 'runs KB/conn', 'procs', 'note'], rows),
  ];
  for (const conns of o.idleConns) {
    const g = cases.find((c) => c.conns === conns && c.server === 'gripd');
    const p = cases.find((c) => c.conns === conns && c.server === 'pushpin');
    if (g && p) lines.push(`ratio gripd/pushpin at ${conns}: KB per connection ${fmt(g.median.perConnKB / p.median.perConnKB, 2)}`);
  }
  if (o.idleConns.some((n) => n > MAX_CONNS_PER_SERVER_PROCESS)) {
    lines.push(`note: above ${MAX_CONNS_PER_SERVER_PROCESS} connections one process runs out of file descriptors (hard limit 20 000 here), so gripd runs workers=2 there; Pushpin's condure holds every client socket in one process`);
  }
  return { scenario: 'idle-memory', text: lines.join('\n'), data: { params: { conns: o.idleConns, runs: o.runs }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log((await runIdleMemory(parseBenchArgs(process.argv.slice(2)))).text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
