/**
 * An HTTP streaming hold (`Grip-Hold: stream`, SSE included) and the next-link session
 * of a no-hold answer with `Grip-Link: rel=next`. The response head and the backend's
 * body go out at once; published content is then appended. For speed the hold writes to
 * the client socket directly: one `socket.write` of a Buffer shared by every subscriber.
 */
import type { Socket } from 'node:net';
import type { ChannelSubscription, HttpStreamFormat, Instruct, KeepAlive, PublishItem } from '../grip/types.js';
import type { BackendRequest, GripHandoff } from '../proxy/types.js';
import { FilterError, applyContentFilters, hasContentFilter, isDroppedByFilters } from './filters.js';
import type { Held, HoldHost } from './host.js';
import { gripLastHeaders, resolveLink, type LinkTarget } from './links.js';
import { postGoneLink, rawHeaderPairs } from './response-hold.js';
import { applyCorsHeaders } from '../grip/cors.js';
import type { WheelEntry } from './timer-wheel.js';
import { LAST_CHUNK, encodeChunk, formatStreamHead, isUnsafeHeader } from './wire.js';
import { releaseHttpParser } from '../proxy/listeners.js';

/** Items queued while a next link is being fetched; more are dropped (as Pushpin's PUBLISH_QUEUE_MAX). */
export const PUBLISH_QUEUE_MAX = 100;
/** Next-link fetch retries after the first failure (Pushpin's RETRY_MAX). */
export const NEXT_LINK_RETRY_MAX = 5;
/** First retry delay; doubled per retry, plus up to NEXT_LINK_RETRY_JITTER_MS at random. */
export const NEXT_LINK_RETRY_BASE_MS = 1000;
const NEXT_LINK_RETRY_JITTER_MS = 1000;
/** Largest next-link body accepted (same cap as other GRIP bodies). */
const NEXT_LINK_MAX_BODY_BYTES = 100_000;

/** While corked, queued bytes may reach this many times the outbound limit within one turn. */
export const OUTBOUND_BURST_FACTOR = 16;

const EMPTY = Buffer.alloc(0);

type State = 'starting' | 'holding' | 'fetching' | 'closed';

/** A small wheel entry that calls back into its owner. */
class Tick implements WheelEntry {
  wheelDeadlineMs = 0;
  wheelSlot = -1;
  constructor(readonly onTimer: (nowMs: number) => void) {}
}

export class StreamHold implements Held {
  readonly mode = 'stream' as const;
  /** Channel name with route prefix -> subscription. */
  readonly channels = new Map<string, ChannelSubscription>();
  /** True when the body is chunked (HTTP/1.1 client); false: close-delimited (HTTP/1.0). */
  readonly chunked: boolean;
  /** The client socket when writing raw; null when going through ServerResponse. */
  private readonly sock: Socket | null;
  private state: State = 'starting';
  private instruct: Instruct;
  private keepAlive: KeepAlive | undefined;
  // Shared empty Buffer when there is no keep-alive: a Buffer per hold costs ~200 bytes.
  private keepAliveFrame: Buffer = EMPTY;
  /** Last time content went out (ms since epoch), for idle keep-alives. */
  private lastWriteMs = 0;
  // Wheel entries and the queue are created on first use: most streams never need a
  // next-link timer or a queue, and idle memory per held connection matters at 10k+.
  private kaTick: Tick | undefined;
  private lnTick: Tick | undefined;
  private next: LinkTarget | undefined;
  private currentPath: string;
  private retries = 0;
  private queue: Array<[PublishItem, string, HttpStreamFormat]> | undefined;
  /** Channels that saw a publish since the next-link timer was last armed. */
  private active: Set<string> | undefined;
  private readonly onClose = (): void => this.finish();
  /** Bytes queued in the socket when the Handler corked it for the current turn. */
  backlogBytes = 0;

  /** The handoff, trimmed once the first response is out (see start()). */
  h: GripHandoff;

  constructor(private readonly host: HoldHost, h: GripHandoff) {
    this.h = h;
    this.instruct = h.instruct;
    this.currentPath = h.backendRequest.path;
    this.chunked = h.req.httpVersionMajor > 1 || (h.req.httpVersionMajor === 1 && h.req.httpVersionMinor >= 1);
    const s = h.res.socket;
    // Raw writes are only safe while this response owns the socket (not queued behind a pipelined one).
    this.sock = s !== null && (s as Socket & { _httpMessage?: unknown })._httpMessage === h.res ? s : null;
  }

  private keepAliveTick(): Tick {
    return (this.kaTick ??= new Tick((now) => this.onKeepAlive(now)));
  }

  private linkTick(): Tick {
    return (this.lnTick ??= new Tick(() => this.fetchNextLink()));
  }

  /** A method (not a narrowed field read) so checks after writes see state changed by them. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  get meta(): Record<string, string> {
    return this.instruct.meta;
  }

  /** True while published items can be written straight away. */
  get isHolding(): boolean {
    return this.state === 'holding';
  }

  /** Bytes waiting in the client socket's buffer. */
  get pendingBytes(): number {
    return this.sock !== null ? this.sock.writableLength : this.h.res.writableLength;
  }

  start(): void {
    this.h.res.once('close', this.onClose);
    let resp = this.instruct.response;
    // build-id also applies to the backend's own body (a response-content filter).
    const idFilters = (this.instruct.hold?.channels ?? []).some((c) => c.filters.includes('build-id'));
    if (idFilters && resp.body.length > 0) {
      const prevIds = new Map<string, string>();
      for (const c of this.instruct.hold?.channels ?? []) if (c.prevId !== undefined) prevIds.set(c.name, c.prevId);
      try {
        resp = { ...resp, body: applyContentFilters(['build-id'], resp.body, this.instruct.meta, prevIds) };
      } catch (err) {
        this.host.logger.warn({ err: (err as Error).message }, 'handler: build-id filter failed on the stream body');
        resp = { ...resp, body: this.h.route.debug ? Buffer.from(`\n\nfilter error: ${(err as Error).message}\n`) : Buffer.alloc(0) };
      }
    }
    // As Pushpin: the first response of a stream gets CORS headers on aco routes.
    if (this.host.autoCrossOrigin(this.h.route)) resp = { ...resp, headers: applyCorsHeaders(rawHeaderPairs(this.h.req.rawHeaders), resp.headers) };
    try {
      this.next = this.instruct.nextLink !== undefined ? resolveLink(this.instruct.nextLink.url, this.currentPath) : undefined;
    } catch {
      this.next = undefined;
    }
    if (this.sock !== null) {
      const head = formatStreamHead(resp, !this.chunked);
      const body = this.frame(resp.body);
      this.sock.write(body.length > 0 ? Buffer.concat([head, body]) : head);
      // From here on the connection is ours alone: node:http's parser and per-connection
      // state would only cost memory for as long as the stream is held.
      releaseHttpParser(this.h.req, this.h.res);
    } else {
      const flat: string[] = [];
      for (const [n, v] of resp.headers) {
        if (/^(content-length|transfer-encoding|connection|keep-alive)$/i.test(n) || isUnsafeHeader(n, v)) continue;
        flat.push(n, v);
      }
      try {
        this.h.res.sendDate = false;
        this.h.res.writeHead(resp.code, resp.reason, flat);
      } catch {
        this.h.res.destroy();
        this.finish();
        return;
      }
      if (resp.body.length > 0) this.h.res.write(resp.body);
      else this.h.res.flushHeaders();
    }
    this.lastWriteMs = Date.now();
    const rest = this.h.bodyRest;
    // A stream hold lives long: keep only what later steps read (idle memory per
    // connection adds up at 10k+ holds).
    const emptyResponse = { code: resp.code, reason: resp.reason, headers: [], body: EMPTY };
    this.instruct = { ...this.instruct, response: emptyResponse };
    this.h = {
      ...this.h,
      instruct: this.instruct,
      backendRequest: { method: this.h.backendRequest.method, path: this.h.backendRequest.path, headers: [], body: EMPTY },
      bodyRest: undefined,
    };
    if (rest !== undefined) {
      void this.pumpBodyRest(rest);
    } else {
      this.afterFirstResponse();
    }
  }

  private async pumpBodyRest(rest: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of rest) {
        if (this.state === 'closed') return;
        if (!this.writeContent(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) return;
        // The backend body is not a publish: wait for the client instead of dropping it.
        if ((this.sock ?? this.h.res).writableNeedDrain) await this.drained();
      }
    } catch (err) {
      this.host.logger.warn({ err: (err as Error).message }, 'handler: backend body of stream hold failed');
      this.end();
      return;
    }
    if (this.state !== 'closed') this.afterFirstResponse();
  }

  private drained(): Promise<void> {
    const w = this.sock ?? this.h.res;
    return new Promise((resolve) => {
      const done = (): void => {
        w.off('drain', done);
        w.off('close', done);
        resolve();
      };
      w.on('drain', done);
      w.on('close', done);
    });
  }

  private afterFirstResponse(): void {
    if (this.instruct.hold === undefined) {
      // No hold: only here because of a next link.
      if (this.next !== undefined) this.fetchNextLink();
      else this.end();
      return;
    }
    this.hold(true);
  }

  /** Applies the current instruct's channels and keep-alive and starts holding. */
  private hold(first: boolean): void {
    const hold = this.instruct.hold!;
    if (this.next === undefined) {
      const bad = hold.channels.find((c) => c.prevId !== undefined);
      if (bad !== undefined) {
        this.error(`channel '${bad.name}' specifies prev-id, but no next link found`);
        return;
      }
    }
    this.updateChannels(hold.channels);
    if (first) {
      let conflict = false;
      for (const [name, c] of this.channels) {
        const last = this.host.lastIds.get(name);
        if (c.prevId !== undefined && last !== undefined && last !== c.prevId) conflict = true;
      }
      if (conflict) {
        this.fetchNextLink();
        return;
      }
    }
    this.keepAlive = hold.keepAlive;
    this.keepAliveFrame = hold.keepAlive !== undefined ? this.frame(hold.keepAlive.data) : EMPTY;
    this.state = 'holding';
    if (this.keepAlive !== undefined && this.keepAliveTick().wheelSlot < 0) {
      this.host.wheel.schedule(this.keepAliveTick(), this.keepAlive.timeoutS * 1000);
    } else if (this.keepAlive === undefined) {
      if (this.kaTick !== undefined) this.host.wheel.cancel(this.kaTick);
    }
    this.armLinkTimer();
    const queued = this.queue ?? [];
    this.queue = undefined;
    for (const [item, channel, f] of queued) {
      if (this.state !== 'holding') break;
      this.deliver(item, channel, f);
    }
  }

  private armLinkTimer(): void {
    const t = this.instruct.nextLink?.timeoutS;
    if (this.next !== undefined && t !== undefined && t >= 0) this.host.wheel.schedule(this.linkTick(), t * 1000);
    else if (this.lnTick !== undefined) this.host.wheel.cancel(this.lnTick);
    this.active?.clear();
  }

  private updateChannels(list: ChannelSubscription[]): void {
    const prefix = this.h.route.prefix;
    const wanted = new Map<string, ChannelSubscription>();
    for (const c of list.slice(0, this.host.subscriptionMax)) wanted.set(prefix + c.name, c);
    for (const name of [...this.channels.keys()]) {
      if (!wanted.has(name)) {
        this.channels.delete(name);
        this.host.unsubscribe(this, name);
      }
    }
    for (const [name, c] of wanted) {
      const had = this.channels.has(name);
      // The instruct is ours after the handoff, so its subscription objects are used (and
      // their prev-ids advanced) in place rather than copied.
      this.channels.set(name, c);
      if (!had) this.host.subscribe(this, name);
    }
  }

  /**
   * Fast path for a publish: `chunk` is the item's content framed as a chunk, `raw` the
   * bare content, both shared by every subscriber. Returns false when the subscriber
   * was dropped (too slow) or is closed.
   */
  writeShared(chunk: Buffer, raw: Buffer): boolean {
    return this.writeBytes(this.chunked ? chunk : raw, raw);
  }

  /** True when this subscriber needs the per-subscriber path for `channel` (filters, prev-id tracking). */
  needsSlowPath(channel: string): boolean {
    const c = this.channels.get(channel);
    return c === undefined || c.filters.length > 0 || c.prevId !== undefined || this.next !== undefined || this.state !== 'holding';
  }

  /** Channel (as the backend named it) -> prev-id, for build-id. */
  private prevIds(): Map<string, string> {
    const m = new Map<string, string>();
    for (const c of this.channels.values()) if (c.prevId !== undefined) m.set(c.name, c.prevId);
    return m;
  }

  /** Per-subscriber delivery of one http-stream item. */
  deliver(item: PublishItem, channel: string, f: HttpStreamFormat): void {
    if (this.state === 'closed') return;
    if (this.state !== 'holding') {
      this.queue ??= [];
      if (this.queue.length < PUBLISH_QUEUE_MAX) this.queue.push([item, channel, f]);
      return;
    }
    const sub = this.channels.get(channel);
    if (sub === undefined) return;
    if (sub.prevId !== undefined && sub.prevId !== item.prevId) {
      // Missed something: refetch through the next link with Grip-Last.
      this.host.logger.debug({ channel, got: item.prevId, expected: sub.prevId }, 'handler: last ID inconsistency, retrying');
      this.fetchNextLink();
      return;
    }
    const dropped = sub.filters.length > 0 && isDroppedByFilters(sub.filters, { subscriptionMeta: this.meta, publishMeta: item.meta, channels: new Set(Array.from(this.channels.values(), (c) => c.name)) });
    let content = f.content ?? Buffer.alloc(0);
    if (!dropped && hasContentFilter(sub.filters) && (f.action ?? 'send') === 'send') {
      try {
        // Content filters see the prev-ids as they were before this item (as Pushpin).
        content = applyContentFilters(sub.filters, content, this.meta, this.prevIds());
      } catch (err) {
        if (err instanceof FilterError && this.h.route.debug) {
          this.error(`filter error: ${err.message}`);
          return;
        }
        if (sub.prevId !== undefined) sub.prevId = item.id;
        return;
      }
    }
    // The channel has moved on even when this subscriber does not get the item.
    if (sub.prevId !== undefined) sub.prevId = item.id;
    if (dropped) return;
    const action = f.action ?? 'send';
    if (action === 'close') {
      this.end();
      return;
    }
    if (action === 'hint') {
      this.queue = undefined;
      if (this.next !== undefined) this.fetchNextLink();
      return;
    }
    if (!this.writeContent(content)) return;
    if (this.next !== undefined && this.instruct.nextLink?.timeoutS !== undefined) {
      (this.active ??= new Set()).add(channel);
      // Every channel had activity: push the next-link timeout back.
      if (this.active.size >= this.channels.size) this.armLinkTimer();
    }
  }

  /** Frames and writes content; false when the subscriber was dropped (or is closed). */
  private writeContent(content: Buffer): boolean {
    if (content.length === 0) return true;
    return this.writeBytes(this.sock !== null && this.chunked ? encodeChunk(content) : content, content);
  }

  private writeBytes(bytes: Buffer, content: Buffer): boolean {
    if (this.state === 'closed') return false;
    const pending = this.pendingBytes;
    // While corked for this event-loop turn, what counts is the backlog the client had
    // before the turn (data queued in this turn is not the client's fault), with a hard
    // cap on the total so one huge batch cannot pile up without bound.
    const corked = this.sock !== null && this.sock.writableCorked > 0;
    const backlog = corked ? this.backlogBytes : pending;
    if (backlog > this.host.outboundMaxBytes || pending > this.host.outboundMaxBytes * OUTBOUND_BURST_FACTOR) {
      // Issue 6: a drop is logged (at warn, with why) and counted, never silent.
      this.host.logger.warn({
        reason: 'slow-consumer', pendingBytes: pending, backlogBytes: backlog, limit: this.host.outboundMaxBytes,
        channels: [...this.channels.keys()].slice(0, 5),
      }, 'handler: dropping slow stream subscriber (client not reading; outbound buffer over the limit)');
      this.host.countDrop();
      this.destroy();
      return false;
    }
    this.lastWriteMs = this.host.nowMs;
    // Backpressure is handled by the outbound limit above, not by waiting for 'drain'.
    if (this.sock !== null) this.sock.write(bytes);
    else this.h.res.write(content);
    return true;
  }

  /** Frames bytes for this client (chunk on HTTP/1.1 raw sockets). */
  private frame(data: Buffer): Buffer {
    return this.sock !== null && this.chunked ? encodeChunk(data) : data;
  }

  private onKeepAlive(now: number): void {
    const ka = this.keepAlive;
    if (ka === undefined || this.state === 'closed') return;
    const periodMs = ka.timeoutS * 1000;
    if (ka.mode === 'idle' && now - this.lastWriteMs < periodMs) {
      this.host.wheel.schedule(this.keepAliveTick(), this.lastWriteMs + periodMs - now);
      return;
    }
    if (this.state === 'holding' || this.state === 'fetching') {
      if (this.keepAliveFrame.length > 0) this.writeBytes(this.keepAliveFrame, ka.data);
    }
    if (!this.isClosed()) this.host.wheel.schedule(this.keepAliveTick(), periodMs);
  }

  /** Requests the next link (with Grip-Last), appends its body and applies its instructions. */
  private fetchNextLink(): void {
    if (this.state === 'closed' || this.state === 'fetching') return;
    const target = this.next;
    if (target === undefined) {
      this.end();
      return;
    }
    this.state = 'fetching';
    if (this.lnTick !== undefined) this.host.wheel.cancel(this.lnTick);
    const req: BackendRequest = {
      method: 'GET',
      path: target.path,
      headers: gripLastHeaders(this.channels.values()),
      body: Buffer.alloc(0),
    };
    const opts = target.url !== undefined ? { url: target.url, maxBodyBytes: NEXT_LINK_MAX_BODY_BYTES } : { maxBodyBytes: NEXT_LINK_MAX_BODY_BYTES };
    this.host.fetchLink(this.h.route, req, opts).then(
      (resp) => {
        if (this.state === 'closed') return;
        if (resp.status < 200 || resp.status >= 300) {
          this.nextLinkFailed(`next link answered ${resp.status}`);
          return;
        }
        let instruct: Instruct | null;
        try {
          instruct = this.host.decode(resp);
        } catch (err) {
          this.error((err as Error).message);
          return;
        }
        if (instruct === null) {
          instruct = { response: { code: resp.status, reason: resp.reason, headers: resp.headers, body: resp.body }, meta: {}, exposeHeaders: [] };
        }
        if (instruct.hold !== undefined && instruct.hold.mode !== 'stream') {
          this.error('Next link returned non-stream hold.');
          return;
        }
        this.retries = 0;
        this.instruct = { ...instruct, meta: { ...this.instruct.meta, ...instruct.meta } };
        this.currentPath = target.path;
        try {
          this.next = instruct.nextLink !== undefined ? resolveLink(instruct.nextLink.url, target.url ?? target.path) : undefined;
        } catch {
          this.next = undefined;
        }
        this.writeContent(instruct.response.body);
        if (this.isClosed()) return;
        this.state = 'starting';
        if (instruct.hold === undefined) {
          for (const name of [...this.channels.keys()]) {
            this.channels.delete(name);
            this.host.unsubscribe(this, name);
          }
          if (this.next !== undefined) this.fetchNextLink();
          else this.end();
          return;
        }
        this.hold(false);
      },
      (err: unknown) => this.nextLinkFailed((err as Error).message),
    );
  }

  private nextLinkFailed(why: string): void {
    if (this.state === 'closed') return;
    this.host.logger.debug({ why }, 'handler: failed to retrieve next link');
    if (this.retries < NEXT_LINK_RETRY_MAX) {
      const delay = NEXT_LINK_RETRY_BASE_MS * 2 ** this.retries + Math.floor(Math.random() * NEXT_LINK_RETRY_JITTER_MS);
      this.retries++;
      this.state = 'holding';
      if (this.lnTick !== undefined) this.host.wheel.cancel(this.lnTick);
      // Reuse the link timer for the retry; state goes back to fetching when it fires.
      this.host.wheel.schedule(this.linkTick(), delay);
      return;
    }
    this.error('Failed to retrieve next link.');
  }

  private error(message: string): void {
    this.host.logger.warn({ message }, 'handler: stream hold error');
    if (this.h.route.debug) this.writeContent(Buffer.from(`\n\n${message}\n`));
    this.end();
  }

  /** Ends the body cleanly (last chunk on HTTP/1.1, close on HTTP/1.0) and the hold. */
  end(): void {
    if (this.state === 'closed') return;
    if (this.sock !== null) {
      if (this.chunked) this.sock.write(LAST_CHUNK);
      // The raw-written response bypassed node's ServerResponse, so the connection cannot
      // go back to node's keep-alive handling; it closes after the stream.
      this.sock.end();
    } else {
      this.h.res.end();
    }
    this.finish();
  }

  shutdown(): void {
    this.end();
  }

  update(): void {
    if (this.state === 'holding' && this.next !== undefined) this.fetchNextLink();
  }

  private destroy(): void {
    if (this.sock !== null) this.sock.destroy();
    else this.h.res.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.h.res.off('close', this.onClose);
    if (this.kaTick !== undefined) this.host.wheel.cancel(this.kaTick);
    if (this.lnTick !== undefined) this.host.wheel.cancel(this.lnTick);
    this.queue = undefined;
    for (const name of this.channels.keys()) this.host.unsubscribe(this, name);
    this.host.finished(this);
    postGoneLink(this.host, this.h);
  }
}
