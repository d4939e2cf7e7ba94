/**
 * Entry point of a gripd worker process (forked by src/cluster/primary.ts; never run by
 * hand). Waits for the primary's `start` message, runs the client side (listeners on the
 * shared ports, handler, proxy), and then:
 * - delivers the publishes the primary sends;
 * - reports channel subscribe/unsubscribe at the end of the event-loop turn they happened
 *   in (one IPC message for all of them), counters every COUNTER_SYNC_MS and, when stats
 *   are on, subscriber counts;
 * - answers conncheck/refresh/recover/metrics requests, and per-connection sends (gripd extension);
 * - stops gracefully on `stop`, SIGTERM or SIGINT (exit 0). SIGHUP is ignored: the primary
 *   reloads and passes the config on. If the primary goes away, node:cluster exits the worker.
 */
import cluster from 'node:cluster';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import type { Config } from '../config/types.js';
import type { PublishItem } from '../grip/types.js';
import { createLogger, type Logger } from '../log/index.js';
import { NO_METRICS, PrometheusMetrics, type Metrics } from '../metrics/index.js';
import { CommandError } from '../zmq/command.js';
import { MAX_SUBS_PER_REFRESH } from '../zmq/stats-reporter.js';
import type { StatsEvent } from '../zmq/stats.js';
import { startClientSide, type ClientSide } from './client-side.js';
import { isToWorker, type ToPrimary, type ToWorker, type WorkerCounters, type WorkerRequest } from './protocol.js';

/** How often counters go to the primary (stats reports and Prometheus read them). */
export const COUNTER_SYNC_MS = 1000;
/** Longest delay of a stats event on its way to the primary (below Pushpin's 100 ms activity batching). */
export const STATS_SYNC_MS = 20;
/** Stats events per IPC message at most; bounds one message. */
export const MAX_STATS_BATCH = 5_000;
/**
 * Longest interval between two reports of subscriber counts per channel (stats on only).
 * Shorter when stats_subscription_ttl asks for it: half the TTL, at least 1 s.
 */
export const COUNTS_SYNC_MS = 10_000;
/** Error codes of an uncaught exception that concern one connection only; the worker keeps running. */
const CONNECTION_ERROR_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

let logger: Logger | undefined;
let client: ClientSide | undefined;
let metrics: PrometheusMetrics | undefined;
let stopping = false;
const timers: NodeJS.Timeout[] = [];

function post(msg: ToPrimary): void {
  try {
    process.send?.(msg);
  } catch {
    // The primary is gone; node:cluster exits this worker on disconnect.
  }
}

/**
 * Subscription changes of this event-loop turn, and the channels whose subscriber counts
 * the primary should hear once the new holds are indexed. A burst of new holds each on
 * its own channel would otherwise cost two IPC messages per hold.
 */
let outbox: ToPrimary[] = [];
const countsDue = new Set<string>();
let outboxScheduled = false;

function enqueue(msg: ToPrimary): void {
  outbox.push(msg);
  scheduleOutbox();
}

function scheduleOutbox(): void {
  if (outboxScheduled) return;
  outboxScheduled = true;
  setImmediate(() => {
    outboxScheduled = false;
    flushOutbox(true);
  });
}

/**
 * Sends what is queued as one message. Counts are read only at the end of the turn
 * (`withCounts`): the handler announces a channel before it indexes the hold.
 */
function flushOutbox(withCounts: boolean): void {
  const list = outbox;
  outbox = [];
  if (withCounts && countsDue.size > 0) {
    const counts: Array<[string, number, number]> = [];
    for (const channel of countsDue) {
      const c = client?.handler.subscriberCount(channel);
      if (c !== undefined && c.response + c.stream > 0) counts.push([channel, c.response, c.stream]);
    }
    countsDue.clear();
    if (counts.length > 0) list.push({ t: 'counts', list: counts });
  }
  if (list.length === 1) post(list[0]!);
  else if (list.length > 1) post({ t: 'batch', list });
}

/** Sends `msg` after anything queued, so the primary sees events in the order they happened. */
function send(msg: ToPrimary): void {
  if (outbox.length > 0) flushOutbox(false);
  post(msg);
}

function counters(): WorkerCounters {
  const c = client?.handler.counters;
  if (c === undefined) return { heldResponse: 0, heldStream: 0, deliveries: 0, drops: 0, itemsPublished: 0 };
  return { heldResponse: c.heldResponse, heldStream: c.heldStream, deliveries: c.deliveries, drops: c.drops, itemsPublished: c.itemsPublished };
}

async function start(m: Extract<ToWorker, { t: 'start' }>): Promise<void> {
  const dest = m.log.file !== undefined ? createWriteStream(path.resolve(m.log.file), { flags: 'a' }) : undefined;
  logger = createLogger({ level: m.log.level, json: m.log.json, ...(dest ? { destination: dest } : {}) }).child({ worker: m.index });
  const config = m.config;
  metrics = config.handler.prometheusPort !== undefined ? new PrometheusMetrics(config.handler.prometheusPrefix) : undefined;
  const sink: Metrics = metrics ?? NO_METRICS;
  try {
    client = await startClientSide({ config, ...(m.routeLines ? { routeLines: m.routeLines } : {}), logger, metrics: sink });
  } catch (err) {
    send({ t: 'failed', error: (err as Error).message });
    logger.flush?.();
    process.exit(1);
  }
  const { handler } = client;
  const statsOn = config.handler.statsSpec !== '';
  handler.on('subscribe', (channel) => {
    enqueue({ t: 'sub', channel });
    if (statsOn) countsDue.add(channel);
  });
  handler.on('unsubscribe', (channel) => enqueue({ t: 'unsub', channel }));
  if (statsOn) forwardStats(handler);
  const sync = setInterval(() => send({ t: 'counters', counters: counters() }), COUNTER_SYNC_MS);
  sync.unref();
  timers.push(sync);
  if (statsOn) {
    const countsTimer = setInterval(() => {
      const list: Array<[string, number, number]> = [];
      for (const ch of handler.channels()) {
        if (list.length >= MAX_SUBS_PER_REFRESH) break;
        const c = handler.subscriberCount(ch);
        list.push([ch, c.response, c.stream]);
      }
      if (list.length > 0) send({ t: 'counts', list });
    }, Math.max(1000, Math.min(COUNTS_SYNC_MS, (config.handler.statsSubscriptionTtlS * 1000) / 2)));
    countsTimer.unref();
    timers.push(countsTimer);
  }
  send({ t: 'ready', pid: process.pid });
}

/** Stats events go to the primary's stats socket in batches, every STATS_SYNC_MS at most. */
function forwardStats(handler: ClientSide['handler']): void {
  let batch: StatsEvent[] = [];
  /** Requests per route in this batch: one activity event each instead of one per request. */
  const activity = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    const events = batch;
    batch = [];
    for (const [route, count] of activity) events.push({ e: 'activity', route, count });
    activity.clear();
    if (events.length > 0) send({ t: 'stats', events });
  };
  handler.onStats((ev) => {
    // The primary counts what its inputs receive itself.
    if (ev.e === 'received') return;
    if (ev.e === 'activity') {
      activity.set(ev.route, (activity.get(ev.route) ?? 0) + ev.count);
      timer ??= setTimeout(flush, STATS_SYNC_MS);
      return;
    }
    batch.push(ev);
    if (batch.length >= MAX_STATS_BATCH) flush();
    else timer ??= setTimeout(flush, STATS_SYNC_MS);
  });
}

async function answer(id: number, op: WorkerRequest): Promise<void> {
  try {
    let value: unknown;
    const handler = client?.handler;
    switch (op.op) {
      case 'conncheck':
        value = handler !== undefined ? await handler.conncheck(op.ids) : [];
        break;
      case 'recover':
        await handler?.recover();
        break;
      case 'refresh':
        await handler?.refresh({ ...(op.cid !== undefined ? { cid: op.cid } : {}), ...(op.channel !== undefined ? { channel: op.channel } : {}) });
        break;
      case 'send':
        value = handler !== undefined ? handler.sendToConnection(op.cid, op.format) : false;
        break;
      case 'metrics':
        value = metrics !== undefined ? await metrics.registry.getMetricsAsJSON() : [];
        break;
    }
    send({ t: 'reply', id, ok: true, ...(value !== undefined ? { value } : {}) });
  } catch (err) {
    const condition = err instanceof CommandError ? err.condition : undefined;
    send({ t: 'reply', id, ok: false, error: (err as Error).message, ...(condition !== undefined ? { condition } : {}) });
  }
}

async function stop(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const t of timers) clearInterval(t);
  try {
    await client?.stop();
  } catch (err) {
    logger?.error({ err: (err as Error).message }, 'error while stopping');
    exitCode = 1;
  }
  send({ t: 'counters', counters: counters() });
  logger?.flush?.();
  process.exit(exitCode);
}

function onMessage(m: ToWorker): void {
  switch (m.t) {
    case 'start':
      if (logger === undefined) void start(m);
      break;
    case 'publish':
      // Before the handler exists nobody can be subscribed: nothing to deliver.
      if (client !== undefined && !stopping) client.handler.publish(v8.deserialize(m.data) as PublishItem[]);
      break;
    case 'reload':
      if (client !== undefined) {
        client.reload(m.config as Config).then(
          () => logger?.info('configuration reloaded'),
          (err: unknown) => logger?.error({ err: (err as Error).message }, 'worker: reload failed'),
        );
      }
      break;
    case 'request':
      void answer(m.id, m.op);
      break;
    case 'stop':
      void stop(0);
      break;
  }
}

if (!cluster.isWorker) {
  process.stderr.write('gripd: worker-main is started by gripd itself ([proxy] workers > 1)\n');
  process.exit(2);
}
process.on('message', (m: unknown) => {
  if (isToWorker(m)) onMessage(m);
});
send({ t: 'hello' });
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
process.on('SIGHUP', () => undefined);
process.on('unhandledRejection', (reason) => {
  logger?.error({ err: reason instanceof Error ? reason.stack : String(reason) }, 'unhandled promise rejection');
});
process.on('uncaughtException', (err) => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && CONNECTION_ERROR_CODES.has(code)) {
    logger?.warn({ err: err.message, code }, 'uncaught connection error');
    return;
  }
  logger?.fatal({ err: err.stack ?? err.message }, 'uncaught exception; worker exiting');
  logger?.flush?.();
  process.exit(1);
});
