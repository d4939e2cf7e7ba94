import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startBackend, type Backend } from '../helpers/backend.js';
import { startHarness, rawRequest, fetchText, type Harness } from './proxy-harness.js';

describe('proxy: invalid and hostile client input', () => {
  let backend: Backend;
  let h: Harness;
  before(async () => {
    backend = await startBackend((_req, res) => { res.end('ok'); });
    h = await startHarness({ routes: [`* 127.0.0.1:${backend.port}`], config: { runner: { clientBufferSize: 4096, clientMaxconn: 3 } } });
  });
  after(async () => { await h.close(); await backend.close(); });

  const cases: Array<[string, string]> = [
    ['Content-Length with Transfer-Encoding', 'POST /s1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different Content-Length headers', 'POST /s2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
    ['a bad chunk size', 'POST /s3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['an obfuscated Transfer-Encoding', 'POST /s4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
    ['a garbage request line', 'GARBAGE\r\n\r\n'],
    ['a header line without colon', 'GET /s5 HTTP/1.1\r\nHost: a\r\nBroken header\r\n\r\n'],
    ['a control character in a header value', 'GET /s6 HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n'],
  ];
  for (const [what, data] of cases) {
    test(`rejects ${what} with 400 and never reaches the backend`, async () => {
      const before = backend.requests.length;
      const reply = await rawRequest(h.port, data);
      assert.match(reply.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.equal(backend.requests.length, before);
    });
  }

  test('answers 431 to a header block over client_buffer_size', async () => {
    const before = backend.requests.length;
    const reply = await rawRequest(h.port, `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
    assert.match(reply.text, /^HTTP\/1\.1 431 /);
    assert.equal(backend.requests.length, before);
  });

  test('a bad request on one connection does not affect another', async () => {
    const bad = rawRequest(h.port, 'GARBAGE\r\n\r\n');
    const good = fetchText(`${h.url}/fine`);
    assert.match((await bad).text, /^HTTP\/1\.1 400/);
    assert.equal((await good).body, 'ok');
  });

  test('client_maxconn: connections beyond the limit are closed and logged', async () => {
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect(h.port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        socks.push(s);
      }
      // Give the server a chance to register the three connections (bounded wait).
      for (let i = 0; i < 100 && h.proxy.connections() < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(h.proxy.connections(), 3);
      const extra = await rawRequest(h.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.equal(extra.text, '');
      assert.equal(extra.closed, true);
      assert.ok(h.logs.some((l) => String(l.msg).includes('client_maxconn')));
    } finally {
      for (const s of socks) s.destroy();
    }
  });
});

describe('proxy: invalid backend responses', () => {
  let bad: net.Server;
  let badPort = 0;
  let h: Harness;
  before(async () => {
    bad = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        const line = d.toString('latin1').split('\r\n')[0] ?? '';
        if (line.includes('/garbage')) s.end('NOT HTTP AT ALL\r\n\r\n');
        else if (line.includes('/badlen')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello');
        else if (line.includes('/short')) { s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'); setTimeout(() => s.destroy(), 50); }
        else s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
    badPort = (bad.address() as net.AddressInfo).port;
    h = await startHarness({ routes: [`* 127.0.0.1:${badPort}`] });
  });
  after(async () => { await h.close(); await new Promise((r) => bad.close(r)); });

  test('a response that is not HTTP gives 502', async () => {
    const r = await fetchText(`${h.url}/garbage`);
    assert.equal(r.status, 502);
    assert.equal(r.body, 'Error while proxying to origin.\n');
  });

  test('conflicting Content-Length from the backend gives 502', async () => {
    const r = await fetchText(`${h.url}/badlen`);
    assert.equal(r.status, 502);
  });

  test('a body cut short after the headers closes the client connection', async () => {
    const reply = await rawRequest(h.port, 'GET /short HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.match(reply.text, /^HTTP\/1\.1 200 OK/);
    assert.equal(reply.closed, true);
  });
});
