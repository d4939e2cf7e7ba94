/**
 * Route targets `zhttpreq/<spec>` and `zhttp/<spec>`: the request goes to a zhttp handler
 * over ZeroMQ (src/zmq/zhttp-client.ts) instead of HTTP, and its answer takes the same
 * path as an HTTP backend's: GRIP answers are handed to the handler (stream holds get the
 * rest of the body as it arrives), anything else is relayed to the client. Failures
 * (timeouts, error packets, bad answers) end in the proxy's 502.
 */
import { PassThrough } from 'node:stream';
import type { Logger } from '../log/index.js';
import type { Target } from '../routes/types.js';
import { isGripResponse } from '../grip/index.js';
import {
  MAX_ZHTTP_REQUEST_BODY, ZhttpClient, type ZhttpCall, type ZhttpCallError, type ZhttpClientOptions,
} from '../zmq/zhttp-client.js';
import type { Forwarder, RequestInfo } from './forward.js';
import { targetName } from './backend-pool.js';
import { buildBackendHeaders } from './request-headers.js';
import { filterResponseHeaders, getHeader, GRIP_INSTRUCT_TYPE, toPairs } from './response-headers.js';
import { sendText, textInstructTooLarge, TEXT_PROXY_ERROR } from './replies.js';
import { MAX_GRIP_RESPONSE_BODY } from './limits.js';
import type { BackendRequest, BackendResponse } from './types.js';

export { MAX_ZHTTP_REQUEST_BODY } from '../zmq/zhttp-client.js';

const EMPTY = Buffer.alloc(0);

/** Every ZhttpClient created by zhttpClientFor, so shutdown can close them all. */
const clients = new Set<ZhttpClient>();

/** The process's default client (no options): the proxy and the requester share its sockets. */
let shared: ZhttpClient | undefined;

/**
 * A zhttp client whose sockets closeZhttpClients() will close. Without options it is the
 * process's shared client: a `zhttpreq/` spec is bound once, so every user (the proxy's
 * forwarder, the handler's retries) must go through the same sockets.
 */
export function zhttpClientFor(logger: Logger, opts?: Omit<ZhttpClientOptions, 'logger'>): ZhttpClient {
  if (opts === undefined && shared !== undefined && clients.has(shared)) return shared;
  const c = new ZhttpClient({ logger, ...opts });
  clients.add(c);
  if (opts === undefined) shared = c;
  return c;
}

/** Closes every zhttp socket gripd opened for zhttp/zhttpreq targets (call on shutdown). */
export async function closeZhttpClients(): Promise<void> {
  const all = [...clients];
  clients.clear();
  shared = undefined;
  await Promise.allSettled(all.map((c) => c.close()));
}

/** Reads the client's body for a zhttp request, up to `max` bytes; undefined past it. */
async function readBody(info: RequestInfo, max: number): Promise<Buffer | undefined> {
  if (info.tap === undefined) return EMPTY;
  const src = info.tap.source();
  if (src === undefined) throw new Error('request body already sent to a failed target');
  if (Buffer.isBuffer(src)) return src.length > max ? undefined : src;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of src) {
    size += c.length;
    if (size > max) return undefined;
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * Forwards `info`'s request to a zhttp/zhttpreq target. Never throws; answers the client
 * (relay, GRIP hand-off, 413 or 502) in every case.
 */
export function forwardZhttp(fwd: Forwarder, info: RequestInfo, target: Target, client: ZhttpClient): void {
  run(fwd, info, target, client).catch((err: unknown) => {
    fwd.ctx.logger.error({ err: (err as Error).message, target: targetName(target) }, 'proxy: zhttp request failed');
    fwd.fail(info, TEXT_PROXY_ERROR, targetName(target));
  });
}

async function run(fwd: Forwarder, info: RequestInfo, target: Target, client: ZhttpClient): Promise<void> {
  const name = targetName(target);
  const body = await readBody(info, MAX_ZHTTP_REQUEST_BODY);
  if (info.clientGone) return;
  if (body === undefined) {
    sendText(info.res, 413, 'Request Entity Too Large', `Body must not exceed ${MAX_ZHTTP_REQUEST_BODY} bytes`);
    fwd.log(info.method, info.clientPath, 413, info.route, name, info.startMs);
    return;
  }
  const opts = info.headerOpts;
  opts.hostOverride = target.hostHeader ?? info.route.asHost;
  const flat = buildBackendHeaders(info.req.rawHeaders, opts);
  const sig = info.gripMode ? fwd.ctx.signers.token(info.route) : undefined;
  // Pushpin signs zhttp requests exactly as HTTP ones, Grip-Sig ahead of Grip-Feature.
  if (sig !== undefined) {
    let at = flat.length;
    for (let i = 0; i < flat.length; i += 2) if (flat[i]!.toLowerCase() === 'grip-feature') at = i;
    flat.splice(at, 0, 'Grip-Sig', sig);
  }
  const headers = toPairs(flat);
  const host = getHeader(flat, 'host') ?? 'localhost';
  const uri = `${target.ssl ? 'https' : 'http'}://${host}${info.backendPath.startsWith('/') ? '' : '/'}${info.backendPath}`;
  const backendRequest: BackendRequest = {
    method: info.method,
    path: info.backendPath,
    headers: sig === undefined ? headers : headers.filter(([n, v]) => !(n === 'Grip-Sig' && v === sig)),
    body,
  };
  const relay = new ZhttpRelay(fwd, info, target, backendRequest);
  const mode = target.type === 'zhttpreq' ? 'req' : 'stream';
  const call = client.request(mode, target.zhttpSpec ?? '', {
    method: info.method,
    uri,
    headers,
    body,
    peerAddress: info.clientAddress,
    ignorePolicies: !target.untrusted,
    trustConnectHost: target.trustConnectHost,
    ignoreTlsErrors: target.insecure,
  }, relay);
  relay.call = call;
  info.abort = () => call.cancel();
  if (info.clientGone) call.cancel();
}

const enum Mode { Waiting, Relaying, Collecting, Streaming, Done }

/** Turns zhttp response callbacks into the proxy's relay / GRIP hand-off / 502 paths. */
class ZhttpRelay {
  call: ZhttpCall | undefined;
  private mode = Mode.Waiting;
  private code = 0;
  private reason = '';
  private pairs: Array<[string, string]> = [];
  private chunks: Buffer[] = [];
  private size = 0;
  private rest: PassThrough | undefined;

  constructor(
    private readonly fwd: Forwarder,
    private readonly info: RequestInfo,
    private readonly target: Target,
    private readonly backendRequest: BackendRequest,
  ) {}

  onHead(code: number, reason: string, headers: Array<[string, string]>): void {
    const info = this.info;
    if (info.clientGone) {
      this.mode = Mode.Done;
      this.call?.cancel();
      return;
    }
    const raw: string[] = [];
    for (const [n, v] of headers) raw.push(n, v);
    const filtered = filterResponseHeaders(raw);
    this.code = code;
    this.reason = reason;
    if (info.gripMode && filtered.maybeGrip) {
      const pairs = toPairs(filtered.flat);
      if (isGripResponse(pairs)) {
        this.pairs = pairs;
        const hold = getHeader(filtered.flat, 'grip-hold');
        const ct = getHeader(filtered.flat, 'content-type') ?? '';
        if (hold !== undefined && hold.trim() === 'stream' && !ct.toLowerCase().startsWith(GRIP_INSTRUCT_TYPE)) {
          this.mode = Mode.Streaming;
          const rest = new PassThrough();
          this.rest = rest;
          this.fwd.handOff(info, this.target, this.backendRequest, code, reason, pairs, EMPTY, rest);
          return;
        }
        this.mode = Mode.Collecting;
        return;
      }
    }
    this.mode = Mode.Relaying;
    this.head = filtered.flat;
    // A whole answer (one packet: head, body and end in this same call) goes out with a
    // Content-Length, as Pushpin sends it; otherwise the head follows at the end of this turn.
    queueMicrotask(() => {
      if (this.mode === Mode.Relaying && this.head !== undefined) this.writeHead(undefined);
    });
  }

  /** Head of a relayed answer not written yet. */
  private head: string[] | undefined;
  /** Body that arrived before the head was written. */
  private early: Buffer[] = [];

  /** Writes the relayed head (with Content-Length when `length` is known) and any early body; false on failure. */
  private writeHead(length: number | undefined): boolean {
    const info = this.info;
    const flat = this.head!;
    this.head = undefined;
    try {
      info.res.sendDate = false;
      if (length !== undefined && this.code >= 200 && this.code !== 204 && this.code !== 304 && !flat.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'content-length')) flat.push('Content-Length', String(length));
      info.res.writeHead(this.code, this.reason, flat);
    } catch (err) {
      this.mode = Mode.Done;
      this.early = [];
      this.call?.cancel();
      this.fwd.fail(info, `Error: invalid response from ${targetName(this.target)}: ${(err as Error).message}`, targetName(this.target));
      return false;
    }
    const early = this.early;
    this.early = [];
    for (const c of early) this.relayChunk(c);
    return true;
  }

  private relayChunk(chunk: Buffer): void {
    const res = this.info.res;
    // Credits go back once the client's socket took the bytes: the handler can't outrun a slow client.
    if (res.write(chunk)) this.call?.consumed(chunk.length);
    else res.once('drain', () => this.call?.consumed(chunk.length));
  }

  onBody(chunk: Buffer): void {
    switch (this.mode) {
      case Mode.Relaying:
        if (this.head !== undefined) this.early.push(chunk);
        else this.relayChunk(chunk);
        return;
      case Mode.Collecting:
        this.size += chunk.length;
        if (this.size > MAX_GRIP_RESPONSE_BODY) {
          this.mode = Mode.Done;
          this.chunks = [];
          this.call?.cancel();
          this.fwd.fail(this.info, textInstructTooLarge(targetName(this.target)), targetName(this.target));
          return;
        }
        this.chunks.push(chunk);
        this.call?.consumed(chunk.length);
        return;
      case Mode.Streaming: {
        const rest = this.rest!;
        if (rest.write(chunk)) this.call?.consumed(chunk.length);
        else rest.once('drain', () => this.call?.consumed(chunk.length));
        return;
      }
      default:
        return;
    }
  }

  onEnd(): void {
    const info = this.info;
    const mode = this.mode;
    this.mode = Mode.Done;
    switch (mode) {
      case Mode.Relaying:
        if (this.head !== undefined) {
          let n = 0;
          for (const c of this.early) n += c.length;
          if (!this.writeHead(n)) return;
        }
        info.res.end();
        this.fwd.log(info.method, info.clientPath, this.code, info.route, targetName(this.target), info.startMs);
        return;
      case Mode.Collecting: {
        const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        this.fwd.handOff(info, this.target, this.backendRequest, this.code, this.reason, this.pairs, body, undefined);
        return;
      }
      case Mode.Streaming:
        this.rest!.end();
        return;
      default:
        return;
    }
  }

  onError(err: ZhttpCallError): void {
    const mode = this.mode;
    this.mode = Mode.Done;
    const info = this.info;
    const name = targetName(this.target);
    if (mode === Mode.Done || info.clientGone) return;
    if (mode === Mode.Streaming) {
      this.rest!.destroy(err);
      return;
    }
    this.fwd.ctx.logger.warn({ target: name, condition: err.condition, err: err.message }, 'proxy: zhttp target failed');
    const detail = err.condition === 'timeout' ? `Error: ${name} did not answer in time.` : `Error: ${err.message}`;
    this.fwd.fail(info, detail, name);
  }
}

/**
 * Sends a stored request (a retry after a hint, recover or refresh) to a zhttp/zhttpreq
 * target and reads the whole answer, up to `maxBytes` of body. `sig` is the Grip-Sig to
 * send (replacing any in `req.headers`). Rejects with a message naming the target on a
 * timeout, an error packet, a bad answer or an oversized body.
 */
export function requestZhttpWhole(
  client: ZhttpClient, target: Target, req: BackendRequest, sig: string | undefined, maxBytes: number,
): Promise<BackendResponse> {
  const name = targetName(target);
  const headers: Array<[string, string]> = [];
  let host = 'localhost';
  for (const [n, v] of req.headers) {
    const lc = n.toLowerCase();
    if (lc === 'grip-sig' || lc === 'content-length') continue;
    if (lc === 'host') host = v;
    headers.push([n, v]);
  }
  if (target.hostHeader !== undefined) {
    host = target.hostHeader;
    for (const h of headers) if (h[0].toLowerCase() === 'host') h[1] = host;
  }
  if (sig !== undefined) headers.push(['Grip-Sig', sig]);
  const uri = `${target.ssl ? 'https' : 'http'}://${host}${req.path.startsWith('/') ? '' : '/'}${req.path}`;
  return new Promise<BackendResponse>((resolve, reject) => {
    let code = 0;
    let reason = '';
    let pairs: Array<[string, string]> = [];
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const call = client.request(target.type === 'zhttpreq' ? 'req' : 'stream', target.zhttpSpec ?? '', {
      method: req.method, uri, headers, body: req.body,
      ignorePolicies: !target.untrusted, trustConnectHost: target.trustConnectHost, ignoreTlsErrors: target.insecure,
    }, {
      onHead(c, r, hs) {
        code = c;
        reason = r;
        const raw: string[] = [];
        for (const [n, v] of hs) raw.push(n, v);
        pairs = toPairs(filterResponseHeaders(raw).flat);
      },
      onBody(chunk) {
        if (done) return;
        size += chunk.length;
        if (size > maxBytes) {
          done = true;
          call.cancel();
          reject(new Error(`response from ${name} exceeds ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
        call.consumed(chunk.length);
      },
      onEnd() {
        if (done) return;
        done = true;
        resolve({ status: code, reason, headers: pairs, body: Buffer.concat(chunks) });
      },
      onError(err) {
        if (done) return;
        done = true;
        reject(new Error(`request to ${name} failed: ${err.condition}: ${err.message}`));
      },
    });
  });
}
