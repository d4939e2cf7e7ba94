/**
 * Orders published items per channel by `id`/`prev-id` and drops recently seen ids,
 * as Pushpin's sequencer does. Owned by the Handler; it calls `add` for each item and
 * gets items back, in order, through the `ready` callback.
 */
import type { PublishItem } from '../grip/types.js';

/** Out-of-order items kept per channel; more are dropped (bounds memory per channel). */
export const CHANNEL_PENDING_MAX = 100;
/** How often pending items are checked for expiry. */
const EXPIRE_INTERVAL_MS = 1000;
/** Ids remembered for de-duplication across all channels (bounds memory under id floods). */
export const ID_CACHE_MAX = 100_000;

interface Pending {
  timeMs: number;
  item: PublishItem;
}

export class Sequencer {
  /** Last delivered id per channel (PublishLastIds in Pushpin). */
  readonly lastIds = new Map<string, string>();
  private readonly pending = new Map<string, Map<string, Pending>>();
  private pendingCount = 0;
  /** key `channel\0id` -> expiry time; Map keeps insertion order, which is expiry order. */
  private readonly idCache = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param waitMs how long an out-of-order item waits for its predecessor (message_wait)
   * @param idCacheTtlS de-dup window in seconds (id_cache_ttl); 0 disables
   * @param ready receives items in delivery order
   */
  constructor(
    private readonly waitMs: number,
    private readonly idCacheTtlS: number,
    private readonly ready: (item: PublishItem) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Feeds one item; `seq` false delivers at once (no-seq, or not sequenced). */
  add(item: PublishItem, seq: boolean): void {
    const now = this.now();
    if (item.id !== undefined && this.idCacheTtlS > 0) {
      for (const [k, exp] of this.idCache) {
        if (exp > now && this.idCache.size < ID_CACHE_MAX) break;
        this.idCache.delete(k);
      }
      const key = item.channel + '\0' + item.id;
      if (this.idCache.has(key)) return;
      this.idCache.set(key, now + this.idCacheTtlS * 1000);
    }
    if (!seq) {
      this.ready(item);
      return;
    }
    const last = this.lastIds.get(item.channel);
    if (last !== undefined && item.prevId !== undefined && last !== item.prevId) {
      let ch = this.pending.get(item.channel);
      if (ch === undefined) {
        ch = new Map();
        this.pending.set(item.channel, ch);
      }
      if (ch.has(item.prevId) || ch.size >= CHANNEL_PENDING_MAX) return;
      ch.set(item.prevId, { timeMs: now, item });
      this.pendingCount++;
      if (this.timer === undefined) {
        this.timer = setInterval(() => this.expire(), EXPIRE_INTERVAL_MS);
        this.timer.unref();
      }
      return;
    }
    this.send(item);
  }

  /** Forgets pending items and the last id of a channel nobody holds any more. */
  clearChannel(channel: string): void {
    const ch = this.pending.get(channel);
    if (ch !== undefined) {
      this.pendingCount -= ch.size;
      this.pending.delete(channel);
    }
    this.lastIds.delete(channel);
    this.maybeStop();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private maybeStop(): void {
    if (this.pendingCount === 0) this.stop();
  }

  private send(item: PublishItem): void {
    if (item.id !== undefined) this.lastIds.set(item.channel, item.id);
    else this.lastIds.delete(item.channel);
    this.ready(item);
    const ch = this.pending.get(item.channel);
    if (ch === undefined) return;
    let id = item.id;
    // Each step removes one pending entry, so this loop is bounded by CHANNEL_PENDING_MAX.
    while (id !== undefined && ch.size > 0) {
      const p = ch.get(id);
      if (p === undefined) break;
      ch.delete(id);
      this.pendingCount--;
      if (p.item.id !== undefined) this.lastIds.set(p.item.channel, p.item.id);
      else this.lastIds.delete(p.item.channel);
      this.ready(p.item);
      id = p.item.id;
    }
    if (ch.size === 0) this.pending.delete(item.channel);
    this.maybeStop();
  }

  private expire(): void {
    const threshold = this.now() - this.waitMs;
    const due: Pending[] = [];
    for (const [channel, ch] of this.pending) {
      for (const [prevId, p] of ch) {
        if (p.timeMs <= threshold) {
          due.push(p);
          ch.delete(prevId);
          this.pendingCount--;
        }
      }
      if (ch.size === 0) this.pending.delete(channel);
    }
    due.sort((a, b) => a.timeMs - b.timeMs);
    for (const p of due) this.send(p.item);
    this.maybeStop();
  }
}
