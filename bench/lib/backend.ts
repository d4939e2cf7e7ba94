import { fork } from 'node:child_process';
import path from 'node:path';
import { BENCH_DIST } from './paths.js';
import { trackChild, stopChild } from './children.js';
import { freePorts } from './ports.js';
import { sampleTree, type TreeSample } from './proc.js';

/** A loopback backend running in its own process tree (see backend-routes.ts for paths). */
export interface BenchBackend {
  port: number;
  /** `127.0.0.1:PORT`, ready for a routes line. */
  target: string;
  url: string;
  pid: number;
  sample(): TreeSample;
  stop(): Promise<void>;
}

/** Bound on waiting for the backend to listen. */
const BACKEND_START_TIMEOUT_MS = 15_000;

/**
 * Starts the bench backend as a separate process (node:http; `workers` > 1 uses
 * node:cluster) so its CPU never competes inside the bench process.
 */
export async function startBackend(workers = 1, port?: number): Promise<BenchBackend> {
  const p = port ?? (await freePorts(1))[0]!;
  const child = trackChild(fork(path.join(BENCH_DIST, 'lib/backend-main.js'), [String(p), String(workers)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true }), true);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('backend did not listen in time')), BACKEND_START_TIMEOUT_MS);
    child.on('message', (m: { type?: string }) => { if (m.type === 'listening') { clearTimeout(timer); resolve(); } });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`backend exited with ${code}`)); });
  });
  return {
    port: p, target: `127.0.0.1:${p}`, url: `http://127.0.0.1:${p}`, pid: child.pid!,
    sample: () => sampleTree(child.pid!),
    stop: () => stopChild(child, 'SIGTERM', 2000),
  };
}
