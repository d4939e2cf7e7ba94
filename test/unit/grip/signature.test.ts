import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { jwtVerify, decodeProtectedHeader } from 'jose';
import {
  GRIP_FEATURE,
  GRIP_SIG_REFRESH_MS,
  createGripSigVerifier,
  createGripSigner,
  verifyGripSig,
} from '../../../src/grip/signature.js';
import { KeySpecError } from '../../../src/grip/errors.js';

const T0 = 1_700_000_000_000;
const secret = new Uint8Array(Buffer.from('changeme'));

describe('grip signature: signing', () => {
  test('HS256 token has Pushpin header and claims, byte-exact', () => {
    const s = createGripSigner('pushpin', secret, { now: () => T0 });
    const [h, p] = s.header().split('.');
    assert.equal(Buffer.from(h!, 'base64url').toString(), '{"typ":"JWT","alg":"HS256"}');
    assert.equal(Buffer.from(p!, 'base64url').toString(), `{"exp":${T0 / 1000 + 3600},"iss":"pushpin"}`);
    assert.equal(s.algorithm, 'HS256');
  });

  test('HS256 token verifies with jose', async () => {
    const s = createGripSigner('pushpin', 'changeme');
    const { payload } = await jwtVerify(s.header(), Buffer.from('changeme'), { algorithms: ['HS256'] });
    assert.equal(payload.iss, 'pushpin');
  });

  test('token is cached and re-signed after the refresh interval', () => {
    let now = T0;
    const s = createGripSigner('i', secret, { now: () => now });
    const a = s.header();
    now += GRIP_SIG_REFRESH_MS - 1;
    assert.equal(s.header(), a);
    now += 1000;
    assert.notEqual(s.header(), a);
  });

  test('ES256 and RS256 from PEM private keys verify with the public key', async () => {
    for (const [type, alg] of [['ec', 'ES256'], ['rsa', 'RS256']] as const) {
      const kp =
        type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const s = createGripSigner('iss', new Uint8Array(Buffer.from(pem)));
      assert.equal(s.algorithm, alg);
      const tok = s.header();
      assert.equal(decodeProtectedHeader(tok).alg, alg);
      await jwtVerify(tok, kp.publicKey, { algorithms: [alg] });
      const pubPem = kp.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      assert.equal(await verifyGripSig(tok, pubPem), true);
    }
  });

  test('unusable keys raise KeySpecError', () => {
    assert.throws(() => createGripSigner('i', new Uint8Array(0)), KeySpecError);
    assert.throws(() => createGripSigner('i', '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n'), KeySpecError);
  });

  test('Grip-Feature is Pushpin 1.x list', () => {
    assert.equal(GRIP_FEATURE, 'status, session, link:next, link:gone, filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id, filter:var-subst');
  });
});

describe('grip signature: verification', () => {
  test('accepts own unexpired tokens, rejects wrong key, expired and garbage', async () => {
    let now = T0;
    const s = createGripSigner('i', secret, { now: () => now });
    const v = createGripSigVerifier(secret, { now: () => now });
    const tok = s.header();
    assert.equal(await v.verify(tok), true);
    assert.equal(await v.verify(tok), true); // cached
    assert.equal(await createGripSigVerifier('other', { now: () => now }).verify(tok), false);
    assert.equal(await v.verify('not.a.jwt'), false);
    assert.equal(await v.verify(''), false);
    assert.equal(await v.verify('x'.repeat(10_000)), false);
    now += 3600 * 1000;
    assert.equal(await v.verify(tok), false); // exp reached, even though cached
  });

  test('a token without exp is not trusted (as Pushpin)', async () => {
    const h = Buffer.from('{"typ":"JWT","alg":"HS256"}').toString('base64url');
    const p = Buffer.from('{"iss":"x"}').toString('base64url');
    const { createHmac } = await import('node:crypto');
    const sig = createHmac('sha256', Buffer.from('k')).update(`${h}.${p}`).digest('base64url');
    assert.equal(await verifyGripSig(`${h}.${p}.${sig}`, 'k'), false);
  });

  test('algorithm must match the key type', async () => {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = kp.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    // An HS256 token keyed with the public PEM text as a secret (the classic confusion attack).
    const { createHmac } = await import('node:crypto');
    const h = Buffer.from('{"typ":"JWT","alg":"HS256"}').toString('base64url');
    const p = Buffer.from(`{"exp":${Math.floor(Date.now() / 1000) + 60},"iss":"i"}`).toString('base64url');
    const hsTok = `${h}.${p}.${createHmac('sha256', Buffer.from(pub)).update(`${h}.${p}`).digest('base64url')}`;
    assert.equal(await verifyGripSig(hsTok, pub), false);
  });
});
