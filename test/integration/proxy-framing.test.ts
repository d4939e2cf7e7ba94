// How relayed bodies are framed for the client, compared with Pushpin: an answer whose
// body is complete when it arrives goes out with Content-Length (as Pushpin sends small
// answers); one that keeps coming streams chunked without waiting for its end.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type Backend } from '../helpers/backend.js';
import { startHarness, rawRequest, parseHead, type Harness } from './proxy-harness.js';

let backend: Backend;
let h: Harness;

before(async () => {
  backend = await startBackend((req, res) => {
    if (req.url === '/small-chunked') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }); // no length: node sends chunked
      res.end('not found\n');
    } else if (req.url === '/slow') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first\n');
      setTimeout(() => res.end('second\n'), 300);
    } else if (req.url === '/empty') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end();
    } else {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '3' });
      res.end('ok\n');
    }
  });
  h = await startHarness({ routes: [`* 127.0.0.1:${backend.port}`] });
});
after(async () => {
  await h.close();
  await backend.close();
});

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n`;

describe('proxy framing', () => {
  test('a small chunked answer reaches the client with Content-Length', async () => {
    const r = parseHead((await rawRequest(h.port, get('/small-chunked'))).text);
    assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
    const names = r.headers.map(([n]) => n.toLowerCase());
    assert.ok(names.includes('content-length'), JSON.stringify(r.headers));
    assert.ok(!names.includes('transfer-encoding'));
    assert.equal(r.body, 'not found\n');
  });

  test('an empty body without a length gets Content-Length: 0', async () => {
    const r = parseHead((await rawRequest(h.port, get('/empty'))).text);
    assert.deepEqual(r.headers.find(([n]) => n.toLowerCase() === 'content-length'), ['Content-Length', '0']);
    assert.equal(r.body, '');
  });

  test('a body that keeps coming streams chunked, its first part before the end', async () => {
    const first = await rawRequest(h.port, get('/slow'), { until: /first\n/ });
    const head = parseHead(first.text);
    assert.ok(head.headers.some(([n, v]) => n.toLowerCase() === 'transfer-encoding' && v === 'chunked'));
    assert.ok(!first.text.includes('second'), 'the first part arrived before the backend finished');
    const whole = await rawRequest(h.port, get('/slow'));
    assert.equal(parseHead(whole.text).body, '6\r\nfirst\n\r\n7\r\nsecond\n\r\n0\r\n\r\n');
  });

  test('a Content-Length answer is relayed as it is', async () => {
    const r = parseHead((await rawRequest(h.port, get('/len'))).text);
    assert.deepEqual(r.headers.find(([n]) => n.toLowerCase() === 'content-length'), ['Content-Length', '3']);
    assert.equal(r.body, 'ok\n');
  });
});
