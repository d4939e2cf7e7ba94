/**
 * Route targets zhttpreq/<spec> and zhttp/<spec>: gripd started via its CLI, backends
 * written in JavaScript with `zeromq` (a REP loop for zhttpreq; PULL + ROUTER + PUB for
 * streaming zhttp), real clients and the real HTTP publish API.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as zmq from 'zeromq';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';
import { decodeZhttpRequest, encodeZhttpResponse, type ZhttpRequest, type ZhttpResponse } from '../../src/zmq/zhttp.js';

/** A streaming HTTP client that collects the body and resolves waits on its content. */
function openStream(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text(): string; waitFor(s: string, ms?: number): Promise<void>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      const waiters: Array<() => void> = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        for (const w of waiters.splice(0)) w();
      });
      res.on('error', () => undefined);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => body,
        waitFor(s: string, ms = 10_000) {
          return new Promise<void>((ok, fail) => {
            const end = Date.now() + ms;
            const check = (): void => {
              if (body.includes(s)) ok();
              else if (Date.now() > end) fail(new Error(`timed out waiting for ${JSON.stringify(s)}; got ${JSON.stringify(body)}`));
              else {
                waiters.push(check);
                setTimeout(check, 100).unref();
              }
            };
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

async function get(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error('client timeout')));
  });
}

async function publish(g: GripdInstance, channel: string, formats: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${g.publishUrl}/publish/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ items: [{ channel, formats }] }),
  });
  assert.equal(r.status, 200, await r.text());
}

/** Publishes until `cond` holds: a subscription becomes live just after the hold starts. */
async function publishUntil(g: GripdInstance, channel: string, formats: Record<string, unknown>, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) {
    await publish(g, channel, formats);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The zhttpreq backend of docs/zeromq.md: a REP socket that answers every request with a
 * GRIP stream hold on channel `test` (or whatever `answer` returns).
 */
function startRepHandler(spec: string, answer: (req: ZhttpRequest) => Omit<ZhttpResponse, 'ids' | 'type'> & { type?: ZhttpResponse['type'] }): { seen: ZhttpRequest[]; close(): void } {
  const sock = new zmq.Reply({ linger: 0 });
  sock.connect(spec);
  const seen: ZhttpRequest[] = [];
  void (async () => {
    try {
      for await (const [frame] of sock) {
        const req = decodeZhttpRequest(frame!);
        seen.push(req);
        const resp = answer(req);
        await sock.send(encodeZhttpResponse({ type: 'data', ...resp, ids: [{ id: req.ids[0]!.id }] }));
      }
    } catch {
      // socket closed
    }
  })();
  return { seen, close: () => sock.close() };
}

const header = (req: ZhttpRequest, name: string): string | undefined =>
  req.headers?.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];

describe('zhttpreq target', () => {
  let g: GripdInstance;
  let spec: string;
  let rep: ReturnType<typeof startRepHandler>;

  before(async () => {
    spec = `tcp://127.0.0.1:${await freePort()}`;
    g = await startGripd({ routes: [`* zhttpreq/${spec}`] });
    rep = startRepHandler(spec, (req) => {
      const u = new URL(req.uri ?? 'http://x/');
      if (u.pathname === '/plain') {
        return { code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain']], body: Buffer.from(`plain ${req.method} ${u.pathname}${u.search}\n`) };
      }
      if (u.pathname === '/poll') {
        return { code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['Grip-Hold', 'response'], ['Grip-Channel', 'poll']], body: Buffer.from('timeout\n') };
      }
      if (u.pathname === '/broken') return { type: 'error', condition: 'bad-request' };
      if (u.pathname === '/hinted') {
        // First request: hold; the retry after a hint publish gets the fresh answer.
        const n = rep.seen.filter((q) => q.uri?.endsWith('/hinted')).length;
        if (n <= 1) return { code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['Grip-Hold', 'response'], ['Grip-Channel', 'hinted']], body: Buffer.from('timeout\n') };
        return { code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['X-Retry', String(n)]], body: Buffer.from(`fresh ${n}\n`) };
      }
      if (u.pathname === '/echo') {
        return { code: 201, reason: 'Created', headers: [['Content-Type', 'text/plain']], body: Buffer.concat([Buffer.from('got '), req.body ?? Buffer.alloc(0)]) };
      }
      return {
        code: 200,
        reason: 'OK',
        headers: [['Content-Type', 'text/plain'], ['Grip-Hold', 'stream'], ['Grip-Channel', 'test']],
        body: Buffer.from('stream open\n'),
      };
    });
  });
  after(async () => {
    rep?.close();
    await g?.stop();
  });

  test('zhttpreq: a REP handler answering Grip-Hold: stream holds the client, which then receives a publish', async () => {
    const s = await openStream(`${g.url}/stream`);
    try {
      assert.equal(s.status, 200);
      await s.waitFor('stream open\n');
      await publishUntil(g, 'test', { 'http-stream': { content: 'hello from zmq\n' } }, () => s.text().includes('hello from zmq\n'));
      await s.waitFor('hello from zmq\n');
      assert.ok(s.text().startsWith('stream open\n'));
    } finally {
      s.close();
    }
  });

  test('zhttpreq: the request carries method, absolute uri, headers with Grip-Sig, peer address and max-size', async () => {
    const r = await get(`${g.url}/plain?x=1`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'plain GET /plain?x=1\n');
    // A whole answer goes out with Content-Length, not chunked (as Pushpin).
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
    assert.equal(r.headers['transfer-encoding'], undefined);
    const req = rep.seen.find((q) => q.uri?.includes('/plain?x=1'));
    assert.ok(req, 'handler saw the request');
    assert.equal(req.method, 'GET');
    assert.equal(req.uri, `http://127.0.0.1:${g.httpPort}/plain?x=1`);
    assert.ok(header(req, 'Grip-Sig'), 'Grip-Sig present');
    assert.equal(header(req, 'Host'), `127.0.0.1:${g.httpPort}`);
    assert.equal(req.peerAddress, '127.0.0.1');
    assert.equal(req.maxSize, 1_000_000);
    assert.equal(req.from?.toString(), req.from?.toString()); // present and bytes
    assert.ok(req.from && req.from.length > 0);
    assert.equal(req.stream, undefined);
  });

  test('zhttpreq: a non-GRIP answer is relayed with its status, reason and body (request body forwarded)', async () => {
    const r = await fetch(`${g.url}/echo`, { method: 'POST', body: 'payload' });
    assert.equal(r.status, 201);
    assert.equal(await r.text(), 'got payload');
  });

  test('zhttpreq: Grip-Hold: response holds a long-poll answered by a publish', async () => {
    const pending = get(`${g.url}/poll`);
    let done = false;
    void pending.then(() => (done = true), () => (done = true));
    await publishUntil(g, 'poll', { 'http-response': { body: 'polled\n' } }, () => done);
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'polled\n');
  });

  test('zhttpreq: a hint publish makes gripd retry the held request over zhttp (Grip-Sig renewed) and relay the answer', async () => {
    const pending = get(`${g.url}/hinted`);
    let done = false;
    void pending.then(() => (done = true), () => (done = true));
    await publishUntil(g, 'hinted', { 'http-response': { action: 'hint' } }, () => done);
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'fresh 2\n');
    assert.equal(r.headers['x-retry'], '2');
    const tries = rep.seen.filter((q) => q.uri?.endsWith('/hinted'));
    assert.equal(tries.length, 2);
    assert.equal(tries[1]!.method, 'GET');
    assert.equal(tries[1]!.uri, `http://127.0.0.1:${g.httpPort}/hinted`);
    assert.ok(header(tries[1]!, 'Grip-Sig'), 'the retry is signed');
    assert.equal(tries[1]!.headers?.filter(([n]) => n.toLowerCase() === 'grip-sig').length, 1);
  });

  test('zhttpreq: an error packet from the handler answers 502', async () => {
    const r = await get(`${g.url}/broken`);
    assert.equal(r.status, 502);
  });
});

/**
 * A streaming zhttp handler (Pushpin's holdhandler shape): PULL on -out, ROUTER on
 * -out-stream, PUB on -in. Answers GET /hold with a GRIP stream hold and /chunks with a
 * plain response in three packets; records credit/cancel packets it gets back.
 */
function startStreamHandler(base: string): { got: ZhttpRequest[]; close(): void } {
  const id = 'js-handler';
  const pull = new zmq.Pull({ linger: 0 });
  // mandatory: a reply to a gripd instance whose connection is not up yet fails instead of vanishing.
  const router = new zmq.Router({ linger: 0, routingId: id, mandatory: true });
  const pub = new zmq.Publisher({ linger: 0 });
  pull.connect(`${base}-out`);
  router.connect(`${base}-out-stream`);
  pub.connect(`${base}-in`);
  const got: ZhttpRequest[] = [];
  let sending: Promise<void> = Promise.resolve();
  /** Answers over PUB (`<address> T...`), or over the ROUTER when the request asked for router-resp. */
  const send = (to: Buffer, p: ZhttpResponse, viaRouter = false): void => {
    if (!viaRouter) {
      const frame = Buffer.concat([to, Buffer.from(' '), encodeZhttpResponse(p)]);
      sending = sending.then(() => pub.send(frame)).catch(() => undefined);
      return;
    }
    sending = sending.then(async () => {
      for (let i = 0; i < 100; i++) {
        try {
          await router.send([to, Buffer.alloc(0), encodeZhttpResponse(p)]);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
  };
  const handle = (req: ZhttpRequest): void => {
    got.push(req);
    if (req.type !== 'data' || req.ids[0]?.seq !== 0) return; // credits, keep-alives, cancels
    const to = req.from!;
    const rid = req.ids[0]!.id;
    const u = new URL(req.uri ?? 'http://x/');
    let seq = 0;
    const base = { from: Buffer.from(id), type: 'data' as const };
    if (u.pathname === '/zhinted') {
      // First request: a long-poll hold; the retry after a hint is answered in two packets.
      const n = got.filter((q) => q.type === 'data' && q.ids[0]?.seq === 0 && q.uri?.endsWith('/zhinted')).length;
      if (n <= 1) {
        send(to, { ...base, ids: [{ id: rid, seq: seq++ }], code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['Grip-Hold', 'response'], ['Grip-Channel', 'zhinted']], body: Buffer.from('timeout\n') });
        return;
      }
      send(to, { ...base, ids: [{ id: rid, seq: seq++ }], code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain']], body: Buffer.from('fresh '), more: true });
      send(to, { ...base, ids: [{ id: rid, seq: seq++ }], body: Buffer.from(`${n}\n`) });
      return;
    }
    if (u.pathname === '/chunks') {
      send(to, { ...base, ids: [{ id: rid, seq: seq++ }], code: 200, reason: 'OK', headers: [['Content-Type', 'text/plain']], body: Buffer.from('one\n'), more: true });
      send(to, { ...base, ids: [{ id: rid, seq: seq++ }], body: Buffer.from('two\n'), more: true });
      send(to, { ...base, ids: [{ id: rid, seq: seq++ }], body: Buffer.from('three\n') });
      return;
    }
    send(to, {
      ...base,
      ids: [{ id: rid, seq: seq++ }],
      code: 200,
      reason: 'OK',
      headers: [['Content-Type', 'text/plain'], ['Grip-Hold', 'stream'], ['Grip-Channel', 'zstream']],
      body: Buffer.from('zhttp stream open\n'),
    }, req.routerResp === true);
  };
  void (async () => {
    try {
      for await (const [frame] of pull) handle(decodeZhttpRequest(frame!));
    } catch {
      // closed
    }
  })();
  void (async () => {
    try {
      for await (const msg of router) handle(decodeZhttpRequest(msg[msg.length - 1]!));
    } catch {
      // closed
    }
  })();
  return { got, close: () => [pull, router, pub].forEach((s) => s.close()) };
}

describe('zhttp (streaming) target', () => {
  let g: GripdInstance;
  let dir: string;
  let h: ReturnType<typeof startStreamHandler>;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gripd-zhttp-'));
    // A path that does not exist yet: gripd creates the directory for ipc:// specs.
    const base = `ipc://${path.join(dir, 'sub', 'zh')}`;
    // ZeroMQ connects retry until gripd binds (on its first request to the target).
    h = startStreamHandler(base);
    g = await startGripd({ routes: [`* zhttp/${base}`] });
  });
  after(async () => {
    h?.close();
    await g?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('zhttp: a streaming handler answering Grip-Hold: stream holds the client, which then receives a publish', async () => {
    // The very first request: gripd binds its sockets now and the handler connects to them.
    // gripd waits for the handler's PUB before sending, so the answer is not lost.
    const s = await openStream(`${g.url}/hold`);
    assert.equal(s.status, 200);
    try {
      await s.waitFor('zhttp stream open\n');
      await publishUntil(g, 'zstream', { 'http-stream': { content: 'pushed\n' } }, () => s!.text().includes('pushed\n'));
      await s.waitFor('pushed\n');
      const first = h.got.find((q) => q.uri?.endsWith('/hold'));
      assert.ok(first);
      assert.equal(first.stream, true);
      assert.equal(first.credits, 200_000);
      assert.equal(first.ids[0]?.seq, 0);
      assert.ok(header(first, 'Grip-Sig'));
    } finally {
      s.close();
    }
  });

  test('zhttp: a hint publish makes gripd retry the held request over the streaming sockets and relay the answer', async () => {
    let r: Awaited<ReturnType<typeof get>> | undefined;
    const pending = get(`${g.url}/zhinted`).then((x) => (r = x));
    pending.catch(() => undefined);
    await publishUntil(g, 'zhinted', { 'http-response': { action: 'hint' } }, () => r !== undefined);
    await pending.catch((e: Error) => {
      // Say what the handler saw and what gripd logged, so a failure here can be diagnosed.
      const seen = h.got.map((q) => `${q.type} seq=${q.ids[0]?.seq} ${q.uri ?? ''}`).join('; ');
      throw new Error(`${e.message}; handler saw: [${seen}]; gripd log: ${g.output().slice(-2000)}`);
    });
    assert.equal(r?.status, 200);
    assert.equal(r?.body, 'fresh 2\n');
    const tries = h.got.filter((q) => q.type === 'data' && q.ids[0]?.seq === 0 && q.uri?.endsWith('/zhinted'));
    assert.equal(tries.length, 2);
    assert.equal(tries[1]!.stream, true);
    assert.ok(header(tries[1]!, 'Grip-Sig'), 'the retry is signed');
  });

  test('zhttp: a plain answer in several packets is relayed in order, and credits are granted back', async () => {
    const r = await get(`${g.url}/chunks`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'one\ntwo\nthree\n');
    // An answer in several packets streams through (no length known up front).
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    const end = Date.now() + 10_000;
    while (!h.got.some((q) => q.type === 'credit') && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    assert.ok(h.got.some((q) => q.type === 'credit' && (q.credits ?? 0) > 0), 'a credit packet came back over the ROUTER');
  });
});
