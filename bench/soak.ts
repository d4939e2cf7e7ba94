/**
 * Soak test: holds many client connections on one gripd (mixed long-poll, HTTP stream and
 * SSE), churns a share of them every minute, publishes one item per channel every second
 * and checks that gripd neither leaks memory nor loses, duplicates or reorders an item.
 *
 *   node dist/bench/soak.js [--connections 10000] [--duration-s 600] [--clients 4]
 *     [--channels 50] [--churn-pct 10] [--mix lp:10,stream:45,sse:45] [--rss-max-growth-pct 5]
 *     [--warmup-s N] [--json]
 *
 * How delivery is checked: every item carries its per-channel id (`#<id>;`); every hold
 * is made with `prev-id` and a next link, so gripd recovers an item published while a
 * client was (re)subscribing through the backend (the long-poll retry or the stream's
 * next link), exactly as an application would. A client connection checks each id is
 * its predecessor + 1 from the baseline the backend gave it (`^<id>;`), and at the end
 * that it reached the last id published on its channel. Exit status: 0 when every
 * promise held, 1 otherwise, 2 on bad options.
 *
 * The same file is the client worker (forked with --soak-worker): one process per
 * 127.0.0.x source address, so no process needs more than ~connections/clients fds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startGripd, type ProxyServer } from './lib/servers.js';
import { stopChild, trackChild } from './lib/children.js';
import { sleep } from './lib/stats.js';

/** What to run. Every field has a default (see DEFAULT_SOAK). */
export interface SoakOptions {
  /** Client connections held at once. */
  connections: number;
  /** Length of the publishing phase in seconds. */
  durationS: number;
  /** Client processes (each binds its own 127.0.0.x source address). */
  clients: number;
  /** Channels per connection kind. */
  channelsPerKind: number;
  /** Share of connections closed and reopened per minute, in percent. */
  churnPctPerMin: number;
  /** Relative weights of long-poll, stream and SSE connections. */
  mix: { lp: number; stream: number; sse: number };
  /** Largest allowed RSS growth from the end of warm-up to the end, in percent. */
  rssMaxGrowthPct: number;
  /** Warm-up in seconds (RSS samples before it are not judged); default 20% of the duration. */
  warmupS?: number;
  /** RSS sampling interval in ms. */
  sampleMs: number;
  /** Progress lines on stderr. */
  verbose: boolean;
}

export const DEFAULT_SOAK: SoakOptions = {
  connections: 10_000,
  durationS: 600,
  clients: 4,
  channelsPerKind: 50,
  churnPctPerMin: 10,
  mix: { lp: 10, stream: 45, sse: 45 },
  rssMaxGrowthPct: 5,
  sampleMs: 5000,
  verbose: true,
};

/** Figures of one run. `ok` is false when any promise failed; `failures` says which. */
export interface SoakReport {
  ok: boolean;
  failures: string[];
  options: SoakOptions;
  /** Connections established at the start (of `options.connections`). */
  connected: number;
  /** Connections still open at the end. */
  openAtEnd: number;
  /** Connections closed and reopened by churn. */
  churned: number;
  /** Publish requests sent and items published (one per channel per publish). */
  publishes: number;
  itemsPublished: number;
  /** Items received by clients, summed over connections. */
  delivered: number;
  /** Items a connection saw twice or out of order / items it never saw. */
  duplicates: number;
  gaps: number;
  /** Gaps by connection kind, and the first few gaps seen. */
  gapsByKind: Record<Kind, number>;
  gapSamples: string[];
  /** Open connections that had not reached the last published id at the end. */
  behindAtEnd: number;
  /** Errors other than the above (failed connects, bad statuses, unexpected closes). */
  unexpectedErrors: number;
  /** First few error messages, for diagnosis. */
  errorSamples: string[];
  /** gripd RSS samples: seconds since publishing started, MiB. */
  rss: Array<{ t: number; mib: number }>;
  /** gripd CPU time consumed (user + system, seconds) at each sample. */
  cpu: Array<{ t: number; sec: number }>;
  rssAfterWarmupMib: number;
  rssEndMib: number;
  rssGrowthPct: number;
  /** Backend requests by kind (initial, long-poll re-polls, next links). */
  backendRequests: number;
  nextLinks: number;
}

// ---------------------------------------------------------------------------------------
// Wire protocol between the parent and the client workers.

export type Kind = 'lp' | 'stream' | 'sse';
interface ConnSpec { kind: Kind; ch: string }
type ToWorker =
  | { cmd: 'start'; port: number; localAddress: string; conns: ConnSpec[]; churnPerSec: number; connectDeadlineMs: number }
  | { cmd: 'churn'; on: boolean }
  | { cmd: 'final'; lastIds: Record<string, number> }
  | { cmd: 'exit' };
type FromWorker =
  | { type: 'connected'; ok: number; failed: number }
  | { type: 'final'; delivered: number; duplicates: number; gaps: number; gapsByKind: Record<Kind, number>; gapSamples: string[]; behind: number; errors: number; samples: string[]; open: number; churned: number };

/** Longest buffered response head or unparsed body tail per connection (bounds worker memory). */
const MAX_CLIENT_BUFFER = 65_536;
/** Error messages a worker keeps for the report. */
const MAX_ERROR_SAMPLES = 10;
/** Connections a worker opens at once while ramping up. */
const MAX_PENDING_CONNECTS = 200;

// ---------------------------------------------------------------------------------------
// Client worker.

interface Conn {
  spec: ConnSpec;
  sock: net.Socket;
  /** Next id this connection must see; undefined until the backend gave a baseline. */
  expected: number | undefined;
  buf: string;
  /** Long-poll: bytes of the body still to read (-1 = reading a head). */
  bodyLeft: number;
  closing: boolean;
  established: boolean;
  /** When the connection was opened (ms since epoch), for gap reports. */
  openedAt: number;
}

function runWorker(): void {
  let port = 0;
  let localAddress = '127.0.0.1';
  const conns = new Set<Conn>();
  let delivered = 0; let duplicates = 0; let gaps = 0; let errors = 0; let churned = 0;
  const samples: string[] = [];
  const gapSamples: string[] = [];
  const gapsByKind: Record<Kind, number> = { lp: 0, stream: 0, sse: 0 };
  let churnTimer: NodeJS.Timeout | undefined;
  let churnAcc = 0;
  let churnPerSec = 0;
  const send = (m: FromWorker): void => { process.send?.(m); };
  const fail = (c: Conn | undefined, msg: string): void => {
    errors++;
    if (samples.length < MAX_ERROR_SAMPLES) samples.push(c === undefined ? msg : `${c.spec.kind} ${c.spec.ch}: ${msg}`);
  };

  /** Reads `#id;` and `^id;` markers out of body text; returns the unparsed tail. */
  const markers = (c: Conn, text: string): string => {
    let i = 0;
    for (;;) {
      const at = text.slice(i).search(/[#^]/);
      if (at < 0) return '';
      const start = i + at;
      const end = text.indexOf(';', start);
      if (end < 0) return text.slice(start);
      const id = Number(text.slice(start + 1, end));
      if (!Number.isInteger(id)) { fail(c, `bad marker ${JSON.stringify(text.slice(start, end + 1))}`); i = end + 1; continue; }
      if (text[start] === '^') {
        if (c.expected === undefined) c.expected = id + 1;
        else if (id !== c.expected - 1) fail(c, `baseline ${id} after reaching ${c.expected - 1}`);
      } else if (c.expected === undefined) {
        fail(c, `item ${id} before a baseline`);
        c.expected = id + 1;
      } else {
        if (id === c.expected) delivered++;
        else if (id < c.expected) duplicates++;
        else {
          gaps += id - c.expected;
          gapsByKind[c.spec.kind] += id - c.expected;
          delivered++;
          if (gapSamples.length < MAX_ERROR_SAMPLES) gapSamples.push(`${c.spec.kind} ${c.spec.ch}: expected ${c.expected}, got ${id} (${Date.now() - c.openedAt} ms after connect)`);
        }
        if (id >= c.expected) c.expected = id + 1;
      }
      i = end + 1;
    }
  };

  const lpRequest = (c: Conn): void => {
    const after = c.expected === undefined ? '' : `&after=${c.expected - 1}`;
    c.sock.write(`GET /lp?ch=${c.spec.ch}${after} HTTP/1.1\r\nHost: soak\r\n\r\n`);
  };

  const onData = (c: Conn, d: string): void => {
    c.buf += d;
    for (let guard = 0; guard < 1000; guard++) {
      if (c.bodyLeft < 0) {
        const end = c.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (c.buf.length > MAX_CLIENT_BUFFER) { fail(c, 'response head too large'); c.sock.destroy(); }
          return;
        }
        const head = c.buf.slice(0, end);
        c.buf = c.buf.slice(end + 4);
        const status = head.slice(0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 200 /.test(status)) { fail(c, `status ${status}`); c.closing = true; c.sock.destroy(); return; }
        c.established = true;
        if (c.spec.kind !== 'lp') { c.bodyLeft = Infinity; continue; }
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (m === null) { fail(c, 'long-poll answer without Content-Length'); c.closing = true; c.sock.destroy(); return; }
        c.bodyLeft = Number(m[1]);
        continue;
      }
      if (c.bodyLeft === Infinity) {
        c.buf = markers(c, c.buf);
        if (c.buf.length > MAX_CLIENT_BUFFER) { fail(c, 'unterminated marker'); c.buf = ''; }
        return;
      }
      if (c.buf.length < c.bodyLeft) return;
      const body = c.buf.slice(0, c.bodyLeft);
      c.buf = c.buf.slice(c.bodyLeft);
      c.bodyLeft = -1;
      if (markers(c, body) !== '') fail(c, 'partial marker in a long-poll body');
      lpRequest(c);
      if (c.buf === '') return;
    }
  };

  const open = (spec: ConnSpec, done?: (ok: boolean) => void): void => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const c: Conn = { spec, sock, expected: undefined, buf: '', bodyLeft: -1, closing: false, established: false, openedAt: Date.now() };
    conns.add(c);
    sock.setEncoding('latin1');
    let settled = false;
    const settle = (ok: boolean): void => { if (!settled) { settled = true; done?.(ok); } };
    sock.on('connect', () => {
      if (spec.kind === 'lp') lpRequest(c);
      else sock.write(`GET /${spec.kind}?ch=${spec.ch} HTTP/1.1\r\nHost: soak\r\n\r\n`);
    });
    sock.on('data', (d: string) => {
      onData(c, d);
      if (c.established) settle(true);
    });
    sock.on('error', (e) => { if (!c.closing) fail(c, e.message); });
    sock.on('close', () => {
      conns.delete(c);
      settle(false);
      if (!c.closing) {
        fail(c, 'connection closed by the server');
        // Keep the population steady: a lost client reconnects, as a real one would.
        open(spec);
      }
    });
  };

  const churnTick = (): void => {
    churnAcc += churnPerSec;
    const n = Math.floor(churnAcc);
    churnAcc -= n;
    const list = [...conns];
    for (let k = 0; k < n && list.length > 0; k++) {
      const i = Math.floor(Math.random() * list.length);
      const c = list[i]!;
      list[i] = list[list.length - 1]!;
      list.pop();
      c.closing = true;
      c.sock.destroy();
      churned++;
      open(c.spec);
    }
  };

  process.on('message', (m: ToWorker) => {
    switch (m.cmd) {
      case 'start': {
        port = m.port; localAddress = m.localAddress; churnPerSec = m.churnPerSec;
        let ok = 0; let failed = 0; let next = 0; let pending = 0;
        let finished = false;
        const finish = (): void => {
          if (finished) return;
          finished = true;
          clearTimeout(deadline);
          send({ type: 'connected', ok, failed: m.conns.length - ok });
        };
        const deadline = setTimeout(finish, m.connectDeadlineMs);
        const pump = (): void => {
          while (!finished && pending < MAX_PENDING_CONNECTS && next < m.conns.length) {
            pending++;
            open(m.conns[next++]!, (good) => {
              pending--;
              if (good) ok++; else failed++;
              if (ok + failed >= m.conns.length) finish(); else pump();
            });
          }
        };
        pump();
        if (m.conns.length === 0) finish();
        break;
      }
      case 'churn':
        if (churnTimer !== undefined) clearInterval(churnTimer);
        churnTimer = m.on ? setInterval(churnTick, 1000) : undefined;
        break;
      case 'final': {
        let behind = 0;
        for (const c of conns) {
          const last = m.lastIds[c.spec.ch] ?? 0;
          if (c.expected !== last + 1) {
            behind++;
            if (samples.length < MAX_ERROR_SAMPLES) {
              samples.push(`${c.spec.kind} ${c.spec.ch}: at ${c.expected === undefined ? 'no baseline' : c.expected - 1}, last published ${last}; opened ${Date.now() - c.openedAt} ms ago, head ${c.established ? 'received' : 'not received'}, ${c.buf.length} bytes buffered`);
            }
          }
        }
        send({ type: 'final', delivered, duplicates, gaps, gapsByKind, gapSamples, behind, errors, samples, open: conns.size, churned });
        break;
      }
      case 'exit':
        for (const c of conns) { c.closing = true; c.sock.destroy(); }
        process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// Parent: backend, publisher, RSS sampling, verdict.

/** The backend's view of each channel: the last id published on it. */
type LastIds = Map<string, number>;

function itemMarkers(from: number, to: number, kind: Kind): string {
  let s = '';
  for (let k = from; k <= to; k++) s += kind === 'sse' ? `id: ${k}\ndata: #${k};\n\n` : `#${k};\n`;
  return s;
}

/** A GRIP backend that knows every channel's last id (the publisher shares the map). */
async function startSoakBackend(last: LastIds, counts: { requests: number; nextLinks: number }): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    counts.requests++;
    if (process.env.SOAK_TRACE) process.stderr.write(`${req.url} last=${String(req.headers["grip-last"] ?? "")}\n`);
    const u = new URL(req.url ?? '/', 'http://soak');
    const ch = u.searchParams.get('ch') ?? '';
    const cur = last.get(ch) ?? 0;
    const path = u.pathname;
    if (path === '/lp') {
      const afterText = u.searchParams.get('after');
      if (afterText === null || Number(afterText) < cur) {
        // First poll: the baseline. Behind: what was missed, at once.
        const body = afterText === null ? `^${cur};` : itemMarkers(Number(afterText) + 1, cur, 'lp');
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      // A client may be ahead of this view (gripd delivered an item whose publish request
      // has not returned yet): what it has seen is published, so hold from there.
      const from = Math.max(cur, Number(afterText));
      const body = `^${from};`;
      res.writeHead(200, {
        'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body),
        'Grip-Hold': 'response', 'Grip-Channel': `${ch}; prev-id=${from}`, 'Grip-Timeout': '60',
      });
      res.end(body);
      return;
    }
    if (path === '/stream' || path === '/sse' || path === '/next') {
      const kind: Kind = path === '/next' ? (u.searchParams.get('kind') === 'sse' ? 'sse' : 'stream') : path === '/sse' ? 'sse' : 'stream';
      let body: string;
      if (path === '/next') {
        counts.nextLinks++;
        const m = /last-id=([0-9]+)/.exec(String(req.headers['grip-last'] ?? ''));
        body = m === null ? '' : itemMarkers(Number(m[1]) + 1, cur, kind);
      } else {
        body = kind === 'sse' ? `: ^${cur};\n\n` : `^${cur};\n`;
      }
      res.writeHead(200, {
        'Content-Type': kind === 'sse' ? 'text/event-stream' : 'text/plain',
        'Grip-Hold': 'stream',
        'Grip-Channel': `${ch}; prev-id=${cur}`,
        'Grip-Link': `</next?ch=${ch}&kind=${kind}>; rel=next`,
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Publishes the next id on every channel in one request; resolves false on failure. */
async function publishAll(url: string, channels: Array<{ ch: string; kind: Kind }>, last: LastIds): Promise<string | undefined> {
  const items = channels.map(({ ch, kind }) => {
    const prev = last.get(ch) ?? 0;
    const id = prev + 1;
    const text = itemMarkers(id, id, kind);
    return {
      channel: ch, id: String(id), 'prev-id': String(prev),
      formats: kind === 'lp'
        ? { 'http-response': { body: text } }
        : { 'http-stream': { content: text } },
    };
  });
  try {
    const r = await fetch(`${url}/publish/`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ items }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    // The backend's view advances once gripd has the item, as an application that stores,
    // then publishes: a hold made in between carries the old prev-id and gripd recovers it
    // (long-poll retry, stream next link).
    if (r.status === 200) for (const { ch } of channels) last.set(ch, (last.get(ch) ?? 0) + 1);
    return r.status === 200 ? undefined : `publish answered ${r.status}: ${text.slice(0, 200)}`;
  } catch (err) {
    return `publish failed: ${(err as Error).message}`;
  }
}

function mib(bytes: number): number { return Math.round((bytes / 1048576) * 10) / 10; }

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

/** Runs one soak and reports; never throws for a broken promise (see `ok`). */
export async function runSoak(partial: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o: SoakOptions = { ...DEFAULT_SOAK, ...partial, mix: { ...DEFAULT_SOAK.mix, ...partial.mix } };
  const log = (s: string): void => { if (o.verbose) process.stderr.write(`[soak] ${s}\n`); };
  const failures: string[] = [];
  const last: LastIds = new Map();
  const counts = { requests: 0, nextLinks: 0 };
  const channels: Array<{ ch: string; kind: Kind }> = [];
  for (const kind of ['lp', 'stream', 'sse'] as const) {
    for (let i = 0; i < o.channelsPerKind; i++) channels.push({ ch: `${kind}-${i}`, kind });
  }
  const backend = await startSoakBackend(last, counts);
  let gripd: ProxyServer | undefined;
  const workers: ChildProcess[] = [];
  const report: SoakReport = {
    ok: false, failures, options: o, connected: 0, openAtEnd: 0, churned: 0, publishes: 0, itemsPublished: 0,
    delivered: 0, duplicates: 0, gaps: 0, gapsByKind: { lp: 0, stream: 0, sse: 0 }, gapSamples: [], behindAtEnd: 0, unexpectedErrors: 0, errorSamples: [], rss: [], cpu: [],
    rssAfterWarmupMib: 0, rssEndMib: 0, rssGrowthPct: 0, backendRequests: 0, nextLinks: 0,
  };
  try {
    gripd = await startGripd({
      routes: [`* 127.0.0.1:${backend.port}`],
      raiseRateLimits: true,
      set: [
        `runner.log_level=${process.env['SOAK_GRIPD_LOG_LEVEL'] ?? '1'}`, `runner.client_maxconn=${o.connections * 2 + 1000}`,
        // Off, as in the recorded runs: before long-poll channels lingered (38fb39f) gripd
        // refreshed a channel's sessions on every 0 -> 1 subscriber change, which re-polling
        // long-poll clients caused every second. SOAK_UPDATE_ON_FIRST=1 runs Pushpin's default.
        ...(process.env['SOAK_UPDATE_ON_FIRST'] === '1' ? [] : ['handler.update_on_first_subscription=false']),
      ],
    });
    log(`gripd pid ${gripd.pid} on ${gripd.url}; backend on ${backend.port}`);
    // Every channel starts at id 1, so every hold has a prev-id to recover from.
    const first = await publishAll(gripd.publishUrl, channels, last);
    if (first !== undefined) failures.push(first);

    // Spread connections over kinds, channels and worker processes.
    const total = o.mix.lp + o.mix.stream + o.mix.sse;
    const per: ConnSpec[][] = Array.from({ length: o.clients }, () => []);
    const kindCounts: Record<Kind, number> = {
      lp: Math.round((o.connections * o.mix.lp) / total),
      stream: Math.round((o.connections * o.mix.stream) / total),
      sse: 0,
    };
    kindCounts.sse = o.connections - kindCounts.lp - kindCounts.stream;
    let n = 0;
    for (const kind of ['lp', 'stream', 'sse'] as const) {
      for (let i = 0; i < kindCounts[kind]; i++, n++) per[n % o.clients]!.push({ kind, ch: `${kind}-${i % o.channelsPerKind}` });
    }
    const self = fileURLToPath(import.meta.url);
    const next = (w: ChildProcess, type: FromWorker['type'], ms: number): Promise<FromWorker> =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => { w.off('message', on); reject(new Error(`worker ${w.pid} did not answer '${type}' within ${ms} ms`)); }, ms);
        const on = (m: FromWorker): void => { if (m.type === type) { clearTimeout(t); w.off('message', on); resolve(m); } };
        w.on('message', on);
      });
    for (let i = 0; i < o.clients; i++) {
      workers.push(trackChild(fork(self, ['--soak-worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })));
    }
    const connectDeadlineMs = 60_000 + o.connections * 5;
    const connected = await Promise.all(workers.map((w, i) => {
      const p = next(w, 'connected', connectDeadlineMs + 10_000);
      w.send({
        cmd: 'start', port: gripd!.httpPort, localAddress: `127.0.0.${2 + i}`, conns: per[i]!,
        churnPerSec: (per[i]!.length * o.churnPctPerMin) / 100 / 60, connectDeadlineMs,
      } satisfies ToWorker);
      return p;
    }));
    for (const c of connected) if (c.type === 'connected') report.connected += c.ok;
    log(`${report.connected}/${o.connections} connections established`);
    if (report.connected < o.connections) failures.push(`only ${report.connected} of ${o.connections} connections were established`);

    // Publishing phase: one publish per second, churn on, RSS sampled.
    for (const w of workers) w.send({ cmd: 'churn', on: true } satisfies ToWorker);
    const start = Date.now();
    const endAt = start + o.durationS * 1000;
    let nextSample = start;
    let nextPublish = start;
    let publishErrors = 0;
    const maxTicks = o.durationS * 20 + 100;
    // Churn stops a little before the last publish: a stream that subscribes while a
    // publish is in flight recovers on the next publish, and after the last one there is none.
    const churnStopAt = endAt - Math.min(5000, o.durationS * 100);
    let churning = true;
    for (let tick = 0; tick < maxTicks && Date.now() < endAt; tick++) {
      const now = Date.now();
      if (churning && now >= churnStopAt) {
        churning = false;
        for (const w of workers) w.send({ cmd: 'churn', on: false } satisfies ToWorker);
      }
      if (now >= nextSample) {
        const s = gripd.sample();
        report.rss.push({ t: Math.round((now - start) / 1000), mib: mib(s.rssBytes) });
        report.cpu.push({ t: Math.round((now - start) / 1000), sec: Math.round(s.cpuSec * 10) / 10 });
        nextSample += o.sampleMs;
        if (report.rss.length % 12 === 0) log(`t=${Math.round((now - start) / 1000)}s rss=${mib(s.rssBytes)} MiB publishes=${report.publishes}`);
      }
      if (now >= nextPublish) {
        nextPublish += 1000;
        const err = await publishAll(gripd.publishUrl, channels, last);
        report.publishes++;
        report.itemsPublished += channels.length;
        if (err !== undefined) { publishErrors++; if (report.errorSamples.length < MAX_ERROR_SAMPLES) report.errorSamples.push(err); }
      }
      await sleep(Math.max(1, Math.min(nextPublish, nextSample, endAt) - Date.now()));
    }
    // Let the last publish (and any recovery through next links) reach everyone.
    await sleep(5000);
    const s = gripd.sample();
    report.rss.push({ t: Math.round((Date.now() - start) / 1000), mib: mib(s.rssBytes) });

    const lastIds = Object.fromEntries(last);
    const finals = await Promise.all(workers.map((w) => {
      const p = next(w, 'final', 30_000);
      w.send({ cmd: 'final', lastIds } satisfies ToWorker);
      return p;
    }));
    for (const f of finals) {
      if (f.type !== 'final') continue;
      report.delivered += f.delivered; report.duplicates += f.duplicates; report.gaps += f.gaps;
      report.behindAtEnd += f.behind; report.unexpectedErrors += f.errors; report.openAtEnd += f.open;
      report.churned += f.churned;
      for (const k of ['lp', 'stream', 'sse'] as const) report.gapsByKind[k] += f.gapsByKind[k];
      for (const e of f.gapSamples) if (report.gapSamples.length < MAX_ERROR_SAMPLES) report.gapSamples.push(e);
      for (const e of f.samples) if (report.errorSamples.length < MAX_ERROR_SAMPLES * 2) report.errorSamples.push(e);
    }
    report.unexpectedErrors += publishErrors;
    report.backendRequests = counts.requests;
    report.nextLinks = counts.nextLinks;

    // RSS verdict: median of the first fifth after warm-up against the median of the last fifth.
    const warmupS = o.warmupS ?? o.durationS * 0.2;
    const judged = report.rss.filter((x) => x.t >= warmupS);
    const fifth = Math.max(1, Math.floor(judged.length / 5));
    report.rssAfterWarmupMib = medianOf(judged.slice(0, fifth).map((x) => x.mib));
    report.rssEndMib = medianOf(judged.slice(-fifth).map((x) => x.mib));
    report.rssGrowthPct = report.rssAfterWarmupMib === 0 ? 0
      : Math.round(((report.rssEndMib - report.rssAfterWarmupMib) / report.rssAfterWarmupMib) * 1000) / 10;
    if (judged.length < 2) failures.push('too few RSS samples after warm-up to judge growth');
    else if (report.rssGrowthPct >= o.rssMaxGrowthPct) {
      failures.push(`RSS grew ${report.rssGrowthPct}% after warm-up (${report.rssAfterWarmupMib} -> ${report.rssEndMib} MiB; limit ${o.rssMaxGrowthPct}%)`);
    }
    if (report.duplicates > 0) failures.push(`${report.duplicates} items delivered twice or out of order`);
    if (report.gaps > 0) failures.push(`${report.gaps} items never reached a connected client`);
    if (report.behindAtEnd > 0) failures.push(`${report.behindAtEnd} open connections had not received the last item`);
    if (report.unexpectedErrors > 0) failures.push(`${report.unexpectedErrors} unexpected errors`);
    if (report.openAtEnd < o.connections) failures.push(`${report.openAtEnd} connections open at the end (of ${o.connections})`);
    if (report.delivered === 0) failures.push('no items were delivered');
  } catch (err) {
    failures.push(`soak aborted: ${(err as Error).message}`);
  } finally {
    for (const w of workers) { try { w.send({ cmd: 'exit' } satisfies ToWorker); } catch { /* gone */ } }
    await Promise.all(workers.map((w) => stopChild(w, 'SIGTERM', 3000)));
    if (gripd !== undefined) {
      if (process.env['SOAK_KEEP_LOG'] !== undefined) {
        const { copyFile } = await import('node:fs/promises');
        await copyFile(gripd.logFile, process.env['SOAK_KEEP_LOG']).catch(() => undefined);
      }
      const tail = await gripd.log(4000);
      if (failures.length > 0 && tail.trim() !== '') report.errorSamples.push(`gripd log tail: ${tail.slice(-1500)}`);
      await gripd.stop();
    }
    await backend.close();
  }
  report.ok = failures.length === 0;
  return report;
}

function parseArgs(argv: string[]): Partial<SoakOptions> & { json?: boolean } {
  const out: Partial<SoakOptions> & { json?: boolean } = {};
  const num = (v: string | undefined, name: string): number => {
    const x = Number(v);
    if (v === undefined || !Number.isFinite(x) || x < 0) throw new Error(`${name}: expected a number, got '${v ?? ''}'`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '--connections': out.connections = Math.floor(num(v, a)); i++; break;
      case '--duration-s': out.durationS = num(v, a); i++; break;
      case '--clients': out.clients = Math.max(1, Math.min(200, Math.floor(num(v, a)))); i++; break;
      case '--channels': out.channelsPerKind = Math.max(1, Math.floor(num(v, a))); i++; break;
      case '--churn-pct': out.churnPctPerMin = num(v, a); i++; break;
      case '--rss-max-growth-pct': out.rssMaxGrowthPct = num(v, a); i++; break;
      case '--warmup-s': out.warmupS = num(v, a); i++; break;
      case '--mix': {
        const m = /^lp:(\d+),stream:(\d+),sse:(\d+)$/.exec(v ?? '');
        if (m === null) throw new Error(`--mix: expected lp:N,stream:N,sse:N, got '${v ?? ''}'`);
        out.mix = { lp: Number(m[1]), stream: Number(m[2]), sse: Number(m[3]) };
        i++;
        break;
      }
      case '--json': out.json = true; break;
      case '--quiet': out.verbose = false; break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const r = await runSoak(opts);
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  } else {
    const o = r.options;
    const curve = r.rss.filter((_, i) => i % Math.max(1, Math.floor(r.rss.length / 12)) === 0 || i === r.rss.length - 1)
      .map((x) => `${x.t}s:${x.mib}`).join(' ');
    process.stdout.write([
      `soak: ${o.connections} connections (lp ${o.mix.lp} / stream ${o.mix.stream} / sse ${o.mix.sse}), ${o.durationS} s, churn ${o.churnPctPerMin}%/min, ${o.clients} client processes`,
      `connected ${r.connected}, open at end ${r.openAtEnd}, churned ${r.churned}`,
      `publishes ${r.publishes}, items published ${r.itemsPublished}, delivered ${r.delivered}`,
      `duplicates/reordered ${r.duplicates}, gaps ${r.gaps} (lp ${r.gapsByKind.lp}, stream ${r.gapsByKind.stream}, sse ${r.gapsByKind.sse}), behind at end ${r.behindAtEnd}, unexpected errors ${r.unexpectedErrors}`,
      `backend requests ${r.backendRequests} (next links ${r.nextLinks})`,
      `RSS MiB after warm-up ${r.rssAfterWarmupMib}, end ${r.rssEndMib}, growth ${r.rssGrowthPct}% (limit ${o.rssMaxGrowthPct}%)`,
      `RSS curve (s:MiB): ${curve}`,
      `gripd CPU: ${r.cpu.length > 1 ? Math.round(((r.cpu[r.cpu.length - 1]!.sec - r.cpu[0]!.sec) / Math.max(1, r.cpu[r.cpu.length - 1]!.t - r.cpu[0]!.t)) * 100) : 0}% of one core on average`,
      ...(r.gapSamples.length > 0 ? ['gap samples:', ...r.gapSamples.map((e) => `  ${e}`)] : []),
      ...(r.errorSamples.length > 0 ? ['error samples:', ...r.errorSamples.map((e) => `  ${e}`)] : []),
      r.ok ? 'PASS' : `FAIL: ${r.failures.join('; ')}`,
    ].join('\n') + '\n');
  }
  process.exit(r.ok ? 0 : 1);
}

if (process.argv.includes('--soak-worker')) runWorker();
else if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) void main();
