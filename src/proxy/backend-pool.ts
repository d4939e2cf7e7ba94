/**
 * One pooled undici connection pool per backend origin (scheme, host, port, TLS
 * verification), created on first use and shared by every route that names it.
 */
import { Pool } from 'undici';
import type { Target } from '../routes/types.js';
import {
  BACKEND_CONNECT_TIMEOUT_MS, BACKEND_HEADERS_TIMEOUT_MS, BACKEND_KEEP_ALIVE_TIMEOUT_MS,
  BACKEND_MAX_CONNECTIONS_PER_TARGET,
} from './limits.js';

export interface PoolTimeouts {
  connectMs: number;
  headersMs: number;
}

export const DEFAULT_POOL_TIMEOUTS: PoolTimeouts = {
  connectMs: BACKEND_CONNECT_TIMEOUT_MS,
  headersMs: BACKEND_HEADERS_TIMEOUT_MS,
};

/** `host:port` as Pushpin prints a target (IPv6 hosts without brackets, as Pushpin). */
export function targetName(t: Target): string {
  if (t.type === 'test') return 'test';
  if (t.type === 'zhttp' || t.type === 'zhttpreq') return `${t.type}/${t.zhttpSpec ?? ''}`;
  return `${t.host ?? ''}:${t.port ?? 0}`;
}

function originOf(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class BackendPools {
  private readonly byKey = new Map<string, Pool>();
  /** Targets are immutable route objects: remember their pool without rebuilding the key. */
  private readonly byTarget = new WeakMap<Target, Pool>();
  private closed = false;

  constructor(private readonly timeouts: PoolTimeouts) {}

  /** The pool for an http target. Throws when closed. */
  forTarget(t: Target): Pool {
    const hit = this.byTarget.get(t);
    if (hit !== undefined) return hit;
    const pool = this.forOrigin(t.ssl ? 'https' : 'http', t.host ?? '127.0.0.1', t.port ?? (t.ssl ? 443 : 80), t.insecure, t.hostHeader);
    this.byTarget.set(t, pool);
    return pool;
  }

  /** The pool for an origin; `servername` is the TLS SNI/verification name (default: host). */
  forOrigin(scheme: 'http' | 'https', host: string, port: number, insecure: boolean, servername?: string): Pool {
    if (this.closed) throw new Error('proxy is shutting down');
    const sni = scheme === 'https' ? (servername ?? host).replace(/:\d+$/, '') : '';
    const key = `${scheme}|${host}|${port}|${insecure ? 1 : 0}|${sni}`;
    let pool = this.byKey.get(key);
    if (pool === undefined) {
      const tlsOpts = scheme === 'https'
        ? { rejectUnauthorized: !insecure, ...(isIp(sni) ? {} : { servername: sni }) }
        : {};
      pool = new Pool(originOf(scheme, host, port), {
        connections: BACKEND_MAX_CONNECTIONS_PER_TARGET,
        pipelining: 1,
        keepAliveTimeout: BACKEND_KEEP_ALIVE_TIMEOUT_MS,
        keepAliveMaxTimeout: BACKEND_KEEP_ALIVE_TIMEOUT_MS,
        headersTimeout: this.timeouts.headersMs,
        // Streams (pass-through SSE, stream holds) may idle for hours: no body timeout.
        bodyTimeout: 0,
        connectTimeout: this.timeouts.connectMs,
        connect: tlsOpts,
      });
      this.byKey.set(key, pool);
    }
    return pool;
  }

  /** Closes every pool; in-flight requests are aborted after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    const pools = [...this.byKey.values()];
    this.byKey.clear();
    await Promise.all(pools.map(async (p) => {
      const timer = setTimeout(() => { p.destroy().catch(() => undefined); }, graceMs);
      try { await p.close(); } catch { /* destroyed */ } finally { clearTimeout(timer); }
    }));
  }
}

function isIp(h: string): boolean {
  return /^[0-9.]+$/.test(h) || h.includes(':');
}
