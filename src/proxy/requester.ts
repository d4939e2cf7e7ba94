/**
 * BackendRequester for src/handler: sends a stored request again (retries, hints,
 * next/gone links) through the same pools, signing and failover rules as the proxy,
 * and reads the whole answer up to a limit.
 *
 * Outbound policy (as Pushpin): a request on behalf of an untrusted backend — a route
 * target marked `untrusted`, or an absolute link handed out by one — first resolves
 * the host, checks every address against src/proxy/outbound-policy.ts, and connects
 * to an allowed address itself (so a second DNS answer cannot swap in an internal
 * one). When every address is denied the request fails with a warning naming the URL
 * and the reason; the handler then treats it as any failed link fetch.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Logger } from '../log/index.js';
import type { Route, Target } from '../routes/types.js';
import type { BackendPools } from './backend-pool.js';
import { targetName } from './backend-pool.js';
import type { SignerCache } from './signing.js';
import type { BackendRequest, BackendRequester, BackendResponse, TestHandler } from './types.js';
import { filterResponseHeaders, toPairs } from './response-headers.js';
import { BACKEND_CONNECT_TIMEOUT_MS, MAX_REQUESTER_BODY } from './limits.js';
import { requestZhttpWhole, zhttpClientFor } from './zhttp-target.js';
import { createOutboundPolicy, OUTBOUND_POLICY_DENIED, selectAddresses, type OutboundPolicy } from './outbound-policy.js';

/** Resolves a host name to its IP addresses (textual, resolver order). */
export type HostLookup = (host: string) => Promise<string[]>;

export interface RequesterDeps {
  pools: BackendPools;
  signers: SignerCache;
  testHandler: TestHandler;
  logger: Logger;
  /** Ranges untrusted backends may not reach; default: createOutboundPolicy() (internal ranges). */
  outboundPolicy?: OutboundPolicy;
  /** Host resolution for policy checks; default: the system resolver (getaddrinfo, all addresses). */
  lookup?: HostLookup;
}

/**
 * Addresses of one resolution that are checked and tried, in resolver order. Bounds the
 * work a hostile DNS answer can cause (connmgr keeps a similar cap).
 */
export const MAX_RESOLVED_ADDRESSES = 16;

/** Time allowed for resolving a host before the request fails like a failed connect. */
export const OUTBOUND_LOOKUP_TIMEOUT_MS = BACKEND_CONNECT_TIMEOUT_MS;

/** The system resolver, every address, in the order getaddrinfo gives them. */
async function systemLookup(host: string): Promise<string[]> {
  const r = await dnsLookup(host, { all: true, verbatim: true });
  return r.map((a) => a.address);
}

/** An Error carrying a Node-style code, so the failover loop can tell a connect failure. */
function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * True when a request on behalf of `route` may ignore the outbound policy for a `url`
 * link: the answering target is trusted (Pushpin passes its trust on to external
 * link requests), or, not knowing it, every target of the route is.
 */
export function isLinkTrusted(route: Route, answering?: Target): boolean {
  if (answering !== undefined) return !answering.untrusted;
  return route.targets.every((t) => !t.untrusted);
}

/** Error codes meaning the target was never reached (try the next one). */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Rebuilds the header list with a fresh Grip-Sig (and, for links, the link's Host). */
function headersFor(req: BackendRequest, sig: string | undefined, host: string | undefined): string[] {
  const out: string[] = [];
  if (host !== undefined) out.push('Host', host);
  for (const [n, v] of req.headers) {
    const lc = n.toLowerCase();
    if (lc === 'grip-sig' && sig !== undefined) continue;
    if (lc === 'host' && host !== undefined) continue;
    if (lc === 'content-length') continue;
    out.push(n, v);
  }
  if (sig !== undefined) out.push('Grip-Sig', sig);
  return out;
}

async function send(
  pool: Dispatcher, method: string, path: string, headers: string[], body: Buffer, maxBytes: number,
): Promise<BackendResponse> {
  const r = await pool.request({
    method: method as Dispatcher.HttpMethod,
    path,
    headers,
    body: body.length > 0 ? body : null,
    responseHeaders: 'raw',
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of r.body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes) {
      r.body.destroy();
      throw new Error(`backend response body exceeds ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  const raw = r.headers as unknown as string[];
  return {
    status: r.statusCode,
    reason: (r as { statusText?: string }).statusText ?? '',
    headers: toPairs(filterResponseHeaders(raw).flat),
    body: Buffer.concat(chunks),
  };
}

/** Creates the requester the handler uses. */
export function createRequester(deps: RequesterDeps): BackendRequester {
  const policy = deps.outboundPolicy ?? createOutboundPolicy();
  const lookup = deps.lookup ?? systemLookup;

  /** Resolves `host` (an IP literal resolves to itself), bounded in time and count. */
  async function resolve(host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(codedError(`resolving ${host} timed out after ${OUTBOUND_LOOKUP_TIMEOUT_MS} ms`, 'EAI_AGAIN')), OUTBOUND_LOOKUP_TIMEOUT_MS);
      timer.unref();
    });
    try {
      const addrs = await Promise.race([lookup(host), deadline]);
      if (addrs.length === 0) throw codedError(`${host} resolved to no addresses`, 'ENOTFOUND');
      return addrs.slice(0, MAX_RESOLVED_ADDRESSES);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The addresses of `host` the policy allows. When none is left, logs a warning naming
   * `what` (the URL or target) and the reason, and throws a policy error.
   */
  async function allowedAddresses(host: string, what: string, context: string): Promise<string[]> {
    const sel = selectAddresses(policy, await resolve(host));
    if (sel.allowed.length > 0) {
      if (sel.denied.length > 0) deps.logger.debug({ url: what, skipped: sel.denied.map((d) => d.address) }, 'requester: outbound policy skipped internal addresses');
      return sel.allowed;
    }
    const reason = sel.denied.map((d) => d.reason).join('; ');
    deps.logger.warn({ url: what, reason, context }, `requester: outbound policy refused ${what}`);
    throw codedError(`outbound policy refused ${what}: ${reason}`, OUTBOUND_POLICY_DENIED);
  }

  /** Tries each checked address in turn; only connect failures move on to the next. */
  async function sendToAddresses(
    addrs: string[], open: (addr: string) => Dispatcher, req: BackendRequest, path: string, headers: string[], maxBytes: number,
  ): Promise<BackendResponse> {
    let lastErr: Error | undefined;
    for (const addr of addrs) {
      try {
        return await send(open(addr), req.method, path, headers, req.body, maxBytes);
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (!CONNECT_ERRORS.has(code)) throw err;
        lastErr = err as Error;
      }
    }
    throw lastErr ?? new Error('no address to connect to');
  }

  return {
    async request(route: Route, req: BackendRequest, opts?: { maxBodyBytes?: number; url?: string; target?: Target }): Promise<BackendResponse> {
      const maxBytes = opts?.maxBodyBytes ?? MAX_REQUESTER_BODY;
      const sig = route.noGrip ? undefined : deps.signers.token(route);
      if (opts?.url !== undefined) {
        let u: URL;
        try {
          u = new URL(opts.url);
        } catch {
          throw new Error(`invalid link URL: ${opts.url}`);
        }
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported link URL scheme: ${u.protocol}`);
        const https = u.protocol === 'https:';
        const scheme = https ? 'https' : 'http';
        const host = u.hostname.replace(/^\[|\]$/g, '');
        const port = u.port === '' ? (https ? 443 : 80) : Number(u.port);
        const headers = headersFor(req, sig, u.host);
        const path = u.pathname + u.search;
        if (isLinkTrusted(route, opts.target)) {
          return send(deps.pools.forOrigin(scheme, host, port, false), req.method, path, headers, req.body, maxBytes);
        }
        const addrs = await allowedAddresses(host, u.toString(), `link from an untrusted target of route ${route.id}`);
        // Connect to the checked address; TLS still verifies the link's host name.
        return sendToAddresses(addrs, (a) => deps.pools.forOrigin(scheme, a, port, false, https ? host : undefined), req, path, headers, maxBytes);
      }
      const tried: string[] = [];
      let lastErr: Error | undefined;
      for (const target of route.targets) {
        tried.push(targetName(target));
        if (target.type === 'test') {
          const resp = await deps.testHandler({ method: req.method, path: req.path, headers: req.headers, body: req.body });
          if (resp.body.length > maxBytes) throw new Error(`test handler response body exceeds ${maxBytes} bytes`);
          return resp;
        }
        if (target.type === 'zhttp' || target.type === 'zhttpreq') {
          // As Pushpin: a retry on a zhttp route goes to the handler over the same zhttp sockets.
          return await requestZhttpWhole(zhttpClientFor(deps.logger), target, req, sig, maxBytes);
        }
        if (target.type !== 'http') continue;
        const host = target.hostHeader ?? undefined;
        try {
          const headers = headersFor(req, sig, host);
          if (!target.untrusted) {
            return await send(deps.pools.forTarget(target as Target), req.method, req.path, headers, req.body, maxBytes);
          }
          const connectHost = target.host ?? '';
          const scheme = target.ssl ? 'https' : 'http';
          const port = target.port ?? (target.ssl ? 443 : 80);
          const url = `${scheme}://${connectHost.includes(':') ? `[${connectHost}]` : connectHost}:${port}${req.path}`;
          const addrs = await allowedAddresses(connectHost, url, `untrusted target ${targetName(target)} of route ${route.id}`);
          return await sendToAddresses(addrs, (a) => deps.pools.forOrigin(scheme, a, port, target.insecure, target.hostHeader ?? connectHost), req, req.path, headers, maxBytes);
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          // A refused target was never reached: fail over like a connect error.
          if (!CONNECT_ERRORS.has(code) && code !== OUTBOUND_POLICY_DENIED) throw new Error(`request to ${targetName(target)} failed: ${(err as Error).message}`);
          lastErr = err as Error;
          deps.logger.debug({ target: targetName(target), err: lastErr.message }, 'requester: connect failed, trying next target');
        }
      }
      throw new Error(`unable to connect to any targets (tried: ${tried.join(', ')})${lastErr ? `: ${lastErr.message}` : ''}`);
    },
  };
}
