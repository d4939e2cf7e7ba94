/**
 * Routes as parsed from a routes file line. OWNER: src/routes.
 *
 * Field values are what Pushpin would act on, so that consumers never re-interpret
 * option text: e.g. `headers` is already in Pushpin's application order, `id` is
 * already filled in from the condition when the line has no `id=`.
 */
export interface RouteCondition {
  /** Exact host (lowercase, no port) or '*' for any; '' for id-only routes. */
  domain: string;
}

export interface Target {
  /**
   * 'http': a `host:port` or `[v6addr]:port` backend; 'test': the built-in test handler;
   * 'zhttp' / 'zhttpreq': a ZeroMQ zhttp backend (`zhttp/<spec>`, `zhttpreq/<spec>`).
   */
  type: 'http' | 'test' | 'zhttp' | 'zhttpreq';
  /** For http targets: the address to connect to (IPv6 without brackets). May be '' (Pushpin accepts `:80`). */
  host?: string;
  /** For http targets: 1-65535. */
  port?: number;
  /** For zhttp/zhttpreq targets: the ZeroMQ spec after the prefix. */
  zhttpSpec?: string;
  /** `ssl`: connect with TLS (any value, even `ssl=no`, turns it on, as in Pushpin). */
  ssl: boolean;
  /** `insecure`: do not verify the backend's certificate. */
  insecure: boolean;
  /** `trust_connect_host`: verify the certificate against the connect host, not the Host header. */
  trustConnectHost: boolean;
  /** Host header override (host=). */
  hostHeader?: string;
  /** `over_http`: WebSocket-over-HTTP to this target. */
  overHttp: boolean;
  /** `one_event`: with over_http, one event per request. */
  oneEvent: boolean;
  /** Implicit WebSocket subscriptions (sub=), in the order written, empty values dropped. */
  subscriptions: string[];
  /** `untrusted`: the target is not trusted to bypass access policies. */
  untrusted: boolean;
  /** `ipc_file_mode=` (octal) for ipc:// zhttp specs; undefined when absent or invalid. */
  ipcFileMode?: number;
  /** `client_cert=` path as written (relative to the working directory, as Pushpin). */
  clientCertFile?: string;
  /** `client_key=` path as written (relative to the working directory, as Pushpin). */
  clientKeyFile?: string;
  /** PEM text of client_cert, filled by the routes loader (undefined from the pure parser). */
  clientCert?: string;
  /** PEM text of client_key, filled by the routes loader (undefined from the pure parser). */
  clientKey?: string;
}

export interface Route {
  /** Source position for error messages and logs, e.g. "routes:3". */
  source: string;
  /** Exact host (lowercase, no port), '*' for any host, '' for an id-only route. */
  domain: string;
  /** `id=` when given, else Pushpin's generated id `domain,proto,ssl,path_beg` (e.g. `*,*,*,*`). */
  id: string;
  /** True when the id came from `id=` (Pushpin then keeps separate stats for the route). */
  idExplicit: boolean;
  proto?: 'http' | 'ws';
  ssl?: boolean;
  pathBeg?: string;
  /** `replace_beg=`: strip path_beg and put this in its place (takes precedence over path_rem). */
  replaceBeg?: string;
  /** `path_rem=`: bytes to strip from the start of the path; non-integers count as 0, as Pushpin. */
  pathRem?: number;
  asHost?: string;
  /**
   * Extra request headers (header=Name:Value, value left-trimmed of spaces), in the order
   * Pushpin applies them (last written first). Apply each in turn as: remove every header of
   * that name, then append it unless the value is empty (so an empty value deletes).
   */
  headers: Array<[string, string]>;
  sigIss?: string;
  /**
   * Route signing key: raw secret bytes (plain and `base64:` forms) or, after the loader
   * resolved a `file:` form, PEM text bytes or the hex-decoded secret. Undefined: use the
   * global sig_key.
   */
  sigKey?: Uint8Array;
  /** `sig_key=file:PATH`: the path as written (relative to the routes file's directory). */
  sigKeyFile?: string;
  /** `prefix=`: channel prefix. */
  prefix: string;
  debug: boolean;
  /** `aco`: automatic cross-origin (CORS) headers; also what turns JSON-P on for the route. */
  autoCrossOrigin: boolean;
  /** `jsonp_cb=`: the callback query parameter (Pushpin's default when unset is `callback`). */
  jsonpCallback?: string;
  /** Pushpin applies JSON-P only with auto cross-origin; mirrors `autoCrossOrigin` of the route. */
  jsonpEnabled: boolean;
  /** `jsonp_mode=`: 'extended' unless set. */
  jsonpMode?: 'basic' | 'extended';
  /** `jsonp_body=`: query parameter carrying the request body. */
  jsonpBody?: string;
  /** `jsonp_defcb=`: callback used when only the body parameter is present. */
  jsonpDefaultCallback?: string;
  /** `jsonp_defmethod=`, else 'POST' in basic mode and 'GET' in extended mode. */
  jsonpDefaultMethod: string;
  noGrip: boolean;
  /** `log_level=` (Pushpin 1.39+); non-integers count as 0, as Pushpin. */
  logLevel?: number;
  session: boolean;
  sockjs?: string;
  sockjsAsPath?: string;
  origHeaders: boolean;
  targets: Target[];
}
