/**
 * The route table: selection of a route for a request, as Pushpin's DomainMap does it.
 *
 * Selection rules (Pushpin's, reproduced exactly):
 * - The request host (lowercased, port removed) picks a bucket: that host's routes if it
 *   has any, else the `*` routes, else nothing. A host with routes of its own never
 *   falls back to `*`, even when none of its routes match the request.
 * - Id-only routes (empty condition) are in no bucket: they are reached only by id.
 * - Within the bucket, routes are scanned in file order. The first route that matches
 *   (proto, ssl, path_beg prefix) is the candidate; each later matching route replaces it
 *   when it is "more specific": it sets proto and the candidate does not; or, proto being
 *   equally (un)set, its path_beg is longer; or it sets ssl and the candidate does not.
 *   The last clause ignores path length, so the rule is not a total order and line order
 *   can matter (Pushpin 1.36 behaves so; tests pin it).
 * - Two routes with the same domain, proto, ssl and path_beg: the later one is dropped.
 * - Ids: an id used by two routes is "shared" and reaches neither.
 */
import type { Route } from './types.js';

/** A request as seen for route selection. */
export interface RouteQuery {
  /** Host header or URL host; port and case are ignored. */
  host: string;
  /** Request path as received (percent-encoded); a query string is ignored. */
  path: string;
  /** True when the client connection is TLS (or X-Forwarded-Proto says so, when accepted). */
  ssl: boolean;
  proto: 'http' | 'ws';
}

interface Bucket {
  /** Routes that can match, by [proto][ssl]: index = (proto === 'ws' ? 2 : 0) + (ssl ? 1 : 0). */
  lists: [Route[], Route[], Route[], Route[]];
}

/** Key of a route's condition within its domain; equal keys are duplicates. */
export function conditionKey(route: Pick<Route, 'proto' | 'ssl' | 'pathBeg'>): string {
  return `${route.proto ?? '*'}\u0000${route.ssl === undefined ? '*' : route.ssl ? 'y' : 'n'}\u0000${route.pathBeg ?? ''}`;
}

/** Immutable, precomputed route table. Build a new one on reload. */
export class RouteTable {
  /** The routes in effect, in file order (duplicate conditions removed). */
  readonly routes: readonly Route[];
  private readonly buckets = new Map<string, Bucket>();
  private readonly ids = new Map<string, Route | null>();

  /** @param routes in file order; routes with a duplicate condition after the first are ignored. */
  constructor(routes: readonly Route[]) {
    const kept: Route[] = [];
    const seen = new Map<string, Set<string>>();
    for (const r of routes) {
      const domain = r.domain === '' || r.domain === '*' ? r.domain : r.domain.toLowerCase();
      if (domain !== '') {
        let keys = seen.get(domain);
        if (keys === undefined) seen.set(domain, (keys = new Set()));
        const key = conditionKey(r);
        if (keys.has(key)) continue;
        keys.add(key);
        let bucket = this.buckets.get(domain);
        if (bucket === undefined) this.buckets.set(domain, (bucket = { lists: [[], [], [], []] }));
        for (let k = 0; k < 4; k++) {
          const proto = k >= 2 ? 'ws' : 'http';
          const ssl = (k & 1) === 1;
          if ((r.proto === undefined || r.proto === proto) && (r.ssl === undefined || r.ssl === ssl)) {
            bucket.lists[k as 0 | 1 | 2 | 3].push(r);
          }
        }
      }
      if (r.id !== '') this.ids.set(r.id, this.ids.has(r.id) ? null : r);
      kept.push(r);
    }
    this.routes = Object.freeze(kept);
  }

  /** The route for a request by host, or undefined (Pushpin answers 502 "No route for host"). */
  match(q: RouteQuery): Route | undefined {
    const host = normalizeHost(q.host);
    const bucket = this.buckets.get(host) ?? this.buckets.get('*');
    if (bucket === undefined) return undefined;
    const list = bucket.lists[((q.proto === 'ws' ? 2 : 0) + (q.ssl ? 1 : 0)) as 0 | 1 | 2 | 3];
    const q2 = q.path.indexOf('?');
    const path = q2 === -1 ? q.path : q.path.slice(0, q2);
    let best: Route | undefined;
    // Every route in `list` already matches proto and ssl; only path_beg is left to check.
    for (const r of list) {
      if (r.pathBeg !== undefined && !path.startsWith(r.pathBeg)) continue;
      if (best === undefined || isMoreSpecific(r, best)) best = r;
    }
    return best;
  }

  /** The route with this id (explicit or generated), or undefined when unknown or shared. */
  byId(id: string): Route | undefined {
    return this.ids.get(id) ?? undefined;
  }

  /** True when two or more routes carry this id (Pushpin then ignores it for routing). */
  isIdShared(id: string): boolean {
    return this.ids.get(id) === null;
  }

  /**
   * Route selection for a client request as Pushpin's proxy does it, including the
   * `Pushpin-Route` header (pass `routeId` only when accept_pushpin_route is on):
   * - no or empty routeId, or an id shared by several routes: host lookup (`match`);
   * - otherwise the route with that id, or none when the id is unknown (no fallback).
   *   As in newer Pushpin (not 1.36), the route's path_beg must also fit the path, so a
   *   client cannot reach a route's backend outside the paths the route serves.
   */
  resolve(q: RouteQuery & { routeId?: string }): Route | undefined {
    const id = q.routeId;
    if (id === undefined || id === '' || this.isIdShared(id)) return this.match(q);
    const r = this.byId(id);
    if (r === undefined) return undefined;
    const q2 = q.path.indexOf('?');
    const path = q2 === -1 ? q.path : q.path.slice(0, q2);
    return r.pathBeg === undefined || path.startsWith(r.pathBeg) ? r : undefined;
  }
}

/** Pushpin's "is `r` a more specific match than `best`" (both known to match). */
function isMoreSpecific(r: Route, best: Route): boolean {
  if (best.proto === undefined && r.proto !== undefined) return true;
  if (best.proto !== undefined && r.proto === undefined) return false;
  if (utf8Length(r.pathBeg) > utf8Length(best.pathBeg)) return true;
  return best.ssl === undefined && r.ssl !== undefined;
}

function utf8Length(s: string | undefined): number {
  if (s === undefined) return 0;
  // Fast path: path prefixes are nearly always ASCII.
  return /^[\x00-\x7f]*$/.test(s) ? s.length : Buffer.byteLength(s, 'utf8');
}

/** Lowercase host without port; `[v6]:port` -> `v6` (as a URL host). */
export function normalizeHost(host: string): string {
  let h = host;
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    h = close === -1 ? h.slice(1) : h.slice(1, close);
  } else {
    const colon = h.indexOf(':');
    // More than one colon is a bare IPv6 address, not host:port.
    if (colon !== -1 && h.indexOf(':', colon + 1) === -1) h = h.slice(0, colon);
  }
  return h.toLowerCase();
}

/**
 * The path to send to the backend for a request routed by `route`, as Pushpin rewrites it:
 * `replace_beg` strips the length of path_beg and prepends its value; otherwise a positive
 * `path_rem` strips that many bytes. `as_host` is not applied here (it changes the Host).
 * A query string (`?...`) is kept as is. An empty result becomes "/". The result may lack
 * a leading '/' (e.g. path_rem=1 on "/abc" gives "abc"); Pushpin then fails the request
 * as a proxy error.
 *
 * @param path request path as received (percent-encoded), optionally with a query
 */
export function rewritePath(route: Route, path: string): string {
  const qi = path.indexOf('?');
  const p = qi === -1 ? path : path.slice(0, qi);
  const query = qi === -1 ? '' : path.slice(qi);
  let remove = route.pathRem ?? 0;
  let prepend = '';
  if (route.replaceBeg !== undefined) {
    remove = utf8Length(route.pathBeg);
    prepend = route.replaceBeg;
  }
  let out = p;
  if (remove > 0) {
    if (/^[\x00-\x7f]*$/.test(p)) out = p.slice(remove);
    else out = Buffer.from(p, 'utf8').subarray(remove).toString('utf8');
  }
  out = prepend + out;
  if (out === '') out = '/';
  return out + query;
}
