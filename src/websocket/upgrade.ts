/**
 * Client WebSocket handshakes on gripd's listeners: routes the upgrade request (proto
 * `ws`), then bridges the connection to an `over_http` backend (WebSocket-over-HTTP), a
 * WebSocket backend (pass-through, with the GRIP extension), or the built-in test
 * handler. Also refuses untrusted clients that post `application/websocket-events`
 * themselves to an over_http route, as Pushpin.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config/types.js';
import { GRIP_FEATURE } from '../grip/index.js';
import type { HoldHost, WsHeld } from '../handler/host.js';
import { testWebSocket } from '../handler/test-handler.js';
import type { Logger } from '../log/index.js';
import type { BackendPools } from '../proxy/backend-pool.js';
import { targetName } from '../proxy/backend-pool.js';
import { clientAddressOf, hostForRouting } from '../proxy/forward.js';
import { buildBackendHeaders, isForwardedTls } from '../proxy/request-headers.js';
import { TEXT_PROXY_ERROR, textNoRoute } from '../proxy/replies.js';
import type { SignerCache } from '../proxy/signing.js';
import type { RouteLookup } from '../proxy/types.js';
import { rewritePath } from '../routes/index.js';
import type { Route, Target } from '../routes/types.js';
import { parseGripExtension } from './control.js';
import {
  decodeEvents, isWebSocketEventsRequest, isWebSocketEventsResponse, MAX_REJECT_BODY_BYTES, parseKeepAliveInterval,
  sanitizeWsRequestHeaders, selectedProtocol, stripWsResponseHeaders, WsEventsError, type WsEvent,
} from './events.js';
import { OverHttpConnection, postEvents, type OverHttpTarget, type WohResponse } from './over-http.js';
import { startPassthrough } from './passthrough.js';
import { WsSession, CLOSE_SHUTDOWN } from './ws-session.js';

/**
 * Largest message (after reassembling fragments) a client may send; a bigger one closes
 * the connection with 1009. Bounds the memory one client can make gripd hold and keeps a
 * message within one WebSocket-over-HTTP event.
 */
export const MAX_MESSAGE_BYTES = 1_000_000;

/** What the WebSocket bridge needs from the GRIP handler (src/handler's Handler provides it). */
export interface WsHub {
  registerWs(conn: WsHeld): HoldHost | undefined;
}

/** True when `x` can register WebSocket connections (duck-typed so the proxy needs no handler import). */
export function isWsHub(x: unknown): x is WsHub {
  return typeof (x as { registerWs?: unknown }).registerWs === 'function';
}

export interface UpgradeOptions {
  config: Config;
  logger: Logger;
  routes: () => RouteLookup;
  hub: WsHub;
  pools: BackendPools;
  signers: SignerCache;
  /** config.proxy.origHeadersNeedMark, lowercased. */
  origHeadersNeedMark: ReadonlySet<string>;
  /** Deadline of each WebSocket-over-HTTP request and of a backend WebSocket handshake, ms. */
  requestTimeoutMs: number;
  /** Client message size limit (default MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
}

/** Hop-by-hop and handshake headers never copied from a backend answer to the client's 101. */
const NOT_RELAYED_101 = new Set([
  'connection', 'upgrade', 'transfer-encoding', 'content-length', 'sec-websocket-accept', 'sec-websocket-extensions',
  'sec-websocket-protocol', 'keep-alive',
]);

/** Writes an HTTP response on a socket that has not been upgraded, then closes it. */
export function rejectHandshake(
  socket: Duplex, status: number, reason: string, headers: ReadonlyArray<readonly [string, string]>, body: Buffer,
): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || 'Error'}\r\n`;
  for (const [n, v] of headers) {
    const lc = n.toLowerCase();
    if (lc === 'content-length' || lc === 'connection' || lc === 'transfer-encoding') continue;
    if (/[\r\n]/.test(n) || /[\r\n]/.test(v)) continue;
    head += `${n}: ${v}\r\n`;
  }
  head += `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  setTimeout(() => socket.destroy(), 1000).unref();
}

function rejectText(socket: Duplex, status: number, text: string): void {
  rejectHandshake(socket, status, STATUS_CODES[status] ?? '', [['Content-Type', 'text/plain']], Buffer.from(text + '\n'));
}

function headerPairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** A client's handshake request is well-formed (RFC 6455 4.2.1), as far as gripd checks before the backend. */
function handshakeProblem(req: IncomingMessage): { status: number; text: string } | undefined {
  if (req.method !== 'GET') return { status: 400, text: 'WebSocket handshake must use GET.' };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return { status: 400, text: 'Unsupported upgrade.' };
  if (req.headers['sec-websocket-version'] !== '13') return { status: 426, text: 'Unsupported WebSocket version.' };
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) return { status: 400, text: 'Invalid Sec-WebSocket-Key.' };
  return undefined;
}

/** Extra data a handshake carries into ws's 'headers' hook and protocol selection. */
interface PendingAccept {
  headers: Array<[string, string]>;
  protocol: string | undefined;
}

/** The WebSocket bridge attached to a set of listeners. */
export class WebSocketBridge {
  /** ws servers (noServer): one answering pings itself (test handler), one relaying them. */
  private readonly autoPong: WebSocketServer;
  private readonly relay: WebSocketServer;
  private readonly pending = new WeakMap<IncomingMessage, PendingAccept>();

  constructor(private readonly o: UpgradeOptions) {
    const common = {
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: o.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      handleProtocols: (_protocols: Set<string>, req: IncomingMessage) => this.pending.get(req)?.protocol ?? false,
    };
    this.autoPong = new WebSocketServer({ ...common, autoPong: true });
    this.relay = new WebSocketServer({ ...common, autoPong: false });
    const onHeaders = (headers: string[], req: IncomingMessage): void => {
      const p = this.pending.get(req);
      if (p === undefined) return;
      // Backend headers first, then ws's own, as Pushpin orders them.
      headers.splice(1, 0, ...p.headers.map(([n, v]) => `${n}: ${v}`));
    };
    this.autoPong.on('headers', onHeaders);
    this.relay.on('headers', onHeaders);
  }

  /** Listens for upgrades on `servers`; `ssl` tells which ones are TLS listeners. */
  attach(server: Server, ssl: boolean): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', (err) => this.o.logger.debug({ err: err.message }, 'ws: client socket error'));
      this.handle(req, socket, head, ssl).catch((err: unknown) => {
        this.o.logger.error({ err: (err as Error).message, url: req.url }, 'ws: upgrade failed');
        rejectText(socket, 502, TEXT_PROXY_ERROR);
      });
    });
  }

  /**
   * Request-path guard: an untrusted client posting application/websocket-events to a
   * route whose target is over_http gets 403, as Pushpin. Returns true when it answered.
   */
  guardRequest(req: IncomingMessage, res: ServerResponse, ssl: boolean, next: () => void): boolean {
    // Hot path for every HTTP request: look for Content-Type without building objects.
    const raw = req.rawHeaders;
    let ct: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === 12 && n.toLowerCase() === 'content-type') {
        ct = raw[i + 1];
        break;
      }
    }
    if (ct === undefined || !isWebSocketEventsRequest([['Content-Type', ct]])) return false;
    const route = this.resolve(req, ssl, 'http');
    if (route?.targets[0]?.overHttp !== true) return false;
    const refuse = (): void => {
      const body = Buffer.from('Client not allowed to send WebSocket events directly.\n');
      res.writeHead(403, 'Forbidden', { 'Content-Type': 'text/plain', 'Content-Length': body.length });
      res.end(body);
    };
    const sig = req.headers['grip-sig'];
    if (typeof sig !== 'string' || this.o.config.proxy.upstreamKey.length === 0) {
      refuse();
      return true;
    }
    this.o.signers.isTrusted(sig).then((ok) => (ok ? next() : refuse()), refuse);
    return true;
  }

  private resolve(req: IncomingMessage, ssl: boolean, proto: 'http' | 'ws'): Route | undefined {
    const proxy = this.o.config.proxy;
    const host = hostForRouting(req.headers.host);
    const routeId = req.headers['pushpin-route'];
    return this.o.routes().resolve({
      host, path: req.url ?? '/', ssl, proto,
      ...(proxy.acceptPushpinRoute && typeof routeId === 'string' ? { routeId } : {}),
    });
  }

  private async handle(req: IncomingMessage, socket: Duplex, head: Buffer, listenerSsl: boolean): Promise<void> {
    const problem = handshakeProblem(req);
    if (problem !== undefined) {
      const extra: Array<[string, string]> = problem.status === 426 ? [['Sec-WebSocket-Version', '13']] : [];
      rejectHandshake(socket, problem.status, STATUS_CODES[problem.status] ?? '', [['Content-Type', 'text/plain'], ...extra], Buffer.from(problem.text + '\n'));
      return;
    }
    const proxy = this.o.config.proxy;
    const ssl = listenerSsl || (proxy.acceptXForwardedProtocol && isForwardedTls(req.rawHeaders));
    const route = this.resolve(req, ssl, 'ws');
    if (route === undefined) {
      const host = hostForRouting(req.headers.host);
      this.o.logger.warn({ host }, 'ws: no route for host');
      rejectText(socket, 502, textNoRoute(host));
      return;
    }
    const target = route.targets[0];
    if (target === undefined) {
      rejectText(socket, 502, TEXT_PROXY_ERROR);
      return;
    }
    const clientPath = req.url ?? '/';
    if (target.type === 'test') {
      let testPath = rewritePath(route, clientPath);
      const pathBeg = route.pathBeg;
      if (pathBeg !== undefined && pathBeg !== '') {
        // As for HTTP: the test handler sees the path relative to path_beg.
        const remove = pathBeg.endsWith('/') ? pathBeg.length - 1 : pathBeg.length;
        if (remove > 0) testPath = testPath.slice(remove) || '/';
      }
      this.acceptTest(req, socket, head, route, testPath);
      return;
    }
    if (target.type !== 'http') {
      this.o.logger.warn({ route: route.source, target: targetName(target) }, 'ws: WebSocket not supported for this target type');
      rejectText(socket, 502, TEXT_PROXY_ERROR);
      return;
    }
    const headers = this.backendHeaders(req, route, ssl);
    const path = rewritePath(route, clientPath);
    if (target.overHttp) await this.openOverHttp(req, socket, head, route, headers, path);
    else {
      startPassthrough({
        req, socket, head, route, path, headers, ssl,
        targets: route.targets.filter((t) => t.type === 'http'),
        sign: () => (route.noGrip ? undefined : this.o.signers.token(route)),
        logger: this.o.logger,
        timeoutMs: this.o.requestTimeoutMs,
        maxMessageBytes: this.o.maxMessageBytes ?? MAX_MESSAGE_BYTES,
        accept: (extraHeaders, protocol, cb) => this.accept(this.relay, req, socket, head, extraHeaders, protocol, cb),
        reject: (status, reason, hdrs, body) => rejectHandshake(socket, status, reason, hdrs, body),
        newSession: (client, cid) => this.newSession(client, cid, route),
      });
    }
  }

  /**
   * The client's handshake headers as every backend request repeats them: the proxy's
   * header rules, the WebSocket-over-HTTP sanitizing, then `Sec-WebSocket-Extensions:
   * grip`, a Grip-Sig slot and Grip-Feature, in Pushpin's order.
   */
  private backendHeaders(req: IncomingMessage, route: Route, ssl: boolean): Array<[string, string]> {
    const proxy = this.o.config.proxy;
    const gripMode = !route.noGrip;
    const clientAddress = clientAddressOf(req);
    const flat = buildBackendHeaders(req.rawHeaders, {
      trusted: false,
      addGripFeature: false,
      gripFeature: GRIP_FEATURE,
      routeHeaders: route.headers,
      origHeaders: route.origHeaders,
      origHeadersNeedMark: this.o.origHeadersNeedMark,
      acceptPushpinRoute: proxy.acceptPushpinRoute,
      acceptXForwardedProtocol: proxy.acceptXForwardedProtocol,
      setXForwardedProtocol: proxy.setXForwardedProtocol,
      https: ssl,
      xff: proxy.xForwardedFor,
      peerAddress: clientAddress,
      cdnLoop: proxy.cdnLoop,
      hostOverride: route.targets[0]?.hostHeader ?? route.asHost,
    });
    const pairs = sanitizeWsRequestHeaders(headerPairs(flat)).filter(([n]) => {
      const lc = n.toLowerCase();
      return lc !== 'sec-websocket-extensions' && lc !== 'grip-feature' && lc !== 'connection';
    });
    if (gripMode) {
      pairs.push(['Sec-WebSocket-Extensions', 'grip'], ['Grip-Sig', ''], ['Grip-Feature', GRIP_FEATURE]);
    }
    return pairs;
  }

  /** Completes the client's handshake with `extra` headers and `protocol`. */
  private accept(
    wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer,
    extra: Array<[string, string]>, protocol: string | undefined, cb: (ws: WebSocket) => void,
  ): void {
    if (socket.destroyed) return;
    this.pending.set(req, { headers: extra, protocol });
    wss.handleUpgrade(req, socket, head, (ws) => {
      this.pending.delete(req);
      cb(ws);
    });
  }

  private newSession(client: WebSocket, cid: string, route: Route): { session: WsSession; host: HoldHost } | undefined {
    const session = new WsSession(cid, client, route.prefix, this.o.logger);
    let host: HoldHost | undefined;
    try {
      host = this.o.hub.registerWs(session);
    } catch (err) {
      this.o.logger.warn({ cid, err: (err as Error).message }, 'ws: cannot register connection');
    }
    if (host === undefined) {
      session.closeClient(CLOSE_SHUTDOWN, '');
      return undefined;
    }
    return { session, host };
  }

  private acceptTest(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, path: string): void {
    const t = testWebSocket(path);
    if (t === undefined) {
      rejectHandshake(socket, 404, 'Not Found', [['Content-Type', 'text/plain']], Buffer.from('no such test resource\n'));
      return;
    }
    this.accept(this.autoPong, req, socket, head, [], undefined, (client) => {
      const made = this.newSession(client, randomUUID(), route);
      if (made === undefined) return;
      const { session, host } = made;
      session.attach(host);
      for (const ch of t.channels) session.subscribe(ch);
      client.on('message', (data, isBinary) => {
        const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        session.send(isBinary ? 'binary' : 'text', buf);
      });
      client.on('error', () => undefined);
      client.on('close', () => session.finish());
    });
  }

  private async openOverHttp(
    req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, headers: Array<[string, string]>, path: string,
  ): Promise<void> {
    const cid = randomUUID();
    let resp: WohResponse | undefined;
    let t: OverHttpTarget | undefined;
    let lastErr = '';
    for (const target of route.targets) {
      if (target.type !== 'http') continue;
      t = this.wohTarget(route, target, headers, path, cid);
      try {
        resp = await postEvents(t, [{ type: 'OPEN' }], [], 0);
        break;
      } catch (err) {
        lastErr = (err as Error).message;
        const code = (err as { code?: string }).code ?? '';
        // Only a target that was never reached is worth failing over from.
        if (!['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) break;
      }
    }
    if (resp === undefined || t === undefined) {
      this.o.logger.warn({ route: route.source, err: lastErr }, 'ws: over_http OPEN failed');
      rejectText(socket, 502, TEXT_PROXY_ERROR);
      return;
    }
    if (!isWebSocketEventsResponse(resp.status, resp.headers)) {
      // The backend refused the connection: the client gets its answer as the handshake's.
      const hdrs = resp.headers.filter(([n]) => !NOT_RELAYED_101.has(n.toLowerCase()));
      rejectHandshake(socket, resp.status, resp.reason, hdrs, resp.body.subarray(0, MAX_REJECT_BODY_BYTES));
      return;
    }
    let events: WsEvent[];
    try {
      events = decodeEvents(resp.body);
    } catch (err) {
      this.o.logger.warn({ route: route.source, err: err instanceof WsEventsError ? err.message : String(err) }, 'ws: malformed events answering OPEN');
      rejectText(socket, 502, TEXT_PROXY_ERROR);
      return;
    }
    const ka = parseKeepAliveInterval(resp.headers);
    if ((events.length === 0 && (ka === undefined || ka === null)) || (events.length > 0 && events[0]!.type !== 'OPEN')) {
      this.o.logger.warn({ route: route.source }, 'ws: backend answered OPEN without OPEN');
      rejectText(socket, 502, TEXT_PROXY_ERROR);
      return;
    }
    const grip = parseGripExtension(resp.headers.filter(([n]) => n.toLowerCase() === 'sec-websocket-extensions').map(([, v]) => v));
    const extra = stripWsResponseHeaders(resp.headers).filter(([n]) => !NOT_RELAYED_101.has(n.toLowerCase()));
    const protocol = selectedProtocol(resp.headers, [])?.protocol;
    const woh = t;
    const openResp = resp;
    if (socket.destroyed) {
      // The client left during OPEN: the backend accepted a connection that is already gone.
      postEvents(woh, [{ type: 'DISCONNECT' }], [], 0).catch(() => undefined);
      return;
    }
    this.accept(this.relay, req, socket, head, extra, protocol, (client) => {
      const made = this.newSession(client, cid, route);
      if (made === undefined) return;
      const { session, host } = made;
      const conn = new OverHttpConnection(woh, client, session, grip);
      session.attach(host, { refresh: () => conn.refresh(), closeBackend: () => conn.closeBackend(), recover: (ch, id) => conn.recover(ch, id) });
      for (const ch of route.targets[0]?.subscriptions ?? []) session.subscribe(ch);
      conn.start(openResp.headers, events.slice(1));
    });
  }

  private wohTarget(route: Route, target: Target, headers: Array<[string, string]>, path: string, cid: string): OverHttpTarget {
    return {
      pool: this.o.pools.forTarget(target),
      path,
      baseHeaders: headers,
      sign: () => (route.noGrip ? undefined : this.o.signers.token(route)),
      cid,
      oneEvent: target.oneEvent,
      requestTimeoutMs: this.o.requestTimeoutMs,
      logger: this.o.logger,
    };
  }
}
