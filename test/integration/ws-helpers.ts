/**
 * Helpers for the WebSocket integration tests: a scriptable WebSocket-over-HTTP backend,
 * a `ws` client that records what it sees, and waiting with deadlines.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';

export { waitFor } from '../helpers/wait.js';

export interface WohRequest {
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  url: string;
}

export interface WohReply {
  status?: number;
  headers?: Record<string, string>;
  /** Body as latin1 text (events); default '' */
  body?: string;
  /** Never answer (a hanging backend). */
  hang?: boolean;
}

/** Encodes events the way a backend would write them. */
export function ev(type: string, content?: string | Buffer): string {
  if (content === undefined) return `${type}\r\n`;
  const b = typeof content === 'string' ? Buffer.from(content) : content;
  return `${type} ${b.length.toString(16)}\r\n${b.toString('latin1')}\r\n`;
}

export const OPEN_GRIP: WohReply = { headers: { 'Sec-WebSocket-Extensions': 'grip' }, body: ev('OPEN') };

export interface WohBackend {
  port: number;
  requests: WohRequest[];
  /** Bodies of requests for a connection id, in order. */
  bodies(cid?: string): string[];
  close(): Promise<void>;
}

/** A loopback WebSocket-over-HTTP backend answering with `respond(request)`. */
export async function startWohBackend(respond: (r: WohRequest) => WohReply, port = 0): Promise<WohBackend> {
  const requests: WohRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: WohRequest = { headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1'), url: req.url ?? '' };
      requests.push(r);
      const out = respond(r);
      if (out.hang === true) return;
      const body = Buffer.from(out.body ?? '', 'latin1');
      res.writeHead(out.status ?? 200, { 'Content-Type': 'application/websocket-events', ...out.headers, 'Content-Length': String(body.length) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    bodies: (cid) => requests.filter((r) => cid === undefined || r.headers['connection-id'] === cid).map((r) => r.body),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export interface Client {
  ws: WebSocket;
  messages: Array<{ data: Buffer; binary: boolean }>;
  texts(): string[];
  closed: Promise<{ code: number; reason: string }>;
  opened: Promise<http.IncomingMessage>;
  rejected: Promise<{ status: number; body: string }>;
}

/** Opens a `ws` client that records messages, close and handshake rejection. */
export function connect(url: string, protocols?: string[]): Client {
  const ws = new WebSocket(url, protocols);
  const messages: Client['messages'] = [];
  ws.on('message', (data, binary) => messages.push({ data: data as Buffer, binary }));
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  const opened = new Promise<http.IncomingMessage>((r) => ws.on('upgrade', (res) => r(res)));
  const rejected = new Promise<{ status: number; body: string }>((r) => {
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => r({ status: res.statusCode ?? 0, body }));
    });
  });
  return { ws, messages, texts: () => messages.map((m) => m.data.toString()), closed, opened, rejected };
}

/** Publishes items through gripd's HTTP publish API. */
export async function publish(publishUrl: string, items: unknown[]): Promise<void> {
  const r = await fetch(`${publishUrl}/publish/`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ items }) });
  if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${await r.text()}`);
}
