/**
 * Publish items: the HTTP API body `{"items": [...]}` and single items from JSON or
 * tnetstring input (ZeroMQ PULL/SUB) become {@link PublishItem}s. Pure. Accepted forms,
 * defaults and error texts follow Pushpin's handler.
 */
import { PublishError } from './errors.js';
import { getAllHeaders } from '../grip/header-params.js';
import { isGripHeaderName } from '../grip/headers.js';
import { reasonForStatus } from '../grip/status-reasons.js';
import type {
  HttpResponseFormat,
  HttpStreamFormat,
  PublishItem,
  WsMessageFormat,
} from '../grip/types.js';
import {
  asBytes,
  asString,
  decodeBase64,
  getInt,
  getList,
  getObject,
  getString,
  isEmptyObject,
  isKeyedObject,
  objGet,
  objHas,
  readHeaderList,
  readMeta,
  type KeyedObject,
} from '../grip/values.js';

export { PublishError } from './errors.js';

/**
 * Most items accepted in one publish request. Protects the delivery path from one request
 * fanning out unboundedly. Pushpin has no item limit (only push_in_http_max_body_size);
 * gripd picks a generous one and answers 400 beyond it.
 */
export const MAX_ITEMS_PER_PUBLISH = 1000;
/**
 * Longest channel name, in UTF-8 bytes. Protects the channel index and ZeroMQ topics
 * from huge keys (Pushpin has no limit).
 */
export const MAX_CHANNEL_NAME_BYTES = 1024;
/** Most content filters per format (as for Grip-Channel filters). */
export const MAX_CONTENT_FILTERS = 5;

/**
 * Longest `connection-id` accepted in a per-connection item, in UTF-8 bytes. gripd's ids
 * are 36-byte UUIDs; the cap only keeps hostile input from costing map lookups on huge keys.
 */
export const MAX_CONNECTION_ID_BYTES = 256;

/** Where an item came from: JSON (strings are text; *-bin fields are base64) or tnetstring (strings are bytes). */
export type PublishInput = 'json' | 'tnetstring';

export interface PublishItemOptions {
  /** Channel from outside the item (the ZeroMQ SUB topic); when non-empty it wins over the item's. */
  channel?: string;
  /** Input encoding; default 'json'. */
  input?: PublishInput;
  /**
   * gripd extension: accept items that carry `connection-id` instead of `channel` (see
   * {@link parsePublishItem}). Default false: such items fail as in Pushpin (no channel).
   */
  connectionIds?: boolean;
}

/** Options of {@link parsePublishBody}. */
export interface PublishBodyOptions {
  /** Accept gripd per-connection items (`connection-id`); default false. */
  connectionIds?: boolean;
}

const ITEM = 'publish item object';

/**
 * Parses the body of `POST /publish/`: a JSON object with an `items` list. The Content-Type
 * is ignored, as Pushpin does. A single bad item rejects the whole batch. Throws
 * {@link PublishError} with Pushpin's texts: "Body is not valid JSON.", "Invalid format.",
 * "Invalid format: object does not contain 'items'", "Invalid format: object contains
 * 'items' with wrong type", "Invalid format: <item problem>".
 */
export function parsePublishBody(body: Buffer, _contentType?: string, opts: PublishBodyOptions = {}): PublishItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    doc = undefined;
  }
  if (doc === undefined || doc === null || typeof doc !== 'object') {
    throw new PublishError('Body is not valid JSON.', 'body is not valid JSON');
  }
  if (!isKeyedObject(doc)) throw new PublishError('Invalid format.', 'not an object');
  if (!objHas(doc, 'items')) {
    throw topError("object does not contain 'items'");
  }
  const items = objGet(doc, 'items');
  if (!Array.isArray(items)) throw topError("object contains 'items' with wrong type");
  if (items.length > MAX_ITEMS_PER_PUBLISH) {
    throw topError(`object contains 'items' with too many elements (at most ${MAX_ITEMS_PER_PUBLISH})`);
  }
  const out: PublishItem[] = [];
  const itemOpts: PublishItemOptions = opts.connectionIds === true ? { connectionIds: true } : {};
  for (let i = 0; i < items.length; i++) out.push(parsePublishItem(items[i], i, itemOpts));
  return out;
}

function topError(detail: string): PublishError {
  return new PublishError(`Invalid format: ${detail}`, detail, undefined, 'items');
}

/**
 * Parses one publish item, decoded from JSON or from a tnetstring (strings as
 * Buffers/Uint8Arrays, objects as plain objects or Maps). Reads `channel` (required unless
 * `opts.channel`), `id`, `prev-id`, `formats` (or the legacy form with formats at the top
 * level), `meta`, `size` and `no-seq`. Formats: `http-response` (code default 200, reason
 * default for the code, headers as object or pairs, body | body-bin | body-patch, action
 * send/hint), `http-stream` (content | content-bin, action send/hint/close), `ws-message`
 * (content | content-bin, type, action send/close with code and reason/refresh). An action
 * the format does nothing with (close/refresh on http-response, refresh on http-stream,
 * hint on ws-message) is accepted and that format dropped, as it is a no-op in Pushpin.
 * `index` is the item's position, reported on errors. Throws {@link PublishError}.
 *
 * With `opts.connectionIds`, an item may instead name one WebSocket connection (gripd
 * extension): `connection-id` (non-empty, at most MAX_CONNECTION_ID_BYTES, no control
 * characters), no `channel`, no `prev-id`, and exactly one format, `ws-message` (send,
 * close with a close code a server may send, or refresh). The result has `channel` ''
 * and `connectionId` set.
 */
export function parsePublishItem(value: unknown, index: number, opts: PublishItemOptions = {}): PublishItem {
  const input = opts.input ?? 'json';
  let field: string | undefined;
  const fail: (detail: string) => never = (detail) => {
    const m = /'([^']+)'/.exec(detail);
    throw new PublishError(`Invalid format: ${detail}`, detail, index, field ?? m?.[1]);
  };

  if (!isKeyedObject(value)) fail(`${ITEM} is not an object`);
  const v = value as KeyedObject;

  if (opts.connectionIds === true && objHas(v, 'connection-id') && !(opts.channel !== undefined && opts.channel !== '')) {
    return parseConnectionItem(v, opts.input ?? 'json', fail, (f) => { field = f; });
  }

  let channel: string;
  if (opts.channel !== undefined && opts.channel !== '') channel = opts.channel;
  else channel = getString(v, ITEM, 'channel', true, fail)!;
  checkChannel(channel, fail);

  const item: PublishItem = { channel, noSeq: false, meta: {}, formats: {} };
  const id = getString(v, ITEM, 'id', false, fail);
  if (id !== undefined) item.id = id;
  const prevId = getString(v, ITEM, 'prev-id', false, fail);
  if (prevId !== undefined) item.prevId = prevId;

  let formats = getObject(v, ITEM, 'formats', fail);
  if (formats === undefined) {
    const legacy: Record<string, unknown> = {};
    for (const k of ['http-response', 'http-stream', 'ws-message']) {
      if (objHas(v, k)) legacy[k] = objGet(v, k);
    }
    formats = legacy;
  }
  if (isEmptyObject(formats)) fail('no formats specified');

  if (objHas(formats, 'http-response')) {
    field = 'http-response';
    const f = parseHttpResponse(objGet(formats, 'http-response'), input, fail);
    if (f !== undefined) item.formats.httpResponse = f;
  }
  if (objHas(formats, 'http-stream')) {
    field = 'http-stream';
    const f = parseHttpStream(objGet(formats, 'http-stream'), input, fail);
    if (f !== undefined) item.formats.httpStream = f;
  }
  if (objHas(formats, 'ws-message')) {
    field = 'ws-message';
    const f = parseWsMessage(objGet(formats, 'ws-message'), input, fail);
    if (f !== undefined) item.formats.wsMessage = f;
  }
  field = undefined;

  const meta = getObject(v, ITEM, 'meta', fail);
  if (meta !== undefined) readMeta(meta, fail, item.meta);

  const size = getInt(v, ITEM, 'size', fail);
  if (size !== undefined) {
    if (size < 0) fail(`${ITEM} contains 'size' with invalid value`);
    item.size = size;
  }

  if (objHas(v, 'no-seq')) {
    const ns = objGet(v, 'no-seq');
    if (typeof ns !== 'boolean') fail(`${ITEM} contains 'no-seq' with wrong type`);
    item.noSeq = ns;
  }
  return item;
}

function checkChannel(channel: string, fail: (d: string) => never): void {
  if (Buffer.byteLength(channel, 'utf8') > MAX_CHANNEL_NAME_BYTES) {
    fail(`${ITEM} contains 'channel' with invalid value (longer than ${MAX_CHANNEL_NAME_BYTES} bytes)`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(channel)) fail(`${ITEM} contains 'channel' with invalid value (control character)`);
}

type Action = 'send' | 'hint' | 'close' | 'refresh';

function readAction(f: KeyedObject, pn: string, fail: (d: string) => never): Action {
  const a = getString(f, pn, 'action', false, fail);
  if (a === undefined || a === 'send') return 'send';
  if (a === 'hint' || a === 'close' || a === 'refresh') return a;
  return fail(`${pn} contains 'action' with unknown value`);
}

function readContentFilters(f: KeyedObject, pn: string, fail: (d: string) => never): string[] | undefined {
  if (!objHas(f, 'content-filters')) return undefined;
  const list = objGet(f, 'content-filters');
  if (!Array.isArray(list)) fail(`${pn} contains 'content-filters' with wrong type`);
  const out: string[] = [];
  for (const e of list as unknown[]) {
    const s = asString(e);
    if (s === undefined) fail('content-filters contains element with wrong type');
    out.push(s);
  }
  if (out.length > MAX_CONTENT_FILTERS) fail(`${pn} contains 'content-filters' with too many elements`);
  return out;
}

function readBase64(f: KeyedObject, pn: string, key: string, fail: (d: string) => never): Buffer {
  const text = getString(f, pn, key, false, fail)!;
  const data = decodeBase64(text);
  if (data === undefined) fail(`${pn} contains '${key}' with invalid value`);
  return data;
}

function parseHttpResponse(value: unknown, input: PublishInput, fail: (d: string) => never): HttpResponseFormat | undefined {
  const pn = "'http-response'";
  if (!isKeyedObject(value)) fail(`${pn} is not an object`);
  const f = value as KeyedObject;
  const action = readAction(f, pn, fail);
  if (action === 'hint') return { action: 'hint' };
  if (action !== 'send') return undefined;

  const out: HttpResponseFormat = { action: 'send' };
  const code = getInt(f, pn, 'code', fail) ?? 200;
  if (code < 0 || code > 999) fail(`${pn} contains 'code' with invalid value`);
  out.code = code;
  const reason = getString(f, pn, 'reason', false, fail);
  out.reason = reason !== undefined && reason !== '' ? reason : reasonForStatus(code);

  if (objHas(f, 'headers')) {
    const all = readHeaderList(objGet(f, 'headers'), pn, fail);
    const expose = getAllHeaders(all, 'Grip-Expose-Headers').filter((h) => h !== '');
    if (expose.length > 0) out.exposeHeaders = expose;
    out.headers = all.filter(([n]) => !isGripHeaderName(n));
  }
  const filters = readContentFilters(f, pn, fail);
  if (filters !== undefined) out.contentFilters = filters;

  if (input === 'json' && objHas(f, 'body-bin')) {
    out.body = readBase64(f, pn, 'body-bin', fail);
  } else if (objHas(f, 'body')) {
    const body = asBytes(objGet(f, 'body'));
    if (body === undefined) fail(`${pn} contains 'body' with wrong type`);
    out.body = body;
  } else if (objHas(f, 'body-patch')) {
    out.bodyPatch = getList(f, pn, 'body-patch', false, fail)!;
  } else if (input === 'json') {
    fail(`${pn} does not contain 'body', 'body-bin', or 'body-patch'`);
  } else {
    fail(`${pn} does not contain 'body' or 'body-patch'`);
  }
  return out;
}

function parseHttpStream(value: unknown, input: PublishInput, fail: (d: string) => never): HttpStreamFormat | undefined {
  const pn = "'http-stream'";
  if (!isKeyedObject(value)) fail(`${pn} is not an object`);
  const f = value as KeyedObject;
  const action = readAction(f, pn, fail);
  if (action === 'hint' || action === 'close') return { action };
  if (action !== 'send') return undefined;

  const out: HttpStreamFormat = { action: 'send' };
  const filters = readContentFilters(f, pn, fail);
  if (filters !== undefined) out.contentFilters = filters;
  if (input === 'json' && objHas(f, 'content-bin')) {
    out.content = readBase64(f, pn, 'content-bin', fail);
  } else if (objHas(f, 'content')) {
    const c = asBytes(objGet(f, 'content'));
    if (c === undefined) fail(`${pn} contains 'content' with wrong type`);
    out.content = c;
  } else if (input === 'json') {
    fail(`${pn} does not contain 'content' or 'content-bin'`);
  } else {
    fail(`${pn} does not contain 'content'`);
  }
  return out;
}

function parseWsMessage(value: unknown, input: PublishInput, fail: (d: string) => never): WsMessageFormat | undefined {
  const pn = "'ws-message'";
  if (!isKeyedObject(value)) fail(`${pn} is not an object`);
  const f = value as KeyedObject;
  const action = readAction(f, pn, fail);
  if (action === 'hint') return undefined;
  if (action === 'refresh') return { action: 'refresh', type: 'text' };
  if (action === 'close') {
    const out: WsMessageFormat = { action: 'close', type: 'text' };
    const code = getInt(f, pn, 'code', fail);
    if (code !== undefined) {
      if (code < 0) fail(`${pn} contains 'code' with invalid value`);
      out.code = code;
    }
    const reason = getString(f, pn, 'reason', false, fail);
    if (reason !== undefined && reason !== '') out.reason = reason;
    return out;
  }

  let type: WsMessageFormat['type'] | undefined;
  const typeText = getString(f, pn, 'type', false, fail);
  if (typeText !== undefined) {
    if (typeText === 'text' || typeText === 'binary' || typeText === 'ping' || typeText === 'pong') type = typeText;
    else fail(`${pn} contains 'type' with unknown value`);
  }
  const filters = readContentFilters(f, pn, fail);
  let content: Buffer | undefined;
  if (objHas(f, 'content-bin')) {
    const raw = objGet(f, 'content-bin');
    if (input === 'json') {
      if (typeof raw !== 'string') fail(`${pn} contains 'content-bin' with wrong type`);
      content = readBase64(f, pn, 'content-bin', fail);
    } else {
      if (!(raw instanceof Uint8Array)) fail(`${pn} contains 'content-bin' with wrong type`);
      content = asBytes(raw)!;
    }
    type ??= 'binary';
  } else if (objHas(f, 'content')) {
    content = asBytes(objGet(f, 'content'));
    if (content === undefined) fail(`${pn} contains 'content' with wrong type`);
    type ??= 'text';
  } else if (type === undefined || type === 'text' || type === 'binary') {
    fail(`${pn} does not contain 'content' or 'content-bin'`);
  }
  const out: WsMessageFormat = { action: 'send', type: type! };
  if (content !== undefined) out.content = content;
  if (filters !== undefined) out.contentFilters = filters;
  return out;
}

/**
 * Close codes a server may put in a close frame (RFC 6455 7.4): 1000-1003, 1007-1014 and
 * 3000-4999. 1004-1006 and 1015 are reserved for local use and never sent.
 */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** A gripd per-connection item (`connection-id` instead of `channel`); see parsePublishItem. */
function parseConnectionItem(v: KeyedObject, input: PublishInput, fail: (d: string) => never, setField: (f: string | undefined) => void): PublishItem {
  if (objHas(v, 'channel')) fail(`${ITEM} contains both 'channel' and 'connection-id' (give one)`);
  if (objHas(v, 'prev-id')) fail(`${ITEM} contains 'prev-id' with 'connection-id' (sequencing applies to channels only)`);
  const cid = getString(v, ITEM, 'connection-id', true, fail)!;
  if (cid === '') fail(`${ITEM} contains 'connection-id' with invalid value (empty)`);
  if (Buffer.byteLength(cid, 'utf8') > MAX_CONNECTION_ID_BYTES) {
    fail(`${ITEM} contains 'connection-id' with invalid value (longer than ${MAX_CONNECTION_ID_BYTES} bytes)`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(cid)) fail(`${ITEM} contains 'connection-id' with invalid value (control character)`);

  let formats = getObject(v, ITEM, 'formats', fail);
  if (formats === undefined) {
    const legacy: Record<string, unknown> = {};
    for (const k of ['http-response', 'http-stream', 'ws-message']) {
      if (objHas(v, k)) legacy[k] = objGet(v, k);
    }
    formats = legacy;
  }
  if (objHas(formats, 'http-response') || objHas(formats, 'http-stream')) {
    fail(`${ITEM} with 'connection-id' accepts only the 'ws-message' format`);
  }
  if (!objHas(formats, 'ws-message')) fail(`${ITEM} with 'connection-id' does not contain 'ws-message'`);
  setField('ws-message');
  const f = parseWsMessage(objGet(formats, 'ws-message'), input, fail);
  if (f === undefined) fail("'ws-message' contains 'action' with a value that does nothing for one connection");
  if (f.action === 'close' && f.code !== undefined && !isSendableCloseCode(f.code)) {
    fail("'ws-message' contains 'code' with invalid value (not a close code a server may send)");
  }
  setField(undefined);

  const item: PublishItem = { channel: '', connectionId: cid, noSeq: true, meta: {}, formats: { wsMessage: f } };
  const id = getString(v, ITEM, 'id', false, fail);
  if (id !== undefined) item.id = id;
  const meta = getObject(v, ITEM, 'meta', fail);
  if (meta !== undefined) readMeta(meta, fail, item.meta);
  return item;
}
