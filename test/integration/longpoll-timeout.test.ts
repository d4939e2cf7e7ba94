// Regression: with update_on_first_subscription on (the default), a long-poll never
// timed out: the first-subscription update re-asked the backend, the new hold subscribed
// "for the first time" again, and the cycle repeated every second. Long-poll channels now
// linger after their last subscriber leaves (subscription_linger), as in Pushpin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';

let gripd: GripdInstance;
let backend: Backend;

before(async () => {
  backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': 'lp', 'Grip-Timeout': '1' });
    res.end('timed out\n');
  });
  gripd = await startGripd({ routes: [`* 127.0.0.1:${backend.port}`] });
});
after(async () => {
  await gripd.stop();
  await backend.close();
});

test('long-poll: the hold response goes out after the (floored) timeout with the default first-subscription update', async () => {
  const res = await fetch(`${gripd.url}/poll`, { signal: AbortSignal.timeout(20000) });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'timed out\n');
  // Pushpin asks the backend again once (the first-subscription update), then holds the
  // retried request until its timeout: two backend requests in all, not one per second.
  assert.equal(backend.requests.length, 2);
});
