import os from 'node:os';
import { existsSync } from 'node:fs';
import { gripdBuilt } from './paths.js';
import type { ProxyKind } from './servers.js';

/** Parsed command line shared by every scenario and bench/run.ts. */
export interface BenchOptions {
  /** Short runs for CI (the whole `--quick` suite stays under 2 minutes). */
  quick: boolean;
  /** Proxies to measure, in order. */
  servers: ProxyKind[];
  /** Runs per measurement; the median is reported (>= 1; default 3). */
  runs: number;
  /** Pass-through: seconds per wrk run. */
  durationSec: number;
  /** Pass-through: concurrent connections. */
  connections: number;
  /** Pass-through: wrk threads. */
  wrkThreads: number;
  /** Fan-out: subscriber counts to test. */
  subscribers: number[];
  /** Fan-out: publishes in the throughput phase. */
  publishes: number;
  /** Fan-out: spaced single publishes in the latency phase. */
  latencyPublishes: number;
  /** Fan-out: publish requests in flight during the throughput phase. */
  publishConcurrency: number;
  /** Fan-out: client processes. */
  clientProcs: number;
  /** Backend worker processes (node:cluster). */
  backendWorkers: number;
  /** gripd `[proxy] workers=`. */
  gripdWorkers: number;
  /**
   * Also run Pushpin with its shipped message_rate/message_hwm where rate limits matter
   * (fan-out, SSE, channels, HTTP ingest). Default: on, off with --quick.
   */
  pushpinDefaults: boolean;
  /** idle-memory: held connection counts. */
  idleConns: number[];
  /** holds: seconds per run spent opening holds. */
  holdsWindowSec: number;
  /** Scenario names given on the command line. */
  scenarios: string[];
  /** Notes on choices made (e.g. gripd skipped because not built). */
  notes: string[];
}

export const USAGE = `usage: npm run bench -- [options] [scenario...]
scenarios: passthrough fanout fanout-channels sse-fanout ws-fanout idle-memory holds
           http-ingest pull-ingest (default: all)
  --quick                 short runs (whole suite < 2 min), 1 run each
  --compare pushpin       also measure Pushpin 1.36 side by side
  --only pushpin|gripd    measure just one proxy
  --runs N                runs per measurement, median reported (default 3)
  --duration S            pass-through seconds per run (default 10)
  --connections N         pass-through connections (default 64)
  --threads N             wrk threads (default 2)
  --subscribers A,B,C     fan-out subscriber counts (default 1000,5000,10000)
  --publishes M           fan-out throughput-phase publishes (default 20)
  --publish-concurrency N publish requests in flight in the throughput phase (default 1)
  --latency-publishes K   fan-out spaced publishes for latency (default 5)
  --client-procs N        fan-out client processes (default 4)
  --backend-workers N     backend processes (default 1)
  --gripd-workers N       gripd [proxy] workers= (default: gripd's own, one per CPU)
  --pushpin-defaults      also run Pushpin with its shipped rate limits (default unless --quick)
  --no-pushpin-defaults   only Pushpin with message_rate/message_hwm raised
  --idle-conns A,B        idle-memory connection counts (default 10000,30000)
  --holds-window S        holds: seconds of opening holds per run (default 5)`;

function num(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n < 0) throw new Error(`${flag} needs a non-negative number, got '${v ?? ''}'`);
  return n;
}

/** Parses bench arguments; throws with a message naming the bad flag. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    quick: false, servers: ['gripd'], runs: 3, durationSec: 10, connections: 64, wrkThreads: 2,
    subscribers: [1000, 5000, 10000], publishes: 20, publishConcurrency: 1, latencyPublishes: 5, clientProcs: 4,
    backendWorkers: 1, gripdWorkers: os.availableParallelism(), pushpinDefaults: true, idleConns: [10_000, 30_000], holdsWindowSec: 5, scenarios: [], notes: [],
  };
  let compare = false; let only: ProxyKind | undefined;
  const set = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => argv[++i];
    switch (a) {
      case '--quick': o.quick = true; break;
      case '--compare': { const v = next(); if (v !== 'pushpin') throw new Error(`--compare supports only 'pushpin', got '${v ?? ''}'`); compare = true; break; }
      case '--only': { const v = next(); if (v !== 'pushpin' && v !== 'gripd') throw new Error(`--only needs pushpin or gripd, got '${v ?? ''}'`); only = v; break; }
      case '--runs': o.runs = Math.max(1, num(next(), a)); set.add('runs'); break;
      case '--duration': o.durationSec = Math.max(1, num(next(), a)); set.add('duration'); break;
      case '--connections': o.connections = Math.max(1, num(next(), a)); break;
      case '--threads': o.wrkThreads = Math.max(1, num(next(), a)); break;
      case '--subscribers': o.subscribers = (next() ?? '').split(',').map((s) => Math.max(1, num(s, a))); set.add('subscribers'); break;
      case '--publishes': o.publishes = Math.max(1, num(next(), a)); set.add('publishes'); break;
      case '--publish-concurrency': o.publishConcurrency = Math.max(1, num(next(), a)); break;
      case '--latency-publishes': o.latencyPublishes = Math.max(1, num(next(), a)); set.add('latency'); break;
      case '--client-procs': o.clientProcs = Math.max(1, num(next(), a)); break;
      case '--backend-workers': o.backendWorkers = Math.max(1, num(next(), a)); break;
      case '--gripd-workers': o.gripdWorkers = Math.max(1, num(next(), a)); break;
      case '--pushpin-defaults': o.pushpinDefaults = true; set.add('defaults'); break;
      case '--no-pushpin-defaults': o.pushpinDefaults = false; set.add('defaults'); break;
      case '--idle-conns': o.idleConns = (next() ?? '').split(',').map((s) => Math.max(1, num(s, a))); set.add('idle'); break;
      case '--holds-window': o.holdsWindowSec = Math.max(1, num(next(), a)); set.add('window'); break;
      case '-h': case '--help': throw new Error(USAGE);
      default:
        if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${USAGE}`);
        o.scenarios.push(a);
    }
  }
  if (o.quick) {
    if (!set.has('runs')) o.runs = 1;
    if (!set.has('duration')) o.durationSec = 3;
    if (!set.has('subscribers')) o.subscribers = [1000];
    if (!set.has('publishes')) o.publishes = 10;
    if (!set.has('latency')) o.latencyPublishes = 3;
    if (!set.has('defaults')) o.pushpinDefaults = false;
    if (!set.has('idle')) o.idleConns = [1_000];
    if (!set.has('window')) o.holdsWindowSec = 1;
  }
  o.servers = only ? [only] : compare ? ['gripd', 'pushpin'] : ['gripd'];
  if (o.servers.includes('gripd') && !gripdBuilt()) {
    o.servers = o.servers.filter((s) => s !== 'gripd');
    o.notes.push('gripd skipped: dist/src/cli/gripd.js is not built yet');
  }
  if (o.servers.includes('pushpin') && !existsSync('/usr/bin/pushpin')) {
    o.servers = o.servers.filter((s) => s !== 'pushpin');
    o.notes.push('Pushpin skipped: /usr/bin/pushpin is not installed (apt-get install -y pushpin)');
  }
  return o;
}
