import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeTnetstring,
  decodeTnetstringPrefix,
  encodeTnetstring,
  TnetstringError,
  MAX_DEPTH,
  type TnetValue,
  type TnetEncodable,
} from '../../../src/zmq/tnetstring.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function throwsAt(input: Buffer | string, offset?: number, re?: RegExp): TnetstringError {
  const buf = typeof input === 'string' ? b(input) : input;
  let caught: unknown;
  try {
    decodeTnetstring(buf);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TnetstringError, `expected TnetstringError for ${JSON.stringify(buf.toString('latin1').slice(0, 60))}, got ${String(caught)}`);
  assert.ok(caught.offset >= 0 && caught.offset <= buf.length, `offset ${caught.offset} within input`);
  if (offset !== undefined) assert.equal(caught.offset, offset, caught.message);
  if (re) assert.match(caught.message, re);
  return caught;
}

describe('tnetstring vectors', () => {
  // [encoded bytes, decoded value] pairs that must hold byte-exactly in both directions.
  const vectors: Array<[string, TnetValue]> = [
    ['0:~', null],
    ['4:true!', true],
    ['5:false!', false],
    ['1:0#', 0],
    ['2:42#', 42],
    ['3:-42#', -42],
    ['16:9007199254740991#', Number.MAX_SAFE_INTEGER],
    ['17:-9007199254740991#', -Number.MAX_SAFE_INTEGER],
    ['16:9007199254740992#', 9007199254740992n],
    ['19:9223372036854775807#', 9223372036854775807n],
    ['20:-9223372036854775808#', -9223372036854775808n],
    ['4:-0.5^', -0.5],
    ['3:1.5^', 1.5],
    ['0:,', b('')],
    ['5:hello,', b('hello')],
    ['12:3:foo,3:bar,]', [b('foo'), b('bar')]],
    ['0:]', []],
    ['0:}', {}],
    ['15:4:name,5:alice,}', { name: b('alice') }],
    ['3:\x00\xff\x80,', Buffer.from([0, 0xff, 0x80])],
    ['37:5:hello,5:12345#5:world,4:true!0:,0:~}', { hello: 12345, world: true, '': null }],
  ];

  for (const [enc, value] of vectors) {
    test(`tnetstring: ${JSON.stringify(enc)} decodes and re-encodes byte-exactly`, () => {
      assert.deepEqual(decodeTnetstring(b(enc)), value);
      assert.deepEqual(encodeTnetstring(value as TnetEncodable), b(enc));
    });
  }

  test('tnetstring: strings encode as their UTF-8 bytes and decode as Buffers', () => {
    assert.deepEqual(encodeTnetstring('héllo'), Buffer.concat([b('6:'), Buffer.from('héllo'), b(',')]));
    const v = decodeTnetstring(encodeTnetstring('héllo'));
    assert.ok(Buffer.isBuffer(v));
    assert.equal(v.toString('utf8'), 'héllo');
  });

  test('tnetstring: Uint8Array and Map inputs encode', () => {
    assert.deepEqual(encodeTnetstring(new Uint8Array([104, 105])), b('2:hi,'));
    assert.deepEqual(encodeTnetstring(new Map([['a', 1]])), b('8:1:a,1:1#}'));
  });

  test('tnetstring: undefined dict values are omitted, undefined list items are null', () => {
    assert.deepEqual(encodeTnetstring({ a: undefined, b: 1 }), b('8:1:b,1:1#}'));
    assert.deepEqual(encodeTnetstring([undefined]), b('3:0:~]'));
  });

  test('tnetstring: float edge values', () => {
    assert.deepEqual(encodeTnetstring(NaN), b('3:NaN^'));
    assert.deepEqual(encodeTnetstring(Infinity), b('3:inf^'));
    assert.deepEqual(encodeTnetstring(-Infinity), b('4:-inf^'));
    assert.deepEqual(encodeTnetstring(-0), b('2:-0^'));
    assert.ok(Object.is(decodeTnetstring(b('2:-0^')), -0));
    assert.ok(Number.isNaN(decodeTnetstring(b('3:nan^'))));
    assert.equal(decodeTnetstring(b('8:infinity^')), Infinity);
    assert.equal(decodeTnetstring(b('1:0^')), 0);
    assert.equal(decodeTnetstring(b('5:1e+21^')), 1e21);
    assert.equal(decodeTnetstring(b('2:.5^')), 0.5);
    assert.equal(decodeTnetstring(b('2:5.^')), 5);
    assert.deepEqual(encodeTnetstring(2 ** 60), b('19:1152921504606846976#'));
    assert.deepEqual(encodeTnetstring(1e21), b('5:1e+21^'));
    assert.deepEqual(encodeTnetstring(1e300), b('6:1e+300^'));
  });

  test('tnetstring: integers accept a sign and leading zeros, as Pushpin does', () => {
    assert.equal(decodeTnetstring(b('2:+5#')), 5);
    assert.equal(decodeTnetstring(b('3:007#')), 7);
    assert.deepEqual(decodeTnetstring(b('05:hello,')), b('hello'));
  });

  test('tnetstring: a repeated dict key keeps the last value', () => {
    assert.deepEqual(decodeTnetstring(b('16:1:a,1:1#1:a,1:2#}')), { a: 2 });
  });

  test('tnetstring: a "__proto__" key becomes an own data property', () => {
    const v = decodeTnetstring(b('16:9:__proto__,1:x,}')) as Record<string, unknown>;
    assert.ok(Object.hasOwn(v, '__proto__'));
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
  });

  test('tnetstring: decodeTnetstringPrefix reads a sequence', () => {
    const buf = b('5:apple,6:banana,');
    const first = decodeTnetstringPrefix(buf);
    assert.deepEqual(first, { value: b('apple'), end: 8 });
    const second = decodeTnetstringPrefix(buf, first.end);
    assert.deepEqual(second, { value: b('banana'), end: buf.length });
  });
});

describe('tnetstring hostile input', () => {
  test('tnetstring: rejects malformed frames with the byte offset', () => {
    throwsAt('', 0, /length prefix/);
    throwsAt('bogus', 0, /invalid byte/);
    throwsAt(':~', 0, /empty length/);
    throwsAt('5', 1, /not terminated/);
    throwsAt('5:hello', 0, /claimed length 5/);
    throwsAt('5:hello!', 2, /boolean/);
    throwsAt('5:bogus#', 2, /invalid integer/);
    throwsAt('5:bogus^', 2, /invalid float/);
    throwsAt('0:#', 2, /invalid integer/);
    throwsAt('1: #', 2, /invalid integer/);
    throwsAt('1:x~', 2, /null/);
    throwsAt('5:hello?', 7, /unknown type tag/);
    throwsAt('5:hello,x', 8, /trailing/);
    throwsAt('5:inner]', 2, /invalid byte/);
    throwsAt('4:1:0#}', 2, /not a byte string/);
    throwsAt('4:1:\x80,}', 2, /UTF-8/);
    throwsAt('7:4:name,}', 9, /no value/);
    throwsAt('8:4:name,X}', 9, /invalid byte/);
    throwsAt('19:9223372036854775808#', 3, /64-bit/);
    throwsAt('-1:,', 0, /invalid byte/);
  });

  test('tnetstring: a nested element may not run past its parent', () => {
    // The inner string claims 5 bytes but its parent list only holds 4 after its header.
    throwsAt('6:5:abc,]', 2, /claimed length/);
  });

  test('tnetstring: rejects a 100 MB claimed length on a 10-byte buffer without allocating', () => {
    const e = throwsAt('100000000:', 0, /claimed length 100000000/);
    assert.equal(e.offset, 0);
    // Far beyond the buffer in a nested position too.
    throwsAt('11:100000000:,]', 3, /claimed length/);
  });

  test('tnetstring: rejects length prefixes with too many digits', () => {
    throwsAt('1000000000:x,', 9, /digits/);
    throwsAt('0000000000:,', 9, /digits/);
  });

  test('tnetstring: rejects nesting deeper than MAX_DEPTH and accepts MAX_DEPTH', () => {
    let ok: TnetEncodable = null;
    for (let i = 0; i < MAX_DEPTH; i++) ok = [ok];
    const enc = encodeTnetstring(ok);
    assert.deepEqual(decodeTnetstring(enc), ok);
    const tooDeep = Buffer.concat([b(`${enc.length}:`), enc, b(']')]);
    throwsAt(tooDeep, undefined, /nesting/);
    assert.throws(() => encodeTnetstring([ok]), TnetstringError);
  });

  test('tnetstring: encoder refuses cycles and out-of-range bigints', () => {
    const a: unknown[] = [];
    a.push(a);
    assert.throws(() => encodeTnetstring(a as TnetEncodable), TnetstringError);
    assert.throws(() => encodeTnetstring(2n ** 64n), TnetstringError);
  });

  test('tnetstring: every truncated prefix of a valid value throws with an offset', () => {
    const full = encodeTnetstring({
      from: 'me',
      items: [1, -2.5, true, null, Buffer.from([0, 1, 2]), { deep: [[], {}] }],
      big: 2n ** 60n,
    });
    assert.ok(decodeTnetstring(full));
    for (let cut = 0; cut < full.length; cut++) {
      throwsAt(full.subarray(0, cut));
    }
  });

  test('tnetstring: every split point decodes identically once both halves are joined', () => {
    const full = encodeTnetstring({ a: [b('x'), 1, 2.5], b: { c: null } });
    const expect = decodeTnetstring(full);
    for (let cut = 0; cut <= full.length; cut++) {
      const joined = Buffer.concat([full.subarray(0, cut), full.subarray(cut)]);
      assert.deepEqual(decodeTnetstring(joined), expect);
    }
  });

  test('tnetstring: random and mutated bytes only ever produce values or TnetstringError', () => {
    const seed = encodeTnetstring({ a: [1, 2, b('xyz'), { k: true }], n: null, f: 1.25 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
            const m = Buffer.from(seed);
            m[i] = v;
            return m;
          }),
        ),
        (bytes) => {
          try {
            decodeTnetstring(bytes);
          } catch (e) {
            assert.ok(e instanceof TnetstringError, String(e));
            assert.ok(e.offset >= 0 && e.offset <= bytes.length);
          }
        },
      ),
      { numRuns: 5000, seed: 42 },
    );
  });
});

describe('tnetstring round trip', () => {
  // Values in the decoder's canonical form: Buffers for strings, safe ints as numbers,
  // bigints only outside the safe range, non-integral floats as numbers.
  const canonical: fc.Arbitrary<TnetValue> = fc.letrec<{ v: TnetValue }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.double({ noNaN: true }).filter((x) => !Number.isInteger(x) || Object.is(x, -0) || !Number.isFinite(x)),
      fc.oneof(
        fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) }),
        fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n }),
      ),
      fc.uint8Array({ maxLength: 20 }).map((u) => Buffer.from(u)),
      fc.array(tie('v'), { maxLength: 5 }),
      fc
        .array(fc.tuple(fc.string({ maxLength: 8 }), tie('v')), { maxLength: 5 })
        .map((pairs) => {
          const o: Record<string, TnetValue> = {};
          for (const [k, val] of pairs) Object.defineProperty(o, k, { value: val, enumerable: true, writable: true, configurable: true });
          return o;
        }),
    ),
  })).v;

  test('tnetstring: decode(encode(v)) is v', () => {
    fc.assert(
      fc.property(canonical, (v) => {
        assert.deepEqual(decodeTnetstring(encodeTnetstring(v)), v);
      }),
      { numRuns: 2000, seed: 7 },
    );
  });

  test('tnetstring: encode(decode(bytes)) is bytes for canonical encodings', () => {
    fc.assert(
      fc.property(canonical, (v) => {
        const enc = encodeTnetstring(v);
        assert.deepEqual(encodeTnetstring(decodeTnetstring(enc)), enc);
      }),
      { numRuns: 2000, seed: 11 },
    );
  });
});
