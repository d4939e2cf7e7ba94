/**
 * Small helpers for the hardening tests: raw sockets with deadlines, a raw TCP backend
 * that answers with exact bytes, and bounded polling. Every wait has a deadline.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RawReply {
  /** Everything received until the peer closed, `until` matched, or the deadline passed. */
  text: string;
  closed: boolean;
}

/** Sends `data` on a fresh connection and collects the answer (latin1). */
export function rawRequest(port: number, data: string | Buffer | Array<string | Buffer>, opts: { deadlineMs?: number; until?: RegExp } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      for (const d of Array.isArray(data) ? data : [data]) s.write(d);
    });
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), opts.deadlineMs ?? 5000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => { text += d; if (opts.until?.test(text)) finish(false); });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
  });
}

/** A plain GET through gripd with Node's fetch; resolves status and body text. */
export async function get(url: string, init: RequestInit = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.text(), headers: r.headers };
}

/** Publishes items through the HTTP publish API; resolves status and body. */
export async function publish(publishUrl: string, items: unknown[]): Promise<{ status: number; body: string }> {
  const r = await fetch(`${publishUrl}/publish/`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ items }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, body: await r.text() };
}

/** Polls `check` every 20 ms until it is true; throws after `deadlineMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP server that answers each connection through `onData` (raw bytes, no HTTP parsing). */
export interface RawServer {
  port: number;
  /** Request heads received so far (first chunk of each connection). */
  seen: string[];
  close(): Promise<void>;
}

export async function startRawServer(onData: (sock: net.Socket, first: string) => void): Promise<RawServer> {
  const seen: string[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => {
      const first = d.toString('latin1');
      seen.push(first);
      onData(s, first);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }),
  };
}

/**
 * An open streaming response read incrementally: `text()` is everything so far, `wait`
 * resolves once the text matches. Used for held streams.
 */
export interface OpenStream {
  sock: net.Socket;
  text(): string;
  closed(): boolean;
  wait(re: RegExp, deadlineMs?: number): Promise<void>;
  close(): void;
}

export function openStream(port: number, path: string, extraHeaders = ''): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    let isClosed = false;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { buf += d; });
    sock.on('error', () => undefined);
    sock.on('close', () => { isClosed = true; });
    sock.once('connect', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: example.com\r\n${extraHeaders}\r\n`);
      resolve({
        sock,
        text: () => buf,
        closed: () => isClosed,
        wait: (re, deadlineMs = 10_000) => waitFor(`${re} on ${path} (got ${JSON.stringify(buf.slice(-300))})`, () => re.test(buf), deadlineMs),
        close: () => sock.destroy(),
      });
    });
    sock.once('error', reject);
  });
}
