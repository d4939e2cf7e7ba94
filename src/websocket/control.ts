/**
 * GRIP WebSocket control messages (`c:` + JSON in a TEXT message from the backend), the
 * `grip` WebSocket extension header, and the rule deciding which backend messages are
 * control messages, which reach the client and which are dropped. Pure. OWNER:
 * src/websocket. Behaviour follows Pushpin 1.36; docs/websocket-over-http.md lists the
 * few places where we are stricter.
 */

/** Bytes that open a control message in a TEXT message. */
export const CONTROL_PREFIX = 'c:';

/** Message prefix when the backend accepts `grip` without a `message-prefix` parameter. */
export const DEFAULT_MESSAGE_PREFIX = 'm:';

/**
 * Largest control message we parse, in bytes after `c:`. Protects JSON.parse time and
 * memory; a keep-alive or send-delayed payload is the only big part, and this equals the
 * largest event content a backend may send (MAX_EVENT_BYTES).
 */
export const MAX_CONTROL_MESSAGE_BYTES = 1_000_000;

/**
 * Most filters on one subscription (Pushpin's MESSAGEFILTERSTACK_SIZE_MAX). More is
 * CONTROL_TOO_MANY_FILTERS, which Pushpin answers by closing the connection with an error.
 */
export const MAX_FILTERS = 5;
/**
 * Longest `prev-id` on a subscribe (gripd extension), in UTF-8 bytes. Each reliable
 * subscription keeps its last id; the cap bounds that memory per connection and channel.
 */
export const MAX_PREV_ID_BYTES = 1024;

/** Keep-alive period when a keep-alive message gives no positive timeout (seconds). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_S = 55;

/** Delay of send-delayed when it gives no positive timeout (seconds). */
export const DEFAULT_SEND_DELAYED_TIMEOUT_S = 1;

/**
 * Largest timeout we accept (seconds): just under 2^31 ms, the most a Node.js timer can
 * wait before it silently fires after 1 ms instead.
 */
export const MAX_CONTROL_TIMEOUT_S = 2_147_483;

/** Type of a WebSocket message that keep-alive and send-delayed carry. */
export type WsMessageType = 'text' | 'binary' | 'ping' | 'pong';

/** A parsed control message. Defaults are already applied. */
export type ControlMessage =
  /**
   * `prevId` (gripd extension, `"prev-id"` in the JSON): the id of the last item the
   * connection has on this channel. When present, gripd tracks ids on the channel for
   * this connection and asks an over_http backend to resend on a gap (Grip-Last).
   */
  | { type: 'subscribe'; channel: string; filters: string[]; prevId?: string }
  | { type: 'unsubscribe'; channel: string }
  | { type: 'detach' }
  /** `id` undefined (absent, null or "") clears the session id. */
  | { type: 'session'; id: string | undefined }
  /** `value` undefined (absent or null) deletes the meta key; "" sets it to empty. */
  | { type: 'set-meta'; name: string; value: string | undefined }
  /**
   * `message` undefined (no content or content-bin) turns keep-alives off. Otherwise send
   * it every `timeoutS` seconds: of idleness for mode 'idle', unconditionally for
   * 'interval' (any mode other than "interval" means 'idle', as Pushpin).
   */
  | {
      type: 'keep-alive';
      message: { type: WsMessageType; content: Buffer } | undefined;
      timeoutS: number;
      mode: 'idle' | 'interval';
    }
  /** Send `content` after `timeoutS` seconds unless flushed or replaced first. */
  | { type: 'send-delayed'; message: { type: WsMessageType; content: Buffer }; timeoutS: number }
  | { type: 'flush-delayed' };

export type ControlMessageType = ControlMessage['type'];

/** Stable codes of ControlMessageError; docs/websocket-over-http.md lists them. */
export type ControlMessageErrorCode =
  | 'CONTROL_TOO_LARGE'
  | 'CONTROL_NOT_JSON'
  | 'CONTROL_NOT_OBJECT'
  | 'CONTROL_MISSING_FIELD'
  | 'CONTROL_WRONG_TYPE'
  | 'CONTROL_INVALID_VALUE'
  | 'CONTROL_UNKNOWN_TYPE'
  | 'CONTROL_TOO_MANY_FILTERS';

/**
 * A control message gripd cannot act on. Pushpin logs these and ignores the message,
 * except CONTROL_TOO_MANY_FILTERS, where it closes the connection with an error.
 * `field` names the JSON key at fault when there is one.
 */
export class ControlMessageError extends Error {
  override readonly name = 'ControlMessageError';
  constructor(
    readonly code: ControlMessageErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(`grip control message: ${message}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function has(o: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** An optional string field: absent or null gives undefined, as Pushpin reads them. */
function optString(o: JsonObject, key: string): string | undefined {
  if (!has(o, key)) return undefined;
  const v = o[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string') throw new ControlMessageError('CONTROL_WRONG_TYPE', `'${key}' must be a string`, key);
  return v;
}

function reqString(o: JsonObject, key: string): string {
  if (!has(o, key)) throw new ControlMessageError('CONTROL_MISSING_FIELD', `'${key}' is missing`, key);
  const v = o[key];
  if (typeof v !== 'string') throw new ControlMessageError('CONTROL_WRONG_TYPE', `'${key}' must be a string`, key);
  return v;
}

function reqNonEmpty(o: JsonObject, key: string): string {
  const v = reqString(o, key);
  if (v === '') throw new ControlMessageError('CONTROL_INVALID_VALUE', `'${key}' is empty`, key);
  return v;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(s: string, key: string): Buffer {
  const compact = s.replace(/[\t\n\r ]/g, '');
  if (!BASE64.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) {
    throw new ControlMessageError('CONTROL_INVALID_VALUE', `'${key}' is not base64`, key);
  }
  return Buffer.from(compact, 'base64');
}

const MESSAGE_TYPES: ReadonlySet<string> = new Set(['text', 'binary', 'ping', 'pong']);

/** The message of keep-alive / send-delayed; undefined when it has neither content nor content-bin. */
function readMessage(o: JsonObject): { type: WsMessageType; content: Buffer } | undefined {
  const typeStr = optString(o, 'message-type');
  if (typeStr !== undefined && !MESSAGE_TYPES.has(typeStr)) {
    throw new ControlMessageError('CONTROL_INVALID_VALUE', `'message-type' has unknown value ${JSON.stringify(typeStr)}`, 'message-type');
  }
  // Pushpin defaults to text even for content-bin (its binary default is unreachable).
  const type = (typeStr ?? 'text') as WsMessageType;
  if (has(o, 'content-bin')) {
    const v = o['content-bin'];
    if (typeof v !== 'string') throw new ControlMessageError('CONTROL_WRONG_TYPE', `'content-bin' must be a base64 string`, 'content-bin');
    return { type, content: decodeBase64(v, 'content-bin') };
  }
  if (has(o, 'content')) {
    const v = o['content'];
    if (typeof v !== 'string') throw new ControlMessageError('CONTROL_WRONG_TYPE', `'content' must be a string`, 'content');
    return { type, content: Buffer.from(v, 'utf8') };
  }
  return undefined;
}

/** 'timeout' in seconds; 0 when absent (the caller applies its default). */
function readTimeout(o: JsonObject): number {
  if (!has(o, 'timeout')) return 0;
  const v = o['timeout'];
  let n: number;
  if (typeof v === 'number') n = Math.round(v);
  else if (typeof v === 'string' && /^\s*[+-]?\d{1,15}\s*$/.test(v)) n = Number(v.trim());
  else throw new ControlMessageError('CONTROL_WRONG_TYPE', `'timeout' must be a number of seconds`, 'timeout');
  if (!Number.isFinite(n) || n < 0) throw new ControlMessageError('CONTROL_INVALID_VALUE', `'timeout' is negative`, 'timeout');
  if (n > MAX_CONTROL_TIMEOUT_S) {
    throw new ControlMessageError('CONTROL_INVALID_VALUE', `'timeout' exceeds ${MAX_CONTROL_TIMEOUT_S} seconds`, 'timeout');
  }
  return n;
}

/**
 * Parses one control message: the content of a TEXT message from the backend, with or
 * without its leading `c:` (JSON cannot start with `c:`, so either form is unambiguous).
 * Unknown keys are ignored; defaults are applied (see ControlMessage).
 *
 * @throws ControlMessageError (only): not UTF-8 or not JSON, not an object, a missing or
 *   mistyped field, an unknown `type` (Pushpin logs and ignores these), or more than
 *   MAX_FILTERS filters.
 */
export function parseControlMessage(text: Buffer | string): ControlMessage {
  let buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  if (buf.length >= 2 && buf[0] === 0x63 && buf[1] === 0x3a) buf = buf.subarray(2);
  if (buf.length > MAX_CONTROL_MESSAGE_BYTES) {
    throw new ControlMessageError('CONTROL_TOO_LARGE', `${buf.length} bytes exceeds ${MAX_CONTROL_MESSAGE_BYTES}`);
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(utf8.decode(buf)) as Json;
  } catch (err) {
    throw new ControlMessageError('CONTROL_NOT_JSON', `not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ControlMessageError('CONTROL_NOT_OBJECT', 'not a JSON object');
  }
  const o = parsed;
  const type = reqString(o, 'type');

  switch (type) {
    case 'subscribe': {
      const channel = reqNonEmpty(o, 'channel');
      const filters: string[] = [];
      const vf = has(o, 'filters') ? o['filters'] : null;
      if (vf !== null && vf !== undefined) {
        if (!Array.isArray(vf)) throw new ControlMessageError('CONTROL_WRONG_TYPE', `'filters' must be a list of strings`, 'filters');
        if (vf.length > MAX_FILTERS) {
          throw new ControlMessageError('CONTROL_TOO_MANY_FILTERS', `too many filters for channel '${channel}' (${vf.length} > ${MAX_FILTERS})`, 'filters');
        }
        for (const f of vf) {
          if (typeof f !== 'string') throw new ControlMessageError('CONTROL_WRONG_TYPE', `'filters' contains a value that is not a string`, 'filters');
          filters.push(f);
        }
      }
      const prevId = optString(o, 'prev-id');
      if (prevId !== undefined && Buffer.byteLength(prevId) > MAX_PREV_ID_BYTES) {
        throw new ControlMessageError('CONTROL_INVALID_VALUE', `'prev-id' is longer than ${MAX_PREV_ID_BYTES} bytes`, 'prev-id');
      }
      return prevId !== undefined ? { type, channel, filters, prevId } : { type, channel, filters };
    }
    case 'unsubscribe':
      return { type, channel: reqNonEmpty(o, 'channel') };
    case 'detach':
    case 'flush-delayed':
      return { type };
    case 'session': {
      const id = optString(o, 'id');
      return { type, id: id === '' ? undefined : id };
    }
    case 'set-meta':
      return { type, name: reqNonEmpty(o, 'name'), value: optString(o, 'value') };
    case 'keep-alive': {
      const message = readMessage(o);
      // Pushpin reads timeout only alongside content.
      const timeout = message !== undefined ? readTimeout(o) : 0;
      const mode = optString(o, 'mode') === 'interval' ? 'interval' : 'idle';
      return { type, message, timeoutS: timeout > 0 ? timeout : DEFAULT_KEEP_ALIVE_TIMEOUT_S, mode };
    }
    case 'send-delayed': {
      const message = readMessage(o) ?? { type: (optString(o, 'message-type') ?? 'text') as WsMessageType, content: Buffer.alloc(0) };
      const timeout = has(o, 'content') || has(o, 'content-bin') ? readTimeout(o) : 0;
      return { type, message, timeoutS: timeout > 0 ? timeout : DEFAULT_SEND_DELAYED_TIMEOUT_S };
    }
    default:
      throw new ControlMessageError('CONTROL_UNKNOWN_TYPE', `'type' has unknown value ${JSON.stringify(type)}`, 'type');
  }
}

/**
 * Formats a control message as the backend would send it: `c:` + compact JSON. Binary
 * content goes out as `content-bin`. For tests, the test handler and the tools;
 * `parseControlMessage(formatControlMessage(m))` gives back `m`.
 */
export function formatControlMessage(m: ControlMessage): string {
  const o: Record<string, unknown> = { type: m.type };
  switch (m.type) {
    case 'subscribe':
      o['channel'] = m.channel;
      if (m.filters.length > 0) o['filters'] = m.filters;
      if (m.prevId !== undefined) o['prev-id'] = m.prevId;
      break;
    case 'unsubscribe':
      o['channel'] = m.channel;
      break;
    case 'session':
      if (m.id !== undefined) o['id'] = m.id;
      break;
    case 'set-meta':
      o['name'] = m.name;
      if (m.value !== undefined) o['value'] = m.value;
      break;
    case 'keep-alive':
      if (m.message !== undefined) {
        o['message-type'] = m.message.type;
        o['content-bin'] = m.message.content.toString('base64');
        o['timeout'] = m.timeoutS;
      }
      o['mode'] = m.mode;
      break;
    case 'send-delayed':
      o['message-type'] = m.message.type;
      o['content-bin'] = m.message.content.toString('base64');
      o['timeout'] = m.timeoutS;
      break;
    default:
      break;
  }
  return CONTROL_PREFIX + JSON.stringify(o);
}

// ---------------------------------------------------------------------------------------
// The `grip` WebSocket extension and message classification.

/** The backend accepted the `grip` extension. */
export interface GripExtension {
  /** Bytes every non-control message from the backend must start with (may be empty). */
  messagePrefix: Buffer;
}

/** Splits a header value on commas outside double quotes, trimming each part. */
function splitUnquoted(v: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (quoted && c === '\\' && i + 1 < v.length) {
      cur += c + v[++i]!;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  out.push(cur.trim());
  return out.filter((p) => p !== '');
}

/** Extension parameters after the first `;`, as Pushpin reads them; undefined when malformed. */
function parseExtensionParams(s: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < s.length) {
    const rest = s.slice(pos);
    const at = rest.search(/[=;]/);
    if (at === -1) {
      out.set(rest.trim(), '');
      break;
    }
    const name = rest.slice(0, at).trim();
    if (rest[at] === ';') {
      out.set(name, '');
      pos += at + 1;
      continue;
    }
    let i = at + 1;
    if (i >= rest.length) return undefined;
    if (rest[i] === '"') {
      let val = '';
      let done = false;
      for (i = i + 1; i < rest.length; i++) {
        const c = rest[i]!;
        if (c === '\\') {
          if (i + 1 >= rest.length) return undefined;
          val += rest[++i]!;
        } else if (c === '"') {
          done = true;
          i++;
          break;
        } else val += c;
      }
      if (!done) return undefined;
      out.set(name, val);
      const semi = rest.indexOf(';', i);
      pos = semi === -1 ? s.length : pos + semi + 1;
    } else {
      const semi = rest.indexOf(';', i);
      out.set(name, (semi === -1 ? rest.slice(i) : rest.slice(i, semi)).trim());
      pos = semi === -1 ? s.length : pos + semi + 1;
    }
  }
  return out;
}

/** Most characters of Sec-WebSocket-Extensions we look at; bounds the scan of a hostile header. */
export const MAX_EXTENSIONS_HEADER_CHARS = 8192;

/**
 * Reads the backend's `Sec-WebSocket-Extensions` (one value or every header line) and
 * returns the `grip` extension if the backend accepted it, else undefined. As Pushpin:
 * the list splits on commas outside quotes; the extension name is matched exactly
 * (`grip`, case-sensitive); `message-prefix` may be a token or a quoted string (`""`
 * gives an empty prefix: every message passes); without it the prefix is `m:`; a
 * malformed parameter list means the extension is treated as not accepted. Header
 * strings are taken as latin1, so the prefix keeps the header's raw bytes.
 */
export function parseGripExtension(header: string | readonly string[] | undefined): GripExtension | undefined {
  if (header === undefined) return undefined;
  const values = typeof header === 'string' ? [header] : header;
  let budget = MAX_EXTENSIONS_HEADER_CHARS;
  for (const value of values) {
    if (value.length > budget) return undefined;
    budget -= value.length;
    for (const ext of splitUnquoted(value)) {
      const semi = ext.indexOf(';');
      const name = semi === -1 ? ext : ext.slice(0, semi).trim();
      if (name !== 'grip') continue;
      // Pushpin uses the first extension named grip, even if its parameters are bad.
      if (semi === -1) return { messagePrefix: Buffer.from(DEFAULT_MESSAGE_PREFIX, 'latin1') };
      const params = parseExtensionParams(ext.slice(semi + 1));
      if (params === undefined) return undefined;
      const prefix = params.get('message-prefix');
      return { messagePrefix: Buffer.from(prefix ?? DEFAULT_MESSAGE_PREFIX, 'latin1') };
    }
  }
  return undefined;
}

/** What to do with a complete TEXT or BINARY message from the backend. */
export type BackendMessageAction =
  /** A control message: pass `json` (the bytes after `c:`) to parseControlMessage. */
  | { action: 'control'; json: Buffer }
  /** Send `content` (prefix already removed) to the client. */
  | { action: 'forward'; content: Buffer }
  /** Drop it: grip is on and the message lacks the prefix. */
  | { action: 'drop' };

/**
 * Pushpin's rule for a backend message, given the `grip` extension state:
 * - grip not accepted (`grip` undefined): every message goes to the client unchanged;
 * - a TEXT message starting with the bytes `c:` is a control message (checked first, so
 *   it wins even when the prefix is empty or also starts with `c:`);
 * - any other TEXT or BINARY message starting with the prefix goes to the client with the
 *   prefix removed; one without it is dropped.
 * PING and PONG never come here: they always pass. Pushpin also ignores a `c:` message
 * that arrived in more than one frame; callers that see whole messages cannot tell.
 */
export function classifyBackendMessage(
  type: 'text' | 'binary',
  content: Buffer,
  grip: GripExtension | undefined,
): BackendMessageAction {
  if (grip === undefined) return { action: 'forward', content };
  if (type === 'text' && content.length >= 2 && content[0] === 0x63 && content[1] === 0x3a) {
    return { action: 'control', json: content.subarray(2) };
  }
  const p = grip.messagePrefix;
  if (content.length >= p.length && content.subarray(0, p.length).equals(p)) {
    return { action: 'forward', content: content.subarray(p.length) };
  }
  return { action: 'drop' };
}
