/**
 * workers=2 with a Unix-socket listener (local_ports): node:cluster binds the path once
 * in the primary; the workers must not remove each other's socket file. A stale file
 * from an earlier run is replaced.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';

const REQUESTS = 8;

function getOverSocket(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

let g: GripdInstance | undefined;
let dir: string | undefined;
after(async () => {
  if (g && g.proc.exitCode === null) await g.stop('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('workers: local_ports serves every request through both workers, replacing a stale socket file', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gripd-wl-'));
  const sock = path.join(dir, 'gripd.sock');
  // A socket file left behind by a process that died without cleaning up.
  const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(sock)})`], { stdio: 'ignore' });
  await waitFor(() => existsSync(sock), 'stale socket file');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  assert.ok(existsSync(sock), 'the stale file stays behind');

  g = await startGripd({ routes: ['* test'], sections: { runner: [`local_ports=${sock}`], proxy: ['workers=2'] } });
  await waitFor(() => /gripd ready: .*2 workers/.test(g!.output()), 'both workers ready');
  for (let i = 0; i < REQUESTS; i++) {
    const r = await getOverSocket(sock, '/?x=' + i);
    assert.equal(r.status, 200, r.body);
  }
  await waitFor(() => (g!.output().match(/GET \/\?x=/g) ?? []).length >= REQUESTS, 'access lines');
  const workers = new Set([...g.output().matchAll(/GET \/\?x=.*worker=(\d+)/g)].map((m) => m[1]));
  assert.deepEqual([...workers].sort(), ['1', '2']);
  assert.equal(await g.stop('SIGTERM'), 0);
});
