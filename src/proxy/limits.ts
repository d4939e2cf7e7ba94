/**
 * Named limits and timeouts of the proxy. Each one bounds something a client or a
 * backend could otherwise make unbounded.
 */

/**
 * Request body bytes kept in memory for a GRIP-enabled route (Pushpin's
 * MAX_ACCEPT_REQUEST_BODY). The copy lets the handler retry the request later; a
 * bigger body still streams to the backend, but the request can then no longer be
 * taken over by GRIP (the client gets 400, as Pushpin).
 */
export const MAX_GRIP_REQUEST_BODY = 100_000;

/**
 * Backend response bytes read while decoding GRIP instructions (Pushpin's
 * MAX_ACCEPT_RESPONSE_BODY); a longer instruct response is a 502.
 */
export const MAX_GRIP_RESPONSE_BODY = 100_000;

/** Default body limit of BackendRequester.request() (bounds memory per retry/link fetch). */
export const MAX_REQUESTER_BODY = 100_000;

/**
 * Request body bytes the built-in test handler may receive (it never needs a body;
 * this only stops a client from making gripd buffer an unbounded upload).
 */
export const MAX_TEST_HANDLER_BODY = 100_000;

/**
 * Time a client has to send a complete request line and header block (slowloris
 * protection; Node's headersTimeout).
 */
export const CLIENT_HEADERS_TIMEOUT_MS = 30_000;

/**
 * Most header fields in one client request (Pushpin's HEADERS_MAX). Node would keep
 * parsing past it and silently drop the rest, so a request over the limit is refused with
 * 400 instead of being forwarded without some of its headers.
 */
export const MAX_CLIENT_HEADERS = 64;

/** Idle time after which a kept-alive client connection is closed. */
export const CLIENT_KEEP_ALIVE_TIMEOUT_MS = 60_000;

/** How often Node checks connections for the headers timeout above. */
export const CLIENT_TIMEOUT_CHECK_INTERVAL_MS = 5_000;

/**
 * Time for a backend to answer with its status line and headers once the request is
 * sent. Past it the client gets a 502.
 */
export const BACKEND_HEADERS_TIMEOUT_MS = 60_000;

/** Time allowed for a TCP (and TLS) connection to a backend target before failing over. */
export const BACKEND_CONNECT_TIMEOUT_MS = 10_000;

/** Idle time after which a pooled backend connection is closed. */
export const BACKEND_KEEP_ALIVE_TIMEOUT_MS = 30_000;

/** Most connections kept to one backend target (the pool queues beyond it). */
export const BACKEND_MAX_CONNECTIONS_PER_TARGET = 256;

/** Stream-hold body bytes queued for the acceptor before the backend is paused. */
export const STREAM_REST_HIGH_WATER_BYTES = 65_536;

/** Debounce of certificate-folder change events before TLS contexts are reloaded. */
export const CERT_RELOAD_DEBOUNCE_MS = 200;
