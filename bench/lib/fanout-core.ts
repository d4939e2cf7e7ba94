/**
 * The measuring loop shared by the fan-out scenarios (`fanout`, `fanout-channels`,
 * `sse-fanout`): subscribers hold a stream through the proxy, spread over `channels`
 * channels; a "round" of publishes is one item per channel, so every round reaches every
 * subscriber exactly once. Per run: a latency phase (rounds one at a time) and a
 * throughput phase (rounds back to back). See docs/benchmarks.md.
 */
import { SubscriberPool } from './clients.js';
import { startBackend } from './backend.js';
import { startProxy, RAISED_MESSAGE_RATE, RAISED_MESSAGE_HWM, type ProxyServer, type ProxyKind } from './servers.js';
import { publishItems, closePublishConnections, type PublishItemJson } from './publish.js';
import { nowUs, formatMarker } from './subscriber-protocol.js';
import { median, percentileSorted, fmt, formatTable, sleep } from './stats.js';
import type { BenchOptions } from './options.js';
import { busyNote } from './busy.js';

/** Bound on the warm-up (until every subscriber saw a warm-up publish). */
const WARMUP_DEADLINE_MS = 30_000;
/** Bound on waiting for one latency-phase round to reach everyone. */
const LATENCY_WAIT_MS = 10_000;
/** Slowest delivery rate we wait for in the throughput phase (sets its deadline). */
const MIN_WAITED_RATE = 2_000;
/** Hard cap on one throughput phase's wait. */
const MAX_THROUGHPUT_WAIT_MS = 90_000;
/**
 * Least deliveries in one throughput phase (more rounds at small C): /proc CPU times
 * tick at 10 ms, so a phase must cost the server well over a second for ±1% accuracy.
 */
export const MIN_PHASE_DELIVERIES = 200_000;
export const MIN_PHASE_DELIVERIES_QUICK = 20_000;
/**
 * Deliveries in the one throughput phase of a rate-capped server (Pushpin's shipped
 * 2 500/s): ≈ 10 s at the cap, enough to show it, short enough for the full suite.
 */
const CAPPED_PHASE_DELIVERIES = 25_000;
/** Bound on waiting for a rate-capped server's warm-up backlog to drain. */
const CAPPED_DRAIN_MAX_MS = 12_000;
/** Pushpin's shipped /etc/pushpin/pushpin.conf values. */
export const SHIPPED_MESSAGE_RATE = 2500;
export const SHIPPED_MESSAGE_HWM = 25000;
/** Rounds of re-subscribing the subscriptions a burst failed. */
const SUBSCRIBE_RETRIES = 3;
/** Poll interval for delivery counters. */
const POLL_MS = 10;

/** How a fan-out scenario subscribes and publishes. */
export interface FanoutShape {
  /** Scenario name (reports, JSON). */
  name: string;
  /** Backend path subscribers request; `{ch}` becomes the channel index when channels > 1. */
  path: string;
  /** Channels the subscribers are spread over, round-robin (1: all on one). */
  channels(subscribers: number): number;
  /** Channel name for index i (matches what the backend subscribes for `{ch}`). */
  channelName(i: number): string;
  /** The publish item for one channel carrying one marker line (`@m<seq>:<µs>;\n`). */
  item(channel: string, marker: string): PublishItemJson;
  /** Items per publish request (a round of `channels` items goes out in ⌈channels/batch⌉ requests). */
  batch: number;
}

/** One fan-out configuration's measurements. */
export interface FanoutCase {
  server: string;
  subscribers: number;
  channels: number;
  connected: number;
  connectSec: number;
  /** Rounds per throughput phase (raised at small C, see MIN_PHASE_DELIVERIES). */
  publishes?: number;
  /** Subscriptions re-tried after the server refused them (e.g. 502). */
  subscribeRetries?: number;
  rssPerConnKB: number;
  /** Other load on the box seen before the case started (ps), if any. */
  busy?: string;
  runs: Array<{ deliveriesPerSec: number; delivered: number; expected: number; p50Ms: number; p99Ms: number; cpuSec: number; deliveriesPerCpuSec: number; tpP99Ms: number }>;
  median: { deliveriesPerSec: number; p50Ms: number; p99Ms: number; deliveriesPerCpuSec: number; deliveredPct: number; cpuSec: number };
  error?: string;
}

function emptyCase(server: string, subscribers: number, channels: number): FanoutCase {
  return { server, subscribers, channels, connected: 0, connectSec: NaN, rssPerConnKB: NaN, runs: [], median: { deliveriesPerSec: NaN, p50Ms: NaN, p99Ms: NaN, deliveriesPerCpuSec: NaN, deliveredPct: NaN, cpuSec: NaN } };
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

/** Publishes `rounds` rounds with at most `concurrency` requests in flight; markers are built at send time. */
async function publishRounds(shape: FanoutShape, publishUrl: string, channels: number, rounds: number, concurrency: number, kind: 'w' | 'm', seq: { next: number }): Promise<void> {
  const perRound = Math.ceil(channels / shape.batch);
  const total = rounds * perRound;
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, async () => {
    while (next < total) {
      const r = next++;
      const first = (r % perRound) * shape.batch;
      const items: PublishItemJson[] = [];
      for (let ch = first; ch < Math.min(channels, first + shape.batch); ch++) {
        items.push(shape.item(shape.channelName(ch), formatMarker(kind, seq.next++, nowUs())));
      }
      const status = await publishItems(publishUrl, items);
      if (status !== 200) throw new Error(`publish answered ${status}`);
    }
  });
  await Promise.all(lanes);
}

/**
 * Measures one proxy at one subscriber count: subscribe (with bounded retries), warm up,
 * then `runs` latency + throughput phases. `capped` marks a rate-limited server (one
 * short run). Never throws for a measuring failure: it lands in `error`.
 */
export async function measureFanoutCase(o: BenchOptions, shape: FanoutShape, server: ProxyServer, label: string, pool: SubscriberPool, subs: number, capped = false): Promise<FanoutCase> {
  const channels = Math.max(1, shape.channels(subs));
  const c = emptyCase(label, subs, channels);
  const rss0 = server.sample().rssBytes;
  const t0 = Date.now();
  // Pushpin 1.36 answers a few percent of a 10 000-subscriber burst with 502 (no log
  // line says why), so retry the failed ones a bounded number of times.
  const conn = { ok: 0, failed: 0, firstErrors: [] as string[] };
  let retries = 0;
  for (let attempt = 0; attempt <= SUBSCRIBE_RETRIES && conn.ok < subs; attempt++) {
    const r = await pool.connect({
      port: server.httpPort, path: shape.path, total: subs - conn.ok, deadlineMs: Math.max(30_000, subs * 5),
      ...(channels > 1 ? { channels, indexBase: conn.ok } : {}),
    });
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
  const seq = { next: 0 };
  // Warm-up: publish rounds until every subscriber has seen one (subscriptions may land a
  // moment after the response head).
  const warmEnd = Date.now() + WARMUP_DEADLINE_MS;
  let warmed = 0;
  let warmRounds = 0;
  while (Date.now() < warmEnd && warmed < conn.ok) {
    await publishRounds(shape, server.publishUrl, channels, 1, 4, 'w', seq);
    warmRounds++;
    warmed = await waitFor(pool, conn.ok, 300, 'warmed');
  }
  if (warmed < conn.ok) c.error = `${conn.ok - warmed} subscribers never received the warm-up`;
  // A rate-capped server still has the later warm-up rounds queued: let them drain (up to
  // what the high-water mark keeps), or the latency phase measures that backlog.
  await sleep(capped ? Math.min(CAPPED_DRAIN_MAX_MS, (Math.min((warmRounds - 1) * conn.ok, SHIPPED_MESSAGE_HWM) / SHIPPED_MESSAGE_RATE) * 1000) : 0);
  await sleep(200);
  c.rssPerConnKB = (server.sample().rssBytes - rss0) / conn.ok / 1024;
  const n = conn.ok;
  // A rate-capped server would take minutes per phase at the usual size: give it a phase
  // of ≈ CAPPED_PHASE_DELIVERIES, one latency round and one run; the cap shows either way.
  const rounds = capped
    ? Math.max(1, Math.ceil(CAPPED_PHASE_DELIVERIES / n))
    : Math.max(o.publishes, Math.ceil((o.quick ? MIN_PHASE_DELIVERIES_QUICK : MIN_PHASE_DELIVERIES) / n));
  const runs = capped ? 1 : o.runs;
  const latencyRounds = capped ? 1 : o.latencyPublishes;
  c.publishes = rounds;
  for (let run = 0; run < runs; run++) {
    // Latency: one round at a time.
    pool.phase();
    await sleep(50);
    for (let k = 0; k < latencyRounds; k++) {
      await publishRounds(shape, server.publishUrl, channels, 1, 4, 'm', seq);
      await waitFor(pool, n * (k + 1), LATENCY_WAIT_MS, 'received');
      await sleep(50);
    }
    const lat = await pool.report();
    const latSorted = Float64Array.from(lat.latenciesUs).sort();
    // Throughput: rounds back to back.
    pool.phase();
    await sleep(50);
    const expected = n * rounds;
    const cpu0 = server.sample().cpuSec;
    const start = nowUs();
    await publishRounds(shape, server.publishUrl, channels, rounds, Math.max(o.publishConcurrency, channels > 1 ? 4 : 1), 'm', seq);
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

/** One proxy configuration to measure. */
export interface Variant { kind: ProxyKind; label: string; raise: boolean }

/** The proxy variants to run: each server, plus Pushpin with shipped limits when `o.pushpinDefaults`. */
export function variants(o: BenchOptions): Variant[] {
  const out: Variant[] = [];
  for (const k of o.servers) {
    if (k === 'pushpin') {
      out.push({ kind: k, label: 'pushpin (raised)', raise: true });
      if (o.pushpinDefaults) out.push({ kind: k, label: 'pushpin (shipped limits)', raise: false });
    } else out.push({ kind: k, label: 'gripd', raise: false });
  }
  return out;
}

/**
 * Config sets for a variant: the raised limits come from `raiseRateLimits`; the shipped
 * ones must be set explicitly (the reference script leaves them unset = unlimited).
 */
export function shippedSets(v: Variant): string[] {
  return v.kind === 'pushpin' && !v.raise ? [`handler.message_rate=${SHIPPED_MESSAGE_RATE}`, `handler.message_hwm=${SHIPPED_MESSAGE_HWM}`] : [];
}

/** Runs `shape` for every subscriber count and variant; returns the cases. Every child is stopped. */
export async function runFanoutCases(o: BenchOptions, shape: FanoutShape, subscriberCounts: number[]): Promise<FanoutCase[]> {
  const backend = await startBackend(o.backendWorkers);
  const cases: FanoutCase[] = [];
  try {
    for (const subs of subscriberCounts) {
      for (const v of variants(o)) {
        const busy = await busyNote(o.quick);
        let server: ProxyServer | undefined;
        const pool = SubscriberPool.start(Math.min(o.clientProcs, Math.max(1, Math.ceil(subs / 250))), subs);
        try {
          server = await startProxy(v.kind, { routes: [`* ${backend.target}`], raiseRateLimits: v.raise, set: shippedSets(v), workers: o.gripdWorkers });
          const c = await measureFanoutCase(o, shape, server, v.label, pool, subs, v.kind === 'pushpin' && !v.raise);
          if (busy) c.busy = busy;
          cases.push(c);
        } catch (err) {
          const c = emptyCase(v.label, subs, shape.channels(subs));
          c.error = (err as Error).message.split('\n')[0];
          cases.push(c);
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
  return cases;
}

/** The table and gripd/Pushpin ratio lines for a set of fan-out cases. */
export function formatFanoutCases(o: BenchOptions, cases: FanoutCase[], heading: string): string[] {
  const rows = cases.map((c) => [
    c.server, String(c.subscribers), String(c.channels), fmt(c.median.deliveriesPerSec), fmt(c.median.p50Ms, 1), fmt(c.median.p99Ms, 1),
    fmt(c.median.deliveriesPerCpuSec), fmt(c.median.deliveredPct, 1), fmt(c.connected / c.connectSec), fmt(c.rssPerConnKB, 1),
    [c.error, c.busy ? `busy: ${c.busy}` : undefined].filter(Boolean).join('; '),
  ]);
  const lines = [
    heading,
    `Pushpin "(raised)": message_rate=${RAISED_MESSAGE_RATE} message_hwm=${RAISED_MESSAGE_HWM}; "(shipped limits)": ${SHIPPED_MESSAGE_RATE} and ${SHIPPED_MESSAGE_HWM}, one short run; gripd: its defaults, workers=${o.gripdWorkers}`,
    formatTable(['server', 'subs', 'channels', 'deliveries/s', 'p50 ms', 'p99 ms', 'deliv/CPU-s', 'delivered %', 'holds/s', 'RSS KB/conn', 'note'], rows),
  ];
  for (const subs of [...new Set(cases.map((c) => c.subscribers))]) {
    const g = cases.find((c) => c.subscribers === subs && c.server === 'gripd');
    const p = cases.find((c) => c.subscribers === subs && c.server === 'pushpin (raised)');
    const s = cases.find((c) => c.subscribers === subs && c.server === 'pushpin (shipped limits)');
    if (g && p) {
      lines.push(`ratio gripd/pushpin (raised) at ${subs}: deliveries/s ${fmt(g.median.deliveriesPerSec / p.median.deliveriesPerSec, 2)}, per CPU-s ${fmt(g.median.deliveriesPerCpuSec / p.median.deliveriesPerCpuSec, 2)}, p99 ${fmt(g.median.p99Ms / p.median.p99Ms, 2)}, RSS/conn ${fmt(g.rssPerConnKB / p.rssPerConnKB, 2)}`);
    }
    if (g && s) lines.push(`ratio gripd/pushpin (shipped limits) at ${subs}: deliveries/s ${fmt(g.median.deliveriesPerSec / s.median.deliveriesPerSec, 2)}, per CPU-s ${fmt(g.median.deliveriesPerCpuSec / s.median.deliveriesPerCpuSec, 2)}`);
  }
  for (const n of o.notes) lines.push(`note: ${n}`);
  return lines;
}
