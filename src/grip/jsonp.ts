/**
 * JSON-P, as Pushpin does it for routes with auto cross-origin on: a GET carrying a
 * callback query parameter is turned into the request it describes (`_method`,
 * `_headers`, `_body`, or the route's body parameter), and the answer is wrapped in a
 * call to the callback, served as application/javascript with status 200. Pure.
 *
 * Pushpin has two wrappers, and clients see both:
 * - responses relayed by the proxy ({@link wrapJsonpResponse}, streamed with
 *   {@link createJsonpStreamEncoder}) use `{"code": N, "reason": …, "headers": …,
 *   "body": …}` with spaces after the colons and commas;
 * - responses the GRIP handler sends for a held request (a publish or a long-poll
 *   timeout, {@link wrapJsonpHeldResponse}) use compact JSON with sorted keys
 *   `{"body":…,"code":N,"headers":…,"reason":…}`.
 *
 * Strings are encoded the way Qt encodes them: invalid UTF-8 becomes U+FFFD one byte at
 * a time, a leading byte-order mark is dropped, non-ASCII text is written as raw UTF-8,
 * and only `"`, `\` and control characters are escaped.
 *
 * Header names and values are latin1 byte strings (the proxy's convention); callbacks
 * and bodies are bytes.
 */

/** Callback query parameter when the route sets no `jsonp_cb`. */
export const DEFAULT_JSONP_CALLBACK_PARAM = 'callback';

/** Content-Type of every JSON-P answer. */
export const JSONP_CONTENT_TYPE = 'application/javascript';

/**
 * Most bytes in one decoded JSON-P query parameter (callback, `_method`, `_headers`,
 * body). The proxy's request-header limit already bounds the URL; this keeps the parser
 * bounded on its own, whatever that limit is set to.
 */
export const MAX_JSONP_PARAM_BYTES = 64 * 1024;

/** Most headers a `_headers` object may carry; guards the backend request's size. */
export const MAX_JSONP_HEADERS = 100;

/** Most bytes in a `_method` value; a method is a short token. */
export const MAX_JSONP_METHOD_BYTES = 64;

/** Most `&`-separated items in the query; bounds the scan of a hostile URL. */
export const MAX_JSONP_QUERY_ITEMS = 1000;

/**
 * A JSON-P request is malformed. `message` is Pushpin's text (e.g. "Invalid callback
 * parameter."). The client gets `status` `reason` with `body` as text/plain, and the CORS
 * headers of {@link applyCorsHeaders} (Pushpin adds them to this answer too).
 */
export class JsonpError extends Error {
  override readonly name = 'JsonpError';
  /** Stable code for the error catalog. */
  readonly code = 'JSONP_INVALID';
  readonly status = 400;
  readonly reason = 'Bad Request';
  /** The query parameter at fault, e.g. `callback`, `_method`, `_headers`, `_body`. */
  readonly param: string;
  constructor(message: string, param: string) {
    super(message);
    this.param = param;
  }
  /** The text/plain body of the 400 answer (the message and a newline). */
  get body(): string {
    return `${this.message}\n`;
  }
}

/** JSON-P settings of a route (see {@link jsonpOptionsFromRoute}). */
export interface JsonpOptions {
  /** Callback query parameter; default {@link DEFAULT_JSONP_CALLBACK_PARAM}. */
  callbackParam?: string;
  /** `jsonp_body`: query parameter carrying a JSON body (replaces `_body`). */
  bodyParam?: string;
  /** `jsonp_defcb`: callback used when only the body parameter is present. */
  defaultCallback?: string;
  /** Method when `_method` is absent (Pushpin: POST in basic mode, GET in extended). */
  defaultMethod: string;
  mode: 'basic' | 'extended';
}

/** Maps a route's fields to {@link JsonpOptions}. */
export function jsonpOptionsFromRoute(route: {
  jsonpCallback?: string; jsonpBody?: string; jsonpDefaultCallback?: string;
  jsonpDefaultMethod: string; jsonpMode?: 'basic' | 'extended';
}): JsonpOptions {
  const opts: JsonpOptions = { defaultMethod: route.jsonpDefaultMethod, mode: route.jsonpMode ?? 'extended' };
  if (route.jsonpCallback !== undefined) opts.callbackParam = route.jsonpCallback;
  if (route.jsonpBody !== undefined) opts.bodyParam = route.jsonpBody;
  if (route.jsonpDefaultCallback !== undefined) opts.defaultCallback = route.jsonpDefaultCallback;
  return opts;
}

/** A JSON-P request turned into the request it stands for. */
export interface JsonpRequest {
  /** Callback name, raw bytes as given (Pushpin checks only that it is not empty). */
  callback: Buffer;
  mode: 'basic' | 'extended';
  /** Method for the backend: `_method`, else the route's default. */
  method: string;
  /**
   * Headers for the backend, in Pushpin's order: those of `_headers` (sorted by name,
   * without Host and Accept), Host (the client's), `Accept: *\/*`, then the client's
   * other headers (without Host, Accept, Content-Length and Transfer-Encoding: the body
   * is `body` now, and the proxy frames it).
   */
  headers: Array<[string, string]>;
  /** Body for the backend (empty when none was given). */
  body: Buffer;
  /** The path and query with the JSON-P parameters removed (no `?` when none remain). */
  path: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** RFC 9110 token: what an HTTP method or header name may contain. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Bytes a header value may hold on the wire (HTAB, visible ASCII, space, obs-text). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Decodes `%XX` escapes to bytes, leaving a `%` without two hex digits as it is (Pushpin's
 * URL parser re-encodes those first, so they decode to themselves). `+` stays `+`.
 */
function percentDecode(raw: string): Buffer {
  const out: number[] = [];
  for (let n = 0; n < raw.length; n++) {
    const c = raw.charCodeAt(n);
    if (c === 0x25 && HEX.test(raw.slice(n + 1, n + 3))) {
      out.push(parseInt(raw.slice(n + 1, n + 3), 16));
      n += 2;
    } else out.push(c & 0xff);
  }
  return Buffer.from(out);
}

/** A query key as Pushpin compares it: escapes of unreserved characters decoded. */
function normalizeKey(raw: string): string {
  return raw.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : m;
  });
}

interface QueryItem { raw: string; key: string; value: string | undefined }

function parseQuery(query: string): QueryItem[] {
  const pieces = query.split('&', MAX_JSONP_QUERY_ITEMS + 1);
  if (pieces.length > MAX_JSONP_QUERY_ITEMS) throw new JsonpError('Too many query parameters.', 'query');
  // A trailing '&' ends the last item; it does not start an empty one.
  if (pieces.length > 0 && pieces[pieces.length - 1] === '') pieces.pop();
  return pieces.map((raw) => {
    const eq = raw.indexOf('=');
    return eq === -1 ? { raw, key: normalizeKey(raw), value: undefined } : { raw, key: normalizeKey(raw.slice(0, eq)), value: raw.slice(eq + 1) };
  });
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Latin1 byte string of a JS string's UTF-8 bytes. */
function utf8ToLatin1(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** Pushpin's method check (every character printable in Latin-1), plus: an HTTP token. */
function isValidMethod(bytes: Buffer): boolean {
  if (bytes.length === 0 || bytes.length > MAX_JSONP_METHOD_BYTES) return false;
  // Pushpin accepts any printable text and lets its HTTP client fail later (a JSON-P
  // wrapped 400); gripd's client refuses non-tokens, so refuse them up front.
  return TOKEN.test(bytes.toString('latin1'));
}

function parseHeadersParam(bytes: Buffer): Array<[string, string]> {
  const bad = (): JsonpError => new JsonpError('Invalid _headers parameter.', '_headers');
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    throw bad();
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad();
  const entries = Object.entries(doc as Record<string, unknown>);
  if (entries.length > MAX_JSONP_HEADERS) throw bad();
  // Pushpin reads the object into a sorted map; its headers go out in key order.
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const out: Array<[string, string]> = [];
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw bad();
    const name = utf8ToLatin1(key);
    const lc = asciiLower(name);
    if (lc === 'host' || lc === 'accept') continue;
    const v = utf8ToLatin1(value);
    // Pushpin forwards anything and its HTTP client fails (or truncates at NUL); gripd
    // refuses what could not be sent as a header.
    if (!TOKEN.test(name) || !HEADER_VALUE.test(v)) throw bad();
    out.push([name, v]);
  }
  return out;
}

/**
 * Recognises a JSON-P request and rewrites it, as Pushpin does on a route with auto
 * cross-origin on. Returns null when the request is not JSON-P: the method is not
 * exactly `GET`, or the query has neither the callback parameter nor (with both
 * `defaultCallback` and `bodyParam` set) the body parameter. The first occurrence of a
 * parameter wins; every occurrence is removed from `path`.
 *
 * `pathWithQuery` is the request target as received (latin1); `headers` the client's.
 * Throws {@link JsonpError} for: an empty callback; an empty, non-token or over-long
 * `_method`; a `_headers` that is not a JSON object of strings (or has more than
 * {@link MAX_JSONP_HEADERS} entries, or a name/value that cannot be sent); an empty
 * `_body` / body parameter; any parameter over {@link MAX_JSONP_PARAM_BYTES}.
 */
export function parseJsonpRequest(
  method: string,
  pathWithQuery: string,
  headers: ReadonlyArray<readonly [string, string]>,
  opts: JsonpOptions,
): JsonpRequest | null {
  if (method !== 'GET') return null;
  const qpos = pathWithQuery.indexOf('?');
  if (qpos === -1) return null;
  const callbackParam = opts.callbackParam !== undefined && opts.callbackParam !== '' ? opts.callbackParam : DEFAULT_JSONP_CALLBACK_PARAM;
  const bodyParam = opts.bodyParam ?? '';
  const defaultCallback = opts.defaultCallback ?? '';

  let items = parseQuery(pathWithQuery.slice(qpos + 1));
  const find = (key: string): QueryItem | undefined => items.find((i) => i.key === key);
  const take = (key: string, message: string, allowEmpty: boolean): Buffer | undefined => {
    const item = find(key);
    if (item === undefined) return undefined;
    items = items.filter((i) => i.key !== key);
    const raw = item.value ?? '';
    // Each decoded byte takes at most 3 raw characters: refuse before decoding when even
    // the shortest decoding would be over the limit.
    if (raw.length > 3 * MAX_JSONP_PARAM_BYTES) throw new JsonpError(message, key);
    const bytes = percentDecode(raw);
    if (bytes.length > MAX_JSONP_PARAM_BYTES || (!allowEmpty && bytes.length === 0)) throw new JsonpError(message, key);
    return bytes;
  };

  const hasCallback = find(callbackParam) !== undefined;
  if (!hasCallback && (defaultCallback === '' || bodyParam === '' || find(bodyParam) === undefined)) return null;

  let callback: Buffer;
  if (hasCallback) callback = take(callbackParam, 'Invalid callback parameter.', false)!;
  else callback = Buffer.from(defaultCallback, 'latin1');

  let newMethod = '';
  const methodBytes = take('_method', 'Invalid _method parameter.', false);
  if (methodBytes !== undefined) {
    if (!isValidMethod(methodBytes)) throw new JsonpError('Invalid _method parameter.', '_method');
    newMethod = methodBytes.toString('latin1');
  }

  let newHeaders: Array<[string, string]> = [];
  const headersBytes = take('_headers', 'Invalid _headers parameter.', true);
  if (headersBytes !== undefined) newHeaders = parseHeadersParam(headersBytes);

  let body: Buffer = Buffer.alloc(0);
  if (bodyParam !== '') {
    const b = take(bodyParam, 'Invalid body parameter.', false);
    if (b !== undefined) {
      body = b;
      newHeaders = newHeaders.filter(([n]) => asciiLower(n) !== 'content-type');
      newHeaders.push(['Content-Type', 'application/json']);
    }
  } else {
    const b = take('_body', 'Invalid _body parameter.', false);
    if (b !== undefined) body = b;
  }

  const path = items.length === 0 ? pathWithQuery.slice(0, qpos) : `${pathWithQuery.slice(0, qpos)}?${items.map((i) => i.raw).join('&')}`;

  let host: string | undefined;
  const rest: Array<[string, string]> = [];
  for (const [name, value] of headers) {
    const lc = asciiLower(name);
    if (lc === 'host') { host ??= value; continue; }
    if (lc === 'accept' || lc === 'content-length' || lc === 'transfer-encoding') continue;
    rest.push([name, value]);
  }
  if (host !== undefined) newHeaders.push(['Host', host]);
  newHeaders.push(['Accept', '*/*']);
  newHeaders.push(...rest);

  return {
    callback,
    mode: opts.mode,
    method: newMethod !== '' ? newMethod : opts.defaultMethod,
    headers: newHeaders,
    body,
    path,
  };
}

// ---------------------------------------------------------------------------------
// Qt-compatible string encoding

const UTF8_BOM = [0xef, 0xbb, 0xbf];
const REPLACEMENT = [0xef, 0xbf, 0xbd];

/**
 * Length of the valid UTF-8 sequence starting at `i`, or 0 when the bytes there do not
 * start one (overlong forms, surrogates and code points above U+10FFFF are invalid;
 * noncharacters are fine, as in Qt).
 */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const x = b[i + k];
    return x !== undefined && x >= lo && x <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * Length of an incomplete but so-far-valid UTF-8 sequence at the very end of `b`
 * (0-3), so a stream encoder can hold it back until the next chunk completes it.
 */
function incompleteTailLength(b: Uint8Array): number {
  for (let k = 1; k <= 3 && k <= b.length; k++) {
    const lead = b[b.length - k]!;
    if (lead >= 0x80 && lead <= 0xbf) continue;
    const need = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (need === 0 || k >= need) return 0;
    if (k >= 2) {
      const second = b[b.length - k + 1]!;
      const lo = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
      const hi = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
      if (second < lo || second > hi) return 0;
    }
    return k;
  }
  return 0;
}

/** Bytes read as UTF-8 the way Qt reads them (each invalid byte becomes U+FFFD). */
function qtDecodeUtf8(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i]! < 0x80) {
      out += String.fromCharCode(bytes[i]!);
      i++;
      continue;
    }
    const len = utf8SequenceLength(bytes, i);
    if (len === 0) {
      out += '\ufffd';
      i++;
    } else {
      out += Buffer.from(bytes.subarray(i, i + len)).toString('utf8');
      i += len;
    }
  }
  return out;
}

const HEXDIGITS = '0123456789abcdef';

/**
 * The JSON string-literal content (no quotes) of bytes read as UTF-8, as Qt writes it:
 * `"` `\` \b \f \n \r \t escaped, other controls below 0x20 as \u00XX, everything else
 * (including DEL and non-ASCII) raw; each byte of invalid UTF-8 becomes U+FFFD; a
 * leading byte-order mark is dropped when `dropBom`.
 */
export function encodeJsonStringContent(bytes: Uint8Array, dropBom = true): Buffer {
  const out: number[] = [];
  let i = 0;
  if (dropBom && bytes.length >= 3 && bytes[0] === UTF8_BOM[0] && bytes[1] === UTF8_BOM[1] && bytes[2] === UTF8_BOM[2]) i = 3;
  while (i < bytes.length) {
    const c = bytes[i]!;
    if (c < 0x80) {
      if (c === 0x22) out.push(0x5c, 0x22);
      else if (c === 0x5c) out.push(0x5c, 0x5c);
      else if (c >= 0x20) out.push(c);
      else if (c === 0x08) out.push(0x5c, 0x62);
      else if (c === 0x0c) out.push(0x5c, 0x66);
      else if (c === 0x0a) out.push(0x5c, 0x6e);
      else if (c === 0x0d) out.push(0x5c, 0x72);
      else if (c === 0x09) out.push(0x5c, 0x74);
      else out.push(0x5c, 0x75, 0x30, 0x30, HEXDIGITS.charCodeAt(c >> 4), HEXDIGITS.charCodeAt(c & 0xf));
      i++;
      continue;
    }
    const len = utf8SequenceLength(bytes, i);
    if (len === 0) {
      out.push(...REPLACEMENT);
      i++;
    } else {
      for (let k = 0; k < len; k++) out.push(bytes[i + k]!);
      i += len;
    }
  }
  return Buffer.from(out);
}

/** A quoted JSON string of a latin1 byte string read as UTF-8. */
function jsonStringOfLatin1(s: string): string {
  return `"${encodeJsonStringContent(Buffer.from(s, 'latin1')).toString('latin1')}"`;
}

/** Sort key of a latin1 byte string as Qt orders it (its UTF-16 decoding). */
function qtSortKey(s: string): string {
  return qtDecodeUtf8(Buffer.from(s, 'latin1'));
}

function compareBy<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

/** Drops one trailing CRLF or LF (basic mode wraps the body as a call argument). */
function trimTrailingNewline(body: Buffer): Buffer {
  if (body.length >= 2 && body[body.length - 2] === 0x0d && body[body.length - 1] === 0x0a) return body.subarray(0, body.length - 2);
  if (body.length >= 1 && body[body.length - 1] === 0x0a) return body.subarray(0, body.length - 1);
  return body;
}

/** Headers the backend hop framed; Pushpin's HTTP client consumes them before wrapping. */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'content-encoding']);

/** Response headers the proxy's JSON-P answer copies from the wrapped response. */
const MIRRORED_HEADERS = new Set(['cache-control']);

/** A complete JSON-P answer. */
export interface JsonpResponse {
  status: 200;
  reason: 'OK';
  headers: Array<[string, string]>;
  body: Buffer;
}

function callPrefix(callback: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from('/**/'), callback, Buffer.from('(')]);
}

/** `{"code": N, "reason": R, "headers": {...}, "body": "` of the proxy's wrapper. */
function proxyEnvelopeStart(
  callback: Uint8Array, code: number, reason: string, headers: ReadonlyArray<readonly [string, string]>, keepContentLength = false,
): Buffer {
  // One entry per exact name (first wins), keys in sorted order, empty values as null:
  // Pushpin puts the raw headers in a sorted map and Qt turns empty byte strings into null.
  const seen = new Set<string>();
  const entries: Array<[string, string]> = [];
  for (const [name, value] of headers) {
    const lc = asciiLower(name);
    if ((HOP_HEADERS.has(lc) && !(keepContentLength && lc === 'content-length')) || lc.startsWith('grip-') || seen.has(name)) continue;
    seen.add(name);
    entries.push([name, value]);
  }
  entries.sort(compareBy(([n]) => qtSortKey(n)));
  const obj = entries.map(([n, v]) => `${jsonStringOfLatin1(n)}:${v === '' ? 'null' : jsonStringOfLatin1(v)}`).join(',');
  const head = `{"code": ${code}, "reason": ${jsonStringOfLatin1(reason)}, "headers": {${obj}}, "body": "`;
  return Buffer.concat([callPrefix(callback), Buffer.from(head, 'latin1')]);
}

/**
 * Wraps a complete response relayed by the proxy (a plain backend response, or the
 * backend's response to a JSON-P request that did not hold), giving the exact bytes
 * Pushpin sends:
 *
 * - extended: `/**\/CB({"code": CODE, "reason": "R", "headers": {...}, "body": "B"});\n`
 *   where headers is compact JSON, one key per exact name (first wins), sorted, an
 *   empty value as `null`, without framing headers (Content-Length, Transfer-Encoding,
 *   Connection, Keep-Alive, Content-Encoding) and Grip-* headers;
 * - basic: `/**\/CB(BODY);\n` with one trailing CRLF or LF of BODY removed.
 *
 * The answer is 200 OK with Content-Type application/javascript, Content-Length, and the
 * response's Cache-Control headers. No CORS headers (Pushpin adds none to JSON-P).
 * `reason` and `headers` are latin1 byte strings; `body` should not be content-encoded.
 *
 * `opts.keepContentLength`: list Content-Length in the envelope. Pushpin does so for the
 * answers the proxy makes itself (e.g. its 502 "Error while proxying to origin."), whose
 * headers never went through its HTTP client; pass true for gripd's own answers.
 */
export function wrapJsonpResponse(
  callback: Uint8Array,
  code: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Uint8Array,
  mode: 'basic' | 'extended',
  opts: { keepContentLength?: boolean } = {},
): JsonpResponse {
  let out: Buffer;
  if (mode === 'extended') {
    out = Buffer.concat([proxyEnvelopeStart(callback, code, reason, headers, opts.keepContentLength === true), encodeJsonStringContent(body), Buffer.from('"});\n')]);
  } else {
    out = Buffer.concat([callPrefix(callback), trimTrailingNewline(Buffer.from(body)), Buffer.from(');\n')]);
  }
  const outHeaders: Array<[string, string]> = [['Content-Type', JSONP_CONTENT_TYPE], ['Content-Length', String(out.length)]];
  for (const [name, value] of headers) if (MIRRORED_HEADERS.has(asciiLower(name))) outHeaders.push([name, value]);
  return { status: 200, reason: 'OK', headers: outHeaders, body: out };
}

/** Incremental JSON-P wrapping of a streamed proxied response. */
export interface JsonpStreamEncoder {
  /** Status line and headers to send (200 OK, Content-Type only; the proxy frames). */
  readonly status: 200;
  readonly reason: 'OK';
  readonly headers: Array<[string, string]>;
  /** Bytes to send first: `/**\/CB(` and, in extended mode, the envelope up to the body. */
  start(): Buffer;
  /** Bytes to send for the next body chunk (may be empty: a held-back newline or partial character). */
  push(chunk: Uint8Array): Buffer;
  /** Bytes to send when the body ends: anything held back, then `);\n` or `"});\n`. */
  end(): Buffer;
}

/**
 * Starts wrapping a proxied response whose body streams (Pushpin sends it chunked
 * without Content-Length or mirrored headers). Same envelope as
 * {@link wrapJsonpResponse}. In basic mode a chunk's trailing CRLF/LF is held back until
 * more body arrives, so the one ending the body is dropped. In extended mode a UTF-8
 * character split across chunks is held back and encoded whole (Pushpin encodes each
 * chunk on its own and would emit U+FFFD there).
 */
export function createJsonpStreamEncoder(
  callback: Uint8Array,
  code: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  mode: 'basic' | 'extended',
): JsonpStreamEncoder {
  let held: Buffer = Buffer.alloc(0);
  let first = true;
  return {
    status: 200,
    reason: 'OK',
    headers: [['Content-Type', JSONP_CONTENT_TYPE]],
    start: () => (mode === 'extended' ? proxyEnvelopeStart(callback, code, reason, headers) : callPrefix(callback)),
    push(chunk) {
      const data = held.length > 0 ? Buffer.concat([held, chunk]) : Buffer.from(chunk);
      if (mode === 'basic') {
        const trimmed = trimTrailingNewline(data);
        held = data.subarray(trimmed.length);
        return trimmed;
      }
      const keep = incompleteTailLength(data);
      held = Buffer.from(data.subarray(data.length - keep));
      const body = data.subarray(0, data.length - keep);
      // Qt drops a byte-order mark only at the start of the body.
      const enc = encodeJsonStringContent(body, first);
      if (body.length > 0) first = false;
      return enc;
    },
    end() {
      const tail = mode === 'extended' ? encodeJsonStringContent(held, first) : Buffer.alloc(0);
      held = Buffer.alloc(0);
      return Buffer.concat([tail, Buffer.from(mode === 'extended' ? '"});\n' : ');\n')]);
    },
  };
}

/**
 * Wraps the response the GRIP handler gives a held request (a published http-response
 * or a long-poll timeout), as Pushpin's handler does:
 *
 * - extended: `/**\/CB({"body":"B","code":CODE,"headers":{...},"reason":"R"});\n`,
 *   compact with sorted keys; headers merged case-insensitively (values joined with
 *   ", ", name of the first occurrence), sorted by name, Content-Length left out;
 * - basic: `/**\/CB(BODY);\n` with one trailing CRLF or LF removed.
 *
 * The answer is 200 OK with the response's own headers minus Content-Length and
 * Content-Type, then `Content-Type: application/javascript` (the caller frames the
 * body). No CORS headers. Headers are latin1 byte strings, Grip-* already removed.
 */
export function wrapJsonpHeldResponse(
  callback: Uint8Array,
  code: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Uint8Array,
  mode: 'basic' | 'extended',
): JsonpResponse {
  const kept = headers.filter(([n]) => asciiLower(n) !== 'content-length');
  let out: Buffer;
  if (mode === 'extended') {
    const merged: Array<[string, string[]]> = [];
    const index = new Map<string, string[]>();
    for (const [name, value] of kept) {
      const lc = asciiLower(name);
      const list = index.get(lc);
      if (list !== undefined) list.push(value);
      else {
        const values = [value];
        index.set(lc, values);
        merged.push([name, values]);
      }
    }
    merged.sort(compareBy(([n]) => qtSortKey(n)));
    const obj = merged.map(([n, vs]) => `${jsonStringOfLatin1(n)}:${jsonStringOfLatin1(vs.join(', '))}`).join(',');
    out = Buffer.concat([
      callPrefix(callback),
      Buffer.from('{"body":"'),
      encodeJsonStringContent(body),
      Buffer.from(`","code":${code},"headers":{${obj}},"reason":${jsonStringOfLatin1(reason)}});\n`, 'latin1'),
    ]);
  } else {
    out = Buffer.concat([callPrefix(callback), trimTrailingNewline(Buffer.from(body)), Buffer.from(');\n')]);
  }
  const outHeaders: Array<[string, string]> = kept.filter(([n]) => asciiLower(n) !== 'content-type').map(([n, v]) => [n, v]);
  outHeaders.push(['Content-Type', JSONP_CONTENT_TYPE]);
  return { status: 200, reason: 'OK', headers: outHeaders, body: out };
}
