/**
 * The delivery rate limiter behind `message_rate` / `message_hwm`, with Pushpin's
 * semantics: every delivery (one published item to one held connection) is an action
 * queued under a key (the route's explicit id, '' for routes without one); the actions
 * of all keys together run at most `ratePerS` weighted actions per second, taking turns
 * across keys; a key whose queued weight would pass `hwm` drops the new action (the
 * caller counts it). A queued action whose connection has gone runs as a no-op and
 * costs nothing.
 *
 * A token bucket: tokens refill continuously at `ratePerS`; the bucket holds at most
 * one batch (the deliveries allowed per BATCH_INTERVAL_MS, at least one), so an idle
 * limiter lets a small burst through at once, as Pushpin's first pass does.
 *
 * Only built when a rate is configured ({@link createDeliveryLimiter} returns undefined
 * otherwise), so the unlimited fan-out path pays nothing per delivery.
 */

/**
 * Shortest gap between two drains, in ms (Pushpin's minimum batch interval). Protects
 * the event loop from a timer per delivery at high rates: deliveries leave in batches.
 */
export const BATCH_INTERVAL_MS = 25;

/** A queued delivery. Returns false when it did nothing (its connection went away). */
export type DeliveryAction = () => boolean;

/** Clock and timer, injectable for tests. */
export interface LimiterClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `fn` after `ms` milliseconds; returns a cancel function. */
  schedule(fn: () => void, ms: number): () => void;
}

const REAL_CLOCK: LimiterClock = {
  now: () => performance.now(),
  schedule(fn, ms) {
    if (ms <= 0) {
      const t = setImmediate(fn);
      return () => clearImmediate(t);
    }
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

interface Queue {
  actions: Array<{ run: DeliveryAction; weight: number }>;
  /** Index of the next action (the array is compacted now and then, not shifted). */
  head: number;
  /** Weight of the actions still queued. */
  weight: number;
}

export interface DeliveryLimiterOptions {
  /** Weighted deliveries per second; > 0. */
  ratePerS: number;
  /** Most weight queued per key; undefined = unbounded. */
  hwm?: number | undefined;
  clock?: LimiterClock;
}

/** See the module comment. */
export class DeliveryLimiter {
  readonly ratePerS: number;
  readonly hwm: number | undefined;
  /** Bucket size in tokens: one batch. */
  readonly burst: number;
  private readonly clock: LimiterClock;
  private readonly queues = new Map<string, Queue>();
  /** Keys in turn order (round robin: a key goes to the back after its turn). */
  private turn: string[] = [];
  private tokens: number;
  private lastRefillMs: number;
  private cancel: (() => void) | undefined;
  private stopped = false;
  /** Total weight queued across keys. */
  private queuedWeight = 0;

  constructor(opts: DeliveryLimiterOptions) {
    if (!(opts.ratePerS > 0)) throw new RangeError(`ratePerS must be > 0, got ${opts.ratePerS}`);
    this.ratePerS = opts.ratePerS;
    this.hwm = opts.hwm !== undefined && opts.hwm > 0 ? opts.hwm : undefined;
    this.burst = Math.max(1, Math.ceil((this.ratePerS * BATCH_INTERVAL_MS) / 1000));
    this.clock = opts.clock ?? REAL_CLOCK;
    this.tokens = this.burst;
    this.lastRefillMs = this.clock.now();
  }

  /** Weight queued now, across keys. */
  queued(): number {
    return this.queuedWeight;
  }

  /**
   * Queues `action` under `key` with `weight` (>= 1). Returns false, without queueing,
   * when the key's queued weight plus `weight` would pass the high-water mark or the
   * limiter is stopped: the delivery is dropped and the caller counts it.
   */
  add(key: string, action: DeliveryAction, weight = 1): boolean {
    if (this.stopped) return false;
    let q = this.queues.get(key);
    if (q === undefined) {
      q = { actions: [], head: 0, weight: 0 };
      this.queues.set(key, q);
      this.turn.push(key);
    }
    if (this.hwm !== undefined && q.weight + weight > this.hwm) return false;
    q.actions.push({ run: action, weight });
    q.weight += weight;
    this.queuedWeight += weight;
    // Actions always run from the timer, never inside add(): the publisher's loop over
    // subscribers finishes first, as in Pushpin.
    if (this.cancel === undefined) this.cancel = this.clock.schedule(this.drain, this.delayMs());
    return true;
  }

  /** Drops everything queued and refuses new actions. */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
    this.queues.clear();
    this.turn = [];
    this.queuedWeight = 0;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.lastRefillMs;
    this.lastRefillMs = now;
    if (elapsed > 0) this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerS) / 1000);
  }

  /** Ms until the next drain may run: now when a token is there, else when one will be. */
  private delayMs(): number {
    this.refill();
    if (this.tokens >= 1) return 0;
    const wait = Math.ceil(((1 - this.tokens) * 1000) / this.ratePerS);
    // At high rates one token comes back in well under a ms: wait for a batch instead.
    return Math.max(wait, Math.min(BATCH_INTERVAL_MS, Math.ceil(1000 / this.ratePerS)));
  }

  private readonly drain = (): void => {
    this.cancel = undefined;
    if (this.stopped) return;
    this.refill();
    // Bound the work of one drain: every action either runs (a token, or free when it
    // did nothing) and leaves its queue, so the loop ends after at most the queued count.
    while (this.tokens >= 1 && this.turn.length > 0) {
      const key = this.turn.shift()!;
      const q = this.queues.get(key)!;
      const item = q.actions[q.head]!;
      q.actions[q.head] = undefined as never;
      q.head++;
      q.weight -= item.weight;
      this.queuedWeight -= item.weight;
      let ran = false;
      try {
        ran = item.run();
      } catch {
        // An action's failure is its own (it reports it); the queue moves on.
        ran = true;
      }
      // Pushpin lets a heavy item through and charges the debt to later turns.
      if (ran) this.tokens -= item.weight;
      if (q.head >= q.actions.length) this.queues.delete(key);
      else {
        if (q.head > 1024 && q.head * 2 > q.actions.length) {
          q.actions = q.actions.slice(q.head);
          q.head = 0;
        }
        this.turn.push(key);
      }
    }
    if (this.turn.length > 0) this.cancel = this.clock.schedule(this.drain, this.delayMs());
  };
}

/**
 * Builds the limiter for `message_rate` / `message_hwm`, or undefined when no rate is
 * set (no cap: deliveries go straight out). `messageHwm` without a rate has no effect.
 */
export function createDeliveryLimiter(
  messageRate: number | undefined, messageHwm: number | undefined, clock?: LimiterClock,
): DeliveryLimiter | undefined {
  if (messageRate === undefined || !(messageRate > 0)) return undefined;
  return new DeliveryLimiter({ ratePerS: messageRate, hwm: messageHwm, ...(clock !== undefined ? { clock } : {}) });
}

/**
 * Weight of one delivery of `bytes` bytes: 1, or with `message_block_size` set, the
 * number of blocks the content spans (at least 1).
 */
export function deliveryWeight(bytes: number, blockSize: number): number {
  if (!(blockSize > 0)) return 1;
  return Math.max(1, Math.ceil(bytes / blockSize));
}
