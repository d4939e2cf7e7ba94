import net from 'node:net';

/** Bound on bytes kept from one exchange (protects the diff tool from endless streams). */
const MAX_CAPTURE_BYTES = 4_000_000;
/** Bound on header lines parsed per response. */
const MAX_HEADER_LINES = 500;
/** Bound on responses parsed from one capture (pipelining). */
const MAX_RESPONSES = 20;

/** One HTTP/1.x response parsed from raw bytes. */
export interface RawResponse {
  statusLine: string;
  /** Header fields in wire order, names as sent. */
  headers: Array<[string, string]>;
  /** How the body was delimited: content-length, chunked, close, or none. */
  framing: 'content-length' | 'chunked' | 'close' | 'none';
  /** Decoded body (chunked framing removed). */
  body: Buffer;
  /** False when the bytes ended before the framing said the body was complete. */
  complete: boolean;
}

/** What one raw exchange produced. */
export interface Capture {
  raw: Buffer;
  responses: RawResponse[];
  /** Whether the server closed the connection before we stopped reading. */
  closedByServer: boolean;
  /** Connection error (e.g. ECONNREFUSED, ECONNRESET), if any. */
  error?: string;
  /** Trailing bytes that did not parse as a response. */
  leftover: string;
  /** ms from sending to the first and the last byte received (undefined when none). */
  firstByteMs?: number;
  lastByteMs?: number;
}

function noBody(method: string | undefined, status: number): boolean {
  return method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
}

/**
 * Parses consecutive responses from `buf`. `methods[i]` is the request method of the
 * i-th response (HEAD responses carry no body). `closed` says the connection ended, which
 * completes a close-delimited body.
 */
export function parseResponses(buf: Buffer, methods: string[], closed: boolean): { responses: RawResponse[]; leftover: Buffer } {
  const out: RawResponse[] = [];
  let pos = 0;
  while (pos < buf.length && out.length < MAX_RESPONSES) {
    const headEnd = buf.indexOf('\r\n\r\n', pos, 'latin1');
    if (headEnd < 0) break;
    const lines = buf.subarray(pos, headEnd).toString('latin1').split('\r\n');
    const statusLine = lines[0] ?? '';
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? '0');
    const headers: Array<[string, string]> = [];
    for (const l of lines.slice(1, 1 + MAX_HEADER_LINES)) {
      const c = l.indexOf(':');
      if (c > 0) headers.push([l.slice(0, c), l.slice(c + 1).trim()]);
    }
    const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
    let p = headEnd + 4;
    const method = methods[out.length];
    if (noBody(method, status)) {
      out.push({ statusLine, headers, framing: 'none', body: Buffer.alloc(0), complete: true });
      pos = p;
      continue;
    }
    if ((get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p, 'latin1');
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1').split(';')[0]!.trim(), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          // "0\r\n" then optional trailer lines, then a blank line: the first CRLFCRLF from here ends it.
          const te = buf.indexOf('\r\n\r\n', le, 'latin1');
          if (te >= 0) { p = te + 4; complete = true; }
          break;
        }
        if (le + 2 + size + 2 > buf.length) { parts.push(buf.subarray(le + 2, Math.min(buf.length, le + 2 + size))); p = buf.length; break; }
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      out.push({ statusLine, headers, framing: 'chunked', body: Buffer.concat(parts), complete });
      pos = p;
      if (!complete) break;
      continue;
    }
    const cl = get('content-length');
    if (cl !== undefined) {
      const n = Number(cl);
      const end = Math.min(buf.length, p + (Number.isFinite(n) ? n : 0));
      out.push({ statusLine, headers, framing: 'content-length', body: buf.subarray(p, end), complete: end - p === n });
      pos = end;
      continue;
    }
    out.push({ statusLine, headers, framing: 'close', body: buf.subarray(p), complete: closed });
    pos = buf.length;
  }
  return { responses: out, leftover: buf.subarray(pos) };
}

/** Options for {@link exchange}. */
export interface ExchangeOptions {
  port: number;
  request: Buffer | string;
  /** Request methods, one per expected response (default: first word of the request). */
  methods?: string[];
  /** Stop after this long without bytes once every expected response is complete (default 300). */
  idleMs?: number;
  /** Stop after this long in any case (default 3 000). */
  totalMs?: number;
  /** Called this many ms after sending (e.g. to publish); the read window stays open. */
  during?: { afterMs: number; run: () => Promise<void> };
}

/**
 * Sends raw bytes on a fresh loopback connection and captures what comes back until the
 * server closes, the expected responses are complete and the line goes idle, or totalMs.
 */
export function exchange(o: ExchangeOptions): Promise<Capture> {
  const methods = o.methods ?? [String(o.request).split(' ')[0] ?? 'GET'];
  const idleMs = o.idleMs ?? 300;
  const totalMs = o.totalMs ?? 3000;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let closed = false;
    let error: string | undefined;
    let idle: NodeJS.Timeout | undefined;
    let duringDone = o.during === undefined;
    let sentAt = Date.now();
    let firstByteMs: number | undefined;
    let lastByteMs: number | undefined;
    const sock = net.connect(o.port, '127.0.0.1');
    const finish = () => {
      clearTimeout(total); clearTimeout(idle);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      const { responses, leftover } = parseResponses(raw, methods, closed);
      resolve({
        raw, responses, closedByServer: closed, leftover: leftover.toString('latin1'),
        ...(error ? { error } : {}), ...(firstByteMs !== undefined ? { firstByteMs, lastByteMs: lastByteMs ?? firstByteMs } : {}),
      });
    };
    const total = setTimeout(finish, totalMs);
    const armIdle = () => {
      clearTimeout(idle);
      const { responses } = parseResponses(Buffer.concat(chunks), methods, false);
      if (duringDone && responses.length >= methods.length && responses.every((r) => r.complete)) idle = setTimeout(finish, idleMs);
    };
    sock.on('connect', () => {
      sentAt = Date.now();
      sock.write(o.request);
      if (o.during) {
        const d = o.during;
        setTimeout(() => { void d.run().catch((e: Error) => { error = `during: ${e.message}`; }).finally(() => { duringDone = true; armIdle(); }); }, d.afterMs);
      }
    });
    sock.on('data', (d: Buffer) => {
      lastByteMs = Date.now() - sentAt;
      firstByteMs ??= lastByteMs;
      if (size < MAX_CAPTURE_BYTES) { chunks.push(d); size += d.length; }
      armIdle();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
    sock.on('close', () => { closed = true; finish(); });
  });
}
