/**
 * Stream fan-out benchmark: C subscribers (spread over several client processes on
 * 127.0.0.x source addresses) hold an HTTP stream on one channel through the proxy; the
 * backend answers `Grip-Hold: stream` + `Grip-Channel`. Then:
 *  - latency phase: K publishes, each waited out before the next, give publish-to-receive
 *    latency p50/p99 (µs clock shared by all processes, embedded in the payload);
 *  - throughput phase: M publishes back to back give deliveries/s (from the first publish
 *    to the last delivery) and deliveries per server CPU-second (/proc, whole tree).
 * Pushpin runs with message_rate/message_hwm raised (and, with --pushpin-defaults, also
 * with its shipped limits).
 *
 *   node dist/bench/compare/fanout.js [--quick] [--compare pushpin] [--subscribers 1000,10000] ...
 */
import { pathToFileURL } from 'node:url';
import { startBackend } from '../lib/backend.js';
import { startProxy, RAISED_MESSAGE_RATE, RAISED_MESSAGE_HWM, type ProxyServer, type ProxyKind } from '../lib/servers.js';
import { SubscriberPool } from '../lib/clients.js';
import { publishStream, publishMany, closePublishConnections } from '../lib/publish.js';
import { nowUs, formatMarker } from '../lib/subscriber-protocol.js';
import { median, percentileSorted, fmt, formatTable, sleep } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { renderCharts, type Series } from '../lib/plot.js';

const CHANNEL = 'bench';
/** Bound on the warm-up (until every subscriber saw a warm-up publish). */
const WARMUP_DEADLINE_MS = 30_000;
/** Bound on waiting for one latency-phase publish to reach everyone. */
const LATENCY_WAIT_MS = 10_000;
/** Slowest delivery rate we wait for in the throughput phase (sets its deadline). */
const MIN_WAITED_RATE = 2_000;
/** Hard cap on one throughput phase's wait. */
const MAX_THROUGHPUT_WAIT_MS = 90_000;
/**
 * Least deliveries in one throughput phase (more publishes at small C): /proc CPU times
 * tick at 10 ms, so a phase must cost the server well over a second for ±1% accuracy.
 */
const MIN_PHASE_DELIVERIES = 200_000;
const MIN_PHASE_DELIVERIES_QUICK = 20_000;
/** Pushpin's shipped /etc/pushpin/pushpin.conf values. */
const SHIPPED_MESSAGE_RATE = 2500;
const SHIPPED_MESSAGE_HWM = 25000;
/** Rounds of re-subscribing the subscriptions a burst failed. */
const SUBSCRIBE_RETRIES = 3;
/** Poll interval for delivery counters. */
const POLL_MS = 10;

/** One fan-out configuration's measurements. */
export interface FanoutCase {
  server: string;
  subscribers: number;
  connected: number;
  connectSec: number;
  /** Publishes per throughput phase (raised at small C, see MIN_PHASE_DELIVERIES). */
  publishes?: number;
  /** Subscriptions re-tried after the server refused them (e.g. 502). */
  subscribeRetries?: number;
  rssPerConnKB: number;
  runs: Array<{ deliveriesPerSec: number; delivered: number; expected: number; p50Ms: number; p99Ms: number; cpuSec: number; deliveriesPerCpuSec: number; tpP99Ms: number }>;
  median: { deliveriesPerSec: number; p50Ms: number; p99Ms: number; deliveriesPerCpuSec: number; deliveredPct: number; cpuSec: number };
  error?: string;
}

async function waitFor(pool: SubscriberPool, target: number, deadlineMs: number, field: 'received' | 'warmed'): Promise<number> {
  const end = Date.now() + deadlineMs;
  let last = 0;
  while (Date.now() < end) {
    last = (await pool.status())[field];
    if (last >= target) return last;
    await sleep(POLL_MS);
  }
  return last;
}

async function measureCase(o: BenchOptions, server: ProxyServer, label: string, pool: SubscriberPool, subs: number, capped = false): Promise<FanoutCase> {
  const c: FanoutCase = { server: label, subscribers: subs, connected: 0, connectSec: NaN, rssPerConnKB: NaN, runs: [], median: { deliveriesPerSec: NaN, p50Ms: NaN, p99Ms: NaN, deliveriesPerCpuSec: NaN, deliveredPct: NaN, cpuSec: NaN } };
  const rss0 = server.sample().rssBytes;
  const t0 = Date.now();
  // Pushpin 1.36 answers a few percent of a 10 000-subscriber burst with 502 (no log
  // line says why), so retry the failed ones a bounded number of times.
  const conn = { ok: 0, failed: 0, firstErrors: [] as string[] };
  let retries = 0;
  for (let attempt = 0; attempt <= SUBSCRIBE_RETRIES && conn.ok < subs; attempt++) {
    const r = await pool.connect({ port: server.httpPort, path: `/stream?channel=${CHANNEL}`, total: subs - conn.ok, deadlineMs: Math.max(30_000, subs * 5) });
    conn.ok += r.ok;
    if (attempt > 0) retries += r.ok + r.failed;
    conn.failed = r.failed;
    conn.firstErrors.push(...r.errors);
    if (r.ok === 0) break;
  }
  c.connectSec = (Date.now() - t0) / 1000;
  c.connected = conn.ok;
  c.subscribeRetries = retries;
  if (conn.ok < subs) {
    c.error = `${subs - conn.ok} of ${subs} subscriptions failed (${conn.firstErrors[0] ?? '?'})`;
    if (conn.ok === 0) return c;
  } else if (retries > 0) c.error = `${retries} subscribe retries (${conn.firstErrors[0] ?? '?'})`;
  // Warm-up: publish until every subscriber has seen one (subscriptions may land a moment after the headers).
  const warmEnd = Date.now() + WARMUP_DEADLINE_MS;
  let warmed = 0;
  for (let seq = 0; Date.now() < warmEnd && warmed < conn.ok; seq++) {
    await publishStream(server.publishUrl, CHANNEL, formatMarker('w', seq, nowUs()));
    warmed = await waitFor(pool, conn.ok, 300, 'warmed');
  }
  if (warmed < conn.ok) c.error = `${conn.ok - warmed} subscribers never received the warm-up`;
  await sleep(200);
  c.rssPerConnKB = (server.sample().rssBytes - rss0) / conn.ok / 1024;
  const n = conn.ok;
  // A rate-capped server (Pushpin's shipped 2 500/s) would take minutes per phase at the
  // usual size: give it the plain publish count and one run; the cap shows either way.
  const publishes = capped ? o.publishes : Math.max(o.publishes, Math.ceil((o.quick ? MIN_PHASE_DELIVERIES_QUICK : MIN_PHASE_DELIVERIES) / n));
  const runs = capped ? 1 : o.runs;
  c.publishes = publishes;
  let seq = 0;
  for (let run = 0; run < runs; run++) {
    // Latency: one publish at a time.
    pool.phase();
    await sleep(50);
    for (let k = 0; k < o.latencyPublishes; k++) {
      await publishStream(server.publishUrl, CHANNEL, formatMarker('m', seq++, nowUs()));
      await waitFor(pool, n * (k + 1), LATENCY_WAIT_MS, 'received');
      await sleep(50);
    }
    const lat = await pool.report();
    const latSorted = Float64Array.from(lat.latenciesUs).sort();
    // Throughput: M publishes back to back.
    pool.phase();
    await sleep(50);
    const expected = n * publishes;
    const cpu0 = server.sample().cpuSec;
    const start = nowUs();
    await publishMany(server.publishUrl, CHANNEL, publishes, o.publishConcurrency, () => formatMarker('m', seq++, nowUs()));
    await waitFor(pool, expected, Math.min(MAX_THROUGHPUT_WAIT_MS, Math.max(15_000, (expected / MIN_WAITED_RATE) * 1000)), 'received');
    const cpu1 = server.sample().cpuSec;
    const tp = await pool.report();
    const tpSorted = Float64Array.from(tp.latenciesUs).sort();
    const spanSec = (tp.lastRecvUs - start) / 1e6;
    const cpuSec = cpu1 - cpu0;
    c.runs.push({
      deliveriesPerSec: tp.received / spanSec, delivered: tp.received, expected,
      p50Ms: percentileSorted(latSorted, 50) / 1000, p99Ms: percentileSorted(latSorted, 99) / 1000,
      cpuSec, deliveriesPerCpuSec: tp.received / cpuSec, tpP99Ms: percentileSorted(tpSorted, 99) / 1000,
    });
  }
  const m = (f: (r: FanoutCase['runs'][number]) => number) => median(c.runs.map(f));
  c.median = {
    deliveriesPerSec: m((r) => r.deliveriesPerSec), p50Ms: m((r) => r.p50Ms), p99Ms: m((r) => r.p99Ms),
    deliveriesPerCpuSec: m((r) => r.deliveriesPerCpuSec), deliveredPct: m((r) => (100 * r.delivered) / r.expected), cpuSec: m((r) => r.cpuSec),
  };
  return c;
}

/** The proxy variants to run: each server, plus Pushpin with shipped limits if asked. */
function variants(o: BenchOptions): Array<{ kind: ProxyKind; label: string; raise: boolean }> {
  const out: Array<{ kind: ProxyKind; label: string; raise: boolean }> = [];
  for (const k of o.servers) {
    if (k === 'pushpin') {
      out.push({ kind: k, label: 'pushpin (raised)', raise: true });
      if (o.pushpinDefaults) out.push({ kind: k, label: 'pushpin (shipped limits)', raise: false });
    } else out.push({ kind: k, label: 'gripd', raise: false });
  }
  return out;
}

/** Runs the fan-out comparison for every subscriber count and proxy. */
export async function runFanout(o: BenchOptions): Promise<ScenarioResult> {
  const backend = await startBackend(o.backendWorkers);
  const cases: FanoutCase[] = [];
  try {
    for (const subs of o.subscribers) {
      for (const v of variants(o)) {
        let server: ProxyServer | undefined;
        const pool = SubscriberPool.start(Math.min(o.clientProcs, Math.max(1, Math.ceil(subs / 250))), subs);
        try {
          // The reference script's config leaves message_rate/message_hwm unset (= unlimited),
          // so the shipped limits must be set explicitly for the "defaults" row.
          const shipped = v.kind === 'pushpin' && !v.raise ? [`handler.message_rate=${SHIPPED_MESSAGE_RATE}`, `handler.message_hwm=${SHIPPED_MESSAGE_HWM}`] : [];
          server = await startProxy(v.kind, { routes: [`* ${backend.target}`], raiseRateLimits: v.raise, set: shipped, workers: o.gripdWorkers });
          cases.push(await measureCase(o, server, v.label, pool, subs, v.kind === 'pushpin' && !v.raise));
        } catch (err) {
          cases.push({ server: v.label, subscribers: subs, connected: 0, connectSec: NaN, rssPerConnKB: NaN, runs: [], median: { deliveriesPerSec: NaN, p50Ms: NaN, p99Ms: NaN, deliveriesPerCpuSec: NaN, deliveredPct: NaN, cpuSec: NaN }, error: (err as Error).message.split('\n')[0] });
        } finally {
          await pool.stop();
          closePublishConnections();
          await server?.stop();
        }
      }
    }
  } finally {
    await backend.stop();
  }
  const rows = cases.map((c) => [
    c.server, String(c.subscribers), fmt(c.median.deliveriesPerSec), fmt(c.median.p50Ms, 1), fmt(c.median.p99Ms, 1),
    fmt(c.median.deliveriesPerCpuSec), fmt(c.median.deliveredPct, 1), fmt(c.connected / c.connectSec), fmt(c.rssPerConnKB, 1), c.error ?? '',
  ]);
  const lines = [
    `stream fan-out: one channel, max(${o.publishes}, ${o.quick ? MIN_PHASE_DELIVERIES_QUICK : MIN_PHASE_DELIVERIES}/C) back-to-back publishes (throughput, ${o.publishConcurrency} in flight) and ${o.latencyPublishes} spaced publishes (latency) per run, median of ${o.runs} run(s)`,
    `Pushpin "(raised)": message_rate=${RAISED_MESSAGE_RATE} message_hwm=${RAISED_MESSAGE_HWM} (shipped: ${SHIPPED_MESSAGE_RATE} and ${SHIPPED_MESSAGE_HWM}); gripd: its defaults, workers=${o.gripdWorkers}`,
    formatTable(['server', 'subs', 'deliveries/s', 'p50 ms', 'p99 ms', 'deliv/CPU-s', 'delivered %', 'holds/s', 'RSS KB/conn', 'note'], rows),
  ];
  // gripd / Pushpin ratios per subscriber count.
  for (const subs of o.subscribers) {
    const g = cases.find((c) => c.subscribers === subs && c.server === 'gripd');
    const p = cases.find((c) => c.subscribers === subs && c.server === 'pushpin (raised)');
    if (g && p) {
      lines.push(`ratio gripd/pushpin at ${subs}: deliveries/s ${fmt(g.median.deliveriesPerSec / p.median.deliveriesPerSec, 2)}, per CPU-s ${fmt(g.median.deliveriesPerCpuSec / p.median.deliveriesPerCpuSec, 2)}, p99 ${fmt(g.median.p99Ms / p.median.p99Ms, 2)}, RSS/conn ${fmt(g.rssPerConnKB / p.rssPerConnKB, 2)}`);
    }
  }
  for (const n of o.notes) lines.push(`note: ${n}`);
  // Rate-capped rows would flatten the chart's scale; the table has them.
  const labels = [...new Set(cases.map((c) => c.server))].filter((l) => !l.includes('shipped'));
  const series = (f: (c: FanoutCase) => number): Series[] => labels.map((label) => ({ label, points: cases.filter((c) => c.server === label).map((c): [number, number] => [c.subscribers, f(c)]) }));
  const svg = renderCharts([
    { title: 'Stream fan-out throughput', xLabel: 'subscribers on one channel', yLabel: 'deliveries/s (median)', series: series((c) => c.median.deliveriesPerSec) },
    { title: 'One publish to all subscribers', xLabel: 'subscribers on one channel', yLabel: 'p99 latency, ms (median)', series: series((c) => c.median.p99Ms) },
  ], `npm run bench -- --compare pushpin fanout; median of ${o.runs} run(s); Pushpin with message_rate/message_hwm raised`);
  return { scenario: 'fanout', files: { 'fanout.svg': svg }, text: lines.join('\n'), data: { params: { channel: CHANNEL, subscribers: o.subscribers, publishes: o.publishes, latencyPublishes: o.latencyPublishes, runs: o.runs, clientProcs: o.clientProcs, raisedMessageRate: RAISED_MESSAGE_RATE, raisedMessageHwm: RAISED_MESSAGE_HWM }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const r = await runFanout(parseBenchArgs(process.argv.slice(2)));
    console.log(r.text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
