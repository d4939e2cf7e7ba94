/**
 * Test rig for the GRIP handler integration tests: a loopback backend, a minimal client
 * listener (a shim standing in for src/proxy: it forwards to the backend, decodes GRIP
 * answers with src/grip and hands them to the Handler), the real Handler and the real
 * HTTP publish API. The Handler and publish API are the components under test.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { loadConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { isGripResponse } from '../../src/grip/headers.js';
import { parseGripHeaders } from '../../src/grip/instruct.js';
import type { Instruct } from '../../src/grip/types.js';
import { Handler } from '../../src/handler/index.js';
import { createLogger } from '../../src/log/index.js';
import type { Metrics } from '../../src/metrics/metrics.js';
import type { BackendRequest, BackendRequester, BackendResponse } from '../../src/proxy/types.js';
import { startPublishApi } from '../../src/publish/http-api.js';
import type { Route, Target } from '../../src/routes/types.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { freePorts } from '../helpers/ports.js';

export interface Rig {
  backend: Backend;
  handler: Handler;
  /** Client-facing port (the shim listener). */
  port: number;
  publishPort: number;
  publishUrl: string;
  config: Config;
  /** Log lines the handler wrote. */
  logs: string[];
  close(): Promise<void>;
}

export interface RigOptions {
  handler?: Partial<Config['handler']>;
  /** Lets a test adjust decoded instructions (e.g. sub-second timeouts the GRIP floor forbids). */
  tweak?: (instruct: Instruct, req: http.IncomingMessage) => void;
  outboundMaxBytes?: number;
  routePrefix?: string;
  debug?: boolean;
  /** Route option aco (auto cross-origin). */
  aco?: boolean;
  metrics?: Metrics;
}

function pairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Sends one request to the backend (or `url`) and reads the whole answer. */
function sendToBackend(target: Target, req: BackendRequest, url?: string): Promise<BackendResponse> {
  return new Promise((resolve, reject) => {
    const u = url !== undefined ? new URL(url) : undefined;
    const r = http.request(
      {
        host: u?.hostname ?? target.host,
        port: u !== undefined ? Number(u.port || 80) : target.port,
        method: req.method,
        path: u !== undefined ? u.pathname + u.search : req.path,
        headers: [
          ['Host', u?.host ?? `${target.host}:${target.port}`],
          ...req.headers.filter(([n]) => !/^(host|connection|content-length|transfer-encoding)$/i.test(n)),
          ...(req.body.length > 0 ? [['Content-Length', String(req.body.length)]] : []),
        ].flat(),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: pairs(res.rawHeaders), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

export async function startRig(backendFn: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void, opts: RigOptions = {}): Promise<Rig> {
  const backend = await startBackend(backendFn);
  const { config: base } = await loadConfig({ searchPaths: [] });
  const [publishPort] = (await freePorts(1)) as [number];
  const config: Config = { ...base, handler: { ...base.handler, pushInHttpAddr: '127.0.0.1', pushInHttpPort: publishPort, ...opts.handler } };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level: 3, json: true, destination: sink });
  const target: Target = {
    type: 'http', host: '127.0.0.1', port: backend.port, ssl: false, insecure: false, trustConnectHost: false,
    overHttp: false, oneEvent: false, subscriptions: [], untrusted: false,
  };
  const route: Route = {
    source: 'test:1', domain: '*', id: '*,*,*,*', idExplicit: false, jsonpDefaultMethod: 'POST', headers: [], prefix: opts.routePrefix ?? '', debug: opts.debug ?? false,
    autoCrossOrigin: opts.aco ?? false, jsonpEnabled: false, noGrip: false, session: false, origHeaders: false, targets: [target],
  };
  const requester: BackendRequester = {
    async request(_route, req, o) {
      const sig = await new SignJWT({ iss: 'pushpin' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from('changeme'));
      return sendToBackend(target, { ...req, headers: [...req.headers, ['Grip-Sig', sig]] }, o?.url);
    },
  };
  const handler = new Handler({ config, logger, requester, outboundMaxBytes: opts.outboundMaxBytes, metrics: opts.metrics });
  const api = await startPublishApi({ config, handler, logger, metrics: opts.metrics });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const breq: BackendRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: pairs(req.rawHeaders), body: Buffer.concat(chunks) };
      requester.request(route, breq).then(
        (resp) => {
          if (!isGripResponse(resp.headers)) {
            res.writeHead(resp.status, resp.reason, resp.headers.filter(([n]) => !/^(connection|transfer-encoding|content-length|keep-alive)$/i.test(n)).flat());
            res.end(resp.body);
            return;
          }
          let instruct: Instruct;
          try {
            instruct = parseGripHeaders(resp.status, resp.reason, resp.headers, resp.body, { subscriptionMax: config.handler.connectionSubscriptionMax });
          } catch (err) {
            res.writeHead(502, { 'Content-Type': 'text/plain' });
            res.end(`${(err as Error).message}\n`);
            return;
          }
          opts.tweak?.(instruct, req);
          // Stand-in for the proxy's JSON-P detection: ?callback=NAME[&mode=basic].
          const q = new URL(req.url ?? '/', 'http://x').searchParams;
          const cb = q.get('callback');
          const jsonp = cb !== null ? { callback: Buffer.from(cb), mode: q.get('mode') === 'basic' ? ('basic' as const) : ('extended' as const) } : undefined;
          // Stand-in for the proxy streaming a large stream-hold body: ?rest=1 hands over
          // the first 3 bytes and delivers the remainder through bodyRest.
          let bodyRest: AsyncIterable<Uint8Array> | undefined;
          if (q.get('rest') === '1' && instruct.hold?.mode === 'stream') {
            const all = instruct.response.body;
            instruct.response.body = all.subarray(0, 3);
            bodyRest = (async function* () {
              for (const part of [all.subarray(3, 5), all.subarray(5)]) {
                await new Promise((r) => setTimeout(r, 20));
                yield part;
              }
            })();
          }
          handler.accept({ req, res, route, target, backendRequest: breq, instruct, clientAddress: '127.0.0.1', ssl: false, ...(jsonp !== undefined ? { jsonp } : {}), ...(bodyRest !== undefined ? { bodyRest } : {}) });
        },
        () => {
          res.writeHead(502);
          res.end();
        },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    backend, handler, port, publishPort, publishUrl: `http://127.0.0.1:${publishPort}`, config, logs,
    async close() {
      await handler.stop();
      await api.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await backend.close();
    },
  };
}

/** A raw client connection that records every byte it receives. */
export class RawClient {
  readonly sock: net.Socket;
  data = Buffer.alloc(0);
  closed = false;
  private waiters: Array<() => void> = [];

  constructor(port: number, request: string) {
    this.sock = net.connect(port, '127.0.0.1', () => this.sock.write(request));
    this.sock.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.sock.on('error', () => undefined);
  }

  get text(): string {
    return this.data.toString('latin1');
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `pred` holds; rejects after `deadlineMs` with what arrived so far. */
  async until(pred: (c: RawClient) => boolean, deadlineMs = 10_000): Promise<void> {
    const end = Date.now() + deadlineMs;
    while (!pred(this)) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far: ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** Publishes raw JSON to the API and returns status and body. */
export async function publishJson(rig: Rig, body: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`${rig.publishUrl}/publish/`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

/** Waits until `channel` has `n` subscribers of any mode (polling with a deadline). */
export async function waitSubscribers(handler: Handler, channel: string, n: number, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const c = handler.subscriberCount(channel);
    if (c.response + c.stream >= n) return;
    if (Date.now() > end) throw new Error(`channel ${channel}: ${c.response + c.stream} of ${n} subscribers`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
