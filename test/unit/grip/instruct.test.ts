import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  InstructError,
  MAX_INSTRUCT_BODY_BYTES,
  MAX_TIMER_S,
  parseGripHeaders,
  parseInstructBody,
  unescapeCString,
} from '../../../src/grip/instruct.js';
import type { Instruct } from '../../../src/grip/types.js';

const L = { subscriptionMax: 20 };
type H = Array<[string, string]>;
const parse = (headers: H, body = 'hello world', status = 200, reason = 'OK'): Instruct =>
  parseGripHeaders(status, reason, headers, Buffer.from(body), L);
const json = (obj: unknown): Buffer => Buffer.from(JSON.stringify(obj));
const err = (fn: () => unknown, message: string): void => {
  assert.throws(fn, (e: unknown) => e instanceof InstructError && e.message === message);
};

describe('grip instruct: headers', () => {
  test('no hold: Grip-* stripped, status kept', () => {
    const i = parse([['Content-Type', 'text/plain'], ['Grip-Channel', 'test']]);
    assert.equal(i.hold, undefined);
    assert.deepEqual(i.channels, [{ name: 'test', filters: [] }]);
    assert.equal(i.response.code, 200);
    assert.equal(i.response.reason, 'OK');
    assert.deepEqual(i.response.headers, [['Content-Type', 'text/plain']]);
    assert.equal(i.response.body.toString(), 'hello world');
  });

  test('Grip-Status with code only takes the standard reason; with text takes the text', () => {
    assert.deepEqual([parse([['Grip-Status', '404']]).response.code, parse([['Grip-Status', '404']]).response.reason], [404, 'Not Found']);
    const i = parse([['Grip-Status', '404 Nothing To See Here']]);
    assert.equal(i.response.code, 404);
    assert.equal(i.response.reason, 'Nothing To See Here');
    assert.equal(parse([['Grip-Status', '599']]).response.reason, 'Undefined Reason');
  });

  test('response hold: channels repeated and comma-separated, timeout, meta', () => {
    const i = parse([
      ['Content-Type', 'text/plain'],
      ['Grip-Hold', 'response'],
      ['Grip-Channel', 'apple'],
      ['Grip-Channel', 'banana, cherry'],
      ['Grip-Timeout', '120'],
      ['Grip-Set-Meta', 'foo=bar, bar=baz'],
    ]);
    assert.equal(i.hold?.mode, 'response');
    assert.deepEqual(i.hold?.channels.map((c) => c.name), ['apple', 'banana', 'cherry']);
    assert.equal(i.hold?.timeoutS, 120);
    assert.deepEqual(i.meta, { foo: 'bar', bar: 'baz' });
    assert.deepEqual(i.response.headers, [['Content-Type', 'text/plain']]);
    assert.equal(i.channels, undefined);
  });

  test('channel params: prev-id and filters, split and joined forms agree', () => {
    const split = parse([
      ['Grip-Hold', 'response'],
      ['Grip-Channel', 'apple; prev-id=item1; filter=f1'],
      ['Grip-Channel', 'banana; filter=f2'],
      ['Grip-Channel', 'cherry; filter=f1; filter=f2'],
    ]);
    const joined = parse([
      ['Grip-Hold', 'response'],
      ['Grip-Channel', 'apple; prev-id=item1; filter=f1, banana; filter=f2, cherry; filter=f1; filter=f2'],
    ]);
    const want = [
      { name: 'apple', prevId: 'item1', filters: ['f1'] },
      { name: 'banana', filters: ['f2'] },
      { name: 'cherry', filters: ['f1', 'f2'] },
    ];
    assert.deepEqual(split.hold?.channels, want);
    assert.deepEqual(joined.hold?.channels, want);
  });

  test('quoted prev-id may hold commas and semicolons', () => {
    const i = parse([['Grip-Hold', 'stream'], ['Grip-Channel', 'a; prev-id="x,y;z", b']]);
    assert.deepEqual(i.hold?.channels, [{ name: 'a', prevId: 'x,y;z', filters: [] }, { name: 'b', filters: [] }]);
  });

  test('header names are case-insensitive', () => {
    const i = parse([['grip-hold', 'stream'], ['GRIP-CHANNEL', 'x'], ['grip-TIMEOUT', '9']]);
    assert.equal(i.hold?.mode, 'stream');
    assert.equal(i.hold?.timeoutS, 9);
    assert.deepEqual(i.response.headers, []);
  });

  test('timeout default 55 and floor 5; huge values capped for timers', () => {
    assert.equal(parse([['Grip-Hold', 'response'], ['Grip-Channel', 'a']]).hold?.timeoutS, 55);
    assert.equal(parse([['Grip-Hold', 'response'], ['Grip-Timeout', '0']]).hold?.timeoutS, 5);
    assert.equal(parse([['Grip-Hold', 'response'], ['Grip-Timeout', ' 7 ']]).hold?.timeoutS, 7);
    assert.equal(parse([['Grip-Hold', 'response'], ['Grip-Timeout', '2000000000']]).hold?.timeoutS, MAX_TIMER_S);
  });

  test('keep-alive forms: raw, cstring, base64, interval', () => {
    const ka = (v: string) => parse([['Grip-Hold', 'stream'], ['Grip-Channel', 't'], ['Grip-Keep-Alive', v]]).hold?.keepAlive;
    assert.deepEqual(ka('ping1\\n; timeout=10'), { data: Buffer.from('ping1\\n'), timeoutS: 10, mode: 'idle' });
    assert.deepEqual(ka('ping2\\n; format=cstring'), { data: Buffer.from('ping2\n'), timeoutS: 55, mode: 'idle' });
    assert.deepEqual(ka('cGluZzMK; format=base64'), { data: Buffer.from('ping3\n'), timeoutS: 55, mode: 'idle' });
    assert.deepEqual(ka('ping4\\n; mode=interval'), { data: Buffer.from('ping4\\n'), timeoutS: 55, mode: 'interval' });
    assert.equal(ka('x; timeout=0')?.timeoutS, 1);
    assert.equal(parse([['Grip-Hold', 'stream']]).hold?.keepAlive, undefined);
  });

  test('keep-alive raw value keeps UTF-8 bytes given as a latin1 byte string', () => {
    const bytes = Buffer.from('é', 'utf8').toString('latin1');
    const i = parse([['Grip-Hold', 'stream'], ['Grip-Keep-Alive', bytes]]);
    assert.deepEqual(i.hold?.keepAlive?.data, Buffer.from('é', 'utf8'));
  });

  test('links: next with default and explicit timeout, gone; links without params ignored', () => {
    const i = parse([
      ['Grip-Hold', 'stream'],
      ['Grip-Link', '</next?x=1>; rel=next'],
      ['Grip-Link', '<http://example.com/gone>; rel=gone'],
      ['Grip-Link', '<ignored>'],
    ]);
    assert.deepEqual(i.nextLink, { url: '/next?x=1', timeoutS: 120 });
    assert.deepEqual(i.goneLink, { url: 'http://example.com/gone' });
    assert.equal(parse([['Grip-Link', '</n>; rel=next; timeout=30']]).nextLink?.timeoutS, 30);
  });

  test('Grip-Expose-Headers narrows the response headers to those named', () => {
    const i = parse([
      ['Content-Type', 'text/plain'],
      ['X-A', '1'],
      ['X-B', '2'],
      ['Grip-Hold', 'response'],
      ['Grip-Expose-Headers', 'x-a, Content-Type'],
    ]);
    assert.deepEqual(i.exposeHeaders, ['x-a', 'Content-Type']);
    assert.deepEqual(i.response.headers, [['Content-Type', 'text/plain'], ['X-A', '1']]);
  });

  test('framing headers are removed', () => {
    const i = parse([
      ['Content-Length', '11'],
      ['Transfer-Encoding', 'chunked'],
      ['Connection', 'keep-alive'],
      ['Keep-Alive', 'timeout=5'],
      ['Content-Encoding', 'identity'],
      ['X-Keep', 'yes'],
      ['Grip-Hold', 'response'],
    ]);
    assert.deepEqual(i.response.headers, [['X-Keep', 'yes']]);
  });

  test('channels beyond subscriptionMax are dropped and counted', () => {
    const i = parseGripHeaders(200, 'OK', [['Grip-Hold', 'stream'], ['Grip-Channel', 'a, b, c, d']], Buffer.alloc(0), { subscriptionMax: 2 });
    assert.deepEqual(i.hold?.channels.map((c) => c.name), ['a', 'b']);
    assert.equal(i.channelsDropped, 2);
  });

  test('empty channel elements are skipped', () => {
    const i = parse([['Grip-Hold', 'stream'], ['Grip-Channel', 'a, , b,']]);
    assert.deepEqual(i.hold?.channels.map((c) => c.name), ['a', 'b']);
  });

  test('UTF-8 channel names and meta arrive decoded', () => {
    const b = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
    const i = parse([['Grip-Hold', 'stream'], ['Grip-Channel', b('café')], ['Grip-Set-Meta', b('k=ü')]]);
    assert.equal(i.hold?.channels[0]?.name, 'café');
    assert.deepEqual(i.meta, { k: 'ü' });
  });
});

describe('grip instruct: header errors (Pushpin texts)', () => {
  const cases: Array<[H, string]> = [
    [[['Grip-Hold', 'forever']], "Grip-Hold must be set to either 'response' or 'stream'"],
    [[['Grip-Channel', 'a; filter=1; filter=2; filter=3; filter=4; filter=5; filter=6']], "too many filters for channel 'a'"],
    [[['Grip-Channel', 'a; prev-id="unterminated']], 'failed to parse Grip-Channel'],
    [[['Grip-Timeout', 'soon']], 'failed to parse Grip-Timeout'],
    [[['Grip-Timeout', '']], 'failed to parse Grip-Timeout'],
    [[['Grip-Timeout', '-1']], 'Grip-Timeout has invalid value'],
    [[['Grip-Timeout', '99999999999']], 'failed to parse Grip-Timeout'],
    [[['Grip-Keep-Alive', '; timeout=5']], 'Grip-Keep-Alive cannot be empty'],
    [[['Grip-Keep-Alive', 'x; mode=sometimes']], "no such Grip-Keep-Alive mode 'sometimes'"],
    [[['Grip-Keep-Alive', 'x; timeout=abc']], 'failed to parse Grip-Keep-Alive timeout value'],
    [[['Grip-Keep-Alive', 'x; timeout=-2']], 'Grip-Keep-Alive timeout has invalid value'],
    [[['Grip-Keep-Alive', 'x\\; format=cstring']], 'failed to parse Grip-Keep-Alive cstring format'],
    [[['Grip-Keep-Alive', 'x\\x4; format=cstring']], 'failed to parse Grip-Keep-Alive cstring format'],
    [[['Grip-Keep-Alive', '!!!; format=base64']], 'failed to parse Grip-Keep-Alive base64 format'],
    [[['Grip-Keep-Alive', 'x; format=hex']], "no such Grip-Keep-Alive format 'hex'"],
    [[['Grip-Set-Meta', 'a=1,,b=2']], 'Grip-Set-Meta cannot be empty'],
    [[['Grip-Status', 'abc']], 'Grip-Status contains invalid status code'],
    [[['Grip-Status', '1000 Too Big']], 'Grip-Status contains invalid status code'],
    [[['Grip-Link', 'next; rel=next']], 'failed to parse Grip-Link value'],
    [[['Grip-Link', '<>; rel=next']], 'failed to parse Grip-Link value'],
    [[['Grip-Link', '<http://[bad>; rel=next']], 'Grip-Link contains invalid link'],
    [[['Grip-Link', '</n>; rel=next; timeout=x']], 'failed to parse Grip-Link timeout value'],
    [[['Grip-Link', '</n>; rel=next; timeout=-1']], 'Grip-Link timeout has invalid value'],
  ];
  for (const [headers, message] of cases) {
    test(`${JSON.stringify(headers)} -> ${message}`, () => err(() => parse(headers), message));
  }
});

describe('grip instruct: JSON body', () => {
  const ct: H = [['Content-Type', 'application/grip-instruct']];

  test('no hold: response with code, headers and body', () => {
    const i = parseGripHeaders(200, 'OK', ct, json({ response: { code: 200, headers: { 'Content-Type': 'text/plain' }, body: 'hello world' } }), L);
    assert.equal(i.hold, undefined);
    assert.equal(i.response.code, 200);
    assert.equal(i.response.reason, 'OK');
    assert.deepEqual(i.response.headers, [['Content-Type', 'text/plain']]);
    assert.equal(i.response.body.toString(), 'hello world');
  });

  test('response hold with channels, prev-id, filters, timeout and meta', () => {
    const i = parseInstructBody(
      json({
        hold: {
          mode: 'response',
          channels: [{ name: 'apple', 'prev-id': 'item1', filters: ['f1'] }, { name: 'banana', filters: ['f2'] }],
          timeout: 120,
          meta: { foo: 'bar' },
        },
        response: { code: 200, headers: [['Content-Type', 'text/plain']], body: 'hi' },
      }),
      L,
    );
    assert.equal(i.hold?.mode, 'response');
    assert.deepEqual(i.hold?.channels, [
      { name: 'apple', prevId: 'item1', filters: ['f1'] },
      { name: 'banana', filters: ['f2'] },
    ]);
    assert.equal(i.hold?.timeoutS, 120);
    assert.deepEqual(i.meta, { foo: 'bar' });
    assert.deepEqual(i.response.headers, [['Content-Type', 'text/plain']]);
  });

  test('hold without mode is a response hold; body-bin decodes; code clears reason', () => {
    const i = parseInstructBody(json({ hold: { channels: [] }, response: { code: 404, 'body-bin': 'aGk=' } }), L);
    assert.equal(i.hold?.mode, 'response');
    assert.equal(i.response.reason, 'Not Found');
    assert.equal(i.response.body.toString(), 'hi');
  });

  test('no response member: empty body and no headers', () => {
    const i = parseGripHeaders(200, 'OK', [...ct, ['X-A', '1']], json({ hold: { mode: 'stream', channels: [{ name: 'x' }] } }), L);
    assert.deepEqual(i.response.headers, []);
    assert.equal(i.response.body.length, 0);
    assert.equal(i.hold?.mode, 'stream');
  });

  test('keep-alive: content, content-bin, default timeout, interval unless mode given', () => {
    const ka = (k: unknown) => parseInstructBody(json({ hold: { mode: 'stream', channels: [], 'keep-alive': k } }), L).hold?.keepAlive;
    assert.deepEqual(ka({ content: 'ping' }), { data: Buffer.from('ping'), timeoutS: 55, mode: 'interval' });
    assert.deepEqual(ka({ 'content-bin': 'AAE=', timeout: 3, mode: 'idle' }), { data: Buffer.from([0, 1]), timeoutS: 3, mode: 'idle' });
    assert.equal(ka({}), undefined);
  });

  test('headers channels and JSON channels add up; JSON hold wins', () => {
    const i = parseGripHeaders(200, 'OK', [...ct, ['Grip-Hold', 'response'], ['Grip-Channel', 'h']], json({ hold: { mode: 'stream', channels: [{ name: 'j' }] } }), L);
    assert.equal(i.hold?.mode, 'stream');
    assert.deepEqual(i.hold?.channels.map((c) => c.name), ['h', 'j']);
  });

  test('content type with parameters and any case is recognised', () => {
    const i = parseGripHeaders(200, 'OK', [['content-type', 'Application/Grip-Instruct; charset=utf-8']], json({ response: { body: 'x' } }), L);
    assert.equal(i.response.body.toString(), 'x');
  });

  test('a meta key named __proto__ is kept as data', () => {
    const i = parseInstructBody(Buffer.from('{"hold":{"channels":[],"meta":{"__proto__":"x"}}}'), L);
    assert.equal(Object.getOwnPropertyDescriptor(i.meta, '__proto__')?.value, 'x');
    assert.equal(Object.getPrototypeOf(i.meta), Object.prototype);
  });
});

describe('grip instruct: JSON errors (Pushpin texts)', () => {
  const cases: Array<[string, string]> = [
    ['not json', 'failed to parse application/grip-instruct content as JSON'],
    ['"str"', 'failed to parse application/grip-instruct content as JSON'],
    ['[1]', 'instruct must be an object'],
    ['{"hold":5}', "instruct contains 'hold' with wrong type"],
    ['{"hold":{"mode":5,"channels":[]}}', "hold contains 'mode' with wrong type"],
    ['{"hold":{"mode":"x","channels":[]}}', "hold 'mode' must be set to either 'response' or 'stream'"],
    ['{"hold":{}}', "hold does not contain 'channels'"],
    ['{"hold":{"channels":5}}', "hold contains 'channels' with wrong type"],
    ['{"hold":{"channels":[5]}}', 'channel is not an object'],
    ['{"hold":{"channels":[{}]}}', "channel does not contain 'name'"],
    ['{"hold":{"channels":[{"name":1}]}}', "channel contains 'name' with wrong type"],
    ['{"hold":{"channels":[{"name":"a","prev-id":1}]}}', "channel contains 'prev-id' with wrong type"],
    ['{"hold":{"channels":[{"name":"a","filters":"f"}]}}', "channel contains 'filters' with wrong type"],
    ['{"hold":{"channels":[{"name":"a","filters":[1]}]}}', 'filters contains value with wrong type'],
    ['{"hold":{"channels":[],"timeout":"x"}}', "hold contains 'timeout' with wrong type"],
    ['{"hold":{"channels":[],"timeout":-1}}', "hold contains 'timeout' with invalid value"],
    ['{"hold":{"channels":[],"keep-alive":5}}', "hold contains 'keep-alive' with wrong type"],
    ['{"hold":{"channels":[],"keep-alive":{"content":5}}}', "keep-alive contains 'content' with wrong type"],
    ['{"hold":{"channels":[],"keep-alive":{"content-bin":5}}}', "keep-alive contains 'content-bin' with wrong type"],
    ['{"hold":{"channels":[],"keep-alive":{"content":"x","timeout":null}}}', "keep-alive contains 'timeout' with wrong type"],
    ['{"hold":{"channels":[],"keep-alive":{"content":"x","timeout":-1}}}', "keep-alive contains 'timeout' with invalid value"],
    ['{"hold":{"channels":[],"meta":5}}', "hold contains 'meta' with wrong type"],
    ['{"hold":{"channels":[],"meta":{"k":5}}}', "'meta' contains 'k' with wrong type"],
    ['{"response":{"code":"abc"}}', "response contains 'code' with wrong type"],
    ['{"response":{"code":1000}}', "response contains 'code' with invalid value"],
    ['{"response":{"reason":5}}', "response contains 'reason' with wrong type"],
    ['{"response":{"headers":5}}', "response contains 'headers' with wrong type"],
    ['{"response":{"headers":[5]}}', 'headers contains element with wrong type'],
    ['{"response":{"headers":[["a"]]}}', 'headers contains list with wrong number of elements'],
    ['{"response":{"headers":[[1,"b"]]}}', 'header contains name element with wrong type'],
    ['{"response":{"headers":[["a",1]]}}', 'header contains value element with wrong type'],
    ['{"response":{"headers":{"a":1}}}', "headers contains 'a' with wrong type"],
    ['{"response":{"headers":{"a":"x\\r\\ny"}}}', "headers contains 'a' with invalid value"],
    ['{"response":{"headers":{"a b":"x"}}}', "headers contains 'a b' with invalid name"],
    ['{"response":{"body":5}}', "response contains 'body' with wrong type"],
    ['{"response":{"body-bin":5}}', "response contains 'body-bin' with wrong type"],
    ['{"response":{"body-bin":"*"}}', "response contains 'body-bin' with invalid value"],
    ['{"response":5}', "instruct contains 'response' with wrong type"],
  ];
  for (const [body, message] of cases) {
    test(`${body} -> ${message}`, () => err(() => parseInstructBody(Buffer.from(body), L), message));
  }

  test('instruct content with a non-200 status is refused', () => {
    err(
      () => parseGripHeaders(201, 'Created', [['Content-Type', 'application/grip-instruct']], json({}), L),
      'response code for application/grip-instruct content must be 200',
    );
  });

  test('bodies over the limit are refused before parsing', () => {
    const big = Buffer.alloc(MAX_INSTRUCT_BODY_BYTES + 1, 0x20);
    err(() => parseInstructBody(big, L), `application/grip-instruct content exceeds ${MAX_INSTRUCT_BODY_BYTES} bytes`);
  });
});

describe('grip instruct: cstring', () => {
  test('escapes decode as Pushpin; unknown escapes are dropped', () => {
    assert.deepEqual(unescapeCString(Buffer.from('a\\r\\n\\\\\\x41\\tz')), Buffer.from('a\r\n\\Az'));
    assert.equal(unescapeCString(Buffer.from('a\\')), undefined);
    assert.equal(unescapeCString(Buffer.from('\\xZZ')), undefined);
  });
});

describe('grip instruct: hostile input', () => {
  const onlyInstructErrors = (fn: () => unknown): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof InstructError)) throw e;
    }
  };
  const gripNames = ['Grip-Hold', 'Grip-Channel', 'Grip-Timeout', 'Grip-Keep-Alive', 'Grip-Status', 'Grip-Set-Meta', 'Grip-Link', 'Grip-Expose-Headers', 'Content-Type'];

  test('any header values raise only InstructError', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...gripNames), fc.string({ maxLength: 60 })), { maxLength: 8 }), (hs) => {
        onlyInstructErrors(() => parse(hs));
      }),
      { numRuns: 2000 },
    );
  });

  test('any instruct body raises only InstructError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json().map(String), fc.jsonValue().map((v) => JSON.stringify({ hold: v, response: v }))), (s) => {
        onlyInstructErrors(() => parseInstructBody(Buffer.from(s), L));
      }),
      { numRuns: 2000 },
    );
  });

  test('structured random instructions raise only InstructError', () => {
    const anyVal = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }));
    const arb = fc.record(
      {
        hold: fc.record(
          {
            mode: anyVal,
            channels: fc.oneof(anyVal, fc.array(fc.record({ name: anyVal, 'prev-id': anyVal, filters: anyVal }, { requiredKeys: [] }), { maxLength: 3 })),
            timeout: anyVal,
            'keep-alive': fc.oneof(anyVal, fc.record({ content: anyVal, 'content-bin': anyVal, timeout: anyVal, mode: anyVal }, { requiredKeys: [] })),
            meta: anyVal,
          },
          { requiredKeys: [] },
        ),
        response: fc.oneof(anyVal, fc.record({ code: anyVal, reason: anyVal, headers: anyVal, body: anyVal, 'body-bin': anyVal }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(arb, (o) => onlyInstructErrors(() => parseInstructBody(json(o), L))), { numRuns: 2000 });
  });
});
