/**
 * Grip-Sig tokens for requests to GRIP-enabled routes, and the upstream_key check that
 * makes a client trusted. Signing and verification themselves live in src/grip; this
 * file only caches one signer per key so a request costs no JWT work in the common case.
 */
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import type { Route } from '../routes/types.js';
import { createGripSigner, verifyGripSig } from '../grip/index.js';

type Signer = { header(): string };

export class SignerCache {
  private readonly global: Signer | undefined;
  private readonly byRoute = new WeakMap<Route, Signer | null>();

  constructor(private readonly config: Config, private readonly logger: Logger) {
    const { sigIss, sigKey } = config.proxy;
    this.global = sigIss !== '' && sigKey.length > 0 ? this.make(sigIss, sigKey, 'sig_key') ?? undefined : undefined;
  }

  /** A signer, or null (logged) when the key is unusable: requests then go unsigned, as Pushpin. */
  private make(iss: string, key: Uint8Array, what: string): Signer | null {
    try {
      return createGripSigner(iss, key);
    } catch (err) {
      this.logger.error({ key: what, err: (err as Error).message }, 'proxy: cannot sign requests with this key');
      return null;
    }
  }

  /**
   * The Grip-Sig value for a request on `route`: the route's sig_iss/sig_key when both
   * are set, else the global ones; undefined when no key is configured (as Pushpin,
   * which then sends no Grip-Sig).
   */
  token(route: Route): string | undefined {
    let s: Signer | null | undefined = this.byRoute.get(route);
    if (s === undefined) {
      const made: Signer | null = route.sigIss !== undefined && route.sigIss !== '' && route.sigKey !== undefined && route.sigKey.length > 0
        ? this.make(route.sigIss, route.sigKey, `${route.source} sig_key`)
        : null;
      this.byRoute.set(route, made);
      s = made;
    }
    return (s ?? this.global)?.header();
  }

  /**
   * True when `token` (a client's Grip-Sig) is valid and unexpired for upstream_key.
   * Never throws: a malformed token is simply not trusted.
   */
  async isTrusted(token: string): Promise<boolean> {
    const key = this.config.proxy.upstreamKey;
    if (key.length === 0 || token === '') return false;
    try {
      return Boolean(await verifyGripSig(token, key));
    } catch {
      return false;
    }
  }
}
