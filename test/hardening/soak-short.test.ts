/**
 * CI variant of bench/soak.ts: ~1 000 connections (long-poll, stream, SSE) for ~60 s
 * with churn and a publish per second. Every item must reach every connected client
 * exactly once and in order, with no unexpected error. RSS is judged loosely here (a
 * minute is mostly V8 warm-up; the 10-minute run holds the 5% bound): it only catches a
 * gross leak. SOAK_SHORT_S / SOAK_SHORT_CONNECTIONS override the size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak } from '../../bench/soak.js';

const DURATION_S = Number(process.env['SOAK_SHORT_S'] ?? 60);
const CONNECTIONS = Number(process.env['SOAK_SHORT_CONNECTIONS'] ?? 1000);

test(`soak (short): ${CONNECTIONS} connections for ${DURATION_S} s lose, duplicate or reorder nothing`, { timeout: (DURATION_S + 120) * 1000 }, async () => {
  const r = await runSoak({
    connections: CONNECTIONS,
    durationS: DURATION_S,
    clients: 2,
    channelsPerKind: 10,
    warmupS: DURATION_S / 3,
    rssMaxGrowthPct: 50,
    verbose: false,
    // One gripd process, as the CI runs have always used; the 10-minute soak runs gripd's default.
    workers: 1,
  });
  const figures = `connected ${r.connected}, delivered ${r.delivered}, gaps ${r.gaps} ${JSON.stringify(r.gapsByKind)}, duplicates ${r.duplicates}, behind ${r.behindAtEnd}, errors ${r.unexpectedErrors}, RSS ${r.rssAfterWarmupMib} -> ${r.rssEndMib} MiB`;
  process.stdout.write(`# ${figures}\n`);
  assert.deepEqual(r.failures, [], `${figures}\n${[...r.gapSamples, ...r.errorSamples].join('\n')}`);
  assert.equal(r.connected, CONNECTIONS);
  assert.ok(r.delivered > 0);
});
