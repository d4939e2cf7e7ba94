/**
 * The GRIP engine: takes over requests the backend answered with GRIP, keeps the
 * channel index (channel -> held requests), and delivers published items. OWNER of all
 * subscription state; held objects own their own timers (on the shared wheel).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Config } from '../config/types.js';
import { isGripResponse } from '../grip/headers.js';
import { parseGripHeaders } from '../grip/instruct.js';
import type { PublishItem } from '../grip/types.js';
import type { Logger } from '../log/index.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import type { BackendRequest, BackendRequester, BackendResponse, GripAcceptor, GripHandoff } from '../proxy/types.js';
import type { Route } from '../routes/types.js';
import type { Held, HoldHost, InstructDecoder, WsHeld } from './host.js';
import { ResponseHold, writeBadGateway, writeWholeResponse, writeWithCors } from './response-hold.js';
import { Sequencer } from './sequencer.js';
import { StreamHold } from './stream-hold.js';
import { TimerWheel } from './timer-wheel.js';
import { encodeChunk } from './wire.js';
import { createDeliveryLimiter, deliveryWeight, type DeliveryLimiter } from './rate-limit.js';
import { encodeFrame } from '../websocket/frame.js';
import type { WsMessageFormat } from '../grip/types.js';
import { blocksForData, largestBlocks, type StatsEvent } from '../zmq/stats.js';

/**
 * Default cap on bytes queued in one client socket before the subscriber is dropped as
 * too slow. Protects memory (10 000 stuck clients x this) and keeps one stalled reader
 * from holding buffers the fast ones never need.
 */
export const OUTBOUND_MAX_BYTES = 1_048_576;

/** A publish this soon after the last corked flush means publishes are arriving back to back. */
export const COALESCE_WINDOW_MS = 5;
/**
 * How long writes are held under load so back-to-back publishes reach each socket in one
 * writev. Adds at most this much latency, only while publishes arrive faster than a flush.
 */
export const COALESCE_DELAY_MS = 2;

/** Delay before update_on_first_subscription updates a new channel's sessions (Pushpin's SUBSCRIBED_DELAY). */
export const FIRST_SUBSCRIPTION_UPDATE_DELAY_MS = 1000;

/** Counters for metrics; read at any time, never reset. */
export interface HandlerCounters {
  /** Requests currently held as long-polls. */
  heldResponse: number;
  /** Requests currently held as streams. */
  heldStream: number;
  /** Client WebSocket connections registered (over_http, pass-through with grip, test). */
  heldWs: number;
  /** Channels with at least one subscriber. */
  channels: number;
  /** Items written to subscribers (one per subscriber per item). */
  deliveries: number;
  /** Subscribers dropped for a full outbound buffer, plus deliveries dropped past message_hwm. */
  drops: number;
  /** Items received through publish(). */
  itemsPublished: number;
}

export interface HandlerOptions {
  config: Config;
  logger: Logger;
  requester: BackendRequester;
  /**
   * Decodes a backend answer (retries, hints, next links) into GRIP instructions, or
   * null for a plain response. Default: src/grip's parseGripHeaders when any Grip-*
   * header (or an application/grip-instruct body) is present.
   */
  decodeInstruct?: InstructDecoder;
  /** Outbound buffer limit per client connection in bytes (default OUTBOUND_MAX_BYTES). */
  outboundMaxBytes?: number;
  /** Domain-event sink (holds, subscriptions, deliveries, drops); default counts nothing. */
  metrics?: Metrics;
}

export interface HandlerEvents {
  subscribe: [channel: string];
  unsubscribe: [channel: string];
}

/**
 * Holds requests and delivers publishes. Emits `subscribe` when a channel gets its
 * first subscriber and `unsubscribe` when its last one leaves (the ZeroMQ SUB input
 * follows these); `channels()` lists the current ones.
 */
export class Handler extends EventEmitter<HandlerEvents> implements GripAcceptor {
  readonly counters: HandlerCounters = { heldResponse: 0, heldStream: 0, heldWs: 0, channels: 0, deliveries: 0, drops: 0, itemsPublished: 0 };
  private readonly responseByChannel = new Map<string, Set<ResponseHold>>();
  private readonly streamByChannel = new Map<string, Set<StreamHold>>();
  private readonly wsByChannel = new Map<string, Set<WsHeld>>();
  /** Live WebSocket connections by Connection-Id (refresh, conncheck, per-connection sends). */
  private readonly wsById = new Map<string, WsHeld>();
  /** Subscriber count per channel across modes. */
  private readonly refs = new Map<string, number>();
  /**
   * Channels whose last long-poll left less than subscription_linger ago: still
   * subscribed (as Pushpin keeps them), so a client polling again neither re-triggers the
   * first-subscription update nor makes the SUB socket unsubscribe and resubscribe.
   */
  private readonly lingering = new Map<string, NodeJS.Timeout>();
  private readonly holds = new Set<Held>();
  private readonly sequencer: Sequencer;
  private readonly host: HoldHost;
  private readonly wheel = new TimerWheel();
  private readonly metrics: Metrics;
  /** Next-link requests in flight, keyed by route, URL and headers (see fetchLink). */
  private readonly linkFetches = new Map<string, Promise<BackendResponse>>();
  /** Subscriptions (hold x channel pairs) across all channels. */
  private subscriptions = 0;
  /** Stats listeners (src/zmq/stats-reporter.ts); empty = publishes build no stats events. */
  private readonly statsListeners: Array<(ev: StatsEvent) => void> = [];
  private stopping = false;
  /** message_rate / message_hwm; undefined = no cap (deliveries go straight out). */
  private readonly limiter: DeliveryLimiter | undefined;
  /**
   * Write coalescing. The kernel's per-write cost dominates fan-out, so items bound for one
   * socket should leave in as few writes as possible:
   * - an idle server writes a single-item publish straight through (lowest latency);
   * - a multi-item publish, or a second publish in the same event-loop turn, corks the
   *   sockets it writes to until the turn ends;
   * - under load (a publish arriving within COALESCE_WINDOW_MS of the last flush), writes
   *   are corked for COALESCE_DELAY_MS so that back-to-back publishes share one writev
   *   per socket.
   */
  private corked: Socket[] = [];
  /** True from the first publish of a turn until the turn ends. */
  private turnActive = false;
  /** True while writes should be corked (until the next flush). */
  private corking = false;
  /** A delayed flush is pending (under load). */
  private flushTimer: NodeJS.Timeout | undefined;
  /** When the last corked flush finished (ms since epoch); 0 = never. */
  private lastFlushMs = 0;
  private readonly endTurn = (): void => {
    this.turnActive = false;
    if (this.flushTimer === undefined) this.flush();
  };
  private readonly flush = (): void => {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const hadWrites = this.corked.length > 0;
    this.corking = false;
    const list = this.corked;
    this.corked = [];
    for (const s of list) {
      if (!s.destroyed) s.uncork();
    }
    if (hadWrites) this.lastFlushMs = Date.now();
  };
  private nowMs = Date.now();

  constructor(private readonly opts: HandlerOptions) {
    super();
    const hc = opts.config.handler;
    this.metrics = opts.metrics ?? NO_METRICS;
    this.sequencer = new Sequencer(hc.messageWaitMs, hc.idCacheTtlS, (item) => this.deliver(item));
    this.limiter = createDeliveryLimiter(hc.messageRate, hc.messageHwm);
    const self = this;
    const subscriptionMax = hc.connectionSubscriptionMax > 0 ? hc.connectionSubscriptionMax : Number.MAX_SAFE_INTEGER;
    const decode: InstructDecoder = opts.decodeInstruct ?? ((resp) => {
      if (!isGripResponse(resp.headers)) return null;
      return parseGripHeaders(resp.status, resp.reason, resp.headers, resp.body, { subscriptionMax });
    });
    this.host = {
      wheel: this.wheel,
      logger: opts.logger,
      requester: opts.requester,
      decode,
      lastIds: this.sequencer.lastIds,
      outboundMaxBytes: opts.outboundMaxBytes ?? OUTBOUND_MAX_BYTES,
      subscriptionMax,
      get nowMs() {
        return self.nowMs;
      },
      fetchLink: (route, req, o) => this.fetchLink(route, req, o),
      subscribe: (hold, channel) => this.subscribe(hold, channel),
      unsubscribe: (hold, channel) => this.unsubscribe(hold, channel),
      finished: (hold) => this.finished(hold),
      accept: (h) => this.accept(h),
      autoCrossOrigin: (route) => route.autoCrossOrigin || opts.config.proxy.autoCrossOrigin,
      countDrop: () => {
        this.counters.drops++;
        this.metrics.dropped('slow-consumer', 1);
      },
    };
  }

  /**
   * Listens to stats events: the handler's own `message` events (one per published item
   * and transport that reached subscribers) and whatever `emitStats` passes on (the
   * proxy's connection and activity events). With no listener nothing is built.
   */
  onStats(listener: (ev: StatsEvent) => void): void {
    this.statsListeners.push(listener);
  }

  offStats(listener: (ev: StatsEvent) => void): void {
    const i = this.statsListeners.indexOf(listener);
    if (i >= 0) this.statsListeners.splice(i, 1);
  }

  /** True when someone listens to stats events (callers skip building them otherwise). */
  get statsWanted(): boolean {
    return this.statsListeners.length > 0;
  }

  /** Passes a stats event to the listeners. */
  emitStats(ev: StatsEvent): void {
    for (const l of this.statsListeners) l(ev);
  }

  /** Channels with at least one subscriber now. */
  channels(): Iterable<string> {
    return this.lingering.size === 0 ? this.refs.keys() : new Set([...this.refs.keys(), ...this.lingering.keys()]);
  }

  /** Subscribers of `channel` by mode. */
  subscriberCount(channel: string): { response: number; stream: number; ws: number } {
    return {
      response: this.responseByChannel.get(channel)?.size ?? 0,
      stream: this.streamByChannel.get(channel)?.size ?? 0,
      ws: this.wsByChannel.get(channel)?.size ?? 0,
    };
  }

  /**
   * Registers a client WebSocket connection (called by src/websocket once the handshake
   * is done). Returns the host it subscribes through, or undefined when the handler is
   * stopping (the caller then closes the connection). The connection calls
   * host.finished(itself) when it ends.
   */
  registerWs(conn: WsHeld): HoldHost | undefined {
    if (this.stopping) return undefined;
    if (this.wsById.has(conn.cid)) throw new Error(`duplicate connection id ${conn.cid}`);
    this.wsById.set(conn.cid, conn);
    this.holds.add(conn);
    this.counters.heldWs++;
    this.metrics.holdChange('ws', 1);
    return this.host;
  }

  /**
   * gripd extension: sends a ws-message to the one connection with this Connection-Id
   * (action send, close or refresh), bypassing channels. Returns false when no such
   * connection is live.
   */
  sendToConnection(cid: string, f: WsMessageFormat): boolean {
    const conn = this.wsById.get(cid);
    if (conn === undefined) return false;
    conn.deliver({ channel: '', noSeq: true, meta: {}, formats: { wsMessage: f } }, '', f);
    this.countDelivered(1);
    return true;
  }

  /** gripd extension: closes the connection with this id (code 1000 unless given). */
  closeConnection(cid: string, code = 1000, reason = ''): boolean {
    return this.sendToConnection(cid, { action: 'close', type: 'text', code, reason });
  }

  /** Takes over a request the backend answered with GRIP. Never throws. */
  accept(h: GripHandoff): void {
    if (this.stopping) {
      writeWholeResponse(h.res, 503, 'Service Unavailable', [['Content-Type', 'text/plain']], Buffer.from('Service Unavailable\n'));
      return;
    }
    if (h.res.destroyed || h.req.socket.destroyed) {
      // The client left while the backend was answering: nothing to hold.
      h.res.destroy();
      return;
    }
    try {
      const hold = h.instruct.hold;
      if (hold?.mode === 'response') {
        const rh = new ResponseHold(this.host, h);
        this.holds.add(rh);
        this.counters.heldResponse++;
        this.metrics.holdChange('response', 1);
        rh.start();
      } else if (hold?.mode === 'stream' || h.instruct.nextLink !== undefined) {
        const sh = new StreamHold(this.host, h);
        this.holds.add(sh);
        this.counters.heldStream++;
        this.metrics.holdChange('stream', 1);
        sh.start();
      } else {
        const r = h.instruct.response;
        writeWithCors(this.host, h, r.code, r.reason, r.headers, r.body);
      }
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message }, 'handler: accept failed');
      writeBadGateway(h.res, undefined);
    }
  }

  /**
   * Delivers published items in order (after id/prev-id sequencing and de-duplication).
   * Items for channels nobody holds are dropped at once. Trusts its input (validated by
   * the publish parsers).
   */
  publish(items: PublishItem[]): void {
    if (this.stopping) return;
    this.nowMs = Date.now();
    if (!this.corking) {
      if (this.lastFlushMs !== 0 && this.nowMs - this.lastFlushMs < COALESCE_WINDOW_MS) {
        this.corking = true;
        this.flushTimer = setTimeout(this.flush, COALESCE_DELAY_MS);
      } else if (this.turnActive || items.length > 1) {
        this.corking = true;
      }
    }
    if (!this.turnActive) {
      this.turnActive = true;
      setImmediate(this.endTurn);
    }
    if (this.statsListeners.length > 0) this.statsReceived(items);
    const before = this.counters.deliveries;
    for (const item of items) {
      this.counters.itemsPublished++;
      if (!this.refs.has(item.channel) && !this.lingering.has(item.channel)) continue;
      this.sequencer.add(item, !item.noSeq);
    }
    // Uncorked writes went to the kernel just now: that counts as a flush.
    if (!this.corking && this.counters.deliveries !== before) this.lastFlushMs = Date.now();
  }

  /**
   * Graceful stop: long-polls get their timeout response, streams end with their last
   * chunk. Resolves once every held request has been answered.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sequencer.stop();
    this.limiter?.stop();
    for (const t of this.lingering.values()) clearTimeout(t);
    this.lingering.clear();
    this.flush();
    for (const h of [...this.holds]) {
      try {
        h.shutdown();
      } catch (err) {
        this.opts.logger.warn({ err: (err as Error).message }, 'handler: shutdown of a hold failed');
      }
    }
    this.wheel.clear();
  }

  /** Pushpin's `recover`: forget last ids and update every session (retry / next link). */
  recover(): void {
    this.sequencer.lastIds.clear();
    for (const h of [...this.holds]) h.update();
  }

  /** Updates the HTTP sessions held on `channel` (all of them when absent). */
  refresh(opts: { cid?: string; channel?: string }): void {
    if (opts.cid !== undefined) {
      // A WebSocket-over-HTTP connection sends an (empty) request to its backend now.
      this.wsById.get(opts.cid)?.update();
      return;
    }
    if (opts.channel === undefined) return;
    this.updateChannel(opts.channel);
    const ws = this.wsByChannel.get(opts.channel);
    if (ws !== undefined) for (const c of [...ws]) c.update();
  }

  /** Of the given connection ids, the live ones (WebSocket connections; HTTP holds have no ids). */
  conncheck(ids: string[]): string[] {
    return ids.filter((id) => this.wsById.has(id));
  }

  private updateChannel(channel: string): void {
    const holds: Held[] = [...(this.responseByChannel.get(channel) ?? []), ...(this.streamByChannel.get(channel) ?? [])];
    for (const h of holds) h.update();
  }

  /** The `received` stats event for a publish (count and blocks, as Pushpin's report). */
  private statsReceived(items: PublishItem[]): void {
    const bs = this.opts.config.handler.messageBlockSize;
    let blocks = -1;
    if (bs > 0) for (const item of items) blocks = Math.max(0, blocks) + Math.max(0, largestBlocks(item, bs));
    this.emitStats({ e: 'received', count: items.length, blocks });
  }

  /** One `message` stats event for `count` subscribers of `item` over `transport` (content of `bytes`). */
  private statsMessage(item: PublishItem, transport: string, count: number, bytes: number): void {
    if (count === 0) return;
    const per = blocksForData(item.size !== undefined && item.size >= 0 ? item.size : bytes, this.opts.config.handler.messageBlockSize);
    this.emitStats({
      e: 'message', channel: item.channel, transport, count, blocks: per >= 0 ? per * count : -1,
      ...(item.id !== undefined ? { itemId: item.id } : {}),
    });
  }

  private deliver(item: PublishItem): void {
    if (this.statsListeners.length > 0) {
      const f = item.formats;
      if (f.httpResponse !== undefined) this.statsMessage(item, 'http-response', this.responseByChannel.get(item.channel)?.size ?? 0, f.httpResponse.body?.length ?? 0);
      if (f.httpStream !== undefined) this.statsMessage(item, 'http-stream', this.streamByChannel.get(item.channel)?.size ?? 0, f.httpStream.content?.length ?? 0);
      if (f.wsMessage !== undefined) this.statsMessage(item, 'ws-message', this.wsByChannel.get(item.channel)?.size ?? 0, f.wsMessage.content?.length ?? 0);
    }
    if (this.limiter !== undefined) {
      this.deliverLimited(item, this.limiter);
      return;
    }
    const rf = item.formats.httpResponse;
    if (rf !== undefined) {
      const set = this.responseByChannel.get(item.channel);
      if (set !== undefined) {
        // Answering removes the hold from the set, so iterate over a copy.
        const holds = [...set];
        for (const h of holds) h.deliver(item, item.channel, rf);
        this.countDelivered(holds.length);
      }
    }
    const sf = item.formats.httpStream;
    if (sf !== undefined) {
      const set = this.streamByChannel.get(item.channel);
      if (set !== undefined && set.size > 0) this.deliverStream(item, sf, set);
    }
    const wf = item.formats.wsMessage;
    if (wf !== undefined) {
      const set = this.wsByChannel.get(item.channel);
      if (set !== undefined && set.size > 0) this.deliverWs(item, wf, set);
    }
  }

  /**
   * message_rate is set: each (item, subscriber) delivery is queued on the limiter under
   * the subscriber's route id ('' for routes without an explicit id, and for WebSocket
   * connections) and runs later through the per-subscriber path, if the subscriber is
   * still on the channel then. Deliveries past message_hwm are dropped and counted.
   */
  private deliverLimited(item: PublishItem, limiter: DeliveryLimiter): void {
    const channel = item.channel;
    const blockSize = this.opts.config.handler.messageBlockSize;
    let dropped = 0;
    const queue = <H extends Held>(index: Map<string, Set<H>>, bytes: number, run: (h: H) => void): void => {
      const set = index.get(channel);
      if (set === undefined) return;
      const weight = deliveryWeight(bytes, blockSize);
      for (const h of [...set]) {
        const route = (h as { h?: GripHandoff }).h?.route;
        const key = route !== undefined && route.idExplicit ? route.id : '';
        const ok = limiter.add(key, () => {
          if (index.get(channel)?.has(h) !== true) return false;
          run(h);
          this.countDelivered(1);
          return true;
        }, weight);
        if (!ok) dropped++;
      }
    };
    const rf = item.formats.httpResponse;
    if (rf !== undefined) queue(this.responseByChannel, rf.body?.length ?? 0, (h) => h.deliver(item, channel, rf));
    const sf = item.formats.httpStream;
    if (sf !== undefined) queue(this.streamByChannel, sf.content?.length ?? 0, (h) => h.deliver(item, channel, sf));
    const wf = item.formats.wsMessage;
    if (wf !== undefined) queue(this.wsByChannel, wf.content?.length ?? 0, (c) => c.deliver(item, channel, wf));
    if (dropped > 0) {
      this.counters.drops += dropped;
      this.metrics.dropped('rate-limit', dropped);
      this.opts.logger.warn({ channel, dropped, hwm: limiter.hwm }, 'handler: exceeded message_hwm, dropping deliveries');
    }
  }

  private deliverWs(item: PublishItem, wf: WsMessageFormat, set: Set<WsHeld>): void {
    const action = wf.action ?? 'send';
    if (action !== 'send' || (wf.contentFilters !== undefined && wf.contentFilters.length > 0)) {
      for (const c of [...set]) c.deliver(item, item.channel, wf);
      this.countDelivered(set.size);
      return;
    }
    // Build the frame once; every subscriber writes the same Buffer.
    const frame = encodeFrame(wf.type, wf.content ?? Buffer.alloc(0));
    let slow: WsHeld[] | undefined;
    let n = 0;
    for (const c of set) {
      if (c.needsSlowPath(item.channel)) {
        (slow ??= []).push(c);
        continue;
      }
      if (this.corking) this.corkSocket(c.socket);
      if (c.writeShared(frame)) n++;
    }
    if (slow !== undefined) {
      for (const c of slow) c.deliver(item, item.channel, wf);
      n += slow.length;
    }
    this.countDelivered(n);
  }

  private corkSocket(s: Socket | null): void {
    if (s === null || s.destroyed || s.writableCorked > 0) return;
    s.cork();
    this.corked.push(s);
  }

  private deliverStream(item: PublishItem, sf: NonNullable<PublishItem['formats']['httpStream']>, set: Set<StreamHold>): void {
    const action = sf.action ?? 'send';
    const content = sf.content ?? Buffer.alloc(0);
    if (action !== 'send' || content.length === 0) {
      for (const h of [...set]) h.deliver(item, item.channel, sf);
      return;
    }
    // Encode once; every subscriber writes the same Buffer.
    const chunk = encodeChunk(content);
    let slow: StreamHold[] | undefined;
    let n = 0;
    for (const h of set) {
      if (h.needsSlowPath(item.channel)) {
        (slow ??= []).push(h);
        continue;
      }
      if (this.corking) this.cork(h);
      if (h.writeShared(chunk, content)) n++;
    }
    if (slow !== undefined) {
      for (const h of slow) h.deliver(item, item.channel, sf);
      n += slow.length;
    }
    this.countDelivered(n);
  }

  private fetchLink(route: Route, req: BackendRequest, o: { url?: string; maxBodyBytes: number }): Promise<BackendResponse> {
    const key = JSON.stringify([route.source, route.id, o.url ?? '', req.method, req.path, req.headers, o.maxBodyBytes]);
    const pending = this.linkFetches.get(key);
    if (pending !== undefined) return pending;
    const p = this.opts.requester.request(route, req, o.url !== undefined ? { url: o.url, maxBodyBytes: o.maxBodyBytes } : { maxBodyBytes: o.maxBodyBytes });
    this.linkFetches.set(key, p);
    const done = (): void => {
      this.linkFetches.delete(key);
    };
    p.then(done, done);
    return p;
  }

  private countDelivered(n: number): void {
    if (n === 0) return;
    this.counters.deliveries += n;
    this.metrics.delivered(n);
  }

  private cork(h: StreamHold): void {
    const s = h.h.res.socket;
    if (s === null || s.writableCorked > 0) return;
    h.backlogBytes = s.writableLength;
    s.cork();
    this.corked.push(s);
  }

  private indexFor(mode: Held['mode']): Map<string, Set<Held>> {
    const index = mode === 'response' ? this.responseByChannel : mode === 'stream' ? this.streamByChannel : this.wsByChannel;
    return index as Map<string, Set<Held>>;
  }

  private subscribe(hold: Held, channel: string): void {
    const index = this.indexFor(hold.mode);
    let set = index.get(channel) as Set<Held> | undefined;
    if (set === undefined) {
      set = new Set();
      index.set(channel, set as never);
    }
    if (set.has(hold)) return;
    set.add(hold);
    this.subscriptions++;
    const n = this.refs.get(channel) ?? 0;
    this.refs.set(channel, n + 1);
    if (n === 0) {
      const linger = this.lingering.get(channel);
      if (linger !== undefined) {
        // Back within the linger: the channel never stopped being subscribed.
        clearTimeout(linger);
        this.lingering.delete(channel);
        this.metrics.subscriptionsChange(this.refs.size, this.subscriptions);
        return;
      }
      this.counters.channels++;
      this.opts.logger.debug({ channel }, 'handler: channel subscribed');
      this.metrics.subscriptionsChange(this.refs.size, this.subscriptions);
      this.emit('subscribe', channel);
      if (this.opts.config.handler.updateOnFirstSubscription) {
        // As Pushpin: once the subscription has had time to reach publishers, ask the
        // sessions on it to catch up on what they may have missed meanwhile.
        const t = setTimeout(() => {
          if (this.refs.has(channel) && !this.stopping) this.updateChannel(channel);
        }, FIRST_SUBSCRIPTION_UPDATE_DELAY_MS);
        t.unref();
      }
    }
  }

  private unsubscribe(hold: Held, channel: string): void {
    const index = this.indexFor(hold.mode);
    const set = index.get(channel) as Set<Held> | undefined;
    if (set === undefined || !set.delete(hold)) return;
    this.subscriptions--;
    if (set.size === 0) index.delete(channel);
    const n = (this.refs.get(channel) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(channel, n);
      return;
    }
    this.refs.delete(channel);
    const lingerMs = this.opts.config.handler.subscriptionLingerS * 1000;
    if (hold.mode === 'response' && lingerMs > 0 && !this.stopping) {
      // As Pushpin: a long-poll's channel lingers in case the client polls again.
      const t = setTimeout(() => {
        this.lingering.delete(channel);
        if (!this.refs.has(channel)) this.dropChannel(channel);
      }, lingerMs);
      t.unref();
      this.lingering.set(channel, t);
      return;
    }
    this.dropChannel(channel);
  }

  /** The channel has no subscriber left (and no linger): forget it and tell the inputs. */
  private dropChannel(channel: string): void {
    this.counters.channels--;
    this.metrics.subscriptionsChange(this.refs.size, this.subscriptions);
    this.sequencer.clearChannel(channel);
    this.emit('unsubscribe', channel);
  }

  private finished(hold: Held): void {
    if (!this.holds.delete(hold)) return;
    if (hold.mode === 'response') this.counters.heldResponse--;
    else if (hold.mode === 'stream') this.counters.heldStream--;
    else {
      this.counters.heldWs--;
      this.wsById.delete((hold as WsHeld).cid);
    }
    this.metrics.holdChange(hold.mode, -1);
  }
}
