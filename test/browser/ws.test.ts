// WebSockets through gripd with a real browser: Debian's Chromium, driven by
// playwright-core, opens a WebSocket to an over_http route whose backend is written with
// @fanoutio/serve-grip; it sends, gets an echo, receives a message published with
// @fanoutio/grip's publishFormats, and closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { Publisher, WebSocketMessageFormat } from '@fanoutio/grip';
import { ServeGrip } from '@fanoutio/serve-grip';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';

const CHROMIUM = '/usr/bin/chromium';
const PAGE = `<!doctype html><title>ws</title><script>
window.received = [];
window.closeInfo = null;
const ws = new WebSocket('ws://' + location.host + '/ws/chat');
ws.onopen = () => ws.send('hi from the browser');
ws.onmessage = (e) => window.received.push(e.data);
ws.onclose = (e) => { window.closeInfo = { code: e.code, clean: e.wasClean }; };
window.sock = ws;
</script>`;

interface WsContextLike {
  isOpening(): boolean;
  accept(): void;
  subscribe(c: string): void;
  canRecv(): boolean;
  recv(): string | null;
  send(m: string): void;
  close(code?: number): void;
}

let gripd: GripdInstance;
let backend: http.Server;
let backendPort = 0;
let browser: Browser;
let serveGrip: ServeGrip;
const backendSaw: string[] = [];

before(async () => {
  // serve-grip reads the request body itself, so this backend must not consume it first.
  backend = http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(PAGE);
      return;
    }
    void (async () => {
      if (!(await serveGrip.run(req, res))) return;
      const ws = (req as unknown as { grip: { wsContext: WsContextLike | null } }).grip.wsContext;
      if (ws === null) {
        res.end('not a websocket\n');
        return;
      }
      if (ws.isOpening()) {
        backendSaw.push('OPEN');
        ws.accept();
        ws.subscribe('browser');
      }
      while (ws.canRecv()) {
        const m = ws.recv();
        if (m === null) {
          backendSaw.push('CLOSE');
          ws.close();
          break;
        }
        backendSaw.push(m);
        ws.send(`echo: ${m}`);
      }
      res.end();
    })();
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  backendPort = (backend.address() as AddressInfo).port;
  gripd = await startGripd({ routes: [`*,path_beg=/ws 127.0.0.1:${backendPort},over_http`, `* 127.0.0.1:${backendPort}`] });
  serveGrip = new ServeGrip({ grip: { control_uri: gripd.publishUrl } });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await gripd?.stop();
  backend?.closeAllConnections();
  await new Promise<void>((r) => (backend === undefined ? r() : backend.close(() => r())));
});

test('browser: a Chromium WebSocket through gripd sends, gets an echo, receives a publish and closes', { skip: !existsSync(CHROMIUM) }, async () => {
  const page = await browser.newPage();
  await page.goto(gripd.url + '/');
  await page.waitForFunction(() => (globalThis as unknown as { received: string[] }).received.includes('echo: hi from the browser'), undefined, { timeout: 15_000 });
  const pub = new Publisher({ control_uri: gripd.publishUrl });
  await pub.publishFormats('browser', new WebSocketMessageFormat('published to the browser'));
  await page.waitForFunction(() => (globalThis as unknown as { received: string[] }).received.includes('published to the browser'), undefined, { timeout: 15_000 });
  await page.evaluate(() => (globalThis as unknown as { sock: WebSocket }).sock.close(1000, 'bye'));
  await page.waitForFunction(() => (globalThis as unknown as { closeInfo: unknown }).closeInfo !== null, undefined, { timeout: 15_000 });
  const closed = await page.evaluate(() => (globalThis as unknown as { closeInfo: { code: number; clean: boolean } }).closeInfo);
  assert.equal(closed.code, 1000);
  assert.equal(closed.clean, true);
  const received = await page.evaluate(() => (globalThis as unknown as { received: string[] }).received);
  assert.deepEqual(received, ['echo: hi from the browser', 'published to the browser']);
  // The backend saw OPEN, the message, and the close.
  const deadline = Date.now() + 10_000;
  while (!backendSaw.includes('CLOSE') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(backendSaw, ['OPEN', 'hi from the browser', 'CLOSE']);
  await page.close();
});
