/**
 * Builds the header list gripd sends to a backend from the client's raw headers:
 * Pushpin's rules for hop-by-hop headers, Grip-* stripping, X-Forwarded-*, CDN-Loop,
 * route `header=` additions, original-header marking and Host rewriting. Pure.
 */
import type { XffRules } from '../config/types.js';

/** Prefix Pushpin uses to carry a copy of the client's original headers (route `orig_headers`). */
export const ORIG_HEADER_PREFIX = 'eb9bf0f5-';

/**
 * Request headers never relayed (lowercase). Pushpin's list (Connection, Keep-Alive,
 * Accept-Encoding, Transfer-Encoding, Expect) plus hop-by-hop headers of RFC 9110
 * that only concern the client's hop (Upgrade, TE, Trailer, Proxy-Connection,
 * Proxy-Authorization). Accept-Encoding goes so the backend answers uncompressed.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  'connection', 'keep-alive', 'accept-encoding', 'transfer-encoding', 'expect',
  'upgrade', 'te', 'trailer', 'proxy-connection', 'proxy-authorization',
]);

export interface RequestHeaderOptions {
  /** The client proved it is a GRIP proxy itself (valid Grip-Sig for upstream_key). */
  trusted: boolean;
  /** Route is GRIP-enabled (not no_grip) and the client isn't trusted: add Grip-Feature. */
  addGripFeature: boolean;
  /** Grip-Feature value (from src/grip). */
  gripFeature: string;
  /** The route's `header=` pairs; an empty value removes the header. */
  routeHeaders: ReadonlyArray<readonly [string, string]>;
  /** Route option orig_headers. */
  origHeaders: boolean;
  /** Lowercase header names that are only kept as originals when already marked. */
  origHeadersNeedMark: ReadonlySet<string>;
  /** Remove Pushpin-Route (accept_pushpin_route). */
  acceptPushpinRoute: boolean;
  /** accept_x_forwarded_protocol. */
  acceptXForwardedProtocol: boolean;
  /** set_x_forwarded_protocol. */
  setXForwardedProtocol: 'true' | 'proto-only' | 'false';
  /** The request counts as https (TLS listener, or an accepted X-Forwarded-Proto). */
  https: boolean;
  /** x_forwarded_for, or x_forwarded_for_trusted for a trusted client. */
  xff: XffRules;
  /** The client's IP address ('' when unknown, e.g. Unix sockets: then nothing is appended). */
  peerAddress: string;
  /** cdn_loop value to append to CDN-Loop ('' = leave CDN-Loop alone). */
  cdnLoop: string;
  /** Host header to send instead of the client's (as_host / target host=), or undefined. */
  hostOverride: string | undefined;
}

function splitList(value: string, out: string[]): void {
  for (const part of value.split(',')) {
    const v = part.trim();
    if (v !== '') out.push(v);
  }
}

/**
 * Returns the backend header list as a flat `[name, value, name, value, …]` array
 * (names keep the client's case). `raw` is Node's `req.rawHeaders`. Grip-Sig is not
 * included: the sender adds a fresh one per attempt.
 */
export function buildBackendHeaders(raw: readonly string[], o: RequestHeaderOptions): string[] {
  let input: readonly string[] = raw;
  if (o.routeHeaders.length > 0) {
    const names = new Set(o.routeHeaders.map(([n]) => n.toLowerCase()));
    const next: string[] = [];
    for (let i = 0; i + 1 < input.length; i += 2) {
      if (!names.has(input[i]!.toLowerCase())) next.push(input[i]!, input[i + 1]!);
    }
    for (const [n, v] of o.routeHeaders) if (v !== '') next.push(n, v);
    input = next;
  }

  const out: string[] = [];
  const marked: string[] = [];
  const xff: string[] = [];
  const cdnLoop: string[] = [];
  let hostValue: string | undefined;
  let hostName = 'Host';
  const stripXfp = o.acceptXForwardedProtocol || o.setXForwardedProtocol !== 'false';

  for (let i = 0; i + 1 < input.length; i += 2) {
    const name = input[i]!;
    const value = input[i + 1]!;
    const lc = name.toLowerCase();
    if (lc.startsWith(ORIG_HEADER_PREFIX)) {
      // Already-marked originals are kept (moved to the end) only for orig_headers routes.
      if (o.origHeaders && !o.trusted) marked.push(name, value);
      else if (o.origHeaders) out.push(name, value);
      continue;
    }
    if (o.origHeaders && !o.trusted && !o.origHeadersNeedMark.has(lc)) marked.push(ORIG_HEADER_PREFIX + name, value);
    if (DROPPED_REQUEST_HEADERS.has(lc)) continue;
    switch (lc) {
      case 'host':
        hostName = name;
        hostValue = value;
        continue;
      case 'x-forwarded-for':
        splitList(value, xff);
        continue;
      case 'pushpin-route':
        if (o.acceptPushpinRoute) continue;
        break;
      case 'cdn-loop':
        if (o.cdnLoop !== '') { splitList(value, cdnLoop); continue; }
        break;
      case 'x-forwarded-proto':
      case 'x-forwarded-protocol':
        if (stripXfp) continue;
        break;
      case 'grip-feature':
        if (o.addGripFeature) continue;
        break;
      default:
        break;
    }
    if (!o.trusted && lc.startsWith('grip-')) continue;
    out.push(name, value);
  }

  if (o.hostOverride !== undefined) out.push('Host', o.hostOverride);
  else if (hostValue !== undefined) out.unshift(hostName, hostValue);

  for (let i = 0; i < marked.length; i++) out.push(marked[i]!);
  if (o.cdnLoop !== '') {
    cdnLoop.push(o.cdnLoop);
    out.push('CDN-Loop', cdnLoop.join(', '));
  }
  if (o.addGripFeature) out.push('Grip-Feature', o.gripFeature);
  if (o.https && o.setXForwardedProtocol !== 'false') {
    out.push('X-Forwarded-Proto', 'https');
    if (o.setXForwardedProtocol === 'true') out.push('X-Forwarded-Protocol', 'https');
  }
  let values = xff;
  if (o.xff.truncate !== undefined) values = values.slice(Math.max(values.length - o.xff.truncate, 0));
  if (o.xff.append && o.peerAddress !== '') values.push(o.peerAddress);
  if (values.length > 0) out.push('X-Forwarded-For', values.join(', '));
  return out;
}

/**
 * True when an X-Forwarded-Proto (or, absent that, X-Forwarded-Protocol) header says
 * the client's original connection was TLS (`https` or `wss`), as Pushpin checks it.
 */
export function isForwardedTls(raw: readonly string[]): boolean {
  let protocol: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lc = raw[i]!.toLowerCase();
    if (lc === 'x-forwarded-proto') {
      const v = raw[i + 1]!;
      return v === 'https' || v === 'wss';
    }
    if (lc === 'x-forwarded-protocol' && protocol === undefined) protocol = raw[i + 1]!;
  }
  return protocol === 'https' || protocol === 'wss';
}
