/**
 * Idle memory per held stream connection.
 *
 *   node dist/bench/micro/held-memory.js [--conns 10000] [--runs 3] [--target test|backend]
 *        [--pushpin] [--heap N [--keep-snapshots DIR]]
 *
 * Starts gripd through its CLI (`workers=1`, one route to the built-in `test` target or to
 * a loopback backend answering `Grip-Hold: stream`), opens `--conns` idle streams from
 * several client processes on 127.0.0.x, and reports (RSS after - RSS before) / conns
 * summed over the server's process tree, median of `--runs` fresh servers. `--pushpin`
 * measures Pushpin 1.36 the same way (all of its processes). `--heap N` instead takes a
 * V8 heap snapshot of gripd before and after N streams (via --heapsnapshot-signal) and
 * prints the retained self size per connection by constructor: the list of what to cut.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SubscriberPool } from '../lib/clients.js';
import { startBackend, type BenchBackend } from '../lib/backend.js';
import { startGripd, startPushpin, type ProxyServer } from '../lib/servers.js';
import { median, sleep } from '../lib/stats.js';
import { treeNames } from '../lib/proc.js';

/** Client processes the connections are spread over (each on its own 127.0.0.x). */
const CLIENT_PROCS = 2;
/** RSS is taken as settled when two samples this far apart differ by less than RSS_SETTLE_RATIO. */
const RSS_SETTLE_INTERVAL_MS = 1000;
const RSS_SETTLE_RATIO = 0.005;
/** Bound on settle samples (the box may never go quiet). */
const RSS_SETTLE_MAX_SAMPLES = 15;
/** Bound on waiting for a heap snapshot file to appear and stop growing. */
const SNAPSHOT_WAIT_MS = 120_000;

interface Options { conns: number; runs: number; target: 'test' | 'backend'; pushpin: boolean; heap: number; keepDir: string | undefined }

function parseArgs(argv: string[]): Options {
  const o: Options = { conns: 10_000, runs: 3, target: 'test', pushpin: false, heap: 0, keepDir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--conns') o.conns = Number(val());
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--target') {
      const t = val();
      if (t !== 'test' && t !== 'backend') throw new Error(`--target: expected test or backend, got '${t}'`);
      o.target = t;
    } else if (a === '--pushpin') o.pushpin = true;
    else if (a === '--heap') o.heap = Number(val());
    else if (a === '--keep-snapshots') o.keepDir = val();
    else throw new Error(`unknown argument '${a}'`);
  }
  if (!Number.isInteger(o.conns) || o.conns < 1) throw new Error('--conns: expected a positive integer');
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs: expected a positive integer');
  return o;
}

/** Samples RSS until two samples a second apart agree within RSS_SETTLE_RATIO. */
async function settledRss(server: ProxyServer): Promise<number> {
  let prev = server.sample().rssBytes;
  for (let i = 0; i < RSS_SETTLE_MAX_SAMPLES; i++) {
    await sleep(RSS_SETTLE_INTERVAL_MS);
    const now = server.sample().rssBytes;
    if (Math.abs(now - prev) <= prev * RSS_SETTLE_RATIO) return now;
    prev = now;
  }
  return prev;
}

async function withServer<T>(kind: 'gripd' | 'pushpin', o: Options, env: Record<string, string>, body: (s: ProxyServer, path: string) => Promise<T>): Promise<T> {
  let backend: BenchBackend | undefined;
  if (o.target === 'backend') backend = await startBackend(1);
  const routes = [`* ${backend !== undefined ? backend.target : 'test'}`];
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let server: ProxyServer;
  try {
    server = kind === 'gripd' ? await startGripd({ routes, workers: 1 }) : await startPushpin({ routes, raiseRateLimits: true });
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
  try {
    return await body(server, '/stream?channel=x');
  } finally {
    await server.stop();
    await backend?.stop();
  }
}

async function openStreams(server: ProxyServer, streamPath: string, n: number): Promise<{ pool: SubscriberPool; ok: number }> {
  const pool = SubscriberPool.start(CLIENT_PROCS, n);
  const r = await pool.connect({ port: server.httpPort, path: streamPath, total: n, deadlineMs: Math.max(120_000, n * 12) });
  if (r.failed > 0) console.error(`  ${r.failed} of ${n} streams failed: ${r.errors.slice(0, 3).join('; ')}`);
  return { pool, ok: r.ok };
}

/** One measurement: KB of RSS per held stream over the server's whole process tree. */
async function measureOnce(kind: 'gripd' | 'pushpin', o: Options): Promise<number> {
  return withServer(kind, o, {}, async (server, streamPath) => {
    const before = await settledRss(server);
    const { pool, ok } = await openStreams(server, streamPath, o.conns);
    try {
      const after = await settledRss(server);
      const kb = (after - before) / ok / 1024;
      console.log(`  ${kind}: ${ok} streams, RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB over [${treeNames(server.pid).join(', ')}]: ${kb.toFixed(2)} KB/conn`);
      return kb;
    } finally {
      await pool.stop();
    }
  });
}

interface HeapSummary { byName: Map<string, { count: number; bytes: number }>; total: number }

/** Sums self sizes of a .heapsnapshot by constructor (objects) or node type (the rest). */
export function summariseSnapshot(json: string): HeapSummary {
  const snap = JSON.parse(json) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const byName = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!] ?? '?';
    const size = snap.nodes[i + iSize]!;
    total += size;
    let key: string;
    if (type === 'object' || type === 'native') key = `${snap.strings[snap.nodes[i + iName]!] ?? '?'}`;
    else if (type === 'closure') key = '(closure)';
    else if (type === 'hidden' || type === 'code') key = `(${type}) ${snap.strings[snap.nodes[i + iName]!] ?? '?'}`.slice(0, 60);
    else key = `(${type})`;
    const e = byName.get(key);
    if (e === undefined) byName.set(key, { count: 1, bytes: size });
    else {
      e.count++;
      e.bytes += size;
    }
  }
  return { byName, total };
}

async function takeSnapshot(pid: number, dir: string, label: string): Promise<HeapSummary> {
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  const end = Date.now() + SNAPSHOT_WAIT_MS;
  let file: string | undefined;
  let lastSize = -1;
  while (Date.now() < end) {
    await sleep(500);
    file ??= (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file === undefined) continue;
    const text = await readFile(path.join(dir, file), 'utf8');
    // Written in pieces: done when it parses (ends with the strings table) and stopped growing.
    if (text.length === lastSize && text.trimEnd().endsWith('}')) {
      console.log(`  snapshot ${label}: ${(text.length / 2 ** 20).toFixed(1)} MiB`);
      return summariseSnapshot(text);
    }
    lastSize = text.length;
  }
  throw new Error(`no heap snapshot (${label}) within ${SNAPSHOT_WAIT_MS} ms`);
}

async function heapBreakdown(o: Options): Promise<void> {
  const dir = o.keepDir ?? (await mkdtemp(path.join(tmpdir(), 'held-memory-heap-')));
  try {
    await withServer('gripd', o, { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}` }, async (server, streamPath) => {
      const a = await takeSnapshot(server.pid, dir, 'before');
      const { pool, ok } = await openStreams(server, streamPath, o.heap);
      try {
        await sleep(2000);
        const b = await takeSnapshot(server.pid, dir, 'after');
        const rows: Array<[string, number, number]> = [];
        for (const [name, e] of b.byName) {
          const p = a.byName.get(name);
          const bytes = e.bytes - (p?.bytes ?? 0);
          const count = e.count - (p?.count ?? 0);
          if (Math.abs(bytes) / ok >= 8) rows.push([name, count / ok, bytes / ok]);
        }
        rows.sort((x, y) => y[2] - x[2]);
        console.log(`V8 heap per held stream (${ok} streams): ${((b.total - a.total) / ok).toFixed(0)} bytes`);
        console.log('  bytes/conn  objs/conn  constructor or type');
        for (const [name, count, bytes] of rows) console.log(`  ${bytes.toFixed(0).padStart(10)}  ${count.toFixed(2).padStart(9)}  ${name}`);
      } finally {
        await pool.stop();
      }
    });
  } finally {
    if (o.keepDir === undefined) await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.heap > 0) {
    await heapBreakdown(o);
    return;
  }
  const kinds: Array<'gripd' | 'pushpin'> = o.pushpin ? ['gripd', 'pushpin'] : ['gripd'];
  const results = new Map<string, number[]>();
  for (let r = 0; r < o.runs; r++) {
    for (const k of kinds) {
      const kb = await measureOnce(k, o);
      results.set(k, [...(results.get(k) ?? []), kb]);
    }
  }
  for (const [k, list] of results) {
    console.log(`${k} (${o.target}): ${median(list).toFixed(1)} KB per idle held stream (median of ${list.length}: ${list.map((x) => x.toFixed(1)).join(' / ')})`);
  }
  const g = results.get('gripd');
  const p = results.get('pushpin');
  if (g !== undefined && p !== undefined) console.log(`gripd / pushpin: ${(median(g) / median(p)).toFixed(2)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
