/**
 * What a held request needs from the Handler that owns the channel index. Held objects
 * call these; they never touch the Handler's maps.
 */
import type { Logger } from '../log/index.js';
import type { BackendRequester, BackendResponse, GripHandoff } from '../proxy/types.js';
import type { Instruct } from '../grip/types.js';
import type { TimerWheel } from './timer-wheel.js';

/** Decodes a backend answer; returns null when it carries no GRIP instructions. Throws on malformed GRIP. */
export type InstructDecoder = (resp: BackendResponse) => Instruct | null;

export interface HoldHost {
  readonly wheel: TimerWheel;
  readonly logger: Logger;
  readonly requester: BackendRequester;
  readonly decode: InstructDecoder;
  /** Time of the current publish (ms since epoch), read instead of calling Date.now() per delivery. */
  readonly nowMs: number;
  /** Last published id per channel (for prev-id conflict checks). */
  readonly lastIds: ReadonlyMap<string, string>;
  /** Per-connection outbound buffer limit in bytes. */
  readonly outboundMaxBytes: number;
  /** Max channels per held request (connection_subscription_max). */
  readonly subscriptionMax: number;
  /**
   * GETs a next link, sharing one backend request among sessions that ask for the very
   * same request (URL and Grip-Last) at the same time. Each caller decodes the answer on
   * its own, so sessions never share instructions or channels.
   */
  fetchLink(route: import('../routes/types.js').Route, req: import('../proxy/types.js').BackendRequest, opts: { url?: string; maxBodyBytes: number }): Promise<import('../proxy/types.js').BackendResponse>;
  subscribe(hold: Held, channel: string): void;
  unsubscribe(hold: Held, channel: string): void;
  /** The hold is over: drop it from every index. */
  finished(hold: Held): void;
  /** Starts a new hold on the same client (a retry answered with GRIP). */
  accept(h: GripHandoff): void;
  /** Whether CORS / JSON-P apply to this route's held responses (route `aco` or auto_cross_origin). */
  autoCrossOrigin(route: import('../routes/types.js').Route): boolean;
  /** A subscriber was dropped for not reading fast enough. */
  countDrop(): void;
}

/** Common surface of response and stream holds, as the Handler sees them. */
export interface Held {
  readonly mode: 'response' | 'stream' | 'ws';
  /** Ends the hold as on shutdown: timeout response for long-polls, last chunk for streams. */
  shutdown(): void;
  /** Pushpin's session update: long-polls retry the original request, streams fetch their next link. */
  update(): void;
}

/**
 * A client WebSocket connection as the Handler sees it (implemented in src/websocket).
 * Registered with Handler.registerWs; subscribes through HoldHost like any hold.
 */
export interface WsHeld extends Held {
  readonly mode: 'ws';
  /** The connection's id (Connection-Id), unique among live connections. */
  readonly cid: string;
  /** True when `channel`'s delivery to this connection needs the per-subscriber path (filters). */
  needsSlowPath(channel: string): boolean;
  /**
   * Writes a ready-made frame (shared by every subscriber of the publish). Returns false
   * when the connection is not open. Drops the connection when its buffer is over the limit.
   */
  writeShared(frame: Buffer): boolean;
  /** The client socket (for write corking during fan-out); null once gone. */
  readonly socket: import('node:net').Socket | null;
  /** Per-subscriber delivery of a ws-message item (filters, close, refresh). */
  deliver(item: import('../grip/types.js').PublishItem, channel: string, f: import('../grip/types.js').WsMessageFormat): void;
}
