import net from 'node:net';

/**
 * Ports are drawn below Linux's ephemeral range (32768-60999): a port the kernel handed
 * out with listen(0) and that was closed again can be taken by any outgoing connection
 * before gripd binds it, which made tests fail with EADDRINUSE under load. Outgoing
 * connections never use this range, so only another test choosing the same port (rare,
 * and checked by binding) can collide.
 */
const PORT_RANGE_LOW = 20000;
const PORT_RANGE_HIGH = 32000;
/** Attempts before giving up on finding free ports. */
const PORT_ATTEMPTS_MAX = 500;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Finds `count` distinct free TCP ports on 127.0.0.1 outside the ephemeral range. */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count; attempt++) {
    if (attempt >= PORT_ATTEMPTS_MAX) throw new Error(`no free ports in ${PORT_RANGE_LOW}-${PORT_RANGE_HIGH}`);
    const port = PORT_RANGE_LOW + Math.floor(Math.random() * (PORT_RANGE_HIGH - PORT_RANGE_LOW));
    if (ports.includes(port)) continue;
    if (await canListen(port)) ports.push(port);
  }
  return ports;
}

export async function freePort(): Promise<number> {
  const [p] = await freePorts(1);
  return p!;
}

/** Resolves once a TCP connect to host:port succeeds, or rejects after `deadlineMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', deadlineMs = 15000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${host}:${port} did not open within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
