/**
 * Soak test: holds many client connections on one gripd (mixed long-poll, HTTP stream,
 * SSE and WebSocket-over-HTTP), churns a share of them every minute, publishes one item
 * per channel every second and checks that gripd neither leaks memory nor loses,
 * duplicates or reorders an item.
 *
 *   node dist/bench/soak.js [--connections 10000] [--duration-s 600] [--clients 4]
 *     [--channels 50] [--churn-pct 10] [--mix lp:10,stream:30,sse:30,ws:30]
 *     [--rss-max-growth-pct 5] [--warmup-s N] [--workers N] [--json]
 *
 * How delivery is checked: every item carries its per-channel id (`#<id>;`); every hold
 * is made with `prev-id` and a next link, so gripd recovers an item published while a
 * client was (re)subscribing through the backend (the long-poll retry or the stream's
 * next link), exactly as an application would. A client connection checks each id is
 * its predecessor + 1 from the baseline the backend gave it (`^<id>;`), and at the end
 * that it reached the last id published on its channel. A WebSocket has no prev-id: the
 * backend answers its OPEN with the baseline and a subscribe, and an item published while
 * that subscribe was on its way (the first item after the baseline jumps ahead) is asked
 * for again over the socket (`range:a-b`), as an application would; such recoveries are
 * counted and reported, and any later jump is a gap. Exit status: 0 when every promise
 * held, 1 otherwise, 2 on bad options.
 *
 * Diagnosis: SOAK_TRACE_FILE=FILE writes every backend decision and publish (with ms
 * timestamps) to FILE; gap samples carry the time, how the item came (`via publish` or
 * `via backend`) and the prev-id the hold was made with.
 *
 * The same file is the client worker (forked with --soak-worker): one process per
 * 127.0.0.x source address, so no process needs more than ~connections/clients fds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createWriteStream, type WriteStream } from 'node:fs';
import WebSocket from 'ws';
import { decodeEvents, encodeEvents, type WsEvent } from '../src/websocket/events.js';
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
  /** Relative weights of long-poll, stream, SSE and WebSocket connections. */
  mix: Record<Kind, number>;
  /** Largest allowed RSS growth from the end of warm-up to the end, in percent. */
  rssMaxGrowthPct: number;
  /** Warm-up in seconds (RSS samples before it are not judged); default 20% of the duration. */
  warmupS?: number;
  /** RSS sampling interval in ms. */
  sampleMs: number;
  /** Progress lines on stderr. */
  verbose: boolean;
  /** gripd's `[proxy] workers` (default: gripd's own, one per CPU). */
  workers: number;
}

export const DEFAULT_SOAK: SoakOptions = {
  connections: 10_000,
  durationS: 600,
  clients: 4,
  channelsPerKind: 50,
  churnPctPerMin: 10,
  mix: { lp: 10, stream: 30, sse: 30, ws: 30 },
  rssMaxGrowthPct: 5,
  sampleMs: 5000,
  verbose: true,
  workers: availableParallelism(),
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
  /** WebSockets that asked the backend for items published while they subscribed. */
  wsRecoveries: number;
  /** Items a new WebSocket got that its baseline already covered (skipped, not counted as duplicates). */
  wsStartupSkips: number;
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

export type Kind = 'lp' | 'stream' | 'sse' | 'ws';
const KINDS: readonly Kind[] = ['lp', 'stream', 'sse', 'ws'];
interface ConnSpec { kind: Kind; ch: string }
type ToWorker =
  | { cmd: 'start'; port: number; localAddress: string; conns: ConnSpec[]; churnPerSec: number; connectDeadlineMs: number }
  | { cmd: 'churn'; on: boolean }
  | { cmd: 'final'; lastIds: Record<string, number> }
  | { cmd: 'exit' };
type FromWorker =
  | { type: 'connected'; ok: number; failed: number }
  | { type: 'final'; delivered: number; duplicates: number; gaps: number; gapsByKind: Record<Kind, number>; gapSamples: string[]; behind: number; errors: number; samples: string[]; open: number; churned: number; wsRecoveries: number; wsStartupSkips: number };

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
  /** HTTP kinds: the raw socket. */
  sock?: net.Socket;
  /** WebSocket kind: the client. */
  ws?: WebSocket;
  /** WebSocket: no item accepted since the baseline yet. */
  wsFresh: boolean;
  /** WebSocket: items held back while a `range:` recovery is answered. */
  wsQueue: number[] | undefined;
  /** Long-poll: how the current answer came (X-Soak-Via) and the hold's prev-id (X-Soak-Hold). */
  via: string;
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
  const gapsByKind: Record<Kind, number> = { lp: 0, stream: 0, sse: 0, ws: 0 };
  let wsRecoveries = 0; let wsStartupSkips = 0;
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
          if (gapSamples.length < MAX_ERROR_SAMPLES) gapSamples.push(`${new Date().toISOString()} ${c.spec.kind} ${c.spec.ch} ${localAddress}: expected ${c.expected}, got ${id} (${Date.now() - c.openedAt} ms after connect${c.via === '' ? '' : `, ${c.via}`})`);
        }
        if (id >= c.expected) c.expected = id + 1;
      }
      i = end + 1;
    }
  };

  const lpRequest = (c: Conn): void => {
    const after = c.expected === undefined ? '' : `&after=${c.expected - 1}`;
    c.sock!.write(`GET /lp?ch=${c.spec.ch}${after} HTTP/1.1\r\nHost: soak\r\n\r\n`);
  };

  /** Closes a connection of any kind at once. */
  const kill = (c: Conn): void => {
    if (c.sock !== undefined) c.sock.destroy();
    else c.ws?.terminate();
  };

  /** One WebSocket text message: `^N;` baseline, `R#a;...` recovery answer, `#id;` item. */
  const onWsMessage = (c: Conn, text: string): void => {
    if (text.startsWith('R')) {
      markers(c, text.slice(1));
      const q = c.wsQueue ?? [];
      c.wsQueue = undefined;
      for (const id of q) markers(c, `#${id};`);
      return;
    }
    const m = /^#(\d+);$/.exec(text);
    if (m === null || c.expected === undefined) {
      markers(c, text);
      return;
    }
    const id = Number(m[1]);
    if (c.wsQueue !== undefined) {
      c.wsQueue.push(id);
      return;
    }
    if (c.wsFresh) {
      if (id < c.expected) {
        // Published before the baseline was taken, delivered after the subscribe.
        wsStartupSkips++;
        return;
      }
      c.wsFresh = false;
      if (id > c.expected) {
        // Published while the subscribe was on its way: ask the backend for the rest.
        wsRecoveries++;
        c.wsQueue = [id];
        c.ws!.send(`range:${c.expected}-${id - 1}`);
        return;
      }
    }
    markers(c, text);
  };

  const openWs = (spec: ConnSpec, done?: (ok: boolean) => void): void => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?ch=${spec.ch}`, { localAddress, perMessageDeflate: false });
    const c: Conn = { spec, ws, wsFresh: true, wsQueue: undefined, via: '', expected: undefined, buf: '', bodyLeft: -1, closing: false, established: false, openedAt: Date.now() };
    conns.add(c);
    let settled = false;
    const settle = (ok: boolean): void => { if (!settled) { settled = true; done?.(ok); } };
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (isBinary) { fail(c, 'binary message'); return; }
      onWsMessage(c, String(data));
      if (c.expected !== undefined) {
        c.established = true;
        settle(true);
      }
    });
    ws.on('unexpected-response', (_req, res) => { fail(c, `handshake answered ${res.statusCode}`); c.closing = true; ws.terminate(); });
    ws.on('error', (e) => { if (!c.closing) fail(c, `${e.message} (${c.established ? 'subscribed' : 'not subscribed'}, ${Date.now() - c.openedAt} ms after connect)`); });
    ws.on('close', (code: number) => {
      conns.delete(c);
      settle(false);
      if (!c.closing) {
        fail(c, `closed by the server with ${code} ${Date.now() - c.openedAt} ms after connect`);
        open(spec);
      }
    });
  };

  const onData = (c: Conn, d: string): void => {
    c.buf += d;
    for (let guard = 0; guard < 1000; guard++) {
      if (c.bodyLeft < 0) {
        const end = c.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (c.buf.length > MAX_CLIENT_BUFFER) { fail(c, 'response head too large'); kill(c); }
          return;
        }
        const head = c.buf.slice(0, end);
        c.buf = c.buf.slice(end + 4);
        const status = head.slice(0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 200 /.test(status)) { fail(c, `status ${status}`); c.closing = true; kill(c); return; }
        if (c.spec.kind === 'lp') {
          const via = /\r\nx-soak-via:\s*(\S+)/i.exec(head)?.[1] ?? 'hold timeout';
          const hold = /\r\nx-soak-hold:\s*(\S+)/i.exec(head)?.[1];
          c.via = `via ${via}${hold === undefined ? '' : `, held with prev-id ${hold}`}`;
        }
        c.established = true;
        if (c.spec.kind !== 'lp') { c.bodyLeft = Infinity; continue; }
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (m === null) { fail(c, 'long-poll answer without Content-Length'); c.closing = true; kill(c); return; }
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
    if (spec.kind === 'ws') {
      openWs(spec, done);
      return;
    }
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const c: Conn = { spec, sock, wsFresh: false, wsQueue: undefined, via: '', expected: undefined, buf: '', bodyLeft: -1, closing: false, established: false, openedAt: Date.now() };
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
    sock.on('error', (e) => { if (!c.closing) fail(c, `${e.message} (${c.established ? 'head received' : 'no head yet'}, ${Date.now() - c.openedAt} ms after connect)`); });
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
      kill(c);
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
        send({ type: 'final', delivered, duplicates, gaps, gapsByKind, gapSamples, behind, errors, samples, open: conns.size, churned, wsRecoveries, wsStartupSkips });
        break;
      }
      case 'exit':
        for (const c of conns) { c.closing = true; kill(c); }
        process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// Parent: backend, publisher, RSS sampling, verdict.

/** The backend's view of each channel: the last id published on it. */
type LastIds = Map<string, number>;

/** Backend decisions and publishes, one line each with a ms timestamp (SOAK_TRACE_FILE). */
let trace: WriteStream | undefined;
function traceLine(line: string): void {
  trace?.write(`${Date.now()} ${line}\n`);
}

function itemMarkers(from: number, to: number, kind: Kind): string {
  let s = '';
  for (let k = from; k <= to; k++) s += kind === 'sse' ? `id: ${k}\ndata: #${k};\n\n` : kind === 'ws' ? `#${k};` : `#${k};\n`;
  return s;
}

/**
 * The WebSocket-over-HTTP side of the backend: OPEN is answered with the baseline and a
 * subscribe (grip extension, so messages carry `m:`); `range:a-b` from a client with the
 * items a..b, prefixed `R`.
 */
function answerWsEvents(ch: string, cur: number, body: Buffer, res: http.ServerResponse): void {
  let events: WsEvent[];
  try {
    events = decodeEvents(body);
  } catch (err) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end(`bad events: ${(err as Error).message}\n`);
    return;
  }
  const out: WsEvent[] = [];
  let opened = false;
  for (const e of events) {
    if (e.type === 'OPEN') {
      opened = true;
      traceLine(`ws ${ch} open cur=${cur}`);
      out.push({ type: 'OPEN' });
      out.push({ type: 'TEXT', content: Buffer.from(`m:^${cur};`) });
      out.push({ type: 'TEXT', content: Buffer.from(`c:${JSON.stringify({ type: 'subscribe', channel: ch })}`) });
    } else if (e.type === 'TEXT') {
      const m = /^range:(\d+)-(\d+)$/.exec(e.content.toString());
      if (m === null) continue;
      traceLine(`ws ${ch} range ${m[1]}-${m[2]} cur=${cur}`);
      out.push({ type: 'TEXT', content: Buffer.from(`m:R${itemMarkers(Number(m[1]), Math.min(Number(m[2]), cur), 'ws')}`) });
    } else if (e.type === 'CLOSE') {
      out.push({ type: 'CLOSE', code: e.code ?? 1000 });
    }
  }
  res.writeHead(200, {
    'Content-Type': 'application/websocket-events',
    ...(opened ? { 'Sec-WebSocket-Extensions': 'grip' } : {}),
  });
  res.end(encodeEvents(out));
}

/** A GRIP backend that knows every channel's last id (the publisher shares the map). */
async function startSoakBackend(last: LastIds, counts: { requests: number; nextLinks: number }): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    counts.requests++;
    const u = new URL(req.url ?? '/', 'http://soak');
    const ch = u.searchParams.get('ch') ?? '';
    const cur = last.get(ch) ?? 0;
    const path = u.pathname;
    if (path === '/ws') {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => answerWsEvents(ch, last.get(ch) ?? 0, Buffer.concat(chunks), res));
      return;
    }
    if (path === '/lp') {
      const afterText = u.searchParams.get('after');
      if (afterText === null || Number(afterText) < cur) {
        // First poll: the baseline. Behind: what was missed, at once.
        const body = afterText === null ? `^${cur};` : itemMarkers(Number(afterText) + 1, cur, 'lp');
        traceLine(`lp ${ch} after=${afterText ?? '-'} cur=${cur} answer`);
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), 'X-Soak-Via': 'backend' });
        res.end(body);
        return;
      }
      // A client may be ahead of this view (gripd delivered an item whose publish request
      // has not returned yet): what it has seen is published, so hold from there.
      const from = Math.max(cur, Number(afterText));
      const body = `^${from};`;
      traceLine(`lp ${ch} after=${afterText} cur=${cur} hold prev-id=${from} last=${String(req.headers['grip-last'] ?? '')}`);
      res.writeHead(200, {
        'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body),
        'Grip-Hold': 'response', 'Grip-Channel': `${ch}; prev-id=${from}`, 'Grip-Timeout': '60',
        'X-Soak-Hold': String(from),
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
        traceLine(`${kind} ${ch} next last=${m?.[1] ?? '-'} cur=${cur}`);
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
        ? { 'http-response': { body: text, headers: { 'X-Soak-Via': 'publish' } } }
        : kind === 'ws' ? { 'ws-message': { content: text } } : { 'http-stream': { content: text } },
    };
  });
  traceLine(`publish ${items[0]?.id ?? '-'} start`);
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
    traceLine(`publish ${items[0]?.id ?? '-'} end ${r.status}`);
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
  if (process.env['SOAK_TRACE_FILE'] !== undefined) trace = createWriteStream(process.env['SOAK_TRACE_FILE']);
  const log = (s: string): void => { if (o.verbose) process.stderr.write(`[soak] ${s}\n`); };
  const failures: string[] = [];
  const last: LastIds = new Map();
  const counts = { requests: 0, nextLinks: 0 };
  const channels: Array<{ ch: string; kind: Kind }> = [];
  for (const kind of KINDS) {
    if (o.mix[kind] > 0) for (let i = 0; i < o.channelsPerKind; i++) channels.push({ ch: `${kind}-${i}`, kind });
  }
  const backend = await startSoakBackend(last, counts);
  let gripd: ProxyServer | undefined;
  const workers: ChildProcess[] = [];
  const report: SoakReport = {
    ok: false, failures, options: o, connected: 0, openAtEnd: 0, churned: 0, publishes: 0, itemsPublished: 0,
    delivered: 0, duplicates: 0, gaps: 0, gapsByKind: { lp: 0, stream: 0, sse: 0, ws: 0 }, gapSamples: [], behindAtEnd: 0, wsRecoveries: 0, wsStartupSkips: 0, unexpectedErrors: 0, errorSamples: [], rss: [], cpu: [],
    rssAfterWarmupMib: 0, rssEndMib: 0, rssGrowthPct: 0, backendRequests: 0, nextLinks: 0,
  };
  try {
    gripd = await startGripd({
      routes: [`*,path_beg=/ws 127.0.0.1:${backend.port},over_http`, `* 127.0.0.1:${backend.port}`],
      raiseRateLimits: true,
      workers: o.workers,
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
    const total = KINDS.reduce((a, k) => a + o.mix[k], 0);
    const per: ConnSpec[][] = Array.from({ length: o.clients }, () => []);
    const kindCounts: Record<Kind, number> = { lp: 0, stream: 0, sse: 0, ws: 0 };
    let assigned = 0;
    const weighted = KINDS.filter((k) => o.mix[k] > 0);
    for (const kind of weighted) {
      kindCounts[kind] = kind === weighted[weighted.length - 1] ? o.connections - assigned : Math.round((o.connections * o.mix[kind]) / total);
      assigned += kindCounts[kind];
    }
    let n = 0;
    for (const kind of KINDS) {
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
      report.wsRecoveries += f.wsRecoveries; report.wsStartupSkips += f.wsStartupSkips;
      for (const k of KINDS) report.gapsByKind[k] += f.gapsByKind[k];
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
    if (trace !== undefined) await new Promise<void>((r) => trace!.end(() => r()));
    trace = undefined;
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
        const m = /^lp:(\d+),stream:(\d+),sse:(\d+)(?:,ws:(\d+))?$/.exec(v ?? '');
        if (m === null) throw new Error(`--mix: expected lp:N,stream:N,sse:N[,ws:N], got '${v ?? ''}'`);
        out.mix = { lp: Number(m[1]), stream: Number(m[2]), sse: Number(m[3]), ws: Number(m[4] ?? 0) };
        i++;
        break;
      }
      case '--workers': out.workers = Math.max(1, Math.floor(num(v, a))); i++; break;
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
      `soak: ${o.connections} connections (lp ${o.mix.lp} / stream ${o.mix.stream} / sse ${o.mix.sse} / ws ${o.mix.ws}), ${o.durationS} s, churn ${o.churnPctPerMin}%/min, ${o.clients} client processes, gripd workers ${o.workers}`,
      `connected ${r.connected}, open at end ${r.openAtEnd}, churned ${r.churned}`,
      `publishes ${r.publishes}, items published ${r.itemsPublished}, delivered ${r.delivered}`,
      `duplicates/reordered ${r.duplicates}, gaps ${r.gaps} (lp ${r.gapsByKind.lp}, stream ${r.gapsByKind.stream}, sse ${r.gapsByKind.sse}, ws ${r.gapsByKind.ws}), behind at end ${r.behindAtEnd}, unexpected errors ${r.unexpectedErrors}`,
      `WebSocket recoveries through the backend ${r.wsRecoveries}, startup items skipped ${r.wsStartupSkips}`,
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
