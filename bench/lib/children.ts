import type { ChildProcess } from 'node:child_process';

/**
 * Registry of every child process a benchmark starts, so that all of them die when the
 * benchmark ends, throws, or is interrupted. Children spawned `detached` lead their own
 * process group and are killed as a group (Pushpin's runner and its four services).
 */
const live = new Set<ChildProcess>();
let hooked = false;

function killOne(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    if (track.groups.has(child)) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch { /* already gone */ }
}

const track = { groups: new WeakSet<ChildProcess>() };

/** Registers a child; `group` says it was spawned detached and leads a process group. */
export function trackChild(child: ChildProcess, group = false): ChildProcess {
  live.add(child);
  if (group) track.groups.add(child);
  child.once('exit', () => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.once('exit', () => killAll('SIGKILL'));
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        killAll('SIGKILL');
        process.exit(130);
      });
    }
  }
  return child;
}

/** Sends `signal` to every live tracked child (and its group). */
export function killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const c of live) killOne(c, signal);
}

/**
 * Stops one child: `signal` first, SIGKILL after `graceMs`; resolves when it exited.
 * Never rejects.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  killOne(child, signal);
  const timer = setTimeout(() => killOne(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // A group leader's exit does not prove its group is gone: finish the stragglers.
  if (track.groups.has(child) && child.pid !== undefined) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* group empty */ }
  }
  live.delete(child);
}
