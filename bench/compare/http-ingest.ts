/**
 * HTTP publish ingest: 1 000 stream subscribers hold one channel through the proxy; the
 * bench POSTs M items to the HTTP publish API (`/publish/`) back to back, in two modes:
 *  - single: one item per request, SINGLE_CONCURRENCY requests in flight;
 *  - batch: BATCH_ITEMS items per request, BATCH_CONCURRENCY requests in flight.
 * items/s = M ÷ (first POST → last delivery to the last subscriber); deliveries/s and
 * deliveries per server CPU-second too. gripd and Pushpin side by side, Pushpin with
 * message_rate/message_hwm raised and (unless --quick) with its shipped limits.
 *
 *   node dist/bench/compare/http-ingest.js [--quick] [--compare pushpin] [--runs 3]
 */
import { pathToFileURL } from 'node:url';
import { startBackend } from '../lib/backend.js';
import { startProxy, type ProxyServer } from '../lib/servers.js';
import { SubscriberPool } from '../lib/clients.js';
import { publishItems, closePublishConnections, type PublishItemJson } from '../lib/publish.js';
import { nowUs, formatMarker } from '../lib/subscriber-protocol.js';
import { median, fmt, formatTable, sleep } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { variants, shippedSets, type Variant } from '../lib/fanout-core.js';
import { busyNote } from '../lib/busy.js';

const CHANNEL = 'ingest';
/** Subscribers (the figure). */
export const INGEST_SUBSCRIBERS = 1000;
/** Items per phase (quick: fewer; rate-capped server: a few, see below). */
const ITEMS = 400;
const ITEMS_QUICK = 100;
/** Pushpin's shipped 2 500 deliveries/s is 2.5 items/s to 1 000 subscribers: 10 items ≈ 4 s. */
const ITEMS_CAPPED = 10;
/** Items per request in batch mode. */
export const BATCH_ITEMS = 100;
/** Requests in flight: single-item mode, batch mode. */
const SINGLE_CONCURRENCY = 4;
const BATCH_CONCURRENCY = 2;
/** Bound on the warm-up. */
const WARMUP_DEADLINE_MS = 30_000;
/** Bound on waiting for one phase's deliveries. */
const PHASE_DEADLINE_MS = 90_000;
const POLL_MS = 10;
/** Rounds of re-subscribing the subscriptions a burst failed. */
const SUBSCRIBE_RETRIES = 3;

type Mode = 'single' | 'batch';

/** One server variant's measurements in one mode. */
export interface HttpIngestCase {
  server: string;
  mode: Mode;
  subscribers: number;
  connected: number;
  items: number;
  busy?: string;
  runs: Array<{ itemsPerSec: number; deliveriesPerSec: number; delivered: number; expected: number; cpuSec: number; requests: number }>;
  median: { itemsPerSec: number; deliveriesPerSec: number; deliveriesPerCpuSec: number; deliveredPct: number; cpuSec: number };
  error?: string;
}

function item(marker: string): PublishItemJson {
  return { channel: CHANNEL, formats: { 'http-stream': { content: marker } } };
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

/** Sends `items` items in requests of `perRequest`, `concurrency` in flight; returns the request count. */
async function sendItems(publishUrl: string, items: number, perRequest: number, concurrency: number, seq: { next: number }): Promise<number> {
  const requests = Math.ceil(items / perRequest);
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, requests)) }, async () => {
    while (next < requests) {
      const r = next++;
      const batch: PublishItemJson[] = [];
      for (let i = r * perRequest; i < Math.min(items, (r + 1) * perRequest); i++) batch.push(item(formatMarker('m', seq.next++, nowUs())));
      const status = await publishItems(publishUrl, batch);
      if (status !== 200) throw new Error(`publish answered ${status}`);
    }
  }));
  return requests;
}

async function measureVariant(o: BenchOptions, server: ProxyServer, v: Variant, pool: SubscriberPool, busy: string | undefined): Promise<HttpIngestCase[]> {
  const capped = v.kind === 'pushpin' && !v.raise;
  const items = capped ? ITEMS_CAPPED : o.quick ? ITEMS_QUICK : ITEMS;
  const runs = capped ? 1 : o.runs;
  const mk = (mode: Mode): HttpIngestCase => ({ server: v.label, mode, subscribers: INGEST_SUBSCRIBERS, connected: 0, items, runs: [], median: { itemsPerSec: NaN, deliveriesPerSec: NaN, deliveriesPerCpuSec: NaN, deliveredPct: NaN, cpuSec: NaN }, ...(busy ? { busy } : {}) });
  const cases = [mk('single'), mk('batch')];
  // Pushpin answers a few percent of a subscribe burst with 502: retry those, bounded.
  const r = { ok: 0, errors: [] as string[] };
  for (let attempt = 0; attempt <= SUBSCRIBE_RETRIES && r.ok < INGEST_SUBSCRIBERS; attempt++) {
    const a = await pool.connect({ port: server.httpPort, path: `/stream?channel=${CHANNEL}`, total: INGEST_SUBSCRIBERS - r.ok, deadlineMs: 60_000 });
    r.ok += a.ok;
    r.errors.push(...a.errors);
    if (a.ok === 0) break;
  }
  for (const c of cases) {
    c.connected = r.ok;
    if (r.ok < INGEST_SUBSCRIBERS) c.error = `${INGEST_SUBSCRIBERS - r.ok} of ${INGEST_SUBSCRIBERS} subscriptions failed (${r.errors[0] ?? '?'})`;
  }
  if (r.ok === 0) return cases;
  const seq = { next: 0 };
  const warmEnd = Date.now() + WARMUP_DEADLINE_MS;
  let warmed = 0;
  for (let w = 0; Date.now() < warmEnd && warmed < r.ok; w++) {
    await publishItems(server.publishUrl, [item(formatMarker('w', w, nowUs()))]);
    warmed = await waitFor(pool, r.ok, 300, 'warmed');
  }
  if (warmed < r.ok) for (const c of cases) c.error = `${r.ok - warmed} subscribers never received the warm-up`;
  // Interleave the modes run by run so drift on a noisy box hits both alike.
  for (let run = 0; run < runs; run++) {
    for (const c of cases) {
      pool.phase();
      await sleep(100);
      const expected = r.ok * items;
      const cpu0 = server.sample().cpuSec;
      const start = nowUs();
      const requests = await sendItems(server.publishUrl, items, c.mode === 'single' ? 1 : BATCH_ITEMS, c.mode === 'single' ? SINGLE_CONCURRENCY : BATCH_CONCURRENCY, seq);
      await waitFor(pool, expected, capped ? Math.max(15_000, (expected / 2000) * 1000) : PHASE_DEADLINE_MS, 'received');
      const cpuSec = server.sample().cpuSec - cpu0;
      const rep = await pool.report();
      const spanSec = (rep.lastRecvUs - start) / 1e6;
      c.runs.push({ itemsPerSec: rep.received / r.ok / spanSec, deliveriesPerSec: rep.received / spanSec, delivered: rep.received, expected, cpuSec, requests });
      await sleep(200);
    }
  }
  for (const c of cases) {
    const m = (f: (x: HttpIngestCase['runs'][number]) => number): number => median(c.runs.map(f));
    c.median = { itemsPerSec: m((x) => x.itemsPerSec), deliveriesPerSec: m((x) => x.deliveriesPerSec), deliveriesPerCpuSec: m((x) => x.delivered / x.cpuSec), deliveredPct: m((x) => (100 * x.delivered) / x.expected), cpuSec: m((x) => x.cpuSec) };
  }
  return cases;
}

/** Runs the HTTP-ingest comparison for every configured proxy variant. */
export async function runHttpIngest(o: BenchOptions): Promise<ScenarioResult> {
  const backend = await startBackend(o.backendWorkers);
  const cases: HttpIngestCase[] = [];
  try {
    for (const v of variants(o)) {
      const busy = await busyNote(o.quick);
      let server: ProxyServer | undefined;
      const pool = SubscriberPool.start(Math.min(o.clientProcs, 4), INGEST_SUBSCRIBERS);
      try {
        server = await startProxy(v.kind, { routes: [`* ${backend.target}`], raiseRateLimits: v.raise, set: shippedSets(v), workers: o.gripdWorkers });
        cases.push(...await measureVariant(o, server, v, pool, busy));
      } catch (err) {
        for (const mode of ['single', 'batch'] as const) {
          cases.push({ server: v.label, mode, subscribers: INGEST_SUBSCRIBERS, connected: 0, items: 0, runs: [], median: { itemsPerSec: NaN, deliveriesPerSec: NaN, deliveriesPerCpuSec: NaN, deliveredPct: NaN, cpuSec: NaN }, error: (err as Error).message.split('\n')[0] });
        }
      } finally {
        await pool.stop();
        closePublishConnections();
        await server?.stop();
      }
    }
  } finally {
    await backend.stop();
  }
  const rows = cases.map((c) => [
    c.server, c.mode, String(c.connected), String(c.items), fmt(c.median.itemsPerSec), fmt(c.median.deliveriesPerSec), fmt(c.median.deliveriesPerCpuSec),
    fmt(c.median.deliveredPct, 1), c.runs.map((r) => fmt(r.itemsPerSec)).join(' / '), [c.error, c.busy ? `busy: ${c.busy}` : undefined].filter(Boolean).join('; '),
  ]);
  const lines = [
    `HTTP publish ingest: ${INGEST_SUBSCRIBERS} stream subscribers on one channel; single = 1 item per POST (${SINGLE_CONCURRENCY} in flight), batch = ${BATCH_ITEMS} items per POST (${BATCH_CONCURRENCY} in flight); median of ${o.runs} run(s) (shipped-limit rows: ${ITEMS_CAPPED} items, 1 run)`,
    formatTable(['server', 'mode', 'subs', 'items/run', 'items/s', 'deliveries/s', 'deliv/CPU-s', 'delivered %', 'runs items/s', 'note'], rows),
  ];
  for (const mode of ['single', 'batch'] as const) {
    const g = cases.find((c) => c.mode === mode && c.server === 'gripd');
    for (const label of ['pushpin (raised)', 'pushpin (shipped limits)']) {
      const p = cases.find((c) => c.mode === mode && c.server === label);
      if (g && p) lines.push(`ratio gripd/${label} ${mode}: items/s ${fmt(g.median.itemsPerSec / p.median.itemsPerSec, 2)}, per CPU-s ${fmt(g.median.deliveriesPerCpuSec / p.median.deliveriesPerCpuSec, 2)}`);
    }
  }
  return { scenario: 'http-ingest', text: lines.join('\n'), data: { params: { subscribers: INGEST_SUBSCRIBERS, items: o.quick ? ITEMS_QUICK : ITEMS, batchItems: BATCH_ITEMS, runs: o.runs }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log((await runHttpIngest(parseBenchArgs(process.argv.slice(2)))).text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
