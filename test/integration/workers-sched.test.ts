/**
 * Who accepts client connections with workers=2. By default the primary accepts and
 * hands each connection to a worker in turn (node:cluster round-robin), so the workers
 * hold no listening socket. With node:cluster's own NODE_CLUSTER_SCHED_POLICY=none the
 * workers accept from the shared listening socket themselves. Read from /proc: which
 * processes hold the client port's listening socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import { startGripd, type GripdInstance, workerPids } from '../helpers/gripd.js';
import { openStream } from '../helpers/stream-client.js';
import { holdsSocket, tcpSocketInodes } from '../helpers/proc-sockets.js';

const CLIENTS = 30;
const started: GripdInstance[] = [];
after(async () => {
  for (const g of started) if (g.proc.exitCode === null) await g.stop('SIGKILL');
});

/** Inodes of the sockets listening on `port` (any address). */
function listeningInodes(port: number): Set<string> {
  return tcpSocketInodes((e) => e.localPort === port && e.state === '0A');
}

async function startTwoWorkers(env?: Record<string, string>): Promise<{ g: GripdInstance; pids: number[] }> {
  const g = await startGripd({ sections: { proxy: ['workers=2'] }, ...(env ? { env } : {}) });
  started.push(g);
  await waitFor(() => workerPids(g.output()).size === 2, 'both workers ready');
  return { g, pids: [...workerPids(g.output()).values()] };
}

test('workers: by default the workers hold no listening socket (the primary accepts and hands out)', async () => {
  const { g, pids } = await startTwoWorkers();
  const inodes = listeningInodes(g.httpPort);
  assert.ok(inodes.size > 0, `no listening socket found for port ${g.httpPort}`);
  for (const pid of pids) assert.equal(holdsSocket(pid, inodes), false, `worker pid ${pid} holds the listening socket`);
  assert.equal(holdsSocket(g.proc.pid!, inodes), true, 'the primary holds the listening socket');
});

test('workers: NODE_CLUSTER_SCHED_POLICY=none lets each worker accept itself; every client is served', async () => {
  const { g, pids } = await startTwoWorkers({ NODE_CLUSTER_SCHED_POLICY: 'none', UV_TCP_SINGLE_ACCEPT: '1' });
  const inodes = listeningInodes(g.httpPort);
  for (const pid of pids) assert.equal(holdsSocket(pid, inodes), true, `worker pid ${pid} does not hold the listening socket`);
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
