/**
 * Differential checker: sends the same raw requests (bench/compare/diff-cases.ts) to
 * Pushpin 1.36 and gripd, both routed to one shared loopback backend, and prints the
 * responses side by side with differences in status line, headers (Date/Server and
 * order ignored) and body marked.
 *
 *   node dist/bench/compare/diff.js [--all] [--self] [--json FILE] [--ignore-header NAME]... [case-name-substring...]
 *
 * --all prints identical cases in full too; --self runs Pushpin against a second Pushpin
 * (the "gripd" column) to show the tool itself reports no noise; --ignore-header hides a
 * header already recorded as a deliberate difference, so the rest stands out. Exit code 0 always unless the tool fails
 * (differences are findings, not failures).
 */
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { startBackend } from '../lib/backend.js';
import { startPushpin, startGripd, type ProxyServer } from '../lib/servers.js';
import { freePorts } from '../lib/ports.js';
import { exchange, type Capture, type RawResponse } from '../lib/http-raw.js';
import { killAll } from '../lib/children.js';
import { DIFF_CASES, type DiffCase, type PublishItem } from './diff-cases.js';

/** Headers whose values legitimately differ between two servers. */
const IGNORED_HEADERS = new Set(['date', 'server']);
/** Body bytes shown per side. */
const SHOW_BODY_CHARS = 400;

/** The outcome of one case. */
export interface DiffOutcome {
  name: string;
  same: boolean;
  differences: string[];
  pushpin: Summary;
  gripd: Summary;
}

interface Summary { error?: string; closed: boolean; firstByteMs?: number; lastByteMs?: number; leftover: string; responses: Array<{ statusLine: string; headers: string[]; framing: string; complete: boolean; body: string }> }

function esc(s: string): string {
  return s.replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Extra header names (lower-case) to ignore, from --ignore-header. */
const extraIgnored = new Set<string>();

function normHeaders(r: RawResponse): string[] {
  return r.headers.filter(([k]) => !IGNORED_HEADERS.has(k.toLowerCase()) && !extraIgnored.has(k.toLowerCase())).map(([k, v]) => `${k.toLowerCase()}: ${v}`).sort();
}

function summarize(c: Capture): Summary {
  return {
    ...(c.error ? { error: c.error } : {}), closed: c.closedByServer,
    ...(c.firstByteMs !== undefined ? { firstByteMs: c.firstByteMs, lastByteMs: c.lastByteMs ?? c.firstByteMs } : {}), leftover: esc(c.leftover.slice(0, 200)),
    responses: c.responses.map((r) => ({ statusLine: r.statusLine, headers: normHeaders(r), framing: r.framing, complete: r.complete, body: r.body.toString('latin1') })),
  };
}

/** Lists the differences between two captures (empty when the client would see the same). */
export function compareSummaries(a: Summary, b: Summary): string[] {
  const d: string[] = [];
  if ((a.error ?? '') !== (b.error ?? '')) d.push(`connection error: ${a.error ?? 'none'} | ${b.error ?? 'none'}`);
  if (a.responses.length !== b.responses.length) d.push(`response count: ${a.responses.length} | ${b.responses.length}`);
  const n = Math.min(a.responses.length, b.responses.length);
  for (let i = 0; i < n; i++) {
    const x = a.responses[i]!; const y = b.responses[i]!;
    const tag = a.responses.length > 1 ? `#${i + 1} ` : '';
    if (x.statusLine !== y.statusLine) d.push(`${tag}status: ${x.statusLine} | ${y.statusLine}`);
    const only = (p: string[], q: string[]) => p.filter((h) => !q.includes(h));
    for (const h of only(x.headers, y.headers)) d.push(`${tag}header only in pushpin: ${h}`);
    for (const h of only(y.headers, x.headers)) d.push(`${tag}header only in gripd:   ${h}`);
    if (x.framing !== y.framing) d.push(`${tag}framing: ${x.framing} | ${y.framing}`);
    if (x.complete !== y.complete) d.push(`${tag}complete: ${x.complete} | ${y.complete}`);
    if (x.body !== y.body) d.push(`${tag}body: "${esc(x.body.slice(0, SHOW_BODY_CHARS))}" | "${esc(y.body.slice(0, SHOW_BODY_CHARS))}"`);
  }
  if (a.closed !== b.closed) d.push(`server closed connection: ${a.closed} | ${b.closed}`);
  if (a.leftover !== b.leftover) d.push(`unparsed bytes: "${a.leftover}" | "${b.leftover}"`);
  return d;
}

async function publish(server: ProxyServer, items: PublishItem[]): Promise<void> {
  // One item per request, in order, as a publisher streaming events would.
  for (const item of items) {
    const r = await fetch(server.publishUrl + '/publish/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ items: [item] }) });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`publish answered ${r.status}`);
  }
}

async function runCase(server: ProxyServer, c: DiffCase): Promise<Capture> {
  return exchange({
    port: server.httpPort, request: c.request,
    ...(c.methods ? { methods: c.methods } : {}),
    ...(c.totalMs !== undefined ? { totalMs: c.totalMs } : {}),
    ...(c.idleMs !== undefined ? { idleMs: c.idleMs } : {}),
    ...(c.publish ? { during: { afterMs: c.publish.afterMs, run: () => publish(server, c.publish!.items) } } : {}),
  });
}

function printSide(label: string, s: Summary): string[] {
  // Timings are shown, never compared: they are the box's, not the protocol's.
  const t = s.firstByteMs !== undefined ? ` first byte ${s.firstByteMs} ms, last ${s.lastByteMs} ms` : '';
  const out = [`  ${label}:${s.error ? ` error=${s.error}` : ''}${s.closed ? ' (server closed)' : ''}${t}`];
  for (const r of s.responses) {
    out.push(`    ${r.statusLine}   [${r.framing}${r.complete ? '' : ', incomplete'}]`);
    for (const h of r.headers) out.push(`    ${h}`);
    out.push(`    body: "${esc(r.body.slice(0, SHOW_BODY_CHARS))}"${r.body.length > SHOW_BODY_CHARS ? ` (+${r.body.length - SHOW_BODY_CHARS} chars)` : ''}`);
  }
  if (s.leftover) out.push(`    unparsed: "${s.leftover}"`);
  return out;
}

/** Runs the cases (all, or those whose names contain one of `filters`) against both proxies. */
export async function runDiff(filters: string[] = [], cases: DiffCase[] = DIFF_CASES, selfCheck = false, ignoreHeaders: string[] = []): Promise<DiffOutcome[]> {
  for (const h of ignoreHeaders) extraIgnored.add(h.toLowerCase());
  const selected = filters.length ? cases.filter((c) => filters.some((f) => c.name.includes(f))) : cases;
  const backend = await startBackend(1);
  const [deadPort] = (await freePorts(1)) as [number];
  const routes = [`bench.test ${backend.target}`, 'test.test test', `down.test 127.0.0.1:${deadPort}`];
  let pushpin: ProxyServer | undefined; let gripd: ProxyServer | undefined;
  const outcomes: DiffOutcome[] = [];
  try {
    // selfCheck compares Pushpin with a second Pushpin: any DIFF then is noise in the tool.
    [pushpin, gripd] = await Promise.all([startPushpin({ routes }), selfCheck ? startPushpin({ routes }) : startGripd({ routes })]);
    // Cases run one at a time, each against both servers at once.
    for (const c of selected) {
      const [a, b] = await Promise.all([runCase(pushpin, c), runCase(gripd, c)]);
      const pa = summarize(a); const gb = summarize(b);
      const differences = compareSummaries(pa, gb);
      outcomes.push({ name: c.name, same: differences.length === 0, differences, pushpin: pa, gripd: gb });
    }
  } finally {
    await Promise.all([pushpin?.stop(), gripd?.stop()]);
    await backend.stop();
  }
  return outcomes;
}

/** Formats outcomes: a summary line per case, then details of the differing ones. */
export function formatDiffReport(outcomes: DiffOutcome[], all = false): string {
  const lines: string[] = [];
  for (const o of outcomes) {
    lines.push(`${o.same ? 'SAME' : 'DIFF'}  ${o.name}`);
    if (o.same && !all) continue;
    for (const d of o.differences) lines.push(`  ! ${d}`);
    lines.push(...printSide('pushpin', o.pushpin), ...printSide('gripd', o.gripd), '');
  }
  const same = outcomes.filter((o) => o.same).length;
  lines.push(`${same} of ${outcomes.length} cases identical (Date/Server and header order ignored)`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const all = args.includes('--all');
  const ji = args.indexOf('--json');
  const jsonFile = ji >= 0 ? args[ji + 1] : undefined;
  const valueAt = new Set<number>(ji >= 0 ? [ji + 1] : []);
  const ignore: string[] = [];
  args.forEach((a, i) => { if (a === '--ignore-header' && args[i + 1] !== undefined) { ignore.push(args[i + 1]!); valueAt.add(i + 1); } });
  const filters = args.filter((a, i) => !a.startsWith('--') && !valueAt.has(i));
  try {
    const outcomes = await runDiff(filters, DIFF_CASES, args.includes('--self'), ignore);
    console.log(formatDiffReport(outcomes, all));
    if (jsonFile) await writeFile(jsonFile, JSON.stringify(outcomes, null, 2) + '\n');
  } catch (err) {
    console.error((err as Error).stack ?? String(err));
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
