// Server-Sent Events through gripd with a real browser: Debian's Chromium, driven by
// playwright-core, opens an EventSource on a stream hold; @fanoutio/grip publishes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { Publisher, HttpStreamFormat } from '@fanoutio/grip';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';

const CHROMIUM = '/usr/bin/chromium';
const PAGE = `<!doctype html><title>sse</title><script>
window.received = [];
const es = new EventSource('/events');
es.onmessage = (e) => window.received.push({ data: e.data, id: e.lastEventId });
</script>`;

let gripd: GripdInstance;
let backend: Backend;
let browser: Browser;

before(async () => {
  backend = await startBackend((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(PAGE);
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Grip-Hold': 'stream',
      'Grip-Channel': 'sse',
      'Grip-Keep-Alive': ':\\n\\n; format=cstring; timeout=20',
    });
    res.end('retry: 200\n\n');
  });
  gripd = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await gripd?.stop();
  await backend?.close();
});

test('sse: EventSource in Chromium receives published events and reconnects with Last-Event-ID', { skip: !existsSync(CHROMIUM) && 'chromium not installed' }, async () => {
  const page = await browser.newPage();
  await page.goto(`${gripd.url}/`);
  const publisher = new Publisher({ control_uri: gripd.publishUrl });
  const countEventsRequests = (): number => backend.requests.filter((r) => r.url === '/events').length;

  // Wait for the first hold, then publish until the browser has the event (bounded).
  const deadline = Date.now() + 15000;
  while (countEventsRequests() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  let got = false;
  for (let i = 0; i < 30 && !got; i++) {
    await publisher.publishHttpStream('sse', `id: 7\ndata: hello ${i}\n\n`);
    got = await page.waitForFunction(() => (globalThis as unknown as { received: unknown[] }).received.length > 0, null, { timeout: 500 })
      .then(() => true, () => false);
  }
  assert.ok(got, 'browser received no event');
  const received = await page.evaluate(() => (globalThis as unknown as { received: Array<{ data: string; id: string }> }).received);
  assert.match(received[0]!.data, /^hello \d+$/);
  assert.equal(received[0]!.id, '7');

  // Closing the stream makes EventSource reconnect; the new request carries Last-Event-ID.
  const before = countEventsRequests();
  await publisher.publishFormats('sse', new HttpStreamFormat(null, true));
  const end = Date.now() + 15000;
  while (countEventsRequests() <= before && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const again = backend.requests.filter((r) => r.url === '/events').at(-1);
  assert.ok(countEventsRequests() > before, 'browser did not reconnect');
  assert.equal(again?.headers['last-event-id'], '7');
  await page.close();
});
