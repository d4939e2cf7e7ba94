import type { Logger } from '../log/index.js';

/** Warnings logged per socket per window before the rest are only counted. */
export const MAX_WARNINGS_PER_WINDOW = 20;
/** Length of the warning window, in milliseconds. */
export const WARNING_WINDOW_MS = 10_000;

/**
 * Logs "frame dropped" warnings for one socket, at most MAX_WARNINGS_PER_WINDOW per
 * WARNING_WINDOW_MS, so a peer spraying garbage cannot flood the log; the number
 * suppressed is reported with the next warning logged after the window.
 */
export class WarnLimiter {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly socket: string,
  ) {}

  warn(reason: string, fields: Record<string, unknown> = {}): void {
    const now = Date.now();
    if (now - this.windowStart >= WARNING_WINDOW_MS) {
      this.windowStart = now;
      this.count = 0;
    }
    if (this.count >= MAX_WARNINGS_PER_WINDOW) {
      this.suppressed++;
      return;
    }
    this.count++;
    const extra = this.suppressed > 0 ? { suppressed: this.suppressed } : {};
    this.suppressed = 0;
    this.logger.warn({ socket: this.socket, ...fields, ...extra }, `IN ${this.socket}: ${reason}, skipping`);
  }
}
