/**
 * The client-facing half of gripd: the route table, the GRIP handler and the proxy with
 * its listeners. With workers=1 it runs in the one gripd process next to the publish
 * inputs; with workers=N each worker process runs one (node:cluster shares the ports).
 */
import type { Config } from '../config/types.js';
import { formatDiagnostic } from '../diagnostic.js';
import { Handler } from '../handler/index.js';
import { testHandler } from '../handler/test-handler.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { startProxy, type ProxyHandle } from '../proxy/index.js';
import type { BackendRequester } from '../proxy/types.js';
import { attachStatsHooks } from '../zmq/stats-hooks.js';
import { parseRoutesText, resolveRouteFiles, RouteTable, watchRoutesFile } from '../routes/index.js';

/** How long shutdown waits for in-flight proxied requests before closing them. */
export const SHUTDOWN_GRACE_MS = 5000;

export interface ClientSideOptions {
  config: Config;
  /** Routes given on the command line (--route); when present they replace the routes file. */
  routeLines?: string[];
  logger: Logger;
  /** Where the handler and proxy report domain events. */
  metrics: Metrics;
}

export interface ClientSide {
  handler: Handler;
  proxy: ProxyHandle;
  /** Ends held sessions as Pushpin does on shutdown, then closes the listeners. */
  stop(): Promise<void>;
  /** Re-reads the routes file (when it did not move) and the TLS certificates. */
  reload(config: Config): Promise<void>;
}

/** Loads the routes, starts the handler and the proxy. Rejects when a listener cannot be opened. */
export async function startClientSide(opts: ClientSideOptions): Promise<ClientSide> {
  const { config, logger, metrics } = opts;
  let table: RouteTable;
  let closeWatcher: (() => void) | undefined;
  let reloadRoutes: (() => Promise<void>) | undefined;

  if (opts.routeLines !== undefined) {
    table = await loadRouteLines(opts.routeLines.join('\n'), '--route', process.cwd(), logger);
  } else {
    const watched = await watchRoutesFile(config.proxy.routesFile, {
      logger,
      onUpdate(next) {
        table = next;
      },
    });
    table = watched.table;
    closeWatcher = () => watched.close();
    reloadRoutes = () => watched.reload();
  }

  // The handler needs the proxy's requester (for hints and next links) and the proxy
  // needs the handler as its acceptor; the late-bound requester breaks the cycle.
  let requester: BackendRequester | undefined;
  const handler = new Handler({
    config,
    logger,
    metrics,
    requester: {
      request(route, req, o) {
        if (requester === undefined) return Promise.reject(new Error('proxy not started'));
        return requester.request(route, req, o);
      },
    },
  });
  let proxy: ProxyHandle;
  try {
    proxy = await startProxy({ config, logger, routes: () => table, acceptor: handler, testHandler, metrics });
  } catch (err) {
    closeWatcher?.();
    throw err;
  }
  requester = proxy.requester;
  if (config.handler.statsSpec !== '') {
    // Connections and activity for the stats socket (sent only while someone listens).
    let idsOf: RouteTable | undefined;
    let hasIds = false;
    attachStatsHooks(proxy.servers, handler, (q) => table.resolve(q), () => {
      if (idsOf !== table) {
        idsOf = table;
        hasIds = table.routes.some((r) => r.idExplicit);
      }
      return hasIds;
    }, `gripd-proxy_${process.pid}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    handler,
    proxy,
    stop() {
      stopping ??= (async () => {
        closeWatcher?.();
        await handler.stop();
        await proxy.close(SHUTDOWN_GRACE_MS);
      })();
      return stopping;
    },
    async reload(next: Config) {
      if (reloadRoutes !== undefined && next.proxy.routesFile === config.proxy.routesFile) {
        // The watcher's rules apply: a file with no valid line keeps the running routes.
        await reloadRoutes();
      } else if (next.proxy.routesFile !== config.proxy.routesFile) {
        logger.warn('reload: a new routesfile takes effect on restart');
      }
      proxy.reloadTls();
    },
  };
}

/** Parses routes text, loads the key and certificate files it names, logs every diagnostic. */
async function loadRouteLines(text: string, display: string, baseDir: string, logger: Logger): Promise<RouteTable> {
  const parsed = parseRoutesText(text, display);
  const resolved = await resolveRouteFiles(parsed.routes, baseDir, display);
  for (const d of [...parsed.diagnostics, ...resolved.diagnostics]) {
    if (d.severity === 'error') logger.error(formatDiagnostic(d));
    else logger.warn(formatDiagnostic(d));
  }
  return new RouteTable(resolved.routes);
}
