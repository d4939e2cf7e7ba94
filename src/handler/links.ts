/**
 * Link and Grip-Last helpers shared by held requests. Pure.
 */
import { formatGripLast, type GripLastEntry } from '../grip/headers.js';
import type { ChannelSubscription } from '../grip/types.js';
import type { BackendRequest } from '../proxy/types.js';

/** `Grip-Last: <channel>; last-id=<id>` for each channel that has a prev-id. */
export function gripLastHeaders(channels: Iterable<ChannelSubscription>): Array<[string, string]> {
  const entries: GripLastEntry[] = [];
  for (const c of channels) if (c.prevId !== undefined) entries.push({ name: c.name, id: c.prevId });
  return formatGripLast(entries).map((v) => ['Grip-Last', v]);
}

/** The original request again, with any old Grip-Last replaced by `last`. */
export function withGripLast(req: BackendRequest, last: Array<[string, string]>): BackendRequest {
  const headers = req.headers.filter(([n]) => n.toLowerCase() !== 'grip-last');
  return { ...req, headers: [...headers, ...last] };
}

/** A link target as the requester wants it: absolute links go by URL, relative ones by path on the route. */
export interface LinkTarget {
  path: string;
  url?: string;
}

/**
 * Resolves a Grip-Link URL against the path of the current request. Absolute http(s)
 * URLs are kept whole; anything else becomes a path sent to the route's targets.
 * Throws on a URL that does not parse.
 */
export function resolveLink(link: string, currentPath: string): LinkTarget {
  if (/^https?:\/\//i.test(link)) {
    const u = new URL(link);
    return { path: u.pathname + u.search, url: u.toString() };
  }
  const u = new URL(link, new URL(currentPath, 'http://gripd.invalid'));
  return { path: u.pathname + u.search };
}
