/**
 * A long-poll (`Grip-Hold: response`): the client waits until a publish answers it or
 * the timeout sends the backend's hold response. Answered exactly once.
 */
import jsonpatch from 'fast-json-patch';
import type { ServerResponse } from 'node:http';
import type { ChannelSubscription, HttpResponseFormat, PublishItem } from '../grip/types.js';
import type { BackendResponse, GripHandoff } from '../proxy/types.js';
import { applyContentFilters, isDroppedByFilters, hasContentFilter, FilterError } from './filters.js';
import type { Held, HoldHost } from './host.js';
import { gripLastHeaders, resolveLink, withGripLast } from './links.js';
import type { WheelEntry } from './timer-wheel.js';
import { isUnsafeHeader } from './wire.js';
import { reasonForStatus } from '../grip/status-reasons.js';
import { applyCorsHeaders } from '../grip/cors.js';
import { wrapJsonpHeldResponse } from '../grip/jsonp.js';

/** node's flat rawHeaders as pairs. */
export function rawHeaderPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Headers gripd sets itself on a whole response. */
const SKIP_ON_WRITE = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/**
 * Writes a complete response through node's ServerResponse, which keeps the client
 * connection reusable. Headers with CR/LF are dropped (they would split the response).
 * Returns false when the client is gone or the status is unusable.
 */
export function writeWholeResponse(res: ServerResponse, code: number, reason: string, headers: Array<[string, string]>, body: Buffer): boolean {
  if (res.headersSent || res.destroyed || res.writableEnded) return false;
  const flat: string[] = [];
  for (const [n, v] of headers) {
    if (SKIP_ON_WRITE.has(n.toLowerCase()) || isUnsafeHeader(n, v)) continue;
    flat.push(n, v);
  }
  flat.push('Content-Length', String(body.length));
  try {
    res.sendDate = false;
    res.writeHead(code, reason, flat);
  } catch {
    try {
      const text = Buffer.from('Error while proxying to origin.\n');
      res.writeHead(502, 'Bad Gateway', ['Content-Type', 'text/plain', 'Content-Length', String(text.length)]);
      res.end(text);
    } catch {
      res.destroy();
    }
    return false;
  }
  res.end(body);
  return true;
}

/** Sends a plain 502 for a hold that failed (retry or hint broke). */
export function writeBadGateway(res: ServerResponse, detail: string | undefined): void {
  const body = Buffer.from((detail ?? 'Error while proxying to origin.') + '\n');
  writeWholeResponse(res, 502, 'Bad Gateway', [['Content-Type', 'text/plain']], body);
}

/**
 * Relays a backend answer that came back from a retry: GRIP answers start a new hold on
 * the same client, anything else goes out as is.
 */
export function relayBackendAnswer(host: HoldHost, h: GripHandoff, resp: BackendResponse): void {
  let instruct;
  try {
    instruct = host.decode(resp);
  } catch (err) {
    host.logger.warn({ err: (err as Error).message }, 'handler: invalid GRIP instructions in retry response');
    writeBadGateway(h.res, h.route.debug ? (err as Error).message : undefined);
    return;
  }
  if (instruct === null) {
    writeWithCors(host, h, resp.status, resp.reason, resp.headers, resp.body);
    return;
  }
  if (instruct.hold === undefined && instruct.nextLink === undefined) {
    const r = instruct.response;
    writeWithCors(host, h, r.code, r.reason, r.headers, r.body);
    return;
  }
  host.accept({ ...h, instruct, bodyRest: undefined });
}

/**
 * Sends a whole answer that is not held (a GRIP response without a hold, or a retry's
 * plain answer), with the CORS headers on auto cross-origin routes. As Pushpin, such an
 * answer is not JSON-P-wrapped.
 */
export function writeWithCors(
  host: HoldHost, h: GripHandoff, code: number, reason: string, headers: Array<[string, string]>, body: Buffer,
): void {
  const out = host.autoCrossOrigin(h.route) ? applyCorsHeaders(rawHeaderPairs(h.req.rawHeaders), headers) : headers;
  writeWholeResponse(h.res, code, reason, out, body);
}

export class ResponseHold implements Held, WheelEntry {
  readonly mode = 'response' as const;
  /** Channel name with route prefix -> subscription. */
  readonly channels = new Map<string, ChannelSubscription>();
  wheelDeadlineMs = 0;
  wheelSlot = -1;
  private done = false;
  private readonly onClose = (): void => this.finish();

  constructor(private readonly host: HoldHost, readonly h: GripHandoff) {}

  /** Subscription meta (Grip-Set-Meta). */
  get meta(): Record<string, string> {
    return this.h.instruct.meta;
  }

  start(): void {
    const hold = this.h.instruct.hold!;
    const prefix = this.h.route.prefix;
    for (const c of hold.channels.slice(0, this.host.subscriptionMax)) this.channels.set(prefix + c.name, c);
    this.h.res.once('close', this.onClose);
    // A prev-id that no longer matches the channel's last id means the client missed
    // something: ask the backend again at once (with Grip-Last) instead of holding.
    for (const [name, c] of this.channels) {
      const last = this.host.lastIds.get(name);
      if (c.prevId !== undefined && last !== undefined && last !== c.prevId) {
        this.retry();
        return;
      }
    }
    for (const name of this.channels.keys()) this.host.subscribe(this, name);
    this.host.wheel.schedule(this, hold.timeoutS * 1000);
  }

  /** Timeout: the hold response goes out. */
  onTimer(): void {
    const r = this.h.instruct.response;
    this.respond(r.code, r.reason, r.headers, r.body);
  }

  shutdown(): void {
    this.onTimer();
  }

  update(): void {
    this.retry();
  }

  /** A published http-response item for one of our channels. */
  deliver(item: PublishItem, channel: string, f: HttpResponseFormat): void {
    if (this.done) return;
    const sub = this.channels.get(channel);
    if (sub === undefined) return;
    if (sub.filters.length > 0 && isDroppedByFilters(sub.filters, { subscriptionMeta: this.meta, publishMeta: item.meta, channels: new Set(Array.from(this.channels.values(), (c) => c.name)) })) return;
    if (f.action === 'hint') {
      this.retry();
      return;
    }
    const hold = this.h.instruct.response;
    let body = f.body ?? Buffer.alloc(0);
    if (f.bodyPatch !== undefined) body = this.patchBody(f.bodyPatch);
    if (hasContentFilter(sub.filters)) {
      try {
        const prevIds = new Map<string, string>();
        for (const c of this.channels.values()) if (c.prevId !== undefined) prevIds.set(c.name, c.prevId);
        body = applyContentFilters(sub.filters, body, this.meta, prevIds);
      } catch (err) {
        if (err instanceof FilterError && this.h.route.debug) {
          this.fail(`filter error: ${err.message}`);
          return;
        }
        return;
      }
    }
    // Published headers replace same-named hold headers; Grip-* never reach the client.
    const pub = (f.headers ?? []).filter(([n]) => !/^grip-/i.test(n));
    const expose = new Set<string>();
    for (const [n, v] of f.headers ?? []) {
      if (n.toLowerCase() === 'grip-expose-headers') for (const e of v.split(',')) expose.add(e.trim().toLowerCase());
    }
    const names = new Set(pub.map(([n]) => n.toLowerCase()));
    let headers = hold.headers.filter(([n]) => !names.has(n.toLowerCase())).concat(pub);
    if (expose.size > 0) headers = headers.filter(([n]) => !expose.has(n.toLowerCase()));
    this.respond(f.code ?? 200, f.reason ?? reasonFor(f.code ?? 200), headers, body);
  }

  /**
   * Applies a JSON Patch to the hold body as Pushpin does: the body must be a JSON object
   * or array; the result is compact JSON keeping the original's trailing newline. Any
   * failure gives an empty body (logged).
   */
  private patchBody(ops: unknown[]): Buffer {
    const holdBody = this.h.instruct.response.body;
    try {
      const doc: unknown = JSON.parse(holdBody.toString('utf8'));
      if (doc === null || typeof doc !== 'object') throw new Error('hold body is not a JSON object or array');
      const out: unknown = jsonpatch.applyPatch(doc, ops as jsonpatch.Operation[], true, false).newDocument;
      if (out === null || typeof out !== 'object') throw new Error('patched body is not a JSON object or array');
      const text = holdBody.toString('latin1');
      const eol = text.endsWith('\r\n') ? '\r\n' : text.endsWith('\n') ? '\n' : '';
      return Buffer.from(JSON.stringify(out) + eol);
    } catch (err) {
      this.host.logger.debug({ err: (err as Error).message }, 'handler: failed to apply JSON patch');
      return Buffer.alloc(0);
    }
  }

  private respond(code: number, reason: string, headers: Array<[string, string]>, body: Buffer): void {
    if (this.done) return;
    this.finish();
    if (this.host.autoCrossOrigin(this.h.route)) {
      if (this.h.jsonp !== undefined) {
        const j = wrapJsonpHeldResponse(this.h.jsonp.callback, code, reason, headers, body, this.h.jsonp.mode);
        writeWholeResponse(this.h.res, j.status, j.reason, j.headers, j.body);
        return;
      }
      headers = applyCorsHeaders(rawHeaderPairs(this.h.req.rawHeaders), headers);
    }
    writeWholeResponse(this.h.res, code, reason, headers, body);
  }

  private fail(detail: string): void {
    if (this.done) return;
    this.finish();
    writeBadGateway(this.h.res, this.h.route.debug ? detail : undefined);
  }

  /** Leaves every channel and the wheel; posts the gone link once. Idempotent. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.host.wheel.cancel(this);
    this.h.res.off('close', this.onClose);
    for (const name of this.channels.keys()) this.host.unsubscribe(this, name);
    this.host.finished(this);
    postGoneLink(this.host, this.h);
  }

  /** Asks the backend again with the original request (hint, prev-id conflict) and relays its answer. */
  private retry(): void {
    if (this.done) return;
    const last = gripLastHeaders(this.channels.values());
    this.done = true;
    this.host.wheel.cancel(this);
    this.h.res.off('close', this.onClose);
    for (const name of this.channels.keys()) this.host.unsubscribe(this, name);
    this.host.finished(this);
    const req = withGripLast(this.h.backendRequest, last);
    this.host.requester.request(this.h.route, req).then(
      (resp) => {
        if (this.h.res.destroyed) return;
        relayBackendAnswer(this.host, { ...this.h, backendRequest: req }, resp);
      },
      (err: unknown) => {
        this.host.logger.warn({ err: (err as Error).message }, 'handler: retry request failed');
        writeBadGateway(this.h.res, this.h.route.debug ? (err as Error).message : undefined);
      },
    );
  }
}

/** POSTs the session's gone link, once, ignoring the answer. */
export function postGoneLink(host: HoldHost, h: GripHandoff): void {
  const gone = h.instruct.goneLink;
  if (gone === undefined) return;
  let target;
  try {
    target = resolveLink(gone.url, h.backendRequest.path);
  } catch {
    host.logger.warn({ url: gone.url }, 'handler: bad gone link');
    return;
  }
  const req = { method: 'POST', path: target.path, headers: [] as Array<[string, string]>, body: Buffer.alloc(0) };
  host.requester.request(h.route, req, target.url !== undefined ? { url: target.url } : undefined).catch((err: unknown) => {
    host.logger.debug({ err: (err as Error).message }, 'handler: gone link request failed');
  });
}

/** Standard reason phrase for a status code (Pushpin fills one in when a publish omits it). */
export function reasonFor(code: number): string {
  return reasonForStatus(code);
}
