/**
 * Who accepts client connections with workers=2. By default the primary accepts and
 * hands each connection to a worker in turn (node:cluster round-robin), so the workers
 * hold no listening socket. With node:cluster's own NODE_CLUSTER_SCHED_POLICY=none the
 * workers accept from the shared listening socket themselves. Read from /proc: which
 * processes hold the client port's listening socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { openStream } from '../helpers/stream-client.js';

const CLIENTS = 30;
const started: GripdInstance[] = [];
after(async () => {
  for (const g of started) if (g.proc.exitCode === null) await g.stop('SIGKILL');
});

async function waitFor(cond: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1]!.split(':')[1]!, 16);
      if (localPort === port && f[3] === '0A') inodes.add(f[9]!);
    }
  }
  return inodes;
}

function holdsAny(pid: number, inodes: Set<string>): boolean {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link = '';
    try { link = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m && inodes.has(m[1]!)) return true;
  }
  return false;
}

function workerPids(output: string): number[] {
  const pids = new Map<number, number>();
  for (const m of output.matchAll(/worker (\d+) ready \(pid (\d+)\)/g)) pids.set(Number(m[1]), Number(m[2]));
  return [...pids.values()];
}

async function startTwoWorkers(env?: Record<string, string>): Promise<{ g: GripdInstance; pids: number[] }> {
  const g = await startGripd({ sections: { proxy: ['workers=2'] }, ...(env ? { env } : {}) });
  started.push(g);
  await waitFor(() => workerPids(g.output()).length === 2, 'both workers ready');
  return { g, pids: workerPids(g.output()) };
}

test('workers: by default the workers hold no listening socket (the primary accepts and hands out)', async () => {
  const { g, pids } = await startTwoWorkers();
  const inodes = listeningInodes(g.httpPort);
  assert.ok(inodes.size > 0, `no listening socket found for port ${g.httpPort}`);
  for (const pid of pids) assert.equal(holdsAny(pid, inodes), false, `worker pid ${pid} holds the listening socket`);
  assert.equal(holdsAny(g.proc.pid!, inodes), true, 'the primary holds the listening socket');
});

test('workers: NODE_CLUSTER_SCHED_POLICY=none lets each worker accept itself; every client is served', async () => {
  const { g, pids } = await startTwoWorkers({ NODE_CLUSTER_SCHED_POLICY: 'none', UV_TCP_SINGLE_ACCEPT: '1' });
  const inodes = listeningInodes(g.httpPort);
  for (const pid of pids) assert.equal(holdsAny(pid, inodes), true, `worker pid ${pid} does not hold the listening socket`);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openStream(`${g.url}/stream?channel=sched`)));
  try {
    const body = JSON.stringify({ items: [{ channel: 'sched', formats: { 'http-stream': { content: 'hello-sched\n' } } }] });
    const res = await fetch(`${g.publishUrl}/publish`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 200, await res.text());
    await waitFor(() => clients.every((c) => c.text().includes('hello-sched\n')), 'the item at every client');
    for (const c of clients) assert.equal(c.text().split('hello-sched\n').length - 1, 1);
  } finally {
    for (const c of clients) c.close();
  }
});
