/**
 * Header-value helpers that split and parse the way Pushpin does, so GRIP headers mean
 * the same thing to gripd as to Pushpin: comma lists that respect double quotes, and
 * `first; name=value; name="quoted"` parameter lists. Pure.
 *
 * Header pairs are `[name, value]` with names compared case-insensitively. Values are
 * "byte strings" as Node's HTTP parser produces them (one char per byte, latin1); text
 * fields are decoded as UTF-8 with {@link decodeHeaderText}.
 */

/** One header parameter: `[name, value]`; value is '' when the parameter had no `=`. */
export type HeaderParam = [string, string];

const WS = new Set([' ', '\t', '\n', '\r', '\v', '\f']);

/** Trims the whitespace Qt's `trimmed()` trims (space, \t, \n, \v, \f, \r). */
export function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && WS.has(s[a]!)) a++;
  while (b > a && WS.has(s[b - 1]!)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Case-insensitive ASCII name comparison. */
export function sameHeaderName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/** Value of the first header called `name`, or undefined. */
export function getHeader(headers: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  for (const [n, v] of headers) {
    if (sameHeaderName(n, name)) return v;
  }
  return undefined;
}

/** True when any header is called `name`. */
export function hasHeader(headers: ReadonlyArray<readonly [string, string]>, name: string): boolean {
  return getHeader(headers, name) !== undefined;
}

/** Position of `c` outside double quotes at or after `from`; length if absent; -1 on an unterminated quote or escape. */
function findNonQuoted(s: string, c: string, from: number): number {
  let inQuote = false;
  for (let n = from; n < s.length; n++) {
    const ch = s[n];
    if (inQuote) {
      if (ch === '\\') {
        n++;
        if (n >= s.length) return -1;
      } else if (ch === '"') {
        inQuote = false;
      }
    } else if (ch === '"') {
      inQuote = true;
    } else if (ch === c) {
      return n;
    }
  }
  return inQuote ? -1 : s.length;
}

/**
 * Splits a comma-separated header value into trimmed elements, ignoring commas inside
 * double quotes. An unterminated quote makes the rest one element (as Pushpin).
 */
export function splitHeaderList(value: string): string[] {
  const parts: string[] = [];
  let pos = 0;
  while (pos < value.length) {
    const end = findNonQuoted(value, ',', pos);
    if (end === -1) {
      parts.push(trimWs(value.slice(pos)));
      break;
    }
    parts.push(trimWs(value.slice(pos, end)));
    pos = end < value.length ? end + 1 : value.length;
  }
  return parts;
}

/** All values of headers called `name`, each split on commas unless `split` is false. */
export function getAllHeaders(
  headers: ReadonlyArray<readonly [string, string]>,
  name: string,
  split = true,
): string[] {
  const out: string[] = [];
  for (const [n, v] of headers) {
    if (!sameHeaderName(n, name)) continue;
    if (split) out.push(...splitHeaderList(v));
    else out.push(v);
  }
  return out;
}

/**
 * Parses `first; a=b; c="d\"e"; flag` into parameters. With `parseFirst` false (the usual
 * mode) the text before the first `;` is taken whole as the first parameter's name.
 * Returns null when a quoted value is unterminated or ends in a lone backslash.
 */
export function parseHeaderParams(value: string, parseFirst = false): HeaderParam[] | null {
  const out: HeaderParam[] = [];
  const len = value.length;
  let start = 0;
  if (!parseFirst) {
    const at = value.indexOf(';');
    if (at !== -1) {
      out.push([trimWs(value.slice(0, at)), '']);
      start = at + 1;
    } else {
      out.push([trimWs(value), '']);
      start = len;
    }
  }
  while (start < len) {
    let at = -1;
    for (let n = start; n < len; n++) {
      const ch = value[n];
      if (ch === '=' || ch === ';') {
        at = n;
        break;
      }
    }
    if (at === -1) {
      out.push([trimWs(value.slice(start)), '']);
      break;
    }
    const name = trimWs(value.slice(start, at));
    let val = '';
    if (value[at] === '=') {
      at++;
      if (at < len && value[at] === '"') {
        at++;
        let complete = false;
        let n = at;
        for (; n < len; n++) {
          const ch = value[n]!;
          if (ch === '\\') {
            if (n + 1 >= len) return null;
            n++;
            val += value[n]!;
          } else if (ch === '"') {
            complete = true;
            break;
          } else {
            val += ch;
          }
        }
        if (!complete) return null;
        const semi = value.indexOf(';', n + 1);
        start = semi !== -1 ? semi + 1 : len;
      } else {
        const semi = value.indexOf(';', at);
        if (semi !== -1) {
          val = trimWs(value.slice(at, semi));
          start = semi + 1;
        } else {
          val = trimWs(value.slice(at));
          start = len;
        }
      }
    } else {
      start = at + 1;
    }
    out.push([name, val]);
  }
  return out;
}

/** Value of the first parameter called `name` (case-insensitive), or undefined. */
export function getParam(params: ReadonlyArray<HeaderParam>, name: string): string | undefined {
  for (const [n, v] of params) {
    if (sameHeaderName(n, name)) return v;
  }
  return undefined;
}

/**
 * Turns a header byte string into text: bytes are decoded as UTF-8 (invalid sequences
 * become U+FFFD, as Pushpin's QString::fromUtf8). A string that already holds characters
 * above U+00FF is taken to be text already and returned unchanged.
 */
export function decodeHeaderText(s: string): string {
  let high = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return s;
    if (c >= 0x80) high = true;
  }
  return high ? Buffer.from(s, 'latin1').toString('utf8') : s;
}

/** Turns header byte string into bytes (UTF-8 for a string already holding text above U+00FF). */
export function headerBytes(s: string): Buffer {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) return Buffer.from(s, 'utf8');
  }
  return Buffer.from(s, 'latin1');
}

/** Encodes text as a header byte string (its UTF-8 bytes, one char per byte). */
export function encodeHeaderText(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.from(s, 'utf8').toString('latin1');
  }
  return s;
}
