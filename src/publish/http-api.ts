/**
 * The HTTP publish API (Pushpin's control server on push_in_http_addr:push_in_http_port):
 * `POST /publish` with `{"items": [...]}`, `POST /recover`, and `GET /` saying hello.
 * Answers byte for byte as Pushpin 1.36 does: every reply closes the connection, status
 * texts end with a newline, and `Accept` picks text/plain or JSON bodies.
 *
 * Requests are parsed here (not by node:http) because Pushpin's small server answers
 * malformed requests in its own way (411 without Content-Length, 400 for a body over the
 * limit) and clients may depend on those texts.
 */
import net from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { Config } from '../config/types.js';
import type { PublishItem } from '../grip/types.js';
import type { Logger } from '../log/index.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { parsePublishBody, PublishError } from './item.js';

/** What the API needs from the handler. */
export interface PublishTarget {
  /**
   * Delivers a validated batch. When `acceptsConnectionItems` is true the batch may hold
   * gripd per-connection items (`connectionId` set) the target must route itself.
   */
  publish(items: PublishItem[]): void;
  recover(): void;
  /**
   * gripd extension: true when `publish` takes per-connection items (`connection-id`
   * instead of `channel`); otherwise such items are refused with 400 as in Pushpin.
   */
  readonly acceptsConnectionItems?: boolean;
}

export interface PublishApiOptions {
  config: Config;
  handler: PublishTarget;
  logger: Logger;
  /** Counts accepted items (source 'http'); default counts nothing. */
  metrics?: Metrics;
}

export interface PublishApi {
  /** Port actually bound (useful with port 0). */
  port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Connections served at once; more are closed on accept. Protects file descriptors and
 * memory from a flood of idle publishers (Pushpin's control server has a similar cap).
 */
export const PUBLISH_API_MAX_CONNECTIONS = 1000;
/** A request must arrive completely within this time, else the connection is closed (slowloris guard). */
export const PUBLISH_API_REQUEST_TIMEOUT_MS = 30_000;

interface ParsedRequest {
  method: string;
  uri: string;
  http10: boolean;
  headers: Array<[string, string]>;
  body: Buffer;
}

function header(headers: Array<[string, string]>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

function hasHeader(headers: Array<[string, string]>, name: string): boolean {
  return header(headers, name) !== undefined;
}

/** Formats a complete reply the way Pushpin's control server does. */
export function formatReply(http10: boolean, code: number, reason: string, headers: Array<[string, string]>, body: string): Buffer {
  const b = Buffer.from(body, 'utf8');
  let s = `HTTP/${http10 ? '1.0' : '1.1'} ${code} ${reason}\r\n`;
  for (const [n, v] of headers) {
    const l = n.toLowerCase();
    if (l === 'connection' || l === 'transfer-encoding' || l === 'content-length') continue;
    s += `${n}: ${v}\r\n`;
  }
  s += `Connection: close\r\nContent-Length: ${b.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(s, 'latin1'), b]);
}

/** Parses the request line and header lines; null when Pushpin would say it failed. */
function parseHead(data: Buffer): Omit<ParsedRequest, 'body'> | null {
  const lines = data.toString('latin1').split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const first = lines[0];
  if (first === undefined) return null;
  const sp1 = first.indexOf(' ');
  if (sp1 <= 0) return null;
  const sp2 = first.indexOf(' ', sp1 + 1);
  if (sp2 === -1) return null;
  const method = first.slice(0, sp1);
  const uri = first.slice(sp1 + 1, sp2);
  const http10 = first.slice(sp2 + 1) === 'HTTP/1.0';
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c === -1) continue;
    let at = c + 1;
    if (line[at] === ' ') at++;
    headers.push([line.slice(0, c), line.slice(at)]);
  }
  return { method, uri, http10, headers };
}

/** Media type Pushpin picks from Accept: the last acceptable entry wins; undefined = none acceptable. */
export function pickContentType(accept: string[] | undefined): 'text/plain' | 'application/json' | undefined {
  if (accept === undefined) return 'text/plain';
  let out: 'text/plain' | 'application/json' | undefined;
  for (const value of accept) {
    for (const part of value.split(',')) {
      const type = (part.split(';')[0] ?? '').trim();
      if (type === '') continue;
      if (type === 'text/plain' || type === 'text/*' || type === '*/*' || type === '*') out = 'text/plain';
      else if (type === 'application/json' || type === 'application/*') out = 'application/json';
    }
  }
  return out;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  // Hash first so lengths never leak through timing or make timingSafeEqual throw.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** Checks the optional publisher credentials. */
async function isAuthorized(headers: Array<[string, string]>, key: Uint8Array): Promise<boolean> {
  const auth = header(headers, 'Authorization');
  if (auth === undefined) return false;
  const m = /^(\S+)\s+(.+)$/.exec(auth.trim());
  if (m === null) return false;
  const scheme = m[1]!.toLowerCase();
  const cred = m[2]!;
  if (scheme === 'bearer') {
    try {
      await jwtVerify(cred, key, { algorithms: ['HS256', 'HS384', 'HS512'] });
      return true;
    } catch {
      return false;
    }
  }
  if (scheme === 'basic') {
    const decoded = Buffer.from(cred, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const pass = colon >= 0 ? decoded.slice(colon + 1) : decoded;
    return constantTimeEqual(Buffer.from(pass, 'utf8'), key);
  }
  return false;
}

/**
 * Starts the publish API. Resolves once listening; rejects if the address cannot be bound.
 * A rejected batch publishes nothing; an accepted one is answered first, then published.
 */
export async function startPublishApi(opts: PublishApiOptions): Promise<PublishApi> {
  const { config, handler, logger } = opts;
  const metrics = opts.metrics ?? NO_METRICS;
  const hc = config.handler;
  const headersMax = hc.pushInHttpMaxHeadersSize;
  const bodyMax = hc.pushInHttpMaxBodySize;
  const key = hc.publishKey !== undefined && hc.publishKey.length > 0 ? hc.publishKey : undefined;
  const sockets = new Set<net.Socket>();

  function serve(sock: net.Socket): void {
    if (sockets.size >= PUBLISH_API_MAX_CONNECTIONS) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    // A total deadline, not an idle timeout: a client trickling a byte now and then must
    // not keep one of the PUBLISH_API_MAX_CONNECTIONS slots forever (slowloris).
    const deadline = setTimeout(() => sock.destroy(), PUBLISH_API_REQUEST_TIMEOUT_MS);
    deadline.unref();
    sock.on('close', () => { clearTimeout(deadline); sockets.delete(sock); });
    sock.on('error', () => sock.destroy());
    let state: 'head' | 'body' | 'done' = 'head';
    let buf: Buffer = Buffer.alloc(0);
    let head: Omit<ParsedRequest, 'body'> | null = null;
    let contentLength = 0;
    let bodyParts: Buffer[] = [];
    let bodyLen = 0;

    const reply = (http10: boolean, code: number, reason: string, body: string, contentType = 'text/plain', extra: Array<[string, string]> = [], items?: number): void => {
      if (state === 'done') return;
      state = 'done';
      sock.removeAllListeners('data');
      sock.end(formatReply(http10, code, reason, [...extra, ['Content-Type', contentType]], body));
      logger.debug(`control: ${head?.method ?? '-'} ${head?.uri ?? '-'} code=${code} ${Buffer.byteLength(body)}${items !== undefined ? ` items=${items}` : ''}`);
    };

    const onData = (chunk: Buffer): void => {
      if (state === 'head') {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        // Pushpin reads at most headersMax bytes while looking for the end of the head.
        const scan = buf.length > headersMax ? buf.subarray(0, headersMax) : buf;
        let end = -1;
        let next = 0;
        for (let n = 0; n < scan.length; n++) {
          if (scan[n] === 0x0a && scan[n + 1] === 0x0a && n + 1 < scan.length) {
            end = n + 1;
            next = n + 2;
            break;
          }
          if (scan[n] === 0x0a && scan[n + 1] === 0x0d && scan[n + 2] === 0x0a && n + 2 < scan.length) {
            end = n + 1;
            next = n + 3;
            break;
          }
        }
        if (end === -1) {
          if (scan.length >= headersMax) reply(false, 400, 'Bad Request', 'Request header too large.\n');
          return;
        }
        head = parseHead(buf.subarray(0, end));
        const rest = buf.subarray(next);
        buf = Buffer.alloc(0);
        if (head === null) {
          reply(false, 400, 'Bad Request', 'Failed to parse request header.\n');
          return;
        }
        const h = head;
        const assumesBody = !['HEAD', 'GET', 'DELETE', 'OPTIONS'].includes(h.method);
        const cl = header(h.headers, 'Content-Length');
        if (cl === undefined && (hasHeader(h.headers, 'Transfer-Encoding') || assumesBody)) {
          reply(h.http10, 411, 'Length Required', 'Request requires Content-Length.\n');
          return;
        }
        if (cl !== undefined) {
          if (!/^[+-]?\d{1,10}$/.test(cl) || Number(cl) > 2 ** 31 - 1) {
            reply(h.http10, 400, 'Bad Request', 'Bad Content-Length.\n');
            return;
          }
          contentLength = Number(cl);
          if (contentLength > bodyMax) {
            reply(h.http10, 400, 'Bad Request', 'Request body too large.\n');
            return;
          }
          if (header(h.headers, 'Expect') === '100-continue') sock.write(`HTTP/${h.http10 ? '1.0' : '1.1'} 100 Continue\r\n\r\n`);
          state = 'body';
          chunk = rest;
        } else {
          // No body expected: anything after the head is ignored, as Pushpin does.
          sock.removeListener('data', onData);
          void respond({ ...h, body: Buffer.alloc(0) });
          return;
        }
      }
      if (state === 'body') {
        if (chunk.length > 0) {
          bodyParts.push(chunk);
          bodyLen += chunk.length;
        }
        if (bodyLen > contentLength) {
          reply(head!.http10, 400, 'Bad Request', 'Request body exceeded Content-Length.\n');
          return;
        }
        if (bodyLen === contentLength) {
          const body = Buffer.concat(bodyParts);
          bodyParts = [];
          sock.removeListener('data', onData);
          void respond({ ...head!, body });
        }
      }
    };

    const respond = async (req: ParsedRequest): Promise<void> => {
      try {
        if (key !== undefined && !(await isAuthorized(req.headers, key))) {
          reply(req.http10, 401, 'Unauthorized', 'Unauthorized.\n', 'text/plain', [['WWW-Authenticate', 'Bearer realm="gripd"']]);
          return;
        }
        let path = req.uri;
        if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
        const accept = req.headers.filter(([n]) => n.toLowerCase() === 'accept').map(([, v]) => v);
        const type = pickContentType(accept.length > 0 ? accept : undefined);
        if (type === undefined) {
          reply(req.http10, 406, 'Not Acceptable', 'Not Acceptable. Supported formats are text/plain and application/json.\n');
          return;
        }
        const message = (text: string): string => (type === 'application/json' ? JSON.stringify({ message: text }) + '\n' : text + '\n');
        const notAllowed = (): void => reply(req.http10, 405, 'Method Not Allowed', `Method not allowed: ${req.method}.\n`, 'text/plain', [['Allow', 'POST']]);
        if (path === '/') {
          reply(req.http10, 200, 'OK', 'Pushpin API\n');
        } else if (path === '/publish') {
          if (req.method !== 'POST') {
            notAllowed();
            return;
          }
          let items: PublishItem[];
          try {
            items = parsePublishBody(req.body, header(req.headers, 'Content-Type'), { connectionIds: handler.acceptsConnectionItems === true });
          } catch (err) {
            if (err instanceof PublishError) {
              const text = err.message.endsWith('\n') ? err.message : err.message + '\n';
              reply(req.http10, 400, 'Bad Request', text);
              return;
            }
            throw err;
          }
          reply(req.http10, 200, 'OK', message('Published'), type, [], items.length);
          metrics.itemsReceived('http', items.length);
          handler.publish(items);
        } else if (path === '/recover') {
          if (req.method !== 'POST') {
            notAllowed();
            return;
          }
          reply(req.http10, 200, 'OK', message('Updated'), type);
          handler.recover();
        } else {
          reply(req.http10, 404, 'Not Found', 'Not Found\n');
        }
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'publish api: request failed');
        reply(req.http10, 500, 'Internal Server Error', 'Internal Server Error\n');
      }
    };

    sock.on('data', onData);
  }

  const server = net.createServer(serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(hc.pushInHttpPort, hc.pushInHttpAddr || undefined, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err: err.message }, 'publish api: server error'));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : hc.pushInHttpPort;
  logger.debug({ port }, 'publish api listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
