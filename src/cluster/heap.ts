/**
 * How tightly V8 sizes each gripd process's JavaScript heap.
 *
 * On a machine with a large memory, V8 lets a heap grow to up to four times what survived
 * the last full collection before collecting again. A proxy's live heap is mostly its held
 * connections, and the rest is short-lived request garbage: with a 4× allowance a worker
 * holding 55 MB of live objects swings between 55 and 220 MB, and the level it swings to
 * drifts upward for many minutes as V8 grows its allowance. gripd asks V8 for at most
 * HEAP_GROWING_PERCENT of headroom instead: a full collection comes sooner (they are
 * incremental and mostly concurrent), and resident memory tracks what is live.
 *
 * A `--heap-growing-percent` given to node (or to the workers through
 * GRIPD_WORKER_EXEC_ARGV) wins over the default.
 */
import v8 from 'node:v8';

/** Heap headroom over the live size, in percent of it, before the next full collection. */
export const HEAP_GROWING_PERCENT = 50;

const FLAG = '--heap-growing-percent';

/** True when the user chose the heap growing factor themselves in `execArgv`. */
export function hasHeapGrowingFlag(execArgv: readonly string[]): boolean {
  return execArgv.some((a) => a === FLAG || a.startsWith(`${FLAG}=`) || a === '--heap_growing_percent' || a.startsWith('--heap_growing_percent='));
}

/** Applies gripd's heap sizing to this process unless its command line chose one. */
export function applyHeapSizing(execArgv: readonly string[] = process.execArgv): void {
  if (!hasHeapGrowingFlag(execArgv)) v8.setFlagsFromString(`${FLAG}=${HEAP_GROWING_PERCENT}`);
}
