/**
 * zhttp packets (pure): the request and response messages Pushpin exchanges with zhttp
 * peers, framed as `T` + a tnetstring dict. Field names, types and omissions follow
 * Pushpin's packet definitions; see docs/zeromq.md ("zhttp") for the field table.
 *
 * Conventions: byte fields (`from`, ids, `body`) are Buffers; header names and values are
 * latin1 strings (byte-preserving, as Node's http module presents them); text fields
 * (`method`, `uri`, `reason`, `condition`, ...) are UTF-8 strings; integers are
 * non-negative safe integers. Fields left undefined (or false, or empty) are omitted.
 * Keys are written in the order Pushpin's Rust writer uses.
 */
import { decodeTnetstringPrefix, encodeTnetstring, TnetstringError, type TnetDict, type TnetEncodable, type TnetValue } from './tnetstring.js';

/** Ids per packet (one per multiplexed session); Pushpin's IDS_MAX. */
export const MAX_IDS = 128;
/** Headers per packet; Pushpin's HEADERS_MAX. */
export const MAX_HEADERS = 64;

export type ZhttpType =
  | 'data'
  | 'error'
  | 'credit'
  | 'keep-alive'
  | 'cancel'
  | 'handoff-start'
  | 'handoff-proceed'
  | 'close'
  | 'ping'
  | 'pong';

const TYPES: ReadonlySet<string> = new Set(['error', 'credit', 'keep-alive', 'cancel', 'handoff-start', 'handoff-proceed', 'close', 'ping', 'pong']);

export interface ZhttpId {
  id: Buffer;
  /** Sequence number of this packet within the session. */
  seq?: number;
}

interface ZhttpCommon {
  /** Sender's address, used to route replies. */
  from?: Buffer;
  ids: ZhttpId[];
  /** 'data' (the default, written as no `type` key) or a control type. */
  type: ZhttpType;
  /** For type 'error'. */
  condition?: string;
  credits?: number;
  more?: boolean;
  /** Pushpin's `ext.multi`. */
  multi?: boolean;
  headers?: Array<[string, string]>;
  body?: Buffer;
  /** WebSocket frame kind ('text' | 'binary'). */
  contentType?: string;
  code?: number;
  /** Opaque value echoed between request and response. */
  userData?: TnetValue;
}

/** A packet travelling to a zhttp server (a request, or a control packet for one). */
export interface ZhttpRequest extends ZhttpCommon {
  stream?: boolean;
  routerResp?: boolean;
  maxSize?: number;
  timeout?: number;
  method?: string;
  uri?: string;
  peerAddress?: string;
  peerPort?: number;
  connectHost?: string;
  connectPort?: number;
  ignorePolicies?: boolean;
  trustConnectHost?: boolean;
  ignoreTlsErrors?: boolean;
  clientCert?: string;
  clientKey?: string;
  followRedirects?: boolean;
  passthrough?: TnetValue;
  /** Pushpin's `ext.quiet`. */
  quiet?: boolean;
}

/** A packet travelling back from a zhttp server. */
export interface ZhttpResponse extends ZhttpCommon {
  reason?: string;
}

/** A zhttp frame that does not parse; `field` names the culprit ('root' for framing). */
export class ZhttpPacketError extends Error {
  override name = 'ZhttpPacketError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`zhttp: ${field}: ${message}`);
  }
}

const PREFIX_T = 0x54;
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------
// Encoding

type Out = Array<[string, TnetEncodable]>;

function putCommonHead(out: Out, p: ZhttpCommon): void {
  if (p.from !== undefined && p.from.length > 0) out.push(['from', p.from]);
  if (p.ids.length === 1) {
    const only = p.ids[0]!;
    out.push(['id', only.id]);
    if (only.seq !== undefined) out.push(['seq', checkUint('seq', only.seq)]);
  } else if (p.ids.length > 1) {
    out.push([
      'id',
      p.ids.map((i) => {
        const m = new Map<string, TnetEncodable>([['id', i.id]]);
        if (i.seq !== undefined) m.set('seq', checkUint('seq', i.seq));
        return m;
      }),
    ]);
  }
  if (p.multi || (p as ZhttpRequest).quiet) {
    const ext = new Map<string, TnetEncodable>();
    if (p.multi) ext.set('multi', true);
    if ((p as ZhttpRequest).quiet) ext.set('quiet', true);
    out.push(['ext', ext]);
  }
  if (p.type !== 'data') {
    if (!TYPES.has(p.type)) throw new ZhttpPacketError('type', `unknown type "${p.type}"`);
    out.push(['type', p.type]);
  }
  if (p.type === 'error' && p.condition !== undefined && p.condition !== '') out.push(['condition', p.condition]);
}

function checkUint(field: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new ZhttpPacketError(field, 'must be a non-negative integer');
  return v;
}

function putHeaders(out: Out, headers: Array<[string, string]> | undefined): void {
  if (headers === undefined || headers.length === 0) return;
  out.push(['headers', headers.map(([n, v]) => [Buffer.from(n, 'latin1'), Buffer.from(v, 'latin1')])]);
}

function putStr(out: Out, key: string, v: string | undefined): void {
  if (v !== undefined && v !== '') out.push([key, v]);
}
function putInt(out: Out, key: string, v: number | undefined): void {
  if (v !== undefined) out.push([key, checkUint(key, v)]);
}
function putFlag(out: Out, key: string, v: boolean | undefined): void {
  if (v) out.push([key, true]);
}

function frame(out: Out): Buffer {
  return Buffer.concat([Buffer.from('T'), encodeTnetstring(new Map(out))]);
}

/** Encodes a request packet as `T<tnetstring>`. Throws ZhttpPacketError on bad fields. */
export function encodeZhttpRequest(p: ZhttpRequest): Buffer {
  const out: Out = [];
  putCommonHead(out, p);
  putStr(out, 'method', p.method);
  putStr(out, 'uri', p.uri);
  putHeaders(out, p.headers);
  putStr(out, 'content-type', p.contentType);
  if (p.body !== undefined) out.push(['body', p.body]);
  putInt(out, 'code', p.code);
  putInt(out, 'credits', p.credits);
  putFlag(out, 'more', p.more);
  putFlag(out, 'stream', p.stream);
  putFlag(out, 'router-resp', p.routerResp);
  putInt(out, 'max-size', p.maxSize);
  putInt(out, 'timeout', p.timeout);
  putStr(out, 'peer-address', p.peerAddress);
  putInt(out, 'peer-port', p.peerPort);
  putStr(out, 'connect-host', p.connectHost);
  putInt(out, 'connect-port', p.connectPort);
  putFlag(out, 'ignore-policies', p.ignorePolicies);
  putFlag(out, 'trust-connect-host', p.trustConnectHost);
  putFlag(out, 'ignore-tls-errors', p.ignoreTlsErrors);
  putStr(out, 'client-cert', p.clientCert);
  putStr(out, 'client-key', p.clientKey);
  putFlag(out, 'follow-redirects', p.followRedirects);
  if (p.userData !== undefined) out.push(['user-data', p.userData]);
  if (p.passthrough !== undefined) out.push(['passthrough', p.passthrough]);
  return frame(out);
}

/** Encodes a response packet as `T<tnetstring>`. Throws ZhttpPacketError on bad fields. */
export function encodeZhttpResponse(p: ZhttpResponse): Buffer {
  const out: Out = [];
  putCommonHead(out, p);
  putInt(out, 'code', p.code);
  putStr(out, 'reason', p.reason);
  putHeaders(out, p.headers);
  putStr(out, 'content-type', p.contentType);
  if (p.body !== undefined) out.push(['body', p.body]);
  putInt(out, 'credits', p.credits);
  putFlag(out, 'more', p.more);
  if (p.userData !== undefined) out.push(['user-data', p.userData]);
  return frame(out);
}

// ---------------------------------------------------------------------------
// Decoding

function root(buf: Buffer): TnetDict {
  if (buf.length === 0 || buf[0] !== PREFIX_T) throw new ZhttpPacketError('root', 'missing "T" type prefix');
  let v: TnetValue;
  try {
    // Bytes after the value are ignored, as both of Pushpin's parsers do.
    v = decodeTnetstringPrefix(buf, 1).value;
  } catch (e) {
    if (e instanceof TnetstringError) throw new ZhttpPacketError('root', `${e.message.replace(/^tnetstring: /, '')} (frame offset ${e.offset})`);
    throw e;
  }
  if (!isDict(v)) throw new ZhttpPacketError('root', 'not a dict');
  return v;
}

function isDict(v: TnetValue | undefined): v is TnetDict {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function getBytes(d: TnetDict, key: string): Buffer | undefined {
  if (!Object.hasOwn(d, key)) return undefined;
  const v = d[key];
  if (!Buffer.isBuffer(v)) throw new ZhttpPacketError(key, 'must be a byte string');
  return v;
}
function getText(d: TnetDict, key: string): string | undefined {
  const b = getBytes(d, key);
  if (b === undefined) return undefined;
  try {
    return UTF8_STRICT.decode(b);
  } catch {
    throw new ZhttpPacketError(key, 'must be UTF-8');
  }
}
function getUint(d: TnetDict, key: string, allowString = false): number | undefined {
  if (!Object.hasOwn(d, key)) return undefined;
  let v = d[key];
  // Pushpin's C++ writer sends peer-port as a decimal byte string.
  if (allowString && Buffer.isBuffer(v) && /^[0-9]{1,10}$/.test(v.toString('latin1'))) v = Number(v.toString('latin1'));
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ZhttpPacketError(key, 'must be a non-negative integer');
  return v;
}
function getBool(d: TnetDict, key: string): boolean | undefined {
  if (!Object.hasOwn(d, key)) return undefined;
  const v = d[key];
  if (typeof v !== 'boolean') throw new ZhttpPacketError(key, 'must be a boolean');
  return v;
}

function getCommon(d: TnetDict): ZhttpCommon {
  const p: ZhttpCommon = { ids: [], type: 'data' };
  const from = getBytes(d, 'from');
  if (from !== undefined) p.from = from;
  if (Object.hasOwn(d, 'id')) {
    const id = d['id'];
    if (Buffer.isBuffer(id)) {
      p.ids.push({ id });
    } else if (Array.isArray(id)) {
      if (id.length > MAX_IDS) throw new ZhttpPacketError('id', `more than ${MAX_IDS} ids`);
      for (const entry of id) {
        if (!isDict(entry)) throw new ZhttpPacketError('id', 'list entries must be dicts');
        const one: ZhttpId = { id: getBytes(entry, 'id') ?? Buffer.alloc(0) };
        const seq = getUint(entry, 'seq');
        if (seq !== undefined) one.seq = seq;
        p.ids.push(one);
      }
    } else {
      throw new ZhttpPacketError('id', 'must be a byte string or a list');
    }
  }
  const seq = getUint(d, 'seq');
  if (seq !== undefined) {
    if (p.ids.length === 0) p.ids.push({ id: Buffer.alloc(0) });
    p.ids[0]!.seq = seq;
  }
  const type = getText(d, 'type');
  if (type !== undefined) {
    if (!TYPES.has(type)) throw new ZhttpPacketError('type', `unknown type "${type}"`);
    p.type = type as ZhttpType;
  }
  if (p.type === 'error') {
    const c = getText(d, 'condition');
    if (c !== undefined) p.condition = c;
  }
  const credits = getUint(d, 'credits');
  if (credits !== undefined) p.credits = credits;
  const more = getBool(d, 'more');
  if (more !== undefined) p.more = more;
  if (Object.hasOwn(d, 'headers')) {
    const hs = d['headers'];
    if (!Array.isArray(hs)) throw new ZhttpPacketError('headers', 'must be a list');
    if (hs.length > MAX_HEADERS) throw new ZhttpPacketError('headers', `more than ${MAX_HEADERS} headers`);
    p.headers = hs.map((h, i) => {
      if (!Array.isArray(h) || h.length !== 2 || !Buffer.isBuffer(h[0]) || !Buffer.isBuffer(h[1])) {
        throw new ZhttpPacketError(`headers[${i}]`, 'must be a [name, value] pair of byte strings');
      }
      return [h[0].toString('latin1'), h[1].toString('latin1')];
    });
  }
  const body = getBytes(d, 'body');
  if (body !== undefined) p.body = body;
  const ct = getText(d, 'content-type');
  if (ct !== undefined) p.contentType = ct;
  const code = getUint(d, 'code');
  if (code !== undefined) p.code = code;
  if (Object.hasOwn(d, 'user-data')) p.userData = d['user-data'] as TnetValue;
  if (Object.hasOwn(d, 'ext')) {
    const ext = d['ext'];
    if (!isDict(ext)) throw new ZhttpPacketError('ext', 'must be a dict');
    // Non-boolean ext flags are ignored, as Pushpin does.
    if (ext['multi'] === true) p.multi = true;
    if (ext['quiet'] === true) (p as ZhttpRequest).quiet = true;
  }
  return p;
}

/** Decodes a `T<tnetstring>` request packet; throws ZhttpPacketError naming the field. */
export function decodeZhttpRequest(buf: Buffer): ZhttpRequest {
  const d = root(buf);
  const p: ZhttpRequest = getCommon(d);
  const set = <K extends keyof ZhttpRequest>(k: K, v: ZhttpRequest[K] | undefined): void => {
    if (v !== undefined) p[k] = v;
  };
  set('stream', getBool(d, 'stream'));
  set('routerResp', getBool(d, 'router-resp'));
  set('maxSize', getUint(d, 'max-size'));
  set('timeout', getUint(d, 'timeout'));
  set('method', getText(d, 'method'));
  set('uri', getText(d, 'uri'));
  set('peerAddress', getText(d, 'peer-address'));
  set('peerPort', getUint(d, 'peer-port', true));
  set('connectHost', getText(d, 'connect-host'));
  set('connectPort', getUint(d, 'connect-port'));
  set('ignorePolicies', getBool(d, 'ignore-policies'));
  set('trustConnectHost', getBool(d, 'trust-connect-host'));
  set('ignoreTlsErrors', getBool(d, 'ignore-tls-errors'));
  set('clientCert', getText(d, 'client-cert'));
  set('clientKey', getText(d, 'client-key'));
  set('followRedirects', getBool(d, 'follow-redirects'));
  if (Object.hasOwn(d, 'passthrough')) p.passthrough = d['passthrough'] as TnetValue;
  return p;
}

/** Decodes a `T<tnetstring>` response packet; throws ZhttpPacketError naming the field. */
export function decodeZhttpResponse(buf: Buffer): ZhttpResponse {
  const d = root(buf);
  const p: ZhttpResponse = getCommon(d);
  const reason = getText(d, 'reason');
  if (reason !== undefined) p.reason = reason;
  return p;
}

/**
 * Splits the single-frame `<address> T<tnetstring>` form used on PUB/SUB zhttp sockets.
 * Throws ZhttpPacketError when there is no space separator.
 */
export function splitAddressed(buf: Buffer): { address: Buffer; packet: Buffer } {
  const at = buf.indexOf(0x20);
  if (at < 0) throw new ZhttpPacketError('root', 'missing address separator');
  return { address: buf.subarray(0, at), packet: buf.subarray(at + 1) };
}

/** Builds the `<address> T<tnetstring>` form from an address and an encoded packet. */
export function joinAddressed(address: Uint8Array | string, packet: Buffer): Buffer {
  const a = typeof address === 'string' ? Buffer.from(address, 'latin1') : Buffer.from(address);
  return Buffer.concat([a, Buffer.from(' '), packet]);
}
