/**
 * Messages between the primary and its workers (node:cluster IPC with 'advanced'
 * serialization, so Buffers and Uint8Arrays cross intact). The primary owns the publish
 * inputs; workers own client connections. Both sides trust these messages: they come
 * from our own processes, never from the network.
 */
import type { Config } from '../config/types.js';
import type { WsMessageFormat } from '../grip/types.js';
import type { HandlerCounters } from '../handler/handler.js';
import type { StatsEvent } from '../zmq/stats.js';

/** How the worker should build its logger (the same as the CLI's). */
export interface WorkerLogOptions {
  /** Pushpin log level 0-3. */
  level: number;
  json: boolean;
  /** Append to this file instead of standard output. */
  file?: string;
}

/** Primary -> worker. */
export type ToWorker =
  | { t: 'start'; index: number; config: Config; routeLines?: string[]; log: WorkerLogOptions }
  /** Publish items serialized once with v8.serialize (a PublishItem[]); already validated. */
  | { t: 'publish'; data: Uint8Array }
  | { t: 'reload'; config: Config }
  | { t: 'stop' }
  | { t: 'request'; id: number; op: WorkerRequest };

/** Requests the primary sends and every worker answers (see `reply`). */
export type WorkerRequest =
  | { op: 'conncheck'; ids: string[] }
  | { op: 'recover' }
  | { op: 'refresh'; cid?: string; channel?: string }
  /** gripd extension: a ws-message to one connection; the worker holding it answers value true. */
  | { op: 'send'; cid: string; format: WsMessageFormat }
  | { op: 'metrics' };

/** Counters a worker reports; absolute values since the worker started. */
export type WorkerCounters = Pick<HandlerCounters, 'heldResponse' | 'heldStream' | 'deliveries' | 'drops' | 'itemsPublished'>;

/** Worker -> primary. */
export type ToPrimary =
  /** The worker listens for messages now (anything sent before this would be lost). */
  | { t: 'hello' }
  | { t: 'ready'; pid: number }
  | { t: 'failed'; error: string }
  /** The worker's handler gained its first subscriber on `channel`. */
  | { t: 'sub'; channel: string }
  /** The worker's handler lost its last subscriber on `channel`. */
  | { t: 'unsub'; channel: string }
  /** Subscriber counts per channel: [channel, response, stream]. Sent only when stats are on. */
  | { t: 'counts'; list: Array<[string, number, number]> }
  | { t: 'counters'; counters: WorkerCounters }
  /** Stats events (connections, activity, per-publish messages), batched. Sent only when stats are on. */
  | { t: 'stats'; events: StatsEvent[] }
  | { t: 'reply'; id: number; ok: true; value?: unknown }
  | { t: 'reply'; id: number; ok: false; condition?: string; error: string }
  /** Several of the above in one IPC message, to be handled in order. */
  | { t: 'batch'; list: ToPrimary[] };

/** Narrows an IPC message to a primary->worker message by its tag (shape is trusted). */
export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

/** Narrows an IPC message to a worker->primary message by its tag (shape is trusted). */
export function isToPrimary(m: unknown): m is ToPrimary {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
