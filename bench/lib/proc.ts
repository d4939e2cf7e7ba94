import { readFileSync, readdirSync } from 'node:fs';

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on Linux x86/arm). */
const CLOCK_TICKS_PER_SEC = 100;
/** Bound on the descendant walk, so a fork bomb or a /proc race cannot loop us forever. */
const MAX_TREE_PIDS = 4096;

/** One sample of a process tree's resource use. */
export interface TreeSample {
  /** utime + stime of every live process in the tree, in seconds. */
  cpuSec: number;
  /** Sum of VmRSS of every live process in the tree, in bytes. */
  rssBytes: number;
  /** The pids sampled (root first). */
  pids: number[];
}

interface StatLine { ppid: number; cpuTicks: number }

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
function readStat(pid: number): StatLine | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'latin1'); } catch { return undefined; }
  // The command name (field 2) may hold spaces and parens; fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { ppid, cpuTicks: utime + stime };
}

/** VmRSS of one process in bytes (0 when gone or a zombie). */
function readRssBytes(pid: number): number {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/status`, 'latin1'); } catch { return 0; }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The pid and all its live descendants, root first (bounded by MAX_TREE_PIDS). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try { entries = readdirSync('/proc'); } catch { return [rootPid]; }
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = readStat(pid);
    if (!st) continue;
    let list = children.get(st.ppid);
    if (!list) { list = []; children.set(st.ppid, list); }
    list.push(pid);
  }
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0 && out.length < MAX_TREE_PIDS) {
    const pid = queue.shift()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return out;
}

/**
 * Samples CPU time and RSS summed over a process and all its descendants (for Pushpin:
 * the runner, condure, zurl, pushpin-proxy, pushpin-handler). CPU time only grows, so
 * subtract two samples to get the CPU-seconds spent in between; processes that exited in
 * between are not counted (their time is lost), so sample a steady set.
 */
export function sampleTree(rootPid: number): TreeSample {
  const pids = processTree(rootPid);
  let ticks = 0;
  let rss = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (!st) continue;
    ticks += st.cpuTicks;
    rss += readRssBytes(pid);
  }
  return { cpuSec: ticks / CLOCK_TICKS_PER_SEC, rssBytes: rss, pids };
}

/** Names (comm) of the processes in a tree, for reports. */
export function treeNames(rootPid: number): string[] {
  return processTree(rootPid).map((pid) => {
    try { return readFileSync(`/proc/${pid}/comm`, 'latin1').trim(); } catch { return `?${pid}`; }
  });
}
