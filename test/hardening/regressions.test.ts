/**
 * Regression tests for bugs the hardening work found, each named for the bug. The
 * end-to-end versions live beside them in this folder; these pin the unit behaviour.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseRoutesText, watchRoutesFile } from '../../src/routes/index.js';
import { hasDuplicateHost } from '../../src/proxy/listeners.js';
import type { RouteTable } from '../../src/routes/table.js';
import { startGripd } from '../helpers/gripd.js';
import { startBackend } from '../helpers/backend.js';
import { rawRequest, get } from './util.js';

test('regression: a routes header= value with CR/LF was accepted (and broke every request on the route)', () => {
  for (const line of ['*,"header=X-A:a\rX-B: b" test', '*,"header=X A:b" test', '*,"header=X-A:a\x00" test']) {
    const r = parseRoutesText(line + '\n', 'routes');
    assert.equal(r.routes.length, 0, JSON.stringify(line));
    assert.equal(r.diagnostics[0]?.line, 1);
    assert.equal(r.diagnostics[0]?.severity, 'error');
  }
  // Ordinary values, including non-ASCII and tabs, still work.
  const ok = parseRoutesText('*,"header=X-A:caf\u00e9\tok" test\n', 'routes');
  assert.deepEqual(ok.routes[0]?.headers, [['X-A', 'caf\u00e9\tok']]);
});

test('regression: a routes file replaced by garbage emptied the running table', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gripd-hard-'));
  const file = path.join(dir, 'routes');
  writeFileSync(file, 'keep.com test\n');
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { lines.push(String(JSON.parse(s).msg)); } });
  let table: RouteTable | undefined;
  const w = await watchRoutesFile(file, { logger, debounceMs: 20, onUpdate: (t) => { table = t; } });
  try {
    writeFileSync(file, Buffer.concat([Buffer.from('\u0000garbage "\n,,,\n'), Buffer.alloc(100, 0xfe)]));
    const end = Date.now() + 5000;
    while (!lines.some((l) => l.includes('keeping the running routes')) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.ok(lines.some((l) => l.startsWith(`${file}:1: `)), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('keeping the running routes')), lines.join('\n'));
    assert.equal(table, undefined, 'the garbage file replaced the table');
    // A good file afterwards is applied as usual.
    writeFileSync(file, 'next.com test\n');
    while (table === undefined && Date.now() < end + 5000) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual((table as RouteTable | undefined)?.routes.map((r) => r.domain), ['next.com']);
  } finally { w.close(); }
});

test('regression: two Host headers were forwarded (gripd routed on the first)', () => {
  assert.equal(hasDuplicateHost(['Host', 'a', 'X', 'y', 'host', 'b']), true);
  assert.equal(hasDuplicateHost(['Host', 'a', 'X-Host', 'b']), false);
  assert.equal(hasDuplicateHost([]), false);
});

test('regression: 300 "OPTIONS *" requests stalled the backend pool (undici refused the asterisk path and the pooled connection never drained)', async () => {
  const backend = await startBackend((_req, res) => { res.end('ok'); });
  const g = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  try {
    for (let i = 0; i < 300; i++) {
      const r = await rawRequest(g.httpPort, `${i % 2 === 0 ? 'OPTIONS' : 'GET'} * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.match(r.text, i % 2 === 0 ? /^HTTP\/1\.1 200 / : /^HTTP\/1\.1 400 /);
    }
    assert.equal((await get(`${g.url}/after`)).body, 'ok');
    assert.equal(backend.requests.length, 1);
  } finally { await g.stop(); await backend.close(); }
});
