/**
 * Recognising GRIP responses, and the Grip-Last request header. Pure.
 */
import { decodeHeaderText, encodeHeaderText, getAllHeaders, getParam, parseHeaderParams, trimWs } from './header-params.js';

/** Content type that marks a JSON instruction body. */
export const GRIP_INSTRUCT_CONTENT_TYPE = 'application/grip-instruct';

/** Name of the request header carrying the last-seen id per channel. */
export const GRIP_LAST_HEADER = 'Grip-Last';

/** Most Grip-Last entries read from one request; protects the retry/next-link path from huge lists. */
export const MAX_GRIP_LAST_ENTRIES = 1000;

/** True when a header name starts with `Grip-` in any case. */
export function isGripHeaderName(name: string): boolean {
  return name.length >= 5 && name.slice(0, 5).toLowerCase() === 'grip-';
}

/** True when a Content-Type value is application/grip-instruct (parameters ignored, any case). */
export function isInstructContentType(value: string): boolean {
  const semi = value.indexOf(';');
  return trimWs(semi === -1 ? value : value.slice(0, semi)).toLowerCase() === GRIP_INSTRUCT_CONTENT_TYPE;
}

/**
 * True when Pushpin would treat a backend response as GRIP: any header whose name starts
 * with `Grip-` (any case), or a Content-Type of application/grip-instruct (parameters
 * ignored; compared case-insensitively, where Pushpin compares exactly).
 */
export function isGripResponse(headers: ReadonlyArray<readonly [string, string]>): boolean {
  for (const [name, value] of headers) {
    if (isGripHeaderName(name)) return true;
    if (name.length === 12 && name.toLowerCase() === 'content-type' && isInstructContentType(value)) return true;
  }
  return false;
}

/** A copy of `headers` without any Grip-* header (what clients and untrusted hops must not see). */
export function stripGripHeaders(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [n, v] of headers) if (!isGripHeaderName(n)) out.push([n, v]);
  return out;
}

/** One Grip-Last entry: a channel and the id of the last item the client saw on it. */
export interface GripLastEntry {
  name: string;
  id: string;
}

const NEEDS_QUOTE = /[;,"\\\s]/;

/**
 * Formats Grip-Last header values, one per channel, as Pushpin sends them:
 * `<channel>; last-id=<id>`. Ids holding `;`, `,`, quotes, backslashes or blanks are
 * quoted (Pushpin's parser reads quoted values); channel names are sent as they are, so a
 * name holding `,` or `;` cannot round-trip (Pushpin has the same limit). Returns header
 * byte strings (UTF-8).
 */
export function formatGripLast(channels: ReadonlyArray<GripLastEntry>): string[] {
  return channels.map(({ name, id }) => {
    const idText = NEEDS_QUOTE.test(id) || id === '' ? `"${id.replace(/["\\]/g, (c) => `\\${c}`)}"` : id;
    return encodeHeaderText(`${name}; last-id=${idText}`);
  });
}

/**
 * Reads every Grip-Last header (repeated or comma-joined) into entries, in order. Entries
 * without a channel name are skipped; a missing `last-id` gives id ''. At most
 * {@link MAX_GRIP_LAST_ENTRIES} entries are returned.
 */
export function parseGripLastHeader(headers: ReadonlyArray<readonly [string, string]>): GripLastEntry[] {
  const out: GripLastEntry[] = [];
  for (const item of getAllHeaders(headers, GRIP_LAST_HEADER)) {
    if (out.length >= MAX_GRIP_LAST_ENTRIES) break;
    const params = parseHeaderParams(item);
    if (params === null) continue;
    const name = decodeHeaderText(params[0]![0]);
    if (name === '') continue;
    out.push({ name, id: decodeHeaderText(getParam(params.slice(1), 'last-id') ?? '') });
  }
  return out;
}
