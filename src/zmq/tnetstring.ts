/**
 * tnetstring codec (pure): `<length>:<payload><tag>` where the tag is one of
 * `,` byte string, `#` integer, `^` float, `!` boolean, `~` null, `]` list, `}` dict.
 *
 * Decisions (see docs/zeromq.md, "tnetstrings"):
 * - Byte strings decode to `Buffer` (a view into the input, not a copy) and are never
 *   turned into text; dict keys must be byte strings holding valid UTF-8 and decode to
 *   JS strings. A repeated key keeps its last value, as Pushpin's hash does.
 * - Integers decode to `number` when they fit in a safe integer (|n| <= 2^53 - 1), to
 *   `bigint` when they fit in a signed 64-bit integer, and are rejected beyond that
 *   (Pushpin parses into int64 and rejects overflow too).
 * - The length prefix is 1 to MAX_LENGTH_DIGITS ASCII digits (leading zeros accepted, as
 *   both of Pushpin's parsers do); a claimed length beyond the bytes available fails at
 *   once, before anything is read or allocated.
 * - Nested elements must end inside their parent's payload; dicts need an even number of
 *   elements. Null payloads must be empty (the spec's rule; Pushpin ignores them).
 * - `decodeTnetstring` refuses bytes after the value; `decodeTnetstringPrefix` returns where
 *   the value ended so callers can read sequences.
 *
 * Every failure is a `TnetstringError` carrying the byte offset at fault.
 */

/** Nesting limit for lists/dicts; protects the decoder's and encoder's stack. */
export const MAX_DEPTH = 64;
/** Digits allowed in a length prefix (< 1e9 bytes); protects against absurd claimed sizes. */
export const MAX_LENGTH_DIGITS = 9;
/** Characters allowed in an integer or float payload; numbers never need more. */
export const MAX_NUMBER_CHARS = 400;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A decoded tnetstring value. Dicts are plain objects with own enumerable keys only. */
export type TnetValue = Buffer | number | bigint | boolean | null | TnetValue[] | TnetDict;
export interface TnetDict {
  [key: string]: TnetValue;
}

/**
 * Values `encodeTnetstring` accepts. Strings are written as their UTF-8 bytes; integer
 * numbers and bigints as `#`, other numbers as `^`; `undefined` dict values are omitted and
 * elsewhere written as null; `Map` keys must be strings.
 */
export type TnetEncodable =
  | Buffer
  | Uint8Array
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | readonly TnetEncodable[]
  | ReadonlyMap<string, TnetEncodable>
  | { readonly [key: string]: TnetEncodable };

/** Malformed tnetstring input (or a value that cannot be encoded). `offset` is the byte at fault. */
export class TnetstringError extends Error {
  override name = 'TnetstringError';
  constructor(
    message: string,
    /** Byte offset into the decoded buffer (encoder errors use 0). */
    readonly offset: number,
  ) {
    super(`tnetstring: ${message} at offset ${offset}`);
  }
}

const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

/** Decodes exactly one tnetstring filling `buf` (trailing bytes are an error). */
export function decodeTnetstring(buf: Uint8Array): TnetValue {
  const b = asBuffer(buf);
  const { value, end } = decodeAt(b, 0, b.length, 0);
  if (end !== b.length) throw new TnetstringError(`${b.length - end} trailing byte(s) after the value`, end);
  return value;
}

/**
 * Decodes one tnetstring starting at `offset`; returns it and the offset just past it.
 * Bytes after it are left alone.
 */
export function decodeTnetstringPrefix(buf: Uint8Array, offset = 0): { value: TnetValue; end: number } {
  const b = asBuffer(buf);
  if (!Number.isInteger(offset) || offset < 0 || offset > b.length) {
    throw new TnetstringError('start offset outside the buffer', Math.max(0, Math.min(b.length, offset | 0)));
  }
  return decodeAt(b, offset, b.length, 0);
}

function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Decodes the element at `start`, which must end at or before `limit`. */
function decodeAt(b: Buffer, start: number, limit: number, depth: number): { value: TnetValue; end: number } {
  if (start >= limit) throw new TnetstringError('expected a length prefix, found end of input', start);
  let pos = start;
  let len = 0;
  for (;;) {
    if (pos >= limit) throw new TnetstringError('length prefix not terminated by ":"', pos);
    const c = b[pos]!;
    if (c === COLON) break;
    if (c < DIGIT_0 || c > DIGIT_9) throw new TnetstringError(`invalid byte 0x${hex(c)} in length prefix`, pos);
    if (pos - start >= MAX_LENGTH_DIGITS) {
      throw new TnetstringError(`length prefix longer than ${MAX_LENGTH_DIGITS} digits`, pos);
    }
    len = len * 10 + (c - DIGIT_0);
    pos++;
  }
  if (pos === start) throw new TnetstringError('empty length prefix', pos);
  const dataStart = pos + 1;
  // Checked before touching the payload: a huge claimed size on a short buffer fails here.
  if (len > limit - dataStart - 1) {
    const avail = Math.max(0, limit - dataStart - 1);
    throw new TnetstringError(`claimed length ${len} exceeds the ${avail} byte(s) available`, start);
  }
  const dataEnd = dataStart + len;
  const tag = b[dataEnd]!;
  const end = dataEnd + 1;
  switch (tag) {
    case 0x2c: // ','
      return { value: b.subarray(dataStart, dataEnd), end };
    case 0x23: // '#'
      return { value: decodeInt(b, dataStart, dataEnd), end };
    case 0x5e: // '^'
      return { value: decodeFloat(b, dataStart, dataEnd), end };
    case 0x21: // '!'
      return { value: decodeBool(b, dataStart, dataEnd), end };
    case 0x7e: // '~'
      if (len !== 0) throw new TnetstringError('null with a non-empty payload', dataStart);
      return { value: null, end };
    case 0x5d: // ']'
      return { value: decodeList(b, dataStart, dataEnd, depth + 1, start), end };
    case 0x7d: // '}'
      return { value: decodeDict(b, dataStart, dataEnd, depth + 1, start), end };
    default:
      throw new TnetstringError(`unknown type tag 0x${hex(tag)}`, dataEnd);
  }
}

function decodeInt(b: Buffer, s: number, e: number): number | bigint {
  if (e - s > MAX_NUMBER_CHARS) throw new TnetstringError('integer payload too long', s);
  const text = b.toString('latin1', s, e);
  if (!/^[+-]?[0-9]+$/.test(text)) throw new TnetstringError(`invalid integer ${JSON.stringify(text)}`, s);
  const n = Number(text);
  if (Number.isSafeInteger(n)) return n;
  const big = BigInt(text);
  if (big < INT64_MIN || big > INT64_MAX) throw new TnetstringError('integer outside the signed 64-bit range', s);
  return big;
}

const FLOAT_RE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const FLOAT_SPECIAL_RE = /^([+-]?)(nan|inf|infinity)$/i;

function decodeFloat(b: Buffer, s: number, e: number): number {
  if (e - s > MAX_NUMBER_CHARS) throw new TnetstringError('float payload too long', s);
  const text = b.toString('latin1', s, e);
  if (FLOAT_RE.test(text)) return Number(text);
  const special = FLOAT_SPECIAL_RE.exec(text);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return NaN;
    return special[1] === '-' ? -Infinity : Infinity;
  }
  throw new TnetstringError(`invalid float ${JSON.stringify(text)}`, s);
}

function decodeBool(b: Buffer, s: number, e: number): boolean {
  const text = b.toString('latin1', s, e);
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw new TnetstringError('boolean payload is neither "true" nor "false"', s);
}

function checkDepth(depth: number, at: number): void {
  if (depth > MAX_DEPTH) throw new TnetstringError(`nesting deeper than ${MAX_DEPTH}`, at);
}

function decodeList(b: Buffer, s: number, e: number, depth: number, at: number): TnetValue[] {
  checkDepth(depth, at);
  const out: TnetValue[] = [];
  let pos = s;
  while (pos < e) {
    const r = decodeAt(b, pos, e, depth);
    out.push(r.value);
    pos = r.end;
  }
  return out;
}

function decodeDict(b: Buffer, s: number, e: number, depth: number, at: number): TnetDict {
  checkDepth(depth, at);
  const out: TnetDict = {};
  let pos = s;
  while (pos < e) {
    const k = decodeAt(b, pos, e, depth);
    if (!Buffer.isBuffer(k.value)) throw new TnetstringError('dict key is not a byte string', pos);
    let key: string;
    try {
      key = UTF8_STRICT.decode(k.value);
    } catch {
      throw new TnetstringError('dict key is not valid UTF-8', pos);
    }
    if (k.end >= e) throw new TnetstringError(`dict key "${key}" has no value`, k.end);
    const v = decodeAt(b, k.end, e, depth);
    // defineProperty, not assignment: a "__proto__" key must become data, not a prototype.
    Object.defineProperty(out, key, { value: v.value, enumerable: true, writable: true, configurable: true });
    pos = v.end;
  }
  return out;
}

function hex(c: number): string {
  return c.toString(16).padStart(2, '0');
}

// ---------------------------------------------------------------------------
// Encoder

/** Encodes `value` as one tnetstring. Throws TnetstringError (offset 0) on unencodable input. */
export function encodeTnetstring(value: TnetEncodable): Buffer {
  const parts: Buffer[] = [];
  const total = encodeInto(value, parts, 0);
  return Buffer.concat(parts, total);
}

function header(len: number): Buffer {
  return Buffer.from(`${len}:`, 'latin1');
}

function leaf(payload: Buffer, tag: string, parts: Buffer[]): number {
  const h = header(payload.length);
  parts.push(h, payload, Buffer.from(tag, 'latin1'));
  return h.length + payload.length + 1;
}

function encodeInto(v: TnetEncodable, parts: Buffer[], depth: number): number {
  if (v === null || v === undefined) {
    parts.push(Buffer.from('0:~', 'latin1'));
    return 3;
  }
  if (typeof v === 'string') return leaf(Buffer.from(v, 'utf8'), ',', parts);
  if (typeof v === 'boolean') return leaf(Buffer.from(v ? 'true' : 'false', 'latin1'), '!', parts);
  if (typeof v === 'bigint') {
    if (v < INT64_MIN || v > INT64_MAX) throw new TnetstringError('bigint outside the signed 64-bit range', 0);
    return leaf(Buffer.from(v.toString(), 'latin1'), '#', parts);
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Object.is(v, -0)) {
      if (Number.isSafeInteger(v)) return leaf(Buffer.from(String(v), 'latin1'), '#', parts);
      // An integral number beyond 2^53 is written exactly as an int while it fits in int64,
      // and as a float beyond that, so the decoder never meets an int it must reject.
      const big = BigInt(v);
      if (big >= INT64_MIN && big <= INT64_MAX) return leaf(Buffer.from(big.toString(), 'latin1'), '#', parts);
    }
    return leaf(Buffer.from(formatFloat(v), 'latin1'), '^', parts);
  }
  if (v instanceof Uint8Array) {
    const bytes = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return leaf(bytes, ',', parts);
  }
  if (depth >= MAX_DEPTH) throw new TnetstringError(`nesting deeper than ${MAX_DEPTH} (or a cycle)`, 0);
  if (Array.isArray(v)) {
    const inner: Buffer[] = [];
    let len = 0;
    for (const el of v as readonly TnetEncodable[]) len += encodeInto(el, inner, depth + 1);
    return container(len, inner, ']', parts);
  }
  const entries: Iterable<[string, TnetEncodable]> =
    v instanceof Map ? (v as ReadonlyMap<string, TnetEncodable>).entries() : Object.entries(v as object);
  const inner: Buffer[] = [];
  let len = 0;
  for (const [k, el] of entries) {
    if (typeof k !== 'string') throw new TnetstringError('dict key is not a string', 0);
    if (el === undefined) continue;
    len += encodeInto(k, inner, depth + 1);
    len += encodeInto(el, inner, depth + 1);
  }
  return container(len, inner, '}', parts);
}

function container(len: number, inner: Buffer[], tag: string, parts: Buffer[]): number {
  const h = header(len);
  parts.push(h);
  for (const p of inner) parts.push(p);
  parts.push(Buffer.from(tag, 'latin1'));
  return h.length + len + 1;
}

/** Shortest round-tripping text; NaN and infinities as `NaN`, `inf`, `-inf` (Rust's spelling). */
function formatFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return String(x);
}
