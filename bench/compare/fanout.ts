/**
 * Stream fan-out benchmark: C subscribers (spread over several client processes on
 * 127.0.0.x source addresses) hold an HTTP stream on one channel through the proxy; the
 * backend answers `Grip-Hold: stream` + `Grip-Channel`. Then:
 *  - latency phase: K publishes, each waited out before the next, give publish-to-receive
 *    latency p50/p99 (µs clock shared by all processes, embedded in the payload);
 *  - throughput phase: M publishes back to back give deliveries/s (from the first publish
 *    to the last delivery) and deliveries per server CPU-second (/proc, whole tree).
 * Pushpin runs with message_rate/message_hwm raised and (unless --quick or
 * --no-pushpin-defaults) with its shipped limits. The loop lives in lib/fanout-core.ts.
 *
 *   node dist/bench/compare/fanout.js [--quick] [--compare pushpin] [--subscribers 1000,10000] ...
 */
import { pathToFileURL } from 'node:url';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { renderCharts, type Series } from '../lib/plot.js';
import { RAISED_MESSAGE_RATE, RAISED_MESSAGE_HWM } from '../lib/servers.js';
import { runFanoutCases, formatFanoutCases, MIN_PHASE_DELIVERIES, MIN_PHASE_DELIVERIES_QUICK, type FanoutCase, type FanoutShape } from '../lib/fanout-core.js';

export type { FanoutCase };

const CHANNEL = 'bench';

/** All subscribers on one channel, plain http-stream content. */
export const STREAM_SHAPE: FanoutShape = {
  name: 'fanout',
  path: `/stream?channel=${CHANNEL}`,
  channels: () => 1,
  channelName: () => CHANNEL,
  item: (channel, marker) => ({ channel, formats: { 'http-stream': { content: marker } } }),
  batch: 1,
};

/** Runs the fan-out comparison for every subscriber count and proxy. */
export async function runFanout(o: BenchOptions): Promise<ScenarioResult> {
  const cases = await runFanoutCases(o, STREAM_SHAPE, o.subscribers);
  const lines = formatFanoutCases(o, cases,
    `stream fan-out: one channel, max(${o.publishes}, ${o.quick ? MIN_PHASE_DELIVERIES_QUICK : MIN_PHASE_DELIVERIES}/C) back-to-back publishes (throughput, ${o.publishConcurrency} in flight) and ${o.latencyPublishes} spaced publishes (latency) per run, median of ${o.runs} run(s)`);
  // Rate-capped rows would flatten the chart's scale; the table has them.
  const labels = [...new Set(cases.map((c) => c.server))].filter((l) => !l.includes('shipped'));
  const series = (f: (c: FanoutCase) => number): Series[] => labels.map((label) => ({ label, points: cases.filter((c) => c.server === label).map((c): [number, number] => [c.subscribers, f(c)]) }));
  const svg = renderCharts([
    { title: 'Stream fan-out throughput', xLabel: 'subscribers on one channel', yLabel: 'deliveries/s (median)', series: series((c) => c.median.deliveriesPerSec) },
    { title: 'One publish to all subscribers', xLabel: 'subscribers on one channel', yLabel: 'p99 latency, ms (median)', series: series((c) => c.median.p99Ms) },
  ], `npm run bench -- --compare pushpin fanout; median of ${o.runs} run(s); Pushpin with message_rate/message_hwm raised`);
  return { scenario: 'fanout', files: { 'fanout.svg': svg }, text: lines.join('\n'), data: { params: { channel: CHANNEL, subscribers: o.subscribers, publishes: o.publishes, latencyPublishes: o.latencyPublishes, runs: o.runs, clientProcs: o.clientProcs, raisedMessageRate: RAISED_MESSAGE_RATE, raisedMessageHwm: RAISED_MESSAGE_HWM }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const r = await runFanout(parseBenchArgs(process.argv.slice(2)));
    console.log(r.text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
