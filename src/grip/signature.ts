/**
 * Grip-Sig: the JWT gripd puts on requests to GRIP backends so they can tell the request
 * came through the proxy, and the check of a client's Grip-Sig against `upstream_key`
 * (chained proxies). Tokens are byte-identical in form to Pushpin's: header
 * `{"typ":"JWT","alg":...}`, claims `{"exp":<now+3600>,"iss":<sig_iss>}`.
 *
 * Keys are secrets (HS256) or PEM text (ES256 for a P-256 EC key, RS256 for RSA), given as
 * bytes (as src/config resolves `sig_key`/`upstream_key`) or as a string. Signing uses
 * node:crypto synchronously so a request pays only for a cached string; verification uses
 * `jose`.
 */
import { createHmac, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import { KeySpecError } from './errors.js';

/** Lifetime of a signed token (`exp` = now + this), in seconds, as Pushpin. */
export const GRIP_SIG_TTL_S = 3600;
/** A cached token is re-signed once older than this, in ms; keeps `exp` within a minute of Pushpin's. */
export const GRIP_SIG_REFRESH_MS = 60_000;
/** Longest Grip-Sig accepted for verification, in bytes; protects the verifier from huge inputs. */
export const MAX_GRIP_SIG_BYTES = 8192;
/** Verified tokens remembered per key; bounds the verifier's cache. */
export const MAX_VERIFIED_TOKENS = 1024;
/** Distinct keys for which {@link verifyGripSig} keeps a verifier; bounds its cache. */
export const MAX_VERIFIER_KEYS = 16;

/**
 * The Grip-Feature request header value Pushpin 1.x sends to GRIP backends, listing
 * the GRIP features the proxy supports.
 */
export const GRIP_FEATURE =
  'status, session, link:next, link:gone, filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id, filter:var-subst';

export type GripSigAlgorithm = 'HS256' | 'ES256' | 'RS256';

export interface GripSigner {
  /** The current Grip-Sig header value; re-signed at most every {@link GRIP_SIG_REFRESH_MS}. */
  header(): string;
  readonly algorithm: GripSigAlgorithm;
}

export interface GripSignerOptions {
  /** Clock in ms since the epoch; default Date.now (tests pass a fake). */
  now?: () => number;
}

type SignKey = { alg: 'HS256'; secret: Buffer } | { alg: 'ES256' | 'RS256'; key: KeyObject };

const PEM_PREFIX = '-----BEGIN';

function keyBytes(key: Uint8Array | string): Buffer {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

/** True when a key holds PEM text rather than a shared secret. */
export function isPemKey(key: Uint8Array | string): boolean {
  return keyBytes(key).subarray(0, PEM_PREFIX.length).toString('latin1') === PEM_PREFIX;
}

function algorithmOf(k: KeyObject, what: string): 'ES256' | 'RS256' {
  if (k.asymmetricKeyType === 'rsa') return 'RS256';
  if (k.asymmetricKeyType === 'ec') {
    const curve = k.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'ES256';
    throw new KeySpecError(`${what}: EC key on curve ${curve ?? 'unknown'} is not supported (ES256 needs P-256)`);
  }
  throw new KeySpecError(`${what}: ${k.asymmetricKeyType ?? 'unknown'} keys are not supported (use an EC P-256 or RSA key)`);
}

function loadSignKey(key: Uint8Array | string): SignKey {
  const bytes = keyBytes(key);
  if (bytes.length === 0) throw new KeySpecError('sig_key is empty');
  if (!isPemKey(bytes)) return { alg: 'HS256', secret: Buffer.from(bytes) };
  let k: KeyObject;
  try {
    k = createPrivateKey({ key: bytes, format: 'pem' });
  } catch (e) {
    throw new KeySpecError(`sig_key: PEM text is not a usable private key (${(e as Error).message})`);
  }
  return { alg: algorithmOf(k, 'sig_key'), key: k };
}

function b64url(data: Buffer | string): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url');
}

/** Signs `{"exp":expS,"iss":iss}` with `key`; the compact JWT. */
function signToken(iss: string, expS: number, key: SignKey): string {
  const head = b64url(`{"typ":"JWT","alg":"${key.alg}"}`);
  const body = b64url(`{"exp":${expS},"iss":${JSON.stringify(iss)}}`);
  const input = `${head}.${body}`;
  let sig: Buffer;
  if (key.alg === 'HS256') sig = createHmac('sha256', key.secret).update(input).digest();
  else if (key.alg === 'ES256') sig = cryptoSign('sha256', Buffer.from(input), { key: key.key, dsaEncoding: 'ieee-p1363' });
  else sig = cryptoSign('sha256', Buffer.from(input), key.key);
  return `${input}.${b64url(sig)}`;
}

/**
 * Creates a signer for `iss` (sig_iss) and `key` (sig_key: secret bytes, or PEM text of an
 * EC P-256 or RSA private key). Callers send no Grip-Sig when sig_iss or sig_key is empty,
 * as Pushpin. Throws {@link KeySpecError} for an empty key or PEM that is not a usable
 * private key.
 */
export function createGripSigner(iss: string, key: Uint8Array | string, opts: GripSignerOptions = {}): GripSigner {
  const k = loadSignKey(key);
  const now = opts.now ?? Date.now;
  let token = '';
  let signedAtMs = 0;
  return {
    algorithm: k.alg,
    header(): string {
      const t = now();
      // Re-sign when stale, and also if the clock stepped back.
      if (token === '' || t - signedAtMs >= GRIP_SIG_REFRESH_MS || t < signedAtMs) {
        token = signToken(iss, Math.floor(t / 1000) + GRIP_SIG_TTL_S, k);
        signedAtMs = t;
      }
      return token;
    },
  };
}

export interface GripSigVerifier {
  /**
   * Resolves true when `token` is a JWT signed with this key (HS256 for a secret; ES256 or
   * RS256 for PEM, by key type) whose `exp` claim is present and in the future. Never rejects.
   */
  verify(token: string): Promise<boolean>;
}

/**
 * Creates a verifier for `key` (upstream_key: secret bytes, or PEM text of a public key
 * or of a private key whose public half is used). Successful results are cached per token
 * until the token expires (at most {@link MAX_VERIFIED_TOKENS} tokens). Throws
 * {@link KeySpecError} for an empty key or unusable PEM.
 */
export function createGripSigVerifier(key: Uint8Array | string, opts: GripSignerOptions = {}): GripSigVerifier {
  const bytes = keyBytes(key);
  if (bytes.length === 0) throw new KeySpecError('upstream_key is empty');
  let alg: GripSigAlgorithm;
  let vkey: Uint8Array | KeyObject;
  if (isPemKey(bytes)) {
    try {
      vkey = createPublicKey({ key: bytes, format: 'pem' });
    } catch (e) {
      throw new KeySpecError(`upstream_key: PEM text is not a usable key (${(e as Error).message})`);
    }
    alg = algorithmOf(vkey, 'upstream_key');
  } else {
    alg = 'HS256';
    vkey = new Uint8Array(bytes);
  }
  const now = opts.now ?? Date.now;
  const verified = new Map<string, number>();

  return {
    async verify(token: string): Promise<boolean> {
      if (typeof token !== 'string' || token === '' || token.length > MAX_GRIP_SIG_BYTES) return false;
      const nowS = Math.floor(now() / 1000);
      const cachedExp = verified.get(token);
      if (cachedExp !== undefined) {
        if (nowS < cachedExp) return true;
        verified.delete(token);
        return false;
      }
      let exp: unknown;
      try {
        const { payload } = await jwtVerify(token, vkey, { algorithms: [alg], currentDate: new Date(nowS * 1000) });
        exp = payload.exp;
      } catch {
        return false;
      }
      // As Pushpin: a token without a positive exp in the future is not trusted.
      if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= 0 || nowS >= exp) return false;
      if (verified.size >= MAX_VERIFIED_TOKENS) {
        const oldest = verified.keys().next();
        if (oldest.done !== true) verified.delete(oldest.value);
      }
      verified.set(token, exp);
      return true;
    },
  };
}

const verifiersByBytes = new WeakMap<Uint8Array, GripSigVerifier>();
const verifiersByText = new Map<string, GripSigVerifier>();

/**
 * Convenience over {@link createGripSigVerifier}: keeps one verifier (and its cache) per
 * key. Resolves false for an unusable key rather than throwing.
 */
export async function verifyGripSig(token: string, key: Uint8Array | string): Promise<boolean> {
  let v = typeof key === 'string' ? verifiersByText.get(key) : verifiersByBytes.get(key);
  if (v === undefined) {
    try {
      v = createGripSigVerifier(key);
    } catch {
      return false;
    }
    if (typeof key === 'string') {
      if (verifiersByText.size >= MAX_VERIFIER_KEYS) verifiersByText.clear();
      verifiersByText.set(key, v);
    } else {
      verifiersByBytes.set(key, v);
    }
  }
  return v.verify(token);
}
