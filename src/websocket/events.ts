/**
 * Codec for the WebSocket-over-HTTP body format (`application/websocket-events`) and
 * pure helpers for the headers that travel with it. OWNER: src/websocket.
 *
 * An event is `TYPE\r\n` or `TYPE <hex length>\r\n<content>\r\n`. This module opens no
 * socket, sets no timer and logs nothing; the bridge in src/websocket does the I/O.
 * See docs/websocket-over-http.md for where we are stricter or looser than Pushpin.
 */

/** Media type of a WebSocket-over-HTTP request and response body. */
export const WEBSOCKET_EVENTS_CONTENT_TYPE = 'application/websocket-events';

/**
 * Most events one body may decode to. Protects memory: each event becomes an object, and
 * tiny events (`OPEN\r\n` is 6 bytes) would turn a 1 MB body into ~170 000 of them.
 */
export const MAX_EVENTS = 10_000;

/**
 * Largest content of one event, in bytes. Equal to Pushpin's cap on a whole response
 * body (1 000 000), so no event Pushpin would accept is refused; also stops a declared
 * length from being trusted before the bytes are there.
 */
export const MAX_EVENT_BYTES = 1_000_000;

/** Longest event type token we read, in bytes (the longest defined one is 10). */
export const MAX_TYPE_BYTES = 32;

/** Most hex digits in a length (8 digits reach 0xffffffff, far past MAX_EVENT_BYTES). */
export const MAX_HEX_DIGITS = 8;

/** Pushpin's cap on a backend response body in WebSocket-over-HTTP, in bytes. */
export const MAX_RESPONSE_BODY_BYTES = 1_000_000;

/** Pushpin's cap on the body of a rejected OPEN that is relayed to the client, in bytes. */
export const MAX_REJECT_BODY_BYTES = 100_000;

/** Pushpin's cap on message content queued in one request to the backend, in bytes. */
export const MAX_REQUEST_CONTENT_BYTES = 200_000;

/** Pushpin never lets a backend ask for keep-alive requests more often than this (seconds). */
export const MIN_KEEP_ALIVE_INTERVAL_S = 20;

export type WsEventType = 'OPEN' | 'TEXT' | 'BINARY' | 'PING' | 'PONG' | 'CLOSE' | 'DISCONNECT';

/**
 * One WebSocket-over-HTTP event. Content is raw bytes (TEXT content is not checked for
 * UTF-8 here). A CLOSE either has no code (encoded `CLOSE\r\n`) or a 16-bit code and a
 * reason (encoded as 2 big-endian bytes plus the UTF-8 reason).
 */
export type WsEvent =
  | { type: 'OPEN' }
  | { type: 'TEXT'; content: Buffer }
  | { type: 'BINARY'; content: Buffer }
  | { type: 'PING'; content: Buffer }
  | { type: 'PONG'; content: Buffer }
  | { type: 'CLOSE'; code?: number; reason?: string }
  | { type: 'DISCONNECT' };

/** Stable codes of WsEventsError; docs/websocket-over-http.md lists them. */
export type WsEventsErrorCode =
  | 'WS_EVENTS_NO_LINE_END'
  | 'WS_EVENTS_BAD_TYPE'
  | 'WS_EVENTS_BAD_LENGTH'
  | 'WS_EVENTS_EVENT_TOO_LARGE'
  | 'WS_EVENTS_TRUNCATED'
  | 'WS_EVENTS_NO_CONTENT_END'
  | 'WS_EVENTS_TOO_MANY'
  | 'WS_EVENTS_UNKNOWN_TYPE'
  | 'WS_EVENTS_INVALID_EVENT';

/**
 * A body that is not valid `application/websocket-events`, or an event that cannot be
 * encoded. `offset` is the byte offset in the body where the bad event starts (decode) or
 * would have started (encode). A backend sending such a body maps to closing the client
 * connection (1011 in gripd) with the message logged.
 */
export class WsEventsError extends Error {
  override readonly name = 'WsEventsError';
  constructor(
    readonly code: WsEventsErrorCode,
    readonly offset: number,
    message: string,
  ) {
    super(`websocket-events at byte ${offset}: ${message}`);
  }
}

export interface DecodeEventsOptions {
  /** Default MAX_EVENTS. */
  maxEvents?: number;
  /** Default MAX_EVENT_BYTES. */
  maxEventBytes?: number;
  /**
   * What to do with a well-formed event of a type not listed in WsEventType.
   * 'skip' (default) drops it, as Pushpin does; 'reject' throws WS_EVENTS_UNKNOWN_TYPE.
   */
  unknownTypes?: 'skip' | 'reject';
}

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

const KNOWN_TYPES: ReadonlySet<string> = new Set(['OPEN', 'TEXT', 'BINARY', 'PING', 'PONG', 'CLOSE', 'DISCONNECT']);

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  return -1;
}

/**
 * Decodes a whole `application/websocket-events` body. An empty body is zero events.
 *
 * Content buffers are views into `buf` (no copy): copy them if `buf` will be reused.
 * Types are case-sensitive, lengths are 1–8 hex digits of either case with nothing else on
 * the line, and every content must be followed by CRLF. Content on OPEN and DISCONNECT is
 * read and ignored; CLOSE content shorter than 2 bytes means "no code" and the reason is
 * decoded as UTF-8 with replacement characters, both as Pushpin does.
 *
 * @throws WsEventsError naming the byte offset of the bad event; never anything else.
 */
export function decodeEvents(buf: Buffer, opts: DecodeEventsOptions = {}): WsEvent[] {
  const maxEvents = opts.maxEvents ?? MAX_EVENTS;
  const maxEventBytes = opts.maxEventBytes ?? MAX_EVENT_BYTES;
  const rejectUnknown = opts.unknownTypes === 'reject';
  const out: WsEvent[] = [];
  let seen = 0;
  let pos = 0;
  const end = buf.length;

  while (pos < end) {
    const start = pos;
    if (seen >= maxEvents) {
      throw new WsEventsError('WS_EVENTS_TOO_MANY', start, `more than ${maxEvents} events in one body`);
    }

    // Type token: printable ASCII other than space, up to MAX_TYPE_BYTES.
    let i = pos;
    const typeLimit = Math.min(end, pos + MAX_TYPE_BYTES + 1);
    while (i < typeLimit) {
      const b = buf[i]!;
      if (b === SPACE || b === CR) break;
      if (b < 0x21 || b > 0x7e) {
        throw new WsEventsError('WS_EVENTS_BAD_TYPE', start, `byte 0x${b.toString(16).padStart(2, '0')} in event type`);
      }
      i++;
    }
    if (i === end) {
      throw new WsEventsError('WS_EVENTS_NO_LINE_END', start, 'event line has no CRLF');
    }
    if (i - pos > MAX_TYPE_BYTES) {
      throw new WsEventsError('WS_EVENTS_BAD_TYPE', start, `event type longer than ${MAX_TYPE_BYTES} bytes`);
    }
    if (i === pos) {
      throw new WsEventsError('WS_EVENTS_BAD_TYPE', start, 'empty event type');
    }
    const type = buf.toString('latin1', pos, i);

    let content: Buffer | undefined;
    if (buf[i] === SPACE) {
      i++;
      let len = 0;
      let digits = 0;
      while (i < end && buf[i] !== CR) {
        const v = hexValue(buf[i]!);
        if (v < 0) {
          throw new WsEventsError('WS_EVENTS_BAD_LENGTH', start, `${type} length is not hex digits`);
        }
        if (++digits > MAX_HEX_DIGITS) {
          throw new WsEventsError('WS_EVENTS_BAD_LENGTH', start, `${type} length has more than ${MAX_HEX_DIGITS} hex digits`);
        }
        len = len * 16 + v;
        i++;
      }
      if (i === end) {
        throw new WsEventsError('WS_EVENTS_NO_LINE_END', start, 'event line has no CRLF');
      }
      if (digits === 0) {
        throw new WsEventsError('WS_EVENTS_BAD_LENGTH', start, `${type} has an empty length`);
      }
      if (i + 1 >= end) {
        throw new WsEventsError('WS_EVENTS_NO_LINE_END', start, 'event line has no CRLF');
      }
      if (buf[i + 1] !== LF) {
        throw new WsEventsError('WS_EVENTS_BAD_LENGTH', start, `${type} length is followed by CR without LF`);
      }
      if (len > maxEventBytes) {
        throw new WsEventsError('WS_EVENTS_EVENT_TOO_LARGE', start, `${type} content of ${len} bytes exceeds ${maxEventBytes}`);
      }
      const contentStart = i + 2;
      const contentEnd = contentStart + len;
      if (contentEnd + 2 > end) {
        throw new WsEventsError('WS_EVENTS_TRUNCATED', start, `${type} declares ${len} content bytes but the body ends first`);
      }
      if (buf[contentEnd] !== CR || buf[contentEnd + 1] !== LF) {
        throw new WsEventsError('WS_EVENTS_NO_CONTENT_END', start, `${type} content is not followed by CRLF`);
      }
      content = buf.subarray(contentStart, contentEnd);
      pos = contentEnd + 2;
    } else {
      // buf[i] is CR here.
      if (i + 1 >= end) {
        throw new WsEventsError('WS_EVENTS_NO_LINE_END', start, 'event line has no CRLF');
      }
      if (buf[i + 1] !== LF) {
        throw new WsEventsError('WS_EVENTS_BAD_TYPE', start, 'event type is followed by CR without LF');
      }
      pos = i + 2;
    }

    seen++;
    if (!KNOWN_TYPES.has(type)) {
      if (rejectUnknown) throw new WsEventsError('WS_EVENTS_UNKNOWN_TYPE', start, `unknown event type ${JSON.stringify(type)}`);
      continue;
    }
    out.push(makeEvent(type as WsEventType, content ?? EMPTY));
  }
  return out;
}

const EMPTY = Buffer.alloc(0);

function makeEvent(type: WsEventType, content: Buffer): WsEvent {
  switch (type) {
    case 'OPEN':
    case 'DISCONNECT':
      return { type };
    case 'TEXT':
    case 'BINARY':
    case 'PING':
    case 'PONG':
      return { type, content };
    case 'CLOSE':
      if (content.length < 2) return { type };
      return { type, code: content.readUInt16BE(0), reason: content.toString('utf8', 2) };
  }
}

/** The content bytes an event carries on the wire (empty when it carries none). */
export function eventContent(e: WsEvent): Buffer {
  switch (e.type) {
    case 'TEXT':
    case 'BINARY':
    case 'PING':
    case 'PONG':
      return e.content;
    case 'CLOSE':
      if (e.code === undefined) return EMPTY;
      {
        const reason = Buffer.from(e.reason ?? '', 'utf8');
        const b = Buffer.allocUnsafe(2 + reason.length);
        b.writeUInt16BE(e.code, 0);
        reason.copy(b, 2);
        return b;
      }
    default:
      return EMPTY;
  }
}

function checkEvent(e: WsEvent, offset: number): void {
  if (!KNOWN_TYPES.has((e as { type: unknown }).type as string)) {
    throw new WsEventsError('WS_EVENTS_INVALID_EVENT', offset, `cannot encode event type ${JSON.stringify((e as { type: unknown }).type)}`);
  }
  if (e.type === 'CLOSE') {
    if (e.code === undefined) {
      if (e.reason !== undefined && e.reason !== '') {
        throw new WsEventsError('WS_EVENTS_INVALID_EVENT', offset, 'CLOSE has a reason but no code');
      }
    } else if (!Number.isInteger(e.code) || e.code < 0 || e.code > 0xffff) {
      throw new WsEventsError('WS_EVENTS_INVALID_EVENT', offset, `CLOSE code ${e.code} is not a 16-bit integer`);
    }
  } else if (e.type !== 'OPEN' && e.type !== 'DISCONNECT' && !Buffer.isBuffer(e.content)) {
    throw new WsEventsError('WS_EVENTS_INVALID_EVENT', offset, `${e.type} content is not a Buffer`);
  }
}

/**
 * Encodes events into one body, byte for byte as Pushpin 1.36 writes them: lowercase hex
 * lengths, and an event with empty content written without a length (`TEXT\r\n`,
 * `PING\r\n`, `CLOSE\r\n`). Trusts nothing: a CLOSE code outside 0–65535, a reason
 * without a code, or a non-Buffer content throws WS_EVENTS_INVALID_EVENT.
 *
 * @throws WsEventsError
 */
export function encodeEvents(events: readonly WsEvent[]): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (const e of events) {
    checkEvent(e, total);
    const content = eventContent(e);
    if (content.length > 0) {
      const head = Buffer.from(`${e.type} ${content.length.toString(16)}\r\n`, 'latin1');
      parts.push(head, content, CRLF);
      total += head.length + content.length + 2;
    } else {
      const head = Buffer.from(`${e.type}\r\n`, 'latin1');
      parts.push(head);
      total += head.length;
    }
  }
  return Buffer.concat(parts, total);
}

const CRLF = Buffer.from('\r\n', 'latin1');

// ---------------------------------------------------------------------------------------
// Header helpers. Header lists are `[name, value]` pairs in order; names match
// case-insensitively and keep their case on output.

/** Header pairs in order, as gripd passes them around. */
export type HeaderPairs = ReadonlyArray<readonly [string, string]>;

/** Value of the first header named `name` (case-insensitive), or undefined. */
export function getHeader(headers: HeaderPairs, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

function hasPrefixCI(name: string, prefix: string): boolean {
  return name.length >= prefix.length && name.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase();
}

/** Headers Pushpin never forwards from the client in a WebSocket-over-HTTP request. */
const STRIPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set(['upgrade', 'accept', 'connection-id', 'content-length']);

/**
 * The client handshake headers to forward on every WebSocket-over-HTTP request: drops
 * Upgrade, Accept, Connection-Id, Content-Length and every Meta-* header (a client must
 * not forge connection metadata), as Pushpin does. Hop-by-hop handling (Connection etc.)
 * is the proxy's job and happens before this.
 */
export function sanitizeWsRequestHeaders(headers: HeaderPairs): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [n, v] of headers) {
    if (STRIPPED_REQUEST_HEADERS.has(n.toLowerCase()) || hasPrefixCI(n, 'Meta-')) continue;
    out.push([n, v]);
  }
  return out;
}

export interface WsRequestHeaderParts {
  /** Output of sanitizeWsRequestHeaders (plus Grip-Sig and friends, added by the caller). */
  base: HeaderPairs;
  /** The connection's id, stable for its whole life. */
  connectionId: string;
  /** Connection metadata (from Set-Meta-* and set-meta), sent as Meta-<name>. */
  meta: HeaderPairs;
  /** Body length in bytes. */
  contentLength: number;
  /** Content bytes re-sent from the previous request that the backend did not accept; 0 = none. */
  contentBytesReplayed?: number;
}

/**
 * Header list for one WebSocket-over-HTTP request, in Pushpin's order: base, Accept,
 * Connection-Id, Content-Type, Content-Bytes-Replayed (only when > 0), Meta-*,
 * Content-Length.
 */
export function buildWsRequestHeaders(p: WsRequestHeaderParts): Array<[string, string]> {
  const out: Array<[string, string]> = p.base.map(([n, v]) => [n, v]);
  out.push(['Accept', WEBSOCKET_EVENTS_CONTENT_TYPE]);
  out.push(['Connection-Id', p.connectionId]);
  out.push(['Content-Type', WEBSOCKET_EVENTS_CONTENT_TYPE]);
  if (p.contentBytesReplayed !== undefined && p.contentBytesReplayed > 0) {
    out.push(['Content-Bytes-Replayed', String(p.contentBytesReplayed)]);
  }
  for (const [n, v] of p.meta) out.push([`Meta-${n}`, v]);
  out.push(['Content-Length', String(p.contentLength)]);
  return out;
}

/**
 * True when a request carries a WebSocket-over-HTTP body (Content-Type, ignoring case,
 * surrounding space and parameters). The proxy refuses such a request from an untrusted
 * client with 403, so a client cannot speak to the backend as if it were gripd.
 */
export function isWebSocketEventsRequest(headers: HeaderPairs): boolean {
  const ct = getHeader(headers, 'Content-Type');
  if (ct === undefined) return false;
  return ct.split(';')[0]!.trim().toLowerCase() === WEBSOCKET_EVENTS_CONTENT_TYPE;
}

/**
 * True when a backend response is acceptable as WebSocket-over-HTTP: status 200 and a
 * Content-Type of exactly `application/websocket-events` (Pushpin compares the whole
 * value, so parameters make it fail there too).
 */
export function isWebSocketEventsResponse(status: number, headers: HeaderPairs): boolean {
  return status === 200 && getHeader(headers, 'Content-Type') === WEBSOCKET_EVENTS_CONTENT_TYPE;
}

/** Pushpin-style integer: optional surrounding space, optional sign, decimal digits. */
function parseDecimalInt(v: string): number | undefined {
  const m = /^\s*([+-]?\d{1,15})\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  // Pushpin reads an int; anything beyond 32 bits fails there too.
  return n >= -0x80000000 && n <= 0x7fffffff ? n : undefined;
}

/**
 * Reads Keep-Alive-Interval from a backend response.
 * - `undefined`: header absent, keep the current setting;
 * - `null`: present but not a positive integer, keep-alive requests off;
 * - a number of seconds, raised to MIN_KEEP_ALIVE_INTERVAL_S.
 */
export function parseKeepAliveInterval(headers: HeaderPairs): number | null | undefined {
  const v = getHeader(headers, 'Keep-Alive-Interval');
  if (v === undefined) return undefined;
  const n = parseDecimalInt(v);
  if (n === undefined || n <= 0) return null;
  return Math.max(n, MIN_KEEP_ALIVE_INTERVAL_S);
}

/**
 * Reads Content-Bytes-Accepted from a backend response: how many content bytes of the
 * request (CLOSE content included) the backend consumed. `undefined` when absent or not
 * a non-negative integer (Pushpin then treats everything as accepted). The caller must
 * fail the connection when the value exceeds what the request offered.
 */
export function parseContentBytesAccepted(headers: HeaderPairs): number | undefined {
  const v = getHeader(headers, 'Content-Bytes-Accepted');
  if (v === undefined) return undefined;
  const n = parseDecimalInt(v);
  return n !== undefined && n >= 0 ? n : undefined;
}

/**
 * Set-Meta-<name> headers of a backend response as `[name, value]` in order; an empty
 * value means "delete". A bare `Set-Meta-` (no name) is ignored, as Pushpin does.
 */
export function parseSetMeta(headers: HeaderPairs): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [n, v] of headers) {
    if (n.length >= 10 && hasPrefixCI(n, 'Set-Meta-')) out.push([n.slice(9), v]);
  }
  return out;
}

/**
 * Applies Set-Meta-* updates to connection metadata, as Pushpin does: names compare
 * case-insensitively, a changed name moves to the end, an empty value deletes. Returns a
 * new list; `meta` is not modified.
 */
export function applySetMeta(meta: HeaderPairs, updates: HeaderPairs): Array<[string, string]> {
  let out: Array<[string, string]> = meta.map(([n, v]) => [n, v]);
  for (const [name, value] of updates) {
    const lower = name.toLowerCase();
    out = out.filter(([n]) => n.toLowerCase() !== lower);
    if (value !== '') out.push([name, value]);
  }
  return out;
}

/**
 * Headers of the backend's answer to OPEN that gripd keeps for the client's 101 response:
 * drops Content-Length, Content-Type, Keep-Alive-Interval and Set-Meta-*. (The caller also
 * removes Sec-WebSocket-Extensions, which never reaches the client.)
 */
export function stripWsResponseHeaders(headers: HeaderPairs): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [n, v] of headers) {
    const lower = n.toLowerCase();
    if (lower === 'content-length' || lower === 'content-type' || lower === 'keep-alive-interval') continue;
    if (n.length >= 10 && hasPrefixCI(n, 'Set-Meta-')) continue;
    out.push([n, v]);
  }
  return out;
}

/**
 * Subprotocols a client offered: every Sec-WebSocket-Protocol header, split on commas,
 * trimmed, empties dropped, in order.
 */
export function parseOfferedProtocols(headers: HeaderPairs): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) {
    if (n.toLowerCase() !== 'sec-websocket-protocol') continue;
    for (const p of v.split(',')) {
      const t = p.trim();
      if (t !== '') out.push(t);
    }
  }
  return out;
}

/**
 * The subprotocol a backend selected (its Sec-WebSocket-Protocol, trimmed), and whether
 * the client offered it. Pushpin relays the backend's choice unchecked; a client then
 * fails the handshake itself when `offered` is false, so gripd may refuse it earlier.
 */
export function selectedProtocol(
  responseHeaders: HeaderPairs,
  offered: readonly string[],
): { protocol: string; offered: boolean } | undefined {
  const v = getHeader(responseHeaders, 'Sec-WebSocket-Protocol');
  if (v === undefined || v.trim() === '') return undefined;
  const protocol = v.trim();
  return { protocol, offered: offered.includes(protocol) };
}
