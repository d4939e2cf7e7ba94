import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, keyStatus } from '../../../src/config/index.js';
import { formatDiagnostic } from '../../../src/diagnostic.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function load(conf: string, extra: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gripd-config-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'pushpin.conf'), conf);
  for (const [name, text] of Object.entries(extra)) await writeFile(path.join(dir, name), text);
  const r = await loadConfig({ configPath: path.join(dir, 'pushpin.conf'), searchPaths: [] });
  return { ...r, file: path.join(dir, 'pushpin.conf'), lines: r.diagnostics.map(formatDiagnostic) };
}

describe('config: message_rate / message_hwm', () => {
  test('config: absent from the file means no cap (undefined)', async () => {
    const r = await load('[runner]\nhttp_port=7999\n');
    assert.deepEqual(r.lines, []);
    assert.equal(r.config.handler.messageRate, undefined);
    assert.equal(r.config.handler.messageHwm, undefined);
  });

  test('config: values set in the file are honoured', async () => {
    const r = await load('[handler]\nmessage_rate=10\nmessage_hwm=20\n');
    assert.deepEqual(r.lines, []);
    assert.equal(r.config.handler.messageRate, 10);
    assert.equal(r.config.handler.messageHwm, 20);
  });

  test('config: values set in an included file are honoured', async () => {
    const r = await load('[global]\ninclude=more.conf\n', { 'more.conf': '[handler]\nmessage_rate=7\n' });
    assert.equal(r.config.handler.messageRate, 7);
    assert.equal(r.config.handler.messageHwm, undefined);
  });

  test('config: 0, -1 and an empty value mean no cap, as in Pushpin', async () => {
    for (const [rate, hwm] of [['0', '-1'], ['-1', '0'], ['', '']]) {
      const r = await load(`[handler]\nmessage_rate=${rate}\nmessage_hwm=${hwm}\n`);
      assert.deepEqual(r.lines, [], `${rate}/${hwm}`);
      assert.equal(r.config.handler.messageRate, undefined);
      assert.equal(r.config.handler.messageHwm, undefined);
    }
  });

  test('config: a malformed message_rate names file, line and key', async () => {
    const r = await load('[handler]\n\nmessage_rate=fast\n');
    assert.equal(r.lines.length, 1);
    assert.match(r.lines[0]!, new RegExp(`^${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: \\[handler\\] message_rate: `));
  });
});

describe('config: push_in_http_key', () => {
  test('config: push_in_http_key is a known, honoured gripd key', () => {
    assert.equal(keyStatus('handler', 'push_in_http_key'), 'honoured');
  });

  test('config: absent or empty means no publisher key', async () => {
    for (const conf of ['[handler]\n', '[handler]\npush_in_http_key=\n']) {
      const r = await load(conf);
      assert.deepEqual(r.lines, []);
      assert.equal(r.config.handler.publishKey, undefined);
    }
  });

  test('config: plain text is used as its UTF-8 bytes', async () => {
    const r = await load('[handler]\npush_in_http_key=s3cret\n');
    assert.deepEqual(r.lines, []);
    assert.equal(Buffer.from(r.config.handler.publishKey!).toString('utf8'), 's3cret');
  });

  test('config: base64: form decodes to the key bytes', async () => {
    const r = await load(`[handler]\npush_in_http_key=base64:${Buffer.from([0, 1, 2, 255]).toString('base64')}\n`);
    assert.deepEqual(r.lines, []);
    assert.deepEqual([...r.config.handler.publishKey!], [0, 1, 2, 255]);
  });

  test('config: file: form reads hex from a file relative to the config', async () => {
    const r = await load('[handler]\npush_in_http_key=file:pub.key\n', { 'pub.key': 'deadbeef\n' });
    assert.deepEqual(r.lines, []);
    assert.deepEqual([...r.config.handler.publishKey!], [0xde, 0xad, 0xbe, 0xef]);
  });

  test('config: a missing key file is an error naming the [handler] key and line', async () => {
    const r = await load('[handler]\npush_in_http_key=file:nope.key\n');
    assert.equal(r.lines.length, 1);
    assert.ok(r.lines[0]!.startsWith(`${r.file}:2: [handler] push_in_http_key: cannot read key file`), r.lines[0]);
  });

  test('config: bad base64 is an error naming the key', async () => {
    const r = await load('[handler]\npush_in_http_key=base64:***\n');
    assert.equal(r.lines.length, 1);
    assert.ok(r.lines[0]!.includes('[handler] push_in_http_key: invalid base64'), r.lines[0]);
  });
});
