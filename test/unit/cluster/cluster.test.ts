import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerConfig } from '../../../src/cluster/primary.js';
import { aggregateMetricsText } from '../../../src/cluster/metrics.js';
import { PrometheusMetrics } from '../../../src/metrics/index.js';
import { testConfig } from '../../helpers/config.js';
import type { Config } from '../../../src/config/types.js';

function withLimits(rate: number | undefined, hwm: number | undefined): Config {
  const c = testConfig();
  return { ...c, handler: { ...c.handler, messageRate: rate as never, messageHwm: hwm as never } };
}

test('workerConfig: message_rate and message_hwm are split evenly between workers, rounded up', () => {
  const c = workerConfig(withLimits(2500, 25000), 2);
  assert.equal(c.handler.messageRate, 1250);
  assert.equal(c.handler.messageHwm, 12500);
  const odd = workerConfig(withLimits(5, 3), 4);
  assert.equal(odd.handler.messageRate, 2);
  assert.equal(odd.handler.messageHwm, 1);
});

test('workerConfig: no cap stays no cap; one worker gets the config unchanged', () => {
  const none = workerConfig(withLimits(undefined, undefined), 3);
  assert.equal(none.handler.messageRate, undefined);
  assert.equal(none.handler.messageHwm, undefined);
  const one = withLimits(100, 10);
  assert.equal(workerConfig(one, 1), one);
});

test('aggregateMetricsText: counters add up over primary and workers; the channel gauge is the distinct count', async () => {
  const primary = new PrometheusMetrics('');
  primary.itemsReceived('http', 3);
  const w1 = new PrometheusMetrics('');
  const w2 = new PrometheusMetrics('');
  w1.delivered(10);
  w2.delivered(5);
  w1.subscriptionsChange(1, 4);
  w2.subscriptionsChange(1, 6);
  w1.holdChange('stream', 1);
  w2.holdChange('stream', 1);
  const text = await aggregateMetricsText({
    own: primary,
    workers: async () => [await w1.registry.getMetricsAsJSON(), await w2.registry.getMetricsAsJSON()],
    channels: () => 1,
    prefix: '',
  });
  const value = (re: RegExp): number => Number(re.exec(text)?.[1]);
  assert.equal(value(/^message_sent (\S+)$/m), 15);
  assert.equal(value(/^message_received (\S+)$/m), 3);
  assert.equal(value(/^gripd_subscriptions (\S+)$/m), 10);
  assert.equal(value(/^gripd_channels (\S+)$/m), 1);
  assert.equal(value(/^gripd_held_connections\{mode="stream"\} (\S+)$/m), 2);
});
