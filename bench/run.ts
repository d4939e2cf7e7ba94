/**
 * Benchmark entry point:
 *
 *   npm run bench -- [--quick] [--compare pushpin] [scenario...]
 *
 * Runs the named scenarios (default: all), prints each table, and writes everything
 * measured to .bench-results/<timestamp>.json. Every child process (proxies, backend,
 * load generators, client workers) is killed at the end, on error, and on Ctrl-C.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseBenchArgs, USAGE } from './lib/options.js';
import { killAll } from './lib/children.js';
import { REPO_ROOT } from './lib/paths.js';
import type { ScenarioResult } from './lib/result.js';
import type { BenchOptions } from './lib/options.js';
import { runPassthrough } from './compare/passthrough.js';
import { runFanout } from './compare/fanout.js';
import { runPullIngest } from './compare/pull-ingest.js';
import { runFanoutChannels } from './compare/fanout-channels.js';
import { runSseFanout } from './compare/sse-fanout.js';
import { runWsFanout } from './compare/ws-fanout.js';
import { runIdleMemory } from './compare/idle-memory.js';
import { runHolds } from './compare/holds.js';
import { runHttpIngest } from './compare/http-ingest.js';

/** Scenario table: add a scenario by adding a line here. */
export const SCENARIOS: Record<string, (o: BenchOptions) => Promise<ScenarioResult>> = {
  passthrough: runPassthrough,
  fanout: runFanout,
  'fanout-channels': runFanoutChannels,
  'sse-fanout': runSseFanout,
  'ws-fanout': runWsFanout,
  'idle-memory': runIdleMemory,
  holds: runHolds,
  'http-ingest': runHttpIngest,
  'pull-ingest': runPullIngest,
};

function version(cmd: string, args: string[]): string {
  let out: string;
  try { out = execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] }); } catch (err) {
    // wrk -v prints its version and exits 1.
    out = String((err as { stdout?: unknown }).stdout ?? '') || 'not installed';
  }
  return out.split('\n')[0]!.trim();
}

/** Machine and version facts printed above the tables and stored in the JSON. */
export function machineFacts(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(), node: process.version, pushpin: version('pushpin', ['--version']), wrk: version('wrk', ['-v']).replace(/Copyright.*/, '').trim(),
  };
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try { o = parseBenchArgs(process.argv.slice(2)); } catch (err) { console.error((err as Error).message); return 2; }
  const names = o.scenarios.length > 0 ? o.scenarios : Object.keys(SCENARIOS);
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length > 0) { console.error(`unknown scenario(s): ${unknown.join(', ')}\n${USAGE}`); return 2; }
  if (o.servers.length === 0) console.error('warning: no proxy to measure (see notes); only the direct baseline runs');
  const facts = machineFacts();
  console.log(`machine: ${facts.cpus} x ${facts.cpuModel}, ${facts.memoryGiB} GiB, Linux ${facts.kernel}; node ${facts.node}; ${facts.pushpin}; ${facts.wrk}`);
  console.log(`servers: ${o.servers.join(', ') || '(none)'}${o.quick ? ' (quick)' : ''}`);
  for (const n of o.notes) console.log(`note: ${n}`);
  const started = Date.now();
  const results: ScenarioResult[] = [];
  let failed = false;
  for (const name of names) {
    console.log(`\n== ${name}`);
    try {
      const r = await SCENARIOS[name]!(o);
      results.push(r);
      console.log(r.text);
    } catch (err) {
      failed = true;
      console.error(`${name} failed: ${(err as Error).stack ?? String(err)}`);
      killAll();
    }
  }
  const dir = path.join(REPO_ROOT, '.bench-results');
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  for (const r of results) {
    for (const [name, content] of Object.entries(r.files ?? {})) {
      await writeFile(path.join(dir, `${stamp}-${name}`), content);
      await writeFile(path.join(dir, `latest-${name}`), content);
      console.log(`wrote .bench-results/${stamp}-${name} (and latest-${name})`);
    }
  }
  await writeFile(file, JSON.stringify({ facts, options: o, elapsedSec: (Date.now() - started) / 1000, results }, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), file)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return failed ? 1 : 0;
}

try {
  process.exitCode = await main();
} finally {
  killAll();
}
