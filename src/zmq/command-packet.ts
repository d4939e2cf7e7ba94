/**
 * Pushpin's command (zrpc) packets, pure. A request is one tnetstring dict
 * `{ from?, id?, method, args? }` (byte strings; args a dict); a response is
 * `{ id?, success, value? , condition? }`. Encoder and decoder for both directions, so
 * tests and tools can play client as well as server.
 */
import type { Config } from '../config/types.js';
import { decodeTnetstring, decodeTnetstringPrefix, encodeTnetstring, TnetstringError, type TnetDict, type TnetEncodable, type TnetValue } from './tnetstring.js';

/** A decoded command request. `id` stays bytes: it is echoed back verbatim. */
export interface CommandRequest {
  from?: Buffer;
  id?: Buffer;
  method: string;
  /** Arguments; an empty dict when the request had none. */
  args: TnetDict;
}

/** A command response; `value` is present on success (null for "no value"). */
export type CommandResponse =
  | { id?: Buffer; success: true; value: TnetEncodable }
  | { id?: Buffer; success: false; condition: string; value?: TnetEncodable };

/** A frame that is not a valid command request (dropped without reply, as Pushpin does). */
export class CommandPacketError extends Error {
  override name = 'CommandPacketError';
}

const UTF8 = new TextDecoder('utf-8');

function isDict(v: TnetValue | undefined): v is TnetDict {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** Decodes a request frame; throws CommandPacketError naming the bad field. */
export function decodeCommandRequest(frame: Buffer): CommandRequest {
  let v: TnetValue;
  try {
    // Bytes after the value are ignored, as Pushpin does.
    v = decodeTnetstringPrefix(frame).value;
  } catch (e) {
    if (e instanceof TnetstringError) throw new CommandPacketError(`tnetstring parse failed: ${e.message.replace(/^tnetstring: /, '')}`);
    throw e;
  }
  if (!isDict(v)) throw new CommandPacketError('request is not a dict');
  const req: CommandRequest = { method: '', args: {} };
  if (Object.hasOwn(v, 'from')) {
    if (!Buffer.isBuffer(v['from'])) throw new CommandPacketError("'from' is not a byte string");
    req.from = v['from'];
  }
  if (Object.hasOwn(v, 'id')) {
    if (!Buffer.isBuffer(v['id'])) throw new CommandPacketError("'id' is not a byte string");
    req.id = v['id'];
  }
  const method = v['method'];
  if (!Object.hasOwn(v, 'method') || !Buffer.isBuffer(method)) throw new CommandPacketError("'method' missing or not a byte string");
  req.method = UTF8.decode(method);
  if (Object.hasOwn(v, 'args')) {
    const args = v['args'];
    if (!isDict(args)) throw new CommandPacketError("'args' is not a dict");
    req.args = args;
  }
  return req;
}

/** Encodes a request (client side; used by tests and tools). */
export function encodeCommandRequest(req: { id?: Uint8Array | string; from?: Uint8Array | string; method: string; args?: Record<string, TnetEncodable> }): Buffer {
  const out: Record<string, TnetEncodable> = {};
  if (req.from !== undefined && req.from.length > 0) out['from'] = req.from;
  if (req.id !== undefined && req.id.length > 0) out['id'] = req.id;
  out['method'] = req.method;
  if (req.args !== undefined && Object.keys(req.args).length > 0) out['args'] = req.args;
  return encodeTnetstring(out);
}

/** Encodes a response: `id` only when non-empty, `value` always on success (null when none). */
export function encodeCommandResponse(res: CommandResponse): Buffer {
  const out: Record<string, TnetEncodable> = {};
  if (res.id !== undefined && res.id.length > 0) out['id'] = res.id;
  out['success'] = res.success;
  if (res.success) {
    out['value'] = res.value ?? null;
  } else {
    out['condition'] = res.condition;
    if (res.value !== undefined) out['value'] = res.value;
  }
  return encodeTnetstring(out);
}

/** Decodes a response (client side); throws CommandPacketError. */
export function decodeCommandResponse(frame: Buffer): { id?: Buffer; success: boolean; value?: TnetValue; condition?: string } {
  let v: TnetValue;
  try {
    v = decodeTnetstring(frame);
  } catch (e) {
    if (e instanceof TnetstringError) throw new CommandPacketError(`tnetstring parse failed: ${e.message}`);
    throw e;
  }
  if (!isDict(v)) throw new CommandPacketError('response is not a dict');
  const success = v['success'];
  if (typeof success !== 'boolean') throw new CommandPacketError("'success' missing or not a boolean");
  const out: { id?: Buffer; success: boolean; value?: TnetValue; condition?: string } = { success };
  const id = v['id'];
  if (id !== undefined) {
    if (!Buffer.isBuffer(id)) throw new CommandPacketError("'id' is not a byte string");
    out.id = id;
  }
  if (Object.hasOwn(v, 'value')) out.value = v['value'] as TnetValue;
  if (!success) {
    const cond = v['condition'];
    if (!Buffer.isBuffer(cond)) throw new CommandPacketError("'condition' missing or not a byte string");
    out.condition = UTF8.decode(cond);
  } else if (!Object.hasOwn(v, 'value')) {
    throw new CommandPacketError("'value' missing on success");
  }
  return out;
}

/**
 * The `get-zmq-uris` answer Pushpin gives for a config: `command`, `publish-pull`, and
 * `publish-sub` (the first SUB spec, only when gripd binds it rather than connects).
 */
export function zmqUrisFor(config: Config): Record<string, string> {
  const out: Record<string, string> = {};
  const h = config.handler;
  if (h.commandSpec !== '') out['command'] = h.commandSpec;
  if (h.pushInSpec !== '') out['publish-pull'] = h.pushInSpec;
  const firstSub = h.pushInSubSpecs[0];
  if (firstSub !== undefined && !h.pushInSubConnect) out['publish-sub'] = firstSub;
  return out;
}
