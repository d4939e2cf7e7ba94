/**
 * Wires gripd's pieces together: routes, the GRIP handler, the client-facing proxy,
 * the HTTP publish API and the ZeroMQ sockets. The CLI (src/cli/gripd.ts) is the only
 * caller; it owns signals and exit codes.
 */
import type { Config } from './config/types.js';
import type { Logger } from './log/index.js';
import { formatDiagnostic } from './diagnostic.js';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseRoutesText, resolveRouteFiles, RouteTable, watchRoutesFile } from './routes/index.js';
import { Handler } from './handler/index.js';
import { testHandler } from './handler/test-handler.js';
import { startProxy } from './proxy/index.js';
import type { BackendRequester } from './proxy/types.js';
import type { PublishItem } from './grip/types.js';
import { startPublishApi } from './publish/http-api.js';
import { startPublishInputs } from './zmq/publish-input.js';
import { startCommandSocket } from './zmq/command.js';
import { startStats } from './zmq/stats-reporter.js';
import { NO_METRICS, PrometheusMetrics, startMetricsServer, type Metrics } from './metrics/index.js';

export interface StartOptions {
  config: Config;
  /** Routes given on the command line (--route); when present they replace the routes file. */
  routeLines?: string[];
  logger: Logger;
}

export interface GripdApp {
  /** Stops accepting, ends held sessions as Pushpin does on shutdown, closes every socket. */
  stop(): Promise<void>;
  /** Applies a re-read config: routes are re-read; listener and socket changes need a restart. */
  reload(config: Config): Promise<void>;
}

/** How long shutdown waits for in-flight proxied requests before closing them. */
const SHUTDOWN_GRACE_MS = 5000;

export async function startGripd(opts: StartOptions): Promise<GripdApp> {
  const { config, logger } = opts;
  let table: RouteTable;
  let closeWatcher: (() => void) | undefined;

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
  }

  // The handler needs the proxy's requester (for hints and next links) and the proxy
  // needs the handler as its acceptor; the late-bound requester breaks the cycle.
  // Prometheus counting only when an exporter is configured; otherwise metrics cost nothing.
  const hc = config.handler;
  const prometheus = hc.prometheusPort !== undefined ? new PrometheusMetrics(hc.prometheusPrefix) : undefined;
  const metrics: Metrics = prometheus ?? NO_METRICS;

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
  const proxy = await startProxy({ config, logger, routes: () => table, acceptor: handler, testHandler, metrics });
  requester = proxy.requester;
  const publishApi = await startPublishApi({ config, handler, logger, metrics });
  const zmqSink = {
    publish(items: PublishItem[]): void {
      metrics.itemsReceived('zmq', items.length);
      handler.publish(items);
    },
  };
  const commandTarget = {
    conncheck: (ids: string[]) => handler.conncheck(ids),
    recover: () => handler.recover(),
    refresh: (o: { cid?: string; channel?: string }) => handler.refresh(o),
    publish(items: PublishItem[]): void {
      metrics.itemsReceived('command', items.length);
      handler.publish(items);
    },
  };
  const zmqInputs = await startPublishInputs({ config, sink: zmqSink, subscriptions: handler, logger });
  const command = await startCommandSocket({ config, target: commandTarget, logger });
  const stats = await startStats({ config, handler, logger });
  const metricsServer = prometheus !== undefined && hc.prometheusPort !== undefined
    ? await startMetricsServer({ metrics: prometheus, host: hc.prometheusAddr, port: hc.prometheusPort })
    : undefined;

  const ports = config.runner.httpPorts.map((p) => `${p.host ?? '*'}:${p.port}`).join(',');
  logger.info(`gripd ready: clients on ${ports}, publish on ${config.handler.pushInHttpAddr}:${config.handler.pushInHttpPort}`);

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        closeWatcher?.();
        await Promise.allSettled([publishApi.close(), zmqInputs.close(), command.close(), stats.close(), metricsServer?.close()]);
        await handler.stop();
        await proxy.close(SHUTDOWN_GRACE_MS);
        logger.info('gripd stopped');
      })();
      return stopping;
    },
    async reload(next: Config) {
      if (opts.routeLines === undefined && next.proxy.routesFile === config.proxy.routesFile) {
        try {
          const file = next.proxy.routesFile;
          table = await loadRouteLines(await readFile(file, 'utf8'), file, path.dirname(file), logger);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'reload: cannot read routes file; keeping current routes');
        }
      } else if (next.proxy.routesFile !== config.proxy.routesFile) {
        logger.warn('reload: a new routesfile takes effect on restart');
      }
      proxy.reloadTls();
      logger.info('configuration reloaded');
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
