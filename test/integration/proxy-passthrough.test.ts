import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { startBackend, type Backend } from '../helpers/backend.js';
import { startHarness, fetchText, rawRequest, parseHead, type Harness } from './proxy-harness.js';

function sign(iss: string, key: string, expS: number): string {
  const h = Buffer.from('{"typ":"JWT","alg":"HS256"}').toString('base64url');
  const b = Buffer.from(JSON.stringify({ iss, exp: expS })).toString('base64url');
  const s = createHmac('sha256', key).update(`${h}.${b}`).digest('base64url');
  return `${h}.${b}.${s}`;
}

describe('proxy pass-through', () => {
  let backend: Backend;
  let h: Harness;
  before(async () => {
    backend = await startBackend((req, res, body) => {
      if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(1024 * 1024) });
        res.end(Buffer.alloc(1024 * 1024, 7));
        return;
      }
      if (req.url?.startsWith('/chunked')) {
        res.writeHead(201, 'Made', { 'Content-Type': 'text/plain', 'X-Custom': 'yes' });
        res.write('part1,');
        setTimeout(() => res.end('part2'), 20);
        return;
      }
      if (req.url?.startsWith('/hop')) {
        res.writeHead(200, ['Connection', 'close', 'Keep-Alive', 'timeout=5', 'X-Foo', 'bar', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '2']);
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, len: body.length, sum: body.reduce((a, c) => (a + c) % 65536, 0) }));
    });
    h = await startHarness({
      routes: [
        `* 127.0.0.1:${backend.port}`,
        `nogrip.test,no_grip 127.0.0.1:${backend.port}`,
        `rw.test,path_beg=/api/,replace_beg=/v2/,as_host=inner.example,header=X-Added:1,header=User-Agent: 127.0.0.1:${backend.port}`,
        `th.test 127.0.0.1:${backend.port},host=target.example:8080`,
        `sig.test,sig_iss=me,sig_key=routekey 127.0.0.1:${backend.port}`,
        `fail.test 127.0.0.1:1 127.0.0.1:${backend.port}`,
      ],
      config: { proxy: { upstreamKey: Buffer.from('upkey') } },
    });
  });
  after(async () => { await h.close(); await backend.close(); });

  const last = (): Backend['requests'][number] => backend.requests[backend.requests.length - 1]!;

  test('relays any method with its body, path and query', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']) {
      const body = method === 'GET' || method === 'OPTIONS' ? undefined : `body-${method}`;
      const r = await fetchText(`${h.url}/m/${method}?q=1`, { method, ...(body ? { body } : {}) });
      assert.equal(r.status, 200);
      const echo = JSON.parse(r.body) as { method: string; url: string; len: number };
      assert.equal(echo.method, method);
      assert.equal(echo.url, `/m/${method}?q=1`);
      assert.equal(echo.len, body?.length ?? 0);
    }
    const head = await fetchText(`${h.url}/head`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  test('streams a large chunked request body and a large response body', async () => {
    const size = 3 * 1024 * 1024;
    async function* gen(): AsyncGenerator<Buffer> {
      for (let i = 0; i < size / 65536; i++) yield Buffer.alloc(65536, i % 251);
    }
    const r = await fetchText(`${h.url}/upload`, { method: 'POST', body: gen() as unknown as import('node:stream').Readable });
    const echo = JSON.parse(r.body) as { len: number };
    assert.equal(echo.len, size);
    assert.ok(last().headers['transfer-encoding'] === 'chunked', 'chunked upload stays chunked');
    const fixed = await fetchText(`${h.url}/upload2`, { method: 'POST', body: Buffer.alloc(200_000, 1) });
    assert.equal((JSON.parse(fixed.body) as { len: number }).len, 200_000);
    assert.equal(last().headers['content-length'], '200000');
    const big = await request(`${h.url}/big`);
    assert.equal(big.headers['content-length'], String(1024 * 1024));
    const buf = Buffer.from(await big.body.arrayBuffer());
    assert.equal(buf.length, 1024 * 1024);
  });

  test('relays status, reason and chunked bodies as sent', async () => {
    const reply = await rawRequest(h.port, 'GET /chunked HTTP/1.1\r\nHost: nogrip.test\r\n\r\n', { until: /0\r\n\r\n$/ });
    const { statusLine, headers, body } = parseHead(reply.text);
    assert.equal(statusLine, 'HTTP/1.1 201 Made');
    assert.ok(headers.some(([n, v]) => n === 'X-Custom' && v === 'yes'));
    assert.ok(headers.some(([n, v]) => n.toLowerCase() === 'transfer-encoding' && v === 'chunked'));
    assert.match(body, /part1,/);
    assert.match(body, /part2/);
  });

  test('reuses client and backend connections (keep-alive)', async () => {
    const agent = new Agent({ connections: 1 });
    const before = backend.requests.length;
    const ports = new Set<number>();
    const onReq = (req: http.IncomingMessage): void => { ports.add(req.socket.remotePort ?? 0); };
    backend.server.on('request', onReq);
    for (let i = 0; i < 5; i++) {
      const r = await request(`${h.url}/ka${i}`, { dispatcher: agent });
      await r.body.text();
    }
    await agent.close();
    assert.equal(backend.requests.length - before, 5);
    assert.equal(ports.size, 1, 'one pooled backend connection served all requests');
    backend.server.off('request', onReq);
  });
});

describe('proxy request and response headers', () => {
  let backend: Backend;
  let h: Harness;
  before(async () => {
    backend = await startBackend((req, res) => {
      if (req.url === '/hop') {
        res.writeHead(200, ['Connection', 'close', 'Keep-Alive', 'timeout=5', 'X-Foo', 'bar', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '2']);
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
      res.end('ok');
    });
    h = await startHarness({
      routes: [
        `* 127.0.0.1:${backend.port}`,
        `nogrip.test,no_grip 127.0.0.1:${backend.port}`,
        `rw.test,path_beg=/api/,replace_beg=/v2/,as_host=inner.example,header=X-Added:1,header=User-Agent: 127.0.0.1:${backend.port}`,
        `th.test 127.0.0.1:${backend.port},host=target.example:8080`,
        `sig.test,sig_iss=me,sig_key=routekey 127.0.0.1:${backend.port}`,
      ],
      config: { proxy: { upstreamKey: Buffer.from('upkey'), cdnLoop: 'gripd', xForwardedFor: { truncate: 1, append: true } } },
    });
  });
  after(async () => { await h.close(); await backend.close(); });
  const last = (): Backend['requests'][number] => backend.requests[backend.requests.length - 1]!;

  test('drops hop-by-hop and Grip-* request headers, keeps end-to-end ones', async () => {
    const req = [
      'GET /x HTTP/1.1', 'Host: example.com:8000', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'TE: trailers',
      'Upgrade: h2c', 'Proxy-Connection: keep-alive', 'Proxy-Authorization: Basic eA==', 'Accept-Encoding: gzip',
      'Grip-Foo: bar', 'Grip-Sig: forged', 'X-Dup: a', 'X-Dup: b', 'User-Agent: ua', 'CDN-Loop: other', '', '',
    ].join('\r\n');
    const reply = await rawRequest(h.port, req, { until: /\r\n\r\nok$/ });
    assert.match(reply.text, /^HTTP\/1\.1 200 OK/);
    const got = last().headers;
    assert.equal(got.host, 'example.com:8000');
    for (const hop of ['keep-alive', 'te', 'upgrade', 'proxy-connection', 'proxy-authorization', 'accept-encoding', 'grip-foo']) {
      assert.equal(got[hop], undefined, `${hop} dropped`);
    }
    assert.deepEqual(got['x-dup'], 'a, b');
    assert.equal(got['user-agent'], 'ua');
    assert.notEqual(got['grip-sig'], 'forged');
    assert.equal(got['cdn-loop'], 'other, gripd');
    assert.match(String(got['grip-feature']), /^status, session, link:next/);
  });

  test('drops hop-by-hop response headers and keeps repeated ones', async () => {
    const reply = await rawRequest(h.port, 'GET /hop HTTP/1.1\r\nHost: nogrip.test\r\n\r\n', { until: /\r\n\r\nok$/ });
    const { headers } = parseHead(reply.text);
    assert.ok(!headers.some(([n, v]) => n.toLowerCase() === 'keep-alive' && v === 'timeout=5'), 'backend Keep-Alive not relayed');
    assert.ok(!headers.some(([n, v]) => n.toLowerCase() === 'connection' && v === 'close'), 'backend Connection not relayed');
    assert.deepEqual(headers.filter(([n]) => n === 'Set-Cookie').map(([, v]) => v), ['a=1', 'b=2']);
    assert.ok(headers.some(([n, v]) => n === 'X-Foo' && v === 'bar'));
  });

  test('X-Forwarded-For: truncate:1 keeps the last entry, append adds the peer', async () => {
    await fetchText(`${h.url}/xff`, { headers: { 'x-forwarded-for': '1.1.1.1, 2.2.2.2' } });
    assert.equal(last().headers['x-forwarded-for'], '2.2.2.2, 127.0.0.1');
  });

  test('Grip-Sig is a valid JWT signed with the global key, or the route key', async () => {
    await fetchText(`${h.url}/sig`);
    const tok = String(last().headers['grip-sig']);
    const { payload } = await jwtVerify(tok, Buffer.from('changeme'));
    assert.equal(payload.iss, 'pushpin');
    assert.ok(typeof payload.exp === 'number' && payload.exp > Date.now() / 1000 + 3500);
    await fetchText(`${h.url}/sig`, { headers: { host: 'sig.test' } });
    const { payload: p2 } = await jwtVerify(String(last().headers['grip-sig']), Buffer.from('routekey'));
    assert.equal(p2.iss, 'me');
  });

  test('no Grip-Sig or Grip-Feature on a no_grip route; client Grip-* still removed', async () => {
    await fetchText(`${h.url}/ng`, { headers: { host: 'nogrip.test', 'grip-x': '1' } });
    assert.equal(last().headers['grip-sig'], undefined);
    assert.equal(last().headers['grip-feature'], undefined);
    assert.equal(last().headers['grip-x'], undefined);
  });

  test('a client with a valid upstream_key Grip-Sig is trusted: its Grip-* headers pass untouched', async () => {
    const tok = sign('upstream', 'upkey', Math.floor(Date.now() / 1000) + 600);
    await fetchText(`${h.url}/trusted`, { headers: { 'grip-sig': tok, 'grip-last': 'ch; last-id=1', 'x-forwarded-for': '9.9.9.9' } });
    assert.equal(last().headers['grip-sig'], tok);
    assert.equal(last().headers['grip-last'], 'ch; last-id=1');
    assert.equal(last().headers['grip-feature'], undefined);
    // x_forwarded_for_trusted is empty: the header is left as it came.
    assert.equal(last().headers['x-forwarded-for'], '9.9.9.9');
    const bad = sign('upstream', 'wrong', Math.floor(Date.now() / 1000) + 600);
    await fetchText(`${h.url}/untrusted`, { headers: { 'grip-sig': bad, 'grip-last': 'ch; last-id=1' } });
    assert.notEqual(last().headers['grip-sig'], bad);
    assert.equal(last().headers['grip-last'], undefined);
  });

  test('path rewriting, as_host and route header= additions', async () => {
    await fetchText(`${h.url}/api/items?a=1`, { headers: { host: 'rw.test', 'user-agent': 'removed-by-route' } });
    assert.equal(last().url, '/v2/items?a=1');
    assert.equal(last().headers.host, 'inner.example');
    assert.equal(last().headers['x-added'], '1');
    assert.equal(last().headers['user-agent'], undefined);
    await fetchText(`${h.url}/t`, { headers: { host: 'th.test' } });
    assert.equal(last().headers.host, 'target.example:8080');
  });
});

describe('proxy X-Forwarded-Proto', () => {
  let backend: Backend;
  let h: Harness;
  before(async () => {
    backend = await startBackend((_req, res) => { res.end('ok'); });
    h = await startHarness({
      routes: [`* 127.0.0.1:${backend.port}`, `secure.test,ssl=yes,no_grip 127.0.0.1:${backend.port}`],
      config: { proxy: { acceptXForwardedProtocol: true, setXForwardedProtocol: 'true' } },
    });
  });
  after(async () => { await h.close(); await backend.close(); });
  const last = (): Backend['requests'][number] => backend.requests[backend.requests.length - 1]!;

  test('an accepted X-Forwarded-Proto: https makes the request https (routing and headers)', async () => {
    const r = await fetchText(`${h.url}/p`, { headers: { host: 'secure.test', 'x-forwarded-proto': 'https' } });
    assert.equal(r.status, 200);
    assert.equal(last().headers['x-forwarded-proto'], 'https');
    assert.equal(last().headers['x-forwarded-protocol'], 'https');
  });

  test('plain http: client X-Forwarded-Proto* removed, none added', async () => {
    await fetchText(`${h.url}/p`, { headers: { 'x-forwarded-protocol': 'http' } });
    assert.equal(last().headers['x-forwarded-proto'], undefined);
    assert.equal(last().headers['x-forwarded-protocol'], undefined);
  });
});

describe('proxy local answers and backend failures', () => {
  let backend: Backend;
  let h: Harness;
  let hDebug: Harness;
  before(async () => {
    backend = await startBackend((req, res) => {
      if (req.url === '/reset') { req.socket.destroy(); return; }
      if (req.url === '/hang') return;
      res.end('ok');
    });
    const routes = [
      `only.test 127.0.0.1:${backend.port}`,
      `fail.test 127.0.0.1:1 127.0.0.1:${backend.port}`,
      'dead.test 127.0.0.1:1 127.0.0.1:2',
      `idr.test,id=r1 127.0.0.1:${backend.port}`,
    ];
    h = await startHarness({ routes, backendTimeouts: { headersMs: 300 }, config: { proxy: { acceptPushpinRoute: true } } });
    hDebug = await startHarness({ routes, backendTimeouts: { headersMs: 300 }, config: { proxy: { debug: true } } });
  });
  after(async () => { await h.close(); await hDebug.close(); await backend.close(); });

  test('no route: 502 with Pushpin 1.36 text, exact bytes', async () => {
    const reply = await rawRequest(h.port, 'GET /x HTTP/1.1\r\nHost: Other.Test:8080\r\n\r\n', { until: /\n$/ });
    assert.equal(reply.text, 'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 30\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\nNo route for host: other.test\n');
    const noHost = await rawRequest(h.port, 'GET /x HTTP/1.0\r\n\r\n', { until: /\n$/ });
    assert.match(noHost.text, /No route for host: localhost\n$/);
  });

  test('Pushpin-Check is answered locally with 200 text/plain', async () => {
    const r = await fetchText(`${h.url}/`, { headers: { host: 'nowhere.test', 'pushpin-check': '1' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.match(r.body, /gripd/);
  });

  test('Pushpin-Route selects a route by id when accept_pushpin_route is on', async () => {
    const r = await fetchText(`${h.url}/byid`, { headers: { host: 'unknown.test', 'pushpin-route': 'r1' } });
    assert.equal(r.status, 200);
    assert.equal(backend.requests[backend.requests.length - 1]!.headers['pushpin-route'], undefined);
    const other = await fetchText(`${hDebug.url}/byid`, { headers: { host: 'unknown.test', 'pushpin-route': 'r1' } });
    assert.equal(other.status, 502, 'ignored when accept_pushpin_route is off');
  });

  test('fails over to the next target when one refuses', async () => {
    const r = await fetchText(`${h.url}/fo`, { method: 'POST', body: 'payload', headers: { host: 'fail.test' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(backend.requests[backend.requests.length - 1]!.body.toString(), 'payload');
  });

  test('all targets refuse: 502 generic text, detail under debug', async () => {
    const r = await fetchText(`${h.url}/x`, { headers: { host: 'dead.test' } });
    assert.equal(r.status, 502);
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.body, 'Error while proxying to origin.\n');
    const d = await fetchText(`${hDebug.url}/x`, { headers: { host: 'dead.test' } });
    assert.equal(d.body, 'Unable to connect to any targets. Tried: 127.0.0.1:1, 127.0.0.1:2\n');
  });

  test('backend reset or timeout: 502 with Pushpin text', async () => {
    const reset = await fetchText(`${h.url}/reset`, { headers: { host: 'only.test' } });
    assert.equal(reset.status, 502);
    assert.equal(reset.body, 'Error while proxying to origin.\n');
    const hang = await fetchText(`${h.url}/hang`, { headers: { host: 'only.test' } });
    assert.equal(hang.status, 502);
    assert.equal(hang.body, 'Error while proxying to origin.\n');
    const hangDebug = await fetchText(`${hDebug.url}/hang`, { headers: { host: 'only.test' } });
    assert.match(hangDebug.body, /did not answer in time/);
  });

  test('writes an access log line per request', async () => {
    await fetchText(`${h.url}/logged`, { headers: { host: 'only.test' } });
    const entry = h.logs.find((l) => (l.access as { path?: string } | undefined)?.path === '/logged');
    assert.ok(entry, 'access log line present');
    assert.equal(entry.level, 30);
    const line = entry.access as Record<string, unknown>;
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(line.route, 'routes:1');
    assert.equal(line.backend, `127.0.0.1:${backend.port}`);
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(entry.msg, `GET /logged -> 127.0.0.1:${backend.port} route=routes:1 code=200 ${String(entry.msg).split(' ').at(-1)}`);
  });
});
