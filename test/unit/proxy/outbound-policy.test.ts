import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  INTERNAL_RANGES, MAX_ADDRESS_TEXT_LENGTH, MAX_POLICY_RANGES,
  checkAddress, createOutboundPolicy, parseAddress, parseCidr, selectAddresses,
} from '../../../src/proxy/outbound-policy.js';
import { isLinkTrusted } from '../../../src/proxy/requester.js';
import type { Route, Target } from '../../../src/routes/types.js';

const policy = createOutboundPolicy();

describe('outbound-policy: parseAddress', () => {
  test('outbound-policy: parses IPv4 into 4 bytes', () => {
    assert.deepEqual([...parseAddress('192.168.1.20')!], [192, 168, 1, 20]);
  });
  test('outbound-policy: parses IPv6 forms (compressed, full, dotted tail, zone id)', () => {
    assert.deepEqual([...parseAddress('::1')!], [...new Array(15).fill(0), 1]);
    assert.deepEqual([...parseAddress('fe80::1%eth0')!].slice(0, 2), [0xfe, 0x80]);
    assert.deepEqual([...parseAddress('::ffff:127.0.0.1')!].slice(10), [0xff, 0xff, 127, 0, 0, 1]);
    assert.deepEqual([...parseAddress('1:2:3:4:5:6:7:8')!], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual([...parseAddress('::')!], new Array(16).fill(0));
  });
  test('outbound-policy: refuses host names, shorthand IPv4 and over-long text', () => {
    for (const bad of ['localhost', '127.1', '0x7f.0.0.1', '2130706433', '1:2:3', ':::1', '', 'a'.repeat(MAX_ADDRESS_TEXT_LENGTH + 1), '[::1]']) {
      assert.equal(parseAddress(bad), undefined, bad);
    }
  });
});

describe('outbound-policy: parseCidr', () => {
  test('outbound-policy: zeroes host bits and keeps the text', () => {
    const r = parseCidr('10.1.2.3/8');
    assert.equal(r.text, '10.1.2.3/8');
    assert.equal(r.family, 4);
    assert.equal(r.prefix, 8);
    assert.deepEqual([...r.bytes], [10, 0, 0, 0]);
  });
  test('outbound-policy: a bare address is a single-address range', () => {
    assert.equal(parseCidr('::1').prefix, 128);
    assert.equal(parseCidr('1.2.3.4').prefix, 32);
  });
  test('outbound-policy: rejects bad ranges with a message naming the text', () => {
    for (const bad of ['10.0.0.0/33', '::/129', 'x/8', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', 'fe80::%1/10']) {
      assert.throws(() => parseCidr(bad), (e: unknown) => e instanceof RangeError && e.message.includes(bad), bad);
    }
  });
  test('outbound-policy: every built-in range parses', () => {
    assert.equal(policy.deny.length, INTERNAL_RANGES.length);
  });
  test('outbound-policy: a policy with too many ranges is refused', () => {
    assert.throws(() => createOutboundPolicy(new Array<string>(MAX_POLICY_RANGES + 1).fill('10.0.0.0/8')), RangeError);
  });
});

describe('outbound-policy: checkAddress', () => {
  const denied: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.0/8'],
    ['127.255.255.254', '127.0.0.0/8'],
    ['10.20.30.40', '10.0.0.0/8'],
    ['172.16.0.1', '172.16.0.0/12'],
    ['172.31.255.255', '172.16.0.0/12'],
    ['192.168.0.1', '192.168.0.0/16'],
    ['169.254.169.254', '169.254.0.0/16'],
    ['0.0.0.0', '0.0.0.0/8'],
    ['::', '::/128'],
    ['::1', '::1/128'],
    ['fc00::1', 'fc00::/7'],
    ['fd12:3456::1', 'fc00::/7'],
    ['fe80::1', 'fe80::/10'],
    ['febf::1', 'fe80::/10'],
    ['fe80::1%lo', 'fe80::/10'],
    ['::ffff:127.0.0.1', '127.0.0.0/8'],
    ['::ffff:7f00:1', '127.0.0.0/8'],
    ['::ffff:10.0.0.1', '10.0.0.0/8'],
    ['::ffff:169.254.169.254', '169.254.0.0/16'],
  ];
  for (const [addr, range] of denied) {
    test(`outbound-policy: denies ${addr} (${range})`, () => {
      const v = checkAddress(policy, addr);
      assert.equal(v.allowed, false);
      if (!v.allowed) {
        assert.equal(v.range?.text, range);
        assert.ok(v.reason.includes(addr) && v.reason.includes(range), v.reason);
      }
    });
  }
  const allowed = ['8.8.8.8', '172.15.255.255', '172.32.0.0', '192.169.0.1', '11.0.0.1', '1.0.0.0', '169.255.0.1',
    '128.0.0.1', '192.0.2.2', '2001:db8::1', '::2', 'fec0::1', 'fbff::1', '::ffff:8.8.8.8', '64:ff9b::808:808'];
  for (const addr of allowed) {
    test(`outbound-policy: allows ${addr}`, () => {
      assert.equal(checkAddress(policy, addr).allowed, true);
    });
  }
  test('outbound-policy: an address that does not parse is refused, not thrown', () => {
    const v = checkAddress(policy, 'evil.example');
    assert.equal(v.allowed, false);
    if (!v.allowed) assert.equal(v.range, undefined);
  });
  test('outbound-policy: an empty policy allows every address', () => {
    assert.equal(checkAddress(createOutboundPolicy([]), '127.0.0.1').allowed, true);
  });
  test('outbound-policy: property: any 127/8 address, plain or IPv4-mapped, is denied', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (a, b, c) => {
      assert.equal(checkAddress(policy, `127.${a}.${b}.${c}`).allowed, false);
      assert.equal(checkAddress(policy, `::ffff:127.${a}.${b}.${c}`).allowed, false);
    }));
  });
  test('outbound-policy: property: checkAddress never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => {
      const v = checkAddress(policy, s);
      assert.equal(typeof v.allowed, 'boolean');
    }));
  });
});

describe('outbound-policy: selectAddresses', () => {
  test('outbound-policy: keeps allowed addresses in order and reports the denied ones', () => {
    const sel = selectAddresses(policy, ['127.0.0.1', '8.8.8.8', '::1', '1.1.1.1']);
    assert.deepEqual(sel.allowed, ['8.8.8.8', '1.1.1.1']);
    assert.deepEqual(sel.denied.map((d) => d.address), ['127.0.0.1', '::1']);
  });
  test('outbound-policy: a resolution with only internal addresses leaves nothing allowed', () => {
    const sel = selectAddresses(policy, ['10.0.0.5', '::ffff:192.168.1.1']);
    assert.deepEqual(sel.allowed, []);
    assert.equal(sel.denied.length, 2);
  });
});

describe('requester: isLinkTrusted', () => {
  const t = (untrusted: boolean): Target => ({
    type: 'http', host: '127.0.0.1', port: 80, ssl: false, insecure: false, trustConnectHost: false,
    overHttp: false, oneEvent: false, subscriptions: [], untrusted,
  });
  const route = (...targets: Target[]): Route => ({ targets } as unknown as Route);
  test('requester: a link is trusted when the answering target is, whatever the route holds', () => {
    assert.equal(isLinkTrusted(route(t(true), t(false)), t(false)), true);
    assert.equal(isLinkTrusted(route(t(false)), t(true)), false);
  });
  test('requester: without the answering target, one untrusted target makes links untrusted', () => {
    assert.equal(isLinkTrusted(route(t(false), t(false))), true);
    assert.equal(isLinkTrusted(route(t(false), t(true))), false);
  });
});
