/**
 * The request path of the proxy: route a client request, forward it to the route's
 * targets in failover order with undici, stream the answer back, or hand a GRIP answer
 * to the handler. One Exchange object per client request; no whole-body buffering for
 * non-GRIP traffic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Config } from '../config/types.js';
import { logAccess, type Logger } from '../log/index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Route, Target } from '../routes/types.js';
import { rewritePath } from '../routes/index.js';
import { isGripResponse, parseGripHeaders, GRIP_FEATURE } from '../grip/index.js';
import { applyCorsHeaders } from '../grip/cors.js';
import {
  createJsonpStreamEncoder, JsonpError, jsonpOptionsFromRoute, parseJsonpRequest, wrapJsonpResponse, type JsonpStreamEncoder,
} from '../grip/jsonp.js';
import type { Instruct } from '../grip/types.js';
import type { BackendRequest, BackendResponse, GripAcceptor, RouteLookup, TestHandler } from './types.js';
import type { BackendPools } from './backend-pool.js';
import { targetName } from './backend-pool.js';
import type { SignerCache } from './signing.js';
import { buildBackendHeaders, isForwardedTls, type RequestHeaderOptions } from './request-headers.js';
import { filterResponseHeaders, getHeader, toPairs } from './response-headers.js';
import {
  sendText, textInstructTooLarge, textNoRoute, textNoTargets, TEXT_PROXY_ERROR, TEXT_PUSHPIN_CHECK,
  TEXT_REQUEST_TOO_LARGE_FOR_GRIP,
} from './replies.js';
import { MAX_GRIP_REQUEST_BODY, MAX_GRIP_RESPONSE_BODY, MAX_TEST_HANDLER_BODY } from './limits.js';
import { forwardZhttp, zhttpClientFor } from './zhttp-target.js';
import type { ZhttpClient } from '../zmq/zhttp-client.js';

const EMPTY = Buffer.alloc(0);

/**
 * Largest relayed body (by its Content-Length) that a JSON-P answer wraps whole, with a
 * Content-Length and mirrored Cache-Control as Pushpin does for a response it has in one
 * piece. Bounds the memory one JSON-P request can pin; larger or unframed bodies are
 * wrapped as they stream.
 */
export const MAX_JSONP_WHOLE_BODY = 100_000;

/** Flat `[name, value, …]` list of header pairs. */
function flatOf(pairs: ReadonlyArray<readonly [string, string]>): string[] {
  const out: string[] = [];
  for (const [n, v] of pairs) out.push(n, v);
  return out;
}

/** Everything the request path needs; built once by startProxy. */
export interface ForwardContext {
  config: Config;
  logger: Logger;
  routes: () => RouteLookup;
  acceptor: GripAcceptor;
  testHandler: TestHandler;
  pools: BackendPools;
  signers: SignerCache;
  /** config.proxy.origHeadersNeedMark, lowercased. */
  origHeadersNeedMark: ReadonlySet<string>;
  metrics: Metrics;
}

/** Host header value without port, lowercased; 'localhost' when absent (as Pushpin). */
export function hostForRouting(hostHeader: string | undefined): string {
  if (hostHeader === undefined || hostHeader === '') return 'localhost';
  let h = hostHeader;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end === -1 ? h.slice(1) : h.slice(1, end);
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) h = h.slice(0, colon);
  }
  return h.toLowerCase();
}

/** Client address as Pushpin reports it: IPv4-mapped IPv6 addresses in dotted form. */
export function clientAddressOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** Error codes that mean the connection to a target was never made (eligible for failover). */
function isConnectFailure(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
    || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ECONNRESET' || code === 'EPIPE'
    || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
    || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED';
}

/**
 * Reads a request body for a target that needs it whole (the test handler), up to
 * `max` bytes; resolves undefined past the limit.
 */
async function readWhole(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) return undefined;
    chunks.push(c);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Feeds the client's request body to undici while keeping a bounded copy for GRIP
 * retries. Iteration starts only once undici has a connection, so a refused target
 * leaves the body unread and the next target can get it.
 */
class BodyTap {
  chunks: Buffer[] = [];
  size = 0;
  /** More than MAX_GRIP_REQUEST_BODY bytes were seen: the copy is incomplete. */
  overflow = false;
  started = false;
  ended = false;

  constructor(private readonly req: IncomingMessage, private readonly keep: boolean) {}

  /** A body source for one attempt: the live stream the first time, the copy afterwards. */
  source(): AsyncIterable<Buffer> | Buffer | undefined {
    if (!this.started) return this.iterate();
    if (this.ended && !this.overflow && this.keep) return this.copy();
    return undefined;
  }

  private async *iterate(): AsyncGenerator<Buffer> {
    this.started = true;
    for await (const c of this.req as AsyncIterable<Buffer>) {
      if (this.keep && !this.overflow) {
        if (this.size + c.length > MAX_GRIP_REQUEST_BODY) {
          this.overflow = true;
          this.chunks = [];
        } else {
          this.chunks.push(c);
        }
      }
      this.size += c.length;
      yield c;
    }
    this.ended = true;
  }

  copy(): Buffer {
    if (this.chunks.length === 0) return EMPTY;
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}

/** Per-request state shared by the attempts on each target (exported for zhttp-target.ts). */
export interface RequestInfo {
  req: IncomingMessage;
  res: ServerResponse;
  ssl: boolean;
  route: Route;
  trusted: boolean;
  /** GRIP may take the request over (route is GRIP-enabled and the client isn't trusted). */
  gripMode: boolean;
  debug: boolean;
  method: string;
  /** Path and query as received. */
  clientPath: string;
  /** Path and query for the backend (route rewriting applied). */
  backendPath: string;
  clientAddress: string;
  startMs: number;
  tap: BodyTap | undefined;
  /** Header options; hostOverride is set per target. */
  headerOpts: RequestHeaderOptions;
  /** Targets still to try, in order. */
  remaining: Target[];
  /** Client went away: stop everything. */
  clientGone: boolean;
  /** Abort of the attempt in flight. */
  abort: ((err?: Error) => void) | undefined;
  /**
   * The client-close listener on `res` (it aborts the attempt in flight). Removed by
   * releaseAfterHandoff once no backend exchange is left to abort, so a long hold keeps
   * neither this object nor undici's request (and the dispatch handler) alive.
   */
  onClientClose?: (() => void) | undefined;
  /** Auto cross-origin (config auto_cross_origin or route aco): CORS headers / JSON-P apply. */
  aco: boolean;
  /** The client's headers as received, as pairs; set only when `aco` (CORS input). */
  clientPairs: Array<[string, string]> | undefined;
  /** Flat header list the backend headers are built from: the client's, or JSON-P's rewrite. */
  clientHeaders: readonly string[];
  /** JSON-P request: the body to send instead of the client's (the client's is ignored). */
  fixedBody: Buffer | undefined;
  /** JSON-P request: how to wrap the answer. */
  jsonp: { callback: Buffer; mode: 'basic' | 'extended' } | undefined;
}

/** Routes and forwards client requests. `handle` is the listeners' request callback. */
export class Forwarder {
  private readonly accessLog: boolean;
  /** Sockets for zhttp/zhttpreq targets, opened on first use (closed by closeZhttpClients). */
  private zhttp: ZhttpClient | undefined;

  constructor(readonly ctx: ForwardContext) {
    this.accessLog = ctx.logger.isLevelEnabled('info');
  }

  /** Entry point for every client request. Never throws. */
  handle(req: IncomingMessage, res: ServerResponse, ssl: boolean): void {
    const startMs = performance.now();
    const raw = req.rawHeaders;
    let hostHeader: string | undefined;
    let routeId: string | undefined;
    let gripSig: string | undefined;
    let check = false;
    let hasBody = false;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      // Cheap pre-filter on the first letter before lowercasing.
      const c = name.charCodeAt(0) | 0x20;
      if (c !== 0x68 && c !== 0x70 && c !== 0x67 && c !== 0x63 && c !== 0x74) continue;
      switch (name.toLowerCase()) {
        case 'host': if (hostHeader === undefined) hostHeader = raw[i + 1]; break;
        case 'pushpin-route': routeId = raw[i + 1]; break;
        case 'pushpin-check': check = true; break;
        case 'grip-sig': gripSig = raw[i + 1]; break;
        case 'content-length': hasBody = raw[i + 1] !== '0'; break;
        case 'transfer-encoding': hasBody = true; break;
        default: break;
      }
    }
    const proxy = this.ctx.config.proxy;
    const isHttps = ssl || (proxy.acceptXForwardedProtocol && isForwardedTls(raw));
    if (gripSig !== undefined && proxy.upstreamKey.length > 0) {
      this.ctx.signers.isTrusted(gripSig).then(
        (trusted) => this.route(req, res, isHttps, hostHeader, routeId, check, hasBody, trusted, startMs),
        () => this.route(req, res, isHttps, hostHeader, routeId, check, hasBody, false, startMs),
      );
      return;
    }
    this.route(req, res, isHttps, hostHeader, routeId, check, hasBody, false, startMs);
  }

  private route(
    req: IncomingMessage, res: ServerResponse, ssl: boolean, hostHeader: string | undefined,
    routeId: string | undefined, check: boolean, hasBody: boolean, trusted: boolean, startMs: number,
  ): void {
    try {
      this.routeUnsafe(req, res, ssl, hostHeader, routeId, check, hasBody, trusted, startMs);
    } catch (err) {
      this.ctx.logger.error({ err: (err as Error).message, url: req.url }, 'proxy: request failed');
      sendText(res, 502, 'Bad Gateway', TEXT_PROXY_ERROR);
    }
  }

  private routeUnsafe(
    req: IncomingMessage, res: ServerResponse, ssl: boolean, hostHeader: string | undefined,
    routeId: string | undefined, check: boolean, hasBody: boolean, trusted: boolean, startMs: number,
  ): void {
    const { config } = this.ctx;
    const proxy = config.proxy;
    let clientPath = req.url ?? '/';
    if (clientPath === '*') {
      // Asterisk-form (RFC 9112 3.2.4) asks about the server itself, not a backend
      // resource. undici cannot send it, and a dispatch it rejects left the pooled
      // connection waiting for a drain that never came: enough of these stalled the pool.
      if (req.method === 'OPTIONS') sendText(res, 200, 'OK', '');
      else sendText(res, 400, 'Bad Request', 'Invalid request target.');
      return;
    }
    if (clientPath.charCodeAt(0) !== 0x2f) {
      // Absolute-form request target: its authority wins over Host (RFC 9112 3.2.2).
      try {
        const u = new URL(clientPath);
        hostHeader = u.host;
        clientPath = u.pathname + u.search;
      } catch {
        sendText(res, 400, 'Bad Request', 'Invalid request target.');
        return;
      }
    }
    const host = hostForRouting(hostHeader);
    const table = this.ctx.routes();
    const route = table.resolve({
      host, path: clientPath, ssl, proto: 'http',
      ...(proxy.acceptPushpinRoute && routeId !== undefined ? { routeId } : {}),
    });

    if (check) {
      sendText(res, 200, 'OK', TEXT_PUSHPIN_CHECK);
      this.log(req.method ?? '', clientPath, 200, route, '-', startMs);
      return;
    }
    if (route === undefined) {
      this.ctx.logger.warn({ host }, 'proxy: no route for host');
      sendText(res, 502, 'Bad Gateway', textNoRoute(host));
      this.log(req.method ?? '', clientPath, 502, undefined, '-', startMs);
      return;
    }

    const gripEnabled = !route.noGrip;
    const gripMode = gripEnabled && !trusted;
    const clientAddress = clientAddressOf(req);
    const aco = proxy.autoCrossOrigin || route.autoCrossOrigin;
    let method = req.method ?? 'GET';
    let targetPath = clientPath;
    let clientHeaders: readonly string[] = req.rawHeaders;
    let clientPairs: Array<[string, string]> | undefined;
    let fixedBody: Buffer | undefined;
    let jsonp: RequestInfo['jsonp'];
    if (aco) {
      clientPairs = toPairs(req.rawHeaders);
      let jp;
      try {
        jp = parseJsonpRequest(method, clientPath, clientPairs, jsonpOptionsFromRoute(route));
      } catch (err) {
        if (!(err instanceof JsonpError)) throw err;
        const body = Buffer.from(err.body, 'utf8');
        res.sendDate = false;
        res.writeHead(err.status, err.reason, flatOf(applyCorsHeaders(clientPairs, [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]])));
        res.end(body);
        this.log(method, clientPath, err.status, route, '-', startMs);
        return;
      }
      if (jp !== null) {
        method = jp.method;
        targetPath = jp.path;
        // The JSON-P body replaces the client's; Content-Length frames it.
        clientHeaders = flatOf(jp.body.length > 0 ? [...jp.headers, ['Content-Length', String(jp.body.length)]] : jp.headers);
        fixedBody = jp.body;
        jsonp = { callback: jp.callback, mode: jp.mode };
      }
    }
    const info: RequestInfo = {
      req, res, ssl, route, trusted, gripMode,
      debug: proxy.debug || route.debug,
      method,
      clientPath,
      backendPath: rewritePath(route, targetPath),
      clientAddress,
      startMs,
      tap: hasBody && fixedBody === undefined ? new BodyTap(req, gripMode) : undefined,
      headerOpts: {
        trusted,
        addGripFeature: gripMode,
        gripFeature: GRIP_FEATURE,
        routeHeaders: route.headers,
        origHeaders: route.origHeaders,
        origHeadersNeedMark: this.ctx.origHeadersNeedMark,
        acceptPushpinRoute: proxy.acceptPushpinRoute,
        acceptXForwardedProtocol: proxy.acceptXForwardedProtocol,
        setXForwardedProtocol: proxy.setXForwardedProtocol,
        https: ssl,
        xff: trusted ? proxy.xForwardedForTrusted : proxy.xForwardedFor,
        peerAddress: clientAddress,
        cdnLoop: proxy.cdnLoop,
        hostOverride: route.asHost,
      },
      remaining: route.targets.slice(),
      clientGone: false,
      abort: undefined,
      aco, clientPairs, clientHeaders, fixedBody, jsonp,
    };
    info.onClientClose = () => {
      if (!res.writableFinished) {
        info.clientGone = true;
        info.abort?.(new Error('client closed the connection'));
      }
    };
    res.once('close', info.onClientClose);
    this.nextTarget(info);
  }

  /** Tries the next target, or answers 502 when none is left. */
  private nextTarget(info: RequestInfo): void {
    if (info.clientGone) return;
    const target = info.remaining.shift();
    if (target === undefined) {
      const names = info.route.targets.map(targetName);
      this.fail(info, textNoTargets(names), names.join(','));
      return;
    }
    if (target.type === 'test') {
      this.runTest(info, target).catch((err: unknown) => {
        this.ctx.logger.error({ err: (err as Error).message }, 'proxy: test handler failed');
        this.fail(info, `Error: test handler failed: ${(err as Error).message}`, 'test');
      });
      return;
    }
    if (target.type === 'zhttp' || target.type === 'zhttpreq') {
      forwardZhttp(this, info, target, this.zhttp ??= zhttpClientFor(this.ctx.logger));
      return;
    }
    const opts = info.headerOpts;
    opts.hostOverride = target.hostHeader ?? info.route.asHost;
    const headers = buildBackendHeaders(info.clientHeaders, opts);
    const sig = info.gripMode ? this.ctx.signers.token(info.route) : undefined;
    if (sig !== undefined) headers.push('Grip-Sig', sig);
    let body: AsyncIterable<Buffer> | Buffer | undefined;
    if (info.fixedBody !== undefined) {
      if (info.fixedBody.length > 0) body = info.fixedBody;
    } else if (info.tap !== undefined) {
      body = info.tap.source();
      if (body === undefined) {
        // The body went to a target that then failed, and no full copy was kept.
        this.fail(info, TEXT_PROXY_ERROR, targetName(target));
        return;
      }
    }
    let pool;
    try {
      pool = this.ctx.pools.forTarget(target);
    } catch (err) {
      this.fail(info, `Error: ${(err as Error).message}`, targetName(target));
      return;
    }
    const exchange = new Exchange(this, info, target, headers, sig);
    pool.dispatch({
      path: info.backendPath,
      method: info.method as Dispatcher.HttpMethod,
      headers,
      body: (body ?? null) as Dispatcher.DispatchOptions['body'],
      upgrade: null,
      // Never replay a client's request on a reused connection behind its back.
      idempotent: false,
    }, exchange);
  }

  /** Target `test`: the built-in handler answers; GRIP detection runs on its answer. */
  private async runTest(info: RequestInfo, target: Target): Promise<void> {
    const body = info.fixedBody ?? (info.tap === undefined ? EMPTY : await readWhole(info.req, MAX_TEST_HANDLER_BODY));
    if (body === undefined) {
      this.reply(info, 413, 'Request Entity Too Large', `Body must not exceed ${MAX_TEST_HANDLER_BODY} bytes`);
      this.log(info.method, info.clientPath, 413, info.route, 'test', info.startMs);
      return;
    }
    let path = info.backendPath;
    const pathBeg = info.route.pathBeg;
    if (pathBeg !== undefined && pathBeg !== '') {
      // Pushpin hands the test handler the path relative to path_beg.
      const remove = pathBeg.endsWith('/') ? pathBeg.length - 1 : pathBeg.length;
      if (remove > 0) path = path.slice(remove) || '/';
    }
    info.headerOpts.hostOverride = info.route.asHost;
    const flat = buildBackendHeaders(info.clientHeaders, info.headerOpts);
    const headers = toPairs(flat);
    const answer = await this.ctx.testHandler({ method: info.method, path, headers, body });
    if (info.clientGone) return;
    const backendRequest: BackendRequest = { method: info.method, path, headers, body };
    const respFlat: string[] = [];
    for (const [n, v] of answer.headers) respFlat.push(n, v);
    const filtered = filterResponseHeaders(respFlat);
    const pairs = toPairs(filtered.flat);
    if (info.gripMode && filtered.maybeGrip && isGripResponse(pairs)) {
      this.handOff(info, target, backendRequest, answer.status, answer.reason, pairs, answer.body, undefined);
      return;
    }
    const res = info.res;
    res.sendDate = false;
    if (info.jsonp !== undefined) {
      const j = wrapJsonpResponse(info.jsonp.callback, answer.status, answer.reason, pairs, answer.body, info.jsonp.mode);
      res.writeHead(j.status, j.reason, flatOf(j.headers));
      res.end(j.body);
    } else {
      // The whole answer is in hand: send its length, as Pushpin's test handler does.
      const flat = info.method === 'HEAD' || getHeader(filtered.flat, 'content-length') !== undefined
        ? filtered.flat
        : [...filtered.flat, 'Content-Length', String(answer.body.length)];
      res.writeHead(answer.status, answer.reason, info.aco ? flatOf(applyCorsHeaders(info.clientPairs!, toPairs(flat))) : flat);
      res.end(answer.body);
    }
    this.log(info.method, info.clientPath, answer.status, info.route, 'test', info.startMs);
  }

  /** Parses GRIP instructions and gives the request to the handler (or answers 502). */
  handOff(
    info: RequestInfo, target: Target, backendRequest: BackendRequest, status: number, reason: string,
    headers: Array<[string, string]>, body: Buffer, bodyRest: AsyncIterable<Uint8Array> | undefined,
  ): void {
    let instruct: Instruct;
    try {
      instruct = parseGripHeaders(status, reason, headers, body, { subscriptionMax: this.ctx.config.handler.connectionSubscriptionMax });
    } catch (err) {
      const msg = (err as Error).message;
      this.ctx.logger.warn({ route: info.route.source, target: targetName(target), err: msg }, 'proxy: invalid GRIP instructions from backend');
      (bodyRest as PassThrough | undefined)?.destroy();
      this.fail(info, `Failed to parse accept instructions: ${msg}`, targetName(target));
      return;
    }
    this.log(info.method, info.clientPath, instruct.response.code, info.route, targetName(target), info.startMs, true);
    try {
      this.ctx.acceptor.accept({
        req: info.req, res: info.res, route: info.route, target, backendRequest, instruct,
        ...(bodyRest !== undefined ? { bodyRest } : {}),
        ...(info.jsonp !== undefined ? { jsonp: info.jsonp } : {}),
        clientAddress: info.clientAddress, ssl: info.ssl,
      });
    } catch (err) {
      this.ctx.logger.error({ err: (err as Error).message }, 'proxy: GRIP handler failed to accept a request');
      this.reply(info, 500, 'Internal Server Error', 'Accept service unavailable.');
    }
    // A whole answer: the backend exchange is over. (A stream's body is still arriving;
    // its Exchange releases when the body ends.)
    if (bodyRest === undefined) releaseAfterHandoff(info);
  }

  /** Answers 502 with Pushpin's text (`detail` under debug); ends a started response. */
  fail(info: RequestInfo, detail: string, backend: string): void {
    const res = info.res;
    if (res.headersSent) {
      if (info.debug && !res.writableEnded) res.end(`\n\n${detail}\n`);
      else res.destroy();
      return;
    }
    this.reply(info, 502, 'Bad Gateway', info.debug ? detail : TEXT_PROXY_ERROR);
    this.log(info.method, info.clientPath, 502, info.route, backend, info.startMs);
  }

  /**
   * gripd's own text/plain answer to a routed request (as sendText). On auto cross-origin
   * routes it carries the CORS headers, or for a JSON-P request is wrapped in the
   * callback with Content-Length listed in the envelope (as Pushpin wraps its own errors).
   */
  reply(info: RequestInfo, status: number, reason: string, text: string): void {
    if (!info.aco) {
      sendText(info.res, status, reason, text);
      return;
    }
    const res = info.res;
    if (res.headersSent || res.destroyed) return;
    const body = Buffer.from(text + '\n', 'utf8');
    const headers: Array<[string, string]> = [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]];
    res.sendDate = false;
    if (info.jsonp !== undefined) {
      const j = wrapJsonpResponse(info.jsonp.callback, status, reason, headers, body, info.jsonp.mode, { keepContentLength: true });
      res.writeHead(j.status, j.reason, flatOf(j.headers));
      res.end(j.body);
      return;
    }
    res.writeHead(status, reason, flatOf(applyCorsHeaders(info.clientPairs!, headers)));
    res.end(body);
  }

  /** Access log line (info level): method, path, status (or "accept" for GRIP holds), route, backend, duration. */
  log(method: string, path: string, status: number, route: Route | undefined, backend: string, startMs: number, grip = false): void {
    if (!this.accessLog) return;
    logAccess(this.ctx.logger, {
      method,
      path,
      status,
      accepted: grip,
      route: route === undefined ? undefined : route.idExplicit ? route.id : route.source,
      backend,
      durationMs: performance.now() - startMs,
    });
  }

  /** Used by Exchange: next target after a connect failure. */
  retry(info: RequestInfo): void {
    this.nextTarget(info);
  }
}

/** Response modes of one attempt. */
const enum Mode { Waiting, RelayPending, Relaying, Collecting, Streaming, JsonpWhole, JsonpStream, Done }

/**
 * A body without Content-Length is held back this long (one event-loop turn) and up to
 * this many bytes: when it is complete by then, the client gets it with a Content-Length,
 * as Pushpin sends small complete answers; otherwise it streams chunked.
 */
const RELAY_PENDING_MAX_BYTES = 65536;

/**
 * One attempt on one http target, as an undici dispatch handler: relays a plain answer
 * with backpressure, collects a GRIP answer, or streams a stream hold's body to the
 * handler.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private mode = Mode.Waiting;
  private connected = false;
  private status = 0;
  private reason = '';
  private pairs: Array<[string, string]> = [];
  private chunks: Buffer[] = [];
  private size = 0;
  private resumeFn: (() => void) | undefined;
  private rest: PassThrough | undefined;
  /** JSON-P answer being streamed (Mode.JsonpStream). */
  private jsonpEncoder: JsonpStreamEncoder | undefined;
  /** RelayPending: the backend's head, sent once the body's length is known or a turn has passed. */
  private pendingHead: string[] = [];
  private flushScheduled = false;
  /** The client's socket buffer is full; undici was told to pause. */
  private paused = false;

  constructor(
    private readonly fwd: Forwarder,
    private readonly info: RequestInfo,
    private readonly target: Target,
    private readonly headers: string[],
    private readonly sig: string | undefined,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.connected = true;
    this.info.abort = abort;
    if (this.info.clientGone) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true;
    const info = this.info;
    this.fwd.ctx.metrics.backendResponse(performance.now() - info.startMs, statusCode);
    this.resumeFn = resume;
    this.status = statusCode;
    this.reason = statusText;
    const filtered = filterResponseHeaders(rawHeaders);
    if (info.gripMode && filtered.maybeGrip) {
      const pairs = toPairs(filtered.flat);
      if (isGripResponse(pairs)) {
        if (info.tap !== undefined && info.tap.overflow) {
          this.mode = Mode.Done;
          info.abort?.(new Error('request too large for GRIP'));
          this.fwd.reply(info, 400, 'Bad Request', TEXT_REQUEST_TOO_LARGE_FOR_GRIP);
          this.fwd.log(info.method, info.clientPath, 400, info.route, targetName(this.target), info.startMs);
          return false;
        }
        this.pairs = pairs;
        const hold = getHeader(filtered.flat, 'grip-hold');
        const ct = getHeader(filtered.flat, 'content-type') ?? '';
        if (hold !== undefined && hold.trim() === 'stream' && !ct.toLowerCase().startsWith('application/grip-instruct')) {
          this.mode = Mode.Streaming;
          this.rest = new PassThrough();
          this.rest.on('drain', () => this.resumeFn?.());
          this.fwd.handOff(info, this.target, this.backendRequest(), statusCode, statusText, pairs, EMPTY, this.rest);
          return true;
        }
        this.mode = Mode.Collecting;
        return true;
      }
    }
    this.mode = Mode.Relaying;
    const res = info.res;
    if (info.clientGone) return false;
    try {
      res.sendDate = false;
      if (info.aco) this.startCrossOrigin(info, statusCode, statusText, filtered.flat);
      else if (hasBodyOfUnknownLength(info.method, statusCode, filtered.flat)) {
        this.mode = Mode.RelayPending;
        this.pendingHead = filtered.flat;
      } else res.writeHead(statusCode, statusText, filtered.flat);
    } catch (err) {
      this.mode = Mode.Done;
      info.abort?.(err as Error);
      this.fwd.fail(info, `Error: invalid response from ${targetName(this.target)}: ${(err as Error).message}`, targetName(this.target));
      return false;
    }
    return true;
  }

  /**
   * Starts relaying on an auto cross-origin route: CORS headers on a plain answer; for a
   * JSON-P request, either collects the body to wrap it whole (Content-Length known and
   * small) or sends the wrapper's head and wraps the body as it streams.
   */
  private startCrossOrigin(info: RequestInfo, status: number, reason: string, flat: string[]): void {
    const res = info.res;
    const jsonp = info.jsonp;
    if (jsonp === undefined) {
      res.writeHead(status, reason, flatOf(applyCorsHeaders(info.clientPairs!, toPairs(flat))));
      return;
    }
    this.pairs = toPairs(flat);
    const len = getHeader(flat, 'content-length');
    if (len !== undefined && /^\d{1,15}$/.test(len.trim()) && Number(len) <= MAX_JSONP_WHOLE_BODY) {
      this.mode = Mode.JsonpWhole;
      return;
    }
    this.mode = Mode.JsonpStream;
    const enc = createJsonpStreamEncoder(jsonp.callback, status, reason, this.pairs, jsonp.mode);
    this.jsonpEncoder = enc;
    res.writeHead(enc.status, enc.reason, flatOf(enc.headers));
    res.write(enc.start());
  }

  /** Sends the held-back head and body chunked: the body did not end within one turn. */
  private flushPending(): void {
    this.flushScheduled = false;
    if (this.mode !== Mode.RelayPending) return;
    this.mode = Mode.Relaying;
    const info = this.info;
    const chunks = this.chunks;
    this.chunks = [];
    this.size = 0;
    if (info.clientGone) return;
    try {
      info.res.writeHead(this.status, this.reason, this.pendingHead);
    } catch (err) {
      this.mode = Mode.Done;
      info.abort?.(err as Error);
      this.fwd.fail(info, `Error: invalid response from ${targetName(this.target)}: ${(err as Error).message}`, targetName(this.target));
      return;
    }
    let ok = true;
    for (const c of chunks) ok = info.res.write(c);
    if (!ok) {
      this.paused = true;
      info.res.once('drain', () => {
        this.paused = false;
        this.resumeFn?.();
      });
    }
  }

  private writeRelay(data: Buffer): boolean {
    const res = this.info.res;
    if (data.length === 0 || res.write(data)) return true;
    res.once('drain', () => this.resumeFn?.());
    return false;
  }

  onData(chunk: Buffer): boolean {
    switch (this.mode) {
      case Mode.RelayPending:
        this.chunks.push(chunk);
        this.size += chunk.length;
        if (this.size > RELAY_PENDING_MAX_BYTES) {
          this.flushPending();
          return !this.paused;
        }
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          setImmediate(() => this.flushPending());
        }
        return true;
      case Mode.Relaying: {
        const res = this.info.res;
        if (res.write(chunk)) return true;
        res.once('drain', () => this.resumeFn?.());
        return false;
      }
      case Mode.JsonpStream:
        return this.writeRelay(this.jsonpEncoder!.push(chunk));
      case Mode.JsonpWhole:
        this.size += chunk.length;
        if (this.size > MAX_JSONP_WHOLE_BODY) {
          // The backend sent more than its Content-Length said: not a usable answer.
          this.mode = Mode.Done;
          this.chunks = [];
          this.info.abort?.(new Error('response body longer than its Content-Length'));
          this.fwd.fail(this.info, `Error: invalid response from ${targetName(this.target)}: body longer than Content-Length`, targetName(this.target));
          return false;
        }
        this.chunks.push(chunk);
        return true;
      case Mode.Collecting:
        this.size += chunk.length;
        if (this.size > MAX_GRIP_RESPONSE_BODY) {
          this.mode = Mode.Done;
          this.chunks = [];
          this.info.abort?.(new Error('GRIP response too large'));
          this.fwd.fail(this.info, textInstructTooLarge(targetName(this.target)), targetName(this.target));
          return false;
        }
        this.chunks.push(chunk);
        return true;
      case Mode.Streaming:
        return this.rest!.write(chunk);
      default:
        return true;
    }
  }

  onComplete(): void {
    const info = this.info;
    switch (this.mode) {
      case Mode.RelayPending: {
        this.mode = Mode.Done;
        const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        if (info.clientGone) return;
        try {
          info.res.writeHead(this.status, this.reason, [...this.pendingHead, 'Content-Length', String(body.length)]);
        } catch (err) {
          this.fwd.fail(info, `Error: invalid response from ${targetName(this.target)}: ${(err as Error).message}`, targetName(this.target));
          return;
        }
        info.res.end(body);
        this.fwd.log(info.method, info.clientPath, this.status, info.route, targetName(this.target), info.startMs);
        return;
      }
      case Mode.Relaying:
        this.mode = Mode.Done;
        info.res.end();
        this.fwd.log(info.method, info.clientPath, this.status, info.route, targetName(this.target), info.startMs);
        return;
      case Mode.JsonpStream:
        this.mode = Mode.Done;
        info.res.end(this.jsonpEncoder!.end());
        this.fwd.log(info.method, info.clientPath, this.status, info.route, targetName(this.target), info.startMs);
        return;
      case Mode.JsonpWhole: {
        this.mode = Mode.Done;
        const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        const jsonp = info.jsonp!;
        // Pushpin 1.36 lists a relayed Content-Length in the envelope when it has the whole
        // body (checked on the wire); only the streamed form leaves it out.
        const j = wrapJsonpResponse(jsonp.callback, this.status, this.reason, this.pairs, body, jsonp.mode, { keepContentLength: true });
        if (!info.clientGone && !info.res.headersSent) {
          info.res.writeHead(j.status, j.reason, flatOf(j.headers));
          info.res.end(j.body);
        }
        this.fwd.log(info.method, info.clientPath, this.status, info.route, targetName(this.target), info.startMs);
        return;
      }
      case Mode.Collecting: {
        this.mode = Mode.Done;
        const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        this.fwd.handOff(info, this.target, this.backendRequest(), this.status, this.reason, this.pairs, body, undefined);
        return;
      }
      case Mode.Streaming:
        this.mode = Mode.Done;
        this.rest!.end();
        releaseAfterHandoff(info);
        return;
      default:
        return;
    }
  }

  onError(err: Error): void {
    const info = this.info;
    const mode = this.mode;
    this.mode = Mode.Done;
    if (mode === Mode.Done || info.clientGone) return;
    if (mode === Mode.Streaming) {
      this.rest!.destroy(err);
      releaseAfterHandoff(info);
      return;
    }
    const name = targetName(this.target);
    if (mode === Mode.Waiting && !this.connected && isConnectFailure(err)) {
      this.info.abort = undefined;
      this.fwdLogDebug(err, name, 'connect failed, trying next target');
      this.fwd.retry(info);
      return;
    }
    this.fwdLogDebug(err, name, 'backend error');
    const code = (err as { code?: string }).code;
    const detail = code === 'UND_ERR_HEADERS_TIMEOUT' ? `Error: ${name} did not answer in time.` : TEXT_PROXY_ERROR;
    this.fwd.fail(info, detail, name);
  }

  private fwdLogDebug(err: Error, target: string, msg: string): void {
    const logger = this.fwd.ctx.logger;
    if (logger.isLevelEnabled('debug')) {
      logger.debug({ target, err: err.message, code: (err as { code?: string }).code }, `proxy: ${msg}`);
    }
  }

  private backendRequest(): BackendRequest {
    const h = this.headers;
    const headers: Array<[string, string]> = [];
    for (let i = 0; i + 1 < h.length; i += 2) {
      // The handler adds a fresh Grip-Sig per send.
      if (this.sig !== undefined && h[i] === 'Grip-Sig' && h[i + 1] === this.sig) continue;
      headers.push([h[i]!, h[i + 1]!]);
    }
    const tap = this.info.tap;
    const body = this.info.fixedBody ?? (tap === undefined ? EMPTY : tap.copy());
    return { method: this.info.method, path: this.info.backendPath, headers, body };
  }
}

export type { BackendResponse };

/**
 * Called once the handler owns a request and no backend exchange is left to abort: drops
 * the client-close listener and the abort hook, which would otherwise keep this request's
 * RequestInfo, undici's request and the Exchange (with its body stream) alive for as
 * long as the hold lasts. Idempotent.
 */
export function releaseAfterHandoff(info: RequestInfo): void {
  if (info.onClientClose !== undefined) {
    info.res.off('close', info.onClientClose);
    info.onClientClose = undefined;
  }
  info.abort = undefined;
}

/**
 * True when a relayed answer has a body whose length the head does not give (chunked or
 * close-delimited): not for HEAD, 1xx, 204 or 304, nor with a Content-Length.
 */
function hasBodyOfUnknownLength(method: string, status: number, flat: string[]): boolean {
  if (method === 'HEAD' || status === 204 || status === 304) return false;
  return getHeader(flat, 'content-length') === undefined;
}
