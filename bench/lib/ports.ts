import net from 'node:net';
import { sleep } from './stats.js';

/** Asks the kernel for `count` distinct free TCP ports on 127.0.0.1. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('listen gave no port');
      ports.push(addr.port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
  return ports;
}

/** True when `port` can be bound on 127.0.0.1 right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Bound on attempts to find a free Pushpin port offset. */
const MAX_OFFSET_TRIES = 50;

/**
 * A port offset N (multiple of 10, 21000..59000) such that Pushpin's ZeroMQ and publish
 * ports 5560+N..5563+N are all free, avoiding 10000/20000 which people use by hand.
 */
export async function freePortOffset(): Promise<number> {
  for (let i = 0; i < MAX_OFFSET_TRIES; i++) {
    const offset = 21000 + 10 * Math.floor(Math.random() * 3400);
    const ok = await Promise.all([0, 1, 2, 3].map((d) => portFree(5560 + offset + d)));
    if (ok.every(Boolean)) return offset;
  }
  throw new Error(`no free Pushpin port offset after ${MAX_OFFSET_TRIES} tries`);
}

/** Resolves once a TCP connect to host:port succeeds; rejects after `deadlineMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', deadlineMs = 20000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${host}:${port} did not open within ${deadlineMs} ms`);
    await sleep(50);
  }
}
