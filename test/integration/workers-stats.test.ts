/**
 * workers=2 and the stats PUB socket: `sub` messages count subscribers over both workers
 * and `report` messages add up both workers' deliveries.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as zmq from 'zeromq';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';
import { splitStatsMessage } from '../../src/zmq/stats.js';
import { decodeTnetstring, type TnetDict } from '../../src/zmq/tnetstring.js';

const CHANNEL = 'st';
const CLIENTS = 8;

let g: GripdInstance | undefined;
const reqs: http.ClientRequest[] = [];
const sub = new zmq.Subscriber({ linger: 0 });
after(async () => {
  for (const r of reqs) r.destroy();
  sub.close();
  if (g && g.proc.exitCode === null) await g.stop('SIGKILL');
});

function openStream(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('error', () => undefined);
      if (res.statusCode === 200) resolve();
      else reject(new Error(`status ${res.statusCode}`));
    });
    req.on('error', () => undefined);
    reqs.push(req);
  });
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(Buffer.isBuffer(v) ? v.toString() : NaN));

test('workers: stats sub messages count subscribers on both workers; reports add up both workers\' deliveries', async () => {
  const statsPort = await freePort();
  g = await startGripd({
    routes: ['* test'],
    sections: { proxy: ['workers=2'], handler: [`stats_spec=tcp://127.0.0.1:${statsPort}`, 'stats_report_interval=1', 'stats_subscription_ttl=2'] },
  });
  sub.connect(`tcp://127.0.0.1:${statsPort}`);
  sub.subscribe('sub ');
  sub.subscribe('report ');
  let maxSubscribers = 0;
  let sent = 0;
  const loop = (async () => {
    try {
      for await (const [frame] of sub) {
        const m = frame ? splitStatsMessage(frame) : undefined;
        if (m === undefined || m.format !== 'tnetstring') continue;
        const d = decodeTnetstring(m.payload) as TnetDict;
        if (m.type === 'sub' && String(d['channel']) === CHANNEL) maxSubscribers = Math.max(maxSubscribers, num(d['subscribers']));
        if (m.type === 'report') sent += num(d['sent']);
      }
    } catch {
      // closed
    }
  })();
  // Give the SUB connection a moment before anything is published on the PUB side.
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < CLIENTS; i++) await openStream(`${g.url}/stream?channel=${CHANNEL}`);
  const res = await fetch(`${g.publishUrl}/publish`, {
    method: 'POST', body: JSON.stringify({ items: [{ channel: CHANNEL, formats: { 'http-stream': { content: 'x\n' } } }] }),
  });
  assert.equal(res.status, 200);
  const end = Date.now() + 20_000;
  while ((maxSubscribers < CLIENTS || sent < CLIENTS) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.equal(maxSubscribers, CLIENTS, 'sub message with every subscriber of both workers');
  assert.equal(sent, CLIENTS, 'reports count every delivery once');
  sub.close();
  await loop;
});
