/**
 * The Prometheus exporter of a multi-worker gripd: on each scrape the primary asks every
 * worker for its registry (as JSON), adds its own (items received by the publish
 * inputs), and serves the sum. Counters and histograms add up; the channel gauge is the
 * instance's distinct channels, not the sum over workers.
 */
import http from 'node:http';
import client from 'prom-client';
import type { PrometheusMetrics } from '../metrics/index.js';

export interface AggregateMetricsOptions {
  /** The primary's own metrics. */
  own: PrometheusMetrics;
  /** Each worker's `registry.getMetricsAsJSON()`. */
  workers: () => Promise<unknown[]>;
  /** Distinct channels with subscribers across the instance. */
  channels: () => number;
  prefix: string;
  host?: string | undefined;
  port: number;
}

/** Builds the instance-wide Prometheus text. */
export async function aggregateMetricsText(opts: Omit<AggregateMetricsOptions, 'host' | 'port'>): Promise<string> {
  const mine = await opts.own.registry.getMetricsAsJSON();
  const theirs = (await opts.workers()) as Array<typeof mine>;
  const merged = client.AggregatorRegistry.aggregate([mine, ...theirs]);
  // Aggregated metrics are plain wrappers around their data (not Gauge objects): overwrite the value.
  const channels = merged.getSingleMetric(`${opts.prefix}gripd_channels`) as unknown as { get(): { values?: Array<{ value: number }> } } | undefined;
  const first = channels?.get().values?.[0];
  if (first !== undefined) first.value = opts.channels();
  return merged.metrics();
}

/** Serves the aggregated metrics on every path of host:port (GET and HEAD). */
export async function startAggregateMetricsServer(opts: AggregateMetricsOptions): Promise<{ close(): Promise<void>; port: number }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain' }).end('Method Not Allowed\n');
      return;
    }
    aggregateMetricsText(opts).then(
      (text) => { res.writeHead(200, { 'Content-Type': opts.own.registry.contentType }).end(req.method === 'HEAD' ? undefined : text); },
      (err: Error) => { res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.message}\n`); },
    );
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : opts.port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
