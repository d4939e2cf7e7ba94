/**
 * Fan-out client worker (forked by fanout.ts). Opens N raw TCP connections from one
 * 127.0.0.x source address, sends one GET each, and counts published markers arriving on
 * the streamed responses, recording publish-to-receive latency per delivery.
 * Raw sockets keep the client's own cost per delivery small and visible.
 */
import net from 'node:net';
import { nowUs, type ParentMessage, type WorkerMessage } from './subscriber-protocol.js';

/** Longest unparsed tail kept per socket; a marker is < 64 bytes, so this bounds memory. */
const MAX_TAIL_CHARS = 256;
/** Bound on response-head bytes before giving up on a connection. */
const MAX_HEAD_BYTES = 16384;
/** Bound on latencies kept per phase (one per delivery), to cap worker memory. */
const MAX_LATENCIES = 2_000_000;

interface Sub { sock: net.Socket; head: string | null; tail: string; warmed: boolean }

const subs: Sub[] = [];
let received = 0;
let warmed = 0;
let lastRecvUs = 0;
let latencies: number[] = [];

function send(m: WorkerMessage): void { process.send?.(m); }

function onBody(s: Sub, text: string, recvUs: number): void {
  let t = s.tail + text;
  let i = t.indexOf('@');
  while (i >= 0) {
    const end = t.indexOf(';', i);
    if (end < 0) break;
    const kind = t.charCodeAt(i + 1);
    const colon = t.indexOf(':', i);
    if (colon > 0 && colon < end) {
      if (kind === 0x6d /* m */) {
        received++;
        lastRecvUs = recvUs;
        if (latencies.length < MAX_LATENCIES) latencies.push(recvUs - Number(t.slice(colon + 1, end)));
      } else if (kind === 0x77 /* w */ && !s.warmed) {
        s.warmed = true;
        warmed++;
      }
    }
    t = t.slice(end + 1);
    i = t.indexOf('@');
  }
  // Keep only what may start a marker split across reads.
  const at = t.lastIndexOf('@');
  s.tail = at >= 0 ? t.slice(at) : '';
  if (s.tail.length > MAX_TAIL_CHARS) s.tail = '';
}

function connectAll(m: Extract<ParentMessage, { cmd: 'connect' }>): void {
  let started = 0; let ok = 0; let failed = 0; let pending = 0; let firstError: string | undefined;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(deadline);
    send({ type: 'connected', ok, failed, ...(firstError ? { firstError } : {}) });
  };
  const deadline = setTimeout(() => { failed += m.count - ok - failed; firstError ??= 'connect deadline passed'; finish(); }, m.deadlineMs);
  const settle = (good: boolean, err?: string) => {
    pending--;
    if (good) ok++; else { failed++; firstError ??= err; }
    if (ok + failed >= m.count) finish(); else pump();
  };
  const reqFor = (k: number) => {
    const p = m.spread ? m.path.replaceAll('{ch}', String((m.spread.indexBase + k) % Math.max(1, m.spread.channels))) : m.path;
    return `GET ${p} HTTP/1.1\r\nHost: ${m.hostHeader}\r\nUser-Agent: gripd-bench\r\n\r\n`;
  };
  const pump = () => {
    while (!done && pending < m.maxPending && started < m.count) {
      const req = reqFor(started);
      started++; pending++;
      const s: Sub = { sock: net.connect({ host: m.host, port: m.port, localAddress: m.localAddress }), head: '', tail: '', warmed: false };
      let settled = false;
      s.sock.setNoDelay(true);
      s.sock.setEncoding('latin1');
      s.sock.on('connect', () => { s.sock.write(req); });
      s.sock.on('data', (d: string) => {
        const recvUs = nowUs();
        if (s.head !== null) {
          s.head += d;
          const end = s.head.indexOf('\r\n\r\n');
          if (end < 0) {
            if (s.head.length > MAX_HEAD_BYTES) s.sock.destroy(new Error('response head too large'));
            return;
          }
          const status = s.head.slice(0, s.head.indexOf('\r\n'));
          const rest = s.head.slice(end + 4);
          s.head = null;
          if (!/^HTTP\/1\.[01] 200 /.test(status)) { s.sock.destroy(); if (!settled) { settled = true; settle(false, status); } return; }
          subs.push(s);
          if (!settled) { settled = true; settle(true); }
          if (rest) onBody(s, rest, recvUs);
          return;
        }
        onBody(s, d, recvUs);
      });
      s.sock.on('error', (e) => { if (!settled) { settled = true; settle(false, e.message); } });
      s.sock.on('close', () => { if (!settled) { settled = true; settle(false, 'closed before response'); } });
    }
  };
  pump();
  if (m.count === 0) finish();
}

process.on('message', (m: ParentMessage) => {
  switch (m.cmd) {
    case 'connect': connectAll(m); break;
    case 'phase': received = 0; lastRecvUs = 0; latencies = []; break;
    case 'status': send({ type: 'status', received, warmed, open: subs.filter((s) => !s.sock.destroyed).length }); break;
    case 'report': send({ type: 'report', received, latenciesUs: latencies, lastRecvUs, open: subs.filter((s) => !s.sock.destroyed).length }); break;
    case 'close':
      for (const s of subs) s.sock.destroy();
      process.exit(0);
  }
});
// Die with the parent.
process.on('disconnect', () => process.exit(0));
