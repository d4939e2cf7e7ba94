/**
 * Feeds the stats PUB socket (`stats_spec`) the way Pushpin's stats manager does:
 * - `activity` per route and `counts` (requests received), batched over ACTIVITY_BATCH_MS;
 * - `message` per published item and transport that reached subscribers;
 * - `conn` per client connection (an HTTP request or a WebSocket) when it opens, again
 *   within 3/4 of `stats_connection_ttl`, and `unavailable` when it ends; only with
 *   `stats_connection_send=true`;
 * - `sub` for channel subscriptions (on change, refreshed within `stats_subscription_ttl`);
 * - `report` every `stats_report_interval` (none after an empty one until something happens).
 * The framing is src/zmq/stats.ts's; this module only decides what to send and when.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { StatsPublisher, type StatsEvent, type StatsFormat } from './stats.js';

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
  /** Client-side stats events (connections, activity, per-publish messages), when the source has them. */
  onStats?(listener: (ev: StatsEvent) => void): void;
  offStats?(listener: (ev: StatsEvent) => void): void;
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
  /** Takes one client-side event (also fed from `handler.onStats` when the source has it). */
  event(ev: StatsEvent): void;
  /** Stops the timers, sends nothing more, closes the socket; idempotent. */
  close(): Promise<void>;
}

/** Kept for callers that imported it; connection counts now come from conn events. */
export const CONNECTION_SAMPLE_MS = 1000;
/** Channels announced per refresh tick at most; bounds the work of one tick. The rest follow on later ticks. */
export const MAX_SUBS_PER_REFRESH = 100_000;
/** Activity is collected this long after the first request before it is sent (Pushpin's ACTIVITY_TIMEOUT). */
export const ACTIVITY_BATCH_MS = 100;
/** Tick of the connection refresh (Pushpin's REFRESH_INTERVAL): one refresh bucket per tick. */
export const CONN_REFRESH_TICK_MS = 1000;
/** Connections tracked at most; bounds the table when clients churn faster than closes arrive. */
export const MAX_TRACKED_CONNECTIONS = 1_000_000;
/** Distinct routes in one activity batch at most. */
export const MAX_ACTIVITY_ROUTES = 10_000;

interface ConnInfo {
  id: string;
  route: string;
  connType: 'http' | 'ws';
  peerAddress?: string;
  ssl: boolean;
  /** Up to when connection-minutes were counted (ms since epoch). */
  lastReport: number;
  bucket: number;
}


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
  if (spec === '') return { event: () => {}, close: async () => {} };
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

  // ---- connections (conn messages, and the report's connections/minutes)
  const connTtlS = Math.max(1, config.global.statsConnectionTtlS);
  const connSend = config.global.statsConnectionSend;
  const bucketCount = Math.max(1, Math.floor((connTtlS * 1000 * 3) / 4 / CONN_REFRESH_TICK_MS));
  const buckets: Array<Set<ConnInfo>> = Array.from({ length: bucketCount }, () => new Set());
  let bucketAt = 0;
  let nextBucket = 0;
  const conns = new Map<string, ConnInfo>();
  let connMax = 0;
  let connMinutes = 0;
  const sendConn = (ci: ConnInfo): void => {
    // Checked before the packet is built: this runs for every client request.
    if (!connSend || !pub.wants('conn')) return;
    pub.send({
      type: 'conn', from, id: ci.id, connected: true, connType: ci.connType, ssl: ci.ssl, ttl: connTtlS,
      ...(ci.route !== '' ? { route: ci.route } : {}), ...(ci.peerAddress !== undefined ? { peerAddress: ci.peerAddress } : {}),
    });
  };
  /** Counts whole minutes since the connection's last count (Pushpin rounds up: the first one was counted at open). */
  const countMinutes = (ci: ConnInfo, now: number): void => {
    const mins = Math.floor((now - ci.lastReport) / 60_000);
    if (mins > 0) {
      ci.lastReport += mins * 60_000;
      connMinutes += mins;
    }
  };
  const onConn = (ev: Extract<StatsEvent, { e: 'conn' }>): void => {
    const now = Date.now();
    let ci = conns.get(ev.id);
    const replacing = ci !== undefined;
    if (ci !== undefined) buckets[ci.bucket]?.delete(ci);
    else if (conns.size >= MAX_TRACKED_CONNECTIONS) return;
    ci = {
      id: ev.id, route: ev.route, connType: ev.connType, ssl: ev.ssl, lastReport: ci?.lastReport ?? now, bucket: nextBucket,
      ...(ev.peerAddress !== undefined ? { peerAddress: ev.peerAddress } : {}),
    };
    nextBucket = (nextBucket + 1) % bucketCount;
    buckets[ci.bucket]!.add(ci);
    conns.set(ci.id, ci);
    if (conns.size > connMax) connMax = conns.size;
    if (!replacing) connMinutes += 1;
    touched = true;
    sendConn(ci);
  };
  const onDisconn = (id: string): void => {
    const ci = conns.get(id);
    if (ci === undefined) return;
    conns.delete(id);
    buckets[ci.bucket]?.delete(ci);
    countMinutes(ci, Date.now());
    if (connSend && pub.wants('conn')) pub.send({ type: 'conn', from, id, connected: false, ...(ci.route !== '' ? { route: ci.route } : {}) });
  };
  const connTimer = setInterval(() => {
    // One bucket per tick: every connection is refreshed within 3/4 of its TTL.
    const now = Date.now();
    const bucket = buckets[bucketAt]!;
    bucketAt = (bucketAt + 1) % bucketCount;
    for (const ci of bucket) {
      countMinutes(ci, now);
      sendConn(ci);
    }
  }, CONN_REFRESH_TICK_MS);
  connTimer.unref();

  // ---- activity and counts (batched for ACTIVITY_BATCH_MS, as Pushpin)
  const activity = new Map<string, number>();
  let requestsReceived = 0;
  let activityTimer: NodeJS.Timeout | undefined;
  const flushActivity = (): void => {
    activityTimer = undefined;
    for (const [route, count] of activity) pub.send({ type: 'activity', from, count, ...(route !== '' ? { route } : {}) });
    activity.clear();
    if (requestsReceived > 0) pub.send({ type: 'counts', from, requestsReceived });
    requestsReceived = 0;
  };
  const onActivity = (route: string, count: number): void => {
    if (count <= 0) return;
    if (activity.size < MAX_ACTIVITY_ROUTES || activity.has(route)) activity.set(route, (activity.get(route) ?? 0) + count);
    requestsReceived += count;
    activityTimer ??= setTimeout(flushActivity, ACTIVITY_BATCH_MS);
  };

  // ---- per-publish messages and the report's message counts
  let sent = 0;
  let httpResponseSent = 0;
  let blocksSent = -1;
  let blocksReceived = -1;
  const onMessage = (ev: Extract<StatsEvent, { e: 'message' }>): void => {
    if (ev.count <= 0) return;
    pub.send({
      type: 'message', from, channel: ev.channel, count: ev.count, transport: ev.transport,
      ...(ev.itemId !== undefined ? { itemId: ev.itemId } : {}), ...(ev.blocks >= 0 ? { blocks: ev.blocks } : {}),
    });
    sent += ev.count;
    if (ev.transport === 'http-response') httpResponseSent += ev.count;
    if (ev.blocks > 0) blocksSent = Math.max(0, blocksSent) + ev.blocks;
    touched = true;
  };

  const event = (ev: StatsEvent): void => {
    if (closed) return;
    switch (ev.e) {
      case 'activity': onActivity(ev.route, ev.count); break;
      case 'message': onMessage(ev); break;
      case 'conn': onConn(ev); break;
      case 'disconn': onDisconn(ev.id); break;
      case 'received':
        receivedCount += ev.count;
        if (ev.blocks > 0) blocksReceived = Math.max(0, blocksReceived) + ev.blocks;
        touched = true;
        break;
    }
  };
  let receivedCount = 0;
  /** Something happened since the last report (Pushpin stops reporting once a report came out empty). */
  let touched = false;
  let lastEmpty = false;
  const listen = handler.onStats?.bind(handler);
  listen?.(event);

  // ---- report messages
  let lastAt = Date.now();
  const report = (): void => {
    const now = Date.now();
    for (const ci of conns.values()) countMinutes(ci, now);
    const empty = !touched && connMax === 0 && connMinutes === 0 && receivedCount === 0 && sent === 0;
    if (empty && lastEmpty) {
      lastAt = now;
      return;
    }
    pub.send({
      type: 'report',
      from,
      connections: connMax,
      minutes: connMinutes,
      received: receivedCount,
      sent,
      httpResponseSent,
      ...(blocksReceived >= 0 ? { blocksReceived } : {}),
      ...(blocksSent >= 0 ? { blocksSent } : {}),
      duration: now - lastAt,
    });
    lastEmpty = empty;
    lastAt = now;
    connMax = conns.size;
    connMinutes = 0;
    receivedCount = 0;
    sent = 0;
    httpResponseSent = 0;
    blocksSent = -1;
    blocksReceived = -1;
    touched = false;
  };
  const reportTimer = reportMs > 0 ? setInterval(report, reportMs) : undefined;
  reportTimer?.unref();

  let closed = false;
  logger.debug({ spec, format }, 'stats socket started');
  return {
    event,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(refreshTimer);
      clearInterval(connTimer);
      if (activityTimer !== undefined) clearTimeout(activityTimer);
      handler.offStats?.(event);
      if (reportTimer) clearInterval(reportTimer);
      handler.off('subscribe', onSubscribe);
      handler.off('unsubscribe', onUnsubscribe);
      pub.close();
    },
  };
}
