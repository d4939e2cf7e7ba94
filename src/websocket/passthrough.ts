/**
 * WebSocket pass-through (a route target without `over_http`): gripd opens a WebSocket
 * to the backend (ws:// or wss:// per the target's `ssl`), offering the GRIP extension,
 * and relays frames both ways with flow control. When the backend accepts the extension,
 * its `c:` messages are control messages, prefixed ones reach the client without the
 * prefix, and unprefixed ones are dropped, as Pushpin. The extension never reaches the
 * client.
 */
import { createHash, randomUUID } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import type { HoldHost } from '../handler/host.js';
import type { Logger } from '../log/index.js';
import { targetName } from '../proxy/backend-pool.js';
import type { Route, Target } from '../routes/types.js';
import { classifyBackendMessage, ControlMessageError, parseControlMessage, parseGripExtension } from './control.js';
import { MAX_REJECT_BODY_BYTES } from './events.js';
import type { WsSession } from './ws-session.js';

/**
 * Bytes queued toward one side before gripd stops reading the other side. Keeps a slow
 * reader from making gripd buffer without bound; reading resumes when the queue drains.
 */
export const PASSTHROUGH_HIGH_WATER_BYTES = 256 * 1024;

/** Close code sent to the client when its backend connection fails or vanishes. */
export const CLOSE_BACKEND_GONE = 1011;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Headers of a backend's 101 never relayed to the client. */
const NOT_RELAYED = new Set([
  'connection', 'upgrade', 'transfer-encoding', 'content-length', 'sec-websocket-accept', 'sec-websocket-extensions',
  'sec-websocket-protocol', 'keep-alive',
]);

const UNREACHED = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export interface PassthroughOptions {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  route: Route;
  /** Path and query for the backend. */
  path: string;
  /** Handshake headers for the backend; a `Grip-Sig` entry is filled by `sign()` or removed. */
  headers: Array<[string, string]>;
  ssl: boolean;
  /** http targets in failover order. */
  targets: Target[];
  sign: () => string | undefined;
  logger: Logger;
  /** Deadline for the backend's handshake answer, ms. */
  timeoutMs: number;
  maxMessageBytes: number;
  /** Completes the client's handshake with the backend's extra headers and subprotocol. */
  accept(extra: Array<[string, string]>, protocol: string | undefined, cb: (client: WebSocket) => void): void;
  /** Refuses the client's handshake with this answer. */
  reject(status: number, reason: string, headers: Array<[string, string]>, body: Buffer): void;
  newSession(client: WebSocket, cid: string): { session: WsSession; host: HoldHost } | undefined;
}

function toBuffer(d: RawData): Buffer {
  if (Buffer.isBuffer(d)) return d;
  if (Array.isArray(d)) return Buffer.concat(d);
  return Buffer.from(d);
}

function rawPairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Connects to the first reachable target and bridges the client to it. Never throws. */
export function startPassthrough(o: PassthroughOptions): void {
  const remaining = o.targets.slice();
  const key = o.req.headers['sec-websocket-key'] ?? '';
  const expectAccept = createHash('sha1').update(key + WS_GUID).digest('base64');
  const fail = (why: string): void => {
    o.logger.warn({ route: o.route.source, err: why }, 'ws: pass-through backend handshake failed');
    o.reject(502, 'Bad Gateway', [['Content-Type', 'text/plain']], Buffer.from('Error while proxying to origin.\n'));
  };

  const tryNext = (): void => {
    const target = remaining.shift();
    if (target === undefined) {
      fail('unable to connect to any targets');
      return;
    }
    const sig = o.sign();
    const headers: string[] = [];
    for (const [n, v] of o.headers) {
      const lc = n.toLowerCase();
      if (lc === 'grip-sig') {
        if (sig !== undefined) headers.push('Grip-Sig', sig);
        continue;
      }
      if (lc === 'sec-websocket-key' || lc === 'sec-websocket-version') continue;
      headers.push(n, v);
    }
    headers.push('Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', key, 'Sec-WebSocket-Version', '13');
    const host = target.host ?? '127.0.0.1';
    const mod = target.ssl ? https : http;
    const breq = mod.request({
      host, port: target.port ?? (target.ssl ? 443 : 80), method: 'GET', path: o.path, headers,
      setHost: false, timeout: o.timeoutMs,
      ...(target.ssl ? { rejectUnauthorized: !target.insecure, servername: (target.hostHeader ?? host).replace(/:\d+$/, '') } : {}),
    });
    let settled = false;
    breq.on('timeout', () => breq.destroy(new Error(`backend ${targetName(target)} did not answer the handshake in time`)));
    breq.on('error', (err: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      if (UNREACHED.has(err.code ?? '')) tryNext();
      else fail(err.message);
    });
    breq.on('response', (res) => {
      // Not upgraded: relay the refusal as the client's handshake answer.
      settled = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_REJECT_BODY_BYTES) chunks.push(c.subarray(0, MAX_REJECT_BODY_BYTES - size));
        size += c.length;
      });
      res.on('error', () => undefined);
      res.on('end', () => {
        const hdrs = rawPairs(res.rawHeaders).filter(([n]) => !NOT_RELAYED.has(n.toLowerCase()));
        o.reject(res.statusCode ?? 502, res.statusMessage ?? '', hdrs, Buffer.concat(chunks));
      });
    });
    breq.on('upgrade', (res, bsock: Socket, bhead: Buffer) => {
      settled = true;
      bsock.on('error', () => undefined);
      if (res.headers['sec-websocket-accept'] !== expectAccept) {
        bsock.destroy();
        fail('invalid Sec-WebSocket-Accept from backend');
        return;
      }
      if (o.socket.destroyed) {
        bsock.destroy();
        return;
      }
      const grip = parseGripExtension(res.headers['sec-websocket-extensions']);
      const protoHeader = res.headers['sec-websocket-protocol'];
      const protocol = typeof protoHeader === 'string' && protoHeader.trim() !== '' ? protoHeader.trim() : undefined;
      const extra = rawPairs(res.rawHeaders).filter(([n]) => !NOT_RELAYED.has(n.toLowerCase()));
      // ws builds client-side sockets only from a URL; this one already did its handshake.
      const Ctor = WebSocket as unknown as new (address: null, protocols: undefined, options: object) => WebSocket;
      const backend = new Ctor(null, undefined, { autoPong: false });
      (backend as unknown as { _isServer: boolean })._isServer = false;
      (backend as unknown as { setSocket(s: Socket, h: Buffer, opts: object): void }).setSocket(bsock, bhead, {
        maxPayload: o.maxMessageBytes, allowSynchronousEvents: true, skipUTF8Validation: false,
      });
      o.accept(extra, protocol, (client) => bridge(o, client, backend, bsock, grip));
    });
    breq.end();
  };
  tryNext();
}

function bridge(
  o: PassthroughOptions, client: WebSocket, backend: WebSocket, bsock: Socket,
  grip: ReturnType<typeof parseGripExtension>,
): void {
  const made = o.newSession(client, randomUUID());
  if (made === undefined) {
    backend.close(1001);
    return;
  }
  const { session, host } = made;
  const csock = session.socket;
  let clientGone = false;
  let backendGone = false;
  session.attach(host, {
    closeBackend: () => {
      if (!backendGone && backend.readyState === WebSocket.OPEN) backend.close();
    },
  });

  // Flow control: stop reading one side while the other side's socket is backed up.
  const throttle = (to: Socket | null, from: WebSocket): void => {
    if (to === null || to.writableLength < PASSTHROUGH_HIGH_WATER_BYTES || (from as unknown as { _paused: boolean })._paused) return;
    from.pause();
    to.once('drain', () => from.resume());
  };

  client.on('message', (data, isBinary) => {
    if (session.detached || backendGone) return;
    backend.send(toBuffer(data), { binary: isBinary });
    throttle(bsock, client);
  });
  client.on('ping', (d) => {
    if (!session.detached && !backendGone) backend.ping(d);
  });
  client.on('pong', (d) => {
    if (!session.detached && !backendGone) backend.pong(d);
  });
  client.on('error', (err) => o.logger.debug({ err: err.message }, 'ws: client protocol error'));
  client.on('close', (code, reason) => {
    clientGone = true;
    session.finish();
    if (backendGone || backend.readyState !== WebSocket.OPEN) return;
    const closeFrameReceived = (client as unknown as { _closeFrameReceived: boolean })._closeFrameReceived;
    if (!closeFrameReceived) backend.terminate();
    else if (code === 1005) backend.close();
    else backend.close(code, reason);
  });

  backend.on('message', (data, isBinary) => {
    if (clientGone) return;
    const content = toBuffer(data);
    const type = isBinary ? 'binary' : 'text';
    const a = classifyBackendMessage(type, content, grip);
    if (a.action === 'forward') {
      session.send(type, a.content);
      throttle(csock, backend);
    } else if (a.action === 'control') {
      try {
        session.applyControl(parseControlMessage(a.json));
      } catch (err) {
        if (err instanceof ControlMessageError && err.code === 'CONTROL_TOO_MANY_FILTERS') {
          o.logger.warn({ cid: session.cid, err: err.message }, 'ws: control message error; closing');
          session.closeClient(CLOSE_BACKEND_GONE, 'backend error');
          backend.terminate();
          return;
        }
        o.logger.warn({ cid: session.cid, err: (err as Error).message }, 'ws: control message ignored');
      }
    }
  });
  backend.on('ping', (d) => session.send('ping', d));
  backend.on('pong', (d) => session.send('pong', d));
  backend.on('error', (err) => o.logger.debug({ err: err.message }, 'ws: backend protocol error'));
  backend.on('close', (code, reason) => {
    backendGone = true;
    if (clientGone || session.detached) return;
    const closeFrameReceived = (backend as unknown as { _closeFrameReceived: boolean })._closeFrameReceived;
    if (!closeFrameReceived) session.closeClient(CLOSE_BACKEND_GONE, 'backend gone');
    else session.closeClient(code === 1005 ? undefined : code, reason.toString());
  });
}
