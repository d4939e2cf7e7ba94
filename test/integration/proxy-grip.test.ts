import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type Backend } from '../helpers/backend.js';
import { startHarness, fetchText, type Harness } from './proxy-harness.js';

describe('proxy: GRIP detection and handoff', () => {
  let backend: Backend;
  let h: Harness;
  let hDebug: Harness;
  before(async () => {
    backend = await startBackend((req, res) => {
      switch (req.url) {
        case '/hold':
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'ch1' });
          res.end('timeout body\n');
          return;
        case '/instruct':
          res.writeHead(200, { 'Content-Type': 'application/grip-instruct' });
          res.end(JSON.stringify({ hold: { mode: 'response', channels: [{ name: 'ch2' }] }, response: { body: 'from instruct\n' } }));
          return;
        case '/stream':
          res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Grip-Hold': 'stream', 'Grip-Channel': 'ch3' });
          res.write('first\n');
          setTimeout(() => res.end('second\n'), 30);
          return;
        case '/badgrip':
          res.writeHead(200, { 'Content-Type': 'application/grip-instruct' });
          res.end('{not json');
          return;
        case '/toolarge':
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'x' });
          res.end(Buffer.alloc(150_000, 97));
          return;
        default:
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'x' });
          res.end('plain');
      }
    });
    h = await startHarness({ routes: [`* 127.0.0.1:${backend.port}`, `ng.test,no_grip 127.0.0.1:${backend.port}`, 'test.test test'] });
    hDebug = await startHarness({ routes: [`* 127.0.0.1:${backend.port}`], config: { proxy: { debug: true } } });
  });
  after(async () => { await h.close(); await hDebug.close(); await backend.close(); });

  test('Grip-Hold headers: the handler gets the parsed instruction and the request copy', async () => {
    const n = h.handoffs.length;
    const r = await fetchText(`${h.url}/hold`, { method: 'POST', body: 'req-body' });
    assert.equal(r.body, 'timeout body\n');
    const ho = h.handoffs[n]!;
    assert.equal(ho.instruct.hold?.mode, 'response');
    assert.deepEqual(ho.instruct.hold?.channels.map((c) => c.name), ['ch1']);
    assert.equal(ho.backendRequest.body.toString(), 'req-body');
    assert.equal(ho.backendRequest.path, '/hold');
    assert.ok(!ho.backendRequest.headers.some(([n2]) => n2.toLowerCase() === 'grip-sig'), 'Grip-Sig is added per send');
    assert.equal(ho.target.port, backend.port);
    assert.equal(ho.clientAddress, '127.0.0.1');
    assert.equal(ho.ssl, false);
    assert.equal(ho.bodyRest, undefined);
  });

  test('application/grip-instruct bodies are parsed', async () => {
    const n = h.handoffs.length;
    const r = await fetchText(`${h.url}/instruct`);
    assert.equal(r.body, 'from instruct\n');
    assert.deepEqual(h.handoffs[n]!.instruct.hold?.channels.map((c) => c.name), ['ch2']);
  });

  test('stream holds are handed off at once with the rest of the body to follow', async () => {
    const n = h.handoffs.length;
    const r = await fetchText(`${h.url}/stream`);
    assert.equal(r.body, 'first\nsecond\n');
    const ho = h.handoffs[n]!;
    assert.equal(ho.instruct.hold?.mode, 'stream');
    assert.ok(ho.bodyRest !== undefined);
  });

  test('no_grip routes relay Grip headers to the client untouched', async () => {
    const n = h.handoffs.length;
    const r = await fetchText(`${h.url}/hold`, { headers: { host: 'ng.test' } });
    assert.equal(h.handoffs.length, n);
    assert.equal(r.headers['grip-hold'], 'response');
  });

  test('invalid instructions give 502, with the parse error under debug, and a log line', async () => {
    const r = await fetchText(`${h.url}/badgrip`);
    assert.equal(r.status, 502);
    assert.equal(r.body, 'Error while proxying to origin.\n');
    assert.ok(h.logs.some((l) => String(l.msg).includes('invalid GRIP instructions')));
    const d = await fetchText(`${hDebug.url}/badgrip`);
    assert.match(d.body, /^Failed to parse accept instructions: /);
  });

  test('GRIP responses over 100 000 bytes give 502', async () => {
    const r = await fetchText(`${h.url}/toolarge`);
    assert.equal(r.status, 502);
    const d = await fetchText(`${hDebug.url}/toolarge`);
    assert.equal(d.body, `GRIP instruct response too large from 127.0.0.1:${backend.port}\n`);
  });

  test('a request body over 100 000 bytes cannot be taken over: 400', async () => {
    const r = await fetchText(`${h.url}/plain`, { method: 'POST', body: Buffer.alloc(150_000, 1) });
    assert.equal(r.status, 400);
    assert.equal(r.body, 'Request too large to accept GRIP instruct.\n');
  });

  test('test targets go through the same GRIP detection', async () => {
    const h2 = await startHarness({
      routes: ['* test'],
      testHandler: async () => ({ status: 200, reason: 'OK', headers: [['Grip-Hold', 'response'], ['Grip-Channel', 'test']], body: Buffer.from('held\n') }),
    });
    try {
      const r = await fetchText(`${h2.url}/response`);
      assert.equal(r.body, 'held\n');
      assert.equal(h2.handoffs.length, 1);
      assert.equal(h2.handoffs[0]!.target.type, 'test');
    } finally {
      await h2.close();
    }
  });

  test('BackendRequester re-sends a stored request with a fresh Grip-Sig', async () => {
    const ho = h.handoffs[0]!;
    const before = backend.requests.length;
    const resp = await h.proxy.requester.request(ho.route, ho.backendRequest);
    assert.equal(resp.status, 200);
    assert.equal(resp.body.toString(), 'timeout body\n');
    const sent = backend.requests[before]!;
    assert.equal(sent.body.toString(), 'req-body');
    assert.ok(typeof sent.headers['grip-sig'] === 'string');
    const viaUrl = await h.proxy.requester.request(ho.route, { ...ho.backendRequest, method: 'GET', body: Buffer.alloc(0) }, { url: `http://127.0.0.1:${backend.port}/instruct` });
    assert.equal(viaUrl.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1], 'application/grip-instruct');
    await assert.rejects(h.proxy.requester.request(ho.route, ho.backendRequest, { maxBodyBytes: 3 }), /exceeds 3 bytes/);
  });
});
