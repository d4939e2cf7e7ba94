/**
 * Many-channel stream fan-out: 10 000 subscribers over 1 000 channels, 10 on each
 * (`--quick`: 1 000 over 100). A round publishes one item to every channel, round-robin,
 * 100 items per publish request, so each round reaches every subscriber once. Reports
 * deliveries/s, publish-to-receive p50/p99 (a latency round = one item per channel) and
 * deliveries per server CPU-second, gripd and Pushpin side by side (raised and shipped
 * rate limits). The loop lives in lib/fanout-core.ts.
 *
 *   node dist/bench/compare/fanout-channels.js [--quick] [--compare pushpin] [--runs 3]
 */
import { pathToFileURL } from 'node:url';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { runFanoutCases, formatFanoutCases, MIN_PHASE_DELIVERIES, MIN_PHASE_DELIVERIES_QUICK, type FanoutShape } from '../lib/fanout-core.js';

/** Subscribers per channel (the 10 000 over 1 000). */
export const SUBSCRIBERS_PER_CHANNEL = 10;
/** Subscriber count in a full run and with --quick. */
export const CHANNEL_FANOUT_SUBSCRIBERS = 10_000;
const CHANNEL_FANOUT_SUBSCRIBERS_QUICK = 1_000;
/** Items per publish request (the publish API takes up to 1 000). */
const ITEMS_PER_REQUEST = 100;

/** Subscribers spread round-robin over C / 10 channels `ch0`, `ch1`, …. */
export const CHANNELS_SHAPE: FanoutShape = {
  name: 'fanout-channels',
  path: '/stream?channel=ch{ch}',
  channels: (subs) => Math.max(1, Math.floor(subs / SUBSCRIBERS_PER_CHANNEL)),
  channelName: (i) => `ch${i}`,
  item: (channel, marker) => ({ channel, formats: { 'http-stream': { content: marker } } }),
  batch: ITEMS_PER_REQUEST,
};

/** Runs the many-channel fan-out comparison. */
export async function runFanoutChannels(o: BenchOptions): Promise<ScenarioResult> {
  const subs = o.quick ? CHANNEL_FANOUT_SUBSCRIBERS_QUICK : CHANNEL_FANOUT_SUBSCRIBERS;
  const cases = await runFanoutCases(o, CHANNELS_SHAPE, [subs]);
  const lines = formatFanoutCases(o, cases,
    `stream fan-out over channels: ${subs} subscribers, ${SUBSCRIBERS_PER_CHANNEL} per channel; a round = one item per channel (${ITEMS_PER_REQUEST} items per publish request); throughput: max(${o.publishes}, ${o.quick ? MIN_PHASE_DELIVERIES_QUICK : MIN_PHASE_DELIVERIES}/C) rounds back to back, latency: ${o.latencyPublishes} spaced rounds; median of ${o.runs} run(s)`);
  return { scenario: 'fanout-channels', text: lines.join('\n'), data: { params: { subscribers: subs, perChannel: SUBSCRIBERS_PER_CHANNEL, itemsPerRequest: ITEMS_PER_REQUEST, runs: o.runs }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log((await runFanoutChannels(parseBenchArgs(process.argv.slice(2)))).text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
