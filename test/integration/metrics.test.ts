// Prometheus metrics through the CLI: a configured prometheus_port serves Pushpin's five
// metrics (and gripd's own) reflecting real traffic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';

let gripd: GripdInstance;
let metricsPort: number;
before(async () => {
  metricsPort = await freePort();
  gripd = await startGripd({ sections: { handler: [`prometheus_port=127.0.0.1:${metricsPort}`, 'prometheus_prefix=pushpin_'] } });
});
after(async () => { await gripd.stop(); });

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function value(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} missing from:\n${text}`);
  return Number(m[1]);
}

test('metrics: requests, publishes and deliveries show up on prometheus_port', async () => {
  const before = await scrape();
  assert.equal(value(before, 'pushpin_request_received'), 0);
  assert.equal(value(before, 'pushpin_message_received'), 0);

  assert.equal((await fetch(`${gripd.url}/`)).status, 200);
  const ac = new AbortController();
  const res = await fetch(`${gripd.url}/stream?channel=m`, { signal: ac.signal });
  const reader = res.body!.getReader();
  await reader.read(); // the stream's opening line
  // Publish until one delivery is counted (the hold is registered by now; bounded anyway).
  let text = '';
  for (let i = 0; i < 20; i++) {
    const p = await fetch(`${gripd.publishUrl}/publish/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ items: [{ channel: 'm', formats: { 'http-stream': { content: 'x\n' } } }] }),
    });
    assert.equal(p.status, 200);
    text = await scrape();
    if (value(text, 'pushpin_message_sent') >= 1) break;
  }
  assert.ok(value(text, 'pushpin_request_received') >= 2);
  assert.ok(value(text, 'pushpin_message_received') >= 1);
  assert.ok(value(text, 'pushpin_message_sent') >= 1);
  assert.ok(value(text, 'pushpin_connection_connected') >= 1);
  assert.match(text, /^pushpin_gripd_held_connections\{mode="stream"\} 1$/m);
  assert.match(text, /^pushpin_gripd_publish_items_total\{source="http"\} \d+$/m);
  ac.abort();
});
