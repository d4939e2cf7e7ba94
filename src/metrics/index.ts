export { NO_METRICS, type Metrics, type HoldKind, type PublishSource } from './metrics.js';
export { PrometheusMetrics, startMetricsServer } from './prometheus.js';
