/**
 * How V8 sizes the JavaScript heap of gripd's processes.
 *
 * Headroom. On a machine with a large memory, V8 lets a heap grow to up to four times what
 * survived the last full collection before collecting again. A proxy's live heap is mostly
 * its held connections and the rest is short-lived request garbage, so with that allowance
 * a worker holding 55 MB of live objects swung between about 55 and 250 MB, and the level
 * it swung to drifted upward for many minutes. gripd keeps at most HEAP_GROWING_PERCENT of
 * headroom instead: full collections (incremental, mostly concurrent) come sooner and
 * resident memory tracks what is live. Applied to every process.
 *
 * Young generation. V8 grows each of the two semi-spaces that take new objects to 16 MB
 * under a fan-out's allocation rate; at WORKER_MAX_SEMI_SPACE_MB they cost a worker 16 MB
 * less and fan-out measured no slower. This one can only be set when a process starts, so
 * it applies to the workers (`[proxy] workers` > 1), whose command line the primary makes.
 *
 * Either flag given to node (or to the workers through GRIPD_WORKER_EXEC_ARGV) wins.
 */
import v8 from 'node:v8';

/** Heap headroom over the live size, in percent of it, before the next full collection. */
export const HEAP_GROWING_PERCENT = 50;
/** Largest semi-space of a worker's young generation, MiB (V8's default here: 16). */
export const WORKER_MAX_SEMI_SPACE_MB = 8;

/** True when `execArgv` sets the V8 flag `name` (given with dashes), in either spelling. */
export function hasV8Flag(execArgv: readonly string[], name: string): boolean {
  const spellings = [name, name.replace(/(?<=\w)-/g, '_')];
  return execArgv.some((a) => spellings.some((s) => a === s || a.startsWith(`${s}=`)));
}

/** The heap flags a worker gets besides `execArgv`: gripd's defaults for those it does not set. */
export function workerHeapFlags(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  if (!hasV8Flag(execArgv, '--max-semi-space-size')) out.push(`--max-semi-space-size=${WORKER_MAX_SEMI_SPACE_MB}`);
  if (!hasV8Flag(execArgv, '--heap-growing-percent')) out.push(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return out;
}

/** Applies the heap headroom to this (already running) process unless its command line chose one. */
export function applyHeapSizing(execArgv: readonly string[] = process.execArgv): void {
  if (!hasV8Flag(execArgv, '--heap-growing-percent')) v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
