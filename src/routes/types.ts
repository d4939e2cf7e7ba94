/**
 * Routes as parsed from a routes file line. OWNER: src/routes.
 */
export interface RouteCondition {
  /** Exact host (lowercase, no port) or '*' for any; '' for id-only routes. */
  domain: string;
}

export interface Target {
  type: 'http' | 'test' | 'zhttp' | 'zhttpreq';
  /** For http targets. */
  host?: string;
  port?: number;
  /** For zhttp/zhttpreq targets: the ZeroMQ spec after the prefix. */
  zhttpSpec?: string;
  ssl: boolean;
  insecure: boolean;
  trustConnectHost: boolean;
  /** Host header override (host=). */
  hostHeader?: string;
  overHttp: boolean;
  oneEvent: boolean;
  /** Implicit WebSocket subscriptions (sub=). */
  subscriptions: string[];
  untrusted: boolean;
}

export interface Route {
  /** Source position for error messages and logs, e.g. "routes:3". */
  source: string;
  domain: string;
  id?: string;
  proto?: 'http' | 'ws';
  ssl?: boolean;
  pathBeg?: string;
  replaceBeg?: string;
  pathRem?: number;
  asHost?: string;
  /** Extra request headers (header=Name:Value). */
  headers: Array<[string, string]>;
  sigIss?: string;
  sigKey?: Uint8Array;
  prefix: string;
  debug: boolean;
  autoCrossOrigin: boolean;
  jsonpCallback?: string;
  jsonpEnabled: boolean;
  jsonpMode?: 'basic' | 'extended';
  noGrip: boolean;
  logLevel?: number;
  session: boolean;
  sockjs?: string;
  sockjsAsPath?: string;
  origHeaders: boolean;
  targets: Target[];
}
