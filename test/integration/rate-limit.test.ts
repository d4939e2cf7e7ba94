// message_rate / message_hwm through the CLI: with message_rate=10 and message_hwm=20, one
// publish to 50 stream subscribers queues 20 deliveries (sent at the capped rate) and drops
// the other 30, which the Prometheus exporter counts as 'rate-limit'. Without the keys in
// the file there is no cap.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';

const SUBSCRIBERS = 50;
const DEADLINE_MS = 20_000;

interface Client { sock: net.Socket; data: string }

function openStream(port: number, channel: string): Client {
  const c: Client = { sock: net.connect(port, '127.0.0.1'), data: '' };
  c.sock.setEncoding('latin1');
  c.sock.on('data', (d: string) => { c.data += d; });
  c.sock.on('error', () => undefined);
  c.sock.write(`GET /stream?channel=${channel} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  return c;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** Polls `check` until it returns true or the deadline passes (bounded loop). */
async function waitFor(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return;
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function publish(url: string, channel: string, content: string): Promise<void> {
  const p = await fetch(`${url}/publish/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ items: [{ channel, formats: { 'http-stream': { content } } }] }),
  });
  assert.equal(p.status, 200);
  await p.text();
}

async function holdAll(g: GripdInstance, metricsPort: number, channel: string): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < SUBSCRIBERS; i++) clients.push(openStream(g.httpPort, channel));
  await waitFor('every subscriber held', async () => metric(await scrape(metricsPort), 'gripd_held_connections{mode="stream"}') === SUBSCRIBERS);
  return clients;
}

describe('rate limit: message_rate=10, message_hwm=20', () => {
  let g: GripdInstance;
  let metricsPort: number;
  let clients: Client[] = [];
  before(async () => {
    metricsPort = await freePort();
    g = await startGripd({ sections: { handler: ['message_rate=10', 'message_hwm=20', `prometheus_port=127.0.0.1:${metricsPort}`] } });
  });
  after(async () => {
    for (const c of clients) c.sock.destroy();
    await g.stop();
  });

  test('rate limit: a burst to 50 subscribers delivers 20 and drops and counts the overflow', async () => {
    clients = await holdAll(g, metricsPort, 'rl');
    await publish(g.publishUrl, 'rl', 'burst-1\n');
    const got = (): number => clients.filter((c) => c.data.includes('burst-1')).length;
    // The overflow is known as soon as the publish is queued.
    await waitFor('30 rate-limit drops', async () => metric(await scrape(metricsPort), 'gripd_dropped_deliveries_total{reason="rate-limit"}') === 30);
    await waitFor('20 deliveries', () => got() === 20);
    const text = await scrape(metricsPort);
    assert.equal(metric(text, 'gripd_dropped_deliveries_total{reason="rate-limit"}'), SUBSCRIBERS - 20);
    assert.equal(metric(text, 'message_sent'), 20);
    assert.equal(got(), 20);
    assert.match(g.output(), /exceeded message_hwm/);
  });

  test('rate limit: once the queue has drained, the next burst is admitted again', async () => {
    await publish(g.publishUrl, 'rl', 'burst-2\n');
    await waitFor('20 more deliveries', () => clients.filter((c) => c.data.includes('burst-2')).length === 20);
    const text = await scrape(metricsPort);
    assert.equal(metric(text, 'gripd_dropped_deliveries_total{reason="rate-limit"}'), 60);
    assert.equal(metric(text, 'message_sent'), 40);
  });
});

describe('rate limit: keys absent', () => {
  let g: GripdInstance;
  let metricsPort: number;
  let clients: Client[] = [];
  before(async () => {
    metricsPort = await freePort();
    g = await startGripd({ sections: { handler: [`prometheus_port=127.0.0.1:${metricsPort}`] } });
  });
  after(async () => {
    for (const c of clients) c.sock.destroy();
    await g.stop();
  });

  test('rate limit: without message_rate in the file every subscriber gets the burst', async () => {
    clients = await holdAll(g, metricsPort, 'free');
    await publish(g.publishUrl, 'free', 'all-of-them\n');
    await waitFor('50 deliveries', () => clients.every((c) => c.data.includes('all-of-them')));
    assert.equal(metric(await scrape(metricsPort), 'gripd_dropped_deliveries_total{reason="rate-limit"}'), 0);
  });
});
