/**
 * Wires gripd's pieces together: routes, the GRIP handler, the client-facing proxy,
 * the HTTP publish API and the ZeroMQ sockets. The CLI (src/cli/gripd.ts) is the only
 * caller; it owns signals and exit codes.
 */
import type { Config } from './config/types.js';
import type { Logger } from './log/index.js';
import { formatDiagnostic } from './diagnostic.js';
import { parseRoutesText, RouteTable, watchRoutesFile } from './routes/index.js';
import { Handler } from './handler/index.js';
import { testHandler } from './handler/test-handler.js';
import { startProxy } from './proxy/index.js';
import type { BackendRequester } from './proxy/types.js';
import { startPublishApi } from './publish/http-api.js';
import { startPublishInputs } from './zmq/publish-input.js';
import { startCommandSocket } from './zmq/command.js';

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
    const { routes, diagnostics } = parseRoutesText(opts.routeLines.join('\n'), '--route');
    for (const d of diagnostics) logger.warn(formatDiagnostic(d));
    table = new RouteTable(routes);
  } else {
    const watched = await watchRoutesFile(config.proxy.routesFile, {
      logger,
      onUpdate(next) {
        table = next;
        logger.info({ routes: next.routes.length }, 'routes reloaded');
      },
    });
    table = watched.table;
    closeWatcher = () => watched.close();
  }

  // The handler needs the proxy's requester (for hints and next links) and the proxy
  // needs the handler as its acceptor; the late-bound requester breaks the cycle.
  let requester: BackendRequester | undefined;
  const handler = new Handler({
    config,
    logger,
    requester: {
      request(route, req, o) {
        if (requester === undefined) return Promise.reject(new Error('proxy not started'));
        return requester.request(route, req, o);
      },
    },
  });
  const proxy = await startProxy({ config, logger, routes: () => table, acceptor: handler, testHandler });
  requester = proxy.requester;
  const publishApi = await startPublishApi({ config, handler, logger });
  const zmqInputs = await startPublishInputs({ config, sink: handler, subscriptions: handler, logger });
  const command = await startCommandSocket({ config, target: handler, logger });

  const ports = config.runner.httpPorts.map((p) => `${p.host ?? '*'}:${p.port}`).join(',');
  logger.info(`gripd ready: clients on ${ports}, publish on ${config.handler.pushInHttpAddr}:${config.handler.pushInHttpPort}`);

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        closeWatcher?.();
        await Promise.allSettled([publishApi.close(), zmqInputs.close(), command.close()]);
        await handler.stop();
        await proxy.close(SHUTDOWN_GRACE_MS);
        logger.info('gripd stopped');
      })();
      return stopping;
    },
    async reload(next: Config) {
      if (opts.routeLines === undefined && next.proxy.routesFile === config.proxy.routesFile) {
        const { readFile } = await import('node:fs/promises');
        try {
          const text = await readFile(next.proxy.routesFile, 'utf8');
          const { routes, diagnostics } = parseRoutesText(text, next.proxy.routesFile);
          for (const d of diagnostics) logger.warn(formatDiagnostic(d));
          table = new RouteTable(routes);
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
