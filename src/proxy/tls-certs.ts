/**
 * Certificates for TLS listeners, chosen per SNI host name from the certs folder as
 * Pushpin's connection manager does: `<host>.crt` + `<host>.key`, then the wildcard
 * file `_.<parent domain>.crt`/`.key` (one level only), then the listener's default
 * `default_<port>.crt`/`.key`. Contexts are cached and rebuilt on reload().
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from '../log/index.js';

/** Longest SNI name looked up on disk (DNS names are at most 253 characters). */
const MAX_SNI_NAME_LENGTH = 253;

/** Host names that may become file names: letters, digits, '-', '.', '_' only. */
const SAFE_NAME = /^[a-z0-9._-]+$/;

export interface CertFiles {
  key: Buffer;
  cert: Buffer;
}

export class CertStore {
  private readonly cache = new Map<string, tls.SecureContext | null>();

  constructor(private readonly dir: string, private readonly logger: Logger) {}

  /** Reads `<name>.crt`/`.key`; undefined when either is missing or unreadable. */
  readFiles(name: string): CertFiles | undefined {
    try {
      return {
        cert: readFileSync(path.join(this.dir, `${name}.crt`)),
        key: readFileSync(path.join(this.dir, `${name}.key`)),
      };
    } catch {
      return undefined;
    }
  }

  private byName(name: string): tls.SecureContext | undefined {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit ?? undefined;
    const files = this.readFiles(name);
    let ctx: tls.SecureContext | null = null;
    if (files !== undefined) {
      try {
        ctx = tls.createSecureContext(files);
        this.logger.debug({ cert: name }, 'tls: loaded certificate');
      } catch (err) {
        this.logger.warn({ cert: name, err: (err as Error).message }, 'tls: invalid certificate or key');
      }
    }
    this.cache.set(name, ctx);
    return ctx ?? undefined;
  }

  /**
   * The context for an SNI name (exact, then `_.parent`), else the listener default
   * `default_<port>`; undefined when none exists (the handshake then fails).
   */
  lookup(servername: string, port: number): tls.SecureContext | undefined {
    const name = servername.toLowerCase();
    if (name.length <= MAX_SNI_NAME_LENGTH && SAFE_NAME.test(name) && !name.startsWith('.')) {
      const exact = this.byName(name);
      if (exact !== undefined) return exact;
      const dot = name.indexOf('.');
      if (dot > 0) {
        const wild = this.byName('_' + name.slice(dot));
        if (wild !== undefined) return wild;
      }
    }
    return this.byName(`default_${port}`);
  }

  /** Forgets every cached context so the next handshake re-reads the files. */
  reload(): void {
    this.cache.clear();
  }
}
