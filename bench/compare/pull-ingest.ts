/**
 * PULL-socket ingest benchmark: S streaming subscribers (default 1 000) hold one channel
 * through the proxy; a ZeroMQ PUSH socket sends M publish items back to back to the
 * proxy's PULL socket (`push_in_spec`, tnetstring frames as pushpin-publish sends them).
 * Measures items/s delivered to every subscriber (M over the span from the first send to
 * the last delivery) and deliveries/s, gripd and Pushpin side by side; median of runs.
 *
 *   node dist/bench/compare/pull-ingest.js [--quick] [--compare pushpin] [--runs 3]
 */
import { pathToFileURL } from 'node:url';
import * as zmq from 'zeromq';
import { startBackend } from '../lib/backend.js';
import { startProxy, type ProxyServer, type ProxyKind } from '../lib/servers.js';
import { SubscriberPool } from '../lib/clients.js';
import { freePorts } from '../lib/ports.js';
import { nowUs, formatMarker } from '../lib/subscriber-protocol.js';
import { median, fmt, formatTable, sleep } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { encodeTnetstring } from '../../src/zmq/tnetstring.js';

const CHANNEL = 'bench';
/** Subscribers per run (the figure). */
const SUBSCRIBERS = 1000;
/** Items per throughput phase (quick: fewer). */
const ITEMS = 400;
const ITEMS_QUICK = 100;
/** Bound on the warm-up (until every subscriber saw a warm-up item). */
const WARMUP_DEADLINE_MS = 30_000;
/** Bound on waiting for one phase's deliveries. */
const PHASE_DEADLINE_MS = 120_000;
const POLL_MS = 10;
/** Pushpin's default push_in_spec port; its port offset applies to it. */
const PUSHPIN_PULL_BASE = 5560;
const PUSHPIN_PUBLISH_BASE = 5561;

export interface PullIngestCase {
  server: string;
  subscribers: number;
  connected: number;
  items: number;
  runs: Array<{ itemsPerSec: number; deliveriesPerSec: number; delivered: number; expected: number; cpuSec: number }>;
  median: { itemsPerSec: number; deliveriesPerSec: number; deliveredPct: number; cpuSec: number };
  error?: string;
}

function frame(content: string): Buffer {
  return Buffer.concat([Buffer.from('T'), encodeTnetstring({ channel: CHANNEL, formats: { 'http-stream': { content } } })]);
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

async function measure(o: BenchOptions, server: ProxyServer, pullPort: number, label: string, pool: SubscriberPool): Promise<PullIngestCase> {
  const items = o.quick ? ITEMS_QUICK : ITEMS;
  const c: PullIngestCase = { server: label, subscribers: SUBSCRIBERS, connected: 0, items, runs: [], median: { itemsPerSec: NaN, deliveriesPerSec: NaN, deliveredPct: NaN, cpuSec: NaN } };
  const push = new zmq.Push({ linger: 0, sendHighWaterMark: 100_000 });
  push.connect(`tcp://127.0.0.1:${pullPort}`);
  try {
    const r = await pool.connect({ port: server.httpPort, path: `/stream?channel=${CHANNEL}`, total: SUBSCRIBERS, deadlineMs: 60_000 });
    c.connected = r.ok;
    if (r.ok < SUBSCRIBERS) c.error = `${SUBSCRIBERS - r.ok} of ${SUBSCRIBERS} subscriptions failed (${r.errors[0] ?? '?'})`;
    if (r.ok === 0) return c;
    const warmEnd = Date.now() + WARMUP_DEADLINE_MS;
    let warmed = 0;
    for (let seq = 0; Date.now() < warmEnd && warmed < r.ok; seq++) {
      await push.send(frame(formatMarker('w', seq, nowUs())));
      warmed = await waitFor(pool, r.ok, 300, 'warmed');
    }
    if (warmed < r.ok) c.error = `${r.ok - warmed} subscribers never received the warm-up`;
    let seq = 0;
    for (let run = 0; run < o.runs; run++) {
      pool.phase();
      await sleep(100);
      const expected = r.ok * items;
      const cpu0 = server.sample().cpuSec;
      const start = nowUs();
      for (let i = 0; i < items; i++) await push.send(frame(formatMarker('m', seq++, nowUs())));
      await waitFor(pool, expected, PHASE_DEADLINE_MS, 'received');
      const cpuSec = server.sample().cpuSec - cpu0;
      const rep = await pool.report();
      const spanSec = (rep.lastRecvUs - start) / 1e6;
      c.runs.push({ itemsPerSec: rep.received / r.ok / spanSec, deliveriesPerSec: rep.received / spanSec, delivered: rep.received, expected, cpuSec });
      await sleep(200);
    }
    const m = (f: (x: PullIngestCase['runs'][number]) => number): number => median(c.runs.map(f));
    c.median = { itemsPerSec: m((x) => x.itemsPerSec), deliveriesPerSec: m((x) => x.deliveriesPerSec), deliveredPct: m((x) => (100 * x.delivered) / x.expected), cpuSec: m((x) => x.cpuSec) };
    return c;
  } finally {
    push.close();
  }
}

/** Runs the PULL-ingest comparison for every configured proxy. */
export async function runPullIngest(o: BenchOptions): Promise<ScenarioResult> {
  const backend = await startBackend(o.backendWorkers);
  const cases: PullIngestCase[] = [];
  try {
    for (const kind of o.servers as ProxyKind[]) {
      const label = kind === 'pushpin' ? 'pushpin (raised)' : 'gripd';
      let server: ProxyServer | undefined;
      const pool = SubscriberPool.start(Math.min(o.clientProcs, 4), SUBSCRIBERS);
      try {
        let pullPort: number;
        if (kind === 'gripd') {
          pullPort = (await freePorts(1))[0]!;
          server = await startProxy(kind, { routes: [`* ${backend.target}`], set: [`handler.push_in_spec=tcp://127.0.0.1:${pullPort}`], workers: o.gripdWorkers });
        } else {
          server = await startProxy(kind, { routes: [`* ${backend.target}`], raiseRateLimits: true });
          // Pushpin moves its default push_in_spec by the same port offset as the publish port.
          pullPort = PUSHPIN_PULL_BASE + (server.publishPort - PUSHPIN_PUBLISH_BASE);
        }
        cases.push(await measure(o, server, pullPort, label, pool));
      } catch (err) {
        cases.push({ server: label, subscribers: SUBSCRIBERS, connected: 0, items: 0, runs: [], median: { itemsPerSec: NaN, deliveriesPerSec: NaN, deliveredPct: NaN, cpuSec: NaN }, error: (err as Error).message.split('\n')[0] });
      } finally {
        await pool.stop();
        await server?.stop();
      }
    }
  } finally {
    await backend.stop();
  }
  const rows = cases.map((c) => [
    c.server, String(c.connected), String(c.items), fmt(c.median.itemsPerSec), fmt(c.median.deliveriesPerSec), fmt(c.median.deliveredPct, 1), fmt(c.median.cpuSec, 2),
    c.runs.map((r) => fmt(r.itemsPerSec)).join(' / '), c.error ?? '',
  ]);
  const text = [
    `PULL ingest: ${SUBSCRIBERS} stream subscribers on one channel; items pushed back to back to push_in_spec (tnetstring), median of ${o.runs} run(s)`,
    formatTable(['server', 'subs', 'items/run', 'items/s', 'deliveries/s', 'delivered %', 'server CPU s', 'runs items/s', 'note'], rows),
  ].join('\n');
  return { scenario: 'pull-ingest', text, data: cases };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  (async () => {
    const o = parseBenchArgs(process.argv.slice(2));
    try {
      const r = await runPullIngest(o);
      console.log(r.text);
    } finally {
      killAll();
    }
  })().catch((err: unknown) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
}
