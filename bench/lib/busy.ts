import { readFileSync, readdirSync } from 'node:fs';
import { processTree } from './proc.js';
import { sleep } from './stats.js';

/** Process names counted as another benchmark or test competing for the cores. */
const COMPETITOR_NAMES = /^(node|MainThread|pushpin.*|condure|zurl|wrk|chrom.*|headless_shell|tsc)$/;
/** Other processes' CPU (cores) above which the box counts as busy. */
const BUSY_CORES = 0.3;
/** Window over which other processes' CPU is measured, ms. */
const SAMPLE_MS = 1000;
/** Bound on waiting for the box to quiet down before a case, ms. */
const MAX_WAIT_MS = 30_000;
/** Bound on the /proc walk. */
const MAX_PIDS = 8192;

interface Proc { pid: number; name: string; ticks: number }

function snapshot(exclude: Set<number>): Map<number, Proc> {
  const out = new Map<number, Proc>();
  let entries: string[] = [];
  try { entries = readdirSync('/proc'); } catch { return out; }
  for (const e of entries.slice(0, MAX_PIDS)) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 0 || exclude.has(pid)) continue;
    let text: string;
    try { text = readFileSync(`/proc/${pid}/stat`, 'latin1'); } catch { continue; }
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    if (open < 0 || close < 0) continue;
    const name = text.slice(open + 1, close);
    if (!COMPETITOR_NAMES.test(name)) continue;
    const rest = text.slice(close + 2).split(' ');
    out.set(pid, { pid, name, ticks: Number(rest[11]) + Number(rest[12]) });
  }
  return out;
}

/** CPU cores used by other node/pushpin/wrk/chromium processes (not this bench's tree) over ~1 s. */
export async function otherLoad(sampleMs = SAMPLE_MS): Promise<{ cores: number; names: string[] }> {
  const exclude = new Set(processTree(process.pid));
  const a = snapshot(exclude);
  await sleep(sampleMs);
  const b = snapshot(exclude);
  let ticks = 0;
  const names = new Map<string, number>();
  for (const [pid, p] of b) {
    const d = p.ticks - (a.get(pid)?.ticks ?? p.ticks);
    if (d <= 0) continue;
    ticks += d;
    names.set(p.name, (names.get(p.name) ?? 0) + 1);
  }
  return { cores: ticks / 100 / (sampleMs / 1000), names: [...names].map(([n, k]) => (k > 1 ? `${n} x${k}` : n)) };
}

/**
 * Checks `ps`-style for other benchmarks or tests on the box; while they use more than
 * BUSY_CORES, waits (at most MAX_WAIT_MS; with `quick`, not at all). Returns undefined when the box was quiet, else
 * a note such as "others used 0.9 cores (node x6, pushpin-handler)" for the report.
 */
export async function busyNote(quick = false): Promise<string | undefined> {
  // --quick (CI) must stay short: sample briefly and never wait.
  const end = Date.now() + (quick ? 0 : MAX_WAIT_MS);
  const sampleMs = quick ? 300 : SAMPLE_MS;
  let load = await otherLoad(sampleMs);
  while (load.cores > BUSY_CORES && Date.now() < end) {
    await sleep(2000);
    load = await otherLoad(sampleMs);
  }
  if (load.cores <= BUSY_CORES) return undefined;
  return `others used ${load.cores.toFixed(1)} cores (${load.names.slice(0, 6).join(', ')})`;
}
