/**
 * IPC between fanout.ts (parent) and subscriber.ts workers. Published payloads carry
 * markers `@<kind><seq>:<publishTimeUs>;` where kind is 'w' (warm-up) or 'm' (measured)
 * and the time is process.hrtime (CLOCK_MONOTONIC, shared by all processes) in µs.
 */
export type ParentMessage =
  | {
    cmd: 'connect'; host: string; port: number; path: string; hostHeader: string; count: number; localAddress: string; maxPending: number; deadlineMs: number;
    /**
     * Spread over channels: `{ch}` in `path` becomes `(indexBase + k) % channels` for
     * this worker's k-th connection (absent: every connection uses `path` as is).
     */
    spread?: { channels: number; indexBase: number };
  }
  | { cmd: 'phase' }
  | { cmd: 'status' }
  | { cmd: 'report' }
  | { cmd: 'close' };

export type WorkerMessage =
  | { type: 'connected'; ok: number; failed: number; firstError?: string }
  | { type: 'status'; received: number; warmed: number; open: number }
  | { type: 'report'; received: number; latenciesUs: number[]; lastRecvUs: number; open: number };

/** Current monotonic time in microseconds (comparable across processes on one host). */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Builds a payload line with a marker. */
export function formatMarker(kind: 'w' | 'm', seq: number, publishUs: number): string {
  return `@${kind}${seq}:${publishUs};\n`;
}
