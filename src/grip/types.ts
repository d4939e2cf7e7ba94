/**
 * GRIP instructions as gripd understands them, decoded from Grip-* headers or an
 * application/grip-instruct body. OWNER: src/grip. Produced by the pure codecs in
 * src/grip; consumed by src/handler.
 */
export type HoldMode = 'response' | 'stream';

export interface ChannelSubscription {
  name: string;
  prevId?: string;
  /** Filter names (skip-self, skip-users, require-sub, build-id, var-subst), at most 5. */
  filters: string[];
}

export interface KeepAlive {
  /** Bytes to send (already decoded from raw/cstring/base64). */
  data: Buffer;
  timeoutS: number;
  mode: 'idle' | 'interval';
}

/** A complete HTTP response as gripd will send it (GRIP headers already removed). */
export interface GripResponse {
  code: number;
  reason: string;
  /**
   * Header pairs in order; names keep their case. Values are byte strings (one char per
   * byte, latin1), as Node's HTTP parser gives them, so UTF-8 text arrives as its bytes.
   * The GRIP parsers also remove framing headers (Content-Length, Transfer-Encoding,
   * Connection, Keep-Alive, Content-Encoding): the sender sets its own framing.
   */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface Hold {
  mode: HoldMode;
  channels: ChannelSubscription[];
  /** Long-poll timeout in seconds (default 55, floor 5). */
  timeoutS: number;
  keepAlive?: KeepAlive;
}

export interface Link {
  url: string;
  timeoutS?: number;
}

export interface Instruct {
  /** Absent when the backend gave no hold (a plain response that may still carry links/meta). */
  hold?: Hold;
  /** The response to send now (stream) or on timeout (response hold). */
  response: GripResponse;
  /** Grip-Set-Meta / instruct meta. */
  meta: Record<string, string>;
  nextLink?: Link;
  goneLink?: Link;
  /**
   * Grip-Expose-Headers names (as given). When non-empty, `response.headers` has already
   * been narrowed to just these headers, as Pushpin does.
   */
  exposeHeaders: string[];
  /**
   * Channels named without a hold (Grip-Channel but no Grip-Hold). Pushpin uses them only
   * to pick response filters; undefined when there are none or when there is a hold.
   */
  channels?: ChannelSubscription[];
  /**
   * How many channels were dropped because the instruction named more than
   * `connection_subscription_max` (Pushpin logs "too many subscriptions" and keeps the
   * first ones). Undefined when none were dropped.
   */
  channelsDropped?: number;
}

/** http-response publish format. */
export interface HttpResponseFormat {
  action?: 'send' | 'hint';
  code?: number;
  reason?: string;
  headers?: Array<[string, string]>;
  body?: Buffer;
  /** JSON Patch operations applied to the hold response body. */
  bodyPatch?: unknown[];
  /**
   * Grip-Expose-Headers values found in `headers` (which no longer hold any Grip-* header).
   * Pushpin drops these names from the merged hold+publish headers when it responds.
   */
  exposeHeaders?: string[];
  /** `content-filters` named by the publisher (applied to the body before sending). */
  contentFilters?: string[];
}

/** http-stream publish format. */
export interface HttpStreamFormat {
  action?: 'send' | 'hint' | 'close';
  content?: Buffer;
  /** `content-filters` named by the publisher. */
  contentFilters?: string[];
}

/** ws-message publish format. */
export interface WsMessageFormat {
  action?: 'send' | 'close' | 'refresh';
  type: 'text' | 'binary' | 'ping' | 'pong';
  content?: Buffer;
  code?: number;
  reason?: string;
  /** `content-filters` named by the publisher. */
  contentFilters?: string[];
}

export interface PublishItem {
  /** Channel the item goes to; '' for a gripd per-connection item (see `connectionId`). */
  channel: string;
  /**
   * gripd extension: the item goes to the one WebSocket connection with this Connection-Id
   * instead of a channel (only a `ws-message` format; never sequenced). Undefined for
   * ordinary channel items.
   */
  connectionId?: string;
  id?: string;
  prevId?: string;
  noSeq: boolean;
  meta: Record<string, string>;
  /** Publisher-declared payload size in bytes (`size`), used for message block accounting. */
  size?: number;
  formats: {
    httpResponse?: HttpResponseFormat;
    httpStream?: HttpStreamFormat;
    wsMessage?: WsMessageFormat;
  };
}
