/**
 * The GRIP side of one client WebSocket connection: its channel subscriptions (with
 * filters), metadata, keep-alive and delayed messages, detach state, and delivery of
 * published ws-message items. The backend side (WebSocket-over-HTTP requests, a
 * pass-through backend socket, or the test handler) lives in its own object and talks to
 * this one through `applyControl` and the hooks.
 *
 * OWNER of its timers; the Handler owns the channel index and is reached through HoldHost.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { PublishItem, WsMessageFormat } from '../grip/types.js';
import type { HoldHost, WsHeld } from '../handler/host.js';
import { applyContentFilters, hasContentFilter, isDroppedByFilters } from '../handler/filters.js';
import type { Logger } from '../log/index.js';
import type { ControlMessage, WsMessageType } from './control.js';
import { applySetMeta } from './events.js';

/**
 * After asking a too-slow or shutting-down client to close, how long to wait for its
 * close reply before dropping the TCP connection (its buffer may never drain).
 */
export const CLOSE_GRACE_MS = 1_000;

/** Close code sent to a client dropped for not reading fast enough (policy violation). */
export const CLOSE_SLOW_CONSUMER = 1008;

/** Close code sent to clients when gripd shuts down (going away). */
export const CLOSE_SHUTDOWN = 1001;

/** What the backend side of a connection offers to its session. All optional. */
export interface WsSessionHooks {
  /** Send a request to the backend now (over_http `refresh`). */
  refresh?(): void;
  /** Stop relaying to the backend and tell it (detach, or a publish closing the client). */
  closeBackend?(): void;
  /**
   * gripd extension (reliable delivery): the connection missed items on `channel` (named
   * as the backend subscribed it, without the route prefix); ask the backend to resend
   * what came after `lastId` (over_http: a request carrying Grip-Last).
   */
  recover?(channel: string, lastId: string): void;
}

interface Subscription {
  filters: string[];
  /**
   * gripd extension: the backend subscribed with `prev-id`, so ids on this channel are
   * checked for gaps. `lastId` is the id of the last item the connection has (undefined
   * until one with an id arrives).
   */
  reliable: boolean;
  lastId: string | undefined;
}

interface TimedMessage {
  type: WsMessageType;
  content: Buffer;
}

/** One client WebSocket as a GRIP subscriber. */
export class WsSession implements WsHeld {
  readonly mode = 'ws' as const;
  /** Subscribed channels (route prefix applied) and their filters. */
  readonly channels = new Map<string, Subscription>();
  /** Connection metadata (Set-Meta-* and set-meta), sent as Meta-* over HTTP and read by filters. */
  meta: Array<[string, string]> = [];
  /** Session id from a `session` control message. */
  sessionId: string | undefined;
  /** Detached: client messages no longer go to the backend. */
  detached = false;
  private host: HoldHost | undefined;
  private done = false;
  private lastSendMs = Date.now();
  private keepAlive: { message: TimedMessage; timeoutMs: number; mode: 'idle' | 'interval'; timer: NodeJS.Timeout } | undefined;
  private delayed: { message: TimedMessage; timer: NodeJS.Timeout } | undefined;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly cid: string,
    private readonly client: WebSocket,
    /** Route `prefix=`: prepended to every channel this connection subscribes to. */
    private readonly channelPrefix: string,
    private readonly logger: Logger,
    private hooks: WsSessionHooks = {},
  ) {}

  /** Connects the session to the Handler (see Handler.registerWs). */
  attach(host: HoldHost, hooks?: WsSessionHooks): void {
    this.host = host;
    if (hooks !== undefined) this.hooks = hooks;
  }

  get socket(): Socket | null {
    const s = (this.client as unknown as { _socket: Socket | null })._socket;
    return s ?? null;
  }

  /** True while the client can be written to. */
  get open(): boolean {
    return !this.done && this.client.readyState === 1;
  }

  /** Sends one message to the client (no-op once closed). */
  send(type: WsMessageType, content: Buffer): void {
    if (!this.open) return;
    this.lastSendMs = Date.now();
    switch (type) {
      case 'text': this.client.send(content, { binary: false }); break;
      case 'binary': this.client.send(content, { binary: true }); break;
      case 'ping': this.client.ping(content); break;
      case 'pong': this.client.pong(content); break;
    }
    this.checkBacklog();
  }

  /**
   * Subscribes to `channel` as written by the backend (prefix applied here). `prevId`
   * (gripd extension) turns on gap detection for the channel, starting from that id.
   */
  subscribe(channel: string, filters: string[] = [], prevId?: string): void {
    if (this.host === undefined || this.done) return;
    const name = this.channelPrefix + channel;
    if (!this.channels.has(name) && this.channels.size >= this.host.subscriptionMax) {
      this.logger.warn({ cid: this.cid, channel: name, max: this.host.subscriptionMax }, 'ws: connection_subscription_max reached; subscription ignored');
      return;
    }
    this.channels.set(name, { filters, reliable: prevId !== undefined, lastId: prevId });
    this.host.subscribe(this, name);
  }

  /** Acts on a control message from the backend (already parsed and validated). */
  applyControl(m: ControlMessage): void {
    if (this.done) return;
    switch (m.type) {
      case 'subscribe':
        this.subscribe(m.channel, m.filters, m.prevId);
        break;
      case 'unsubscribe': {
        const name = this.channelPrefix + m.channel;
        if (this.channels.delete(name)) this.host?.unsubscribe(this, name);
        break;
      }
      case 'detach':
        if (!this.detached) {
          this.detached = true;
          this.hooks.closeBackend?.();
        }
        break;
      case 'session':
        this.sessionId = m.id;
        break;
      case 'set-meta':
        this.meta = applySetMeta(this.meta, [[m.name, m.value ?? '']]);
        break;
      case 'keep-alive':
        this.setKeepAlive(m.message, m.timeoutS * 1000, m.mode);
        break;
      case 'send-delayed':
        if (this.delayed !== undefined) clearTimeout(this.delayed.timer);
        this.delayed = { message: m.message, timer: this.timer(() => this.flushDelayed(), m.timeoutS * 1000) };
        break;
      case 'flush-delayed':
        this.flushDelayed();
        break;
    }
  }

  needsSlowPath(channel: string): boolean {
    const s = this.channels.get(channel);
    return s === undefined || s.filters.length > 0 || s.reliable;
  }

  writeShared(frame: Buffer): boolean {
    const s = this.socket;
    if (!this.open || s === null || s.destroyed) return false;
    this.lastSendMs = this.host?.nowMs ?? Date.now();
    s.write(frame);
    this.checkBacklog();
    return true;
  }

  deliver(item: PublishItem, channel: string, f: WsMessageFormat): void {
    if (!this.open) return;
    const sub = this.channels.get(channel);
    if (sub !== undefined && sub.reliable && this.isGap(sub, item, channel, f)) return;
    const filters = sub?.filters ?? [];
    if (filters.length > 0) {
      const metaRec = Object.fromEntries(this.meta);
      if (isDroppedByFilters(filters, { subscriptionMeta: metaRec, publishMeta: item.meta, channels: new Set(this.channels.keys()) })) return;
    }
    const action = f.action ?? 'send';
    if (action === 'close') {
      // As Pushpin: the backend is told the connection is closing, the client gets the code.
      this.hooks.closeBackend?.();
      this.closeClient(f.code, f.reason ?? '');
      return;
    }
    if (action === 'refresh') {
      this.hooks.refresh?.();
      return;
    }
    let content = f.content ?? Buffer.alloc(0);
    const cf = [...filters, ...(f.contentFilters ?? [])];
    if (hasContentFilter(cf)) {
      try {
        content = applyContentFilters(cf, content, Object.fromEntries(this.meta), new Map());
      } catch (err) {
        this.logger.debug({ cid: this.cid, err: (err as Error).message }, 'ws: content filter failed; item dropped');
        return;
      }
    }
    this.send(f.type, content);
  }

  /**
   * Reliable delivery (gripd extension): records the item's id as the connection's last
   * on `channel`, and returns true when the item is not the successor of the last one
   * (its prev-id differs). Then, instead of delivering it, the backend is asked to resend
   * everything after the last id, which includes this item: the connection counts as up
   * to date with it. Only `send` items are held back; without a recover hook (not
   * over_http) the item is delivered as usual.
   */
  private isGap(sub: Subscription, item: PublishItem, channel: string, f: WsMessageFormat): boolean {
    const last = sub.lastId;
    if (item.id !== undefined) sub.lastId = item.id;
    const gap = item.prevId !== undefined && last !== undefined && item.prevId !== last;
    if (!gap || (f.action ?? 'send') !== 'send' || this.hooks.recover === undefined) return false;
    const name = channel.startsWith(this.channelPrefix) ? channel.slice(this.channelPrefix.length) : channel;
    this.logger.debug({ cid: this.cid, channel: name, lastId: last, prevId: item.prevId }, 'ws: gap in ids; asking the backend to resend');
    this.hooks.recover(name, last);
    return true;
  }

  /** Pushpin's session update for a WebSocket: a WebSocket-over-HTTP refresh. */
  update(): void {
    this.hooks.refresh?.();
  }

  shutdown(): void {
    this.closeClient(CLOSE_SHUTDOWN, '');
  }

  /** Starts a close handshake with the client; drops the TCP connection if it never answers. */
  closeClient(code: number | undefined, reason: string): void {
    if (this.client.readyState === 0 || this.client.readyState === 1) {
      try {
        if (code === undefined) this.client.close();
        else this.client.close(code, Buffer.from(reason).subarray(0, 123));
      } catch {
        this.client.close();
      }
    }
    this.killTimer ??= this.timer(() => this.client.terminate(), CLOSE_GRACE_MS);
  }

  /** The connection is over: leave every channel, stop timers, deregister. Idempotent. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.keepAlive !== undefined) clearTimeout(this.keepAlive.timer);
    if (this.delayed !== undefined) clearTimeout(this.delayed.timer);
    if (this.killTimer !== undefined) clearTimeout(this.killTimer);
    this.keepAlive = undefined;
    this.delayed = undefined;
    const host = this.host;
    if (host !== undefined) {
      for (const name of this.channels.keys()) host.unsubscribe(this, name);
      host.finished(this);
    }
    this.channels.clear();
  }

  private checkBacklog(): void {
    const s = this.socket;
    const max = this.host?.outboundMaxBytes;
    if (s === null || max === undefined || s.writableLength <= max) return;
    this.logger.warn({ cid: this.cid, buffered: s.writableLength, max }, 'ws: client not reading; closing with 1008');
    this.host?.countDrop();
    // Its buffer may never drain: leave every channel so nothing more gets queued for it.
    this.finish();
    this.closeClient(CLOSE_SLOW_CONSUMER, 'client too slow');
  }

  private flushDelayed(): void {
    const d = this.delayed;
    if (d === undefined) return;
    clearTimeout(d.timer);
    this.delayed = undefined;
    this.send(d.message.type, d.message.content);
  }

  private setKeepAlive(message: TimedMessage | undefined, timeoutMs: number, mode: 'idle' | 'interval'): void {
    if (this.keepAlive !== undefined) clearTimeout(this.keepAlive.timer);
    this.keepAlive = undefined;
    if (message === undefined || timeoutMs <= 0) return;
    const ka = { message, timeoutMs, mode, timer: undefined as unknown as NodeJS.Timeout };
    const fire = (): void => {
      if (this.keepAlive !== ka || !this.open) return;
      const idleFor = Date.now() - this.lastSendMs;
      if (mode === 'idle' && idleFor < timeoutMs) {
        ka.timer = this.timer(fire, timeoutMs - idleFor);
        return;
      }
      this.send(message.type, message.content);
      ka.timer = this.timer(fire, timeoutMs);
    };
    ka.timer = this.timer(fire, timeoutMs);
    this.keepAlive = ka;
  }

  private timer(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  }
}
