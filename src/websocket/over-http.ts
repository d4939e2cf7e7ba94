/**
 * The backend side of a WebSocket-over-HTTP connection (route target `over_http`): turns
 * what the client does into `POST application/websocket-events` requests, one in flight
 * at a time with queued events batched, and acts on the events and headers the backend
 * answers with. Behaviour follows Pushpin 1.36 (see docs/websockets.md).
 */
import type { Dispatcher } from 'undici';
import type { RawData, WebSocket } from 'ws';
import { formatGripLast, GRIP_LAST_HEADER } from '../grip/headers.js';
import type { Logger } from '../log/index.js';
import { classifyBackendMessage, ControlMessageError, parseControlMessage, type GripExtension } from './control.js';
import {
  buildWsRequestHeaders, decodeEvents, encodeEvents, eventContent, isWebSocketEventsResponse, MAX_REQUEST_CONTENT_BYTES,
  MAX_RESPONSE_BODY_BYTES, parseContentBytesAccepted, parseKeepAliveInterval, parseSetMeta, applySetMeta, WsEventsError,
  getHeader, type WsEvent,
} from './events.js';
import type { WsSession } from './ws-session.js';

/** First retry delay when the backend cannot be reached (doubles per retry), as Pushpin. */
export const RETRY_BASE_MS = 1_000;
/** Random extra delay added to each retry, so reconnecting clients spread out. */
export const RETRY_JITTER_MS = 1_000;
/** Retries of one request before the connection is closed, as Pushpin. */
export const RETRY_MAX = 5;
/** Close code sent to the client when its backend fails mid-connection. */
export const CLOSE_BACKEND_ERROR = 1011;

/** undici error codes meaning the backend was never reached, so a retry cannot duplicate. */
const UNREACHED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Where and how requests for one connection go. */
export interface OverHttpTarget {
  pool: Dispatcher;
  /** Path and query for the backend. */
  path: string;
  /**
   * Headers repeated on every request (client handshake headers after the proxy's rules,
   * Sec-WebSocket-Extensions: grip). An entry named Grip-Sig is replaced per request by
   * `sign()`, or removed when it returns undefined.
   */
  baseHeaders: Array<[string, string]>;
  sign: () => string | undefined;
  cid: string;
  /** Route option one_event: one event per request. */
  oneEvent: boolean;
  /** Whole-request deadline in ms (a backend that hangs). */
  requestTimeoutMs: number;
  logger: Logger;
}

/** A whole backend answer. */
export interface WohResponse {
  status: number;
  reason: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

/**
 * Sends one WebSocket-over-HTTP request and reads the whole answer (bounded). `extra`
 * headers (e.g. Grip-Last) go after the base headers.
 */
export async function postEvents(
  t: OverHttpTarget, events: readonly WsEvent[], meta: ReadonlyArray<readonly [string, string]>, replayed: number,
  maxBodyBytes = MAX_RESPONSE_BODY_BYTES, extra: ReadonlyArray<readonly [string, string]> = [],
): Promise<WohResponse> {
  const body = encodeEvents(events);
  const sig = t.sign();
  const base: Array<[string, string]> = [];
  for (const [n, v] of t.baseHeaders) {
    if (n === 'Grip-Sig') {
      if (sig !== undefined) base.push(['Grip-Sig', sig]);
    } else {
      base.push([n, v]);
    }
  }
  for (const [n, v] of extra) base.push([n, v]);
  const headers = buildWsRequestHeaders({ base, connectionId: t.cid, meta, contentLength: body.length, contentBytesReplayed: replayed });
  const flat: string[] = [];
  for (const [n, v] of headers) {
    if (n.toLowerCase() === 'content-length') continue; // undici sets it from the body
    flat.push(n, v);
  }
  const r = await t.pool.request({
    method: 'POST',
    path: t.path,
    headers: flat,
    body,
    responseHeaders: 'raw',
    signal: AbortSignal.timeout(t.requestTimeoutMs),
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of r.body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBodyBytes) {
      r.body.destroy();
      throw Object.assign(new Error(`backend response body exceeds ${maxBodyBytes} bytes`), { code: 'WOH_BODY_TOO_LARGE' });
    }
    chunks.push(c);
  }
  const raw = r.headers as unknown as Array<Buffer | string>;
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([String(raw[i]), String(raw[i + 1])]);
  return { status: r.statusCode, reason: (r as { statusText?: string }).statusText ?? '', headers: pairs, body: Buffer.concat(chunks) };
}

/** Content bytes an event contributes to Content-Bytes-Accepted accounting. */
function contentSize(e: WsEvent): number {
  if (e.type === 'CLOSE') return e.code === undefined ? 0 : 2 + Buffer.byteLength(e.reason ?? '');
  if (e.type === 'OPEN' || e.type === 'DISCONNECT') return 0;
  return e.content.length;
}

function toBuffer(d: RawData): Buffer {
  if (Buffer.isBuffer(d)) return d;
  if (Array.isArray(d)) return Buffer.concat(d);
  return Buffer.from(d);
}

/**
 * One WebSocket-over-HTTP connection after the backend accepted OPEN. Owns the request
 * queue, retries and the Keep-Alive-Interval timer; the session owns GRIP state.
 */
export class OverHttpConnection {
  private queue: WsEvent[] = [];
  private queueBytes = 0;
  private inFlight = false;
  private refreshQueued = false;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private keepAliveS: number | null = null;
  private kaTimer: NodeJS.Timeout | undefined;
  /** Content bytes of the queue head that the backend did not accept last time. */
  private replayed = 0;
  /** CLOSE or DISCONNECT is queued or sent: nothing more goes to the backend after it. */
  private finalQueued = false;
  /** The backend answered our CLOSE/DISCONNECT, or failed: no more requests. */
  private backendDone = false;
  /** The backend sent CLOSE. */
  private backendClosing = false;
  private clientGone = false;
  private paused = false;
  /**
   * Reliable delivery (gripd extension): channel -> id of the last item the client has,
   * for channels with a gap; sent as Grip-Last on the next request. At most one entry per
   * subscribed channel.
   */
  private pendingLast = new Map<string, string>();
  /** The Grip-Last entries of the request in flight (put back if it has to be retried). */
  private sentLast = new Map<string, string>();

  constructor(
    private readonly t: OverHttpTarget,
    private readonly client: WebSocket,
    private readonly session: WsSession,
    private readonly grip: GripExtension | undefined,
  ) {}

  /** Hooks the client's events and acts on the OPEN answer (`events` after the OPEN). */
  start(openHeaders: Array<[string, string]>, events: WsEvent[]): void {
    const c = this.client;
    c.on('message', (data, isBinary) => {
      const content = toBuffer(data);
      this.enqueue(isBinary ? { type: 'BINARY', content } : { type: 'TEXT', content });
    });
    c.on('ping', (data) => this.enqueue({ type: 'PING', content: data }));
    c.on('pong', (data) => this.enqueue({ type: 'PONG', content: data }));
    c.on('error', (err) => {
      this.t.logger.debug({ cid: this.t.cid, err: err.message }, 'ws: client protocol error');
    });
    c.on('close', (code, reason) => this.onClientClose(code, reason));
    const ka = parseKeepAliveInterval(openHeaders);
    if (ka !== undefined) this.keepAliveS = ka;
    const updates = parseSetMeta(openHeaders);
    if (updates.length > 0) this.session.meta = applySetMeta(this.session.meta, updates);
    this.handleEvents(events);
    this.next();
  }

  /** over_http refresh: an (empty) request now, or right after the one in flight. */
  refresh(): void {
    if (this.backendDone || this.finalQueued) return;
    if (this.inFlight || this.retryTimer !== undefined) {
      this.refreshQueued = true;
      return;
    }
    this.send([]);
  }

  /**
   * Reliable delivery (gripd extension): the client missed items on `channel` after
   * `lastId`. The next request (now, or right after the one in flight) carries
   * `Grip-Last: <channel>; last-id=<lastId>` so the backend can resend them. A second
   * gap on the same channel before that request keeps the first (older) id.
   */
  recover(channel: string, lastId: string): void {
    if (this.backendDone || this.finalQueued) return;
    if (!this.pendingLast.has(channel)) this.pendingLast.set(channel, lastId);
    this.refresh();
  }

  /** Detach or a publish closing the client: tell the backend with CLOSE (no code), as Pushpin. */
  closeBackend(): void {
    if (this.finalQueued || this.backendDone) return;
    this.finalQueued = true;
    this.push({ type: 'CLOSE' });
    this.next();
  }

  private onClientClose(code: number, reason: Buffer): void {
    this.clientGone = true;
    this.session.finish();
    if (this.finalQueued || this.backendDone || this.session.detached) {
      this.maybeEnd();
      return;
    }
    this.finalQueued = true;
    const closeFrameReceived = (this.client as unknown as { _closeFrameReceived: boolean })._closeFrameReceived;
    if (closeFrameReceived) {
      this.push(code === 1005 ? { type: 'CLOSE' } : { type: 'CLOSE', code, reason: reason.toString() });
    } else {
      // The peer vanished: unsent messages are dropped, the backend hears DISCONNECT at once.
      this.queue = [];
      this.queueBytes = 0;
      this.replayed = 0;
      this.push({ type: 'DISCONNECT' });
    }
    this.next();
  }

  private enqueue(e: WsEvent): void {
    if (this.session.detached || this.finalQueued || this.backendDone) return;
    this.push(e);
    if (this.queueBytes >= MAX_REQUEST_CONTENT_BYTES && !this.paused) {
      // Flow control: stop reading the client until the backend has taken some.
      this.paused = true;
      this.client.pause();
    }
    this.next();
  }

  private push(e: WsEvent): void {
    this.queue.push(e);
    this.queueBytes += contentSize(e);
  }

  /** Sends the next batch if nothing is in flight. */
  private next(): void {
    if (this.inFlight || this.retryTimer !== undefined || this.backendDone) return;
    if (this.queue.length === 0) {
      if (this.refreshQueued) {
        this.refreshQueued = false;
        this.send([]);
        return;
      }
      this.armKeepAlive();
      return;
    }
    const batch: WsEvent[] = [];
    let bytes = 0;
    while (this.queue.length > 0) {
      const e = this.queue[0]!;
      const n = contentSize(e);
      if (batch.length > 0 && (this.t.oneEvent || bytes + n > MAX_REQUEST_CONTENT_BYTES)) break;
      batch.push(e);
      this.queue.shift();
      bytes += n;
      if (this.t.oneEvent) break;
    }
    this.queueBytes -= bytes;
    this.send(batch);
  }

  private send(batch: WsEvent[]): void {
    this.inFlight = true;
    this.refreshQueued = false;
    if (this.kaTimer !== undefined) {
      clearTimeout(this.kaTimer);
      this.kaTimer = undefined;
    }
    const replayed = this.replayed;
    const extra: Array<[string, string]> = [];
    this.sentLast = this.pendingLast;
    if (this.sentLast.size > 0) {
      this.pendingLast = new Map();
      const entries = [...this.sentLast].map(([name, id]) => ({ name, id }));
      for (const v of formatGripLast(entries)) extra.push([GRIP_LAST_HEADER, v]);
    }
    postEvents(this.t, batch, this.session.meta, replayed, MAX_RESPONSE_BODY_BYTES, extra).then(
      (resp) => this.onResponse(batch, resp),
      (err: unknown) => this.onError(batch, err as Error),
    ).catch((err: unknown) => {
      this.t.logger.error({ cid: this.t.cid, err: (err as Error).message }, 'ws: over_http response handling failed');
      this.fail('internal error');
    });
  }

  private onError(batch: WsEvent[], err: Error): void {
    const e = err as Error & { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code ?? '';
    if (UNREACHED.has(code) && this.retries < RETRY_MAX) {
      const delay = RETRY_BASE_MS * 2 ** this.retries + Math.floor(Math.random() * RETRY_JITTER_MS);
      this.retries++;
      this.t.logger.debug({ cid: this.t.cid, delayMs: delay, err: err.message }, 'ws: backend unreachable; retrying');
      this.inFlight = false;
      // The retried request asks again for what the failed one asked for (older ids win).
      for (const [ch, id] of this.sentLast) this.pendingLast.set(ch, id);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.backendDone) return;
        this.send(batch);
      }, delay);
      this.retryTimer.unref();
      return;
    }
    this.fail(`request failed: ${err.message}`);
  }

  private onResponse(batch: WsEvent[], resp: WohResponse): void {
    this.inFlight = false;
    this.retries = 0;
    if (this.backendDone) return;
    if (!isWebSocketEventsResponse(resp.status, resp.headers)) {
      this.fail(`backend answered ${resp.status} with Content-Type ${getHeader(resp.headers, 'Content-Type') ?? '(none)'}`);
      return;
    }
    const ka = parseKeepAliveInterval(resp.headers);
    if (ka !== undefined) this.keepAliveS = ka;

    // Content-Bytes-Accepted: what the backend did not take is sent again first.
    const sent = batch.reduce((n, e) => n + contentSize(e), 0);
    const accepted = parseContentBytesAccepted(resp.headers) ?? sent;
    if (accepted > sent) {
      this.fail(`Content-Bytes-Accepted ${accepted} exceeds the ${sent} bytes sent`);
      return;
    }
    if (accepted < sent) this.requeue(batch, accepted);
    else this.replayed = 0;

    const updates = parseSetMeta(resp.headers);
    if (updates.length > 0) this.session.meta = applySetMeta(this.session.meta, updates);

    let events: WsEvent[];
    try {
      events = decodeEvents(resp.body);
    } catch (err) {
      this.fail(err instanceof WsEventsError ? `malformed events: ${err.message}` : (err as Error).message);
      return;
    }
    const finalSent = accepted === sent && batch.some((e) => e.type === 'CLOSE' || e.type === 'DISCONNECT');
    if (!this.handleEvents(events)) return;
    if (finalSent) {
      this.backendDone = true;
      this.endKeepAlive();
      // The backend had its one chance to close after our CLOSE; a client still open
      // (detach excepted) is closed now.
      if (!this.clientGone && !this.session.detached && !this.backendClosing) this.session.closeClient(undefined, '');
      this.maybeEnd();
      return;
    }
    if (this.paused && this.queueBytes < MAX_REQUEST_CONTENT_BYTES) {
      this.paused = false;
      this.client.resume();
    }
    this.next();
  }

  /**
   * Puts back, at the queue head, the content the backend did not accept: events wholly
   * past `accepted` bytes, and the unaccepted tail of an event cut in two. An empty event
   * counts as accepted when it starts before the boundary.
   */
  private requeue(batch: WsEvent[], accepted: number): void {
    const back: WsEvent[] = [];
    let offset = 0;
    for (const e of batch) {
      const n = contentSize(e);
      const start = offset;
      offset += n;
      if (n === 0 ? start < accepted : offset <= accepted) continue;
      if (start < accepted && e.type !== 'CLOSE' && e.type !== 'OPEN' && e.type !== 'DISCONNECT') {
        back.push({ type: e.type, content: eventContent(e).subarray(accepted - start) });
      } else {
        back.push(e);
      }
    }
    let bytes = 0;
    for (const e of back) bytes += contentSize(e);
    this.replayed = bytes;
    this.queue = [...back, ...this.queue];
    this.queueBytes += bytes;
    if (back.some((e) => e.type === 'CLOSE' || e.type === 'DISCONNECT')) this.finalQueued = true;
  }

  /** Acts on the backend's events; false when the connection ended. */
  private handleEvents(events: WsEvent[]): boolean {
    for (const e of events) {
      switch (e.type) {
        case 'OPEN':
          // OPEN after the handshake is a protocol error (Pushpin drops the connection).
          this.fail('OPEN after the connection was open');
          return false;
        case 'TEXT':
        case 'BINARY':
          this.fromBackend(e.type === 'TEXT' ? 'text' : 'binary', e.content);
          break;
        case 'PING':
          this.session.send('ping', e.content);
          break;
        case 'PONG':
          this.session.send('pong', e.content);
          break;
        case 'CLOSE':
          this.backendClosing = true;
          if (!this.clientGone) this.session.closeClient(e.code, e.reason ?? '');
          return true;
        case 'DISCONNECT':
          this.backendDone = true;
          this.endKeepAlive();
          this.client.terminate();
          this.session.finish();
          return false;
      }
    }
    return true;
  }

  private fromBackend(type: 'text' | 'binary', content: Buffer): void {
    const a = classifyBackendMessage(type, content, this.grip);
    if (a.action === 'forward') {
      this.session.send(type, a.content);
      return;
    }
    if (a.action === 'drop') return;
    try {
      this.session.applyControl(parseControlMessage(a.json));
    } catch (err) {
      if (err instanceof ControlMessageError && err.code === 'CONTROL_TOO_MANY_FILTERS') {
        this.fail(err.message);
        return;
      }
      this.t.logger.warn({ cid: this.t.cid, err: (err as Error).message }, 'ws: control message ignored');
    }
  }

  /** The backend failed: the client is closed with 1011 and the connection ends. */
  private fail(why: string): void {
    if (this.backendDone) return;
    this.backendDone = true;
    this.endKeepAlive();
    this.t.logger.warn({ cid: this.t.cid, err: why }, 'ws: over_http backend error; closing the connection');
    if (!this.clientGone) this.session.closeClient(CLOSE_BACKEND_ERROR, 'backend error');
    this.session.finish();
  }

  private maybeEnd(): void {
    if (this.clientGone && (this.backendDone || (!this.inFlight && this.queue.length === 0))) {
      this.endKeepAlive();
      this.session.finish();
    }
  }

  private armKeepAlive(): void {
    if (this.keepAliveS === null || this.backendDone || this.finalQueued || this.kaTimer !== undefined) return;
    this.kaTimer = setTimeout(() => {
      this.kaTimer = undefined;
      if (!this.inFlight && !this.backendDone) this.send([]);
    }, this.keepAliveS * 1000);
    this.kaTimer.unref();
  }

  private endKeepAlive(): void {
    if (this.kaTimer !== undefined) clearTimeout(this.kaTimer);
    this.kaTimer = undefined;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
