import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm, readFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { trackChild, stopChild } from './children.js';
import { freePorts, freePortOffset, waitForPort } from './ports.js';
import { GRIPD_BIN, pushpinReferenceScript, gripdBuilt } from './paths.js';
import { sampleTree, type TreeSample } from './proc.js';
import { sleep } from './stats.js';

/** Which proxy a server is. */
export type ProxyKind = 'gripd' | 'pushpin';

/** A running proxy under test. */
export interface ProxyServer {
  kind: ProxyKind;
  /** Root pid of the server's process tree (Pushpin's runner; gripd's CLI). */
  pid: number;
  httpPort: number;
  publishPort: number;
  /** Base URL for clients, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** Base URL of the HTTP publish API. */
  publishUrl: string;
  /** File receiving the server's stdout and stderr. */
  logFile: string;
  /** Settings changed from the server's defaults, for reports (e.g. message_rate=1000000). */
  tuning: string[];
  /** CPU time and RSS over the whole process tree. */
  sample(): TreeSample;
  /** The server's log so far (last `maxBytes`). */
  log(maxBytes?: number): Promise<string>;
  /** Stops the whole tree (SIGTERM, then SIGKILL after 5 s) and removes its temp dir. */
  stop(): Promise<void>;
}

/** Options shared by both start functions. */
export interface StartOptions {
  /** Routes file lines, e.g. ['* 127.0.0.1:8080']. Default ['* test']. */
  routes?: string[];
  /** Raise `message_rate`/`message_hwm` far above their defaults (2 500/s, 25 000). */
  raiseRateLimits?: boolean;
  /** Extra config keys as 'section.key=value'. */
  set?: string[];
  /** gripd only: `[proxy] workers=` (default 1). */
  workers?: number;
  /** Deadline for the ports to open, ms (default 20 000). */
  startTimeoutMs?: number;
}

/** Values used for "raised" rate limits: high enough never to throttle a benchmark. */
export const RAISED_MESSAGE_RATE = 1_000_000;
export const RAISED_MESSAGE_HWM = 1_000_000;

function rateSets(opts: StartOptions): string[] {
  const sets = [...(opts.set ?? [])];
  if (opts.raiseRateLimits) sets.push(`handler.message_rate=${RAISED_MESSAGE_RATE}`, `handler.message_hwm=${RAISED_MESSAGE_HWM}`);
  return sets;
}

async function tail(file: string, maxBytes = 8192): Promise<string> {
  try {
    const b = await readFile(file);
    return b.subarray(Math.max(0, b.length - maxBytes)).toString('utf8');
  } catch { return ''; }
}

/** Log lines Pushpin 1.36 prints once each service is up. */
const PUSHPIN_STARTED_LINES = ['[proxy] started', '[handler] started', '[zurl] started'];
/** Grace after the last service says started, for ZeroMQ sockets to connect. */
const PUSHPIN_SETTLE_MS = 300;

/** Resolves once every line in `needles` appears in the log file; rejects after `deadlineMs`. */
async function waitLogLines(file: string, needles: string[], deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const text = await tail(file, 1 << 20);
    if (needles.every((n) => text.includes(n))) return;
    if (Date.now() > end) throw new Error(`pushpin did not log ${needles.join(', ')} within ${deadlineMs} ms:\n${text.slice(-2000)}`);
    await sleep(50);
  }
}

/** Waits for ports while watching for an early exit of the child. */
async function waitReady(child: ChildProcess, ports: number[], deadlineMs: number, logFile: string, what: string): Promise<void> {
  let onExit: (() => void) | undefined;
  const early = new Promise<never>((_, reject) => {
    onExit = () => { void tail(logFile).then((t) => reject(new Error(`${what} exited during start-up:\n${t}`))); };
    child.once('exit', onExit);
  });
  try {
    await Promise.race([Promise.all(ports.map((p) => waitForPort(p, '127.0.0.1', deadlineMs))), early]);
  } finally {
    if (onExit) child.off('exit', onExit);
  }
  early.catch(() => undefined);
}

/**
 * Starts Debian's Pushpin 1.36 through shared/tools/pushpin-reference (which lets zurl
 * reach loopback backends) on a free client port and a free port offset. Its processes
 * (runner, condure, zurl, pushpin-proxy, pushpin-handler) form one process group.
 */
export async function startPushpin(opts: StartOptions = {}): Promise<ProxyServer> {
  const script = pushpinReferenceScript();
  if (!script) throw new Error('pushpin-reference script not found (set PUSHPIN_REFERENCE or lay shared/ beside the clone)');
  const [httpPort] = (await freePorts(1)) as [number];
  const offset = await freePortOffset();
  const publishPort = 5561 + offset;
  const logDir = await mkdtemp(path.join(tmpdir(), 'bench-pushpin-'));
  const logFile = path.join(logDir, 'pushpin.log');
  const sets = rateSets(opts);
  const args = ['--http-port', String(httpPort), '--port-offset', String(offset)];
  for (const r of opts.routes ?? ['* test']) args.push('--route', r);
  for (const s of sets) args.push('--set', s);
  const fd = openSync(logFile, 'a');
  const child = trackChild(spawn('bash', [script, ...args], { stdio: ['ignore', fd, fd], detached: true }), true);
  closeSync(fd);
  const confDirOf = async () => /config in (\S+)/.exec(await tail(logFile, 65536))?.[1];
  try {
    await waitReady(child, [httpPort, publishPort], opts.startTimeoutMs ?? 20000, logFile, 'pushpin');
    // Open ports are not enough: zurl starts last, and requests before it is up get 502.
    await waitLogLines(logFile, PUSHPIN_STARTED_LINES, opts.startTimeoutMs ?? 20000);
    await sleep(PUSHPIN_SETTLE_MS);
  } catch (err) {
    await stopChild(child, 'SIGKILL', 1000);
    const d = await confDirOf();
    if (d && d.includes('pushpin-ref-')) await rm(d, { recursive: true, force: true });
    await rm(logDir, { recursive: true, force: true });
    throw err;
  }
  // The script leaves its temp config dir behind; learn it so stop() can remove it.
  const confDir = await confDirOf();
  return {
    kind: 'pushpin', pid: child.pid!, httpPort, publishPort,
    url: `http://127.0.0.1:${httpPort}`, publishUrl: `http://127.0.0.1:${publishPort}`,
    logFile, tuning: sets.map((s) => s.replace(/^[a-z]+\./, '')),
    sample: () => sampleTree(child.pid!),
    log: (n) => tail(logFile, n),
    async stop() {
      await stopChild(child, 'SIGTERM', 5000);
      if (confDir && confDir.includes('pushpin-ref-')) await rm(confDir, { recursive: true, force: true });
      await rm(logDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts gripd through its CLI (`node dist/src/cli/gripd.js --config FILE`) with a temp
 * pushpin.conf on free loopback ports, logging to a file.
 */
export async function startGripd(opts: StartOptions = {}): Promise<ProxyServer> {
  if (!gripdBuilt()) throw new Error(`gripd CLI not built: ${GRIPD_BIN} is missing (run npx tsc -p .)`);
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-gripd-'));
  const [httpPort, publishPort, pullPort, subPort, commandPort] = (await freePorts(5)) as [number, number, number, number, number];
  await writeFile(path.join(dir, 'routes'), (opts.routes ?? ['* test']).join('\n') + '\n');
  const sections: Record<string, string[]> = {
    global: [`rundir=${dir}/run`, 'ipc_prefix=gripd-bench-'],
    runner: [`http_port=${httpPort}`, `logdir=${dir}/log`, 'log_level=2'],
    proxy: ['routesfile=routes', `workers=${opts.workers ?? 1}`],
    handler: [
      `push_in_spec=tcp://127.0.0.1:${pullPort}`,
      `push_in_sub_specs=tcp://127.0.0.1:${subPort}`,
      'push_in_http_addr=127.0.0.1',
      `push_in_http_port=${publishPort}`,
      `command_spec=tcp://127.0.0.1:${commandPort}`,
      `stats_spec=ipc://${dir}/run/stats`,
    ],
  };
  const sets = rateSets(opts);
  for (const s of sets) {
    const m = /^(\w+)\.([\w-]+)=(.*)$/.exec(s);
    if (!m) throw new Error(`bad --set '${s}': expected section.key=value`);
    const list = sections[m[1]!] ?? (sections[m[1]!] = []);
    const i = list.findIndex((l) => l.startsWith(`${m[2]}=`));
    if (i >= 0) list[i] = `${m[2]}=${m[3]}`; else list.push(`${m[2]}=${m[3]}`);
  }
  const conf = Object.entries(sections).map(([sec, lines]) => [`[${sec}]`, ...lines].join('\n')).join('\n\n') + '\n';
  const configFile = path.join(dir, 'pushpin.conf');
  await writeFile(configFile, conf);
  const logFile = path.join(dir, 'gripd.log');
  const fd = openSync(logFile, 'a');
  // BENCH_GRIPD_NODE_ARGS: extra node options for gripd's main process (e.g. `--cpu-prof
  // --cpu-prof-dir=/tmp/prof`); the workers take theirs from GRIPD_WORKER_EXEC_ARGV.
  const nodeArgs = (process.env['BENCH_GRIPD_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');
  const child = trackChild(spawn(process.execPath, [...nodeArgs, GRIPD_BIN, '--config', configFile], { stdio: ['ignore', fd, fd], detached: true }), true);
  closeSync(fd);
  try {
    await waitReady(child, [httpPort, publishPort], opts.startTimeoutMs ?? 20000, logFile, 'gripd');
  } catch (err) {
    await stopChild(child, 'SIGKILL', 1000);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    kind: 'gripd', pid: child.pid!, httpPort, publishPort,
    url: `http://127.0.0.1:${httpPort}`, publishUrl: `http://127.0.0.1:${publishPort}`,
    logFile, tuning: sets.map((s) => s.replace(/^[a-z]+\./, '')),
    sample: () => sampleTree(child.pid!),
    log: (n) => tail(logFile, n),
    async stop() {
      await stopChild(child, 'SIGTERM', 5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts the named proxy. */
export function startProxy(kind: ProxyKind, opts: StartOptions = {}): Promise<ProxyServer> {
  return kind === 'gripd' ? startGripd(opts) : startPushpin(opts);
}
