import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBackendHeaders, isForwardedTls, type RequestHeaderOptions } from '../../../src/proxy/request-headers.js';
import { hostForRouting } from '../../../src/proxy/forward.js';

const base: RequestHeaderOptions = {
  trusted: false, addGripFeature: false, gripFeature: 'F', routeHeaders: [], origHeaders: false,
  origHeadersNeedMark: new Set(), acceptPushpinRoute: false, acceptXForwardedProtocol: false,
  setXForwardedProtocol: 'false', https: false, xff: { truncate: undefined, append: false },
  peerAddress: '10.0.0.1', cdnLoop: '', hostOverride: undefined,
};

test('request headers: X-Forwarded-For untouched by default, joined and moved last', () => {
  const out = buildBackendHeaders(['Host', 'h', 'X-Forwarded-For', '1.1.1.1', 'X-Forwarded-For', '2.2.2.2', 'A', 'b'], base);
  assert.deepEqual(out, ['Host', 'h', 'A', 'b', 'X-Forwarded-For', '1.1.1.1, 2.2.2.2']);
});

test('request headers: truncate:0 with append leaves only the peer', () => {
  const out = buildBackendHeaders(['X-Forwarded-For', '1.1.1.1, 2.2.2.2'], { ...base, xff: { truncate: 0, append: true } });
  assert.deepEqual(out, ['X-Forwarded-For', '10.0.0.1']);
});

test('request headers: set_x_forwarded_protocol=true adds both headers only for https', () => {
  const o = { ...base, setXForwardedProtocol: 'true' as const };
  assert.deepEqual(buildBackendHeaders(['X-Forwarded-Proto', 'https'], o), []);
  assert.deepEqual(buildBackendHeaders([], { ...o, https: true }), ['X-Forwarded-Proto', 'https', 'X-Forwarded-Protocol', 'https']);
  assert.deepEqual(buildBackendHeaders([], { ...o, setXForwardedProtocol: 'proto-only', https: true }), ['X-Forwarded-Proto', 'https']);
});

test('request headers: Grip-* removed unless trusted; Grip-Feature added for GRIP routes', () => {
  const raw = ['Grip-Last', 'c; last-id=1', 'Grip-Feature', 'x'];
  assert.deepEqual(buildBackendHeaders(raw, { ...base, addGripFeature: true }), ['Grip-Feature', 'F']);
  assert.deepEqual(buildBackendHeaders(raw, { ...base, trusted: true }), raw);
});

test('request headers: route header= replaces or removes, Host override, CDN-Loop appended', () => {
  const out = buildBackendHeaders(['Host', 'a', 'User-Agent', 'u', 'CDN-Loop', 'x'], {
    ...base, routeHeaders: [['User-Agent', ''], ['X-New', '1']], hostOverride: 'b:81', cdnLoop: 'gripd',
  });
  assert.deepEqual(out, ['X-New', '1', 'Host', 'b:81', 'CDN-Loop', 'x, gripd']);
});

test('request headers: orig_headers marks a copy of every header', () => {
  const out = buildBackendHeaders(['A', '1', 'eb9bf0f5-B', '2'], { ...base, origHeaders: true });
  assert.deepEqual(out, ['A', '1', 'eb9bf0f5-A', '1', 'eb9bf0f5-B', '2']);
});

test('isForwardedTls: X-Forwarded-Proto wins over X-Forwarded-Protocol', () => {
  assert.equal(isForwardedTls(['X-Forwarded-Proto', 'https']), true);
  assert.equal(isForwardedTls(['X-Forwarded-Protocol', 'wss']), true);
  assert.equal(isForwardedTls(['X-Forwarded-Proto', 'http', 'X-Forwarded-Protocol', 'https']), false);
});

test('hostForRouting: strips the port, lowercases, handles IPv6 and absence', () => {
  assert.equal(hostForRouting('Example.COM:8080'), 'example.com');
  assert.equal(hostForRouting('[::1]:80'), '::1');
  assert.equal(hostForRouting(undefined), 'localhost');
});
