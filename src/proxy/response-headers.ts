/**
 * Filters a backend response's raw header list before it is relayed to the client.
 * Pure.
 */

/**
 * Response headers that describe the backend hop only (lowercase). Pushpin drops
 * Connection, Keep-Alive and Transfer-Encoding; gripd also drops the other RFC 9110
 * hop-by-hop headers. Content-Encoding is kept: gripd never decodes bodies, so the
 * header must travel with the encoded bytes (Pushpin drops it because its HTTP client
 * decodes).
 */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade']);

/** Media type of a GRIP instruct body. */
export const GRIP_INSTRUCT_TYPE = 'application/grip-instruct';

export interface FilteredResponseHeaders {
  /** Flat `[name, value, …]` list to relay (names keep the backend's case). */
  flat: string[];
  /**
   * A header starts with `Grip-` or the Content-Type is application/grip-instruct:
   * the response may be GRIP and needs the full check.
   */
  maybeGrip: boolean;
}

/**
 * Converts undici's raw header buffers into the list relayed to the client, and notes
 * whether the response looks like GRIP. `raw` alternates names and values.
 */
export function filterResponseHeaders(raw: ReadonlyArray<Buffer | string>): FilteredResponseHeaders {
  const flat: string[] = [];
  let maybeGrip = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const value = raw[i + 1]!.toString('latin1');
    const lc = name.toLowerCase();
    if (DROPPED_RESPONSE_HEADERS.has(lc)) continue;
    if (lc.startsWith('grip-')) maybeGrip = true;
    else if (lc === 'content-type' && value.toLowerCase().startsWith(GRIP_INSTRUCT_TYPE)) maybeGrip = true;
    flat.push(name, value);
  }
  return { flat, maybeGrip };
}

/** Converts a flat list into pairs (for the GRIP codecs). */
export function toPairs(flat: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** Finds a header value (case-insensitive) in a flat list. */
export function getHeader(flat: readonly string[], lcName: string): string | undefined {
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i]!.toLowerCase() === lcName) return flat[i + 1];
  return undefined;
}
