/**
 * Client listeners: plain HTTP on http_port(s), HTTPS on https_ports with per-SNI
 * certificates, and HTTP over Unix sockets on local_ports. Enforces client_buffer_size
 * (header block size), client_maxconn (across all listeners) and the header timeout.
 */
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import { chmodSync, existsSync, lstatSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { Socket } from 'node:net';
import type { Config, ListenAddress } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { CertStore } from './tls-certs.js';
import {
  CERT_RELOAD_DEBOUNCE_MS, CLIENT_HEADERS_TIMEOUT_MS, CLIENT_KEEP_ALIVE_TIMEOUT_MS, CLIENT_TIMEOUT_CHECK_INTERVAL_MS, MAX_CLIENT_HEADERS,
} from './limits.js';

/** Shortest interval between two "connection refused: client_maxconn" warnings. */
const MAXCONN_WARN_INTERVAL_MS = 5_000;

export type RequestCallback = (req: IncomingMessage, res: ServerResponse, ssl: boolean) => void;

export interface Listeners {
  /** Every server, for later capabilities (e.g. WebSocket upgrades). */
  servers: http.Server[];
  /** Open client connections across all listeners. */
  connections(): number;
  /** Re-reads certificates (SNI and default). */
  reloadTls(): void;
  /** Stops accepting; waits up to `graceMs` for in-flight requests, then closes the rest. */
  close(graceMs: number): Promise<void>;
}

function describe(a: ListenAddress | string): string {
  return typeof a === 'string' ? a : `${a.host === undefined || a.host === '' ? '*' : a.host}:${a.port}`;
}

/** True when a header block carries more than one Host header (rawHeaders: name, value, ...). */
export function hasDuplicateHost(raw: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** The parts of node:http's per-connection parser that releaseHttpParser touches. */
interface NodeHttpParser {
  incoming?: unknown;
  _consumed?: boolean;
  unconsume?: () => void;
}

/** node:http's own parser release (the one it runs on Upgrade); undefined if Node stops exporting it. */
const freeParser = (createRequire(import.meta.url)('_http_common') as { freeParser?: unknown }).freeParser as
  ((parser: NodeHttpParser, req: IncomingMessage | null, socket: Socket) => void) | undefined;

/**
 * Sockets handed over by releaseHttpParser and still open. node:http's connection list
 * (closeAllConnections) no longer sees them, so close() ends them itself after the grace.
 */
const releasedSockets = new Set<Socket>();

// Shared listeners (no per-connection closures) for a released socket.
function forgetReleased(this: Socket): void {
  releasedSockets.delete(this);
}
function discardInput(): void {
  // A held stream reads nothing more from its client.
}
function endOnClientEnd(this: Socket): void {
  // As node:http does on a client FIN (without httpAllowHalfOpen): finish our side too.
  this.end();
}
function destroyOnError(this: Socket): void {
  this.destroy();
}

/** node:http's per-connection listeners (named functions or `bound` ones) that go with the parser. */
const PARSER_LISTENERS: ReadonlyArray<[event: string, name: string]> = [
  ['data', 'bound socketOnData'], ['end', 'bound socketOnEnd'], ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'], ['error', 'socketOnError'], ['resume', 'onSocketResume'], ['pause', 'onSocketPause'],
];

/**
 * Detaches a client connection from node:http once gripd writes to it directly for the
 * rest of its life (a raw-written stream hold): frees the HTTP parser (native state of
 * about 2 KB) and node:http's per-connection listeners and closures, as node:http itself
 * does on an Upgrade. Afterwards the socket's input is discarded, a client FIN ends the
 * connection, an error destroys it, and `res` still emits 'close' when the socket closes
 * (its socket stays assigned, nothing more may be written through it).
 *
 * Only done when it is safe: `req` is the request the parser last read, complete (no body
 * still arriving, no pipelined request started), and `res` owns the socket. Returns false
 * (changing nothing) otherwise, or when this Node version's internals do not look as
 * expected. Trusts that the caller never writes through `res` again.
 */
export function releaseHttpParser(req: IncomingMessage, res: ServerResponse): boolean {
  const socket = res.socket;
  if (freeParser === undefined || socket === null || socket.destroyed) return false;
  const s = socket as Socket & { parser?: NodeHttpParser | null; _httpMessage?: unknown };
  const parser = s.parser;
  if (parser === undefined || parser === null || parser.incoming !== req || !req.complete || s._httpMessage !== res) return false;
  const found: Array<[string, (...args: unknown[]) => void]> = [];
  for (const [event, name] of PARSER_LISTENERS) {
    const fn = s.listeners(event).find((l) => l.name === name);
    if (fn !== undefined) found.push([event, fn as (...args: unknown[]) => void]);
    else if (event !== 'resume' && event !== 'pause') return false;
  }
  for (const [event, fn] of found) s.removeListener(event, fn);
  if (parser._consumed === true) parser.unconsume?.();
  parser._consumed = false;
  freeParser(parser, req, s);
  // node:http wraps these three while a parser is attached (they unconsume it).
  s.on = Socket.prototype.on;
  s.addListener = Socket.prototype.addListener;
  s.prependListener = Socket.prototype.prependListener;
  s.on('data', discardInput);
  s.on('end', endOnClientEnd);
  s.on('error', destroyOnError);
  s.once('close', forgetReleased);
  releasedSockets.add(s);
  s.resume();
  // What is left of node:http's per-connection state is only reachable through these.
  const r = res as ServerResponse & { _onPendingData?: unknown };
  r._onPendingData = discardInput;
  for (const l of res.listeners('finish')) if (l.name === 'bound resOnFinish') res.removeListener('finish', l as () => void);
  return true;
}

/** Replies to requests Node's parser rejects, without reaching the proxy. */
function onClientError(logger: Logger) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    if (logger.isLevelEnabled('debug')) logger.debug({ err: err.message, code: err.code }, 'proxy: bad client request');
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
      : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    // A client that doesn't read its answer must not hold the socket open.
    setTimeout(() => socket.destroy(), 1000).unref();
  };
}

/** Starts every configured listener; rejects naming the address that failed. */
export async function startListeners(
  config: Config,
  logger: Logger,
  onRequest: RequestCallback,
  metrics: Metrics = NO_METRICS,
): Promise<Listeners> {
  const runner = config.runner;
  const servers: http.Server[] = [];
  const certs = new CertStore(runner.certsDir, logger);
  const tlsServers: Array<{ server: https.Server; port: number }> = [];
  let open = 0;
  let dropped = 0;
  let lastWarn = 0;

  const serverOptions: http.ServerOptions = {
    maxHeaderSize: runner.clientBufferSize,
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    keepAlive: true,
    noDelay: true,
    headersTimeout: CLIENT_HEADERS_TIMEOUT_MS,
    // Uploads and downloads may stream for a long time; only the header phase is capped.
    requestTimeout: 0,
    keepAliveTimeout: CLIENT_KEEP_ALIVE_TIMEOUT_MS,
    connectionsCheckingInterval: CLIENT_TIMEOUT_CHECK_INTERVAL_MS,
  };

  const track = (socket: Socket): void => {
    if (open >= runner.clientMaxconn) {
      dropped++;
      socket.destroy();
      const now = Date.now();
      if (now - lastWarn >= MAXCONN_WARN_INTERVAL_MS) {
        lastWarn = now;
        logger.warn({ max: runner.clientMaxconn, dropped }, 'proxy: client_maxconn reached; refusing connections');
        dropped = 0;
      }
      return;
    }
    open++;
    metrics.connectionChange(1);
    socket.once('close', () => {
      open--;
      metrics.connectionChange(-1);
    });
  };

  const setup = (server: http.Server, ssl: boolean): void => {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      metrics.requestReceived();
      const tooMany = req.rawHeaders.length > 2 * MAX_CLIENT_HEADERS;
      if (tooMany || hasDuplicateHost(req.rawHeaders)) {
        // RFC 9112 3.2: two Host headers make the target ambiguous (gripd could route on
        // one while the backend reads the other), so the request is refused outright.
        if (logger.isLevelEnabled('debug')) {
          logger.debug(tooMany ? `proxy: bad client request: more than ${MAX_CLIENT_HEADERS} headers` : 'proxy: bad client request: more than one Host header');
        }
        res.shouldKeepAlive = false;
        res.writeHead(400, 'Bad Request', { 'Content-Length': 0, Connection: 'close' });
        res.end();
        req.resume();
        return;
      }
      onRequest(req, res, ssl);
    });
    server.on('clientError', onClientError(logger));
    server.on('connection', track);
    if (ssl) {
      server.on('tlsClientError', (err: Error) => {
        if (logger.isLevelEnabled('debug')) logger.debug({ err: err.message }, 'proxy: TLS handshake failed');
      });
    }
    servers.push(server);
  };

  const listen = (server: http.Server, where: ListenAddress | string): Promise<void> =>
    new Promise((resolve, reject) => {
      const onErr = (err: Error): void => reject(new Error(`cannot listen on ${describe(where)}: ${err.message}`));
      server.once('error', onErr);
      const done = (): void => {
        server.off('error', onErr);
        server.on('error', (err) => logger.error({ err: err.message, listener: describe(where) }, 'proxy: listener error'));
        resolve();
      };
      if (typeof where === 'string') server.listen(where, done);
      else if (where.host === undefined || where.host === '') server.listen(where.port, done);
      else server.listen(where.port, where.host, done);
    });

  try {
    for (const addr of runner.httpPorts) {
      const server = http.createServer(serverOptions);
      setup(server, false);
      await listen(server, addr);
    }
    for (const addr of runner.httpsPorts) {
      const port = addr.port;
      const def = certs.readFiles(`default_${port}`);
      const server = https.createServer({
        ...serverOptions,
        ...(def ?? {}),
        SNICallback: (name, cb) => {
          const ctx = certs.lookup(name, port);
          if (ctx === undefined) cb(new Error(`no certificate for ${name}`));
          else cb(null, ctx);
        },
      });
      setup(server, true);
      tlsServers.push({ server, port });
      await listen(server, addr);
    }
    const locals = runner.localListeners ?? runner.localPorts.map((path) => ({ path, mode: undefined }));
    for (const { path: file, mode } of locals) {
      // A socket file left by a previous run would make listen fail with EADDRINUSE. In a
      // cluster worker the primary owns the file (src/cluster removes a stale one before
      // forking): unlinking it here would cut off the workers already listening on it.
      if (!cluster.isWorker && existsSync(file) && lstatSync(file).isSocket()) unlinkSync(file);
      const server = http.createServer(serverOptions);
      setup(server, false);
      await listen(server, file);
      if (mode !== undefined) chmodSync(file, mode);
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }

  const reloadTls = (): void => {
    certs.reload();
    for (const { server, port } of tlsServers) {
      const def = certs.readFiles(`default_${port}`);
      if (def === undefined) continue;
      try {
        server.setSecureContext(def);
      } catch (err) {
        logger.warn({ err: (err as Error).message, cert: `default_${port}` }, 'proxy: invalid default certificate');
      }
    }
    logger.debug('proxy: TLS certificates reloaded');
  };

  let watcher: FSWatcher | undefined;
  if (tlsServers.length > 0) {
    let timer: NodeJS.Timeout | undefined;
    try {
      watcher = watch(runner.certsDir, () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => { timer = undefined; reloadTls(); }, CERT_RELOAD_DEBOUNCE_MS);
        timer.unref();
      });
      watcher.on('error', () => undefined);
    } catch (err) {
      logger.warn({ dir: runner.certsDir, err: (err as Error).message }, 'proxy: cannot watch certificate folder; reload on SIGHUP only');
    }
  }

  return {
    servers,
    connections: () => open,
    reloadTls,
    async close(graceMs: number): Promise<void> {
      watcher?.close();
      const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of servers) s.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of servers) s.closeAllConnections();
        for (const sock of [...releasedSockets]) {
          if (servers.includes((sock as Socket & { server?: unknown }).server as http.Server)) sock.destroy();
        }
      }, graceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
    },
  };
}
