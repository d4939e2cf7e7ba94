/**
 * SSE fan-out: C subscribers (default 1 000, 5 000, 10 000; `--subscribers`) hold a
 * `text/event-stream` response on one channel (the backend's `/sse` answers
 * `Grip-Hold: stream`); every publish is one SSE event, `data: @m<seq>:<µs>;` and a blank
 * line, as an http-stream item. Same phases and figures as `fanout` (lib/fanout-core.ts).
 *
 *   node dist/bench/compare/sse-fanout.js [--quick] [--compare pushpin] [--subscribers 1000,10000]
 */
import { pathToFileURL } from 'node:url';
import { parseBenchArgs, type BenchOptions } from '../lib/options.js';
import { killAll } from '../lib/children.js';
import type { ScenarioResult } from '../lib/result.js';
import { runFanoutCases, formatFanoutCases, MIN_PHASE_DELIVERIES, MIN_PHASE_DELIVERIES_QUICK, type FanoutShape } from '../lib/fanout-core.js';

const CHANNEL = 'sse';

/** One channel, each item one SSE `data:` event. */
export const SSE_SHAPE: FanoutShape = {
  name: 'sse-fanout',
  path: `/sse?channel=${CHANNEL}`,
  channels: () => 1,
  channelName: () => CHANNEL,
  // The marker ends in '\n'; an SSE event ends with a blank line.
  item: (channel, marker) => ({ channel, formats: { 'http-stream': { content: `data: ${marker.trimEnd()}\n\n` } } }),
  batch: 1,
};

/** Runs the SSE fan-out comparison for every subscriber count. */
export async function runSseFanout(o: BenchOptions): Promise<ScenarioResult> {
  const cases = await runFanoutCases(o, SSE_SHAPE, o.subscribers);
  const lines = formatFanoutCases(o, cases,
    `SSE fan-out: text/event-stream on one channel, one data: event per publish; max(${o.publishes}, ${o.quick ? MIN_PHASE_DELIVERIES_QUICK : MIN_PHASE_DELIVERIES}/C) back-to-back publishes, ${o.latencyPublishes} spaced; median of ${o.runs} run(s)`);
  return { scenario: 'sse-fanout', text: lines.join('\n'), data: { params: { subscribers: o.subscribers, runs: o.runs }, cases } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log((await runSseFanout(parseBenchArgs(process.argv.slice(2)))).text);
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    killAll();
  }
}
