/**
 * The publish-facing half of gripd: the HTTP publish API, the ZeroMQ PULL/SUB inputs, the
 * command socket and the stats PUB socket. Runs once per instance: in the one process
 * with workers=1, in the primary with workers=N. What it acts on is passed in (the
 * handler itself, or the primary's fan-out to workers).
 */
import type { Config } from '../config/types.js';
import type { PublishItem, WsMessageFormat } from '../grip/types.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { startPublishApi } from '../publish/http-api.js';
import { startCommandSocket } from '../zmq/command.js';
import { startPublishInputs, type SubscriptionSource } from '../zmq/publish-input.js';
import { startStats, type StatsSource } from '../zmq/stats-reporter.js';

/** What the publish inputs act on. Implemented by the Handler, and by the primary's worker pool. */
export interface PublishSideTarget {
  /** Delivers already-validated items. */
  publish(items: PublishItem[]): void;
  recover(): void | Promise<void>;
  refresh(opts: { cid?: string; channel?: string }): void | Promise<void>;
  conncheck(ids: string[]): string[] | Promise<string[]>;
  /**
   * gripd extension: a ws-message to the one connection with this Connection-Id (send,
   * close or refresh). Resolves false when no live connection has that id.
   */
  sendToConnection(cid: string, f: WsMessageFormat): boolean | Promise<boolean>;
}

/**
 * Delivers a validated batch that may mix channel items and gripd per-connection items,
 * keeping their order: runs of channel items go to `target.publish`, each per-connection
 * item to `target.sendToConnection` (fire and forget: an unknown id is logged at debug,
 * as a publish to a channel nobody holds is silently dropped).
 */
export function dispatchItems(items: PublishItem[], target: PublishSideTarget, logger: Logger): void {
  let run: PublishItem[] = [];
  for (const item of items) {
    const f = item.formats.wsMessage;
    if (item.connectionId === undefined || f === undefined) {
      run.push(item);
      continue;
    }
    if (run.length > 0) {
      target.publish(run);
      run = [];
    }
    const cid = item.connectionId;
    Promise.resolve()
      .then(() => target.sendToConnection(cid, f))
      .then(
        (found) => {
          if (!found) logger.debug({ cid }, 'publish: no connection with this id; item dropped');
        },
        (err: unknown) => logger.warn({ cid, err: (err as Error).message }, 'publish: per-connection item failed'),
      );
  }
  if (run.length > 0) target.publish(run);
}

export interface PublishSideOptions {
  config: Config;
  logger: Logger;
  /** Counts items received per input. */
  metrics: Metrics;
  target: PublishSideTarget;
  /** Channels with subscribers (the SUB socket follows them). */
  subscriptions: SubscriptionSource;
  /** What the stats socket reports. */
  stats: StatsSource;
}

export interface PublishSide {
  /** HTTP publish API port actually bound. */
  publishPort: number;
  /** Closes every input; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts every publish input. On a failure the inputs already started are closed and
 * the error (naming the socket or address) is rethrown.
 */
export async function startPublishSide(opts: PublishSideOptions): Promise<PublishSide> {
  const { config, logger, metrics, target } = opts;
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(closers.splice(0).map((c) => c()));
  };
  try {
    const apiTarget = {
      acceptsConnectionItems: true,
      publish: (items: PublishItem[]) => dispatchItems(items, target, logger),
      recover: () => target.recover(),
    };
    const publishApi = await startPublishApi({ config, handler: apiTarget, logger, metrics });
    closers.push(() => publishApi.close());
    const zmqSink = {
      publish(items: PublishItem[]): void {
        metrics.itemsReceived('zmq', items.length);
        target.publish(items);
      },
    };
    const commandTarget = {
      conncheck: (ids: string[]) => target.conncheck(ids),
      recover: () => target.recover(),
      refresh: (o: { cid?: string; channel?: string }) => target.refresh(o),
      sendToConnection: (cid: string, f: WsMessageFormat) => target.sendToConnection(cid, f),
      publish(items: PublishItem[]): void {
        metrics.itemsReceived('command', items.length);
        dispatchItems(items, target, logger);
      },
    };
    const zmqInputs = await startPublishInputs({ config, sink: zmqSink, subscriptions: opts.subscriptions, logger });
    closers.push(() => zmqInputs.close());
    const command = await startCommandSocket({ config, target: commandTarget, logger });
    closers.push(() => command.close());
    const stats = await startStats({ config, handler: opts.stats, logger });
    closers.push(() => stats.close());
    let closing: Promise<void> | undefined;
    return {
      publishPort: publishApi.port,
      close() {
        closing ??= closeAll();
        return closing;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
