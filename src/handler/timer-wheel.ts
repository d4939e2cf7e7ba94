/**
 * One shared, coarse timer for every held request (long-poll timeouts, stream
 * keep-alives, next-link timeouts). Thousands of holds cost one interval timer and a
 * Set entry each, instead of one libuv timer per connection.
 */

/** Something the wheel can wake up. Implemented by the held objects themselves. */
export interface WheelEntry {
  /** Called once when the entry's deadline has passed (the entry is already removed). */
  onTimer(nowMs: number): void;
  /** Wheel bookkeeping; only TimerWheel reads or writes these. */
  wheelDeadlineMs: number;
  wheelSlot: number;
}

/** Resolution of the wheel: deadlines fire up to this late. */
export const WHEEL_TICK_MS = 100;
/** Slots in one revolution (WHEEL_TICK_MS * WHEEL_SLOTS = 51.2 s per turn); later deadlines wait for their turn. */
const WHEEL_SLOTS = 512;

/**
 * A hashed timer wheel. `schedule` and `cancel` are O(1); each tick visits one slot.
 * The interval timer runs only while entries exist and is unref'd so it never keeps
 * the process alive by itself.
 */
export class TimerWheel {
  private readonly slots: Array<Set<WheelEntry>> = [];
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Index of the slot the next tick visits. */
  private cursor = 0;
  /** Time the cursor slot stands for. */
  private cursorMs = 0;

  constructor(private readonly now: () => number = Date.now) {
    for (let i = 0; i < WHEEL_SLOTS; i++) this.slots.push(new Set());
  }

  /** Entries currently scheduled. */
  get count(): number {
    return this.size;
  }

  /** Schedules (or reschedules) `entry` to fire `delayMs` from now (clamped at 0). */
  schedule(entry: WheelEntry, delayMs: number): void {
    this.cancel(entry);
    const now = this.now();
    if (this.size === 0) {
      this.cursorMs = now;
    }
    const deadline = now + Math.max(0, delayMs);
    entry.wheelDeadlineMs = deadline;
    // Slots ahead of the cursor; an entry due sooner than one tick goes into the next slot.
    const ticks = Math.max(1, Math.ceil((deadline - this.cursorMs) / WHEEL_TICK_MS));
    const slot = (this.cursor + Math.min(ticks, WHEEL_SLOTS - 1)) % WHEEL_SLOTS;
    entry.wheelSlot = slot;
    this.slots[slot]!.add(entry);
    this.size++;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), WHEEL_TICK_MS);
      this.timer.unref();
    }
  }

  /** Removes `entry` if scheduled; harmless otherwise. */
  cancel(entry: WheelEntry): void {
    if (entry.wheelSlot < 0) return;
    if (this.slots[entry.wheelSlot]!.delete(entry)) this.size--;
    entry.wheelSlot = -1;
    if (this.size === 0) this.stopTimer();
  }

  /** Stops the interval and forgets every entry without firing them. */
  clear(): void {
    for (const s of this.slots) {
      for (const e of s) e.wheelSlot = -1;
      s.clear();
    }
    this.size = 0;
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Advances the cursor over every slot whose time has come (catching up after a stall). */
  private tick(): void {
    const now = this.now();
    // Bound the catch-up so a long stall visits each slot at most once.
    let steps = 0;
    while (this.cursorMs + WHEEL_TICK_MS <= now && steps < WHEEL_SLOTS) {
      this.cursor = (this.cursor + 1) % WHEEL_SLOTS;
      this.cursorMs += WHEEL_TICK_MS;
      steps++;
      this.fireSlot(this.cursor, now);
    }
    if (steps === WHEEL_SLOTS) {
      this.cursorMs = now;
      // After a stall longer than a turn, every slot may hold overdue entries.
      for (let i = 0; i < WHEEL_SLOTS; i++) this.fireSlot(i, now);
    }
  }

  private fireSlot(index: number, now: number): void {
    const slot = this.slots[index]!;
    if (slot.size === 0) return;
    const due: WheelEntry[] = [];
    for (const e of slot) {
      if (e.wheelDeadlineMs <= now) due.push(e);
    }
    for (const e of due) {
      slot.delete(e);
      e.wheelSlot = -1;
      this.size--;
    }
    // Entries not yet due stay for the next turn of the wheel.
    if (this.size === 0) this.stopTimer();
    for (const e of due) {
      try {
        e.onTimer(now);
      } catch {
        // A failing entry must not stop the others; holders log their own errors.
      }
    }
  }
}
