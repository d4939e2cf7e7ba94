/**
 * Helpers for reading decoded JSON or tnetstring values the way Pushpin reads its
 * Variants: objects (plain objects or Maps), strings (JS strings or byte arrays, the
 * latter decoded as UTF-8), lists and integers. Error texts follow Pushpin's
 * "<parent> contains '<key>' with wrong type" pattern. Pure.
 */

/** A decoded keyed object: a plain object from JSON, or a Map from a tnetstring decoder. */
export type KeyedObject = Record<string, unknown> | Map<string, unknown>;

/** Raises the caller's error type with `message`. */
export type Fail = (message: string) => never;

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

export function isKeyedObject(v: unknown): v is KeyedObject {
  if (v instanceof Map) return true;
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export function objHas(o: KeyedObject, key: string): boolean {
  return o instanceof Map ? o.has(key) : hasOwn(o, key);
}

export function objGet(o: KeyedObject, key: string): unknown {
  if (o instanceof Map) return o.get(key);
  return hasOwn(o, key) ? o[key] : undefined;
}

export function objEntries(o: KeyedObject): Array<[string, unknown]> {
  if (o instanceof Map) {
    const out: Array<[string, unknown]> = [];
    for (const [k, v] of o) out.push([typeof k === 'string' ? k : String(k), v]);
    return out;
  }
  return Object.entries(o);
}

export function isEmptyObject(o: KeyedObject): boolean {
  return o instanceof Map ? o.size === 0 : Object.keys(o).length === 0;
}

/** A string value: JS strings as they are, byte arrays decoded as UTF-8; otherwise undefined. */
export function asString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  return undefined;
}

/** Bytes of a string-like value: UTF-8 of a JS string, a byte array as is; otherwise undefined. */
export function asBytes(v: unknown): Buffer | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

const INT_TEXT = /^[ \t]*[+-]?\d{1,10}[ \t]*$/;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * A 32-bit integer from a number (fraction truncated), bigint, or decimal string; undefined
 * for anything else or out of range. Pushpin also coerces booleans and non-numeric strings
 * (to 0/1 and 0); gripd rejects those as the wrong type.
 */
export function asInt(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return undefined;
    n = Math.trunc(v);
  } else if (typeof v === 'bigint') {
    if (v < BigInt(INT32_MIN) || v > BigInt(INT32_MAX)) return undefined;
    n = Number(v);
  } else {
    const s = asString(v);
    if (s === undefined || !INT_TEXT.test(s)) return undefined;
    n = Number.parseInt(s.trim(), 10);
  }
  if (n < INT32_MIN || n > INT32_MAX) return undefined;
  return n === 0 ? 0 : n; // no -0
}

/** Parses Qt-style `toInt` text (optional sign, digits, surrounding blanks); undefined when invalid. */
export function parseIntText(s: string): number | undefined {
  return INT_TEXT.test(s) ? asInt(s) : undefined;
}

/** Reads an optional/required string member, failing with Pushpin's messages. */
export function getString(o: KeyedObject, parent: string, key: string, required: boolean, fail: Fail): string | undefined {
  if (!objHas(o, key)) {
    if (required) fail(`${parent} does not contain '${key}'`);
    return undefined;
  }
  const s = asString(objGet(o, key));
  if (s === undefined) fail(`${parent} contains '${key}' with wrong type`);
  return s;
}

/** Reads an optional/required list member. */
export function getList(o: KeyedObject, parent: string, key: string, required: boolean, fail: Fail): unknown[] | undefined {
  if (!objHas(o, key)) {
    if (required) fail(`${parent} does not contain '${key}'`);
    return undefined;
  }
  const v = objGet(o, key);
  if (!Array.isArray(v)) fail(`${parent} contains '${key}' with wrong type`);
  return v;
}

/** Reads an optional keyed-object member. */
export function getObject(o: KeyedObject, parent: string, key: string, fail: Fail): KeyedObject | undefined {
  if (!objHas(o, key)) return undefined;
  const v = objGet(o, key);
  if (!isKeyedObject(v)) fail(`${parent} contains '${key}' with wrong type`);
  return v;
}

/** Reads an optional integer member; undefined when absent. */
export function getInt(o: KeyedObject, parent: string, key: string, fail: Fail): number | undefined {
  if (!objHas(o, key)) return undefined;
  const n = asInt(objGet(o, key));
  if (n === undefined) fail(`${parent} contains '${key}' with wrong type`);
  return n;
}

const B64_BODY = /^[A-Za-z0-9+/\-_]*$/;

/**
 * Decodes base64 (standard or URL-safe alphabet, padding optional, ASCII whitespace
 * ignored). Returns undefined for text that is not base64, where Pushpin would silently
 * skip the bad characters.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const s = text.replace(/[ \t\r\n]+/g, '');
  let body = s;
  let pad = 0;
  while (body.endsWith('=') && pad < 2) {
    body = body.slice(0, -1);
    pad++;
  }
  if (!B64_BODY.test(body)) return undefined;
  if (pad > 0 && s.length % 4 !== 0) return undefined;
  if (body.length % 4 === 1) return undefined;
  return Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Reads a meta object (string values only), failing with Pushpin's message for other values. */
export function readMeta(meta: KeyedObject, fail: Fail, into: Record<string, string> = {}): Record<string, string> {
  for (const [k, v] of objEntries(meta)) {
    const s = asString(v);
    if (s === undefined) fail(`'meta' contains '${k}' with wrong type`);
    setOwn(into, k, s);
  }
  return into;
}

/** Sets an own enumerable property, even for keys such as `__proto__`. */
export function setOwn(obj: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Reads response headers given as a list of [name, value] pairs or as an object, with
 * Pushpin's messages. Names and values are returned as header byte strings (UTF-8).
 */
export function readHeaderList(v: unknown, parent: string, fail: Fail): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (Array.isArray(v)) {
    for (const h of v) {
      if (!Array.isArray(h)) fail('headers contains element with wrong type');
      if (h.length !== 2) fail('headers contains list with wrong number of elements');
      const name = asString(h[0]);
      if (name === undefined) fail('header contains name element with wrong type');
      const value = asString(h[1]);
      if (value === undefined) fail('header contains value element with wrong type');
      out.push([name, value]);
    }
  } else if (isKeyedObject(v)) {
    for (const [k, hv] of objEntries(v)) {
      const value = asString(hv);
      if (value === undefined) fail(`headers contains '${k}' with wrong type`);
      out.push([k, value]);
    }
  } else {
    fail(`${parent} contains 'headers' with wrong type`);
  }
  for (const [name, value] of out) {
    if (!isHeaderName(name)) fail(`headers contains '${name}' with invalid name`);
    if (!isHeaderValue(value)) fail(`headers contains '${name}' with invalid value`);
  }
  return out.map(([n, val]) => [toByteString(n), toByteString(val)]);
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** True for an RFC 9110 token (what Node accepts as a header name). */
export function isHeaderName(s: string): boolean {
  return TOKEN.test(s);
}

/** True when a header value has no CR, LF, NUL or other control character except tab. */
export function isHeaderValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

function toByteString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.from(s, 'utf8').toString('latin1');
  }
  return s;
}
