import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BENCH_DIST } from './paths.js';
import { trackChild, stopChild } from './children.js';
import type { ParentMessage, WorkerMessage } from './subscriber-protocol.js';

/** Bound on waiting for a worker's reply to one command. */
const REPLY_TIMEOUT_MS = 60_000;
/** Connections per worker process stay well below the 20 000 open-files limit. */
export const MAX_CONNS_PER_WORKER = 15_000;

/** A pool of subscriber worker processes, each on its own 127.0.0.x source address. */
export class SubscriberPool {
  private constructor(private readonly workers: ChildProcess[], readonly addresses: string[]) {}

  /** Forks `procs` workers (more if needed to keep each under MAX_CONNS_PER_WORKER for `maxSubscribers`). */
  static start(procs: number, maxSubscribers: number): SubscriberPool {
    const n = Math.max(procs, Math.ceil(maxSubscribers / MAX_CONNS_PER_WORKER));
    const workers: ChildProcess[] = [];
    const addresses: string[] = [];
    for (let i = 0; i < n; i++) {
      workers.push(trackChild(fork(path.join(BENCH_DIST, 'lib/subscriber.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })));
      // 127.0.0.11, .12, ...: each source address has its own ephemeral port range.
      addresses.push(`127.0.0.${11 + i}`);
    }
    return new SubscriberPool(workers, addresses);
  }

  get size(): number { return this.workers.length; }

  private ask<T extends WorkerMessage['type']>(w: ChildProcess, msg: ParentMessage, type: T, timeoutMs = REPLY_TIMEOUT_MS): Promise<Extract<WorkerMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onMsg = (m: WorkerMessage) => {
        if (m.type !== type) return;
        cleanup();
        resolve(m as Extract<WorkerMessage, { type: T }>);
      };
      const onExit = (code: number | null) => { cleanup(); reject(new Error(`subscriber worker exited (${code}) while waiting for ${type}`)); };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`subscriber worker gave no ${type} within ${timeoutMs} ms`)); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); w.off('message', onMsg); w.off('exit', onExit); };
      w.on('message', onMsg);
      w.once('exit', onExit);
      w.send(msg);
    });
  }

  /**
   * Opens `total` subscriptions spread evenly over the workers; resolves with counts.
   * With `channels`, `{ch}` in `path` is replaced by the subscription's index modulo
   * `channels` (indices continue from `indexBase` across workers), so every channel gets
   * the same share.
   */
  async connect(o: { port: number; path: string; hostHeader?: string; total: number; deadlineMs: number; channels?: number; indexBase?: number }): Promise<{ ok: number; failed: number; errors: string[] }> {
    const n = this.workers.length;
    let base = o.indexBase ?? 0;
    const replies = await Promise.all(this.workers.map((w, i) => {
      const count = Math.floor(o.total / n) + (i < o.total % n ? 1 : 0);
      const spread = o.channels ? { channels: o.channels, indexBase: base } : undefined;
      base += count;
      return this.ask(w, {
        cmd: 'connect', host: '127.0.0.1', port: o.port, path: o.path, hostHeader: o.hostHeader ?? `127.0.0.1:${o.port}`,
        count, localAddress: this.addresses[i]!, maxPending: 64, deadlineMs: o.deadlineMs, ...(spread ? { spread } : {}),
      }, 'connected', o.deadlineMs + 10_000);
    }));
    return {
      ok: replies.reduce((a, r) => a + r.ok, 0),
      failed: replies.reduce((a, r) => a + r.failed, 0),
      errors: replies.flatMap((r) => (r.firstError ? [r.firstError] : [])),
    };
  }

  /** Starts a new measuring phase in every worker (counters and latencies reset). */
  phase(): void { for (const w of this.workers) w.send({ cmd: 'phase' } satisfies ParentMessage); }

  /** Sums the workers' live counters. */
  async status(): Promise<{ received: number; warmed: number; open: number }> {
    const r = await Promise.all(this.workers.map((w) => this.ask(w, { cmd: 'status' }, 'status')));
    return { received: r.reduce((a, x) => a + x.received, 0), warmed: r.reduce((a, x) => a + x.warmed, 0), open: r.reduce((a, x) => a + x.open, 0) };
  }

  /** Collects the phase's deliveries, latencies (µs, unsorted) and last receive time. */
  async report(): Promise<{ received: number; latenciesUs: number[]; lastRecvUs: number; open: number }> {
    const r = await Promise.all(this.workers.map((w) => this.ask(w, { cmd: 'report' }, 'report')));
    const lat: number[] = [];
    for (const x of r) for (const v of x.latenciesUs) lat.push(v);
    return { received: r.reduce((a, x) => a + x.received, 0), latenciesUs: lat, lastRecvUs: Math.max(0, ...r.map((x) => x.lastRecvUs)), open: r.reduce((a, x) => a + x.open, 0) };
  }

  /** Closes every connection and stops every worker. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      if (w.connected) w.send({ cmd: 'close' } satisfies ParentMessage);
      await stopChild(w, 'SIGTERM', 3000);
    }));
  }
}
