import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CORS_DEFAULT_ALLOW_METHODS, MAX_CORS_LIST_ITEMS, applyCorsHeaders, splitHeaderList } from '../../../src/grip/cors.js';

type H = Array<[string, string]>;

// Vectors captured from Pushpin 1.36 (route `*,aco 127.0.0.1:PORT`), response headers as
// relayed, framing headers (Content-Length, Connection) left out.
describe('cors: Pushpin 1.36 vectors', () => {
  test('cors: request method, headers and origin are echoed; Date/X-Echo exposed', () => {
    const req: H = [
      ['Host', 'h'], ['Origin', 'http://a.com'],
      ['Access-Control-Request-Headers', 'X-A, , X-B'],
      ['Access-Control-Request-Headers', '"q,r",X-C'],
      ['Access-Control-Request-Method', 'PATCH'],
    ];
    const resp: H = [['Content-Type', 'application/json'], ['X-Echo', 'yes'], ['Date', 'D']];
    assert.deepEqual(applyCorsHeaders(req, resp), [
      ['Content-Type', 'application/json'], ['X-Echo', 'yes'], ['Date', 'D'],
      ['Access-Control-Allow-Methods', 'PATCH'],
      ['Access-Control-Allow-Headers', 'X-A, X-B, "q,r", X-C'],
      ['Access-Control-Expose-Headers', 'X-Echo, Date'],
      ['Access-Control-Allow-Credentials', 'true'],
      ['Access-Control-Allow-Origin', 'http://a.com'],
      ['Access-Control-Max-Age', '3600'],
    ]);
  });

  test('cors: backend headers win (any case); simple, Grip- and duplicate names not exposed', () => {
    const resp: H = [
      ['X-Foo', '1'], ['Cache-Control', 'no-cache'], ['x-foo', '2'], ['ETag', 'e'],
      ['access-control-max-age', '5'], ['Pragma', 'p'], ['X-Bar', 'b'], ['Date', 'D'],
    ];
    assert.deepEqual(applyCorsHeaders([['Host', 'h']], resp), [
      ...resp,
      ['Access-Control-Allow-Methods', CORS_DEFAULT_ALLOW_METHODS],
      ['Access-Control-Expose-Headers', 'X-Foo, ETag, X-Bar, Date'],
      ['Access-Control-Allow-Credentials', 'true'],
      ['Access-Control-Allow-Origin', '*'],
    ]);
  });

  test('cors: the 400 for a bad JSON-P request (text/plain only) exposes nothing', () => {
    assert.deepEqual(applyCorsHeaders([], [['Content-Type', 'text/plain']]), [
      ['Content-Type', 'text/plain'],
      ['Access-Control-Allow-Methods', 'OPTIONS, HEAD, GET, POST, PUT, DELETE'],
      ['Access-Control-Allow-Credentials', 'true'],
      ['Access-Control-Allow-Origin', '*'],
      ['Access-Control-Max-Age', '3600'],
    ]);
  });
});

describe('cors: rules', () => {
  test('cors: an empty Origin or Access-Control-Request-Method falls back to the defaults', () => {
    const out = applyCorsHeaders([['Origin', ''], ['Origin', 'http://late'], ['Access-Control-Request-Method', '']], []);
    assert.deepEqual(out.find(([n]) => n === 'Access-Control-Allow-Origin'), ['Access-Control-Allow-Origin', '*']);
    assert.deepEqual(out.find(([n]) => n === 'Access-Control-Allow-Methods'), ['Access-Control-Allow-Methods', CORS_DEFAULT_ALLOW_METHODS]);
  });

  test('cors: request header names match case-insensitively', () => {
    const out = applyCorsHeaders([['ORIGIN', 'http://o'], ['access-control-request-method', 'PUT']], []);
    assert.ok(out.some(([n, v]) => n === 'Access-Control-Allow-Origin' && v === 'http://o'));
    assert.ok(out.some(([n, v]) => n === 'Access-Control-Allow-Methods' && v === 'PUT'));
  });

  test('cors: a response with every CORS header is returned unchanged', () => {
    const resp: H = [
      ['access-control-allow-methods', 'GET'], ['ACCESS-CONTROL-ALLOW-HEADERS', 'x'],
      ['Access-Control-Expose-Headers', 'y'], ['Access-Control-Allow-Credentials', 'false'],
      ['Access-Control-Allow-Origin', 'https://only'], ['Access-Control-Max-Age', '1'], ['X-Q', 'q'],
    ];
    assert.deepEqual(applyCorsHeaders([['Origin', 'http://evil'], ['Access-Control-Request-Headers', 'z']], resp), resp);
  });

  test('cors: does not mutate its inputs', () => {
    const req: H = [['Origin', 'o']];
    const resp: H = [['X-A', '1']];
    applyCorsHeaders(req, resp);
    assert.deepEqual(req, [['Origin', 'o']]);
    assert.deepEqual(resp, [['X-A', '1']]);
  });

  test('cors: Allow-Headers and Expose-Headers are capped at MAX_CORS_LIST_ITEMS', () => {
    const many = Array.from({ length: MAX_CORS_LIST_ITEMS + 50 }, (_, i) => `X-${i}`);
    const out = applyCorsHeaders([['Access-Control-Request-Headers', many.join(',')]], many.map((n) => [n, 'v'] as [string, string]));
    const allow = out.find(([n]) => n === 'Access-Control-Allow-Headers')![1];
    const expose = out.find(([n]) => n === 'Access-Control-Expose-Headers')![1];
    assert.equal(allow.split(', ').length, MAX_CORS_LIST_ITEMS);
    assert.equal(expose.split(', ').length, MAX_CORS_LIST_ITEMS);
  });
});

describe('cors: splitHeaderList', () => {
  test('cors: splits on commas outside quotes and trims', () => {
    assert.deepEqual(splitHeaderList(' a , "b,c" ,d\t'), ['a', '"b,c"', 'd']);
  });
  test('cors: empty items stay (callers drop them); a trailing comma adds none', () => {
    assert.deepEqual(splitHeaderList('a,,b,'), ['a', '', 'b']);
    assert.deepEqual(splitHeaderList(',a'), ['', 'a']);
  });
  test('cors: backslash escapes inside quotes', () => {
    assert.deepEqual(splitHeaderList('"a\\",b",c'), ['"a\\",b"', 'c']);
  });
  test('cors: an unterminated quote or trailing escape makes the rest one item', () => {
    assert.deepEqual(splitHeaderList('a,"b,c'), ['a', '"b,c']);
    assert.deepEqual(splitHeaderList('a,"b\\'), ['a', '"b\\']);
  });
  test('cors: random input never throws and is bounded', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), fc.array(fc.tuple(fc.string(), fc.string()), { maxLength: 10 }), (s, resp) => {
      const parts = splitHeaderList(s);
      assert.ok(parts.length <= MAX_CORS_LIST_ITEMS);
      const out = applyCorsHeaders([['Access-Control-Request-Headers', s], ['Origin', s]], resp);
      assert.ok(out.length >= resp.length && out.length <= resp.length + 6);
    }), { numRuns: 500 });
  });
});
