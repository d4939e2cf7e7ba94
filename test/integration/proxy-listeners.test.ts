import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, copyFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePort } from '../helpers/ports.js';
import { startHarness, type Harness } from './proxy-harness.js';

/** Self-signed certificate for `cn` written as `<dir>/<name>.crt|.key` (openssl CLI). */
function makeCert(dir: string, name: string, cn: string): void {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${cn}`, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.crt`),
  ], { stdio: 'ignore' });
}

/** Subject CN of the certificate the server presents for `servername`. */
function peerCn(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.end();
      resolve(String(cn));
    });
    s.on('error', reject);
  });
}

function get(url: string, opts: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.request(url, opts, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('proxy listeners: TLS with SNI certificates', () => {
  let backend: Backend;
  let h: Harness;
  let certs: string;
  let tlsPort = 0;
  before(async () => {
    certs = mkdtempSync(path.join(tmpdir(), 'gripd-certs-'));
    tlsPort = await freePort();
    makeCert(certs, `default_${tlsPort}`, 'default.example');
    makeCert(certs, 'www.example.com', 'www.example.com');
    makeCert(certs, '_.wild.example', '*.wild.example');
    backend = await startBackend((req, res) => { res.end(`ok ${String(req.headers['x-forwarded-proto'])}`); });
    h = await startHarness({
      routes: [`* 127.0.0.1:${backend.port}`],
      config: { runner: { httpsPorts: [{ host: '127.0.0.1', port: tlsPort }], certsDir: certs }, proxy: { setXForwardedProtocol: 'proto-only' } },
    });
  });
  after(async () => { await h.close(); await backend.close(); rmSync(certs, { recursive: true, force: true }); });

  test('picks the certificate by SNI: exact, wildcard, then the listener default', async () => {
    assert.equal(await peerCn(tlsPort, 'www.example.com'), 'www.example.com');
    assert.equal(await peerCn(tlsPort, 'a.wild.example'), '*.wild.example');
    assert.equal(await peerCn(tlsPort, 'unknown.example'), 'default.example');
    assert.equal(await peerCn(tlsPort, undefined), 'default.example');
  });

  test('requests over TLS are proxied as https', async () => {
    const r = await get(`https://127.0.0.1:${tlsPort}/x`, { rejectUnauthorized: false, servername: 'www.example.com' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok https');
  });

  test('reloadTls picks up a replaced certificate', async () => {
    const other = mkdtempSync(path.join(tmpdir(), 'gripd-certs2-'));
    try {
      makeCert(other, 'www.example.com', 'renewed.example.com');
      copyFileSync(path.join(other, 'www.example.com.crt'), path.join(certs, 'www.example.com.crt'));
      copyFileSync(path.join(other, 'www.example.com.key'), path.join(certs, 'www.example.com.key'));
      h.proxy.reloadTls();
      assert.equal(await peerCn(tlsPort, 'www.example.com'), 'renewed.example.com');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('proxy listeners: Unix socket and TLS backends', () => {
  let backend: https.Server;
  let backendPort = 0;
  let h: Harness;
  let dir: string;
  let sock: string;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gripd-unix-'));
    sock = path.join(dir, 'gripd.sock');
    makeCert(dir, 'backend', 'localhost');
    const { readFileSync } = await import('node:fs');
    backend = https.createServer({ key: readFileSync(path.join(dir, 'backend.key')), cert: readFileSync(path.join(dir, 'backend.crt')) }, (req, res) => {
      res.end(`tls backend ${req.url}`);
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    backendPort = (backend.address() as import('node:net').AddressInfo).port;
    h = await startHarness({
      routes: [`* 127.0.0.1:${backendPort},ssl,insecure`, `strict.test 127.0.0.1:${backendPort},ssl`],
      config: { runner: { localPorts: [sock] } },
    });
  });
  after(async () => { await h.close(); backend.close(); rmSync(dir, { recursive: true, force: true }); });

  test('serves HTTP on a local_ports Unix socket', async () => {
    const r = await get('http://localhost/over-unix', { socketPath: sock });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'tls backend /over-unix');
  });

  test('TLS to a backend: insecure accepts a self-signed cert, otherwise 502', async () => {
    const ok = await get(`${h.url}/a`);
    assert.equal(ok.body, 'tls backend /a');
    const strict = await get(`${h.url}/b`, { headers: { host: 'strict.test' } });
    assert.equal(strict.status, 502);
  });
});
