/**
 * Prometheus exporter (prom-client): Pushpin's five metrics under their names
 * (`<prefix>request_received`, `connection_connected`, `connection_minute`,
 * `message_received`, `message_sent`) plus gripd's own, served as text on
 * `prometheus_port`.
 */
import http from 'node:http';
import client from 'prom-client';
import type { Metrics, HoldKind, PublishSource } from './metrics.js';

/** Buckets for backend latency, in seconds: sub-millisecond loopback up to slow backends. */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class PrometheusMetrics implements Metrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter;
  private readonly connections: client.Gauge;
  private readonly connectionMinutes: client.Counter;
  private readonly messagesReceived: client.Counter;
  private readonly messagesSent: client.Counter;
  private readonly held: client.Gauge<'mode'>;
  private readonly channels: client.Gauge;
  private readonly subscriptions: client.Gauge;
  private readonly received: client.Counter<'source'>;
  private readonly drops: client.Counter<'reason'>;
  private readonly latency: client.Histogram;
  private openConnections = 0;
  private connectionMsAccrued = 0;
  private lastAccrualMs = Date.now();

  constructor(prefix: string) {
    const r = [this.registry];
    const p = prefix;
    this.requests = new client.Counter({ name: `${p}request_received`, help: 'Number of requests received', registers: r });
    this.connections = new client.Gauge({ name: `${p}connection_connected`, help: 'Number of concurrent connections', registers: r });
    // Connection-minutes accrue continuously; the counter is brought up to date on scrape.
    this.connectionMinutes = new client.Counter({
      name: `${p}connection_minute`, help: 'Number of minutes clients have been connected', registers: r,
      collect: () => this.accrue(),
    });
    this.messagesReceived = new client.Counter({ name: `${p}message_received`, help: 'Number of messages received by the publish API', registers: r });
    this.messagesSent = new client.Counter({ name: `${p}message_sent`, help: 'Number of messages sent to clients', registers: r });
    this.held = new client.Gauge({ name: `${p}gripd_held_connections`, help: 'Held sessions by mode', labelNames: ['mode'], registers: r });
    this.channels = new client.Gauge({ name: `${p}gripd_channels`, help: 'Channels with at least one local subscriber', registers: r });
    this.subscriptions = new client.Gauge({ name: `${p}gripd_subscriptions`, help: 'Channel subscriptions of held sessions', registers: r });
    this.received = new client.Counter({ name: `${p}gripd_publish_items_total`, help: 'Publish items received, by input', labelNames: ['source'], registers: r });
    this.drops = new client.Counter({ name: `${p}gripd_dropped_deliveries_total`, help: 'Deliveries not made, by reason', labelNames: ['reason'], registers: r });
    this.latency = new client.Histogram({
      name: `${p}gripd_backend_request_duration_seconds`, help: 'Backend request latency', buckets: LATENCY_BUCKETS_S, registers: r,
    });
    for (const mode of ['response', 'stream', 'ws'] as const) this.held.set({ mode }, 0);
  }

  private accrue(): void {
    const now = Date.now();
    this.connectionMsAccrued += this.openConnections * (now - this.lastAccrualMs);
    this.lastAccrualMs = now;
    const whole = Math.floor(this.connectionMsAccrued / 60000);
    if (whole > 0) {
      this.connectionMinutes.inc(whole);
      this.connectionMsAccrued -= whole * 60000;
    }
  }

  requestReceived(): void { this.requests.inc(); }
  connectionChange(delta: 1 | -1): void {
    this.accrue();
    this.openConnections += delta;
    this.connections.set(this.openConnections);
  }
  backendResponse(durationMs: number, _status: number): void { this.latency.observe(durationMs / 1000); }
  holdChange(kind: HoldKind, delta: 1 | -1): void { this.held.inc({ mode: kind }, delta); }
  subscriptionsChange(channels: number, subscriptions: number): void {
    this.channels.set(channels);
    this.subscriptions.set(subscriptions);
  }
  itemsReceived(source: PublishSource, count: number): void {
    this.messagesReceived.inc(count);
    this.received.inc({ source }, count);
  }
  delivered(count: number): void { this.messagesSent.inc(count); }
  dropped(reason: string, count: number): void { this.drops.inc({ reason }, count); }
}

/** Serves `metrics.registry` as Prometheus text on every path of host:port. */
export async function startMetricsServer(opts: { metrics: PrometheusMetrics; host?: string; port: number }): Promise<{ close(): Promise<void>; port: number }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain' }).end('Method Not Allowed\n');
      return;
    }
    opts.metrics.registry.metrics().then(
      (text) => { res.writeHead(200, { 'Content-Type': opts.metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text); },
      (err: Error) => { res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.message}\n`); },
    );
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : opts.port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
