/**
 * The client side of zhttp: gripd sending HTTP requests to backends that speak zhttp over
 * ZeroMQ instead of HTTP (route targets `zhttpreq/<spec>` and `zhttp/<spec>`).
 *
 * - `zhttpreq/<spec>`: one DEALER bound on the spec; REP handlers connect to it. Each
 *   request is one `T<tnetstring>` packet (after the empty delimiter frame), each answer
 *   one complete response packet. ZeroMQ spreads requests over connected handlers.
 * - `zhttp/<spec>`: the streaming protocol. Three sockets are bound, named as Pushpin
 *   names them: PUSH `-out` (new requests), ROUTER `-out-stream` (later packets of a
 *   session, addressed to the handler that answered; identity = gripd's instance id) and
 *   SUB `-in` (answers, published as `<instance id> T<tnetstring>`). A `tcp://host:port`
 *   spec uses port, port+1 and port+2 instead of the suffixes. Answers coming back over
 *   the ROUTER (`router-resp`) are accepted too.
 *
 * Sockets are bound on first use of a spec and shared by every route naming it. Failures
 * (timeouts, error/cancel packets, malformed answers) reach the caller's `onError`; bad
 * frames are logged (rate-limited) and dropped, the sockets keep serving.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as zmq from 'zeromq';
import type { Logger } from '../log/index.js';
import { isClosedError, setupSocket } from './socket-util.js';
import { WarnLimiter } from './warn-limit.js';
import {
  decodeZhttpResponse, encodeZhttpRequest, splitAddressed, ZhttpPacketError,
  type ZhttpRequest, type ZhttpResponse,
} from './zhttp.js';

/** Largest request body sent in one zhttpreq packet (Pushpin's REQ_BUF_MAX), in bytes. */
export const MAX_ZHTTP_REQUEST_BODY = 1_000_000;
/** Credits (bytes of response body) granted up front to a streaming handler (Pushpin's IDEAL_CREDITS). */
export const ZHTTP_IDEAL_CREDITS = 200_000;
/** A session with no packet from the handler for this long fails (Pushpin's SESSION_EXPIRE), in ms. */
export const ZHTTP_SESSION_TIMEOUT_MS = 60_000;
/** Interval of keep-alive packets to a streaming handler (Pushpin's KEEPALIVE_INTERVAL), in ms. */
export const ZHTTP_KEEPALIVE_INTERVAL_MS = 45_000;
/**
 * Largest message accepted from a zhttp handler, in bytes; ZeroMQ disconnects a peer that
 * sends more. Protects memory from one oversized answer.
 */
export const MAX_ZHTTP_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Requests waiting for a zhttpreq socket before new ones fail at once; bounds memory when no handler is connected. */
export const MAX_ZHTTP_QUEUED_SENDS = 10_000;
/** Sessions open at once per endpoint before new requests fail; bounds the session table. */
export const MAX_ZHTTP_SESSIONS = 100_000;

/** A request as gripd sends it to a zhttp handler. */
export interface ZhttpOutgoingRequest {
  method: string;
  /** Absolute URI (`http://host/path?query`), as Pushpin sends it. */
  uri: string;
  headers: Array<[string, string]>;
  body: Buffer;
  peerAddress?: string;
  /** Pushpin's ignore-policies flag (set for trusted targets). */
  ignorePolicies?: boolean;
  trustConnectHost?: boolean;
  ignoreTlsErrors?: boolean;
}

/** Callbacks of one zhttp session; at most one of onEnd/onError fires, after onHead for onEnd. */
export interface ZhttpResponseHandler {
  /** The status line and headers (first response packet). */
  onHead(code: number, reason: string, headers: Array<[string, string]>): void;
  /** A piece of response body (may be empty only for the first packet; then not called). */
  onBody(chunk: Buffer): void;
  onEnd(): void;
  onError(err: ZhttpCallError): void;
}

/** Why a zhttp session failed: `condition` is Pushpin's vocabulary ('timeout', 'cancel', a handler's error condition, 'bad-response'). */
export class ZhttpCallError extends Error {
  override name = 'ZhttpCallError';
  constructor(
    readonly condition: string,
    message: string,
  ) {
    super(message);
  }
}

/** A running session. */
export interface ZhttpCall {
  /** Tells the handler the client went away (streaming: a cancel packet) and forgets the session. */
  cancel(): void;
  /** Streaming: `bytes` of body were passed on to the client; grant that many credits back. */
  consumed(bytes: number): void;
}

export interface ZhttpClientOptions {
  logger: Logger;
  /** Sender address in every packet and the ROUTER identity; default `gripd-proxy_<pid>`. */
  instanceId?: string;
  /** Session inactivity timeout in ms (default ZHTTP_SESSION_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Keep-alive interval for streaming sessions in ms (default ZHTTP_KEEPALIVE_INTERVAL_MS). */
  keepAliveMs?: number;
}

/** The three specs of a streaming zhttp base spec: [-out, -out-stream, -in]. */
export function zhttpStreamSpecs(baseSpec: string): [string, string, string] {
  const m = /^(tcp:\/\/.*):([0-9]{1,5})$/.exec(baseSpec);
  if (m) {
    const port = Number(m[2]);
    return [`${m[1]}:${port}`, `${m[1]}:${port + 1}`, `${m[1]}:${port + 2}`];
  }
  return [`${baseSpec}-out`, `${baseSpec}-out-stream`, `${baseSpec}-in`];
}

interface Session {
  id: Buffer;
  key: string;
  handler: ZhttpResponseHandler;
  timer: NodeJS.Timeout | undefined;
  headSeen: boolean;
  done: boolean;
  /** Streaming only. */
  inSeq: number;
  outSeq: number;
  toAddress: Buffer | undefined;
  keepAlive: NodeJS.Timeout | undefined;
}

/**
 * zhttp client sockets, one set per spec. `request` never throws: every failure reaches
 * the handler's onError (asynchronously).
 */
export class ZhttpClient {
  readonly instanceId: string;
  private readonly endpoints = new Map<string, Promise<Endpoint>>();
  private closed = false;

  constructor(private readonly opts: ZhttpClientOptions) {
    this.instanceId = opts.instanceId ?? `gripd-proxy_${process.pid}`;
  }

  /** Starts a session with the handler(s) behind `spec` (`req`: zhttpreq mode). */
  request(mode: 'req' | 'stream', spec: string, req: ZhttpOutgoingRequest, handler: ZhttpResponseHandler): ZhttpCall {
    const session: Session = {
      id: randomBytes(12),
      key: '',
      handler,
      timer: undefined,
      headSeen: false,
      done: false,
      inSeq: 0,
      outSeq: 0,
      toAddress: undefined,
      keepAlive: undefined,
    };
    session.key = session.id.toString('hex');
    let endpoint: Endpoint | undefined;
    let cancelled = false;
    const fail = (e: unknown): void => {
      if (session.done) return;
      session.done = true;
      handler.onError(e instanceof ZhttpCallError ? e : new ZhttpCallError('setup', (e as Error).message ?? String(e)));
    };
    if (this.closed) {
      queueMicrotask(() => fail(new ZhttpCallError('setup', 'zhttp client is closed')));
    } else {
      this.endpoint(mode, spec).then((ep) => {
        endpoint = ep;
        if (cancelled) return;
        ep.start(session, req);
      }, fail);
    }
    return {
      cancel: () => {
        cancelled = true;
        endpoint?.cancel(session);
        session.done = true;
      },
      consumed: (bytes: number) => endpoint?.consumed(session, bytes),
    };
  }

  private endpoint(mode: 'req' | 'stream', spec: string): Promise<Endpoint> {
    const key = `${mode} ${spec}`;
    let ep = this.endpoints.get(key);
    if (ep === undefined) {
      const o = { logger: this.opts.logger, instanceId: this.instanceId, timeoutMs: this.opts.timeoutMs ?? ZHTTP_SESSION_TIMEOUT_MS, keepAliveMs: this.opts.keepAliveMs ?? ZHTTP_KEEPALIVE_INTERVAL_MS };
      ep = mode === 'req' ? ReqEndpoint.start(spec, o) : StreamEndpoint.start(spec, o);
      // A spec that could not be bound is retried on the next request.
      ep.catch(() => this.endpoints.delete(key));
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  /** Fails every open session and closes every socket; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const eps = [...this.endpoints.values()];
    this.endpoints.clear();
    for (const p of eps) {
      try {
        (await p).close();
      } catch {
        // never bound: nothing to close
      }
    }
  }
}

interface EndpointOptions {
  logger: Logger;
  instanceId: string;
  timeoutMs: number;
  keepAliveMs: number;
}

/** Creates the directory of an ipc:// spec (Pushpin's rundir may not exist yet). */
async function ensureIpcDir(spec: string): Promise<void> {
  if (!spec.startsWith('ipc://')) return;
  const file = spec.slice('ipc://'.length);
  if (file === '' || file.startsWith('@')) return;
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
}

abstract class Endpoint {
  protected readonly sessions = new Map<string, Session>();
  protected readonly warn: WarnLimiter;

  constructor(
    protected readonly o: EndpointOptions,
    name: string,
  ) {
    this.warn = new WarnLimiter(o.logger, name);
  }

  start(s: Session, req: ZhttpOutgoingRequest): void {
    if (this.sessions.size >= MAX_ZHTTP_SESSIONS) {
      this.finish(s, new ZhttpCallError('unavailable', `too many open zhttp sessions (limit ${MAX_ZHTTP_SESSIONS})`));
      return;
    }
    this.sessions.set(s.key, s);
    this.touch(s);
    this.send(s, req);
  }

  protected abstract send(s: Session, req: ZhttpOutgoingRequest): void;
  abstract cancel(s: Session): void;
  abstract consumed(s: Session, bytes: number): void;
  abstract close(): void;

  /** Restarts the inactivity timer. */
  protected touch(s: Session): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.finish(s, new ZhttpCallError('timeout', `no answer from the zhttp handler within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    s.timer.unref();
  }

  /** Ends a session: with an error, or normally when `err` is undefined. */
  protected finish(s: Session, err?: ZhttpCallError): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    if (s.keepAlive !== undefined) clearInterval(s.keepAlive);
    s.timer = undefined;
    s.keepAlive = undefined;
    this.sessions.delete(s.key);
    if (s.done) return;
    s.done = true;
    try {
      if (err) s.handler.onError(err);
      else s.handler.onEnd();
    } catch (e) {
      this.o.logger.error({ err: (e as Error).message }, 'zhttp: response handler failed');
    }
  }

  protected failAll(why: string): void {
    for (const s of [...this.sessions.values()]) this.finish(s, new ZhttpCallError('setup', why));
  }

  /** Applies one decoded response packet to its session (already matched by id). */
  protected apply(s: Session, p: ZhttpResponse, streaming: boolean): void {
    if (p.type === 'error') {
      this.finish(s, new ZhttpCallError(p.condition ?? 'error', `zhttp handler answered with an error${p.condition ? ` (${p.condition})` : ''}`));
      return;
    }
    if (p.type === 'cancel') {
      this.finish(s, new ZhttpCallError('cancel', 'zhttp handler cancelled the request'));
      return;
    }
    this.touch(s);
    if (p.type !== 'data') return; // credit / keep-alive: nothing to do for the client side
    const h = s.handler;
    try {
      if (!s.headSeen) {
        s.headSeen = true;
        if (p.code === undefined) {
          this.finish(s, new ZhttpCallError('bad-response', 'first response packet has no code'));
          return;
        }
        h.onHead(p.code, p.reason ?? '', p.headers ?? []);
      }
      if (s.done) return;
      if (p.body !== undefined && p.body.length > 0) h.onBody(p.body);
    } catch (e) {
      this.o.logger.error({ err: (e as Error).message }, 'zhttp: response handler failed');
      this.cancel(s);
      return;
    }
    if (!p.more && !s.done) this.finish(s);
    else if (!streaming && !s.done) this.finish(s, new ZhttpCallError('bad-response', 'zhttpreq handler sent a partial response (more=true)'));
  }
}

/** Serialises sends: zeromq allows one send in flight per socket. */
class SendQueue {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly sock: zmq.Socket & { send(m: zmq.MessageLike[] | zmq.MessageLike): Promise<void> },
    private readonly logger: Logger,
    private readonly name: string,
  ) {}

  /** Queues `frames`; `onFail` runs when the message could not be sent. Returns false when the queue is full. */
  push(frames: Buffer[], onFail?: (e: unknown) => void): boolean {
    if (this.queued >= MAX_ZHTTP_QUEUED_SENDS) return false;
    this.queued++;
    this.chain = this.chain
      .then(() => (this.sock.closed ? Promise.reject(new Error('socket closed')) : this.sock.send(frames)))
      .catch((e: unknown) => {
        if (onFail) onFail(e);
        else if (!this.sock.closed && !isClosedError(e)) this.logger.debug({ err: (e as Error).message, socket: this.name }, 'zhttp: packet not sent');
      })
      .finally(() => {
        this.queued--;
      });
    return true;
  }
}

function outgoing(o: EndpointOptions, s: Session, req: ZhttpOutgoingRequest): ZhttpRequest {
  const p: ZhttpRequest = {
    from: Buffer.from(o.instanceId, 'latin1'),
    ids: [{ id: s.id }],
    type: 'data',
    method: req.method,
    uri: req.uri,
    headers: req.headers,
  };
  // As Pushpin: a request without a body has no body field.
  if (req.body.length > 0) p.body = req.body;
  if (req.peerAddress) p.peerAddress = req.peerAddress;
  if (req.ignorePolicies) p.ignorePolicies = true;
  if (req.trustConnectHost) p.trustConnectHost = true;
  if (req.ignoreTlsErrors) p.ignoreTlsErrors = true;
  return p;
}

/** `zhttpreq/<spec>`: a bound DEALER; REP handlers connect to it. */
class ReqEndpoint extends Endpoint {
  private readonly queue: SendQueue;
  private readonly done: Promise<void>;

  private constructor(
    o: EndpointOptions,
    private readonly sock: zmq.Dealer,
  ) {
    super(o, 'zhttpreq');
    this.queue = new SendQueue(sock, o.logger, 'zhttpreq');
    this.done = this.loop();
  }

  static async start(spec: string, o: EndpointOptions): Promise<ReqEndpoint> {
    // sendTimeout: with no handler connected a DEALER send waits; give up with the session.
    const sock = new zmq.Dealer({ linger: 0, maxMessageSize: MAX_ZHTTP_MESSAGE_BYTES, sendTimeout: o.timeoutMs, sendHighWaterMark: 1000 });
    await ensureIpcDir(spec);
    await setupSocket(sock, [spec], true, 'zhttpreq target');
    o.logger.debug({ spec }, 'zhttpreq socket bound');
    return new ReqEndpoint(o, sock);
  }

  protected send(s: Session, req: ZhttpOutgoingRequest): void {
    const p = outgoing(this.o, s, req);
    p.maxSize = MAX_ZHTTP_REQUEST_BODY;
    let frame: Buffer;
    try {
      frame = encodeZhttpRequest(p);
    } catch (e) {
      this.finish(s, new ZhttpCallError('bad-request', (e as Error).message));
      return;
    }
    const queued = this.queue.push([Buffer.alloc(0), frame], (e) => {
      if (!s.done) this.finish(s, new ZhttpCallError('timeout', `request not taken by any zhttpreq handler: ${(e as Error).message}`));
    });
    if (!queued) this.finish(s, new ZhttpCallError('unavailable', 'zhttpreq send queue full'));
  }

  cancel(s: Session): void {
    // Req mode has no cancel packet (as Pushpin); a late answer is dropped as unknown.
    s.done = true;
    this.finish(s);
  }

  consumed(): void {
    // Req mode answers are whole: no flow control.
  }

  private async loop(): Promise<void> {
    try {
      for await (const msg of this.sock) this.onMessage(msg);
    } catch (e) {
      if (!this.sock.closed && !isClosedError(e)) this.o.logger.error({ err: (e as Error).message }, 'zhttpreq: receive failed');
    }
  }

  private onMessage(msg: Buffer[]): void {
    if (msg.length !== 2 || msg[0]!.length !== 0) {
      this.warn.warn(`received message with parts != 2 (${msg.length})`);
      return;
    }
    let p: ZhttpResponse;
    try {
      p = decodeZhttpResponse(msg[1]!);
    } catch (e) {
      if (e instanceof ZhttpPacketError) {
        this.warn.warn(`received message with invalid format (${e.message})`);
        return;
      }
      throw e;
    }
    if (p.ids.length !== 1) {
      this.warn.warn(`received message with ${p.ids.length} ids (expected 1)`);
      return;
    }
    const s = this.sessions.get(p.ids[0]!.id.toString('hex'));
    if (s === undefined) {
      this.o.logger.debug('zhttpreq: answer for an unknown request id, dropped');
      return;
    }
    this.apply(s, p, false);
  }

  close(): void {
    this.failAll('zhttp client closed');
    if (!this.sock.closed) this.sock.close();
    void this.done;
  }
}

/** How long a request waits for a handler's PUB to connect before it is sent anyway, in ms. */
const IN_CONNECT_WAIT_MS = 2000;

/** `zhttp/<spec>`: PUSH -out, ROUTER -out-stream, SUB -in, all bound. */
class StreamEndpoint extends Endpoint {
  private readonly outQ: SendQueue;
  private readonly streamQ: SendQueue;
  /** Handlers whose PUB is connected to our SUB (ZeroMQ handshakes minus disconnects). */
  private inPeers = 0;
  /** Requests held back until a handler's PUB has connected (see send()). */
  private waiting: Array<() => void> = [];
  private waitTimer: NodeJS.Timeout | undefined;

  private constructor(
    o: EndpointOptions,
    private readonly out: zmq.Push,
    private readonly outStream: zmq.Router,
    private readonly inSock: zmq.Subscriber,
  ) {
    super(o, 'zhttp');
    this.outQ = new SendQueue(out, o.logger, 'zhttp out');
    this.streamQ = new SendQueue(outStream, o.logger, 'zhttp out-stream');
    inSock.events.on('handshake', () => {
      this.inPeers++;
      this.releaseWaiting();
    });
    inSock.events.on('disconnect', () => {
      this.inPeers = Math.max(0, this.inPeers - 1);
    });
    void this.loopIn();
    void this.loopStream();
  }

  static async start(baseSpec: string, o: EndpointOptions): Promise<StreamEndpoint> {
    const [outSpec, streamSpec, inSpec] = zhttpStreamSpecs(baseSpec);
    const out = new zmq.Push({ linger: 0, sendHighWaterMark: 100, sendTimeout: o.timeoutMs });
    const outStream = new zmq.Router({ linger: 0, routingId: o.instanceId, maxMessageSize: MAX_ZHTTP_MESSAGE_BYTES, mandatory: true, sendTimeout: 0 });
    const inSock = new zmq.Subscriber({ linger: 0, maxMessageSize: MAX_ZHTTP_MESSAGE_BYTES, receiveHighWaterMark: 101_000 });
    inSock.subscribe(`${o.instanceId} `);
    const opened: zmq.Socket[] = [];
    try {
      for (const [sock, spec] of [[out, outSpec], [outStream, streamSpec], [inSock, inSpec]] as const) {
        await ensureIpcDir(spec);
        await setupSocket(sock, [spec], true, 'zhttp target');
        opened.push(sock);
      }
    } catch (e) {
      for (const s of [out, outStream, inSock]) if (!s.closed) s.close();
      throw e;
    }
    o.logger.debug({ out: outSpec, outStream: streamSpec, in: inSpec }, 'zhttp sockets bound');
    return new StreamEndpoint(o, out, outStream, inSock);
  }

  /**
   * A handler answers over its PUB socket, and a PUB drops what it sends before our SUB's
   * subscription has reached it. So while no handler's PUB is connected (just after we
   * bound, or after handlers restarted), a request waits for the first handshake (at most
   * IN_CONNECT_WAIT_MS; a handler answering only over the ROUTER still gets it then).
   */
  protected send(s: Session, req: ZhttpOutgoingRequest): void {
    if (this.inPeers > 0) {
      this.sendNow(s, req);
      return;
    }
    this.waiting.push(() => {
      if (!s.done) this.sendNow(s, req);
    });
    this.waitTimer ??= setTimeout(() => this.releaseWaiting(), IN_CONNECT_WAIT_MS);
  }

  private releaseWaiting(): void {
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    const ready = this.waiting;
    this.waiting = [];
    for (const go of ready) go();
  }

  private sendNow(s: Session, req: ZhttpOutgoingRequest): void {
    const p = outgoing(this.o, s, req);
    p.ids = [{ id: s.id, seq: s.outSeq++ }];
    p.stream = true;
    p.routerResp = true;
    p.credits = ZHTTP_IDEAL_CREDITS;
    p.multi = true;
    let frame: Buffer;
    try {
      frame = encodeZhttpRequest(p);
    } catch (e) {
      this.finish(s, new ZhttpCallError('bad-request', (e as Error).message));
      return;
    }
    const queued = this.outQ.push([frame], (e) => {
      if (!s.done) this.finish(s, new ZhttpCallError('timeout', `request not taken by any zhttp handler: ${(e as Error).message}`));
    });
    if (!queued) this.finish(s, new ZhttpCallError('unavailable', 'zhttp send queue full'));
  }

  /** Sends a follow-up packet of session `s` to the handler that answered it. */
  private sendToHandler(s: Session, p: Omit<ZhttpRequest, 'from' | 'ids'>): void {
    if (s.toAddress === undefined) return;
    const frame = encodeZhttpRequest({ ...p, from: Buffer.from(this.o.instanceId, 'latin1'), ids: [{ id: s.id, seq: s.outSeq++ }] });
    this.streamQ.push([s.toAddress, Buffer.alloc(0), frame]);
  }

  cancel(s: Session): void {
    if (!s.done && s.toAddress !== undefined) this.sendToHandler(s, { type: 'cancel' });
    s.done = true;
    this.finish(s);
  }

  consumed(s: Session, bytes: number): void {
    if (s.done || bytes <= 0) return;
    this.sendToHandler(s, { type: 'credit', credits: bytes });
  }

  private async loopIn(): Promise<void> {
    try {
      for await (const [frame, ...rest] of this.inSock) {
        if (frame === undefined || rest.length > 0) {
          this.warn.warn(`received pub message with parts != 1 (${rest.length + (frame ? 1 : 0)})`);
          continue;
        }
        let packet: Buffer;
        try {
          packet = splitAddressed(frame).packet;
        } catch {
          this.warn.warn('received pub message with invalid format');
          continue;
        }
        this.onPacket(packet);
      }
    } catch (e) {
      if (!this.inSock.closed && !isClosedError(e)) this.o.logger.error({ err: (e as Error).message }, 'zhttp in: receive failed');
    }
  }

  private async loopStream(): Promise<void> {
    try {
      for await (const msg of this.outStream) {
        if (msg.length !== 3) {
          this.warn.warn(`received router message with parts != 3 (${msg.length})`);
          continue;
        }
        this.onPacket(msg[2]!);
      }
    } catch (e) {
      if (!this.outStream.closed && !isClosedError(e)) this.o.logger.error({ err: (e as Error).message }, 'zhttp out-stream: receive failed');
    }
  }

  private onPacket(frame: Buffer): void {
    let p: ZhttpResponse;
    try {
      p = decodeZhttpResponse(frame);
    } catch (e) {
      if (e instanceof ZhttpPacketError) {
        this.warn.warn(`received message with invalid format (${e.message})`);
        return;
      }
      throw e;
    }
    for (const { id, seq } of p.ids) {
      const s = this.sessions.get(id.toString('hex'));
      if (s === undefined) {
        this.o.logger.debug('zhttp: packet for an unknown request id, dropped');
        continue;
      }
      if (s.toAddress === undefined) {
        if (p.from === undefined || p.from.length === 0) {
          this.finish(s, new ZhttpCallError('bad-response', 'first zhttp answer has no from address'));
          continue;
        }
        s.toAddress = Buffer.from(p.from);
        const ka = setInterval(() => this.sendToHandler(s, { type: 'keep-alive' }), this.o.keepAliveMs);
        ka.unref();
        s.keepAlive = ka;
      }
      if (seq !== undefined && seq !== s.inSeq) {
        this.sendToHandler(s, { type: 'cancel' });
        this.finish(s, new ZhttpCallError('bad-response', `zhttp answer out of sequence (expected ${s.inSeq}, got ${seq})`));
        continue;
      }
      s.inSeq++;
      this.apply(s, p, true);
    }
  }

  close(): void {
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waiting = [];
    this.failAll('zhttp client closed');
    for (const sock of [this.out, this.outStream, this.inSock]) if (!sock.closed) sock.close();
  }
}
