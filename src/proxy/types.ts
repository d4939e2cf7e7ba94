/**
 * The seam between the proxy (src/proxy: client listeners, forwarding) and the GRIP
 * handler (src/handler: holds, subscriptions, delivery). OWNER: src/proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route, Target } from '../routes/types.js';
import type { RouteTable } from '../routes/table.js';
import type { Instruct } from '../grip/types.js';

/** A request as gripd sends it to a backend (after routing, rewriting and header rules). */
export interface BackendRequest {
  method: string;
  /** Path and query as sent to the backend (already rewritten for the route). */
  path: string;
  /** Header pairs as forwarded (hop-by-hop removed, X-Forwarded-* applied); Grip-Sig is added per send. */
  headers: Array<[string, string]>;
  body: Buffer;
}

/** A complete backend response (body read up to the caller's limit). */
export interface BackendResponse {
  status: number;
  reason: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

/** Everything the handler needs to take over a client request the backend answered with GRIP. */
export interface GripHandoff {
  /** The client's request; its body has been consumed already (see backendRequest.body). */
  req: IncomingMessage;
  /** The client's response, nothing written yet. The acceptor owns it from now on. */
  res: ServerResponse;
  route: Route;
  /** The target that answered. */
  target: Target;
  /** The request as sent, for retries, hints and next links. */
  backendRequest: BackendRequest;
  /** Decoded instructions; `instruct.response.body` holds the body bytes read so far. */
  instruct: Instruct;
  /**
   * Stream holds only: the remainder of the backend body still arriving. The acceptor
   * sends it to the client after instruct.response.body and before starting the hold.
   */
  bodyRest?: AsyncIterable<Uint8Array>;
  /** Client IP address as seen by gripd. */
  clientAddress: string;
  /** True when the client connected over TLS. */
  ssl: boolean;
  /**
   * Set when the client request was a JSON-P request (route with auto cross-origin): the
   * handler wraps held responses (publish or timeout) in the callback. Optional; added by
   * src/handler's engineer, to be filled in by src/proxy.
   */
  jsonp?: { callback: Buffer; mode: 'basic' | 'extended' };
}

/** Implemented by src/handler. */
export interface GripAcceptor {
  accept(handoff: GripHandoff): void;
}

/** Implemented by src/proxy; used by src/handler for retries, hints and next/gone links. */
export interface BackendRequester {
  /**
   * Sends `req` to the route's targets in failover order with a fresh Grip-Sig and
   * resolves with the whole response (body up to `maxBodyBytes`, default 100 000).
   * `url`, when given (next/gone links), is an absolute URL that replaces the target
   * address and path. Rejects with an Error whose message says what failed.
   * `target`, when given, is the target that answered the original request: a `url`
   * link is trusted to reach internal addresses only when that target is trusted (as
   * Pushpin). Without it, a `url` link is trusted only when every target of the route
   * is. Route targets marked `untrusted` are always held to the outbound policy
   * (src/proxy/outbound-policy.ts).
   */
  request(route: Route, req: BackendRequest, opts?: { maxBodyBytes?: number; url?: string; target?: Target }): Promise<BackendResponse>;
}

/** The part of src/routes' RouteTable the proxy uses (a RouteTable satisfies it). */
export type RouteLookup = Pick<RouteTable, 'resolve'>;

/** A request as the built-in test handler (route target `test`) receives it. */
export interface TestRequest {
  method: string;
  /** Path and query, relative to the route's path_beg as Pushpin does for test targets. */
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

/** The built-in test handler: answers like a backend (GRIP detection runs on the answer). */
export type TestHandler = (req: TestRequest) => Promise<BackendResponse>;
