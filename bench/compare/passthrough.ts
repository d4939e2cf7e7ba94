/**
 * Pass-through benchmark: wrk (a separate process) with C connections for D seconds
 * against the loopback backend directly, through gripd and through Pushpin, in one run.
 * Prints req/s medians, each proxy's ratio to direct, and gripd-ratio / Pushpin-ratio.
 *
 *   node dist/bench/compare/passthrough.js [--quick] [--compare pushpin] [--runs N] ...
 */
import { startBackend, type BenchBackend } from '../lib/backend.js';
import { startProxy, type ProxyServer, type ProxyKind } from '../lib/servers.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';
import { median, fmt, formatTable } from '../lib/stats.js';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { pathToFileURL } from 'node:url';

/** Request path: a small fixed 200 from the backend (see backend-routes.ts). */
const PATH = '/hello';
/** Warm-up seconds per target before measuring (JIT, pools, zurl connections). */
const WARMUP_SEC = 2;

interface TargetRuns {
  name: string;
  runs: Array<WrkResult & { serverCpuSec?: number; serverRssBytes?: number }>;
  medianRps: number;
  error?: string;
}

/** Runs the pass-through comparison. */
export async function runPassthrough(o: BenchOptions): Promise<ScenarioResult> {
  const backend: BenchBackend = await startBackend(o.backendWorkers);
  const proxies: ProxyServer[] = [];
  const targets: TargetRuns[] = [{ name: 'direct', runs: [], medianRps: NaN }];
  const errors: string[] = [];
  try {
    for (const kind of o.servers) {
      try {
        proxies.push(await startProxy(kind, { routes: [`* ${backend.target}`], workers: o.gripdWorkers }));
        targets.push({ name: kind, runs: [], medianRps: NaN });
      } catch (err) {
        errors.push(`${kind}: failed to start: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    const urlOf = (name: string) => name === 'direct' ? backend.url : proxies.find((p) => p.kind === name)!.url;
    // Check each target answers 200 before loading it, and warm it up.
    for (const t of targets) {
      try {
        const r = await fetch(urlOf(t.name) + PATH);
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`GET ${PATH} answered ${r.status}`);
        await runWrk({ url: urlOf(t.name) + PATH, connections: o.connections, durationSec: o.quick ? 1 : WARMUP_SEC, threads: o.wrkThreads });
      } catch (err) {
        t.error = (err as Error).message.split('\n')[0];
      }
    }
    // Interleave targets run by run so slow drift on a noisy box hits them alike.
    for (let i = 0; i < o.runs; i++) {
      for (const t of targets) {
        if (t.error) continue;
        const proxy = proxies.find((p) => p.kind === t.name);
        const before = proxy?.sample() ?? backend.sample();
        const r = await runWrk({ url: urlOf(t.name) + PATH, connections: o.connections, durationSec: o.durationSec, threads: o.wrkThreads });
        const after = proxy?.sample() ?? backend.sample();
        t.runs.push({ ...r, raw: '', serverCpuSec: after.cpuSec - before.cpuSec, serverRssBytes: after.rssBytes });
      }
    }
  } finally {
    for (const p of proxies) await p.stop();
    await backend.stop();
  }
  for (const t of targets) t.medianRps = median(t.runs.map((r) => r.requestsPerSec));
  const direct = targets[0]!.medianRps;
  const ratio = (name: string) => (targets.find((t) => t.name === name)?.medianRps ?? NaN) / direct;
  const rows = targets.map((t) => [
    t.name,
    t.error ? `error: ${t.error}` : fmt(t.medianRps),
    t.runs.map((r) => fmt(r.requestsPerSec)).join(' / ') || '-',
    t.name === 'direct' ? '1' : fmt(ratio(t.name), 3),
    fmt(median(t.runs.map((r) => r.p99Ms)), 2),
    fmt(median(t.runs.map((r) => (r.serverCpuSec ?? NaN) / o.durationSec)), 2),
    fmt(median(t.runs.map((r) => r.non2xx + r.socketErrors))),
  ]);
  const gOverP = ratio('gripd') / ratio('pushpin');
  const lines = [
    `pass-through: wrk -t${o.wrkThreads} -c${o.connections} -d${o.durationSec}s GET ${PATH}, median of ${o.runs} run(s); backend: node:http x${o.backendWorkers}`,
    formatTable(['target', 'req/s (median)', 'runs', 'ratio to direct', 'p99 ms', 'server CPU cores', 'errors'], rows),
  ];
  if (Number.isFinite(gOverP)) lines.push(`gripd ratio / Pushpin ratio: ${fmt(gOverP, 2)}`);
  for (const e of [...errors, ...o.notes]) lines.push(`note: ${e}`);
  return {
    scenario: 'passthrough',
    text: lines.join('\n'),
    data: { params: { path: PATH, connections: o.connections, durationSec: o.durationSec, runs: o.runs, threads: o.wrkThreads, backendWorkers: o.backendWorkers, gripdWorkers: o.gripdWorkers }, targets, ratios: Object.fromEntries(targets.map((t) => [t.name, ratio(t.name)])), gripdOverPushpin: gOverP, errors },
  };
}

export type { ProxyKind };

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const o = parseBenchArgs(process.argv.slice(2));
    const r = await runPassthrough(o);
    console.log(r.text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
