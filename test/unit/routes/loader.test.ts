import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log/index.js';
import { watchRoutesFile, resolveRouteFiles, parseRoutesText, type RouteTable } from '../../../src/routes/index.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'gripd-routes-'));
  dirs.push(d);
  return d;
}

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push((JSON.parse(l) as { msg: string }).msg);
      cb();
    },
  });
  return { logger: createLogger({ level: 3, json: true, destination: dest }), lines };
}

/** Collects tables from onUpdate; next() waits for one, failing after a deadline. */
function updates(): { onUpdate(t: RouteTable): void; next(deadlineMs?: number): Promise<RouteTable> } {
  const queue: RouteTable[] = [];
  let wake: (() => void) | undefined;
  return {
    onUpdate(t) {
      queue.push(t);
      wake?.();
    },
    async next(deadlineMs = 10_000) {
      const end = Date.now() + deadlineMs;
      while (queue.length === 0) {
        if (Date.now() > end) throw new Error('no routes update before the deadline');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
      return queue.shift() as RouteTable;
    },
  };
}

const hosts = (t: RouteTable): string[] => t.routes.map((r) => r.domain);

describe('watchRoutesFile', () => {
  test('missing file: empty table and a warning', async () => {
    const { logger, lines } = captureLogger();
    const file = path.join(tempDir(), 'routes');
    const w = await watchRoutesFile(file, { logger, onUpdate() {} });
    w.close();
    assert.equal(w.table.routes.length, 0);
    assert.ok(lines.some((l) => l === `${file}: routes file not found; no routes loaded from it`), lines.join('\n'));
  });

  test('loads, logs bad lines as file:line, and reloads on change', async () => {
    const { logger, lines } = captureLogger();
    const file = path.join(tempDir(), 'routes');
    writeFileSync(file, '* test\n*,proto=x test\n');
    const u = updates();
    const w = await watchRoutesFile(file, { logger, onUpdate: u.onUpdate, debounceMs: 20 });
    try {
      assert.deepEqual(hosts(w.table), ['*']);
      assert.ok(lines.includes(`${file}:2: proto must be 'http' or 'ws', got 'x'`), lines.join('\n'));
      writeFileSync(file, '* test\nexample.com test\n');
      assert.deepEqual(hosts(await u.next()), ['*', 'example.com']);
    } finally {
      w.close();
    }
  });

  test('sees an editor replacing the file by rename', async () => {
    const { logger } = captureLogger();
    const dir = tempDir();
    const file = path.join(dir, 'routes');
    writeFileSync(file, '* test\n');
    const u = updates();
    const w = await watchRoutesFile(file, { logger, onUpdate: u.onUpdate, debounceMs: 20 });
    try {
      const tmp = path.join(dir, '.routes.swp');
      writeFileSync(tmp, 'a.com test\n');
      renameSync(tmp, file);
      assert.deepEqual(hosts(await u.next()), ['a.com']);
      // A second replacement is seen too (the watch is on the directory, not the old inode).
      writeFileSync(tmp, 'b.com test\n');
      renameSync(tmp, file);
      assert.deepEqual(hosts(await u.next()), ['b.com']);
    } finally {
      w.close();
    }
  });

  test('garbage file reloads with bad lines skipped; deleted file keeps current table', async () => {
    const { logger, lines } = captureLogger();
    const file = path.join(tempDir(), 'routes');
    writeFileSync(file, '* test\n');
    const u = updates();
    const w = await watchRoutesFile(file, { logger, onUpdate: u.onUpdate, debounceMs: 20 });
    try {
      writeFileSync(file, Buffer.concat([Buffer.from('\u0000\u00ff"\\,,= #\n'), Buffer.from('x.com test\n'), Buffer.alloc(50, 0xfe)]));
      assert.deepEqual(hosts(await u.next()), ['x.com']);
      unlinkSync(file);
      writeFileSync(path.join(path.dirname(file), 'other'), 'unrelated');
      // Recreating the file is the next update; nothing came for the deletion.
      writeFileSync(file, 'y.com test\n');
      assert.deepEqual(hosts(await u.next()), ['y.com']);
      assert.ok(lines.some((l) => l.startsWith(`${file}:1: `)), lines.join('\n'));
    } finally {
      w.close();
    }
  });

  test('close stops updates', async () => {
    const { logger } = captureLogger();
    const file = path.join(tempDir(), 'routes');
    writeFileSync(file, '* test\n');
    let calls = 0;
    const w = await watchRoutesFile(file, { logger, onUpdate: () => calls++, debounceMs: 20 });
    w.close();
    writeFileSync(file, 'z.com test\n');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calls, 0);
  });

  test('watching a missing directory still returns a table', async () => {
    const { logger, lines } = captureLogger();
    const file = path.join(tempDir(), 'nodir', 'routes');
    const w = await watchRoutesFile(file, { logger, onUpdate() {} });
    w.close();
    assert.equal(w.table.routes.length, 0);
    assert.ok(lines.some((l) => l.startsWith('cannot watch')), lines.join('\n'));
  });
});

describe('resolveRouteFiles', () => {
  test('sig_key=file: reads a hex secret or PEM relative to the routes dir', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'hex.key'), ' 736563726574\n');
    writeFileSync(path.join(dir, 'k.pem'), '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n');
    const { routes } = parseRoutesText('a.com,sig_key=file:hex.key test\nb.com,sig_key=file:k.pem test\nc.com,sig_key=file:none test', 'routes');
    const res = await resolveRouteFiles(routes, dir, 'routes');
    assert.deepEqual(res.routes[0]?.sigKey, new Uint8Array(Buffer.from('secret')));
    assert.match(Buffer.from(res.routes[1]?.sigKey ?? []).toString(), /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(res.routes[2]?.sigKey, undefined);
    assert.equal(res.diagnostics.length, 1);
    assert.match(res.diagnostics[0]?.message ?? '', /^cannot read sig_key file '.*none': .*; using the global sig_key$/);
    assert.equal(res.diagnostics[0]?.line, 3);
    assert.equal(routes[0]?.sigKey, undefined, 'input not modified');
  });
  test('client_cert/client_key are read; an unreadable one drops the route', async () => {
    const dir = tempDir();
    const cert = path.join(dir, 'c.pem');
    writeFileSync(cert, 'CERT');
    const { routes } = parseRoutesText(`a.com h:443,ssl,client_cert=${cert}\nb.com h:443,client_key=${path.join(dir, 'missing')}`, 'routes');
    const res = await resolveRouteFiles(routes, dir, 'routes');
    assert.deepEqual(res.routes.map((r) => r.domain), ['a.com']);
    assert.equal(res.routes[0]?.targets[0]?.clientCert, 'CERT');
    assert.equal(res.diagnostics[0]?.severity, 'error');
    assert.equal(res.diagnostics[0]?.line, 2);
  });
});
