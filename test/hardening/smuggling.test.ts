/**
 * HTTP request smuggling and malformed HTTP, as a table: each ambiguous or malformed
 * request from a client is refused with 400 before anything reaches a backend, and each
 * malformed backend response gives the client a 502 (or a closed connection once the
 * head went out), never bytes the backend smuggled after its answer.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { rawRequest, startRawServer, get, type RawServer } from './util.js';

/** [what, raw request]: every one must get 400 and never reach the backend. */
export const CLIENT_CASES: Array<[string, string]> = [
  ['Content-Length with Transfer-Encoding', 'POST /c1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['Transfer-Encoding before Content-Length', 'POST /c2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'],
  ['two different Content-Length headers', 'POST /c3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
  ['a Content-Length list', 'POST /c4 HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd'],
  ['a negative Content-Length', 'POST /c5 HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n'],
  ['a Content-Length with a plus sign', 'POST /c6 HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc'],
  ['a hex Content-Length', 'POST /c7 HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc'],
  ['Transfer-Encoding: chunked, identity', 'POST /c8 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
  ['an obfuscated Transfer-Encoding', 'POST /c9 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ['Transfer-Encoding with a space before the colon', 'POST /c10 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
  ['obs-fold (a continuation line)', 'GET /c11 HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n'],
  ['an obs-folded Transfer-Encoding', 'POST /c12 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'],
  ['a bad chunk size', 'POST /c13 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ['a chunk size that overflows', 'POST /c14 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n'],
  ['a chunk without its CRLF', 'POST /c15 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n'],
  ['bare LF line endings in the head', 'GET /c16 HTTP/1.1\nHost: a\nX-A: b\n\n'],
  ['a bare CR in a header value', 'GET /c17 HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n'],
  ['a header name with a space', 'GET /c18 HTTP/1.1\r\nHost: a\r\nX Bad: b\r\n\r\n'],
  ['a header line without a colon', 'GET /c19 HTTP/1.1\r\nHost: a\r\nBroken header\r\n\r\n'],
  ['a NUL byte in a header value', 'GET /c20 HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n'],
  ['a NUL byte in the request target', 'GET /c21\x00x HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a NUL byte in a header name', 'GET /c22 HTTP/1.1\r\nHost: a\r\nX-\x00A: b\r\n\r\n'],
  ['a control character in a header value', 'GET /c23 HTTP/1.1\r\nHost: a\r\nX-A: a\x01b\r\n\r\n'],
  ['a garbage request line', 'GARBAGE\r\n\r\n'],
  ['an unknown HTTP version', 'GET /c24 HTTP/9.9\r\nHost: a\r\n\r\n'],
  ['a space inside the request target', 'GET /c25 x HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['a request line with a tab separator', 'GET\t/c26 HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['two Host headers (regression: gripd forwarded it, routing on the first)', 'GET /c27 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
];

describe('hardening: malformed and ambiguous client requests', () => {
  let backend: Backend;
  let g: GripdInstance;
  before(async () => {
    backend = await startBackend((_req, res) => { res.end('ok'); });
    g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  });
  after(async () => { await g.stop(); await backend.close(); });

  for (const [what, data] of CLIENT_CASES) {
    test(`smuggling: ${what} -> 400, never reaches the backend`, async () => {
      const before = backend.requests.length;
      const reply = await rawRequest(g.httpPort, data);
      assert.match(reply.text, /^HTTP\/1\.1 400 /, `got ${JSON.stringify(reply.text.slice(0, 200))}`);
      // A second request on the same connection must never have been read.
      assert.equal((reply.text.match(/HTTP\/1\.1 /g) ?? []).length, 1);
      const ok = await get(`${g.url}/after`);
      assert.equal(ok.body, 'ok');
      assert.equal(backend.requests.filter((r) => r.url !== '/after').length, before - backend.requests.slice(0, before).filter((r) => r.url === '/after').length);
    });
  }

  test('smuggling: a CL.TE pipelined attack cannot make gripd forward a second request', async () => {
    const before = backend.requests.length;
    // With Content-Length honoured the body is "0\r\n\r\nGET /smuggled…"; with TE it would be a second request.
    const body = '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
    const reply = await rawRequest(g.httpPort, `POST /front HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    assert.match(reply.text, /^HTTP\/1\.1 400 /);
    assert.ok(!backend.requests.slice(before).some((r) => r.url.includes('smuggled') || r.url === '/front'));
  });

  test('smuggling: the request gripd forwards carries exactly one unambiguous length', async () => {
    const before = backend.requests.length;
    const reply = await rawRequest(g.httpPort, 'POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', { until: /ok$/ });
    assert.match(reply.text, /^HTTP\/1\.1 200 /);
    const seen = backend.requests.slice(before).find((r) => r.url === '/chunked');
    assert.ok(seen !== undefined);
    assert.equal(seen.body.toString(), 'abc');
    assert.ok(!(seen.headers['content-length'] !== undefined && seen.headers['transfer-encoding'] !== undefined), 'both CL and TE forwarded');
  });
});

/** [what, path, raw response]: each is a malformed answer from the backend. */
export const BACKEND_CASES: Array<[string, string]> = [
  ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['two different Content-Length headers', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
  ['obs-fold in a header', 'HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok'],
  ['a header name with a space', 'HTTP/1.1 200 OK\r\nX Bad: b\r\nContent-Length: 2\r\n\r\nok'],
  ['a NUL byte in a header value', 'HTTP/1.1 200 OK\r\nX-A: b\x00c\r\nContent-Length: 2\r\n\r\nok'],
  ['a status line that is not HTTP', 'NOT HTTP AT ALL\r\n\r\n'],
  ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok'],
];

describe('hardening: malformed backend responses', () => {
  let raw: RawServer;
  let g: GripdInstance;
  const byPath = new Map<string, string>();
  before(async () => {
    raw = await startRawServer((s, first) => {
      const path = first.split(' ')[1] ?? '';
      const answer = byPath.get(path);
      if (answer !== undefined) {
        // The smuggled second response must never reach a client.
        s.end(answer + 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED');
      } else {
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nplain!');
      }
    });
    g = await startGripd({ routes: [`* 127.0.0.1:${raw.port}`] });
  });
  after(async () => { await g.stop(); await raw.close(); });

  BACKEND_CASES.forEach(([what, answer], i) => {
    byPath.set(`/b${i}`, answer);
    test(`smuggling: backend sends ${what} -> 502 or a closed connection, never the smuggled bytes`, async () => {
      // Two pipelined requests on one client connection: the second must not get the smuggled answer.
      const reply = await rawRequest(g.httpPort, `GET /b${i} HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n`, { deadlineMs: 5000, until: /plain!/ });
      assert.ok(!reply.text.includes('SMUGGLED'), `smuggled bytes reached the client: ${JSON.stringify(reply.text.slice(0, 400))}`);
      const first = reply.text.slice(0, reply.text.indexOf('\r\n'));
      assert.ok(first === '' || first.startsWith('HTTP/1.1 502 ') || reply.closed, `unexpected ${JSON.stringify(first)}`);
      if (first.startsWith('HTTP/1.1 502 ')) assert.ok(true);
      const ok = await get(`${g.url}/fine`);
      assert.equal(ok.body, 'plain!');
    });
  });
});
