/**
 * Secrets: keys never reach the log (even at debug level), publish credentials are
 * checked without leaking through behaviour, and TLS listeners refuse TLS < 1.2.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { spawn, type ChildProcess } from 'node:child_process';
import { startGripd, GRIPD_BIN, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePorts, waitForPort } from '../helpers/ports.js';
import { get, openStream, rawRequest } from './util.js';

const SIG_KEY = 'sig-key-7f3a9c1e5b2d8f40';
const UPSTREAM_KEY = 'upstream-key-0d9e8c7b6a5f4e3d';
const FILE_KEY = 'file-key-c0ffee1234567890';
const PUBLISH_KEY = 'publish-key-5e6f7a8b9c0d1e2f';

/** Every rendering of `key` a careless log line might contain. */
function renderings(key: string): string[] {
  const b = Buffer.from(key);
  return [key, b.toString('base64'), b.toString('base64url'), b.toString('hex'), JSON.stringify([...b])];
}

describe('hardening: secrets never logged', () => {
  let backend: Backend;
  let g: GripdInstance;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gripd-secrets-'));
    writeFileSync(path.join(dir, 'upstream.key'), FILE_KEY);
    backend = await startBackend((req, res) => {
      if (req.url === '/hold') {
        res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'sec', 'Content-Type': 'text/plain' });
        res.end('open\n');
        return;
      }
      res.end('ok');
    });
    g = await startGripd({
      routes: [`* 127.0.0.1:${backend.port}`, `file.example 127.0.0.1:${backend.port},sig_key=file:${path.join(dir, 'upstream.key')}`],
      sections: {
        proxy: [`sig_key=base64:${Buffer.from(SIG_KEY).toString('base64')}`, `upstream_key=${UPSTREAM_KEY}`, 'debug=true'],
        handler: [`push_in_http_key=${PUBLISH_KEY}`],
      },
      args: ['--loglevel', '3'],
    });
  });
  after(async () => { await g.stop(); await backend.close(); await rm(dir, { recursive: true, force: true }); });

  test('secrets: sig_key (base64:), upstream_key, a route file: key and the publish key never appear in a debug log', async () => {
    assert.equal((await get(`${g.url}/x`)).body, 'ok');
    await rawRequest(g.httpPort, 'GET /x HTTP/1.1\r\nHost: file.example\r\nGrip-Sig: not.a.token\r\nConnection: close\r\n\r\n');
    const s = await openStream(g.httpPort, '/hold');
    try {
      await s.wait(/open\n/);
      const auth = `Basic ${Buffer.from(`u:${PUBLISH_KEY}`).toString('base64')}`;
      const r = await fetch(`${g.publishUrl}/publish/`, {
        method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ items: [{ channel: 'sec', formats: { 'http-stream': { content: 'item\n' } } }] }),
      });
      assert.equal(r.status, 200);
      await s.wait(/item\n/);
      // A wrong key is logged as a refusal at most, never echoed.
      await fetch(`${g.publishUrl}/publish/`, { method: 'POST', headers: { Authorization: `Basic ${Buffer.from(`u:${PUBLISH_KEY}x`).toString('base64')}` }, body: '{}' });
    } finally { s.close(); }
    const out = g.output();
    assert.ok(out.length > 0 && /debug|"level":20|DEBUG/i.test(out), 'expected debug output');
    for (const key of [SIG_KEY, UPSTREAM_KEY, FILE_KEY, PUBLISH_KEY]) {
      for (const form of renderings(key)) assert.ok(!out.includes(form), `log contains ${key} as ${form}`);
    }
  });
});

describe('hardening: publish credentials', () => {
  let g: GripdInstance;
  before(async () => { g = await startGripd({ sections: { handler: [`push_in_http_key=${PUBLISH_KEY}`] } }); });
  after(async () => { await g.stop(); });

  const basic = (pass: string): string => `Basic ${Buffer.from(`user:${pass}`).toString('base64')}`;
  const body = JSON.stringify({ items: [{ channel: 'c', formats: { 'http-stream': { content: 'a' } } }] });
  const send = async (auth: string | undefined): Promise<number> => (await fetch(`${g.publishUrl}/publish/`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...(auth !== undefined ? { Authorization: auth } : {}) }, body,
    signal: AbortSignal.timeout(5000),
  })).status;

  test('secrets: only the exact publish key is accepted (no prefix, no extension, no empty)', async () => {
    assert.equal(await send(basic(PUBLISH_KEY)), 200);
    for (const wrong of ['', PUBLISH_KEY.slice(0, -1), PUBLISH_KEY + 'x', PUBLISH_KEY.toUpperCase(), 'x'.repeat(1000)]) {
      assert.equal(await send(basic(wrong)), 401, `accepted ${JSON.stringify(wrong.slice(0, 40))}`);
    }
    assert.equal(await send(undefined), 401);
    assert.equal(await send('Bearer not.a.jwt'), 401);
    assert.equal(await send(basic(PUBLISH_KEY)), 200);
  });

  test('secrets: the publish key comparison hashes before timingSafeEqual (constant time, any length)', () => {
    // Code review pinned as a test: the comparison must stay constant-time.
    const src = readFileSync(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../src/publish/http-api.ts'), 'utf8');
    const fn = /function constantTimeEqual[\s\S]*?\n}/.exec(src)?.[0] ?? '';
    assert.match(fn, /createHash\('sha256'\)/);
    assert.match(fn, /timingSafeEqual\(/);
    assert.match(src, /constantTimeEqual\(Buffer\.from\(pass, 'utf8'\), key\)/);
    assert.doesNotMatch(fn, /===\s*key|key\s*===|\.equals\(/);
  });
});

describe('hardening: TLS listener versions', () => {
  let proc: ChildProcess | undefined;
  let dir = '';
  let port = 0;
  let skip: string | false = false;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gripd-tls-'));
    const [httpPort, tlsPort, pub, pull, sub, cmd] = await freePorts(6) as [number, number, number, number, number, number];
    port = tlsPort;
    const certs = path.join(dir, 'runner', 'certs');
    mkdirSync(certs, { recursive: true });
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=localhost', '-keyout', path.join(certs, `default_${port}.key`), '-out', path.join(certs, `default_${port}.crt`)], { stdio: 'ignore' });
    } catch (err) {
      skip = `openssl cannot make a test certificate: ${(err as Error).message}`;
      return;
    }
    writeFileSync(path.join(dir, 'routes'), '* test\n');
    writeFileSync(path.join(dir, 'pushpin.conf'), [
      '[global]', `rundir=${dir}/run`, 'ipc_prefix=gripd-tls-',
      '[runner]', `http_port=127.0.0.1:${httpPort}`, `https_ports=127.0.0.1:${tlsPort}`, `logdir=${dir}/log`,
      '[proxy]', 'routesfile=routes', 'workers=1',
      '[handler]', `push_in_spec=tcp://127.0.0.1:${pull}`, `push_in_sub_specs=tcp://127.0.0.1:${sub}`, 'push_in_http_addr=127.0.0.1',
      `push_in_http_port=${pub}`, `command_spec=tcp://127.0.0.1:${cmd}`, `stats_spec=ipc://${dir}/run/stats`, '',
    ].join('\n'));
    proc = spawn(process.execPath, [GRIPD_BIN, '--config', path.join(dir, 'pushpin.conf')], { stdio: 'ignore' });
    await waitForPort(tlsPort);
  });
  after(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  /** Handshakes with the given version range; resolves the negotiated protocol or the error code. */
  function handshake(min: tls.SecureVersion, max: tls.SecureVersion): Promise<string> {
    return new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, minVersion: min, maxVersion: max, ciphers: 'DEFAULT@SECLEVEL=0' });
      s.once('secureConnect', () => { resolve(s.getProtocol() ?? '?'); s.destroy(); });
      s.once('error', (e: Error & { code?: string }) => resolve(`error ${e.code ?? e.message}`));
      s.setTimeout(5000, () => { resolve('error timeout'); s.destroy(); });
    });
  }

  test('secrets: TLS listeners refuse TLS 1.1 (and 1.0) and accept TLS 1.2 and 1.3', async (t) => {
    if (skip !== false) { t.skip(skip); return; }
    assert.equal(await handshake('TLSv1.2', 'TLSv1.2'), 'TLSv1.2');
    assert.equal(await handshake('TLSv1.3', 'TLSv1.3'), 'TLSv1.3');
    const old = await handshake('TLSv1', 'TLSv1.1');
    assert.match(old, /^error /, `a TLS 1.1 client got ${old}`);
    // The refusal came from the server (a protocol-version alert), not from our own client.
    assert.match(old, /ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|ECONNRESET|WRONG_VERSION/, old);
  });
});
