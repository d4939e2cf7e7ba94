/**
 * Wires gripd's pieces together: routes, the GRIP handler, the client-facing proxy,
 * the HTTP publish API and the ZeroMQ sockets. The CLI (src/cli/gripd.ts) is the only
 * caller; it owns signals and exit codes.
 *
 * With `[proxy] workers=1` everything runs in this process. With workers=N (N > 1) this
 * process becomes the primary: it runs the publish inputs and forks N workers that run
 * the client side (see src/cluster/primary.ts and docs/performance.md, "Workers").
 */
import type { Config } from './config/types.js';
import type { Logger } from './log/index.js';
import { NO_METRICS, PrometheusMetrics, startMetricsServer, type Metrics } from './metrics/index.js';
import { startClientSide } from './cluster/client-side.js';
import { startPublishSide } from './cluster/publish-side.js';
import type { WorkerLogOptions } from './cluster/protocol.js';

export interface StartOptions {
  config: Config;
  /** Routes given on the command line (--route); when present they replace the routes file. */
  routeLines?: string[];
  logger: Logger;
  /**
   * How the CLI built `logger`, so worker processes (workers > 1) can log the same way.
   * Default: text lines on standard output at the config's log level.
   */
  log?: Partial<WorkerLogOptions>;
}

export interface GripdApp {
  /** Stops accepting, ends held sessions as Pushpin does on shutdown, closes every socket. */
  stop(): Promise<void>;
  /** Applies a re-read config: routes are re-read; listener and socket changes need a restart. */
  reload(config: Config): Promise<void>;
}

export async function startGripd(opts: StartOptions): Promise<GripdApp> {
  if (opts.config.proxy.workers > 1) {
    const { startPrimary } = await import('./cluster/primary.js');
    return startPrimary(opts);
  }
  return startSingle(opts);
}

/** workers=1: one process holds the clients and runs the publish inputs. */
async function startSingle(opts: StartOptions): Promise<GripdApp> {
  const { config, logger } = opts;
  // Prometheus counting only when an exporter is configured; otherwise metrics cost nothing.
  const hc = config.handler;
  const prometheus = hc.prometheusPort !== undefined ? new PrometheusMetrics(hc.prometheusPrefix) : undefined;
  const metrics: Metrics = prometheus ?? NO_METRICS;

  const client = await startClientSide({ config, ...(opts.routeLines ? { routeLines: opts.routeLines } : {}), logger, metrics });
  const { handler } = client;
  const publish = await startPublishSide({ config, logger, metrics, target: handler, subscriptions: handler, stats: handler });
  const metricsServer = prometheus !== undefined && hc.prometheusPort !== undefined
    ? await startMetricsServer({ metrics: prometheus, host: hc.prometheusAddr, port: hc.prometheusPort })
    : undefined;

  const ports = config.runner.httpPorts.map((p) => `${p.host ?? '*'}:${p.port}`).join(',');
  logger.info(`gripd ready: clients on ${ports}, publish on ${config.handler.pushInHttpAddr}:${config.handler.pushInHttpPort}`);

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        await Promise.allSettled([publish.close(), metricsServer?.close()]);
        await client.stop();
        logger.info('gripd stopped');
      })();
      return stopping;
    },
    async reload(next: Config) {
      await client.reload(next);
      logger.info('configuration reloaded');
    },
  };
}
