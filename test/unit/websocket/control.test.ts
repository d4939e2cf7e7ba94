import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseControlMessage,
  formatControlMessage,
  ControlMessageError,
  type ControlMessage,
  type ControlMessageErrorCode,
  parseGripExtension,
  classifyBackendMessage,
  DEFAULT_KEEP_ALIVE_TIMEOUT_S,
  DEFAULT_SEND_DELAYED_TIMEOUT_S,
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_CONTROL_TIMEOUT_S,
  type WsMessageType,
} from '../../../src/websocket/index.js';

function errOf(fn: () => unknown): { code: ControlMessageErrorCode; field: string | undefined } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ControlMessageError, `expected ControlMessageError, got ${String(err)}`);
    return { code: err.code, field: err.field };
  }
  assert.fail('expected a throw');
}

describe('control messages: parsing', () => {
  test('subscribe, with and without the c: prefix, Buffer or string', () => {
    const want: ControlMessage = { type: 'subscribe', channel: 'room', filters: [] };
    assert.deepEqual(parseControlMessage('c:{"type":"subscribe","channel":"room"}'), want);
    assert.deepEqual(parseControlMessage(Buffer.from('{"type": "subscribe", "channel": "room"}')), want);
    assert.deepEqual(parseControlMessage(' {"type":"subscribe","channel":"room","extra":1} '), want);
  });

  test('subscribe with filters; null filters means none', () => {
    assert.deepEqual(parseControlMessage('{"type":"subscribe","channel":"a","filters":["skip-self","build-id"]}'), {
      type: 'subscribe',
      channel: 'a',
      filters: ['skip-self', 'build-id'],
    });
    assert.deepEqual(parseControlMessage('{"type":"subscribe","channel":"a","filters":null}'), { type: 'subscribe', channel: 'a', filters: [] });
  });

  test('unsubscribe, detach, flush-delayed', () => {
    assert.deepEqual(parseControlMessage('{"type":"unsubscribe","channel":"a","filters":[1]}'), { type: 'unsubscribe', channel: 'a' });
    assert.deepEqual(parseControlMessage('{"type":"detach"}'), { type: 'detach' });
    assert.deepEqual(parseControlMessage('{"type":"flush-delayed"}'), { type: 'flush-delayed' });
  });

  test('session: an id sets it; absent, null or empty clears it', () => {
    assert.deepEqual(parseControlMessage('{"type":"session","id":"s1"}'), { type: 'session', id: 's1' });
    assert.deepEqual(parseControlMessage('{"type":"session"}'), { type: 'session', id: undefined });
    assert.deepEqual(parseControlMessage('{"type":"session","id":null}'), { type: 'session', id: undefined });
    assert.deepEqual(parseControlMessage('{"type":"session","id":""}'), { type: 'session', id: undefined });
  });

  test('set-meta: a value sets, absent or null deletes, empty string sets empty', () => {
    assert.deepEqual(parseControlMessage('{"type":"set-meta","name":"user","value":"alice"}'), { type: 'set-meta', name: 'user', value: 'alice' });
    assert.deepEqual(parseControlMessage('{"type":"set-meta","name":"user"}'), { type: 'set-meta', name: 'user', value: undefined });
    assert.deepEqual(parseControlMessage('{"type":"set-meta","name":"user","value":null}'), { type: 'set-meta', name: 'user', value: undefined });
    assert.deepEqual(parseControlMessage('{"type":"set-meta","name":"user","value":""}'), { type: 'set-meta', name: 'user', value: '' });
  });

  test('keep-alive with content: text by default, idle by default, timeout defaults to 55 s', () => {
    assert.deepEqual(parseControlMessage('{"type":"keep-alive","content":"{}"}'), {
      type: 'keep-alive',
      message: { type: 'text', content: Buffer.from('{}') },
      timeoutS: DEFAULT_KEEP_ALIVE_TIMEOUT_S,
      mode: 'idle',
    });
    assert.deepEqual(parseControlMessage('{"type":"keep-alive","content":"x","timeout":30,"mode":"interval","message-type":"ping"}'), {
      type: 'keep-alive',
      message: { type: 'ping', content: Buffer.from('x') },
      timeoutS: 30,
      mode: 'interval',
    });
  });

  test('keep-alive: content-bin wins over content and is still text unless message-type says otherwise (as Pushpin)', () => {
    assert.deepEqual(parseControlMessage('{"type":"keep-alive","content":"x","content-bin":"AAH/"}'), {
      type: 'keep-alive',
      message: { type: 'text', content: Buffer.from([0, 1, 255]) },
      timeoutS: DEFAULT_KEEP_ALIVE_TIMEOUT_S,
      mode: 'idle',
    });
    assert.deepEqual(parseControlMessage('{"type":"keep-alive","content-bin":"AAH/","message-type":"binary"}'), {
      type: 'keep-alive',
      message: { type: 'binary', content: Buffer.from([0, 1, 255]) },
      timeoutS: DEFAULT_KEEP_ALIVE_TIMEOUT_S,
      mode: 'idle',
    });
  });

  test('keep-alive without content turns keep-alives off and ignores timeout', () => {
    assert.deepEqual(parseControlMessage('{"type":"keep-alive","timeout":"junk"}'), {
      type: 'keep-alive',
      message: undefined,
      timeoutS: DEFAULT_KEEP_ALIVE_TIMEOUT_S,
      mode: 'idle',
    });
  });

  test('keep-alive: unknown mode means idle; timeout 0 means default; numeric strings and fractions are read like Pushpin', () => {
    const m = parseControlMessage('{"type":"keep-alive","content":"x","mode":"sometimes","timeout":0}');
    assert.ok(m.type === 'keep-alive');
    assert.equal(m.mode, 'idle');
    assert.equal(m.timeoutS, DEFAULT_KEEP_ALIVE_TIMEOUT_S);
    const s = parseControlMessage('{"type":"keep-alive","content":"x","timeout":" 25 "}');
    assert.ok(s.type === 'keep-alive');
    assert.equal(s.timeoutS, 25);
    const r = parseControlMessage('{"type":"keep-alive","content":"x","timeout":2.6}');
    assert.ok(r.type === 'keep-alive');
    assert.equal(r.timeoutS, 3);
  });

  test('send-delayed: defaults to 1 s and empty text', () => {
    assert.deepEqual(parseControlMessage('{"type":"send-delayed","content":"later"}'), {
      type: 'send-delayed',
      message: { type: 'text', content: Buffer.from('later') },
      timeoutS: DEFAULT_SEND_DELAYED_TIMEOUT_S,
    });
    assert.deepEqual(parseControlMessage('{"type":"send-delayed","message-type":"binary","content-bin":"AQ==","timeout":5}'), {
      type: 'send-delayed',
      message: { type: 'binary', content: Buffer.from([1]) },
      timeoutS: 5,
    });
    assert.deepEqual(parseControlMessage('{"type":"send-delayed"}'), {
      type: 'send-delayed',
      message: { type: 'text', content: Buffer.alloc(0) },
      timeoutS: DEFAULT_SEND_DELAYED_TIMEOUT_S,
    });
  });
});

describe('control messages: errors', () => {
  const cases: Array<[string, string | Buffer, ControlMessageErrorCode, string | undefined]> = [
    ['not JSON', 'c:subscribe room', 'CONTROL_NOT_JSON', undefined],
    ['empty', '', 'CONTROL_NOT_JSON', undefined],
    ['just the prefix', 'c:', 'CONTROL_NOT_JSON', undefined],
    ['invalid UTF-8', Buffer.from([0x63, 0x3a, 0x7b, 0xff, 0x7d]), 'CONTROL_NOT_JSON', undefined],
    ['a JSON list (Pushpin: not an object)', '[{"type":"detach"}]', 'CONTROL_NOT_OBJECT', undefined],
    ['a JSON string', '"detach"', 'CONTROL_NOT_OBJECT', undefined],
    ['JSON null', 'null', 'CONTROL_NOT_OBJECT', undefined],
    ['no type', '{"channel":"a"}', 'CONTROL_MISSING_FIELD', 'type'],
    ['a numeric type', '{"type":1}', 'CONTROL_WRONG_TYPE', 'type'],
    ['an unknown type', '{"type":"publish"}', 'CONTROL_UNKNOWN_TYPE', 'type'],
    ['a type in the wrong case', '{"type":"Subscribe","channel":"a"}', 'CONTROL_UNKNOWN_TYPE', 'type'],
    ['subscribe without channel', '{"type":"subscribe"}', 'CONTROL_MISSING_FIELD', 'channel'],
    ['subscribe with an empty channel', '{"type":"subscribe","channel":""}', 'CONTROL_INVALID_VALUE', 'channel'],
    ['subscribe with a numeric channel', '{"type":"subscribe","channel":5}', 'CONTROL_WRONG_TYPE', 'channel'],
    ['subscribe with a null channel', '{"type":"subscribe","channel":null}', 'CONTROL_WRONG_TYPE', 'channel'],
    ['filters not a list', '{"type":"subscribe","channel":"a","filters":"skip-self"}', 'CONTROL_WRONG_TYPE', 'filters'],
    ['a filter not a string', '{"type":"subscribe","channel":"a","filters":["skip-self",3]}', 'CONTROL_WRONG_TYPE', 'filters'],
    ['six filters', '{"type":"subscribe","channel":"a","filters":["a","b","c","d","e","f"]}', 'CONTROL_TOO_MANY_FILTERS', 'filters'],
    ['unsubscribe without channel', '{"type":"unsubscribe"}', 'CONTROL_MISSING_FIELD', 'channel'],
    ['session id not a string', '{"type":"session","id":7}', 'CONTROL_WRONG_TYPE', 'id'],
    ['set-meta without name', '{"type":"set-meta","value":"x"}', 'CONTROL_MISSING_FIELD', 'name'],
    ['set-meta with an empty name', '{"type":"set-meta","name":""}', 'CONTROL_INVALID_VALUE', 'name'],
    ['set-meta value not a string', '{"type":"set-meta","name":"a","value":1}', 'CONTROL_WRONG_TYPE', 'value'],
    ['keep-alive content not a string', '{"type":"keep-alive","content":1}', 'CONTROL_WRONG_TYPE', 'content'],
    ['keep-alive null content', '{"type":"keep-alive","content":null}', 'CONTROL_WRONG_TYPE', 'content'],
    ['keep-alive content-bin not a string', '{"type":"keep-alive","content-bin":[1]}', 'CONTROL_WRONG_TYPE', 'content-bin'],
    ['keep-alive content-bin not base64', '{"type":"keep-alive","content-bin":"!!!"}', 'CONTROL_INVALID_VALUE', 'content-bin'],
    ['keep-alive content-bin with a dangling char', '{"type":"keep-alive","content-bin":"AAAAA"}', 'CONTROL_INVALID_VALUE', 'content-bin'],
    ['an unknown message-type', '{"type":"keep-alive","content":"x","message-type":"close"}', 'CONTROL_INVALID_VALUE', 'message-type'],
    ['a message-type not a string', '{"type":"send-delayed","message-type":2}', 'CONTROL_WRONG_TYPE', 'message-type'],
    ['a negative timeout', '{"type":"keep-alive","content":"x","timeout":-1}', 'CONTROL_INVALID_VALUE', 'timeout'],
    ['a boolean timeout', '{"type":"keep-alive","content":"x","timeout":true}', 'CONTROL_WRONG_TYPE', 'timeout'],
    ['a word for a timeout', '{"type":"send-delayed","content":"x","timeout":"soon"}', 'CONTROL_WRONG_TYPE', 'timeout'],
    ['a timeout past what a timer can wait', `{"type":"keep-alive","content":"x","timeout":${MAX_CONTROL_TIMEOUT_S + 1}}`, 'CONTROL_INVALID_VALUE', 'timeout'],
    ['a keep-alive mode not a string', '{"type":"keep-alive","mode":1}', 'CONTROL_WRONG_TYPE', 'mode'],
  ];
  for (const [what, input, code, field] of cases) {
    test(`rejects ${what} (${code}${field ? ` on '${field}'` : ''})`, () => {
      assert.deepEqual(errOf(() => parseControlMessage(input)), { code, field });
    });
  }

  test('a message over MAX_CONTROL_MESSAGE_BYTES is refused before parsing', () => {
    const big = `c:{"type":"keep-alive","content":"${'x'.repeat(MAX_CONTROL_MESSAGE_BYTES)}"}`;
    assert.deepEqual(errOf(() => parseControlMessage(big)), { code: 'CONTROL_TOO_LARGE', field: undefined });
  });

  test('messages name the field', () => {
    assert.throws(() => parseControlMessage('{"type":"subscribe","channel":5}'), /grip control message: 'channel' must be a string/);
  });
});

const arbMsgType = fc.constantFrom<WsMessageType>('text', 'binary', 'ping', 'pong');
const arbBytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const arbName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
const arbMessage = fc.record({ type: arbMsgType, content: arbBytes }).map((r) => ({ type: r.type, content: r.content }));
const arbTimeout = fc.integer({ min: 1, max: MAX_CONTROL_TIMEOUT_S });
const arbControl: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({ channel: arbName, filters: fc.array(arbName, { maxLength: 5 }) }).map((r): ControlMessage => ({ type: 'subscribe', ...r })),
  arbName.map((channel): ControlMessage => ({ type: 'unsubscribe', channel })),
  fc.constant<ControlMessage>({ type: 'detach' }),
  fc.constant<ControlMessage>({ type: 'flush-delayed' }),
  fc.option(arbName, { nil: undefined }).map((id): ControlMessage => ({ type: 'session', id })),
  fc
    .record({ name: arbName, value: fc.option(fc.string({ unit: 'grapheme', maxLength: 12 }), { nil: undefined }) })
    .map((r): ControlMessage => ({ type: 'set-meta', ...r })),
  fc
    .record({
      message: fc.option(arbMessage, { nil: undefined }),
      timeoutS: arbTimeout,
      mode: fc.constantFrom<'idle' | 'interval'>('idle', 'interval'),
    })
    .map((r): ControlMessage => ({ type: 'keep-alive', ...r, timeoutS: r.message === undefined ? DEFAULT_KEEP_ALIVE_TIMEOUT_S : r.timeoutS })),
  fc.record({ message: arbMessage, timeoutS: arbTimeout }).map((r): ControlMessage => ({ type: 'send-delayed', ...r })),
);

describe('control messages: properties', () => {
  test('parse(format(m)) is the identity', () => {
    fc.assert(
      fc.property(arbControl, (m) => {
        assert.deepEqual(parseControlMessage(formatControlMessage(m)), m);
      }),
      { numRuns: 500 },
    );
  });

  test('random strings and bytes parse or throw ControlMessageError, nothing else', () => {
    const check = (input: string | Buffer): void => {
      try {
        parseControlMessage(input);
      } catch (err) {
        assert.ok(err instanceof ControlMessageError, String(err));
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 60 }), check), { numRuns: 1000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a)), check), { numRuns: 1000 });
    fc.assert(
      fc.property(fc.json({ maxDepth: 3 }), fc.constantFrom('subscribe', 'unsubscribe', 'session', 'set-meta', 'keep-alive', 'send-delayed'), (j, type) => {
        const v = JSON.parse(j) as unknown;
        const obj = v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as object), type } : { type, channel: v, content: v, timeout: v };
        check(JSON.stringify(obj));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('grip extension', () => {
  const prefixOf = (h: string | string[] | undefined): string | undefined => parseGripExtension(h)?.messagePrefix.toString('latin1');

  test('plain grip uses the default m: prefix', () => {
    assert.equal(prefixOf('grip'), 'm:');
    assert.equal(prefixOf('grip;'), 'm:');
    assert.equal(prefixOf(' grip ; foo'), 'm:');
  });

  test('message-prefix as token or quoted string', () => {
    assert.equal(prefixOf('grip; message-prefix="m:"'), 'm:');
    assert.equal(prefixOf('grip; message-prefix=x:'), 'x:');
    assert.equal(prefixOf('grip;message-prefix= y '), 'y');
    assert.equal(prefixOf('grip; message-prefix="a\\"b;c"; other=1'), 'a"b;c');
    assert.equal(prefixOf('grip; a=1; message-prefix="p"'), 'p');
  });

  test('an empty quoted prefix lets every message through (Pushpin\'s testgripwebsocket.js)', () => {
    assert.equal(prefixOf('grip; message-prefix=""'), '');
  });

  test('found among other extensions and across header lines', () => {
    assert.equal(prefixOf('permessage-deflate; client_max_window_bits, grip; message-prefix="q,"'), 'q,');
    assert.equal(prefixOf(['permessage-deflate', 'grip']), 'm:');
  });

  test('absent, differently cased, or with malformed parameters means not accepted', () => {
    assert.equal(prefixOf(undefined), undefined);
    assert.equal(prefixOf(''), undefined);
    assert.equal(prefixOf('permessage-deflate'), undefined);
    assert.equal(prefixOf('GRIP'), undefined);
    assert.equal(prefixOf('grip-x'), undefined);
    assert.equal(prefixOf('grip; message-prefix='), undefined);
    assert.equal(prefixOf('grip; message-prefix="open'), undefined);
    assert.equal(prefixOf('grip; message-prefix="x\\'), undefined);
    assert.equal(prefixOf('x'.repeat(9000) + ', grip'), undefined);
  });

  test('random headers never throw', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (h) => {
        parseGripExtension(h);
        parseGripExtension('grip;' + h);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('classifying backend messages', () => {
  const grip = parseGripExtension('grip; message-prefix="m:"');
  const t = (s: string): Buffer => Buffer.from(s, 'utf8');

  test('matches what Pushpin 1.36 did with the captured OPEN reply', () => {
    // Reply: c:{subscribe}, "m:hello", "noprefx" -> subscribe, client gets "hello", drops "noprefx".
    assert.deepEqual(classifyBackendMessage('text', t('c:{"type":"subscribe","channel":"room"}'), grip), {
      action: 'control',
      json: t('{"type":"subscribe","channel":"room"}'),
    });
    assert.deepEqual(classifyBackendMessage('text', t('m:hello'), grip), { action: 'forward', content: t('hello') });
    assert.deepEqual(classifyBackendMessage('text', t('noprefx'), grip), { action: 'drop' });
  });

  test('binary messages need the prefix too and are never control messages', () => {
    assert.deepEqual(classifyBackendMessage('binary', t('m:\x00'), grip), { action: 'forward', content: t('\x00') });
    assert.deepEqual(classifyBackendMessage('binary', t('c:{}'), grip), { action: 'drop' });
  });

  test('without grip every message passes unchanged, c: included', () => {
    assert.deepEqual(classifyBackendMessage('text', t('c:{"type":"detach"}'), undefined), { action: 'forward', content: t('c:{"type":"detach"}') });
  });

  test('with an empty prefix everything passes, but c: is still control', () => {
    const open = parseGripExtension('grip; message-prefix=""');
    assert.deepEqual(classifyBackendMessage('text', t('hi'), open), { action: 'forward', content: t('hi') });
    assert.deepEqual(classifyBackendMessage('text', t(''), open), { action: 'forward', content: t('') });
    assert.deepEqual(classifyBackendMessage('text', t('c:{}'), open), { action: 'control', json: t('{}') });
  });

  test('the prefix compares bytes, case-sensitively', () => {
    assert.deepEqual(classifyBackendMessage('text', t('M:hello'), grip), { action: 'drop' });
    assert.deepEqual(classifyBackendMessage('text', t('m'), grip), { action: 'drop' });
    assert.deepEqual(classifyBackendMessage('text', t('m:'), grip), { action: 'forward', content: t('') });
  });
});
