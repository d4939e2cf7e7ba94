/**
 * Outbound policy end to end: gripd started via its CLI, real loopback backends.
 * Links handed out by an untrusted target never reach an internal address (literal
 * or through DNS), the refusal is logged with the URL and reason, and the held client
 * gets what Pushpin gives for a failed link fetch; trusted routes still reach
 * loopback links.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { openStream, waitFor } from '../hardening/util.js';

/** A backend whose `/abs`, `/dns`, `/rel` hold a stream with a next link and `/gone` holds a response with a gone link. */
async function linkingBackend(internalPort: () => number): Promise<Backend> {
  return startBackend((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const stream = (link: string): void => {
      res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': `ob${p}`, 'Grip-Link': `<${link}>; rel=next; timeout=1`, 'Content-Type': 'text/plain' });
      res.end('open\n');
    };
    if (p === '/abs') return stream(`http://127.0.0.1:${internalPort()}/admin`);
    if (p === '/dns') return stream(`http://localhost:${internalPort()}/dns-admin`);
    if (p === '/gone') {
      res.writeHead(200, { 'Grip-Hold': 'response', 'Grip-Channel': 'ob-gone', 'Grip-Timeout': '60', 'Grip-Link': `<http://127.0.0.1:${internalPort()}/gone-cb>; rel=gone`, 'Content-Type': 'text/plain' });
      res.end('timeout\n');
      return;
    }
    res.end('plain\n');
  });
}

describe('outbound policy: untrusted target', () => {
  let internal: Backend;
  let backend: Backend;
  let g: GripdInstance;
  before(async () => {
    internal = await startBackend((_req, res) => { res.end('internal secret\n'); });
    backend = await linkingBackend(() => internal.port);
    g = await startGripd({ routes: [`* 127.0.0.1:${backend.port},untrusted`] });
  });
  after(async () => { await g.stop(); await backend.close(); await internal.close(); });

  test('outbound: an absolute next link to 127.0.0.1 is refused, logged with URL and reason, and retried like a failed fetch', async () => {
    const s = await openStream(g.httpPort, '/abs');
    try {
      await s.wait(/open\n/);
      const url = `http://127.0.0.1:${internal.port}/admin`;
      const refusals = (): number => g.output().split('\n').filter((l) => l.includes(`outbound policy refused ${url}`)).length;
      await waitFor('the first refusal', () => refusals() >= 1);
      const line = g.output().split('\n').find((l) => l.includes(`outbound policy refused ${url}`)) ?? '';
      assert.match(line, /^\[WARN\]/);
      assert.match(line, /address 127\.0\.0\.1 is in denied range 127\.0\.0\.0\/8/);
      // As Pushpin, the client stays connected while the link is retried.
      await waitFor('a retry of the refused link', () => refusals() >= 2, 15_000);
      assert.equal(s.closed(), false);
      assert.equal(internal.requests.length, 0);
      assert.ok(!s.text().includes('internal secret'));
    } finally { s.close(); }
  });

  test('outbound: a next link whose host name resolves to loopback is refused after resolving it', async () => {
    const s = await openStream(g.httpPort, '/dns');
    try {
      await s.wait(/open\n/);
      const url = `http://localhost:${internal.port}/dns-admin`;
      await waitFor('the refusal', () => g.output().includes(`outbound policy refused ${url}`));
      assert.ok(internal.requests.every((r) => r.url !== '/dns-admin'));
    } finally { s.close(); }
  });

  test('outbound: a gone link to an internal address is not POSTed', async () => {
    const s = await openStream(g.httpPort, '/gone');
    try {
      await waitFor('the hold', () => /GET \/gone -> \S+ .*accept/.test(g.output()));
      // Pushpin posts the gone link when the held client goes away.
      s.close();
      const url = `http://127.0.0.1:${internal.port}/gone-cb`;
      await waitFor('the gone-link refusal', () => g.output().includes(`outbound policy refused ${url}`));
      assert.ok(internal.requests.every((r) => r.url !== '/gone-cb'));
    } finally { s.close(); }
  });

  test('outbound: plain proxying to the route still works after refusals', async () => {
    const r = await fetch(`${g.url}/plain`);
    assert.equal(await r.text(), 'plain\n');
  });
});

describe('outbound policy: trusted target (the default)', () => {
  let internal: Backend;
  let backend: Backend;
  let g: GripdInstance;
  before(async () => {
    internal = await startBackend((_req, res) => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('linked body\n'); });
    backend = await linkingBackend(() => internal.port);
    g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  });
  after(async () => { await g.stop(); await backend.close(); await internal.close(); });

  test('outbound: a trusted target may hand out a next link to a loopback backend', async () => {
    const s = await openStream(g.httpPort, '/abs');
    try {
      await s.wait(/open\n/);
      await s.wait(/linked body\n/);
      assert.equal(internal.requests[0]?.url, '/admin');
      assert.equal(internal.requests[0]?.headers.host, `127.0.0.1:${internal.port}`);
      assert.ok(!g.output().includes('outbound policy refused'));
    } finally { s.close(); }
  });
});
