/**
 * Byte-level helpers for writing held responses straight to client sockets. Pure.
 */
import type { GripResponse } from '../grip/types.js';

const CRLF = Buffer.from('\r\n');
/** The chunk that ends a chunked body. */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/**
 * Frames `data` as one HTTP/1.1 chunk: `hex(len)\r\n<data>\r\n`, in one Buffer so a
 * publish encodes it once and every subscriber socket writes the same bytes.
 * Empty data yields an empty Buffer (an empty chunk would end the body).
 */
export function encodeChunk(data: Buffer): Buffer {
  if (data.length === 0) return Buffer.alloc(0);
  const head = data.length.toString(16);
  const out = Buffer.allocUnsafe(head.length + 2 + data.length + 2);
  out.write(head, 0, 'latin1');
  let at = head.length;
  CRLF.copy(out, at);
  at += 2;
  data.copy(out, at);
  at += data.length;
  CRLF.copy(out, at);
  return out;
}

/** True when a header pair would break the response framing (CR, LF or NUL inside). */
export function isUnsafeHeader(name: string, value: string): boolean {
  return /[\r\n\0]/.test(name) || /[\r\n\0]/.test(value) || name === '';
}

/** Headers gripd frames itself on stream holds, so the backend's copies are dropped. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/**
 * The status line and headers of a stream hold, as Pushpin sends them: the backend's
 * headers minus framing ones, then `Connection: Transfer-Encoding` and
 * `Transfer-Encoding: chunked` for HTTP/1.1 clients, or nothing more for HTTP/1.0
 * clients (the body then ends when the connection closes).
 */
export function formatStreamHead(resp: GripResponse, http10: boolean): Buffer {
  let s = `HTTP/${http10 ? '1.0' : '1.1'} ${resp.code} ${resp.reason}\r\n`;
  for (const [name, value] of resp.headers) {
    if (FRAMING_HEADERS.has(name.toLowerCase()) || isUnsafeHeader(name, value)) continue;
    s += `${name}: ${value}\r\n`;
  }
  if (!http10) s += 'Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n';
  s += '\r\n';
  return Buffer.from(s, 'latin1');
}
