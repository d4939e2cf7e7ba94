/**
 * Automatic cross-origin (CORS) response headers, as Pushpin adds them when
 * `auto_cross_origin` (pushpin.conf) or the route option `aco` is on. Pure.
 *
 * Pushpin's rule: each Access-Control-* header is added only when the response does not
 * already carry one of that name (any case), so a backend that sets its own CORS
 * headers keeps them. Pushpin does not answer OPTIONS preflights itself: the OPTIONS
 * request goes to the backend like any other, and its answer gets these headers.
 */

/** Access-Control-Allow-Methods when the request has no Access-Control-Request-Method. */
export const CORS_DEFAULT_ALLOW_METHODS = 'OPTIONS, HEAD, GET, POST, PUT, DELETE';

/** Access-Control-Max-Age value, in seconds (as text, the way it goes on the wire). */
export const CORS_MAX_AGE_S = '3600';

/**
 * Most header names listed in Access-Control-Allow-Headers or -Expose-Headers. Guards
 * against a request (or response) with thousands of comma-separated items, which would
 * otherwise be echoed back in full. The proxy's header-size limit already bounds the
 * input; this bounds the work and the echo independently of that setting. Pushpin has
 * no such cap; no real client comes near it.
 */
export const MAX_CORS_LIST_ITEMS = 1000;

/**
 * Response headers that browsers expose without being told (CORS "simple" response
 * headers, lowercase). They are never listed in Access-Control-Expose-Headers.
 */
const SIMPLE_RESPONSE_HEADERS = new Set([
  'cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma',
]);

/** ASCII-only lowercase, so that a non-ASCII name never folds onto an ASCII one. */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

function hasHeader(headers: ReadonlyArray<readonly [string, string]>, lcName: string): boolean {
  for (const [name] of headers) if (asciiLower(name) === lcName) return true;
  return false;
}

function firstHeader(headers: ReadonlyArray<readonly [string, string]>, lcName: string): string | undefined {
  for (const [name, value] of headers) if (asciiLower(name) === lcName) return value;
  return undefined;
}

/** Qt's QByteArray::trimmed(): strips ASCII whitespace (space, \t \n \v \f \r) at both ends. */
function qtTrim(s: string): string {
  return s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
}

/**
 * Splits a header value on commas outside double quotes (backslash escapes inside
 * quotes), trimming each part, as Pushpin's header lists do. A trailing comma adds no
 * empty part; an unterminated quote makes the rest one part. At most `maxItems` parts.
 */
export function splitHeaderList(value: string, maxItems: number = MAX_CORS_LIST_ITEMS): string[] {
  const parts: string[] = [];
  let pos = 0;
  while (pos < value.length && parts.length < maxItems) {
    let end = -1;
    let inQuote = false;
    let broken = false;
    for (let n = pos; n < value.length; n++) {
      const c = value[n];
      if (inQuote) {
        if (c === '\\') {
          n++;
          if (n >= value.length) { broken = true; break; }
        } else if (c === '"') inQuote = false;
      } else if (c === '"') inQuote = true;
      else if (c === ',') { end = n; break; }
    }
    if (broken || (end === -1 && inQuote)) {
      parts.push(qtTrim(value.slice(pos)));
      break;
    }
    if (end === -1) end = value.length;
    parts.push(qtTrim(value.slice(pos, end)));
    pos = end + 1;
  }
  return parts;
}

/**
 * Returns `responseHeaders` plus the CORS headers Pushpin adds, computed from the
 * client's request. Headers already in the response (matched case-insensitively) are
 * never overridden or duplicated. Added, in this order, each only if absent:
 *
 * - Access-Control-Allow-Methods: the request's Access-Control-Request-Method, else
 *   {@link CORS_DEFAULT_ALLOW_METHODS};
 * - Access-Control-Allow-Headers: every non-empty item of every
 *   Access-Control-Request-Headers header, joined with ", " (omitted when there are none);
 * - Access-Control-Expose-Headers: the response's header names that are not simple
 *   response headers and start with neither `Access-Control-` nor `Grip-`, first
 *   spelling of each (case-insensitive), joined with ", " (omitted when none);
 * - Access-Control-Allow-Credentials: true;
 * - Access-Control-Allow-Origin: the request's first Origin header, or `*` when it is
 *   absent or empty;
 * - Access-Control-Max-Age: {@link CORS_MAX_AGE_S}.
 *
 * Header names and values are latin1 byte strings (the proxy's convention). Trusts its
 * input to be well-formed header pairs; does not mutate it.
 */
export function applyCorsHeaders(
  requestHeaders: ReadonlyArray<readonly [string, string]>,
  responseHeaders: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  const out: Array<[string, string]> = responseHeaders.map(([n, v]) => [n, v]);

  if (!hasHeader(out, 'access-control-allow-methods')) {
    const method = firstHeader(requestHeaders, 'access-control-request-method');
    out.push(['Access-Control-Allow-Methods', method !== undefined && method !== '' ? method : CORS_DEFAULT_ALLOW_METHODS]);
  }

  if (!hasHeader(out, 'access-control-allow-headers')) {
    const allow: string[] = [];
    for (const [name, value] of requestHeaders) {
      if (asciiLower(name) !== 'access-control-request-headers') continue;
      for (const item of splitHeaderList(value, MAX_CORS_LIST_ITEMS - allow.length)) if (item !== '') allow.push(item);
      if (allow.length >= MAX_CORS_LIST_ITEMS) break;
    }
    if (allow.length > 0) out.push(['Access-Control-Allow-Headers', allow.join(', ')]);
  }

  if (!hasHeader(out, 'access-control-expose-headers')) {
    const expose: string[] = [];
    const seen = new Set<string>();
    for (const [name] of out) {
      const lc = asciiLower(name);
      if (SIMPLE_RESPONSE_HEADERS.has(lc) || lc.startsWith('access-control-') || lc.startsWith('grip-') || seen.has(lc)) continue;
      seen.add(lc);
      expose.push(name);
      if (expose.length >= MAX_CORS_LIST_ITEMS) break;
    }
    if (expose.length > 0) out.push(['Access-Control-Expose-Headers', expose.join(', ')]);
  }

  if (!hasHeader(out, 'access-control-allow-credentials')) out.push(['Access-Control-Allow-Credentials', 'true']);

  if (!hasHeader(out, 'access-control-allow-origin')) {
    const origin = firstHeader(requestHeaders, 'origin');
    out.push(['Access-Control-Allow-Origin', origin !== undefined && origin !== '' ? origin : '*']);
  }

  if (!hasHeader(out, 'access-control-max-age')) out.push(['Access-Control-Max-Age', CORS_MAX_AGE_S]);

  return out;
}
