/**
 * Public surface of src/proxy: gripd's client listeners and the streaming reverse proxy
 * in front of the backends (Pushpin's condure + pushpin-proxy + zurl roles).
 */
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import type { RouteTable } from '../routes/table.js';
import { BackendPools, DEFAULT_POOL_TIMEOUTS, type PoolTimeouts } from './backend-pool.js';
import { Forwarder } from './forward.js';
import { startListeners } from './listeners.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { createRequester } from './requester.js';
import { SignerCache } from './signing.js';
import type { BackendRequester, GripAcceptor, RouteLookup, TestHandler } from './types.js';
import { isWsHub, WebSocketBridge } from '../websocket/upgrade.js';
import { BACKEND_HEADERS_TIMEOUT_MS } from './limits.js';

export type {
  BackendRequest, BackendResponse, BackendRequester, GripAcceptor, GripHandoff, RouteLookup, TestHandler, TestRequest,
} from './types.js';
export { buildBackendHeaders, isForwardedTls, ORIG_HEADER_PREFIX, type RequestHeaderOptions } from './request-headers.js';
export { filterResponseHeaders } from './response-headers.js';
export { TEXT_PROXY_ERROR, TEXT_PUSHPIN_CHECK, textNoRoute } from './replies.js';
export * from './limits.js';

export interface ProxyOptions {
  config: Config;
  logger: Logger;
  /** Current route table; called per request so reloads take effect at once. */
  routes: () => RouteTable | RouteLookup;
  /** The GRIP handler that takes over requests answered with GRIP instructions. */
  acceptor: GripAcceptor;
  /** The built-in handler for `test` targets. */
  testHandler: TestHandler;
  /** Backend timeouts (tests shorten them); defaults from limits.ts. */
  backendTimeouts?: Partial<PoolTimeouts>;
  /** Where requests, connections and backend latencies are reported (default: nowhere). */
  metrics?: Metrics;
}

export interface ProxyHandle {
  /** Sends stored requests to backends for the handler (retries, hints, links). */
  requester: BackendRequester;
  /**
   * Stops accepting connections, gives in-flight requests up to `graceMs` to finish,
   * then closes the remaining client and backend connections.
   */
  close(graceMs: number): Promise<void>;
  /** Re-reads the TLS certificates from the certs folder. */
  reloadTls(): void;
  /** Open client connections across all listeners. */
  connections(): number;
  /** Node servers of the listeners (for WebSocket upgrades in later capabilities). */
  servers: import('node:http').Server[];
}

/**
 * Starts the proxy: opens every configured listener (http_port, https_ports,
 * local_ports) and forwards requests per the route table. Rejects when a listener
 * cannot be opened (the message names the address).
 */
export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const { config, logger } = opts;
  const metrics = opts.metrics ?? NO_METRICS;
  const pools = new BackendPools({ ...DEFAULT_POOL_TIMEOUTS, ...opts.backendTimeouts });
  const signers = new SignerCache(config, logger);
  const forwarder = new Forwarder({
    config,
    logger,
    routes: opts.routes,
    acceptor: opts.acceptor,
    testHandler: opts.testHandler,
    pools,
    signers,
    origHeadersNeedMark: new Set(config.proxy.origHeadersNeedMark.map((h) => h.toLowerCase())),
    metrics,
  });
  // WebSockets (src/websocket): attached when the acceptor can register connections.
  const ws = isWsHub(opts.acceptor)
    ? new WebSocketBridge({
      config, logger, routes: opts.routes, hub: opts.acceptor, pools, signers,
      origHeadersNeedMark: new Set(config.proxy.origHeadersNeedMark.map((h) => h.toLowerCase())),
      requestTimeoutMs: opts.backendTimeouts?.headersMs ?? BACKEND_HEADERS_TIMEOUT_MS,
    })
    : undefined;
  const onRequest = ws === undefined
    ? (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, ssl: boolean) => forwarder.handle(req, res, ssl)
    : (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, ssl: boolean) => {
      if (!ws.guardRequest(req, res, ssl, () => forwarder.handle(req, res, ssl))) forwarder.handle(req, res, ssl);
    };
  const listeners = await startListeners(config, logger, onRequest, metrics);
  if (ws !== undefined) {
    listeners.servers.forEach((s, i) => ws.attach(s, i >= config.runner.httpPorts.length && i < config.runner.httpPorts.length + config.runner.httpsPorts.length));
  }
  const requester = createRequester({ pools, signers, testHandler: opts.testHandler, logger });
  return {
    requester,
    servers: listeners.servers,
    connections: listeners.connections,
    reloadTls: listeners.reloadTls,
    async close(graceMs: number): Promise<void> {
      await listeners.close(graceMs);
      await pools.close(graceMs);
    },
  };
}
