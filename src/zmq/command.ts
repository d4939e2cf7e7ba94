/**
 * The command socket: a ROUTER bound on `command_spec` speaking Pushpin's tnetstring
 * command protocol. A ROUTER (what Pushpin binds) serves both REQ clients and DEALER
 * clients that send an empty delimiter frame: every frame before the first empty frame is
 * routing envelope, echoed on the reply; exactly one frame must follow it.
 */
import * as zmq from 'zeromq';
import type { Config } from '../config/types.js';
import type { PublishItem, WsMessageFormat } from '../grip/types.js';
import type { Logger } from '../log/index.js';
import { isSendableCloseCode, parsePublishItem } from '../publish/item.js';
import { publishErrorDetail } from './publish-error.js';
import {
  CommandPacketError,
  decodeCommandRequest,
  encodeCommandResponse,
  zmqUrisFor,
  type CommandRequest,
  type CommandResponse,
} from './command-packet.js';
import { isClosedError, setupSocket } from './socket-util.js';
import type { TnetEncodable, TnetValue } from './tnetstring.js';
import { WarnLimiter } from './warn-limit.js';

export { zmqUrisFor } from './command-packet.js';

/**
 * What the commands act on (the handler implements it). Methods may return promises;
 * throwing a CommandError answers with its condition, any other error with
 * `internal-error`.
 */
export interface CommandTarget {
  /** Of the given connection ids, the ones that are alive. */
  conncheck(ids: string[]): string[] | Promise<string[]>;
  /** Pushpin's `recover`: treat every session as needing a fresh sequence (after a publisher restart). */
  recover(): void | Promise<void>;
  /** Refresh one WebSocket connection by cid, or every one subscribed to channel. */
  refresh(opts: { cid?: string; channel?: string }): void | Promise<void>;
  /**
   * Deliver already-validated items. When `sendToConnection` is present, the batch may
   * hold gripd per-connection items (`connectionId` set) that the target routes itself.
   */
  publish(items: PublishItem[]): void;
  /**
   * gripd extension behind the `gripd-send` and `gripd-close` methods: hands a validated
   * ws-message to the one connection with this Connection-Id; false when no such
   * connection is live. When absent, those methods answer `method-not-found`.
   */
  sendToConnection?(cid: string, f: WsMessageFormat): boolean | Promise<boolean>;
  /** `get-zmq-uris` answer; when absent, derived from the config with zmqUrisFor(). */
  zmqUris?(): Record<string, string>;
}

/** Thrown by a CommandTarget to answer with a specific Pushpin condition (e.g. `item-not-found`). */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly condition: string,
    message?: string,
  ) {
    super(message ?? condition);
  }
}

export interface CommandSocketOptions {
  config: Config;
  target: CommandTarget;
  logger: Logger;
}

export interface CommandSocket {
  /** Stops reading, waits for in-flight commands to be answered, closes the socket. */
  close(): Promise<void>;
}

/** Largest request message, in bytes; ZeroMQ disconnects a peer that sends more. */
export const MAX_COMMAND_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Commands executing at once; reading pauses beyond this (Pushpin's PENDING_MAX idea). */
export const MAX_PENDING_COMMANDS = 100;
/** How long close() waits for in-flight commands to be answered, in milliseconds. */
export const CLOSE_GRACE_MS = 2000;
/** Routing-envelope frames accepted before the delimiter; guards against frame floods. */
export const MAX_ENVELOPE_FRAMES = 16;

/** gripd extension method: one ws-message to one connection by Connection-Id. */
export const METHOD_CONN_SEND = 'gripd-send';
/** gripd extension method: close one connection by Connection-Id. */
export const METHOD_CONN_CLOSE = 'gripd-close';
/** Longest close reason accepted by `gripd-close`, in bytes (a close frame holds 123). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Executes one decoded request against `target` (no I/O of its own). Validates args the
 * way Pushpin does: wrong or missing args answer `bad-request`, unknown methods
 * `method-not-found`. The gripd methods `gripd-send` ({cid, ws-message}) and
 * `gripd-close` ({cid, code?, reason?}) answer success, `item-not-found` (no live
 * connection with that id) or `bad-request` with a text naming the field.
 */
export async function executeCommand(req: CommandRequest, target: CommandTarget, config: Config, logger: Logger): Promise<CommandResponse> {
  const id = req.id;
  const ok = (value: TnetEncodable): CommandResponse => ({ id, success: true, value });
  const fail = (condition: string, value?: TnetEncodable): CommandResponse =>
    value === undefined ? { id, success: false, condition } : { id, success: false, condition, value };
  const args = req.args;
  try {
    switch (req.method) {
      case 'conncheck': {
        const ids = args['ids'];
        if (!Array.isArray(ids)) return fail('bad-request');
        const cids: string[] = [];
        for (const v of ids) {
          if (!Buffer.isBuffer(v)) return fail('bad-request');
          cids.push(v.toString('utf8'));
        }
        const alive = await target.conncheck(cids);
        return ok(alive.map((c) => Buffer.from(c, 'utf8')));
      }
      case 'get-zmq-uris':
        return ok(target.zmqUris ? target.zmqUris() : zmqUrisFor(config));
      case 'recover':
        await target.recover();
        return ok(null);
      case 'refresh': {
        if (Object.hasOwn(args, 'cid')) {
          const cid = args['cid'];
          if (!Buffer.isBuffer(cid)) return fail('bad-request');
          await target.refresh({ cid: cid.toString('utf8') });
        } else if (Object.hasOwn(args, 'channel')) {
          const channel = args['channel'];
          if (!Buffer.isBuffer(channel)) return fail('bad-request');
          await target.refresh({ channel: channel.toString('utf8') });
        } else {
          return fail('bad-request');
        }
        return ok(null);
      }
      case METHOD_CONN_SEND:
      case METHOD_CONN_CLOSE: {
        if (target.sendToConnection === undefined) return fail('method-not-found');
        const parsed = req.method === METHOD_CONN_SEND ? connSendArgs(args) : connCloseArgs(args);
        if (typeof parsed === 'string') return fail('bad-request', parsed);
        const found = await target.sendToConnection(parsed.cid, parsed.format);
        return found ? ok(null) : fail('item-not-found');
      }
      case 'publish': {
        if (!Object.hasOwn(args, 'items')) return fail('bad-request', "Invalid format: object does not contain 'items'");
        const vitems = args['items'];
        if (!Array.isArray(vitems)) return fail('bad-request', "Invalid format: object contains 'items' with wrong type");
        const items: PublishItem[] = [];
        for (let i = 0; i < vitems.length; i++) {
          try {
            items.push(parsePublishItem(vitems[i], i, { input: 'tnetstring', connectionIds: target.sendToConnection !== undefined }));
          } catch (e) {
            // PublishError.message already carries the prefix; build it once from the detail.
            return fail('bad-request', `Invalid format: ${publishErrorDetail(e)}`);
          }
        }
        target.publish(items);
        return ok(null);
      }
      default:
        return fail('method-not-found');
    }
  } catch (e) {
    if (e instanceof CommandError) return fail(e.condition);
    logger.error({ err: e, method: req.method }, 'command failed');
    return fail('internal-error');
  }
}

type ConnArgs = { cid: string; format: WsMessageFormat };

/** A publish-item error text, with the item's `connection-id` named as the `cid` arg. */
function cidDetail(e: unknown): string {
  return publishErrorDetail(e).replace("publish item object contains 'connection-id'", "args contain 'cid'");
}

/** `gripd-send` args: validated as a per-connection publish item; a string is the bad-request text. */
function connSendArgs(args: Record<string, TnetValue>): ConnArgs | string {
  if (!Object.hasOwn(args, 'cid')) return "Invalid format: args do not contain 'cid'";
  if (!Object.hasOwn(args, 'ws-message')) return "Invalid format: args do not contain 'ws-message'";
  try {
    const item = parsePublishItem({ 'connection-id': args['cid'], formats: { 'ws-message': args['ws-message'] } }, 0, { input: 'tnetstring', connectionIds: true });
    return { cid: item.connectionId!, format: item.formats.wsMessage! };
  } catch (e) {
    return `Invalid format: ${cidDetail(e)}`;
  }
}

/** `gripd-close` args: cid, optional code (a close code a server may send) and reason. */
function connCloseArgs(args: Record<string, TnetValue>): ConnArgs | string {
  const format: WsMessageFormat = { action: 'close', type: 'text' };
  if (Object.hasOwn(args, 'code')) {
    const c = args['code'];
    const code = typeof c === 'bigint' ? Number(c) : c;
    if (typeof code !== 'number' || !Number.isInteger(code)) return "Invalid format: args contain 'code' with wrong type";
    if (!isSendableCloseCode(code)) return "Invalid format: args contain 'code' with invalid value (not a close code a server may send)";
    format.code = code;
  }
  if (Object.hasOwn(args, 'reason')) {
    const r = args['reason'];
    if (!Buffer.isBuffer(r)) return "Invalid format: args contain 'reason' with wrong type";
    if (r.length > MAX_CLOSE_REASON_BYTES) return `Invalid format: args contain 'reason' with invalid value (longer than ${MAX_CLOSE_REASON_BYTES} bytes)`;
    if (format.code === undefined && r.length > 0) return "Invalid format: args contain 'reason' without 'code'";
    if (r.length > 0) format.reason = r.toString('utf8');
  }
  if (!Object.hasOwn(args, 'cid')) return "Invalid format: args do not contain 'cid'";
  // Reuse the publish-item checks for the id (type, length, control characters).
  try {
    const item = parsePublishItem({ 'connection-id': args['cid'], formats: { 'ws-message': { action: Buffer.from('close') } } }, 0, { input: 'tnetstring', connectionIds: true });
    return { cid: item.connectionId!, format };
  } catch (e) {
    return `Invalid format: ${cidDetail(e)}`;
  }
}

/**
 * Binds a ROUTER socket on `config.handler.commandSpec` (skipped when empty: close() is then
 * a no-op) and serves commands until closed. Rejects with a ZmqSetupError when the spec
 * cannot be bound. Malformed requests are logged (rate-limited) and dropped without reply,
 * as Pushpin does.
 */
export async function startCommandSocket(opts: CommandSocketOptions): Promise<CommandSocket> {
  const { config, target, logger } = opts;
  if (config.handler.commandSpec === '') return { close: async () => {} };
  const sock = new zmq.Router({ maxMessageSize: MAX_COMMAND_MESSAGE_BYTES, linger: 0 });
  await setupSocket(sock, [config.handler.commandSpec], true, 'command_spec');
  const warn = new WarnLimiter(logger, 'command');

  // zeromq allows one send in flight per socket; replies go out in order through this chain.
  let sendChain: Promise<void> = Promise.resolve();
  const send = (frames: Buffer[]): void => {
    sendChain = sendChain.then(
      () => sock.closed ? undefined : sock.send(frames),
    ).catch((e: unknown) => {
      if (!isClosedError(e) && !sock.closed) logger.warn({ err: e }, 'command: reply not sent');
    });
  };

  const inFlight = new Set<Promise<void>>();

  const handle = (msg: Buffer[]): Promise<void> | undefined => {
    const delim = msg.findIndex((f) => f.length === 0);
    if (delim < 0 || delim > MAX_ENVELOPE_FRAMES) {
      warn.warn(delim < 0 ? 'received message without an empty delimiter frame' : 'received message with too many envelope frames');
      return undefined;
    }
    const envelope = msg.slice(0, delim);
    const content = msg.slice(delim + 1);
    if (content.length !== 1) {
      warn.warn(`received message with parts != 1 (${content.length})`);
      return undefined;
    }
    let req: CommandRequest;
    try {
      req = decodeCommandRequest(content[0]!);
    } catch (e) {
      if (e instanceof CommandPacketError) {
        warn.warn(`received message with invalid format (${e.message})`, { bytes: content[0]!.length });
        return undefined;
      }
      throw e;
    }
    logger.debug({ method: req.method }, 'IN command');
    return executeCommand(req, target, config, logger).then((res) => {
      let payload: Buffer;
      try {
        payload = encodeCommandResponse(res);
      } catch (e) {
        logger.error({ err: e, method: req.method }, 'command: reply could not be encoded');
        payload = encodeCommandResponse({ id: res.id, success: false, condition: 'internal-error' });
      }
      send([...envelope, Buffer.alloc(0), payload]);
    });
  };

  const done = (async () => {
    try {
      for await (const msg of sock) {
        let p: Promise<void> | undefined;
        try {
          p = handle(msg);
        } catch (e) {
          logger.error({ err: e }, 'command: unexpected error, message dropped');
        }
        if (p) {
          const tracked = p.catch((e: unknown) => logger.error({ err: e }, 'command: unexpected error')).finally(() => inFlight.delete(tracked));
          inFlight.add(tracked);
          // Backpressure: stop reading while too many commands are still executing.
          while (inFlight.size >= MAX_PENDING_COMMANDS) await Promise.race(inFlight);
        }
      }
    } catch (e) {
      if (!sock.closed && !isClosedError(e)) logger.error({ err: e }, 'command: receive failed');
    }
  })();

  logger.debug({ spec: config.handler.commandSpec }, 'command socket started');
  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        // Give in-flight commands a moment to answer; a hung target must not block shutdown.
        const grace = new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref());
        await Promise.race([Promise.allSettled([...inFlight]).then(() => sendChain), grace]);
        if (!sock.closed) sock.close();
        await done;
      })();
      return closing;
    },
  };
}
