/**
 * Test harness for the proxy integration tests: starts src/proxy directly (no CLI) on
 * free loopback ports with a real Config and RouteTable, a recording GRIP acceptor and
 * a small test handler, and offers raw-socket and undici helpers.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { request } from 'undici';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log/index.js';
import { parseRoutesText, RouteTable } from '../../src/routes/index.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/index.js';
import type { BackendResponse, GripHandoff, TestRequest } from '../../src/proxy/types.js';
import { testConfig, type ConfigOverrides } from '../helpers/config.js';
import { freePort } from '../helpers/ports.js';

export interface HarnessOptions {
  /** Routes-file lines. */
  routes: string[];
  config?: ConfigOverrides;
  /** Backend timeouts for the proxy's pools. */
  backendTimeouts?: { connectMs?: number; headersMs?: number };
  /** How the acceptor answers a handoff (default: send instruct.response, then bodyRest). */
  onHandoff?: (h: GripHandoff) => void;
  /** Test-handler answer (default: 200 "test:<method> <path>"). */
  testHandler?: (req: TestRequest) => Promise<BackendResponse>;
}

export interface Harness {
  proxy: ProxyHandle;
  config: Config;
  port: number;
  url: string;
  handoffs: GripHandoff[];
  testRequests: TestRequest[];
  /** Log records (pino JSON objects) written so far. */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Default acceptor behaviour: relay the instruct response, then the stream rest. */
export function relayHandoff(h: GripHandoff): void {
  const r = h.instruct.response;
  const flat: string[] = [];
  for (const [n, v] of r.headers) flat.push(n, v);
  h.res.writeHead(r.code, r.reason, flat);
  if (h.bodyRest === undefined) {
    h.res.end(r.body);
    return;
  }
  h.res.write(r.body);
  void (async () => {
    try {
      for await (const c of h.bodyRest!) h.res.write(c);
      h.res.end();
    } catch {
      h.res.destroy();
    }
  })();
}

export async function startHarness(o: HarnessOptions): Promise<Harness> {
  const port = o.config?.runner?.httpPorts?.[0]?.port ?? await freePort();
  const config = testConfig({
    ...o.config,
    runner: { httpPorts: [{ host: '127.0.0.1', port }], ...o.config?.runner },
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (line !== '') { try { logs.push(JSON.parse(line) as Record<string, unknown>); } catch { /* partial */ } }
      }
      cb();
    },
  });
  const logger = createLogger({ level: 3, json: true, destination: sink });
  const { routes, diagnostics } = parseRoutesText(o.routes.join('\n') + '\n', 'routes');
  if (diagnostics.some((d) => d.severity === 'error')) throw new Error(`bad test routes: ${JSON.stringify(diagnostics)}`);
  const table = new RouteTable(routes);
  const handoffs: GripHandoff[] = [];
  const testRequests: TestRequest[] = [];
  const proxy = await startProxy({
    config,
    logger,
    routes: () => table,
    acceptor: { accept(h) { handoffs.push(h); (o.onHandoff ?? relayHandoff)(h); } },
    testHandler: async (req) => {
      testRequests.push(req);
      if (o.testHandler) return o.testHandler(req);
      return { status: 200, reason: 'OK', headers: [['Content-Type', 'text/plain']], body: Buffer.from(`test:${req.method} ${req.path}\n`) };
    },
    ...(o.backendTimeouts ? { backendTimeouts: o.backendTimeouts } : {}),
  });
  return {
    proxy, config, port, url: `http://127.0.0.1:${port}`, handoffs, testRequests, logs,
    close: () => proxy.close(100),
  };
}

export interface RawReply {
  /** Everything received until the peer closed or the deadline passed. */
  text: string;
  closed: boolean;
}

/**
 * Writes `data` on a fresh TCP connection and collects the answer until the server
 * closes, `until` matches, or `deadlineMs` passes.
 */
export function rawRequest(port: number, data: string | Buffer, opts: { deadlineMs?: number; until?: RegExp; host?: string } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const s = net.connect(port, opts.host ?? '127.0.0.1', () => s.write(data));
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), opts.deadlineMs ?? 5000);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (opts.until?.test(text)) finish(false);
    });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
  });
}

/** GET/any request through undici; body as text. */
export async function fetchText(url: string, init: Parameters<typeof request>[1] = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const r = await request(url, init);
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body };
}

/** Parses a raw HTTP/1.1 response head into status line and header pairs. */
export function parseHead(text: string): { statusLine: string; headers: Array<[string, string]>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = lines.map((l) => { const i = l.indexOf(':'); return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string]; });
  return { statusLine, headers, body: end === -1 ? '' : text.slice(end + 4) };
}
