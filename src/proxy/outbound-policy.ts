/**
 * Outbound address policy: which resolved addresses gripd may connect to on behalf of
 * an untrusted backend (a route target marked `untrusted`, and the next/gone links it
 * hands out). Pure: no DNS, no sockets, no logging; the requester resolves a host,
 * asks this module about every address, and connects only to an address it allowed.
 *
 * Pushpin's rule (connmgr `--deny-out-internal`, which its runner always passes): a
 * request from a trusted target ignores the policy; otherwise every resolved address
 * inside a private/internal range is skipped, and the request fails with a policy
 * violation when no address is left. gripd denies the same ranges plus `0.0.0.0/8`
 * and `::/128` (both reach the local host on Linux) and checks the IPv4 address inside
 * an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) against the IPv4 ranges.
 */
import { isIP } from 'node:net';

/**
 * Ranges denied to untrusted backends, in CIDR text. Pushpin's list (127/8, 10/8,
 * 172.16/12, 192.168/16, 169.254/16, ::1, fc00::/7, fe80::/10) plus the unspecified
 * addresses, which Linux routes to the local host.
 */
export const INTERNAL_RANGES: readonly string[] = Object.freeze([
  '0.0.0.0/8',
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  '::/128',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
]);

/**
 * The `code` of the Error a requester rejects with when the policy refused every
 * address of a request (the backend was never contacted).
 */
export const OUTBOUND_POLICY_DENIED = 'OUTBOUND_POLICY_DENIED';

/** Longest CIDR or address text parsed (an IPv6 address with a zone id fits easily); bounds the parser's work. */
export const MAX_ADDRESS_TEXT_LENGTH = 128;

/** Most ranges in one policy; bounds the per-address check. */
export const MAX_POLICY_RANGES = 1024;

/** A parsed CIDR range. */
export interface CidrRange {
  /** The range as written, e.g. `127.0.0.0/8`. */
  readonly text: string;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Network address bytes (4 or 16), host bits zeroed. */
  readonly bytes: Uint8Array;
  /** Prefix length in bits (0-32 or 0-128). */
  readonly prefix: number;
}

/** An immutable set of denied ranges. */
export interface OutboundPolicy {
  readonly deny: readonly CidrRange[];
}

/** The verdict on one address. */
export type AddressVerdict =
  | { allowed: true; address: string }
  /** `range` is undefined when the address itself does not parse. */
  | { allowed: false; address: string; range: CidrRange | undefined; reason: string };

/**
 * Parses an IPv4 or IPv6 address (IPv6 without brackets; a `%zone` suffix is
 * ignored) into 4 or 16 bytes. Returns undefined for anything else, including text
 * longer than MAX_ADDRESS_TEXT_LENGTH.
 */
export function parseAddress(text: string): Uint8Array | undefined {
  if (text.length > MAX_ADDRESS_TEXT_LENGTH) return undefined;
  const pct = text.indexOf('%');
  const addr = pct >= 0 ? text.slice(0, pct) : text;
  const fam = isIP(addr);
  if (fam === 4) return parseV4(addr);
  if (fam === 6) return parseV6(addr);
  return undefined;
}

function parseV4(s: string): Uint8Array {
  // isIP() accepted it: exactly four decimal octets 0-255.
  return Uint8Array.from(s.split('.').map(Number));
}

function parseV6(s: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  let text = s;
  let tail: number[] = [];
  // A trailing dotted quad (::ffff:1.2.3.4) fills the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    if (isIP(last) !== 4) return undefined;
    const q = parseV4(last);
    tail = [(q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!];
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const rest = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const zeros = 8 - head.length - rest.length;
  if (halves.length === 1 ? zeros !== 0 : zeros < 1) return undefined;
  const groups = [...head, ...new Array<string>(halves.length === 2 ? zeros : 0).fill('0'), ...rest];
  if (groups.length !== 8) return undefined;
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const v = i >= 6 && tail.length === 2 ? tail[i - 6]! : parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  return out;
}

/**
 * Parses `addr/prefix` (or a bare address: a single-address range). Throws a RangeError
 * naming the text when it is not a valid CIDR range.
 */
export function parseCidr(text: string): CidrRange {
  if (text.length > MAX_ADDRESS_TEXT_LENGTH) throw new RangeError(`CIDR range too long (${text.length} > ${MAX_ADDRESS_TEXT_LENGTH} characters)`);
  const slash = text.indexOf('/');
  const addrText = slash >= 0 ? text.slice(0, slash) : text;
  if (addrText.includes('%')) throw new RangeError(`invalid CIDR range "${text}": zone ids are not allowed`);
  const bytes = parseAddress(addrText);
  if (bytes === undefined) throw new RangeError(`invalid CIDR range "${text}": not an IP address`);
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new RangeError(`invalid CIDR range "${text}": prefix must be 0-${max}`);
    prefix = Number(p);
  }
  const net = Uint8Array.from(bytes);
  for (let bit = prefix; bit < max; bit++) net[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return Object.freeze({ text, family: bytes.length === 4 ? 4 : 6, bytes: net, prefix });
}

/**
 * Builds a policy denying `deny` (CIDR texts; default INTERNAL_RANGES). Throws a
 * RangeError naming the first bad range, or when there are more than MAX_POLICY_RANGES.
 */
export function createOutboundPolicy(deny: readonly string[] = INTERNAL_RANGES): OutboundPolicy {
  if (deny.length > MAX_POLICY_RANGES) throw new RangeError(`too many denied ranges (${deny.length} > ${MAX_POLICY_RANGES})`);
  return Object.freeze({ deny: Object.freeze(deny.map(parseCidr)) });
}

function inRange(bytes: Uint8Array, r: CidrRange): boolean {
  if (bytes.length !== r.bytes.length) return false;
  const full = r.prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== r.bytes[i]) return false;
  const rem = r.prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((bytes[full]! & mask) === r.bytes[full]);
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else undefined. */
function mappedV4(b: Uint8Array): Uint8Array | undefined {
  if (b.length !== 16) return undefined;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return undefined;
  if (b[10] !== 0xff || b[11] !== 0xff) return undefined;
  return b.subarray(12);
}

/**
 * Decides one resolved address. An address that does not parse is refused (the
 * requester only ever passes resolver output or URL hosts, so that means something is
 * off). An IPv4-mapped IPv6 address is checked as both itself and its IPv4 address.
 */
export function checkAddress(policy: OutboundPolicy, address: string): AddressVerdict {
  const bytes = parseAddress(address);
  if (bytes === undefined) {
    return { allowed: false, address, range: undefined, reason: `"${address}" is not an IP address` };
  }
  const v4 = mappedV4(bytes);
  for (const r of policy.deny) {
    if (inRange(bytes, r) || (v4 !== undefined && inRange(v4, r))) {
      return { allowed: false, address, range: r, reason: `address ${address} is in denied range ${r.text}` };
    }
  }
  return { allowed: true, address };
}

/** Addresses split into those the policy allows (in input order) and those it denies. */
export interface AddressSelection {
  allowed: string[];
  denied: Array<Extract<AddressVerdict, { allowed: false }>>;
}

/**
 * Checks every address of a resolution (Pushpin skips the denied ones and uses the
 * rest; the caller refuses the request when `allowed` is empty).
 */
export function selectAddresses(policy: OutboundPolicy, addresses: readonly string[]): AddressSelection {
  const out: AddressSelection = { allowed: [], denied: [] };
  for (const a of addresses) {
    const v = checkAddress(policy, a);
    if (v.allowed) out.allowed.push(a);
    else out.denied.push(v);
  }
  return out;
}
