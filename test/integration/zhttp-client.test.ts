/**
 * The zhttp client sockets (src/zmq/zhttp-client.ts) over real loopback ZeroMQ sockets:
 * timeouts, hostile answers, cancel. The proxy glue is covered by zhttp-targets.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { freePort } from '../helpers/ports.js';
import { createLogger } from '../../src/log/index.js';
import { ZhttpClient, zhttpStreamSpecs, type ZhttpCallError, type ZhttpResponseHandler } from '../../src/zmq/zhttp-client.js';
import { decodeZhttpRequest, encodeZhttpResponse } from '../../src/zmq/zhttp.js';
import { encodeTnetstring } from '../../src/zmq/tnetstring.js';
import { publishErrorDetail } from '../../src/zmq/publish-error.js';
import { parsePublishItem } from '../../src/publish/item.js';
import { executeCommand } from '../../src/zmq/command.js';
import { loadConfig } from '../../src/config/index.js';

const logger = createLogger({ level: 0, json: true });

interface Outcome { code?: number; body: string; error?: ZhttpCallError; ended: boolean }

function collect(): { h: ZhttpResponseHandler; done: Promise<Outcome> } {
  const o: Outcome = { body: '', ended: false };
  let resolve!: (o: Outcome) => void;
  const done = new Promise<Outcome>((r) => (resolve = r));
  return {
    done,
    h: {
      onHead: (code) => (o.code = code),
      onBody: (c) => (o.body += c.toString()),
      onEnd: () => {
        o.ended = true;
        resolve(o);
      },
      onError: (e) => {
        o.error = e;
        resolve(o);
      },
    },
  };
}

const REQ = { method: 'GET', uri: 'http://example/x', headers: [['Host', 'example']] as Array<[string, string]>, body: Buffer.alloc(0) };

test('zhttp client: stream specs are port, port+1, port+2 for tcp and -out/-out-stream/-in for paths', () => {
  assert.deepEqual(zhttpStreamSpecs('tcp://127.0.0.1:5000'), ['tcp://127.0.0.1:5000', 'tcp://127.0.0.1:5001', 'tcp://127.0.0.1:5002']);
  assert.deepEqual(zhttpStreamSpecs('ipc:///tmp/zh'), ['ipc:///tmp/zh-out', 'ipc:///tmp/zh-out-stream', 'ipc:///tmp/zh-in']);
});

test('zhttp client: a zhttpreq request nobody answers fails with condition timeout', async () => {
  const client = new ZhttpClient({ logger, timeoutMs: 300 });
  try {
    const spec = `tcp://127.0.0.1:${await freePort()}`;
    const c = collect();
    client.request('req', spec, REQ, c.h);
    const o = await c.done;
    assert.equal(o.error?.condition, 'timeout');
  } finally {
    await client.close();
  }
});

test('zhttp client: hostile answers (wrong frame count, bad tnetstring, two ids, unknown id) are dropped and the socket keeps serving', async () => {
  const client = new ZhttpClient({ logger, timeoutMs: 10_000 });
  const spec = `tcp://127.0.0.1:${await freePort()}`;
  const handler = new zmq.Router({ linger: 0 });
  try {
    const c = collect();
    client.request('req', spec, REQ, c.h);
    handler.connect(spec);
    const [peer, , frame] = await handler.receive();
    const req = decodeZhttpRequest(frame!);
    const id = req.ids[0]!.id;
    const empty = Buffer.alloc(0);
    await handler.send([peer!, Buffer.from('x'), Buffer.from('y'), Buffer.from('z')]);
    await handler.send([peer!, empty, Buffer.from('Tgarbage')]);
    await handler.send([peer!, empty, Buffer.from('T100000000:')]);
    await handler.send([peer!, empty, Buffer.concat([Buffer.from('T'), encodeTnetstring({ id: [{ id }, { id }], code: 200 })])]);
    await handler.send([peer!, empty, encodeZhttpResponse({ ids: [{ id: Buffer.from('nope') }], type: 'data', code: 500 })]);
    await handler.send([peer!, empty, encodeZhttpResponse({ ids: [{ id }], type: 'data', code: 200, reason: 'OK', body: Buffer.from('fine') })]);
    const o = await c.done;
    assert.equal(o.error, undefined);
    assert.equal(o.code, 200);
    assert.equal(o.body, 'fine');
    assert.equal(req.method, 'GET');
    assert.equal(req.uri, 'http://example/x');
  } finally {
    handler.close();
    await client.close();
  }
});

test('zhttp client: a zhttpreq answer with more=true is refused (req mode answers are whole)', async () => {
  const client = new ZhttpClient({ logger, timeoutMs: 10_000 });
  const spec = `tcp://127.0.0.1:${await freePort()}`;
  const rep = new zmq.Reply({ linger: 0 });
  try {
    const c = collect();
    client.request('req', spec, REQ, c.h);
    rep.connect(spec);
    const [frame] = await rep.receive();
    const id = decodeZhttpRequest(frame!).ids[0]!.id;
    await rep.send(encodeZhttpResponse({ ids: [{ id }], type: 'data', code: 200, more: true }));
    const o = await c.done;
    assert.equal(o.error?.condition, 'bad-response');
  } finally {
    rep.close();
    await client.close();
  }
});

test('zhttp client: cancelling a streaming session sends a cancel packet to the handler that answered', async () => {
  const client = new ZhttpClient({ logger, timeoutMs: 10_000, instanceId: 'gripd-test' });
  const port = await freePort();
  const [outSpec, streamSpec, inSpec] = zhttpStreamSpecs(`tcp://127.0.0.1:${port}`);
  const pull = new zmq.Pull({ linger: 0 });
  const router = new zmq.Router({ linger: 0, routingId: 'h1', mandatory: true });
  const pub = new zmq.Publisher({ linger: 0 });
  try {
    let head = false;
    const call = client.request('stream', `tcp://127.0.0.1:${port}`, REQ, {
      onHead: () => (head = true),
      onBody: () => undefined,
      onEnd: () => undefined,
      onError: () => undefined,
    });
    pull.connect(outSpec);
    router.connect(streamSpec);
    pub.connect(inSpec);
    const [frame] = await pull.receive();
    const req = decodeZhttpRequest(frame!);
    assert.equal(req.from?.toString(), 'gripd-test');
    const id = req.ids[0]!.id;
    // Answer over the ROUTER (router-resp), retrying until the connection is up.
    const answer = encodeZhttpResponse({ from: Buffer.from('h1'), ids: [{ id, seq: 0 }], type: 'data', code: 200, reason: 'OK', more: true });
    for (let i = 0; i < 200; i++) {
      try {
        await router.send([Buffer.from('gripd-test'), Buffer.alloc(0), answer]);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    for (let i = 0; i < 400 && !head; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(head, 'head delivered');
    call.cancel();
    const msg = await router.receive();
    const cancel = decodeZhttpRequest(msg[msg.length - 1]!);
    assert.equal(cancel.type, 'cancel');
    assert.equal(cancel.ids[0]?.seq, 1);
    assert.deepEqual(cancel.ids[0]?.id, id);
  } finally {
    for (const s of [pull, router, pub]) s.close();
    await client.close();
  }
});

test('publish errors: "Invalid format: " appears once in command replies and log reasons (no double prefix)', async () => {
  let err: unknown;
  try {
    parsePublishItem({ formats: {} }, 0, { input: 'tnetstring' });
  } catch (e) {
    err = e;
  }
  assert.ok(err);
  assert.doesNotMatch(publishErrorDetail(err), /^Invalid format/);
  assert.equal(publishErrorDetail(new Error('Invalid format: Invalid format: x')), 'x');
  const { config } = await loadConfig({ searchPaths: [] });
  const target = { conncheck: () => [], recover: () => undefined, refresh: () => undefined, publish: () => undefined };
  const res = await executeCommand({ method: 'publish', args: { items: [{ formats: {} }] } }, target, config, logger);
  assert.equal(res.success, false);
  const value = String((res as { value?: unknown }).value);
  assert.match(value, /^Invalid format: /);
  assert.doesNotMatch(value, /Invalid format: Invalid format/);
});
