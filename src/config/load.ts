/**
 * pushpin.conf -> typed, validated, frozen Config. Reads the main file and its include,
 * applies the defaults table, templating, port_offset and the CLI overrides, and reports
 * every problem as a Diagnostic (the caller decides whether errors are fatal).
 */
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Diagnostic } from '../diagnostic.js';
import { MAX_INI_BYTES, parseIni, parseIniValue, type IniDocument } from './ini.js';
import { DEFAULTS, SECTIONS, deprecationHint, keyStatus, sectionsKnowing, type Section } from './schema.js';
import type { Config, ListenAddress, LocalListener, XffRules } from './types.js';
import {
  applyTemplate, decodeBase64, decodeHex, offsetTcpSpec, parseBool, parseInteger, parseListenAddress,
  parseLogLevelSpec, parsePort, parseXffRules, type Parsed,
} from './values.js';

/** Largest key file read for sig_key/upstream_key `file:`; a key is a few KiB at most. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Most worker processes accepted for [proxy] workers; protects against a typo forking hundreds. */
export const MAX_WORKERS = 256;
/** Largest client_buffer_size accepted; it is allocated per client connection. */
export const MAX_CLIENT_BUFFER_SIZE = 16 * 1024 * 1024;
/** Most listeners per list key (http_port, https_ports, local_ports, --port). */
export const MAX_LISTENERS = 64;

/** Label used for diagnostics about command-line values. */
export const COMMAND_LINE = 'command line';
const BUILT_IN = '(built-in defaults)';

/**
 * gripd's library directory, the default for `{libdir}`: the package root. gripd ships no
 * internal.conf there, which is why a missing `{libdir}/internal.conf` include is fine.
 */
export const DEFAULT_LIBDIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface LoadConfigOptions {
  /** --config: the file to read (relative to cwd). Without it, findConfigFile(cwd) is used. */
  configPath?: string;
  /** Directory relative paths on the command line resolve against; default process.cwd(). */
  cwd?: string;
  /** --port values (`[ADDR:]PORT`): replace http_port, https_ports and local_ports. */
  ports?: string[];
  /** --id N: ipc_prefix becomes `pN-` and, for N > 0, port_offset becomes N*10. */
  id?: number;
  /** --loglevel / --verbose: overrides [runner] log_level. */
  logLevel?: number;
  /** Where to look for a config file when configPath is absent; default configSearchPaths(cwd). */
  searchPaths?: string[];
}

export interface LoadConfigResult {
  config: Config;
  /** Warnings and errors, in file order; an error means the config should not be used. */
  diagnostics: Diagnostic[];
}

/** Where Pushpin looks for pushpin.conf when no --config is given, in order. */
export function configSearchPaths(cwd: string): string[] {
  return [
    path.resolve(cwd, 'config/pushpin.conf'),
    path.resolve(cwd, 'pushpin.conf'),
    path.resolve(cwd, 'examples/config/pushpin.conf'),
    '/etc/pushpin/pushpin.conf',
  ];
}

/** The first existing regular file of `searchPaths` (default: Pushpin's search order), or undefined. */
export async function findConfigFile(cwd: string, searchPaths: string[] = configSearchPaths(cwd)): Promise<string | undefined> {
  for (const p of searchPaths) {
    try {
      if ((await stat(p)).isFile()) return p;
    } catch {
      // not there: try the next place
    }
  }
  return undefined;
}

interface Value {
  value: string;
  list: string[];
  file: string;
  line: number;
  /** True when the value came from the defaults table, not from a file. */
  builtIn: boolean;
}

type Layer = Map<string, Value>;

function layerOf(doc: IniDocument): Layer {
  const m: Layer = new Map();
  for (const e of doc.entries) m.set(`${e.section}/${e.key}`, { value: e.value, list: e.list, file: doc.file, line: e.line, builtIn: false });
  return m;
}

async function readText(file: string): Promise<{ text: string } | { error: string; code: string | undefined }> {
  try {
    const st = await stat(file);
    if (!st.isFile()) return { error: 'not a regular file', code: 'EISDIR' };
    if (st.size > MAX_INI_BYTES) return { error: `file too large (${st.size} bytes, limit ${MAX_INI_BYTES})`, code: 'EFBIG' };
    return { text: await readFile(file, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? 'file not found' : `cannot read: ${(e as Error).message}`, code };
  }
}

/**
 * Loads the configuration: `opts.configPath` or the first file of Pushpin's search order;
 * none found -> built-in defaults (Config.file undefined; the caller runs routes `* test`).
 * Never throws for bad input; every problem is a Diagnostic naming file, line and key.
 */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadConfigResult> {
  const cwd = opts.cwd ?? process.cwd();
  const diagnostics: Diagnostic[] = [];
  const err = (file: string, line: number, message: string): void => { diagnostics.push({ file, line, message, severity: 'error' }); };
  const warn = (file: string, line: number, message: string): void => { diagnostics.push({ file, line, message, severity: 'warning' }); };

  let file: string | undefined;
  if (opts.configPath !== undefined) file = path.resolve(cwd, opts.configPath);
  else file = await findConfigFile(cwd, opts.searchPaths ?? configSearchPaths(cwd));

  let main: Layer = new Map();
  const docs: IniDocument[] = [];
  if (file !== undefined) {
    const r = await readText(file);
    if ('error' in r) {
      err(file, 0, `cannot load config file: ${r.error}`);
    } else {
      const doc = parseIni(r.text, file);
      docs.push(doc);
      diagnostics.push(...doc.diagnostics);
      main = layerOf(doc);
    }
  }
  const dir = file !== undefined ? path.dirname(file) : cwd;

  // Pushpin reads libdir, and with it the include path, from the main file only.
  const libdirEntry = main.get('global/libdir');
  const libdir = libdirEntry && libdirEntry.value !== '' ? path.resolve(dir, libdirEntry.value) : DEFAULT_LIBDIR;

  const rawOf = (layer: Layer, key: string): string | undefined => layer.get(key)?.value;
  const preVars = {
    libdir,
    rundir: path.resolve(dir, rawOf(main, 'global/rundir') ?? rawOf(main, 'runner/rundir') ?? DEFAULTS.global['rundir']!),
    ipcPrefix: rawOf(main, 'global/ipc_prefix') ?? DEFAULTS.global['ipc_prefix']!,
  };

  let include: Layer = new Map();
  const includeEntry = main.get('global/include') ?? builtInValue('global', 'include');
  if (includeEntry.value !== '') {
    // Old configs say just "internal.conf" and mean the one in libdir.
    const spec = includeEntry.value === 'internal.conf' ? '{libdir}/internal.conf' : includeEntry.value;
    const incPath = path.resolve(dir, applyTemplate(spec, preVars));
    const r = await readText(incPath);
    if ('error' in r) {
      const isStockInternal = incPath === path.join(libdir, 'internal.conf');
      if (!(r.code === 'ENOENT' && isStockInternal)) {
        const msg = `include ${incPath}: ${r.error}`;
        if (r.code === 'ENOENT') warn(includeEntry.file, includeEntry.line, msg);
        else err(includeEntry.file, includeEntry.line, msg);
      }
    } else {
      const doc = parseIni(r.text, incPath);
      docs.push(doc);
      diagnostics.push(...doc.diagnostics);
      include = layerOf(doc);
      const nested = include.get('global/include');
      if (nested && nested.value !== '') warn(nested.file, nested.line, 'include inside an included file is ignored');
    }
  }

  const inFiles = (key: string): Value | undefined => main.get(key) ?? include.get(key);
  const get = (section: Section, key: string): Value => inFiles(`${section}/${key}`) ?? builtInValue(section, key);

  reportKeys(docs, warn);

  // Runtime directory, ipc prefix and port offset: the inputs of templating.
  let rundirValue = get('global', 'rundir');
  if (!inFiles('global/rundir')) {
    const old = inFiles('runner/rundir');
    if (old) rundirValue = old;
  }
  const rundir = path.resolve(dir, rundirValue.value);
  let ipcPrefix = get('global', 'ipc_prefix').value;
  let portOffset = intOf(get('global', 'port_offset'), 'global', 'port_offset', 0, 60000, err) ?? 0;
  if (opts.id !== undefined) {
    if (!Number.isInteger(opts.id) || opts.id < 0) {
      err(COMMAND_LINE, 0, `--id: must be an integer >= 0, got ${opts.id}`);
    } else {
      ipcPrefix = `p${opts.id}-`;
      if (opts.id > 0) portOffset = opts.id * 10;
    }
  }
  const vars = { libdir, rundir, ipcPrefix };
  const str = (section: Section, key: string): string => applyTemplate(get(section, key).value, vars);
  const list = (section: Section, key: string): string[] =>
    get(section, key).list.map((s) => applyTemplate(s, vars)).filter((s) => s !== '');
  const bool = (section: Section, key: string, fallback: boolean): boolean => {
    const v = get(section, key);
    const r = parseBool(v.value);
    return report(r, v, section, key, err) ?? fallback;
  };
  const int = (section: Section, key: string, min: number, max: number | undefined, fallback: number): number =>
    intOf(get(section, key), section, key, min, max, err) ?? fallback;
  // A default spec pushed out of range is port_offset's fault: report it there.
  const offsetSite = (v: Value): Value => (v.builtIn ? get('global', 'port_offset') : v);
  const spec = (section: Section, key: string, value: string): string => {
    const r = offsetTcpSpec(value, portOffset);
    return report(r, offsetSite(get(section, key)), section, key, err) ?? value;
  };

  // [runner] listeners
  const listeners = (key: string): ListenAddress[] => {
    const v = get('runner', key);
    const items = list('runner', key);
    if (items.length > MAX_LISTENERS) {
      err(v.file, v.line, `[runner] ${key}: too many listeners (${items.length}, limit ${MAX_LISTENERS})`);
      return [];
    }
    const out: ListenAddress[] = [];
    for (const item of items) {
      const r = report(parseListenAddress(item), v, 'runner', key, err);
      if (r) out.push(r);
    }
    return out;
  };
  let httpPorts = listeners('http_port');
  let httpsPorts = listeners('https_ports');
  let localListeners = parseLocalPorts(get('runner', 'local_ports'), list('runner', 'local_ports'), dir, err);

  if (opts.ports && opts.ports.length > 0) {
    // Pushpin's --port runs a single plain-HTTP server instead of every configured listener.
    const cli: ListenAddress[] = [];
    for (const p of opts.ports.slice(0, MAX_LISTENERS)) {
      const r = parseListenAddress(p);
      if (r.ok) cli.push(r.value);
      else err(COMMAND_LINE, 0, `--port: ${r.error}`);
    }
    if (opts.ports.length > MAX_LISTENERS) err(COMMAND_LINE, 0, `--port: too many (limit ${MAX_LISTENERS})`);
    httpPorts = cli;
    httpsPorts = [];
    localListeners = [];
  }
  if (httpPorts.length + httpsPorts.length + localListeners.length === 0 && !diagnostics.some((d) => d.severity === 'error')) {
    const v = get('runner', 'http_port');
    err(v.file, v.line, 'no server ports configured (set [runner] http_port, https_ports or local_ports)');
  }

  let logLevel = 2;
  {
    const v = get('runner', 'log_level');
    const r = report(parseLogLevelSpec(v.value), v, 'runner', 'log_level', err);
    if (r) {
      if (r.level !== undefined) logLevel = r.level;
      const names = Object.keys(r.services);
      if (names.length > 0) warn(v.file, v.line, `[runner] log_level: per-service levels (${names.join(', ')}) are not supported yet; using ${logLevel} for everything`);
    }
  }
  if (opts.logLevel !== undefined) logLevel = opts.logLevel;

  // [proxy]
  const xff = (key: string): XffRules => {
    const v = get('proxy', key);
    return report(parseXffRules(v.list), v, 'proxy', key, err) ?? { truncate: undefined, append: false };
  };
  let setXfp: Config['proxy']['setXForwardedProtocol'] = 'proto-only';
  {
    const v = get('proxy', 'set_x_forwarded_protocol');
    const s = v.value.trim();
    if (s === 'true' || s === 'proto-only' || s === 'false') setXfp = s;
    else if (s === '') setXfp = 'false';
    else err(v.file, v.line, `[proxy] set_x_forwarded_protocol: expected true, proto-only or false, got "${v.value}"`);
  }
  const sigKey = await keyOf(get('proxy', 'sig_key'), 'sig_key', dir, vars, err);
  const upstreamKey = await keyOf(get('proxy', 'upstream_key'), 'upstream_key', dir, vars, err);
  let workers = os.availableParallelism();
  if (get('proxy', 'workers').value.trim() !== '') workers = int('proxy', 'workers', 1, MAX_WORKERS, workers);

  // [handler]
  const pushInSubSpecs = list('handler', 'push_in_sub_specs').map((s) => spec('handler', 'push_in_sub_specs', s));
  {
    const single = inFiles('handler/push_in_sub_spec');
    if (single && single.value !== '') pushInSubSpecs.push(spec('handler', 'push_in_sub_spec', applyTemplate(single.value, vars)));
  }
  let pushInHttpPort = 0;
  {
    const v = get('handler', 'push_in_http_port');
    const r = report(parsePort(v.value), v, 'handler', 'push_in_http_port', err);
    if (r !== undefined) {
      pushInHttpPort = r + portOffset;
      if (pushInHttpPort > 65535) {
        const at = offsetSite(v);
        err(at.file, at.line, `[handler] push_in_http_port: port_offset moves ${r} past 65535`);
      }
    }
  }
  let statsFormat: 'tnetstring' | 'json' = 'tnetstring';
  {
    const v = get('handler', 'stats_format');
    const s = v.value.trim();
    if (s === 'json') statsFormat = 'json';
    else if (s !== 'tnetstring' && s !== '') err(v.file, v.line, `[handler] stats_format: expected tnetstring or json, got "${v.value}"`);
  }
  let prometheusPort: number | undefined;
  let prometheusAddr: string | undefined;
  {
    const v = get('handler', 'prometheus_port');
    if (v.value.trim() !== '') {
      const r = report(parseListenAddress(v.value), v, 'handler', 'prometheus_port', err);
      if (r) {
        prometheusPort = r.port;
        prometheusAddr = r.host;
      }
    }
  }
  const blockSizeText = get('handler', 'message_block_size').value.trim();
  // Pushpin's shipped file sets message_rate/message_hwm; gripd's own default is no cap,
  // so they count only when a config file carries them (<= 0 also means no cap).
  const fileLimit = (key: string): number | undefined => {
    if (inFiles(`handler/${key}`) === undefined) return undefined;
    const n = intOf(get('handler', key), 'handler', key, -1, undefined, err);
    return n !== undefined && n > 0 ? n : undefined;
  };
  const publishKeyValue = get('handler', 'push_in_http_key');
  const publishKey = publishKeyValue.value === '' ? undefined : await keyOf(publishKeyValue, 'push_in_http_key', dir, vars, err, 'handler');

  const config: Config = {
    ...(file !== undefined ? { file } : {}),
    dir,
    global: {
      libdir,
      rundir,
      ipcPrefix,
      portOffset,
      statsConnectionTtlS: int('global', 'stats_connection_ttl', 0, undefined, 120),
      statsConnectionSend: bool('global', 'stats_connection_send', true),
    },
    runner: {
      httpPorts,
      httpsPorts,
      localPorts: localListeners.map((l) => l.path),
      localListeners,
      certsDir: path.join(dir, 'runner', 'certs'),
      logDir: path.resolve(dir, str('runner', 'logdir')),
      logLevel,
      clientBufferSize: int('runner', 'client_buffer_size', 1, MAX_CLIENT_BUFFER_SIZE, 8192),
      clientMaxconn: int('runner', 'client_maxconn', 1, undefined, 50000),
      allowCompression: bool('runner', 'allow_compression', false),
    },
    proxy: {
      routesFile: path.resolve(dir, str('proxy', 'routesfile') || 'routes'),
      debug: bool('proxy', 'debug', false),
      autoCrossOrigin: bool('proxy', 'auto_cross_origin', false),
      acceptXForwardedProtocol: bool('proxy', 'accept_x_forwarded_protocol', false),
      setXForwardedProtocol: setXfp,
      xForwardedFor: xff('x_forwarded_for'),
      xForwardedForTrusted: xff('x_forwarded_for_trusted'),
      origHeadersNeedMark: list('proxy', 'orig_headers_need_mark'),
      acceptPushpinRoute: bool('proxy', 'accept_pushpin_route', false),
      cdnLoop: str('proxy', 'cdn_loop'),
      logFrom: bool('proxy', 'log_from', false),
      logUserAgent: bool('proxy', 'log_user_agent', false),
      sigIss: str('proxy', 'sig_iss'),
      sigKey,
      upstreamKey,
      sockjsUrl: str('proxy', 'sockjs_url'),
      workers,
    },
    handler: {
      pushInSpec: spec('handler', 'push_in_spec', str('handler', 'push_in_spec')),
      pushInSubSpecs,
      pushInSubConnect: bool('handler', 'push_in_sub_connect', false),
      pushInHttpAddr: str('handler', 'push_in_http_addr'),
      pushInHttpPort,
      pushInHttpMaxHeadersSize: int('handler', 'push_in_http_max_headers_size', 1, undefined, 10000),
      pushInHttpMaxBodySize: int('handler', 'push_in_http_max_body_size', 1, undefined, 1000000),
      statsSpec: spec('handler', 'stats_spec', str('handler', 'stats_spec')),
      commandSpec: spec('handler', 'command_spec', str('handler', 'command_spec')),
      messageRate: fileLimit('message_rate'),
      messageHwm: fileLimit('message_hwm'),
      messageBlockSize: blockSizeText === '' ? -1 : int('handler', 'message_block_size', -1, undefined, -1),
      messageWaitMs: int('handler', 'message_wait', 0, undefined, 5000),
      idCacheTtlS: int('handler', 'id_cache_ttl', 0, undefined, 60),
      updateOnFirstSubscription: bool('handler', 'update_on_first_subscription', true),
      connectionSubscriptionMax: int('handler', 'connection_subscription_max', 0, undefined, 20),
      subscriptionLingerS: int('handler', 'subscription_linger', 0, undefined, 60),
      statsSubscriptionTtlS: int('handler', 'stats_subscription_ttl', 0, undefined, 60),
      statsReportIntervalS: int('handler', 'stats_report_interval', 0, undefined, 10),
      statsFormat,
      prometheusPort,
      ...(prometheusAddr !== undefined ? { prometheusAddr } : {}),
      prometheusPrefix: str('handler', 'prometheus_prefix'),
      ...(publishKey !== undefined && publishKey.length > 0 ? { publishKey } : {}),
    },
  };
  return { config: deepFreeze(config), diagnostics };
}

function builtInValue(section: Section, key: string): Value {
  const raw = DEFAULTS[section][key] ?? '';
  const parsed = parseIniValue(raw);
  const v = typeof parsed === 'string' ? { value: raw, list: [raw] } : parsed;
  return { ...v, file: BUILT_IN, line: 0, builtIn: true };
}

type Report = (file: string, line: number, message: string) => void;

function report<T>(r: Parsed<T>, v: Value, section: string, key: string, err: Report): T | undefined {
  if (r.ok) return r.value;
  err(v.file, v.line, `[${section}] ${key}: ${r.error}`);
  return undefined;
}

function intOf(v: Value, section: string, key: string, min: number, max: number | undefined, err: Report): number | undefined {
  // An empty value means "not set" (Qt would read 0, which no numeric key wants).
  if (v.value.trim() === '') return undefined;
  return report(parseInteger(v.value, min, max), v, section, key, err);
}

/** Warns about unknown sections and keys, and (once per key) about unsupported or deprecated ones. */
function reportKeys(docs: IniDocument[], warn: Report): void {
  const warnedOnce = new Set<string>();
  for (const doc of docs) {
    const unknownSections = new Set<string>();
    for (const s of doc.sections) {
      if (!(SECTIONS as readonly string[]).includes(s.name) && !unknownSections.has(s.name)) {
        unknownSections.add(s.name);
        warn(doc.file, s.line, `unknown section [${s.name}]; its keys are ignored`);
      }
    }
    for (const e of doc.entries) {
      if (e.section === '') {
        warn(doc.file, e.line, `${e.key} is outside any section and is ignored`);
        continue;
      }
      if (unknownSections.has(e.section)) continue;
      const status = keyStatus(e.section, e.key);
      const id = `${e.section}/${e.key}`;
      if (status === undefined) {
        const elsewhere = sectionsKnowing(e.key, e.section);
        const hint = elsewhere.length > 0 ? ` (it belongs in [${elsewhere.join('] or [')}])` : '';
        warn(doc.file, e.line, `unknown key ${e.key} in [${e.section}]${hint}`);
      } else if (status === 'unsupported' && !warnedOnce.has(id)) {
        warnedOnce.add(id);
        warn(doc.file, e.line, `[${e.section}] ${e.key} is not supported yet and is ignored`);
      } else if (status === 'deprecated' && !warnedOnce.has(id)) {
        warnedOnce.add(id);
        warn(doc.file, e.line, `[${e.section}] ${e.key} is deprecated; ${deprecationHint(e.section, e.key)}`);
      }
    }
  }
}

/**
 * Resolves a key spec (sig_key, upstream_key, push_in_http_key) into bytes: `file:PATH` (relative to the
 * config dir; PEM text kept as is, anything else read as hex, as Pushpin), `base64:DATA`,
 * inline PEM text, or a plain secret (its UTF-8 bytes). Empty = no key.
 */
async function keyOf(
  v: Value, key: string, dir: string, vars: Parameters<typeof applyTemplate>[1], err: Report, section: Section = 'proxy',
): Promise<Uint8Array> {
  const s = applyTemplate(v.value, vars);
  const fail = (msg: string): Uint8Array => { err(v.file, v.line, `[${section}] ${key}: ${msg}`); return new Uint8Array(0); };
  if (s.startsWith('file:')) {
    const p = path.resolve(dir, s.slice(5));
    let data: Buffer;
    try {
      const st = await stat(p);
      if (!st.isFile()) return fail(`key file ${p} is not a regular file`);
      if (st.size > MAX_KEY_FILE_BYTES) return fail(`key file ${p} is too large (${st.size} bytes, limit ${MAX_KEY_FILE_BYTES})`);
      data = await readFile(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return fail(`cannot read key file ${p}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
    }
    if (data.subarray(0, 10).toString('latin1') === '-----BEGIN') return new Uint8Array(data);
    const bytes = decodeHex(data.toString('latin1'));
    if (!bytes) return fail(`key file ${p} is neither PEM nor hex`);
    return bytes;
  }
  if (s.startsWith('base64:')) {
    const bytes = decodeBase64(s.slice(7));
    if (!bytes) return fail('invalid base64 after "base64:"');
    return bytes;
  }
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

/** Reads local_ports items: `PATH[?mode=OCTAL&user=NAME&group=NAME]`, PATH relative to the config dir. */
function parseLocalPorts(v: Value, items: string[], dir: string, err: Report): LocalListener[] {
  if (items.length > MAX_LISTENERS) {
    err(v.file, v.line, `[runner] local_ports: too many listeners (${items.length}, limit ${MAX_LISTENERS})`);
    return [];
  }
  const out: LocalListener[] = [];
  for (const item of items) {
    const q = item.indexOf('?');
    const p = q < 0 ? item : item.slice(0, q);
    if (p === '') {
      err(v.file, v.line, `[runner] local_ports: empty path in "${item}"`);
      continue;
    }
    const l: LocalListener = { path: path.resolve(dir, p) };
    if (q >= 0) {
      const params = new URLSearchParams(item.slice(q + 1));
      const mode = params.get('mode');
      if (mode !== null) {
        if (!/^[0-7]{1,4}$/.test(mode)) {
          err(v.file, v.line, `[runner] local_ports: invalid mode "${mode}" (expected octal, e.g. 660) in "${item}"`);
          continue;
        }
        l.mode = parseInt(mode, 8);
      }
      const user = params.get('user');
      if (user) l.user = user;
      const group = params.get('group');
      if (group) l.group = group;
    }
    out.push(l);
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o === null || typeof o !== 'object' || ArrayBuffer.isView(o)) return o;
  for (const v of Object.values(o as object)) deepFreeze(v);
  return Object.freeze(o);
}
