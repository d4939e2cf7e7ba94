/**
 * The one table of pushpin.conf keys gripd knows: their built-in defaults (equal to the
 * pushpin.conf Pushpin ships in examples/config, plus gripd's own additions) and what
 * gripd does with each key.
 */

export type Section = 'global' | 'runner' | 'proxy' | 'handler';
export const SECTIONS: readonly Section[] = ['global', 'runner', 'proxy', 'handler'];

/**
 * Built-in defaults, as the raw text a pushpin.conf would carry. The keys and values under
 * each section are exactly those of Pushpin's shipped examples/config/pushpin.conf, except
 * the keys listed in GRIPD_ONLY_DEFAULTS. Raw text goes through the same value reader as
 * a user's file, so a default and the same line in a file mean the same thing.
 */
export const DEFAULTS: Readonly<Record<Section, Readonly<Record<string, string>>>> = Object.freeze({
  global: Object.freeze({
    include: '{libdir}/internal.conf',
    rundir: 'run',
    ipc_prefix: 'pushpin-',
    port_offset: '0',
    stats_connection_ttl: '120',
    stats_connection_send: 'true',
  }),
  runner: Object.freeze({
    services: 'connmgr,proxy,handler',
    http_port: '7999',
    logdir: 'log',
    log_level: '2',
    client_buffer_size: '8192',
    client_maxconn: '50000',
    allow_compression: 'false',
    mongrel2_bin: 'mongrel2',
    m2sh_bin: 'm2sh',
    zurl_bin: 'zurl',
  }),
  proxy: Object.freeze({
    routesfile: 'routes',
    debug: 'false',
    auto_cross_origin: 'false',
    accept_x_forwarded_protocol: 'false',
    set_x_forwarded_protocol: 'proto-only',
    x_forwarded_for: '',
    x_forwarded_for_trusted: '',
    orig_headers_need_mark: '',
    accept_pushpin_route: 'false',
    cdn_loop: '',
    log_from: 'false',
    log_user_agent: 'false',
    sig_iss: 'pushpin',
    sig_key: 'changeme',
    upstream_key: '',
    sockjs_url: 'http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js',
    // gripd: '' means one worker per CPU (os.availableParallelism()).
    workers: '',
  }),
  handler: Object.freeze({
    push_in_spec: 'tcp://127.0.0.1:5560',
    push_in_sub_specs: 'tcp://127.0.0.1:5562',
    push_in_sub_connect: 'false',
    push_in_http_addr: '127.0.0.1',
    push_in_http_port: '5561',
    push_in_http_max_headers_size: '10000',
    push_in_http_max_body_size: '1000000',
    stats_spec: 'ipc://{rundir}/{ipc_prefix}stats',
    command_spec: 'tcp://127.0.0.1:5563',
    message_rate: '2500',
    message_hwm: '25000',
    message_wait: '5000',
    id_cache_ttl: '60',
    update_on_first_subscription: 'true',
    connection_subscription_max: '20',
    subscription_linger: '60',
    stats_subscription_ttl: '60',
    stats_report_interval: '10',
    stats_format: 'tnetstring',
    // gripd: '' means no Prometheus exporter (as Pushpin when the key is absent).
    prometheus_port: '',
    prometheus_prefix: '',
    // gripd: publisher key for the HTTP publish API; '' = open API (as Pushpin).
    push_in_http_key: '',
  }),
});

/** Keys in DEFAULTS that Pushpin's shipped pushpin.conf does not carry. */
export const GRIPD_ONLY_DEFAULTS: readonly string[] = [
  'proxy/workers', 'handler/prometheus_port', 'handler/prometheus_prefix', 'handler/push_in_http_key',
];

/**
 * What gripd does with a key:
 * - `honoured`: mapped into Config;
 * - `unsupported`: documented by Pushpin, not implemented yet; warned about once;
 * - `inapplicable`: meaningful only for Pushpin's multi-process runner (binaries, service
 *   lists, update checks); accepted silently because stock files carry them;
 * - `internal`: the ZeroMQ plumbing between Pushpin's own processes (internal.conf);
 *   accepted silently, gripd has no such sockets;
 * - `deprecated`: honoured with a warning naming the replacement.
 */
export type KeyStatus = 'honoured' | 'unsupported' | 'inapplicable' | 'internal' | 'deprecated';

const HONOURED: Record<Section, string[]> = {
  global: ['include', 'libdir', 'rundir', 'ipc_prefix', 'port_offset', 'stats_connection_ttl', 'stats_connection_send'],
  runner: ['http_port', 'https_ports', 'local_ports', 'logdir', 'log_level', 'client_buffer_size', 'client_maxconn', 'allow_compression'],
  proxy: [
    'routesfile', 'debug', 'auto_cross_origin', 'accept_x_forwarded_protocol', 'set_x_forwarded_protocol',
    'x_forwarded_for', 'x_forwarded_for_trusted', 'orig_headers_need_mark', 'accept_pushpin_route', 'cdn_loop',
    'log_from', 'log_user_agent', 'sig_iss', 'sig_key', 'upstream_key', 'sockjs_url', 'workers',
  ],
  handler: [
    'push_in_spec', 'push_in_sub_specs', 'push_in_sub_connect', 'push_in_http_addr', 'push_in_http_port',
    'push_in_http_max_headers_size', 'push_in_http_max_body_size', 'stats_spec', 'command_spec', 'message_rate',
    'message_hwm', 'message_block_size', 'message_wait', 'id_cache_ttl', 'update_on_first_subscription',
    'connection_subscription_max', 'subscription_linger', 'stats_subscription_ttl', 'stats_report_interval',
    'stats_format', 'prometheus_port', 'prometheus_prefix', 'push_in_http_key',
  ],
};

const UNSUPPORTED: Partial<Record<Section, string[]>> = {
  proxy: ['max_open_requests', 'stats_connections_max_ttl', 'stats_report_interval', 'prometheus_port', 'prometheus_prefix', 'ipc_file_mode'],
  handler: ['ipc_file_mode', 'share_all'],
};

const INAPPLICABLE: Partial<Record<Section, string[]>> = {
  runner: ['services', 'mongrel2_bin', 'm2sh_bin', 'zurl_bin', 'condure_bin'],
  proxy: ['updates_check', 'organization_name'],
};

const DEPRECATED: Partial<Record<Section, Record<string, string>>> = {
  runner: { rundir: 'put rundir in [global]' },
  handler: { push_in_sub_spec: 'use push_in_sub_specs' },
};

const INTERNAL: Partial<Record<Section, string[]>> = {
  proxy: [
    'connmgr_in_specs', 'connmgr_in_stream_specs', 'connmgr_out_specs', 'condure_in_specs', 'condure_in_stream_specs',
    'condure_out_specs', 'm2a_in_specs', 'm2a_in_stream_specs', 'm2a_out_specs', 'connmgr_client_out_specs',
    'connmgr_client_out_stream_specs', 'connmgr_client_in_specs', 'condure_client_out_specs',
    'condure_client_out_stream_specs', 'condure_client_in_specs', 'zurl_out_specs', 'zurl_out_stream_specs',
    'zurl_in_specs', 'handler_inspect_spec', 'handler_accept_spec', 'handler_retry_in_spec',
    'handler_ws_control_init_specs', 'handler_ws_control_stream_specs', 'stats_spec', 'command_spec',
    'intreq_in_specs', 'intreq_in_stream_specs', 'intreq_out_specs',
  ],
  handler: [
    'proxy_inspect_specs', 'proxy_inspect_spec', 'proxy_accept_specs', 'proxy_accept_spec', 'proxy_retry_out_specs',
    'proxy_retry_out_spec', 'proxy_ws_control_init_specs', 'proxy_ws_control_stream_specs', 'proxy_stats_specs',
    'proxy_stats_spec', 'proxy_command_spec', 'connmgr_in_stream_specs', 'connmgr_out_specs', 'condure_in_stream_specs',
    'condure_out_specs', 'm2a_in_stream_specs', 'm2a_out_specs', 'proxy_intreq_out_specs',
    'proxy_intreq_out_stream_specs', 'proxy_intreq_in_specs', 'state_spec',
  ],
};

/** Status of `[section] key`, or undefined for a key gripd does not know. */
export function keyStatus(section: string, key: string): KeyStatus | undefined {
  const s = section as Section;
  if (!SECTIONS.includes(s)) return undefined;
  if (HONOURED[s].includes(key)) return 'honoured';
  if (DEPRECATED[s]?.[key] !== undefined) return 'deprecated';
  if (UNSUPPORTED[s]?.includes(key)) return 'unsupported';
  if (INAPPLICABLE[s]?.includes(key)) return 'inapplicable';
  if (INTERNAL[s]?.includes(key)) return 'internal';
  return undefined;
}

/** Replacement hint for a deprecated key. */
export function deprecationHint(section: string, key: string): string {
  return DEPRECATED[section as Section]?.[key] ?? '';
}

/** Sections (other than `section`) where `key` is a known user-facing key; for "did you mean" hints. */
export function sectionsKnowing(key: string, except: string): Section[] {
  return SECTIONS.filter((s) => s !== except && (HONOURED[s].includes(key) || (UNSUPPORTED[s]?.includes(key) ?? false)));
}

/** Every key per status, for docs and tests. */
export function keysByStatus(): Record<KeyStatus, string[]> {
  const out: Record<KeyStatus, string[]> = { honoured: [], unsupported: [], inapplicable: [], internal: [], deprecated: [] };
  for (const s of SECTIONS) {
    for (const k of HONOURED[s]) out.honoured.push(`${s}/${k}`);
    for (const k of UNSUPPORTED[s] ?? []) out.unsupported.push(`${s}/${k}`);
    for (const k of INAPPLICABLE[s] ?? []) out.inapplicable.push(`${s}/${k}`);
    for (const k of INTERNAL[s] ?? []) out.internal.push(`${s}/${k}`);
    for (const k of Object.keys(DEPRECATED[s] ?? {})) out.deprecated.push(`${s}/${k}`);
  }
  return out;
}
