import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeEvents,
  encodeEvents,
  WsEventsError,
  type WsEvent,
  type WsEventsErrorCode,
  MAX_EVENTS,
  MAX_EVENT_BYTES,
  MAX_TYPE_BYTES,
  sanitizeWsRequestHeaders,
  buildWsRequestHeaders,
  isWebSocketEventsRequest,
  isWebSocketEventsResponse,
  parseKeepAliveInterval,
  parseContentBytesAccepted,
  parseSetMeta,
  applySetMeta,
  stripWsResponseHeaders,
  parseOfferedProtocols,
  selectedProtocol,
  getHeader,
} from '../../../src/websocket/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (s: string): WsEvent => ({ type: 'TEXT', content: Buffer.from(s, 'utf8') });

/**
 * Request bodies Pushpin 1.36 sent to a backend (route `over_http`, a `ws` client),
 * captured with /work/shared/tools/pushpin-reference; base64 of the exact bytes.
 */
const PUSHPIN_CAPTURES: Array<{ what: string; b64: string; events: WsEvent[] }> = [
  { what: 'handshake', b64: 'T1BFTg0K', events: [{ type: 'OPEN' }] },
  { what: 'one text message', b64: 'VEVYVCA1DQpoZWxsbw0K', events: [text('hello')] },
  {
    what: 'binary, ping, empty text and text queued in one request',
    b64: 'QklOQVJZIDQNCgABAv8NClBJTkcgMg0KcHANClRFWFQNClRFWFQgMw0KbTp4DQo=',
    events: [
      { type: 'BINARY', content: Buffer.from([0, 1, 2, 255]) },
      { type: 'PING', content: b('pp') },
      text(''),
      text('m:x'),
    ],
  },
  { what: 'pong with payload', b64: 'UE9ORyAyDQpwcA0K', events: [{ type: 'PONG', content: b('pp') }] },
  { what: 'close 1000 "bye"', b64: 'Q0xPU0UgNQ0KA+hieWUNCg==', events: [{ type: 'CLOSE', code: 1000, reason: 'bye' }] },
  { what: 'empty binary', b64: 'QklOQVJZDQo=', events: [{ type: 'BINARY', content: Buffer.alloc(0) }] },
  { what: 'multi-byte UTF-8 text', b64: 'VEVYVCA5DQrDqeKCrPCfmIANCg==', events: [text('é€😀')] },
  { what: 'text then empty ping', b64: 'VEVYVCA5DQrDqeKCrPCfmIANClBJTkcNCg==', events: [text('é€😀'), { type: 'PING', content: Buffer.alloc(0) }] },
  { what: 'empty pong', b64: 'UE9ORw0K', events: [{ type: 'PONG', content: Buffer.alloc(0) }] },
  { what: 'close without code', b64: 'Q0xPU0UNCg==', events: [{ type: 'CLOSE' }] },
  { what: 'client vanished', b64: 'RElTQ09OTkVDVA0K', events: [{ type: 'DISCONNECT' }] },
];

function codeOf(fn: () => unknown): { code: WsEventsErrorCode; offset: number } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WsEventsError, `expected WsEventsError, got ${String(err)}`);
    return { code: err.code, offset: err.offset };
  }
  assert.fail('expected a throw');
}

describe('websocket-events: Pushpin captures', () => {
  for (const c of PUSHPIN_CAPTURES) {
    test(`decodes and re-encodes byte for byte: ${c.what}`, () => {
      const body = Buffer.from(c.b64, 'base64');
      assert.deepEqual(decodeEvents(body), c.events);
      assert.deepEqual(encodeEvents(c.events), body);
    });
  }

  test('decodes the backend replies from Pushpin\'s own tests', () => {
    assert.deepEqual(decodeEvents(b('TEXT b\r\n[foo][hello\r\n')), [text('[foo][hello')]);
    assert.deepEqual(decodeEvents(b('TEXT 6\r\n[hello\r\nTEXT 7\r\n world]\r\n')), [text('[hello'), text(' world]')]);
  });
});

describe('websocket-events: decoding', () => {
  test('an empty body is zero events', () => {
    assert.deepEqual(decodeEvents(Buffer.alloc(0)), []);
  });

  test('accepts upper-case hex and leading zeros in lengths', () => {
    assert.deepEqual(decodeEvents(b('TEXT B\r\nhello world\r\n')), [text('hello world')]);
    assert.deepEqual(decodeEvents(b('TEXT 0005\r\nhello\r\n')), [text('hello')]);
    assert.deepEqual(decodeEvents(b('TEXT 1a\r\n' + 'x'.repeat(26) + '\r\n')), [text('x'.repeat(26))]);
  });

  test('an explicit zero length is empty content; encoding drops the length like Pushpin', () => {
    const events = decodeEvents(b('TEXT 0\r\n\r\nPING 0\r\n\r\n'));
    assert.deepEqual(events, [text(''), { type: 'PING', content: Buffer.alloc(0) }]);
    assert.deepEqual(encodeEvents(events), b('TEXT\r\nPING\r\n'));
  });

  test('content may contain CR, LF and anything else', () => {
    assert.deepEqual(decodeEvents(b('BINARY 4\r\n\r\n\r\n\r\n')), [{ type: 'BINARY', content: b('\r\n\r\n') }]);
  });

  test('CLOSE with a code and no reason', () => {
    assert.deepEqual(decodeEvents(b('CLOSE 2\r\n\x03\xe8\r\n')), [{ type: 'CLOSE', code: 1000, reason: '' }]);
    assert.deepEqual(decodeEvents(b('CLOSE 2\r\n\xff\xff\r\n')), [{ type: 'CLOSE', code: 65535, reason: '' }]);
  });

  test('CLOSE with one content byte means no code, as Pushpin', () => {
    assert.deepEqual(decodeEvents(b('CLOSE 1\r\nx\r\n')), [{ type: 'CLOSE' }]);
  });

  test('CLOSE reason with invalid UTF-8 decodes with replacement characters', () => {
    assert.deepEqual(decodeEvents(b('CLOSE 3\r\n\x03\xe9\xff\r\n')), [{ type: 'CLOSE', code: 1001, reason: '\ufffd' }]);
  });

  test('content on OPEN and DISCONNECT is ignored', () => {
    assert.deepEqual(decodeEvents(b('OPEN 3\r\nabc\r\nDISCONNECT 1\r\nz\r\n')), [{ type: 'OPEN' }, { type: 'DISCONNECT' }]);
  });

  test('unknown and lower-case types are skipped by default, as Pushpin', () => {
    assert.deepEqual(decodeEvents(b('FOO\r\ntext 1\r\nx\r\nTEXT 1\r\ny\r\n')), [text('y')]);
  });

  test('unknownTypes: reject throws with the offset of the unknown event', () => {
    assert.deepEqual(codeOf(() => decodeEvents(b('TEXT 1\r\ny\r\nFOO\r\n'), { unknownTypes: 'reject' })), {
      code: 'WS_EVENTS_UNKNOWN_TYPE',
      offset: 11,
    });
  });

  test('content buffers are views into the input', () => {
    const body = b('TEXT 5\r\nhello\r\n');
    const [e] = decodeEvents(body);
    assert.ok(e !== undefined && e.type === 'TEXT');
    assert.equal(e.content.buffer, body.buffer);
  });
});

describe('websocket-events: malformed bodies', () => {
  const cases: Array<[string, string, WsEventsErrorCode, number]> = [
    ['a type with no line end', 'OPEN', 'WS_EVENTS_NO_LINE_END', 0],
    ['a type ending in a lone CR', 'OPEN\r', 'WS_EVENTS_NO_LINE_END', 0],
    ['a type followed by CR and not LF', 'OPEN\rX', 'WS_EVENTS_BAD_TYPE', 0],
    ['a bare LF line end', 'OPEN\nTEXT\r\n', 'WS_EVENTS_BAD_TYPE', 0],
    ['an empty line', '\r\n', 'WS_EVENTS_BAD_TYPE', 0],
    ['an empty type with a length', ' 1\r\nx\r\n', 'WS_EVENTS_BAD_TYPE', 0],
    ['a control byte in the type', 'TE\x00XT\r\n', 'WS_EVENTS_BAD_TYPE', 0],
    ['a non-ASCII byte in the type', 'T\xc9XT\r\n', 'WS_EVENTS_BAD_TYPE', 0],
    ['an over-long type', 'X'.repeat(MAX_TYPE_BYTES + 1) + '\r\n', 'WS_EVENTS_BAD_TYPE', 0],
    ['an empty length', 'TEXT \r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['a non-hex length', 'TEXT 5g\r\nhello\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['a 0x prefix', 'TEXT 0x5\r\nhello\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['a negative length', 'TEXT -1\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['a space after the length', 'TEXT 5 \r\nhello\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['two spaces before the length', 'TEXT  5\r\nhello\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['nine hex digits', 'TEXT 000000005\r\nhello\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['a length ending in CR without LF', 'TEXT 5\rhello\r\n', 'WS_EVENTS_BAD_LENGTH', 0],
    ['a length line with no end', 'TEXT 5', 'WS_EVENTS_NO_LINE_END', 0],
    ['a length line ending in a lone CR', 'TEXT 5\r', 'WS_EVENTS_NO_LINE_END', 0],
    ['content shorter than declared', 'OPEN\r\nTEXT 6\r\nhello\r\n', 'WS_EVENTS_TRUNCATED', 6],
    ['content without its CRLF', 'TEXT 5\r\nhello', 'WS_EVENTS_TRUNCATED', 0],
    ['content with half its CRLF', 'TEXT 5\r\nhello\r', 'WS_EVENTS_TRUNCATED', 0],
    ['content longer than declared', 'TEXT 4\r\nhello\r\n', 'WS_EVENTS_NO_CONTENT_END', 0],
    ['content followed by LF CR', 'TEXT 5\r\nhello\n\r', 'WS_EVENTS_NO_CONTENT_END', 0],
    ['a length past MAX_EVENT_BYTES', `TEXT ${(MAX_EVENT_BYTES + 1).toString(16)}\r\n`, 'WS_EVENTS_EVENT_TOO_LARGE', 0],
    ['ffffffff', 'TEXT ffffffff\r\n', 'WS_EVENTS_EVENT_TOO_LARGE', 0],
    ['trailing garbage after a good event', 'OPEN\r\nxyz', 'WS_EVENTS_NO_LINE_END', 6],
  ];
  for (const [what, body, code, offset] of cases) {
    test(`rejects ${what} (${code} at ${offset})`, () => {
      assert.deepEqual(codeOf(() => decodeEvents(b(body))), { code, offset });
    });
  }

  test('the message names the byte offset', () => {
    try {
      decodeEvents(b('OPEN\r\nTEXT 6\r\nhello\r\n'));
      assert.fail('no throw');
    } catch (err) {
      assert.ok(err instanceof WsEventsError);
      assert.match(err.message, /at byte 6: TEXT declares 6 content bytes/);
    }
  });

  test('more than maxEvents events is refused', () => {
    assert.equal(decodeEvents(b('PING\r\n'.repeat(MAX_EVENTS))).length, MAX_EVENTS);
    assert.deepEqual(codeOf(() => decodeEvents(b('PING\r\n'.repeat(MAX_EVENTS + 1)))), {
      code: 'WS_EVENTS_TOO_MANY',
      offset: 6 * MAX_EVENTS,
    });
    assert.deepEqual(codeOf(() => decodeEvents(b('OPEN\r\nFOO\r\nOPEN\r\n'), { maxEvents: 2 })), {
      code: 'WS_EVENTS_TOO_MANY',
      offset: 11,
    });
  });

  test('maxEventBytes is honoured and checked before the content is read', () => {
    assert.deepEqual(decodeEvents(b('TEXT 3\r\nabc\r\n'), { maxEventBytes: 3 }), [text('abc')]);
    assert.deepEqual(codeOf(() => decodeEvents(b('TEXT 4\r\n'), { maxEventBytes: 3 })), {
      code: 'WS_EVENTS_EVENT_TOO_LARGE',
      offset: 0,
    });
  });
});

describe('websocket-events: split at every byte boundary', () => {
  test('every prefix of a body decodes to a prefix of its events or throws WsEventsError', () => {
    const all = PUSHPIN_CAPTURES.flatMap((c) => c.events);
    const body = encodeEvents(all);
    // Offsets where an event ends, so a cut there is a complete body.
    const boundaries = new Map<number, number>([[0, 0]]);
    let at = 0;
    all.forEach((e, i) => {
      at += encodeEvents([e]).length;
      boundaries.set(at, i + 1);
    });
    for (let cut = 0; cut <= body.length; cut++) {
      const head = body.subarray(0, cut);
      const n = boundaries.get(cut);
      if (n !== undefined) {
        assert.deepEqual(decodeEvents(head), all.slice(0, n), `cut at ${cut}`);
        assert.deepEqual(decodeEvents(body.subarray(cut)), all.slice(n), `rest after ${cut}`);
      } else {
        assert.throws(() => decodeEvents(head), WsEventsError, `cut at ${cut}`);
      }
    }
  });
});

describe('websocket-events: encoding', () => {
  test('writes lower-case hex lengths', () => {
    assert.deepEqual(encodeEvents([text('x'.repeat(0xab))]), b('TEXT ab\r\n' + 'x'.repeat(0xab) + '\r\n'));
  });

  test('writes CLOSE with a code and empty reason as two bytes', () => {
    assert.deepEqual(encodeEvents([{ type: 'CLOSE', code: 1000 }]), b('CLOSE 2\r\n\x03\xe8\r\n'));
    assert.deepEqual(encodeEvents([{ type: 'CLOSE', code: 4000, reason: 'é' }]), Buffer.concat([b('CLOSE 4\r\n\x0f\xa0'), Buffer.from('é'), b('\r\n')]));
  });

  test('an empty list is an empty body', () => {
    assert.equal(encodeEvents([]).length, 0);
  });

  const bad: Array<[string, unknown]> = [
    ['an unknown type', { type: 'NOPE' }],
    ['a CLOSE code above 65535', { type: 'CLOSE', code: 65536 }],
    ['a negative CLOSE code', { type: 'CLOSE', code: -1 }],
    ['a fractional CLOSE code', { type: 'CLOSE', code: 1000.5 }],
    ['a CLOSE reason without code', { type: 'CLOSE', reason: 'x' }],
    ['TEXT content that is a string', { type: 'TEXT', content: 'hello' }],
  ];
  for (const [what, e] of bad) {
    test(`refuses ${what} with WS_EVENTS_INVALID_EVENT at its offset`, () => {
      assert.deepEqual(codeOf(() => encodeEvents([{ type: 'OPEN' }, e as WsEvent])), { code: 'WS_EVENTS_INVALID_EVENT', offset: 6 });
    });
  }
});

const arbContent = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const arbEvent: fc.Arbitrary<WsEvent> = fc.oneof(
  fc.constant<WsEvent>({ type: 'OPEN' }),
  fc.constant<WsEvent>({ type: 'DISCONNECT' }),
  arbContent.map((content): WsEvent => ({ type: 'TEXT', content })),
  arbContent.map((content): WsEvent => ({ type: 'BINARY', content })),
  arbContent.map((content): WsEvent => ({ type: 'PING', content })),
  arbContent.map((content): WsEvent => ({ type: 'PONG', content })),
  fc.constant<WsEvent>({ type: 'CLOSE' }),
  fc
    .record({ code: fc.integer({ min: 0, max: 0xffff }), reason: fc.string({ unit: 'grapheme', maxLength: 20 }) })
    .map(({ code, reason }): WsEvent => ({ type: 'CLOSE', code, reason })),
);

describe('websocket-events: properties', () => {
  test('decode(encode(events)) is the identity', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { maxLength: 20 }), (events) => {
        assert.deepEqual(decodeEvents(encodeEvents(events)), events);
      }),
      { numRuns: 500 },
    );
  });

  test('encode(decode(body)) gives back a canonical body unchanged', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { maxLength: 20 }), (events) => {
        const body = encodeEvents(events);
        assert.deepEqual(encodeEvents(decodeEvents(body)), body);
      }),
      { numRuns: 300 },
    );
  });

  test('random bytes decode or throw WsEventsError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          decodeEvents(Buffer.from(bytes));
        } catch (err) {
          assert.ok(err instanceof WsEventsError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('mutated valid bodies decode or throw WsEventsError, nothing else', () => {
    fc.assert(
      fc.property(
        fc.array(arbEvent, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (events, edits) => {
          const body = Buffer.from(encodeEvents(events));
          for (const [pos, byte] of edits) body[pos % body.length] = byte;
          try {
            decodeEvents(body);
          } catch (err) {
            assert.ok(err instanceof WsEventsError, String(err));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('websocket-events: header helpers', () => {
  /** The client handshake headers Pushpin forwarded in the captured OPEN request. */
  const handshake: Array<[string, string]> = [
    ['Host', '127.0.0.1:37999'],
    ['Upgrade', 'websocket'],
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Key', 'BHmY2UnbPb663gBAyhipyw=='],
    ['Sec-WebSocket-Protocol', 'chat,other'],
    ['Accept', '*/*'],
    ['Connection-Id', 'forged'],
    ['meta-user', 'forged'],
    ['Content-Length', '0'],
  ];

  test('sanitizeWsRequestHeaders drops Upgrade, Accept, Connection-Id, Content-Length and Meta-*', () => {
    assert.deepEqual(sanitizeWsRequestHeaders(handshake), [
      ['Host', '127.0.0.1:37999'],
      ['Sec-WebSocket-Version', '13'],
      ['Sec-WebSocket-Key', 'BHmY2UnbPb663gBAyhipyw=='],
      ['Sec-WebSocket-Protocol', 'chat,other'],
    ]);
  });

  test('buildWsRequestHeaders appends in Pushpin\'s order', () => {
    const h = buildWsRequestHeaders({
      base: [['Host', 'h']],
      connectionId: '5368c8d5-dbd8-44bb-8d97-87c2b303e25a',
      meta: [['User', 'alice']],
      contentLength: 15,
    });
    assert.deepEqual(h, [
      ['Host', 'h'],
      ['Accept', 'application/websocket-events'],
      ['Connection-Id', '5368c8d5-dbd8-44bb-8d97-87c2b303e25a'],
      ['Content-Type', 'application/websocket-events'],
      ['Meta-User', 'alice'],
      ['Content-Length', '15'],
    ]);
    const r = buildWsRequestHeaders({ base: [], connectionId: 'c', meta: [], contentLength: 0, contentBytesReplayed: 7 });
    assert.deepEqual(getHeader(r, 'content-bytes-replayed'), '7');
    assert.equal(getHeader(buildWsRequestHeaders({ base: [], connectionId: 'c', meta: [], contentLength: 0, contentBytesReplayed: 0 }), 'Content-Bytes-Replayed'), undefined);
  });

  test('isWebSocketEventsRequest spots a client posting websocket-events', () => {
    assert.equal(isWebSocketEventsRequest([['content-type', 'Application/WebSocket-Events; x=y']]), true);
    assert.equal(isWebSocketEventsRequest([['Content-Type', 'text/plain']]), false);
    assert.equal(isWebSocketEventsRequest([]), false);
  });

  test('isWebSocketEventsResponse needs 200 and the exact content type', () => {
    assert.equal(isWebSocketEventsResponse(200, [['Content-Type', 'application/websocket-events']]), true);
    assert.equal(isWebSocketEventsResponse(201, [['Content-Type', 'application/websocket-events']]), false);
    assert.equal(isWebSocketEventsResponse(200, [['Content-Type', 'application/websocket-events; charset=utf-8']]), false);
    assert.equal(isWebSocketEventsResponse(200, []), false);
  });

  test('parseKeepAliveInterval: absent, disabled, floor of 20 seconds', () => {
    assert.equal(parseKeepAliveInterval([]), undefined);
    assert.equal(parseKeepAliveInterval([['Keep-Alive-Interval', '30']]), 30);
    assert.equal(parseKeepAliveInterval([['keep-alive-interval', ' 5 ']]), 20);
    assert.equal(parseKeepAliveInterval([['Keep-Alive-Interval', '0']]), null);
    assert.equal(parseKeepAliveInterval([['Keep-Alive-Interval', '-4']]), null);
    assert.equal(parseKeepAliveInterval([['Keep-Alive-Interval', 'soon']]), null);
    assert.equal(parseKeepAliveInterval([['Keep-Alive-Interval', '99999999999']]), null);
  });

  test('parseContentBytesAccepted: non-negative integers only', () => {
    assert.equal(parseContentBytesAccepted([]), undefined);
    assert.equal(parseContentBytesAccepted([['Content-Bytes-Accepted', '0']]), 0);
    assert.equal(parseContentBytesAccepted([['Content-Bytes-Accepted', '12']]), 12);
    assert.equal(parseContentBytesAccepted([['Content-Bytes-Accepted', '-1']]), undefined);
    assert.equal(parseContentBytesAccepted([['Content-Bytes-Accepted', '1.5']]), undefined);
  });

  test('parseSetMeta and applySetMeta update metadata as Pushpin', () => {
    const updates = parseSetMeta([
      ['Set-Meta-User', 'alice'],
      ['set-meta-Room', 'r1'],
      ['Set-Meta-', 'ignored'],
      ['Content-Type', 'x'],
    ]);
    assert.deepEqual(updates, [
      ['User', 'alice'],
      ['Room', 'r1'],
    ]);
    let meta = applySetMeta([], updates);
    assert.deepEqual(meta, [
      ['User', 'alice'],
      ['Room', 'r1'],
    ]);
    meta = applySetMeta(meta, [
      ['user', 'bob'],
      ['Room', ''],
    ]);
    assert.deepEqual(meta, [['user', 'bob']]);
  });

  test('stripWsResponseHeaders keeps only what the client should see', () => {
    assert.deepEqual(
      stripWsResponseHeaders([
        ['Content-Type', 'application/websocket-events'],
        ['Content-Length', '6'],
        ['Keep-Alive-Interval', '30'],
        ['Set-Meta-User', 'alice'],
        ['Sec-WebSocket-Protocol', 'chat'],
        ['X-Custom', '1'],
      ]),
      [
        ['Sec-WebSocket-Protocol', 'chat'],
        ['X-Custom', '1'],
      ],
    );
  });

  test('subprotocol helpers', () => {
    const offered = parseOfferedProtocols([
      ['Sec-WebSocket-Protocol', 'chat, other'],
      ['sec-websocket-protocol', ' , v2'],
    ]);
    assert.deepEqual(offered, ['chat', 'other', 'v2']);
    assert.deepEqual(selectedProtocol([['Sec-WebSocket-Protocol', 'chat']], offered), { protocol: 'chat', offered: true });
    assert.deepEqual(selectedProtocol([['Sec-WebSocket-Protocol', 'chat']], []), { protocol: 'chat', offered: false });
    assert.equal(selectedProtocol([], offered), undefined);
  });
});
