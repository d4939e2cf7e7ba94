/**
 * Feeds the stats PUB socket (`stats_spec`) from the handler's public surface: periodic
 * `report` messages (every `stats_report_interval`) and `sub` messages for channel
 * subscriptions (on change, refreshed within `stats_subscription_ttl`). The framing is
 * src/zmq/stats.ts's; this module only decides what to send and when.
 *
 * Not sent (they need hooks gripd's proxy/handler don't expose yet): per-connection
 * `conn` messages, `activity` (requests received) and per-publish `message` messages.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { StatsPublisher, type StatsFormat } from './stats.js';

/** The part of src/handler's Handler the stats reporter reads (a Handler satisfies it). */
export interface StatsSource {
  readonly counters: {
    readonly heldResponse: number;
    readonly heldStream: number;
    readonly deliveries: number;
    readonly itemsPublished: number;
  };
  on(event: 'subscribe' | 'unsubscribe', listener: (channel: string) => void): unknown;
  off(event: 'subscribe' | 'unsubscribe', listener: (channel: string) => void): unknown;
  channels(): Iterable<string>;
  subscriberCount(channel: string): { response: number; stream: number };
}

export interface StatsOptions {
  config: Config;
  handler: StatsSource;
  logger: Logger;
  /** Sender id in every message (`from`); default `gripd-handler_<pid>`. */
  instanceId?: string;
  /** Overrides the report interval (ms); tests use it. Default stats_report_interval. */
  reportIntervalMs?: number;
  /** Overrides the subscription refresh interval (ms). Default 3/4 of stats_subscription_ttl. */
  subscriptionRefreshMs?: number;
}

export interface StatsReporter {
  /** Stops the timers, sends nothing more, closes the socket; idempotent. */
  close(): Promise<void>;
}

/** How often connection counts are sampled for the report's connection-minutes, in ms. */
export const CONNECTION_SAMPLE_MS = 1000;
/** Channels announced per refresh tick at most; bounds the work of one tick. The rest follow on later ticks. */
export const MAX_SUBS_PER_REFRESH = 100_000;

type Mode = 'response' | 'stream';

/** Creates the directory of an `ipc://` spec (Pushpin creates its rundir when missing). */
async function ensureIpcDir(spec: string): Promise<void> {
  if (!spec.startsWith('ipc://')) return;
  const file = spec.slice('ipc://'.length);
  if (file === '' || file.startsWith('@')) return;
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
}

/**
 * Binds the stats PUB socket on `config.handler.statsSpec` (no-op when empty) and starts
 * reporting. Rejects with a ZmqSetupError when the spec cannot be bound.
 */
export async function startStats(opts: StatsOptions): Promise<StatsReporter> {
  const { config, handler, logger } = opts;
  const spec = config.handler.statsSpec;
  if (spec === '') return { close: async () => {} };
  await ensureIpcDir(spec);
  const format: StatsFormat = config.handler.statsFormat;
  const pub = await StatsPublisher.start(spec, format);
  const from = opts.instanceId ?? `gripd-handler_${process.pid}`;
  const subTtlS = Math.max(1, config.handler.statsSubscriptionTtlS);
  const reportMs = opts.reportIntervalMs ?? config.handler.statsReportIntervalS * 1000;
  const refreshMs = opts.subscriptionRefreshMs ?? Math.max(1000, Math.floor((subTtlS * 1000 * 3) / 4));

  // ---- sub messages
  /** Modes announced as subscribed, per channel. */
  const announced = new Map<string, Set<Mode>>();
  const announce = (channel: string): void => {
    const counts = handler.subscriberCount(channel);
    let modes = announced.get(channel);
    for (const mode of ['response', 'stream'] as const) {
      const n = counts[mode];
      if (n > 0) {
        if (!modes) announced.set(channel, (modes = new Set()));
        modes.add(mode);
        pub.send({ type: 'sub', from, mode, channel, subscribed: true, ttl: subTtlS, subscribers: n });
      } else if (modes?.delete(mode)) {
        pub.send({ type: 'sub', from, mode, channel, subscribed: false });
      }
    }
    if (modes && modes.size === 0) announced.delete(channel);
  };
  const gone = (channel: string): void => {
    const modes = announced.get(channel);
    if (!modes) return;
    announced.delete(channel);
    for (const mode of modes) pub.send({ type: 'sub', from, mode, channel, subscribed: false });
  };
  // The handler fires `subscribe` while adding the first hold: read the counts once it's done.
  const onSubscribe = (channel: string): void => {
    setImmediate(() => {
      if (!closed) announce(channel);
    });
  };
  const onUnsubscribe = (channel: string): void => {
    setImmediate(() => {
      if (!closed) gone(channel);
    });
  };
  handler.on('subscribe', onSubscribe);
  handler.on('unsubscribe', onUnsubscribe);
  for (const ch of handler.channels()) announce(ch);

  const refreshTimer = setInterval(() => {
    let n = 0;
    const live = new Set<string>();
    for (const ch of handler.channels()) {
      if (n++ >= MAX_SUBS_PER_REFRESH) break;
      live.add(ch);
      announce(ch);
    }
    for (const ch of [...announced.keys()]) if (!live.has(ch) && n < MAX_SUBS_PER_REFRESH) gone(ch);
  }, refreshMs);
  refreshTimer.unref();

  // ---- report messages
  const c = handler.counters;
  let lastAt = Date.now();
  let lastReceived = c.itemsPublished;
  let lastSent = c.deliveries;
  let connMax = c.heldResponse + c.heldStream;
  /** Connection-milliseconds accumulated since the last report, sampled every CONNECTION_SAMPLE_MS. */
  let connMs = 0;
  let connMsCarry = 0;
  let lastSampleAt = lastAt;
  const sample = (): void => {
    const now = Date.now();
    const conns = c.heldResponse + c.heldStream;
    connMs += conns * Math.max(0, now - lastSampleAt);
    lastSampleAt = now;
    if (conns > connMax) connMax = conns;
  };
  const sampleTimer = setInterval(sample, CONNECTION_SAMPLE_MS);
  sampleTimer.unref();
  const report = (): void => {
    sample();
    const now = Date.now();
    const total = connMs + connMsCarry;
    const minutes = Math.floor(total / 60_000);
    connMsCarry = total - minutes * 60_000;
    connMs = 0;
    pub.send({
      type: 'report',
      from,
      connections: connMax,
      minutes,
      received: c.itemsPublished - lastReceived,
      sent: c.deliveries - lastSent,
      duration: now - lastAt,
    });
    lastAt = now;
    lastReceived = c.itemsPublished;
    lastSent = c.deliveries;
    connMax = c.heldResponse + c.heldStream;
  };
  const reportTimer = reportMs > 0 ? setInterval(report, reportMs) : undefined;
  reportTimer?.unref();

  let closed = false;
  logger.debug({ spec, format }, 'stats socket started');
  return {
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(refreshTimer);
      clearInterval(sampleTimer);
      if (reportTimer) clearInterval(reportTimer);
      handler.off('subscribe', onSubscribe);
      handler.off('unsubscribe', onUnsubscribe);
      pub.close();
    },
  };
}
