// Regression: on an auto cross-origin route, a GRIP answer without a hold (here only
// Grip-Status) went out without the CORS headers the proxy adds to every other answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { startBackend, type Backend } from '../helpers/backend.js';

let gripd: GripdInstance;
let backend: Backend;

before(async () => {
  backend = await startBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Status': '404 Nothing Here' });
    res.end('gone\n');
  });
  gripd = await startGripd({ routes: [`*,aco 127.0.0.1:${backend.port}`] });
});
after(async () => {
  await gripd.stop();
  await backend.close();
});

test('cors: a GRIP answer without a hold carries the CORS headers on an aco route', async () => {
  const res = await fetch(`${gripd.url}/x`, { headers: { Origin: 'http://example.org' } });
  assert.equal(res.status, 404);
  assert.equal(res.statusText, 'Nothing Here');
  assert.equal(res.headers.get('access-control-allow-origin'), 'http://example.org');
  assert.equal(res.headers.get('grip-status'), null);
  assert.equal(await res.text(), 'gone\n');
});
