/**
 * Requests the differential checker sends to Pushpin and gripd alike. To add a case,
 * append an object: `request` is the raw bytes (build it with `req()`), `publish`
 * optionally publishes to the server under test while the response is being read.
 *
 * Hosts (routes in diff.ts): `bench.test` -> the shared loopback backend,
 * `test.test` -> the built-in test handler, `down.test` -> a port nobody listens on;
 * any other host has no route.
 */

/** One item for the publish API (`{"items":[item]}`). */
export type PublishItem = Record<string, unknown>;

/** A differential case. */
export interface DiffCase {
  name: string;
  request: string;
  /** Methods of the responses expected (default: the request's first word). */
  methods?: string[];
  /** Publish these items this long after sending the request. */
  publish?: { afterMs: number; items: PublishItem[] };
  /** Overall read window, ms (default 3 000). */
  totalMs?: number;
  /** Idle time once responses are complete, ms (default 300). */
  idleMs?: number;
}

/** Builds a raw request: `req('GET', '/x', 'bench.test', { 'X-A': '1' }, body?)`. */
export function req(method: string, path: string, host: string | null, headers: Record<string, string> = {}, body?: string, version = 'HTTP/1.1'): string {
  const lines = [`${method} ${path} ${version}`];
  if (host !== null) lines.push(`Host: ${host}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined && !Object.keys(headers).some((k) => /^(content-length|transfer-encoding)$/i.test(k))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join('\r\n') + '\r\n\r\n' + (body ?? '');
}

const stream = (channel: string, content: string): PublishItem => ({ channel, formats: { 'http-stream': { content } } });
const close = (channel: string): PublishItem => ({ channel, formats: { 'http-stream': { action: 'close' } } });
const response = (channel: string, body: string): PublishItem => ({ channel, formats: { 'http-response': { code: 200, headers: { 'Content-Type': 'text/plain', 'X-Pub': 'yes' }, body } } });

/** The default case list. */
export const DIFF_CASES: DiffCase[] = [
  // Pass-through.
  { name: 'GET small body', request: req('GET', '/hello', 'bench.test') },
  { name: 'HEAD', request: req('HEAD', '/hello', 'bench.test') },
  { name: 'POST content-length body (echo)', request: req('POST', '/echo', 'bench.test', { 'Content-Type': 'text/plain' }, 'hello body') },
  { name: 'POST chunked request body (echo)', request: req('POST', '/echo?x=1', 'bench.test', { 'Transfer-Encoding': 'chunked' }, '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n') },
  { name: 'request headers seen by backend (Grip-*, X-Forwarded-For from client)', request: req('GET', '/echo', 'bench.test', { 'Grip-Sig': 'forged', 'X-Forwarded-For': '10.0.0.1', 'X-Custom': 'kept', Connection: 'keep-alive' }) },
  { name: 'chunked response', request: req('GET', '/chunked', 'bench.test') },
  { name: 'large response 200 kB', request: req('GET', '/big?bytes=200000', 'bench.test') },
  { name: 'response headers (repeated, Set-Cookie, Keep-Alive)', request: req('GET', '/headers', 'bench.test') },
  { name: 'backend 404', request: req('GET', '/status/404', 'bench.test') },
  { name: 'backend 204', request: req('GET', '/status/204', 'bench.test') },
  { name: 'backend 304', request: req('GET', '/status/304', 'bench.test') },
  { name: 'backend 500', request: req('GET', '/status/500', 'bench.test') },
  { name: 'HTTP/1.0 GET', request: req('GET', '/hello', 'bench.test', {}, undefined, 'HTTP/1.0') },
  { name: 'HTTP/1.0 GET of a chunked backend response', request: req('GET', '/chunked', 'bench.test', {}, undefined, 'HTTP/1.0') },
  { name: 'Connection: close', request: req('GET', '/hello', 'bench.test', { Connection: 'close' }) },
  { name: 'two pipelined GETs', request: req('GET', '/hello', 'bench.test') + req('GET', '/status/404', 'bench.test'), methods: ['GET', 'GET'] },
  { name: 'OPTIONS', request: req('OPTIONS', '/hello', 'bench.test') },
  { name: 'absolute-form request target', request: req('GET', 'http://bench.test/hello', 'bench.test') },
  // Errors.
  { name: 'no route for host', request: req('GET', '/', 'nohost.test') },
  { name: 'backend down (connection refused)', request: req('GET', '/', 'down.test') },
  { name: 'invalid GRIP instruction from backend', request: req('GET', '/bad-grip', 'bench.test') },
  { name: 'missing Host on HTTP/1.1', request: req('GET', '/hello', null) },
  { name: 'garbage request line', request: 'GARBAGE\r\n\r\n' },
  { name: 'Content-Length and Transfer-Encoding both (smuggling)', request: req('POST', '/echo', 'bench.test', { 'Content-Length': '4', 'Transfer-Encoding': 'chunked' }, '0\r\n\r\n') },
  { name: 'two different Content-Length values', request: 'POST /echo HTTP/1.1\r\nHost: bench.test\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde' },
  { name: 'oversized request headers (> client_buffer_size 8192)', request: req('GET', '/hello', 'bench.test', { 'X-Big': 'a'.repeat(10000) }) },
  { name: 'Pushpin-Check header', request: req('GET', '/hello', 'bench.test', { 'Pushpin-Check': '1' }) },
  // Built-in test handler.
  { name: 'test handler /', request: req('GET', '/', 'test.test') },
  { name: 'test handler /stream + publish + close', request: req('GET', '/stream?channel=dA', 'test.test'), publish: { afterMs: 500, items: [stream('dA', 'hello\n'), close('dA')] }, totalMs: 2500 },
  { name: 'test handler /response + publish', request: req('GET', '/response?channel=dB', 'test.test'), publish: { afterMs: 500, items: [response('dB', 'published\n')] }, totalMs: 2500 },
  // GRIP via the backend.
  { name: 'GRIP stream hold + 2 publishes + close', request: req('GET', '/stream?channel=dC', 'bench.test'), publish: { afterMs: 500, items: [stream('dC', 'one\n'), stream('dC', 'two\n'), close('dC')] }, totalMs: 2500 },
  { name: 'GRIP stream hold, HTTP/1.0 client', request: req('GET', '/stream?channel=dC10', 'bench.test', {}, undefined, 'HTTP/1.0'), publish: { afterMs: 500, items: [stream('dC10', 'one\n'), close('dC10')] }, totalMs: 2500 },
  { name: 'SSE hold + publish', request: req('GET', '/sse?channel=dS', 'bench.test', { Accept: 'text/event-stream' }), publish: { afterMs: 500, items: [stream('dS', 'data: hi\n\n'), close('dS')] }, totalMs: 2500 },
  { name: 'GRIP long-poll + http-response publish', request: req('GET', '/response?channel=dD', 'bench.test'), publish: { afterMs: 500, items: [response('dD', 'published\n')] }, totalMs: 2500 },
  { name: 'GRIP instruct body long-poll + publish', request: req('GET', '/instruct?channel=dE', 'bench.test'), publish: { afterMs: 500, items: [response('dE', 'via instruct\n')] }, totalMs: 2500 },
  { name: 'GRIP long-poll hold timeout (Grip-Timeout: 1)', request: req('GET', '/response?channel=dF&timeout=1', 'bench.test'), totalMs: 12000 },
  { name: 'GRIP long-poll hold timeout (Grip-Timeout: 6, above the floor)', request: req('GET', '/response?channel=dH&timeout=6', 'bench.test'), totalMs: 12000 },
  { name: 'GRIP instruct hold timeout (timeout 1)', request: req('GET', '/instruct?channel=dG&timeout=1', 'bench.test'), totalMs: 12000 },
];
