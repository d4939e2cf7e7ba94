/**
 * Backend process entry (forked by backend.ts): `node backend-main.js PORT WORKERS`.
 * With WORKERS > 1 the primary forks that many node:cluster workers sharing the port.
 * Sends { type: 'listening' } over IPC once every worker listens.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import { handleBackendRequest } from './backend-routes.js';

/** Upper bound on backend worker processes (2-core machines gain nothing past a few). */
const MAX_BACKEND_WORKERS = 16;

const port = Number(process.argv[2]);
const workers = Math.min(MAX_BACKEND_WORKERS, Math.max(1, Number(process.argv[3] ?? '1') || 1));

function serve(): void {
  const server = http.createServer(handleBackendRequest);
  server.keepAliveTimeout = 60_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  server.listen(port, '127.0.0.1', () => {
    if (cluster.isWorker) process.send?.({ type: 'worker-listening' });
    else process.send?.({ type: 'listening' });
  });
}

if (workers === 1 || cluster.isWorker) {
  serve();
} else {
  let up = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork();
    w.on('message', (m: { type?: string }) => {
      if (m.type === 'worker-listening' && ++up === workers) process.send?.({ type: 'listening' });
    });
  }
  // Die with the parent: the IPC channel closes when the bench process goes away.
  process.on('disconnect', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
    process.exit(0);
  });
}
if (cluster.isWorker) process.on('disconnect', () => process.exit(0));
if (!cluster.isWorker && workers === 1) process.on('disconnect', () => process.exit(0));
