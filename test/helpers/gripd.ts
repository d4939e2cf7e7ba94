import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, waitForPort } from './ports.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Path of the compiled CLI (tests run from dist/test/...). */
export const GRIPD_BIN = path.resolve(here, '../../src/cli/gripd.js');

export interface GripdOptions {
  /** Routes file lines (default: ['* test']). */
  routes?: string[];
  /** Extra config lines per section, e.g. { proxy: ['debug=true'] }. */
  sections?: Partial<Record<'global' | 'runner' | 'proxy' | 'handler', string[]>>;
  /** Extra CLI arguments. */
  args?: string[];
  /** Extra environment. */
  env?: Record<string, string>;
  /** Whether to wait for the publish port too (default true). */
  waitPublish?: boolean;
}

export interface GripdInstance {
  proc: ChildProcess;
  dir: string;
  configFile: string;
  routesFile: string;
  httpPort: number;
  publishPort: number;
  pullPort: number;
  subPort: number;
  commandPort: number;
  /** Base URL for client requests. */
  url: string;
  /** Base URL of the HTTP publish API. */
  publishUrl: string;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  /** Sends SIGTERM and waits for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Worker pids (workers > 1) from the primary's "worker N ready (pid P)" lines, latest per worker. */
export function workerPids(output: string): Map<number, number> {
  const pids = new Map<number, number>();
  for (const m of output.matchAll(/worker (\d+) ready \(pid (\d+)\)/g)) pids.set(Number(m[1]), Number(m[2]));
  return pids;
}

/** Starts with fresh ports when another test bound one of ours first. */
const START_ATTEMPTS_MAX = 4;
const PORT_TAKEN = /EADDRINUSE|Address already in use/;
/** Bound on waiting for the "gripd ready" line once the ports accept. */
const READY_DEADLINE_MS = 15_000;
/** Bound on waiting for an exited gripd's output to drain. */
const PIPE_DRAIN_MS = 1_000;

/**
 * Starts gripd as a user would: the CLI with a temp pushpin.conf and routes file on
 * free loopback ports. Resolves when the client (and publish) ports accept.
 *
 * Tests run in parallel processes, so a port found free can be bound by another test
 * before this gripd binds it; gripd then exits naming the address, and only that case
 * is retried, with new ports. Any other early exit fails at once.
 */
export async function startGripd(opts: GripdOptions = {}): Promise<GripdInstance> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGripdOnce(opts);
    } catch (err) {
      if (attempt >= START_ATTEMPTS_MAX || !(err instanceof PortTakenError)) throw err;
    }
  }
}

class PortTakenError extends Error {}

/** Whether gripd started with these options prints info lines (its "ready" line among them). */
function logsInfo(opts: GripdOptions): boolean {
  // Lines then go to a file, not to the output this helper reads.
  if (opts.args?.some((a) => a === '--logfile' || a.startsWith('--logfile='))) return false;
  const args = opts.args ?? [];
  const at = args.findIndex((a) => a === '--loglevel' || a.startsWith('--loglevel='));
  const arg = at < 0 ? undefined : args[at]!.includes('=') ? args[at]!.slice('--loglevel='.length) : args[at + 1];
  const conf = (opts.sections?.runner ?? []).filter((l) => l.startsWith('log_level=')).pop()?.slice('log_level='.length);
  const level = Number(arg ?? conf ?? 2);
  return level >= 2;
}

async function startGripdOnce(opts: GripdOptions): Promise<GripdInstance> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gripd-test-'));
  const [httpPort, publishPort, pullPort, subPort, commandPort] = (await freePorts(5)) as [number, number, number, number, number];
  const routesFile = path.join(dir, 'routes');
  await writeFile(routesFile, (opts.routes ?? ['* test']).join('\n') + '\n');
  const s = opts.sections ?? {};
  const conf = [
    '[global]',
    `rundir=${dir}/run`,
    'ipc_prefix=gripd-test-',
    ...(s.global ?? []),
    '[runner]',
    `http_port=${httpPort}`,
    `logdir=${dir}/log`,
    'log_level=2',
    ...(s.runner ?? []),
    '[proxy]',
    'routesfile=routes',
    'workers=1',
    ...(s.proxy ?? []),
    '[handler]',
    `push_in_spec=tcp://127.0.0.1:${pullPort}`,
    `push_in_sub_specs=tcp://127.0.0.1:${subPort}`,
    'push_in_http_addr=127.0.0.1',
    `push_in_http_port=${publishPort}`,
    `command_spec=tcp://127.0.0.1:${commandPort}`,
    `stats_spec=ipc://${dir}/run/stats`,
    ...(s.handler ?? []),
  ].join('\n') + '\n';
  const configFile = path.join(dir, 'pushpin.conf');
  await writeFile(configFile, conf);
  let out = '';
  const proc = spawn(process.execPath, [GRIPD_BIN, '--config', configFile, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A port that accepts may belong to the test that took it from us, so where the log
  // level lets gripd say so, wait for gripd's own "ready" line as well.
  let isReady = false;
  let onReady = (): void => undefined;
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  const collect = (d: Buffer): void => {
    out += d.toString();
    if (!isReady && out.includes('gripd ready')) {
      isReady = true;
      onReady();
    }
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const drained = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  const early = exited.then(async (code) => {
    // The last lines it printed may still be in the pipes: let them drain (bounded, as
    // workers share the pipes and may outlive the primary by a moment).
    await Promise.race([drained, new Promise((r) => setTimeout(r, PIPE_DRAIN_MS))]);
    const message = `gripd exited early with code ${code}:\n${out}`;
    if (PORT_TAKEN.test(out)) {
      await rm(dir, { recursive: true, force: true });
      throw new PortTakenError(message);
    }
    throw new Error(message);
  });
  early.catch(() => undefined);
  await Promise.race([
    (async () => {
      await waitForPort(httpPort);
      if (opts.waitPublish !== false) await waitForPort(publishPort);
      if (logsInfo(opts)) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`gripd did not log "gripd ready" within ${READY_DEADLINE_MS} ms:\n${out}`)), READY_DEADLINE_MS);
        });
        try { await Promise.race([ready, late]); } finally { clearTimeout(timer); }
      }
      // A configured Prometheus exporter opens after the client port: wait for it too.
      const prom = /^prometheus_port=(?:.*:)?(\d+)$/.exec((s.handler ?? []).find((l) => l.startsWith('prometheus_port=')) ?? '');
      if (prom !== null) await waitForPort(Number(prom[1]));
    })(),
    early,
  ]);
  return {
    proc, dir, configFile, routesFile, httpPort, publishPort, pullPort, subPort, commandPort,
    url: `http://127.0.0.1:${httpPort}`,
    publishUrl: `http://127.0.0.1:${publishPort}`,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}
