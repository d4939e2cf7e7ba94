/**
 * Routes-line parser: one line of Pushpin's routes file -> Route. Pure (no file reads:
 * `sig_key=file:` and `client_cert=`/`client_key=` paths are left for the loader).
 *
 * Which problems reject a line follows Pushpin: it rejects bad quoting, a missing target,
 * bad `proto`/`ssl`/`jsonp_mode` values, an empty `path_beg`, a malformed `header`, and a
 * bad target address or port. Things Pushpin silently accepts (unknown options, values on
 * flag options, non-numeric `path_rem`...) still load, with a warning.
 */
import { RouteLineError } from './errors.js';
import { tokenizeRouteLine, MAX_SECTIONS_PER_LINE, type LineOption, type LineSection } from './line-tokens.js';
import type { Route, Target } from './types.js';

/** Most targets on one route line (failover list); bounds per-request failover work. */
export const MAX_TARGETS_PER_ROUTE = MAX_SECTIONS_PER_LINE - 1;
/** Most `header=` options on one route; bounds per-request header rewriting. */
export const MAX_HEADERS_PER_ROUTE = 64;
/** Most `sub=` options on one target; bounds implicit subscriptions per WebSocket. */
export const MAX_SUBSCRIPTIONS_PER_TARGET = 64;

/** RFC 9110 token: what a `header=` name may contain. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII, space, tab and anything past 0x7f: what a `header=` value may contain (no CR, LF, NUL or other controls). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;

/** A route and the non-fatal remarks about its line. */
export interface ParsedRouteLine {
  route: Route;
  /** Things Pushpin accepts silently that are probably mistakes. */
  warnings: string[];
}

/** Options a condition understands; value kind drives the "takes no value" warning. */
const CONDITION_OPTIONS: ReadonlyMap<string, 'flag' | 'value' | 'multi'> = new Map([
  ['proto', 'value'],
  ['ssl', 'value'],
  ['id', 'value'],
  ['path_beg', 'value'],
  ['sig_iss', 'value'],
  ['sig_key', 'value'],
  ['prefix', 'value'],
  ['orig_headers', 'flag'],
  ['as_host', 'value'],
  ['path_rem', 'value'],
  ['replace_beg', 'value'],
  ['debug', 'flag'],
  ['aco', 'flag'],
  ['jsonp_mode', 'value'],
  ['jsonp_cb', 'value'],
  ['jsonp_body', 'value'],
  ['jsonp_defcb', 'value'],
  ['jsonp_defmethod', 'value'],
  ['session', 'flag'],
  ['sockjs', 'value'],
  ['sockjs_as_path', 'value'],
  ['header', 'multi'],
  ['no_grip', 'flag'],
  ['log_level', 'value'],
]);

const TARGET_OPTIONS: ReadonlyMap<string, 'flag' | 'value' | 'multi'> = new Map([
  ['ssl', 'flag'],
  ['untrusted', 'flag'],
  ['trust_connect_host', 'flag'],
  ['insecure', 'flag'],
  ['host', 'value'],
  ['sub', 'multi'],
  ['over_http', 'flag'],
  ['one_event', 'flag'],
  ['ipc_file_mode', 'value'],
  ['client_cert', 'value'],
  ['client_key', 'value'],
]);

/** Options of one section, looked up as Pushpin does: the last occurrence wins. */
class Options {
  private readonly byName = new Map<string, LineOption[]>();

  constructor(
    section: LineSection,
    known: ReadonlyMap<string, 'flag' | 'value' | 'multi'>,
    what: string,
    warnings: string[],
  ) {
    for (const o of section.options) {
      const list = this.byName.get(o.name);
      if (list === undefined) this.byName.set(o.name, [o]);
      else list.push(o);
    }
    for (const [name, list] of this.byName) {
      const kind = known.get(name);
      if (kind === undefined) {
        warnings.push(`unknown ${what} option '${name}' ignored`);
        continue;
      }
      if (kind === 'flag') {
        for (const o of list) {
          if (o.hasValue) warnings.push(`${what} option '${name}' takes no value; '=${o.value}' ignored`);
        }
      } else if (kind === 'value' && list.length > 1) {
        warnings.push(`${what} option '${name}' given ${list.length} times; the last one is used`);
      }
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Value of the last occurrence, or undefined when absent. */
  get(name: string): string | undefined {
    const list = this.byName.get(name);
    return list === undefined ? undefined : list[list.length - 1]?.value;
  }

  /** Every value, in the order written. */
  all(name: string): string[] {
    return (this.byName.get(name) ?? []).map((o) => o.value);
  }
}

/**
 * Parses one routes line. Blank and comment-only lines have no route and throw.
 *
 * @param source where the line came from, e.g. "routes:3" (stored in Route.source and the error)
 * @throws RouteLineError with a message naming what is wrong (never any other error)
 */
export function parseRouteLine(line: string, source: string): Route {
  return parseRouteLineDetailed(line, source).route;
}

/**
 * Like parseRouteLine, but also returns warnings about things Pushpin accepts silently.
 * @throws RouteLineError
 */
export function parseRouteLineDetailed(line: string, source: string): ParsedRouteLine {
  const sections = tokenizeRouteLine(line, source);
  const first = sections[0];
  if (first === undefined) throw new RouteLineError('no route on this line (it is blank or a comment)', source);
  if (sections.length < 2) {
    const hint = line.includes('\t') ? ' (tabs do not separate fields; use spaces)' : '';
    throw new RouteLineError(`missing target: a route needs a condition and at least one target${hint}`, source);
  }
  const warnings: string[] = [];
  const route = parseCondition(first, source, warnings);

  for (let k = 1; k < sections.length; k++) {
    const section = sections[k];
    if (section === undefined) continue;
    route.targets.push(parseTarget(section, source, warnings));
  }
  if (!route.idExplicit) route.id = idFromCondition(route);
  return { route, warnings };
}

function parseCondition(section: LineSection, source: string, warnings: string[]): Route {
  const props = new Options(section, CONDITION_OPTIONS, 'route', warnings);
  let domain: string;
  if (section.value === '') domain = '';
  else if (section.value === '*') domain = '*';
  else {
    domain = section.value.toLowerCase();
    if (domain !== section.value) {
      warnings.push(`domain '${section.value}' matched as '${domain}' (Pushpin never matches upper-case domains)`);
    }
  }

  const route: Route = {
    source,
    domain,
    id: '',
    idExplicit: false,
    headers: [],
    prefix: '',
    debug: false,
    autoCrossOrigin: false,
    jsonpEnabled: false,
    jsonpDefaultMethod: 'GET',
    noGrip: false,
    session: false,
    origHeaders: false,
    targets: [],
  };

  const proto = props.get('proto');
  if (proto !== undefined) {
    if (proto !== 'http' && proto !== 'ws') throw new RouteLineError(`proto must be 'http' or 'ws', got '${proto}'`, source);
    route.proto = proto;
  }

  const ssl = props.get('ssl');
  if (ssl !== undefined) {
    if (ssl !== 'yes' && ssl !== 'no') throw new RouteLineError(`ssl must be 'yes' or 'no', got '${ssl}'`, source);
    route.ssl = ssl === 'yes';
  }

  // An empty id= counts as no id: Pushpin then generates one from the condition.
  const id = props.get('id');
  if (id !== undefined && id !== '') {
    route.id = id;
    route.idExplicit = true;
  }

  const pathBeg = props.get('path_beg');
  if (pathBeg !== undefined) {
    if (pathBeg === '') throw new RouteLineError('path_beg cannot be empty', source);
    route.pathBeg = pathBeg;
  }

  const sigIss = props.get('sig_iss');
  if (sigIss !== undefined && sigIss !== '') route.sigIss = sigIss;

  const sigKey = props.get('sig_key');
  if (sigKey !== undefined) {
    if (sigKey.startsWith('file:')) route.sigKeyFile = sigKey.slice(5);
    else if (sigKey.startsWith('base64:')) {
      const b64 = sigKey.slice(7);
      if (!/^[A-Za-z0-9+/=_\-\s]*$/.test(b64)) warnings.push('sig_key base64: value has characters outside base64; they are skipped');
      route.sigKey = new Uint8Array(Buffer.from(b64, 'base64'));
    } else if (sigKey !== '') route.sigKey = new Uint8Array(Buffer.from(sigKey, 'utf8'));
    // An empty sig_key means "use the global key", as in Pushpin.
  }

  route.prefix = props.get('prefix') ?? '';
  route.origHeaders = props.has('orig_headers');

  const asHost = props.get('as_host');
  if (asHost !== undefined && asHost !== '') route.asHost = asHost;

  const pathRem = props.get('path_rem');
  if (pathRem !== undefined) {
    const v = parseQtInt(pathRem, 10);
    if (v === undefined) warnings.push(`path_rem must be an integer, got '${pathRem}'; treated as 0`);
    route.pathRem = v ?? 0;
  }

  const replaceBeg = props.get('replace_beg');
  if (replaceBeg !== undefined) route.replaceBeg = replaceBeg;

  route.debug = props.has('debug');
  route.autoCrossOrigin = props.has('aco');
  route.jsonpEnabled = route.autoCrossOrigin;

  const jsonpMode = props.get('jsonp_mode');
  if (jsonpMode !== undefined) {
    if (jsonpMode !== 'basic' && jsonpMode !== 'extended') {
      throw new RouteLineError(`jsonp_mode must be 'basic' or 'extended', got '${jsonpMode}'`, source);
    }
    route.jsonpMode = jsonpMode;
  }
  const jsonpCb = props.get('jsonp_cb');
  if (jsonpCb !== undefined && jsonpCb !== '') route.jsonpCallback = jsonpCb;
  const jsonpBody = props.get('jsonp_body');
  if (jsonpBody !== undefined && jsonpBody !== '') route.jsonpBody = jsonpBody;
  const jsonpDefcb = props.get('jsonp_defcb');
  if (jsonpDefcb !== undefined && jsonpDefcb !== '') route.jsonpDefaultCallback = jsonpDefcb;
  route.jsonpDefaultMethod = props.get('jsonp_defmethod') ?? (route.jsonpMode === 'basic' ? 'POST' : 'GET');

  route.session = props.has('session');
  const sockjs = props.get('sockjs');
  if (sockjs !== undefined && sockjs !== '') route.sockjs = sockjs;
  const sockjsAsPath = props.get('sockjs_as_path');
  if (sockjsAsPath !== undefined && sockjsAsPath !== '') route.sockjsAsPath = sockjsAsPath;

  const headers = props.all('header');
  if (headers.length > MAX_HEADERS_PER_ROUTE) {
    throw new RouteLineError(`too many header options: ${headers.length} (limit ${MAX_HEADERS_PER_ROUTE})`, source);
  }
  for (const h of headers) {
    const colon = h.indexOf(':');
    if (colon < 1) throw new RouteLineError(`header must be 'name:value', got '${h}'`, source);
    const name = h.slice(0, colon);
    const value = h.slice(colon + 1).replace(/^ +/, '');
    // Caught here, at load, rather than by the HTTP client on every request: a CR, LF or
    // other control byte would otherwise break (or split) each request on this route.
    if (!HEADER_NAME.test(name)) throw new RouteLineError(`header name '${JSON.stringify(name).slice(1, -1)}' is not a valid HTTP token`, source);
    if (!HEADER_VALUE.test(value)) throw new RouteLineError(`header '${name}' value contains a control character`, source);
    route.headers.push([name, value]);
  }
  // Pushpin applies them last-written first; a repeated name therefore keeps its first value.
  route.headers.reverse();

  route.noGrip = props.has('no_grip');

  const logLevel = props.get('log_level');
  if (logLevel !== undefined) {
    const v = parseQtInt(logLevel, 10);
    if (v === undefined) warnings.push(`log_level must be an integer, got '${logLevel}'; treated as 0`);
    route.logLevel = v ?? 0;
  }
  return route;
}

function parseTarget(section: LineSection, source: string, warnings: string[]): Target {
  const val = section.value;
  const target: Target = {
    type: 'http',
    ssl: false,
    insecure: false,
    trustConnectHost: false,
    overHttp: false,
    oneEvent: false,
    subscriptions: [],
    untrusted: false,
  };

  if (val === 'test') target.type = 'test';
  else if (val.startsWith('zhttp/')) {
    target.type = 'zhttp';
    target.zhttpSpec = val.slice(6);
  } else if (val.startsWith('zhttpreq/')) {
    target.type = 'zhttpreq';
    target.zhttpSpec = val.slice(9);
  } else {
    let host: string | undefined;
    let portText: string | undefined;
    if (val.startsWith('[')) {
      const close = val.indexOf(']:');
      if (close >= 0) {
        host = val.slice(1, close);
        portText = val.slice(close + 2);
      }
    } else {
      const colon = val.indexOf(':');
      if (colon >= 0) {
        host = val.slice(0, colon);
        portText = val.slice(colon + 1);
      }
    }
    if (host === undefined || portText === undefined) {
      throw new RouteLineError(
        `target '${val}' has a bad format: expected host:port, [v6addr]:port, test, zhttp/<spec> or zhttpreq/<spec>`,
        source,
        section.column,
      );
    }
    const port = parseQtInt(portText, 10);
    if (port === undefined || port < 1 || port > 65535) {
      throw new RouteLineError(`target '${val}' has an invalid port '${portText}' (must be 1-65535)`, source, section.column);
    }
    if (host === '') warnings.push(`target '${val}' has an empty host`);
    target.host = host;
    target.port = port;
  }
  if ((target.type === 'zhttp' || target.type === 'zhttpreq') && target.zhttpSpec === '') {
    warnings.push(`target '${val}' has an empty zhttp spec`);
  }

  const props = new Options(section, TARGET_OPTIONS, `target '${val}'`, warnings);
  target.ssl = props.has('ssl');
  target.untrusted = props.has('untrusted');
  target.trustConnectHost = props.has('trust_connect_host');
  target.insecure = props.has('insecure');
  const host = props.get('host');
  if (host !== undefined && host !== '') target.hostHeader = host;

  const subs = props.all('sub');
  if (subs.length > MAX_SUBSCRIPTIONS_PER_TARGET) {
    throw new RouteLineError(
      `too many sub options on target '${val}': ${subs.length} (limit ${MAX_SUBSCRIPTIONS_PER_TARGET})`,
      source,
      section.column,
    );
  }
  target.subscriptions = subs.filter((s) => s !== '');
  target.overHttp = props.has('over_http');
  target.oneEvent = props.has('one_event');

  const mode = props.get('ipc_file_mode');
  if (mode !== undefined) {
    const v = parseQtInt(mode, 8);
    if (v === undefined || v < 0) warnings.push(`target '${val}': ipc_file_mode must be an octal number, got '${mode}'; ignored`);
    else target.ipcFileMode = v;
  }
  const cert = props.get('client_cert');
  if (cert !== undefined) target.clientCertFile = cert;
  const key = props.get('client_key');
  if (key !== undefined) target.clientKeyFile = key;
  return target;
}

/**
 * Integer as Qt's QString::toInt reads it: optional surrounding whitespace and sign,
 * digits of `base`, within 32 bits; undefined otherwise.
 */
function parseQtInt(text: string, base: 8 | 10): number | undefined {
  const t = text.trim();
  const re = base === 10 ? /^[+-]?[0-9]+$/ : /^[+-]?[0-7]+$/;
  if (!re.test(t)) return undefined;
  const v = parseInt(t, base);
  if (!Number.isSafeInteger(v) || v > 2147483647 || v < -2147483648) return undefined;
  return v;
}

/**
 * Pushpin's generated route id: `domain,proto,ssl,path_beg` with `*` for each unset part.
 * Pushpin spells ssl=no as "ssl" and ssl=yes as "no-ssl"; kept so ids stay interchangeable.
 */
export function idFromCondition(route: Pick<Route, 'domain' | 'proto' | 'ssl' | 'pathBeg'>): string {
  const domain = route.domain === '' ? '*' : route.domain;
  const proto = route.proto ?? '*';
  const ssl = route.ssl === undefined ? '*' : route.ssl ? 'no-ssl' : 'ssl';
  const pathBeg = route.pathBeg ?? '*';
  return `${domain},${proto},${ssl},${pathBeg}`;
}
