/**
 * BackendRequester for src/handler: sends a stored request again (retries, hints,
 * next/gone links) through the same pools, signing and failover rules as the proxy,
 * and reads the whole answer up to a limit.
 */
import type { Dispatcher } from 'undici';
import type { Logger } from '../log/index.js';
import type { Route, Target } from '../routes/types.js';
import type { BackendPools } from './backend-pool.js';
import { targetName } from './backend-pool.js';
import type { SignerCache } from './signing.js';
import type { BackendRequest, BackendRequester, BackendResponse, TestHandler } from './types.js';
import { filterResponseHeaders, toPairs } from './response-headers.js';
import { MAX_REQUESTER_BODY } from './limits.js';

export interface RequesterDeps {
  pools: BackendPools;
  signers: SignerCache;
  testHandler: TestHandler;
  logger: Logger;
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
  return {
    async request(route: Route, req: BackendRequest, opts?: { maxBodyBytes?: number; url?: string }): Promise<BackendResponse> {
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
        const host = u.hostname.replace(/^\[|\]$/g, '');
        const port = u.port === '' ? (https ? 443 : 80) : Number(u.port);
        const pool = deps.pools.forOrigin(https ? 'https' : 'http', host, port, false);
        return send(pool, req.method, u.pathname + u.search, headersFor(req, sig, u.host), req.body, maxBytes);
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
        if (target.type !== 'http') continue;
        const host = target.hostHeader ?? undefined;
        try {
          return await send(deps.pools.forTarget(target as Target), req.method, req.path, headersFor(req, sig, host), req.body, maxBytes);
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          if (!CONNECT_ERRORS.has(code)) throw new Error(`request to ${targetName(target)} failed: ${(err as Error).message}`);
          lastErr = err as Error;
          deps.logger.debug({ target: targetName(target), err: lastErr.message }, 'requester: connect failed, trying next target');
        }
      }
      throw new Error(`unable to connect to any targets (tried: ${tried.join(', ')})${lastErr ? `: ${lastErr.message}` : ''}`);
    },
  };
}
