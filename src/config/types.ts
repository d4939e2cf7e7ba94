/**
 * The typed, validated, frozen configuration gripd runs on. Produced by
 * `loadConfig()` from pushpin.conf (plus CLI overrides); every other module reads
 * settings only from here. Durations carry their unit in the name.
 *
 * OWNER: src/config. Other modules read it; only src/config adds fields.
 */
export interface ListenAddress {
  /** Host to bind ('' or undefined = all interfaces, as Pushpin's runner). */
  host?: string;
  port: number;
}

export interface Config {
  /** Absolute path of the main config file, or undefined when running on built-in defaults. */
  file?: string;
  /** Directory of the main config file (relative paths resolve against it). */
  dir: string;

  global: {
    libdir: string;
    rundir: string;
    ipcPrefix: string;
    portOffset: number;
    statsConnectionTtlS: number;
    statsConnectionSend: boolean;
  };

  runner: {
    /** Plain-HTTP client listeners (http_port, plus --port). */
    httpPorts: ListenAddress[];
    /** TLS client listeners (https_ports). */
    httpsPorts: ListenAddress[];
    /** Unix-socket client listeners (local_ports), absolute paths. */
    localPorts: string[];
    /**
     * The same listeners as `localPorts` (same order) with the socket file options
     * Pushpin's runner reads from the `?mode=&user=&group=` query. Optional: added by
     * src/config, always set by `loadConfig()`.
     */
    localListeners?: LocalListener[];
    /** Folder of PEM certificates for TLS listeners (runner/certs next to the config). */
    certsDir: string;
    logDir: string;
    /** 0 = errors only, 1 = warnings, 2 = info (default), 3 = debug. */
    logLevel: number;
    /** Max bytes of request line + headers. */
    clientBufferSize: number;
    clientMaxconn: number;
    allowCompression: boolean;
  };

  proxy: {
    /** Absolute path of the routes file (may not exist). */
    routesFile: string;
    debug: boolean;
    autoCrossOrigin: boolean;
    acceptXForwardedProtocol: boolean;
    /** 'true' | 'proto-only' | 'false' as in Pushpin's set_x_forwarded_protocol. */
    setXForwardedProtocol: 'true' | 'proto-only' | 'false';
    /** Parsed x_forwarded_for rules. */
    xForwardedFor: XffRules;
    xForwardedForTrusted: XffRules;
    origHeadersNeedMark: string[];
    acceptPushpinRoute: boolean;
    cdnLoop: string;
    logFrom: boolean;
    logUserAgent: boolean;
    sigIss: string;
    /** Raw key bytes (for HS256) or PEM text; already resolved from base64:/file: forms. */
    sigKey: Uint8Array;
    /** Key that marks a client request as trusted GRIP (chained proxies); empty = none. */
    upstreamKey: Uint8Array;
    sockjsUrl: string;
    /** Worker processes (Pushpin 1.39's [proxy] workers); default = CPU count. */
    workers: number;
  };

  handler: {
    pushInSpec: string;
    pushInSubSpecs: string[];
    pushInSubConnect: boolean;
    pushInHttpAddr: string;
    pushInHttpPort: number;
    pushInHttpMaxHeadersSize: number;
    pushInHttpMaxBodySize: number;
    statsSpec: string;
    commandSpec: string;
    /**
     * `message_rate`: most deliveries (one item to one connection, weighted by
     * message_block_size when set) per second. Undefined = no cap: the key is absent from
     * the config files or set to a value <= 0 (gripd's default; Pushpin's shipped
     * pushpin.conf sets 2500, which gripd honours when the file carries it).
     */
    messageRate: number | undefined;
    /**
     * `message_hwm`: most deliveries queued by the rate limiter per route (routes without
     * an explicit id share one queue); beyond it deliveries are dropped and counted.
     * Undefined = unbounded queue (key absent or <= 0). Only applies with messageRate.
     */
    messageHwm: number | undefined;
    messageBlockSize: number;
    messageWaitMs: number;
    idCacheTtlS: number;
    updateOnFirstSubscription: boolean;
    connectionSubscriptionMax: number;
    subscriptionLingerS: number;
    statsSubscriptionTtlS: number;
    statsReportIntervalS: number;
    statsFormat: 'tnetstring' | 'json';
    /** Port of the Prometheus exporter ([handler] prometheus_port); undefined = off. */
    prometheusPort: number | undefined;
    /** Bind address of the Prometheus exporter ('' or undefined = all interfaces). Optional, set by loadConfig. */
    prometheusAddr?: string;
    prometheusPrefix: string;
    /**
     * Optional publisher key (gripd extension, not in Pushpin). When set and non-empty, the
     * HTTP publish API requires `Authorization: Bearer <JWT signed HS256 with this key>` or
     * Basic credentials whose password is this key; otherwise it answers 401. Filled from
     * `[handler] push_in_http_key` (same forms as sig_key: text, `base64:`, `file:`);
     * undefined when the key is absent or empty.
     */
    publishKey?: Uint8Array;
  };
}

/** One Unix-socket client listener (an item of [runner] local_ports). */
export interface LocalListener {
  /** Absolute socket path. */
  path: string;
  /** File mode for the socket (from `?mode=`, octal in the config); undefined = umask default. */
  mode?: number;
  /** Owner user name (`?user=`). */
  user?: string;
  /** Owner group name (`?group=`). */
  group?: string;
}

/** x_forwarded_for handling: drop all but the last `truncate` entries, then maybe append the peer. */
export interface XffRules {
  truncate: number | undefined;
  append: boolean;
}
