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
  /** Header pairs in order; names keep their case. */
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
  /** Headers of the hold response to keep exposing on a published response (Grip-Expose-Headers). */
  exposeHeaders: string[];
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
}

/** http-stream publish format. */
export interface HttpStreamFormat {
  action?: 'send' | 'hint' | 'close';
  content?: Buffer;
}

/** ws-message publish format. */
export interface WsMessageFormat {
  action?: 'send' | 'close' | 'refresh';
  type: 'text' | 'binary' | 'ping' | 'pong';
  content?: Buffer;
  code?: number;
  reason?: string;
}

export interface PublishItem {
  channel: string;
  id?: string;
  prevId?: string;
  noSeq: boolean;
  meta: Record<string, string>;
  formats: {
    httpResponse?: HttpResponseFormat;
    httpStream?: HttpStreamFormat;
    wsMessage?: WsMessageFormat;
  };
}
