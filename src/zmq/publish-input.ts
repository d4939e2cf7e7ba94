/**
 * ZeroMQ publish inputs: the PULL socket on `push_in_spec` and the SUB socket on
 * `push_in_sub_specs`. Each frame is decoded (Pushpin's J/T prefix rules), turned into a
 * PublishItem by the same parser the HTTP publish API uses, and handed to the sink.
 * A bad frame is logged (rate-limited) and dropped; the socket keeps serving.
 */
import * as zmq from 'zeromq';
import type { Config } from '../config/types.js';
import type { PublishItem } from '../grip/types.js';
import type { Logger } from '../log/index.js';
import { parsePublishItem } from '../publish/item.js';
import { publishErrorDetail } from './publish-error.js';
import { decodePublishFrame, publishFrameFormat, PublishFrameError } from './publish-frame.js';
import { isClosedError, setupSocket } from './socket-util.js';
import { WarnLimiter } from './warn-limit.js';

/** Where decoded publish items go (the handler implements it). Must not throw for bad items. */
export interface PublishSink {
  publish(items: PublishItem[]): void;
}

/**
 * Channels with local subscribers, as the handler sees them. `subscribe` fires when a
 * channel gains its first local subscriber, `unsubscribe` when it stops being subscribed
 * (the handler applies `subscription_linger` to long-poll channels before that; the SUB
 * socket follows at once). `channels()` lists the channels subscribed right now.
 */
export interface SubscriptionSource {
  on(event: 'subscribe' | 'unsubscribe', listener: (channel: string) => void): unknown;
  off?(event: 'subscribe' | 'unsubscribe', listener: (channel: string) => void): unknown;
  channels(): Iterable<string>;
}

export interface PublishInputsOptions {
  config: Config;
  sink: PublishSink;
  subscriptions: SubscriptionSource;
  logger: Logger;
}

export interface PublishInputs {
  /** Closes both sockets and cancels linger timers; idempotent. */
  close(): Promise<void>;
}

/**
 * Largest message a publish socket accepts, in bytes; a peer sending more is disconnected
 * by ZeroMQ itself. Protects memory from a single oversized frame.
 */
export const MAX_PUBLISH_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Messages queued per peer before ZeroMQ stops reading from it (Pushpin's default HWM). */
const RECEIVE_HWM = 1000;

/**
 * Starts the PULL socket (bound to `config.handler.pushInSpec`, skipped when empty) and the
 * SUB socket (bound to, or with `pushInSubConnect` connected to, every `pushInSubSpecs`
 * entry; skipped when the list is empty). Rejects with a ZmqSetupError when a spec cannot
 * be bound.
 */
export async function startPublishInputs(opts: PublishInputsOptions): Promise<PublishInputs> {
  const { config, logger } = opts;
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    const list = closers.splice(0).reverse();
    for (const c of list) await c();
  };
  try {
    if (config.handler.pushInSpec !== '') closers.push(await startPull(opts));
    if (config.handler.pushInSubSpecs.length > 0) closers.push(await startSub(opts));
  } catch (e) {
    await closeAll();
    throw e;
  }
  let closing: Promise<void> | undefined;
  logger.debug({ pull: config.handler.pushInSpec, sub: config.handler.pushInSubSpecs }, 'zmq publish inputs started');
  return {
    close() {
      closing ??= closeAll();
      return closing;
    },
  };
}

function deliver(sink: PublishSink, item: PublishItem, warn: WarnLimiter, logger: Logger): void {
  try {
    sink.publish([item]);
  } catch (e) {
    // The sink is not supposed to throw; keep the socket alive if it does.
    logger.error({ err: e }, 'publish sink failed');
    warn.warn('delivery failed');
  }
}

/** Runs `loop` until the socket closes; returns a closer that waits for the loop to end. */
function runLoop(sock: zmq.Socket & AsyncIterable<Buffer[]>, name: string, logger: Logger, onMessage: (msg: Buffer[]) => void, onClose?: () => void): () => Promise<void> {
  const done = (async () => {
    try {
      for await (const msg of sock) {
        try {
          onMessage(msg);
        } catch (e) {
          logger.error({ err: e, socket: name }, `IN ${name}: unexpected error, message dropped`);
        }
      }
    } catch (e) {
      if (!sock.closed && !isClosedError(e)) logger.error({ err: e, socket: name }, `IN ${name}: receive failed`);
    }
  })();
  return async () => {
    onClose?.();
    if (!sock.closed) sock.close();
    await done;
  };
}

async function startPull(opts: PublishInputsOptions): Promise<() => Promise<void>> {
  const { config, sink, logger } = opts;
  const sock = new zmq.Pull({ receiveHighWaterMark: RECEIVE_HWM, maxMessageSize: MAX_PUBLISH_MESSAGE_BYTES, linger: 0 });
  await setupSocket(sock, [config.handler.pushInSpec], true, 'push_in_spec');
  const warn = new WarnLimiter(logger, 'pull');
  return runLoop(sock, 'pull', logger, (msg) => {
    if (msg.length !== 1) {
      warn.warn(`received message with parts != 1 (${msg.length})`);
      return;
    }
    const item = decodeItem(msg[0]!, undefined, warn);
    if (item) deliver(sink, item, warn, logger);
  });
}

/**
 * Decodes a publish frame into an item. `channel` (the SUB topic), when non-empty,
 * overrides the item's own channel as Pushpin does. Returns undefined after a warning.
 */
function decodeItem(frame: Buffer, channel: string | undefined, warn: WarnLimiter): PublishItem | undefined {
  let value: unknown;
  try {
    value = decodePublishFrame(frame);
  } catch (e) {
    if (e instanceof PublishFrameError) {
      warn.warn(`received message with ${e.reason}`, { bytes: frame.length });
      return undefined;
    }
    throw e;
  }
  try {
    const input = publishFrameFormat(frame);
    return parsePublishItem(value, 0, channel !== undefined && channel !== '' ? { input, channel } : { input });
  } catch (e) {
    warn.warn(`received message with invalid format: ${publishErrorDetail(e)}`);
    return undefined;
  }
}

async function startSub(opts: PublishInputsOptions): Promise<() => Promise<void>> {
  const { config, sink, logger, subscriptions } = opts;
  const connect = config.handler.pushInSubConnect;
  const sock = new zmq.Subscriber({ receiveHighWaterMark: RECEIVE_HWM, maxMessageSize: MAX_PUBLISH_MESSAGE_BYTES, linger: 0 });
  if (connect) {
    // Cross-host links: notice a dead publisher (Pushpin uses the same idle/count/interval).
    sock.tcpKeepalive = 1;
    sock.tcpKeepaliveIdle = 30;
    sock.tcpKeepaliveCount = 6;
    sock.tcpKeepaliveInterval = 5;
  }
  await setupSocket(sock, config.handler.pushInSubSpecs, !connect, 'push_in_sub_specs');
  const warn = new WarnLimiter(logger, 'sub');
  // Channels the SUB socket is subscribed to right now. The handler decides when a
  // channel stops being subscribed (it applies subscription_linger to long-polls).
  const subscribed = new Set<string>();

  const onSubscribe = (channel: string): void => {
    if (subscribed.has(channel) || sock.closed) return;
    subscribed.add(channel);
    logger.debug({ channel }, 'SUB socket subscribe');
    sock.subscribe(channel);
  };
  const onUnsubscribe = (channel: string): void => {
    if (!subscribed.delete(channel) || sock.closed) return;
    logger.debug({ channel }, 'SUB socket unsubscribe');
    sock.unsubscribe(channel);
  };
  subscriptions.on('subscribe', onSubscribe);
  subscriptions.on('unsubscribe', onUnsubscribe);
  for (const ch of subscriptions.channels()) onSubscribe(ch);

  return runLoop(
    sock,
    'sub',
    logger,
    (msg) => {
      if (msg.length !== 2) {
        warn.warn(`received message with parts != 2 (${msg.length})`);
        return;
      }
      const channel = msg[0]!.toString('utf8');
      // ZeroMQ matches topics by prefix; only exact channels we asked for go through.
      if (!subscribed.has(channel)) return;
      const item = decodeItem(msg[1]!, channel, warn);
      if (item) deliver(sink, item, warn, logger);
    },
    () => {
      subscriptions.off?.('subscribe', onSubscribe);
      subscriptions.off?.('unsubscribe', onUnsubscribe);
    },
  );
}
