// [handler] push_in_http_key through the CLI: the HTTP publish API refuses unauthenticated
// publishes with 401 and accepts a Bearer JWT signed HS256 with the configured key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';

const KEY = Buffer.from('publisher-secret-0123456789abcdef');
let g: GripdInstance;
before(async () => {
  g = await startGripd({ sections: { handler: [`push_in_http_key=base64:${KEY.toString('base64')}`] } });
});
after(async () => { await g.stop(); });

const BODY = JSON.stringify({ items: [{ channel: 'k', formats: { 'http-stream': { content: 'hi\n' } } }] });

async function post(headers: Record<string, string>): Promise<{ status: number; www: string | null; text: string }> {
  const res = await fetch(`${g.publishUrl}/publish/`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: BODY });
  return { status: res.status, www: res.headers.get('www-authenticate'), text: await res.text() };
}

test('publish key: a publish without credentials gets 401', async () => {
  const r = await post({});
  assert.equal(r.status, 401);
  assert.match(r.www ?? '', /^Bearer/);
});

test('publish key: a JWT signed with another key gets 401', async () => {
  const jwt = await new SignJWT({ iss: 'test' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from('wrong-key'));
  assert.equal((await post({ Authorization: `Bearer ${jwt}` })).status, 401);
});

test('publish key: a Bearer JWT signed HS256 with push_in_http_key gets 200', async () => {
  const jwt = await new SignJWT({ iss: 'test' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(KEY);
  const r = await post({ Authorization: `Bearer ${jwt}` });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'Published\n');
});
