/**
 * GRIP instruction parsing: a backend response's Grip-* headers and/or an
 * application/grip-instruct JSON body become an {@link Instruct}. Pure; mirrors Pushpin's
 * handler (accepted forms, defaults, floors and error texts).
 */
import { InstructError } from './errors.js';
import {
  decodeHeaderText,
  getAllHeaders,
  getHeader,
  getParam,
  headerBytes,
  parseHeaderParams,
  sameHeaderName,
  type HeaderParam,
} from './header-params.js';
import { GRIP_INSTRUCT_CONTENT_TYPE, isInstructContentType } from './headers.js';
import { reasonForStatus } from './status-reasons.js';
import type { ChannelSubscription, GripResponse, HoldMode, Instruct, KeepAlive, Link } from './types.js';
import {
  asBytes,
  asString,
  decodeBase64,
  getInt,
  getList,
  getObject,
  getString,
  isKeyedObject,
  objGet,
  objHas,
  parseIntText,
  readHeaderList,
  readMeta,
  setOwn,
  type Fail,
  type KeyedObject,
} from './values.js';

export { InstructError } from './errors.js';

/** Per-deployment limits applied while parsing. */
export interface InstructLimits {
  /** `connection_subscription_max`: channels beyond this many are dropped (Pushpin keeps the first ones). */
  subscriptionMax: number;
}

/**
 * Largest application/grip-instruct body accepted, in bytes. Protects memory: the whole
 * body is buffered and parsed as JSON (Pushpin's MAX_ACCEPT_RESPONSE_BODY).
 */
export const MAX_INSTRUCT_BODY_BYTES = 100_000;
/** Grip-Timeout when none is given, in seconds. */
export const DEFAULT_HOLD_TIMEOUT_S = 55;
/** Smallest hold timeout; lower values are raised to it (Pushpin's floor). */
export const MIN_HOLD_TIMEOUT_S = 5;
/** Keep-alive timeout when the instruction gives data but no timeout, in seconds. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_S = 55;
/** Smallest keep-alive timeout; lower values are raised to it, in seconds. */
export const MIN_KEEP_ALIVE_TIMEOUT_S = 1;
/** Next-link timeout when `rel=next` has no `timeout=`, in seconds. */
export const DEFAULT_NEXT_LINK_TIMEOUT_S = 120;
/** Filters per channel (Pushpin's MESSAGEFILTERSTACK_SIZE_MAX). */
export const MAX_FILTERS_PER_CHANNEL = 5;
/**
 * Largest timeout kept, in seconds. Protects timers: Node fires a setTimeout longer than
 * 2^31-1 ms at once, so bigger values (Pushpin allows any int) are lowered to this (~24.8 days).
 */
export const MAX_TIMER_S = 2_147_483;
export { GRIP_INSTRUCT_CONTENT_TYPE };

/** Response headers the GRIP parsers drop because the sender sets its own framing. */
const FRAMING_HEADERS = ['connection', 'keep-alive', 'content-encoding', 'transfer-encoding', 'content-length'];

const fail: Fail = (message: string): never => {
  throw new InstructError(message);
};

interface State {
  holdMode: HoldMode | undefined;
  channels: ChannelSubscription[];
  timeoutS: number | undefined;
  exposeHeaders: string[];
  keepAliveMode: 'idle' | 'interval' | undefined;
  keepAliveData: Buffer | undefined;
  keepAliveTimeoutS: number | undefined;
  meta: Record<string, string>;
  response: GripResponse;
  nextLink: Link | undefined;
  goneLink: Link | undefined;
}

/**
 * Parses a backend response carrying GRIP instructions. Reads Grip-Hold, Grip-Channel
 * (comma-separated or repeated; `prev-id=`, up to 5 `filter=`), Grip-Timeout (default 55,
 * floor 5), Grip-Keep-Alive (`format=raw|cstring|base64`, `timeout=`, `mode=idle|interval`),
 * Grip-Status, Grip-Set-Meta, Grip-Link (`rel=next` with `timeout=`, `rel=gone`) and
 * Grip-Expose-Headers; then, when Content-Type is application/grip-instruct, the JSON body
 * (see {@link parseInstructBody}), which adds to and overrides what the headers said.
 *
 * `headers` are byte-string pairs as received; `reason` is the backend's reason phrase.
 * The returned response has every Grip-* header and the framing headers removed, and the
 * body as given (or the JSON instruction's body). Throws {@link InstructError}.
 */
export function parseGripHeaders(
  status: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Buffer,
  limits: InstructLimits,
): Instruct {
  const st: State = {
    holdMode: undefined,
    channels: [],
    timeoutS: undefined,
    exposeHeaders: [],
    keepAliveMode: undefined,
    keepAliveData: undefined,
    keepAliveTimeoutS: undefined,
    meta: {},
    response: { code: status, reason, headers: [], body },
    nextLink: undefined,
    goneLink: undefined,
  };

  readHoldHeader(headers, st);
  readChannelHeaders(headers, st);
  readTimeoutHeader(headers, st);
  st.exposeHeaders = getAllHeaders(headers, 'Grip-Expose-Headers').filter((h) => h !== '');
  readKeepAliveHeader(headers, st);
  readMetaHeaders(headers, st);
  readStatusHeader(headers, st);
  readLinkHeaders(headers, st);

  for (const [name, value] of headers) {
    if (name.length >= 5 && name.slice(0, 5).toLowerCase() === 'grip-') continue;
    if (st.exposeHeaders.length > 0 && !st.exposeHeaders.some((e) => sameHeaderName(e, name))) continue;
    st.response.headers.push([name, value]);
  }

  const contentType = getHeader(headers, 'Content-Type');
  if (contentType !== undefined && isInstructContentType(contentType)) {
    if (status !== 200) fail('response code for application/grip-instruct content must be 200');
    readInstructJson(body, st);
  }

  return finish(st, limits);
}

/**
 * Parses an application/grip-instruct JSON body on its own (as if the backend answered
 * 200 OK with only that Content-Type): `hold` {mode, channels [{name, prev-id, filters}],
 * timeout, keep-alive {content | content-bin, timeout, mode}, meta} and `response`
 * {code, reason, headers (object or [name, value] pairs), body | body-bin}. Bodies over
 * {@link MAX_INSTRUCT_BODY_BYTES} are rejected. Throws {@link InstructError}.
 */
export function parseInstructBody(body: Buffer, limits: InstructLimits): Instruct {
  return parseGripHeaders(200, 'OK', [['Content-Type', GRIP_INSTRUCT_CONTENT_TYPE]], body, limits);
}

function readHoldHeader(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  const v = getHeader(headers, 'Grip-Hold');
  if (v === undefined) return;
  if (v === 'response') st.holdMode = 'response';
  else if (v === 'stream') st.holdMode = 'stream';
  else fail("Grip-Hold must be set to either 'response' or 'stream'");
}

function readChannelHeaders(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  for (const item of getAllHeaders(headers, 'Grip-Channel')) {
    const params = parseHeaderParams(item);
    if (params === null) fail('failed to parse Grip-Channel');
    const name = decodeHeaderText(params[0]![0]);
    // Pushpin would subscribe to "" for a stray comma; gripd skips the empty element.
    if (name === '') continue;
    const ch: ChannelSubscription = { name, filters: [] };
    const prevId = getParam(params.slice(1), 'prev-id');
    if (prevId !== undefined) ch.prevId = decodeHeaderText(prevId);
    for (let n = 1; n < params.length; n++) {
      const p = params[n]!;
      if (p[0] === 'filter') ch.filters.push(decodeHeaderText(p[1]));
    }
    if (ch.filters.length > MAX_FILTERS_PER_CHANNEL) fail(`too many filters for channel '${ch.name}'`);
    st.channels.push(ch);
  }
}

function readTimeoutHeader(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  const v = getHeader(headers, 'Grip-Timeout');
  if (v === undefined) return;
  const n = parseIntText(v);
  if (n === undefined) fail('failed to parse Grip-Timeout');
  if (n < 0) fail('Grip-Timeout has invalid value');
  st.timeoutS = n;
}

function readKeepAliveHeader(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  const raw = getHeader(headers, 'Grip-Keep-Alive');
  // As Pushpin: an empty or unparsable (unterminated quote) value means no keep-alive.
  if (raw === undefined || raw === '') return;
  const params = parseHeaderParams(raw);
  if (params === null) return;
  const val = params[0]![0];
  if (val === '') fail('Grip-Keep-Alive cannot be empty');
  const rest = params.slice(1);

  const mode = getParam(rest, 'mode') ?? '';
  if (mode === '' || mode === 'idle') st.keepAliveMode = 'idle';
  else if (mode === 'interval') st.keepAliveMode = 'interval';
  else fail(`no such Grip-Keep-Alive mode '${decodeHeaderText(mode)}'`);

  const timeout = getParam(rest, 'timeout');
  if (timeout !== undefined) {
    const n = parseIntText(timeout);
    if (n === undefined) fail('failed to parse Grip-Keep-Alive timeout value');
    if (n < 0) fail('Grip-Keep-Alive timeout has invalid value');
    st.keepAliveTimeoutS = n;
  } else {
    st.keepAliveTimeoutS = DEFAULT_KEEP_ALIVE_TIMEOUT_S;
  }

  const format = getParam(rest, 'format') ?? '';
  if (format === '' || format === 'raw') {
    st.keepAliveData = headerBytes(val);
  } else if (format === 'cstring') {
    const data = unescapeCString(headerBytes(val));
    if (data === undefined) fail('failed to parse Grip-Keep-Alive cstring format');
    st.keepAliveData = data;
  } else if (format === 'base64') {
    const data = decodeBase64(val);
    if (data === undefined) fail('failed to parse Grip-Keep-Alive base64 format');
    st.keepAliveData = data;
  } else {
    fail(`no such Grip-Keep-Alive format '${decodeHeaderText(format)}'`);
  }
}

/**
 * Decodes Pushpin's cstring keep-alive format: `\\`, `\r`, `\n` and `\xHH` escapes; any
 * other escaped character is dropped (as Pushpin). Undefined for a dangling backslash or a
 * bad `\x` escape.
 */
export function unescapeCString(input: Buffer): Buffer | undefined {
  const out: number[] = [];
  for (let n = 0; n < input.length; n++) {
    const c = input[n]!;
    if (c !== 0x5c) {
      out.push(c);
      continue;
    }
    if (n + 1 >= input.length) return undefined;
    n++;
    const e = input[n]!;
    if (e === 0x5c) out.push(0x5c);
    else if (e === 0x72) out.push(0x0d);
    else if (e === 0x6e) out.push(0x0a);
    else if (e === 0x78) {
      if (n + 2 >= input.length) return undefined;
      const hi = hexValue(input[n + 1]!);
      const lo = hexValue(input[n + 2]!);
      n += 2;
      if (hi < 0 || lo < 0) return undefined;
      out.push((hi << 4) + lo);
    }
  }
  return Buffer.from(out);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function readMetaHeaders(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  for (const item of getAllHeaders(headers, 'Grip-Set-Meta')) {
    const params = parseHeaderParams(item, true);
    if (params === null) continue; // Pushpin skips elements it cannot parse
    if (params.length === 0) fail('Grip-Set-Meta cannot be empty');
    const [k, v] = params[0] as HeaderParam;
    setOwn(st.meta, decodeHeaderText(k), decodeHeaderText(v));
  }
}

function readStatusHeader(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  const v = getHeader(headers, 'Grip-Status');
  if (v === undefined || v === '') return;
  const sp = v.indexOf(' ');
  const codeText = sp === -1 ? v : v.slice(0, sp);
  const reason = sp === -1 ? '' : v.slice(sp + 1);
  const code = parseIntText(codeText);
  if (code === undefined || code < 0 || code > 999) fail('Grip-Status contains invalid status code');
  st.response.code = code;
  st.response.reason = reason;
}

function readLinkHeaders(headers: ReadonlyArray<readonly [string, string]>, st: State): void {
  for (const item of getAllHeaders(headers, 'Grip-Link')) {
    const params = parseHeaderParams(item);
    // Pushpin ignores unparsable elements and links without parameters.
    if (params === null || params.length < 2) continue;
    const first = params[0]![0];
    if (first.length <= 2 || first[0] !== '<' || first[first.length - 1] !== '>') {
      fail('failed to parse Grip-Link value');
    }
    const url = decodeHeaderText(first.slice(1, -1));
    if (!isValidLink(url)) fail('Grip-Link contains invalid link');
    const rest = params.slice(1);
    const rel = getParam(rest, 'rel');
    if (rel === 'next') {
      let timeoutS = DEFAULT_NEXT_LINK_TIMEOUT_S;
      const t = getParam(rest, 'timeout');
      if (t !== undefined) {
        const n = parseIntText(t);
        if (n === undefined) fail('failed to parse Grip-Link timeout value');
        if (n < 0) fail('Grip-Link timeout has invalid value');
        timeoutS = n;
      }
      st.nextLink = { url, timeoutS: Math.min(timeoutS, MAX_TIMER_S) };
    } else if (rel === 'gone') {
      st.goneLink = { url };
    }
  }
}

/** Absolute URLs, and relative references resolvable against an http base, are valid links. */
function isValidLink(url: string): boolean {
  if (url === '' || /[\s\x00-\x1f\x7f]/.test(url)) return false;
  try {
    new URL(url, 'http://gripd.invalid/');
    return true;
  } catch {
    return false;
  }
}

function readInstructJson(body: Buffer, st: State): void {
  if (body.length > MAX_INSTRUCT_BODY_BYTES) {
    fail(`application/grip-instruct content exceeds ${MAX_INSTRUCT_BODY_BYTES} bytes`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    doc = undefined;
  }
  if (doc === undefined || doc === null || typeof doc !== 'object') {
    fail('failed to parse application/grip-instruct content as JSON');
  }
  if (!isKeyedObject(doc)) fail('instruct must be an object');

  if (objHas(doc, 'hold')) {
    const hold = objGet(doc, 'hold');
    if (!isKeyedObject(hold)) fail("instruct contains 'hold' with wrong type");
    readJsonHold(hold, st);
  }

  st.response.headers = [];
  st.response.body = Buffer.alloc(0);

  if (objHas(doc, 'response')) {
    const resp = objGet(doc, 'response');
    if (!isKeyedObject(resp)) fail("instruct contains 'response' with wrong type");
    readJsonResponse(resp, st);
  }
}

function readJsonHold(hold: KeyedObject, st: State): void {
  const pn = 'hold';
  const mode = getString(hold, pn, 'mode', false, fail);
  if (mode === undefined) st.holdMode = 'response';
  else if (mode === 'response' || mode === 'stream') st.holdMode = mode;
  else fail("hold 'mode' must be set to either 'response' or 'stream'");

  const channels = getList(hold, pn, 'channels', true, fail)!;
  for (const vc of channels) {
    if (!isKeyedObject(vc)) fail('channel is not an object');
    const name = getString(vc, 'channel', 'name', true, fail)!;
    const ch: ChannelSubscription = { name, filters: [] };
    const prevId = getString(vc, 'channel', 'prev-id', false, fail);
    if (prevId !== undefined) ch.prevId = prevId;
    for (const f of getList(vc, 'channel', 'filters', false, fail) ?? []) {
      const s = asString(f);
      if (s === undefined) fail('filters contains value with wrong type');
      ch.filters.push(s);
    }
    if (ch.filters.length > MAX_FILTERS_PER_CHANNEL) fail(`too many filters for channel '${ch.name}'`);
    st.channels.push(ch);
  }

  const timeout = getInt(hold, pn, 'timeout', fail);
  if (timeout !== undefined) {
    if (timeout < 0) fail(`${pn} contains 'timeout' with invalid value`);
    st.timeoutS = timeout;
  }

  const ka = getObject(hold, pn, 'keep-alive', fail);
  if (ka !== undefined) {
    const kpn = 'keep-alive';
    if (objHas(ka, 'content-bin')) {
      const text = getString(ka, kpn, 'content-bin', false, fail)!;
      const data = decodeBase64(text);
      if (data === undefined) fail(`${kpn} contains 'content-bin' with invalid value`);
      st.keepAliveData = data;
    } else if (objHas(ka, 'content')) {
      const data = asBytes(objGet(ka, 'content'));
      if (data === undefined) fail(`${kpn} contains 'content' with wrong type`);
      st.keepAliveData = data;
    }
    const kt = getInt(ka, kpn, 'timeout', fail);
    if (kt !== undefined && kt < 0) fail(`${kpn} contains 'timeout' with invalid value`);
    st.keepAliveTimeoutS = kt ?? DEFAULT_KEEP_ALIVE_TIMEOUT_S;
    const mode = getString(ka, kpn, 'mode', false, fail);
    if (mode === 'idle' || mode === 'interval') st.keepAliveMode = mode;
    else if (mode !== undefined) fail(`no such keep-alive mode '${mode}'`);
    // Pushpin re-arms a JSON keep-alive only on its own timer, i.e. interval mode.
    else st.keepAliveMode ??= 'interval';
  }

  const meta = getObject(hold, pn, 'meta', fail);
  if (meta !== undefined) readMeta(meta, fail, st.meta);
}

function readJsonResponse(resp: KeyedObject, st: State): void {
  const pn = 'response';
  const code = getInt(resp, pn, 'code', fail);
  if (code !== undefined) {
    if (code < 0 || code > 999) fail(`${pn} contains 'code' with invalid value`);
    st.response.code = code;
    st.response.reason = '';
  }
  const reason = getString(resp, pn, 'reason', false, fail);
  if (reason !== undefined && reason !== '') st.response.reason = reason;

  if (objHas(resp, 'headers')) st.response.headers = readHeaderList(objGet(resp, 'headers'), pn, fail);

  if (objHas(resp, 'body-bin')) {
    const text = getString(resp, pn, 'body-bin', false, fail)!;
    const data = decodeBase64(text);
    if (data === undefined) fail(`${pn} contains 'body-bin' with invalid value`);
    st.response.body = data;
  } else if (objHas(resp, 'body')) {
    const data = asBytes(objGet(resp, 'body'));
    if (data === undefined) fail(`${pn} contains 'body' with wrong type`);
    st.response.body = data;
  }
}

function finish(st: State, limits: InstructLimits): Instruct {
  const response = st.response;
  if (response.reason === '') response.reason = reasonForStatus(response.code);
  response.headers = response.headers.filter(([n]) => !FRAMING_HEADERS.includes(n.toLowerCase()));

  let channels = st.channels;
  let dropped = 0;
  const max = Math.max(0, Math.floor(limits.subscriptionMax));
  if (channels.length > max) {
    dropped = channels.length - max;
    channels = channels.slice(0, max);
  }

  const out: Instruct = {
    response,
    meta: st.meta,
    exposeHeaders: st.exposeHeaders,
  };
  if (dropped > 0) out.channelsDropped = dropped;

  if (st.holdMode !== undefined) {
    const timeoutS = Math.min(Math.max(st.timeoutS ?? DEFAULT_HOLD_TIMEOUT_S, MIN_HOLD_TIMEOUT_S), MAX_TIMER_S);
    out.hold = { mode: st.holdMode, channels, timeoutS };
    if (st.keepAliveData !== undefined && st.keepAliveData.length > 0 && st.keepAliveTimeoutS !== undefined) {
      const ka: KeepAlive = {
        data: st.keepAliveData,
        timeoutS: Math.min(Math.max(st.keepAliveTimeoutS, MIN_KEEP_ALIVE_TIMEOUT_S), MAX_TIMER_S),
        mode: st.keepAliveMode ?? 'idle',
      };
      out.hold.keepAlive = ka;
    }
  } else if (channels.length > 0) {
    out.channels = channels;
  }
  if (st.nextLink !== undefined) out.nextLink = st.nextLink;
  if (st.goneLink !== undefined) out.goneLink = st.goneLink;
  return out;
}
