/**
 * The primary process of a multi-worker gripd (`[proxy] workers=N`, N > 1).
 *
 * The primary runs the publish inputs (HTTP publish API, ZeroMQ PULL/SUB, command socket,
 * stats, Prometheus) and forks N workers (node:cluster) that run the client side: the
 * listeners on the shared client ports (the primary accepts and hands connections out
 * round-robin), the GRIP handler and the proxy.
 *
 * - Every publish, from any input, is parsed and validated once here, serialized once
 *   (v8), and sent to every worker exactly once, in order.
 * - Subscriptions are the union over workers: the SUB socket subscribes while at least
 *   one worker holds the channel.
 * - conncheck, refresh, recover and per-connection sends (gripd extension) ask every
 *   worker and combine the answers.
 * - Stats and Prometheus see the whole instance: workers report counters every
 *   COUNTER_SYNC_MS, and the Prometheus exporter asks every worker on each scrape.
 * - A worker that exits is restarted (with a growing delay if it keeps dying) while the
 *   others keep serving.
 */
import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import type { Config } from '../config/types.js';
import type { PublishItem, WsMessageFormat } from '../grip/types.js';
import type { Logger } from '../log/index.js';
import { NO_METRICS, PrometheusMetrics, type Metrics } from '../metrics/index.js';
import type { GripdApp, StartOptions } from '../main.js';
import { CommandError } from '../zmq/command.js';
import { workerHeapFlags } from './heap.js';
import { startAggregateMetricsServer } from './metrics.js';
import { isToPrimary, type ToPrimary, type ToWorker, type WorkerCounters, type WorkerLogOptions, type WorkerRequest } from './protocol.js';
import { startPublishSide, type PublishSideTarget } from './publish-side.js';
import { largestBlocks, type StatsEvent } from '../zmq/stats.js';

/** The worker entry script (compiled next to this file). */
const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** How long a worker may take to open its listeners before startup fails. */
export const WORKER_START_TIMEOUT_MS = 30_000;
/** How long the primary waits for each worker's answer to a command before going on without it. */
export const WORKER_REPLY_TIMEOUT_MS = 5_000;
/** How long a worker may take to stop gracefully before it is killed. Below the CLI's 15 s deadline. */
export const WORKER_STOP_DEADLINE_MS = 10_000;
/** First restart delay after a worker exits; doubles while workers keep dying young. */
export const RESTART_DELAY_MIN_MS = 100;
/** Longest restart delay; bounds how long a crash-looping worker's slot stays empty. */
export const RESTART_DELAY_MAX_MS = 5_000;
/** A worker that served at least this long resets the restart delay. */
export const RESTART_HEALTHY_AFTER_MS = 10_000;
/**
 * Publish bytes queued in the IPC channel to one worker before further publishes to it
 * are dropped (with a warning). Protects the primary's memory from a stalled worker.
 */
export const IPC_MAX_PENDING_BYTES = 256 * 1024 * 1024;
/** Most extra Node.js options taken from GRIPD_WORKER_EXEC_ARGV; guards against a runaway variable. */
export const MAX_WORKER_EXEC_ARGS = 32;
/** Shortest interval between two "worker is behind" warnings. */
const BEHIND_WARN_INTERVAL_MS = 5_000;

const ZERO_COUNTERS: WorkerCounters = Object.freeze({ heldResponse: 0, heldStream: 0, deliveries: 0, drops: 0, itemsPublished: 0 });

type Reply = Extract<ToPrimary, { t: 'reply' }>;

interface Slot {
  index: number;
  worker: Worker | undefined;
  pid: number;
  ready: boolean;
  startedAt: number;
  restartDelayMs: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Channels this worker holds (as it reported). */
  channels: Set<string>;
  /** Subscriber counts per channel, when stats are on: [response, stream]. */
  counts: Map<string, [number, number]>;
  /** The worker's latest absolute counters. */
  last: WorkerCounters;
  pendingBytes: number;
  /** Settles the startup wait. */
  started?: { resolve(): void; reject(err: Error): void };
}

/** Events the pool emits: the union of the workers' channels. */
interface PoolEvents {
  subscribe: [channel: string];
  unsubscribe: [channel: string];
}

/**
 * The workers as one target for the publish inputs: publishes and commands fan out to
 * every worker; subscriptions and counters are combined.
 */
export class WorkerPool extends EventEmitter<PoolEvents> implements PublishSideTarget {
  private readonly slots: Slot[] = [];
  /** Channel -> number of workers holding it. */
  private readonly channelWorkers = new Map<string, number>();
  private readonly pending = new Map<number, { slot: Slot; resolve(r: Reply | undefined): void; timer: NodeJS.Timeout }>();
  private nextRequestId = 1;
  private stopping = false;
  private lastBehindWarn = 0;
  /** Monotonic totals folded from every worker's reports (dead ones included). */
  private deliveries = 0;
  private drops = 0;
  private itemsPublished = 0;
  /** Channels the stats view has announced (it waits for the first counts). */
  private readonly statsAnnounced = new Set<string>();
  /** Subscribe/unsubscribe as the stats reporter should see them (after counts arrive). */
  readonly statsEvents = new EventEmitter<PoolEvents>();
  /** The stats reporter's listeners: workers' stats events, and `received` for every publish. */
  readonly statsListeners: Array<(ev: StatsEvent) => void> = [];

  constructor(
    private config: Config,
    private readonly routeLines: string[] | undefined,
    private readonly log: WorkerLogOptions,
    private readonly logger: Logger,
  ) {
    super();
  }

  /** Channels at least one worker holds now. */
  channels(): Iterable<string> {
    return this.channelWorkers.keys();
  }

  /** Instance-wide counters (StatsSource). Gauges sum the live workers; totals never go down. */
  readonly counters = (() => {
    const self = this;
    return {
      get heldResponse(): number { return self.sumLive('heldResponse'); },
      get heldStream(): number { return self.sumLive('heldStream'); },
      get deliveries(): number { return self.deliveries; },
      get drops(): number { return self.drops; },
      get itemsPublished(): number { return self.itemsPublished; },
    };
  })();

  /** Subscribers of `channel` by mode, over all workers (as last reported). */
  subscriberCount(channel: string): { response: number; stream: number } {
    let response = 0;
    let stream = 0;
    for (const s of this.slots) {
      const c = s.counts.get(channel);
      if (c !== undefined) {
        response += c[0];
        stream += c[1];
      }
    }
    return { response, stream };
  }

  /** Pids of the running workers, by worker index. */
  pids(): number[] {
    return this.slots.map((s) => (s.worker !== undefined ? s.pid : 0));
  }

  /** Forks `n` workers and waits until each has opened its listeners. */
  async start(n: number): Promise<void> {
    // The primary accepts client connections and hands them out in turn: an even spread,
    // which the kernel's own distribution between processes does not give. node:cluster's
    // NODE_CLUSTER_SCHED_POLICY=none (workers accept themselves; cheaper per new
    // connection, see docs/performance.md) is left to the user who sets it. node:cluster
    // fixes the policy at the first setupPrimary(), so it is set before that.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [], execArgv: workerExecArgv(), serialization: 'advanced', silent: false });
    const waits: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) {
      const slot: Slot = {
        index: i + 1, worker: undefined, pid: 0, ready: false, startedAt: 0, restartDelayMs: RESTART_DELAY_MIN_MS,
        restartTimer: undefined, channels: new Set(), counts: new Map(), last: ZERO_COUNTERS, pendingBytes: 0,
      };
      this.slots.push(slot);
      waits.push(new Promise<void>((resolve, reject) => {
        slot.started = { resolve, reject };
        this.fork(slot);
      }));
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`workers did not start within ${WORKER_START_TIMEOUT_MS} ms`)), WORKER_START_TIMEOUT_MS);
    });
    try {
      await Promise.race([Promise.all(waits), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends validated items to every worker, serialized once. Never throws. */
  publish(items: PublishItem[]): void {
    if (this.stopping || items.length === 0) return;
    this.itemsPublished += items.length;
    if (this.statsListeners.length > 0) {
      const bs = this.config.handler.messageBlockSize;
      let blocks = -1;
      if (bs > 0) for (const item of items) blocks = Math.max(0, blocks) + Math.max(0, largestBlocks(item, bs));
      for (const l of this.statsListeners) l({ e: 'received', count: items.length, blocks });
    }
    const data = v8.serialize(items);
    const msg: ToWorker = { t: 'publish', data };
    for (const s of this.slots) {
      const w = s.worker;
      if (w === undefined || !w.isConnected()) continue;
      if (s.pendingBytes > IPC_MAX_PENDING_BYTES) {
        this.warnBehind(s);
        continue;
      }
      s.pendingBytes += data.length;
      this.send(s, msg, () => {
        s.pendingBytes -= data.length;
      });
    }
  }

  /** Pushpin's `recover` on every worker. */
  async recover(): Promise<void> {
    await this.askAll({ op: 'recover' });
  }

  /**
   * Refreshes on every worker. A refresh by cid succeeds when any worker knew the
   * connection; otherwise the workers' condition (e.g. `item-not-found`) is answered.
   */
  async refresh(o: { cid?: string; channel?: string }): Promise<void> {
    const op: WorkerRequest = { op: 'refresh', ...(o.cid !== undefined ? { cid: o.cid } : {}), ...(o.channel !== undefined ? { channel: o.channel } : {}) };
    const replies = await this.askAll(op);
    if (replies.length === 0 || replies.some((r) => r?.ok === true)) return;
    for (const r of replies) if (r !== undefined && !r.ok && r.condition !== undefined) throw new CommandError(r.condition);
    throw new Error('refresh failed on every worker');
  }

  /**
   * gripd extension: a ws-message to one connection by id. The connection lives on one
   * worker, unknown to the primary, so every worker is asked; true when one held it.
   */
  async sendToConnection(cid: string, f: WsMessageFormat): Promise<boolean> {
    if (this.stopping) return false;
    const replies = await this.askAll({ op: 'send', cid, format: f });
    return replies.some((r) => r?.ok === true && r.value === true);
  }

  /** The ids, of those given, that some worker holds; in the order given. */
  async conncheck(ids: string[]): Promise<string[]> {
    const replies = await this.askAll({ op: 'conncheck', ids });
    const alive = new Set<string>();
    for (const r of replies) {
      if (r?.ok === true && Array.isArray(r.value)) for (const id of r.value) if (typeof id === 'string') alive.add(id);
    }
    return ids.filter((id) => alive.has(id));
  }

  /** Each worker's Prometheus registry as JSON (workers without an exporter answer []). */
  async workerMetrics(): Promise<unknown[]> {
    const replies = await this.askAll({ op: 'metrics' });
    const out: unknown[] = [];
    for (const r of replies) if (r?.ok === true && Array.isArray(r.value)) out.push(r.value);
    return out;
  }

  /** Passes a re-read config to every worker; restarted workers start with it. */
  reload(next: Config): void {
    if (next.proxy.workers !== this.config.proxy.workers) {
      this.logger.warn(`reload: workers=${next.proxy.workers} takes effect on restart (running ${this.config.proxy.workers})`);
    }
    this.config = next;
    const config = workerConfig(next, this.slots.length);
    for (const s of this.slots) if (s.worker !== undefined && s.ready) this.send(s, { t: 'reload', config });
  }

  /** Asks every worker to stop gracefully; kills those still running after WORKER_STOP_DEADLINE_MS. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits: Array<Promise<void>> = [];
    for (const s of this.slots) {
      if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
      s.restartTimer = undefined;
      const w = s.worker;
      if (w === undefined) continue;
      exits.push(new Promise<void>((resolve) => {
        if (w.process.exitCode !== null || w.process.signalCode !== null) {
          resolve();
          return;
        }
        w.once('exit', () => resolve());
        const kill = setTimeout(() => {
          this.logger.warn(`worker ${s.index} (pid ${s.pid}) did not stop within ${WORKER_STOP_DEADLINE_MS} ms; killing it`);
          w.process.kill('SIGKILL');
        }, WORKER_STOP_DEADLINE_MS);
        w.once('exit', () => clearTimeout(kill));
        this.send(s, { t: 'stop' });
      }));
    }
    await Promise.all(exits);
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    const w = cluster.fork({ GRIPD_WORKER_INDEX: String(slot.index) });
    slot.worker = w;
    slot.pid = w.process.pid ?? 0;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.last = ZERO_COUNTERS;
    slot.pendingBytes = 0;
    w.on('message', (m: unknown) => {
      if (slot.worker === w && isToPrimary(m)) this.onMessage(slot, m);
    });
    w.on('error', (err: Error) => this.logger.warn({ err: err.message }, `worker ${slot.index}: IPC error`));
    w.once('exit', (code: number | null, signal: string | null) => {
      if (slot.worker === w) this.onExit(slot, code, signal);
    });
  }

  private onMessage(slot: Slot, m: ToPrimary): void {
    switch (m.t) {
      case 'hello': {
        const start: ToWorker = { t: 'start', index: slot.index, config: workerConfig(this.config, this.slots.length), log: this.log, ...(this.routeLines ? { routeLines: this.routeLines } : {}) };
        this.send(slot, start);
        break;
      }
      case 'ready':
        slot.ready = true;
        slot.pid = m.pid;
        this.logger.info(`worker ${slot.index} ready (pid ${m.pid})`);
        slot.started?.resolve();
        slot.started = undefined;
        break;
      case 'failed':
        this.logger.error(`worker ${slot.index} (pid ${slot.pid}) failed to start: ${m.error}`);
        slot.started?.reject(new Error(m.error));
        slot.started = undefined;
        break;
      case 'sub':
        if (slot.channels.has(m.channel)) break;
        slot.channels.add(m.channel);
        this.channelRef(m.channel, 1);
        break;
      case 'unsub':
        if (!slot.channels.delete(m.channel)) break;
        slot.counts.delete(m.channel);
        this.channelRef(m.channel, -1);
        break;
      case 'counts':
        for (const [channel, response, stream] of m.list) {
          if (!slot.channels.has(channel)) continue;
          slot.counts.set(channel, [response, stream]);
          if (!this.statsAnnounced.has(channel)) {
            this.statsAnnounced.add(channel);
            this.statsEvents.emit('subscribe', channel);
          }
        }
        break;
      case 'counters':
        this.fold(slot, m.counters);
        break;
      case 'stats':
        for (const ev of m.events) for (const l of this.statsListeners) l(ev);
        break;
      case 'batch':
        for (const one of m.list) this.onMessage(slot, one);
        break;
      case 'reply': {
        const p = this.pending.get(m.id);
        if (p === undefined) break;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m);
        break;
      }
    }
  }

  private onExit(slot: Slot, code: number | null, signal: string | null): void {
    const wasReady = slot.ready;
    slot.worker = undefined;
    slot.ready = false;
    // Its subscriptions and live holds are gone; its delivery totals stay counted.
    for (const ch of slot.channels) this.channelRef(ch, -1);
    slot.channels.clear();
    slot.counts.clear();
    slot.last = ZERO_COUNTERS;
    for (const [id, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    const how = signal !== null ? `signal ${signal}` : `code ${code}`;
    if (slot.started !== undefined) {
      slot.started.reject(new Error(`worker ${slot.index} exited during startup (${how})`));
      slot.started = undefined;
      return;
    }
    if (this.stopping) return;
    if (Date.now() - slot.startedAt >= RESTART_HEALTHY_AFTER_MS) slot.restartDelayMs = RESTART_DELAY_MIN_MS;
    const delay = slot.restartDelayMs;
    slot.restartDelayMs = Math.min(RESTART_DELAY_MAX_MS, slot.restartDelayMs * 2);
    this.logger.warn(`worker ${slot.index} (pid ${slot.pid}) exited (${how})${wasReady ? '' : ' before it was ready'}; restarting in ${delay} ms`);
    slot.restartTimer = setTimeout(() => {
      if (!this.stopping) this.fork(slot);
    }, delay);
  }

  private channelRef(channel: string, delta: 1 | -1): void {
    const n = (this.channelWorkers.get(channel) ?? 0) + delta;
    if (n > 0) {
      this.channelWorkers.set(channel, n);
      if (n === 1 && delta === 1) this.emit('subscribe', channel);
      return;
    }
    this.channelWorkers.delete(channel);
    this.emit('unsubscribe', channel);
    if (this.statsAnnounced.delete(channel)) this.statsEvents.emit('unsubscribe', channel);
  }

  /** Adds what a worker counted since its last report to the instance totals. */
  private fold(slot: Slot, c: WorkerCounters): void {
    const prev = slot.last;
    this.deliveries += c.deliveries >= prev.deliveries ? c.deliveries - prev.deliveries : c.deliveries;
    this.drops += c.drops >= prev.drops ? c.drops - prev.drops : c.drops;
    slot.last = c;
  }

  private sumLive(key: 'heldResponse' | 'heldStream'): number {
    let n = 0;
    for (const s of this.slots) if (s.worker !== undefined) n += s.last[key];
    return n;
  }

  private askAll(op: WorkerRequest): Promise<Array<Reply | undefined>> {
    const asks: Array<Promise<Reply | undefined>> = [];
    for (const s of this.slots) {
      if (s.worker === undefined || !s.ready) continue;
      asks.push(new Promise((resolve) => {
        const id = this.nextRequestId++;
        const timer = setTimeout(() => {
          this.pending.delete(id);
          this.logger.warn(`worker ${s.index} did not answer "${op.op}" within ${WORKER_REPLY_TIMEOUT_MS} ms`);
          resolve(undefined);
        }, WORKER_REPLY_TIMEOUT_MS);
        this.pending.set(id, { slot: s, resolve, timer });
        this.send(s, { t: 'request', id, op });
      }));
    }
    return Promise.all(asks);
  }

  private send(slot: Slot, msg: ToWorker, done?: () => void): void {
    const w = slot.worker;
    if (w === undefined) {
      done?.();
      return;
    }
    try {
      w.send(msg, undefined, () => done?.());
    } catch (err) {
      // The channel closed under us: the worker is exiting and 'exit' will follow.
      done?.();
      this.logger.debug({ err: (err as Error).message }, `worker ${slot.index}: send failed`);
    }
  }

  private warnBehind(slot: Slot): void {
    const now = Date.now();
    if (now - this.lastBehindWarn < BEHIND_WARN_INTERVAL_MS) return;
    this.lastBehindWarn = now;
    this.logger.warn(`worker ${slot.index} (pid ${slot.pid}) is more than ${IPC_MAX_PENDING_BYTES} bytes of publishes behind; dropping publishes to it`);
  }
}

/**
 * Node.js options for the workers: gripd's heap sizing (src/cluster/heap.ts) where not
 * given, the primary's own options, and the whitespace-separated ones in
 * `GRIPD_WORKER_EXEC_ARGV` (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the
 * workers, which NODE_OPTIONS does not allow).
 */
export function workerExecArgv(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = (env['GRIPD_WORKER_EXEC_ARGV'] ?? '').split(/\s+/).filter((a) => a !== '').slice(0, MAX_WORKER_EXEC_ARGS);
  const given = [...process.execArgv, ...extra];
  return [...workerHeapFlags(given), ...given];
}

/**
 * The config a worker runs with: `message_rate` and `message_hwm` are instance-wide caps
 * in Pushpin, and every worker runs its own limiter over about 1/n of the connections
 * (round-robin), so each gets its share (rounded up, at least 1).
 */
export function workerConfig(config: Config, n: number): Config {
  const share = (v: number | undefined): number | undefined => (typeof v === 'number' && v > 0 ? Math.max(1, Math.ceil(v / n)) : v);
  const h = config.handler;
  if (n <= 1) return config;
  return { ...config, handler: { ...h, messageRate: share(h.messageRate) as typeof h.messageRate, messageHwm: share(h.messageHwm) as typeof h.messageHwm } };
}

/**
 * Removes socket files of `local_ports` left by a previous run. The workers leave them
 * alone (see src/proxy/listeners.ts): node:cluster binds each path once, in the primary.
 */
function removeStaleSocketFiles(config: Config): void {
  for (const file of config.runner.localPorts) {
    if (existsSync(file) && lstatSync(file).isSocket()) unlinkSync(file);
  }
}

/** Starts the primary: publish inputs here, `config.proxy.workers` workers for the clients. */
export async function startPrimary(opts: StartOptions): Promise<GripdApp> {
  const { config, logger } = opts;
  const n = config.proxy.workers;
  const hc = config.handler;
  const log: WorkerLogOptions = {
    level: opts.log?.level ?? config.runner.logLevel,
    json: opts.log?.json ?? false,
    ...(opts.log?.file !== undefined ? { file: opts.log.file } : {}),
  };
  const pool = new WorkerPool(config, opts.routeLines, log, logger);
  // The primary counts what its inputs receive; the workers count the rest.
  const prometheus = hc.prometheusPort !== undefined ? new PrometheusMetrics(hc.prometheusPrefix) : undefined;
  const metrics: Metrics = prometheus ?? NO_METRICS;
  const statsView = {
    counters: pool.counters,
    channels: () => pool.channels(),
    subscriberCount: (ch: string) => pool.subscriberCount(ch),
    on: (e: 'subscribe' | 'unsubscribe', l: (channel: string) => void) => pool.statsEvents.on(e, l),
    off: (e: 'subscribe' | 'unsubscribe', l: (channel: string) => void) => pool.statsEvents.off(e, l),
    onStats: (l: (ev: StatsEvent) => void) => { pool.statsListeners.push(l); },
    offStats: (l: (ev: StatsEvent) => void) => {
      const i = pool.statsListeners.indexOf(l);
      if (i >= 0) pool.statsListeners.splice(i, 1);
    },
  };

  const publish = await startPublishSide({ config, logger, metrics, target: pool, subscriptions: pool, stats: statsView });
  let metricsServer: { close(): Promise<void> } | undefined;
  try {
    if (prometheus !== undefined && hc.prometheusPort !== undefined) {
      metricsServer = await startAggregateMetricsServer({
        own: prometheus,
        workers: () => pool.workerMetrics(),
        channels: () => { let c = 0; for (const _ of pool.channels()) c++; return c; },
        prefix: hc.prometheusPrefix,
        host: hc.prometheusAddr,
        port: hc.prometheusPort,
      });
    }
    removeStaleSocketFiles(config);
    await pool.start(n);
  } catch (err) {
    await Promise.allSettled([publish.close(), metricsServer?.close(), pool.stop()]);
    throw err;
  }

  const ports = config.runner.httpPorts.map((p) => `${p.host ?? '*'}:${p.port}`).join(',');
  logger.info(`gripd ready: clients on ${ports}, publish on ${hc.pushInHttpAddr}:${hc.pushInHttpPort}, ${n} workers (pids ${pool.pids().join(',')})`);

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        await publish.close();
        await pool.stop();
        await metricsServer?.close();
        logger.info('gripd stopped');
      })();
      return stopping;
    },
    async reload(next: Config) {
      pool.reload(next);
      logger.info('configuration reloaded');
    },
  };
}
