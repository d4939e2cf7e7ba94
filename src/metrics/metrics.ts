/**
 * Domain events that gripd's modules report. The modules call these methods and
 * never know how (or whether) they are counted: the default sink does nothing, the
 * Prometheus exporter counts them. Every method must be cheap: some run per delivery.
 */
export type HoldKind = 'response' | 'stream' | 'ws';
/** Where publish items came from: the HTTP API, the ZeroMQ PULL/SUB inputs, or the command socket. */
export type PublishSource = 'http' | 'zmq' | 'command';

export interface Metrics {
  /** A client request arrived at a client listener. */
  requestReceived(): void;
  /** A client connection opened (+1) or closed (-1). */
  connectionChange(delta: 1 | -1): void;
  /** A backend answered (or failed, status 0) after `durationMs`. */
  backendResponse(durationMs: number, status: number): void;
  /** A held session started (+1) or ended (-1). */
  holdChange(kind: HoldKind, delta: 1 | -1): void;
  /** The number of distinct channels with local subscribers, and of subscriptions, changed. */
  subscriptionsChange(channels: number, subscriptions: number): void;
  /** Publish items accepted from an input. */
  itemsReceived(source: PublishSource, count: number): void;
  /** Messages written to clients for one publish item. */
  delivered(count: number): void;
  /** A delivery that did not happen, with why (e.g. 'slow-consumer', 'rate-limit', 'filter'). */
  dropped(reason: string, count: number): void;
}

/** The default: counts nothing, costs nothing. */
export const NO_METRICS: Metrics = Object.freeze({
  requestReceived() {},
  connectionChange() {},
  backendResponse() {},
  holdChange() {},
  subscriptionsChange() {},
  itemsReceived() {},
  delivered() {},
  dropped() {},
});
