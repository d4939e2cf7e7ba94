// The README's two-minute demo, end to end: gripd with the built-in test handler,
// a streaming client, and gripd-publish as the publisher.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGripd, GRIPD_BIN, type GripdInstance } from '../helpers/gripd.js';

const run = promisify(execFile);
const PUBLISH_BIN = path.join(path.dirname(GRIPD_BIN), 'gripd-publish.js');

let gripd: GripdInstance;
before(async () => { gripd = await startGripd(); });
after(async () => { await gripd.stop(); });

/** Opens a GET and resolves with the response once headers arrive; body chunks accumulate in `text()`. */
function openStream(url: string): Promise<{ res: http.IncomingMessage; text(): string; waitFor(s: string): Promise<void>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      const waiters: Array<() => void> = [];
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; waiters.splice(0).forEach((w) => w()); });
      resolve({
        res,
        text: () => body,
        waitFor: (s) => new Promise<void>((ok, fail) => {
          const t = setTimeout(() => fail(new Error(`timed out waiting for ${JSON.stringify(s)}; got ${JSON.stringify(body)}`)), 10000);
          const check = (): void => { if (body.includes(s)) { clearTimeout(t); ok(); } else waiters.push(check); };
          check();
        }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

test('demo: GET / on the test handler says hello', async () => {
  const res = await fetch(`${gripd.url}/`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /hello/i);
});

test('demo: gripd-publish reaches a client streaming /stream', async () => {
  const s = await openStream(`${gripd.url}/stream`);
  assert.equal(s.res.statusCode, 200);
  // The hold is registered once the stream's headers are out; publish until it lands
  // (bounded), since subscription and publish race by design.
  let delivered = false;
  for (let i = 0; i < 20 && !delivered; i++) {
    const { stdout } = await run(process.execPath, [PUBLISH_BIN, '--spec', gripd.publishUrl, 'test', `hello ${i}`]);
    assert.equal(stdout, 'Published\n');
    delivered = await s.waitFor(`hello ${i}\n`).then(() => true, () => false);
  }
  assert.ok(delivered, `stream got: ${s.text()}`);
  s.close();
});

test('demo: a long-poll on /response is answered by a publish', async () => {
  const pending = fetch(`${gripd.url}/response?channel=lp`);
  let answered = false;
  const result = pending.then(async (r) => { answered = true; return { status: r.status, body: await r.text() }; });
  for (let i = 0; i < 50 && !answered; i++) {
    await run(process.execPath, [PUBLISH_BIN, '--spec', gripd.publishUrl, 'lp', 'answer']);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { status, body } = await result;
  assert.equal(status, 200);
  assert.equal(body, 'answer\n');
});

test('demo: gripd-publish with a ZeroMQ spec publishes through the PULL socket', async () => {
  const s = await openStream(`${gripd.url}/stream?channel=zmqdemo`);
  let delivered = false;
  for (let i = 0; i < 20 && !delivered; i++) {
    const { stdout } = await run(process.execPath, [PUBLISH_BIN, '--spec', `tcp://127.0.0.1:${gripd.pullPort}`, 'zmqdemo', `zmq ${i}`]);
    assert.equal(stdout, 'Published\n');
    delivered = await s.waitFor(`zmq ${i}\n`).then(() => true, () => false);
  }
  assert.ok(delivered, `stream got: ${s.text()}`);
  s.close();
});

test('demo: gripd-publish refuses an out-of-range --code with exit 1 and a message', async () => {
  await assert.rejects(
    run(process.execPath, [PUBLISH_BIN, '--spec', gripd.publishUrl, '--code', '1000', 'test', 'x']),
    (err: { code?: number; stderr?: string }) => err.code === 1 && /between 0 and 999/.test(err.stderr ?? ''),
  );
});
