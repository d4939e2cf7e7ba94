/**
 * The HTTP publish API over raw sockets, compared byte for byte with what Pushpin 1.36
 * answers to the same requests (recorded from the reference instance).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { loadConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import type { PublishItem } from '../../src/grip/types.js';
import { createLogger } from '../../src/log/index.js';
import { startPublishApi, type PublishApi } from '../../src/publish/http-api.js';
import { freePorts } from '../helpers/ports.js';

class Recorder {
  batches: PublishItem[][] = [];
  recovers = 0;
  publish(items: PublishItem[]): void {
    this.batches.push(items);
  }
  recover(): void {
    this.recovers++;
  }
}

async function start(handler: Partial<Config['handler']> = {}): Promise<{ api: PublishApi; port: number; rec: Recorder }> {
  const { config: base } = await loadConfig({ searchPaths: [] });
  const [port] = (await freePorts(1)) as [number];
  const config: Config = { ...base, handler: { ...base.handler, pushInHttpAddr: '127.0.0.1', pushInHttpPort: port, ...handler } };
  const logger = createLogger({ level: 0, json: true, destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const rec = new Recorder();
  const api = await startPublishApi({ config, handler: rec, logger });
  return { api, port, rec };
}

/** Sends raw bytes and collects everything until the server closes. */
function raw(port: number, data: string | Buffer, deadlineMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${deadlineMs} ms; got ${JSON.stringify(out)}`));
    }, deadlineMs);
    s.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', () => undefined);
  });
}

const reply = (status: string, body: string, extra = '', ct = 'text/plain', version = '1.1'): string =>
  `HTTP/${version} ${status}\r\n${extra}Content-Type: ${ct}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

const post = (path: string, body: string, extra = '', version = '1.1'): string =>
  `POST ${path} HTTP/${version}\r\nHost: x\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('publish api: answers as Pushpin 1.36', () => {
  let ctx: Awaited<ReturnType<typeof start>>;
  before(async () => {
    ctx = await start();
  });
  after(async () => {
    await ctx.api.close();
  });

  const cases: Array<[string, string, string]> = [
    ['GET / says hello', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', reply('200 OK', 'Pushpin API\n')],
    ['GET /publish/ is 405 with Allow', 'GET /publish/ HTTP/1.1\r\nHost: x\r\n\r\n', reply('405 Method Not Allowed', 'Method not allowed: GET.\n', 'Allow: POST\r\n')],
    ['POST without Content-Length is 411', 'POST /publish/ HTTP/1.1\r\nHost: x\r\n\r\n', reply('411 Length Required', 'Request requires Content-Length.\n')],
    ['chunked POST is 411', 'POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', reply('411 Length Required', 'Request requires Content-Length.\n')],
    ['body that is not JSON', post('/publish', 'abc'), reply('400 Bad Request', 'Body is not valid JSON.\n')],
    ['JSON that is not an object', post('/publish', '[]'), reply('400 Bad Request', 'Invalid format.\n')],
    ['object without items', post('/publish', '{}'), reply('400 Bad Request', "Invalid format: object does not contain 'items'\n")],
    ['items of the wrong type', post('/publish', '{"items":{}}'), reply('400 Bad Request', "Invalid format: object contains 'items' with wrong type\n")],
    ['empty items list publishes', post('/publish', '{"items":[]}'), reply('200 OK', 'Published\n')],
    ['Accept: application/json answers JSON', post('/publish', '{"items":[]}', 'Accept: application/json\r\n'), reply('200 OK', '{"message":"Published"}\n', '', 'application/json')],
    ['unacceptable Accept is 406', post('/publish', '{"items":[]}', 'Accept: image/png\r\n'), reply('406 Not Acceptable', 'Not Acceptable. Supported formats are text/plain and application/json.\n')],
    ['HTTP/1.0 gets an HTTP/1.0 answer', post('/publish', '{"items":[]}', '', '1.0'), reply('200 OK', 'Published\n', '', 'text/plain', '1.0')],
    ['unknown path is 404', post('/foo', '{"items":[]}'), reply('404 Not Found', 'Not Found\n')],
    ['a query string is part of the path (404)', post('/publish?x=1', '{"items":[]}'), reply('404 Not Found', 'Not Found\n')],
    ['GET /recover is 405', 'GET /recover HTTP/1.1\r\nHost: x\r\n\r\n', reply('405 Method Not Allowed', 'Method not allowed: GET.\n', 'Allow: POST\r\n')],
    ['POST /recover', post('/recover', ''), reply('200 OK', 'Updated\n')],
    ['Content-Length over the limit', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n', reply('400 Bad Request', 'Request body too large.\n')],
    ['Content-Length that is not a number', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', reply('400 Bad Request', 'Bad Content-Length.\n')],
    ['request line that does not parse', 'GARBAGE\r\n\r\n', reply('400 Bad Request', 'Failed to parse request header.\n')],
    ['body longer than Content-Length', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabcd', reply('400 Bad Request', 'Request body exceeded Content-Length.\n')],
  ];
  for (const [name, request, expected] of cases) {
    test(`publish api: ${name}`, async () => {
      assert.equal(await raw(ctx.port, request), expected);
    });
  }

  test('publish api: a valid publish is answered, then handed to the handler', async () => {
    const before = ctx.rec.batches.length;
    const body = JSON.stringify({ items: [{ channel: 'a', formats: { 'http-stream': { content: 'hi\n' } } }, { channel: 'b', formats: { 'http-response': { body: 'x' } } }] });
    assert.equal(await raw(ctx.port, post('/publish/', body)), reply('200 OK', 'Published\n'));
    assert.equal(ctx.rec.batches.length, before + 1);
    assert.deepEqual(ctx.rec.batches.at(-1)!.map((i) => i.channel), ['a', 'b']);
  });

  test('publish api: a batch with one bad item is rejected whole and publishes nothing', async () => {
    const before = ctx.rec.batches.length;
    const body = JSON.stringify({ items: [{ channel: 'a', formats: { 'http-stream': { content: 'hi\n' } } }, { formats: { 'http-stream': { content: 'x' } } }] });
    const out = await raw(ctx.port, post('/publish/', body));
    assert.match(out, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(out, /\r\n\r\nInvalid format: .*channel.*\n$/);
    assert.equal(ctx.rec.batches.length, before);
  });

  test('publish api: 10 000 items in one publish are rejected with a 400 and nothing is published', async () => {
    const before = ctx.rec.batches.length;
    const items = Array.from({ length: 10_000 }, (_, i) => ({ channel: `c${i}`, formats: { 'http-stream': { content: 'x' } } }));
    const out = await raw(ctx.port, post('/publish/', JSON.stringify({ items })));
    assert.match(out, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(out, /items/);
    assert.equal(ctx.rec.batches.length, before);
  });

  test('publish api: POST /recover calls recover()', async () => {
    const before = ctx.rec.recovers;
    await raw(ctx.port, post('/recover', ''));
    assert.equal(ctx.rec.recovers, before + 1);
  });

  test('publish api: a header block over push_in_http_max_headers_size is refused', async () => {
    const big = `POST /publish HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 12\r\n\r\n{"items":[]}`;
    assert.equal(await raw(ctx.port, big), reply('400 Bad Request', 'Request header too large.\n'));
  });

  test('publish api: a request split at every byte still parses', async () => {
    const req = post('/publish', '{"items":[]}');
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(ctx.port, '127.0.0.1', async () => {
        s.setNoDelay(true);
        for (const ch of req) {
          s.write(ch);
          await new Promise((r) => setImmediate(r));
        }
      });
      let acc = '';
      s.on('data', (d: Buffer) => { acc += d.toString('latin1'); });
      s.on('close', () => resolve(acc));
      s.on('error', () => undefined);
    });
    assert.equal(out, reply('200 OK', 'Published\n'));
  });
});

describe('publish api: optional publisher key (gripd extension)', () => {
  let ctx: Awaited<ReturnType<typeof start>>;
  const key = Buffer.from('s3cret-key');
  before(async () => {
    ctx = await start({ publishKey: key });
  });
  after(async () => {
    await ctx.api.close();
  });

  test('publish api: without credentials the answer is 401', async () => {
    const out = await raw(ctx.port, post('/publish', '{"items":[]}'));
    assert.match(out, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  });

  test('publish api: a Bearer JWT signed with the key is accepted, a wrong one refused', async () => {
    const good = await new SignJWT({ iss: 'me' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);
    const bad = await new SignJWT({ iss: 'me' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from('other'));
    assert.equal(await raw(ctx.port, post('/publish', '{"items":[]}', `Authorization: Bearer ${good}\r\n`)), reply('200 OK', 'Published\n'));
    assert.match(await raw(ctx.port, post('/publish', '{"items":[]}', `Authorization: Bearer ${bad}\r\n`)), /^HTTP\/1\.1 401 /);
  });

  test('publish api: Basic credentials with the key as password are accepted', async () => {
    const ok = Buffer.from(`user:${key.toString()}`).toString('base64');
    const no = Buffer.from('user:nope').toString('base64');
    assert.equal(await raw(ctx.port, post('/publish', '{"items":[]}', `Authorization: Basic ${ok}\r\n`)), reply('200 OK', 'Published\n'));
    assert.match(await raw(ctx.port, post('/publish', '{"items":[]}', `Authorization: Basic ${no}\r\n`)), /^HTTP\/1\.1 401 /);
  });
});
