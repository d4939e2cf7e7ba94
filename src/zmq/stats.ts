/**
 * Stats messages on the `stats_spec` PUB socket, in Pushpin's framing: one frame
 * `<type> T<tnetstring dict>` or `<type> J<json object>` (per `stats_format`). Types and
 * fields follow Pushpin's stats packets. The encoders are pure; StatsPublisher owns the
 * socket (an XPUB, so nothing is encoded while no subscriber wants it). Deciding when to
 * send (connection TTLs, report intervals) is the caller's job.
 */
import * as zmq from 'zeromq';
import { encodeTnetstring, type TnetEncodable } from './tnetstring.js';
import { setupSocket } from './socket-util.js';
import type { PublishItem } from '../grip/types.js';

export type StatsFormat = 'tnetstring' | 'json';

interface StatsCommon {
  /** Instance id of the sender. */
  from?: string;
  /** Route id the event belongs to, if the route has one. */
  route?: string;
}

/** Requests received since the previous activity message. */
export interface ActivityStats extends StatsCommon {
  type: 'activity';
  count: number;
}

/** One published item relayed to `count` subscribers. */
export interface MessageStats extends StatsCommon {
  type: 'message';
  channel: string;
  itemId?: string;
  count: number;
  blocks?: number;
  /** 'http-response' | 'http-stream' | 'ws-message'. */
  transport: string;
}

/** A connection seen (refreshed every `stats_connection_ttl`) or gone. */
export interface ConnStats extends StatsCommon {
  type: 'conn';
  id: string;
  /** false for a disconnect (`unavailable: true`). */
  connected: boolean;
  connType?: 'http' | 'ws';
  peerAddress?: string;
  ssl?: boolean;
  /** Seconds until the connection is presumed gone unless refreshed. */
  ttl?: number;
}

/** A channel subscription seen (refreshed every `stats_subscription_ttl`) or gone. */
export interface SubStats extends StatsCommon {
  type: 'sub';
  /** 'response' | 'stream' | 'ws'. */
  mode: string;
  channel: string;
  subscribed: boolean;
  ttl?: number;
  subscribers?: number;
}

/** Periodic totals (every `stats_report_interval`). Absent fields are omitted. */
export interface ReportStats extends StatsCommon {
  type: 'report';
  connections?: number;
  minutes?: number;
  received?: number;
  sent?: number;
  httpResponseSent?: number;
  blocksReceived?: number;
  blocksSent?: number;
  /** Milliseconds covered by this report. */
  duration?: number;
}

/** Requests received instance-wide since the previous counts message (Pushpin's `counts`). */
export interface CountsStats extends StatsCommon {
  type: 'counts';
  requestsReceived: number;
}

export type StatsPacket = ActivityStats | MessageStats | ConnStats | SubStats | ReportStats | CountsStats;

/**
 * What the client side (proxy, handler) tells the stats reporter. Plain data, so worker
 * processes can pass them to the primary over IPC. `route` is the route's explicit id, or ''
 * when it has none (Pushpin's stats route).
 */
export type StatsEvent =
  /** `count` client requests arrived on `route`. */
  | { e: 'activity'; route: string; count: number }
  /** One published item went to `count` subscribers over `transport`; `blocks` is the total, -1 without message_block_size. */
  | { e: 'message'; channel: string; itemId?: string; transport: string; count: number; blocks: number }
  /** A client connection (Pushpin: one HTTP request, or one WebSocket) opened. */
  | { e: 'conn'; id: string; route: string; connType: 'http' | 'ws'; peerAddress?: string; ssl: boolean }
  /** That connection ended. */
  | { e: 'disconn'; id: string }
  /** `count` items were accepted by the publish inputs, `blocks` in all (largest format each; -1: off). */
  | { e: 'received'; count: number; blocks: number };

/** Pushpin's blocks for `bytes` of content: ceil(bytes / blockSize); -1 when blockSize <= 0 (off). */
export function blocksForData(bytes: number, blockSize: number): number {
  if (blockSize <= 0) return -1;
  return Math.ceil(Math.max(0, bytes) / blockSize);
}

const nonNeg = (n: number): number => (Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);

/** The dict Pushpin would send for `p` (strings here; bytes on the tnetstring wire). */
export function statsFields(p: StatsPacket): Map<string, string | number | boolean> {
  const m = new Map<string, string | number | boolean>();
  if (p.from) m.set('from', p.from);
  if (p.route) m.set('route', p.route);
  switch (p.type) {
    case 'activity':
      m.set('count', nonNeg(p.count));
      break;
    case 'message':
      m.set('channel', p.channel);
      if (p.itemId !== undefined) m.set('item-id', p.itemId);
      m.set('count', nonNeg(p.count));
      if (p.blocks !== undefined && p.blocks >= 0) m.set('blocks', p.blocks);
      m.set('transport', p.transport);
      break;
    case 'conn':
      m.set('id', p.id);
      if (p.connected) {
        m.set('type', p.connType ?? 'http');
        if (p.peerAddress) m.set('peer-address', p.peerAddress);
        if (p.ssl) m.set('ssl', true);
        m.set('ttl', nonNeg(p.ttl ?? 0));
      } else {
        m.set('unavailable', true);
      }
      break;
    case 'sub':
      m.set('mode', p.mode);
      m.set('channel', p.channel);
      if (p.subscribed) {
        m.set('ttl', nonNeg(p.ttl ?? 0));
        if (p.subscribers !== undefined && p.subscribers >= 0) m.set('subscribers', p.subscribers);
      } else {
        m.set('unavailable', true);
      }
      break;
    case 'report': {
      const put = (k: string, v: number | undefined): void => {
        if (v !== undefined && v >= 0) m.set(k, Math.floor(v));
      };
      put('connections', p.connections);
      put('minutes', p.minutes);
      put('received', p.received);
      put('sent', p.sent);
      put('http-response-sent', p.httpResponseSent);
      put('blocks-received', p.blocksReceived);
      put('blocks-sent', p.blocksSent);
      put('duration', p.duration);
      break;
    }
    case 'counts':
      if (p.requestsReceived > 0) m.set('requests-received', Math.floor(p.requestsReceived));
      break;
  }
  return m;
}

/** Encodes one stats message frame: `<type> T<tnetstring>` or `<type> J<json>`. */
export function encodeStatsMessage(p: StatsPacket, format: StatsFormat): Buffer {
  const fields = statsFields(p);
  if (format === 'json') {
    return Buffer.from(`${p.type} J${JSON.stringify(Object.fromEntries(fields))}`, 'utf8');
  }
  return Buffer.concat([Buffer.from(`${p.type} T`, 'latin1'), encodeTnetstring(fields as Map<string, TnetEncodable>)]);
}

/** Splits a stats frame into its type and payload (for tests and tools). */
export function splitStatsMessage(frame: Buffer): { type: string; format: StatsFormat; payload: Buffer } | undefined {
  const sp = frame.indexOf(0x20);
  if (sp < 0 || sp + 1 >= frame.length) return undefined;
  const tag = frame[sp + 1];
  if (tag !== 0x54 && tag !== 0x4a) return undefined;
  return { type: frame.toString('latin1', 0, sp), format: tag === 0x4a ? 'json' : 'tnetstring', payload: frame.subarray(sp + 2) };
}

/** Pushpin's blocks of an item: from `size` when given, else the largest format's content. */
export function largestBlocks(item: PublishItem, blockSize: number): number {
  if (item.size !== undefined && item.size >= 0) return blocksForData(item.size, blockSize);
  const f = item.formats;
  const bytes = Math.max(f.httpResponse?.body?.length ?? 0, f.httpStream?.content?.length ?? 0, f.wsMessage?.content?.length ?? 0);
  return blocksForData(bytes, blockSize);
}

/**
 * The stats PUB socket. `send` never blocks and never throws: PUB drops messages nobody
 * subscribed to or beyond the high-water mark, and a message arriving while another is
 * being written is queued (bounded by MAX_QUEUED_STATS, oldest dropped first).
 */
export class StatsPublisher {
  private queue: Buffer[] = [];
  private writing = false;
  /** Prefixes subscribers asked for (an XPUB passes each on once, and its end once). */
  private readonly topics = new Set<string>();

  private constructor(
    private readonly sock: zmq.XPublisher,
    private readonly format: StatsFormat,
  ) {}

  /**
   * Binds `spec` (Pushpin binds `stats_spec`). The socket is an XPUB: to subscribers it is
   * the PUB Pushpin has, and it tells gripd what they subscribed to, so messages nobody
   * would receive are not built. Rejects with a ZmqSetupError.
   */
  static async start(spec: string, format: StatsFormat): Promise<StatsPublisher> {
    const sock = new zmq.XPublisher({ linger: 0 });
    await setupSocket(sock, [spec], true, 'stats_spec');
    const pub = new StatsPublisher(sock, format);
    void pub.readSubscriptions();
    return pub;
  }

  /** True when some subscriber's prefix can match a message of this type. */
  wants(type: string): boolean {
    if (this.topics.size === 0) return false;
    const head = `${type} `;
    for (const t of this.topics) {
      // A prefix longer than the head depends on the payload: send, and let ZeroMQ filter.
      if (head.startsWith(t) || t.startsWith(head)) return true;
    }
    return false;
  }

  send(p: StatsPacket): void {
    if (this.sock.closed || !this.wants(p.type)) return;
    if (this.queue.length >= MAX_QUEUED_STATS) this.queue.shift();
    this.queue.push(encodeStatsMessage(p, this.format));
    if (!this.writing) void this.flush();
  }

  private async readSubscriptions(): Promise<void> {
    try {
      for await (const [msg] of this.sock) {
        if (msg === undefined || msg.length === 0) continue;
        const topic = msg.toString('latin1', 1);
        if (msg[0] === 1) this.topics.add(topic);
        else if (msg[0] === 0) this.topics.delete(topic);
      }
    } catch {
      // The socket was closed.
    }
  }

  private async flush(): Promise<void> {
    this.writing = true;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
        if (this.sock.closed) break;
        await this.sock.send(next).catch(() => undefined);
      }
    } finally {
      this.writing = false;
    }
  }

  close(): void {
    this.queue = [];
    this.topics.clear();
    if (!this.sock.closed) this.sock.close();
  }
}

/** Stats messages waiting for the socket before the oldest are dropped. */
export const MAX_QUEUED_STATS = 10_000;
