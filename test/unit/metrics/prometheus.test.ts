import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrometheusMetrics, startMetricsServer } from '../../../src/metrics/index.js';

test('prometheus: serves Pushpin\'s five metrics under the prefix, plus gripd\'s own', async () => {
  const m = new PrometheusMetrics('pp_');
  m.requestReceived();
  m.requestReceived();
  m.connectionChange(1);
  m.itemsReceived('http', 3);
  m.delivered(10);
  m.dropped('slow-consumer', 1);
  m.holdChange('stream', 1);
  m.backendResponse(12, 200);
  const srv = await startMetricsServer({ metrics: m, port: 0 });
  try {
    const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^# HELP pp_request_received Number of requests received$/m);
    assert.match(text, /^# TYPE pp_request_received counter$/m);
    assert.match(text, /^pp_request_received 2$/m);
    assert.match(text, /^pp_connection_connected 1$/m);
    assert.match(text, /^pp_connection_minute 0$/m);
    assert.match(text, /^pp_message_received 3$/m);
    assert.match(text, /^pp_message_sent 10$/m);
    assert.match(text, /^pp_gripd_held_connections\{mode="stream"\} 1$/m);
    assert.match(text, /^pp_gripd_publish_items_total\{source="http"\} 3$/m);
    assert.match(text, /^pp_gripd_dropped_deliveries_total\{reason="slow-consumer"\} 1$/m);
    assert.match(text, /^pp_gripd_backend_request_duration_seconds_count 1$/m);
    const post = await fetch(`http://127.0.0.1:${srv.port}/`, { method: 'POST' });
    assert.equal(post.status, 405);
  } finally {
    await srv.close();
  }
});
