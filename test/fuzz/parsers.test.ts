/**
 * Property tests for the pure parsers that had none: pushpin.conf INI text and values,
 * routes text and tokens, zhttp packets, publish and command frames, Grip header params,
 * the filter template language and stats frames. Each asserts that no exception escapes
 * other than the parser's typed error, and round-trips where there is an encoder.
 * (tnetstring, instruct, publish items, websocket-events, control messages, CORS and
 * JSON-P have their properties beside their unit tests.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIni, parseIniValue, MAX_INI_ENTRIES } from '../../src/config/ini.js';
import { parseBool, parseInteger, parsePort, parseListenAddress, parseLogLevelSpec, parseXffRules, decodeHex, decodeBase64, offsetTcpSpec } from '../../src/config/values.js';
import { parseRoutesText } from '../../src/routes/routes-text.js';
import { tokenizeRouteLine } from '../../src/routes/line-tokens.js';
import { RouteLineError } from '../../src/routes/errors.js';
import { decodeZhttpRequest, decodeZhttpResponse, encodeZhttpRequest, encodeZhttpResponse, splitAddressed, joinAddressed, ZhttpPacketError, type ZhttpRequest } from '../../src/zmq/zhttp.js';
import { decodePublishFrame, PublishFrameError } from '../../src/zmq/publish-frame.js';
import { decodeCommandRequest, encodeCommandRequest, CommandPacketError } from '../../src/zmq/command-packet.js';
import { splitStatsMessage } from '../../src/zmq/stats.js';
import { parseHeaderParams, splitHeaderList, decodeHeaderText, encodeHeaderText } from '../../src/grip/header-params.js';
import { processFormat, substituteVars, FilterError } from '../../src/handler/filters.js';

/** Runs per property; FUZZ_RUNS raises it for a long local run. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 500);
const opts = { numRuns: RUNS };

/** Text biased towards the characters these grammars care about. */
const grammarText = (chars: string, maxLength = 200): fc.Arbitrary<string> =>
  fc.array(fc.oneof(fc.constantFrom(...chars.split('')), fc.string({ maxLength: 3 }), fc.constantFrom('\u0000', '\r', '\n', '\u00ff', '\ud83d\ude00')), { maxLength })
    .map((a) => a.join(''));

const iniChars = '[]=;#"\\ ,\t\nabcdefgh_1234567890.:/';
const routeChars = ' ,=:"\\*#/abcdefghijkl.-0123456789_\t';
const headerChars = ';,="\\ \t=abcdefg-0123456789';

test('fuzz: parseIni never throws, bounds its entries, and names lines within the text', () => {
  fc.assert(fc.property(grammarText(iniChars, 400), (text) => {
    const doc = parseIni(text, 'f.conf');
    assert.ok(doc.entries.length <= MAX_INI_ENTRIES);
    // QSettings' line breaks: CRLF, LF or a lone CR.
    const lines = text.split(/\r\n|\n|\r/).length;
    for (const d of doc.diagnostics) assert.ok(d.line >= 0 && d.line <= lines, `line ${d.line} of ${lines}`);
    for (const e of doc.entries) assert.ok(e.line >= 1 && e.line <= lines);
  }), opts);
});

test('fuzz: parseIni reads back what a well-formed file says', () => {
  const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);
  const value = fc.stringMatching(/^[a-zA-Z0-9_.:/-]{0,20}$/);
  fc.assert(fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: (t) => t[0], maxLength: 20 }), (pairs) => {
    const text = '[proxy]\n' + pairs.map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
    const doc = parseIni(text, 'f.conf');
    assert.deepEqual(doc.diagnostics.filter((d) => d.severity === 'error'), []);
    for (const [k, v] of pairs) assert.equal(doc.entries.find((e) => e.key === k)?.value, v);
  }), opts);
});

test('fuzz: config value parsers never throw', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => {
    parseIniValue(s); parseBool(s); parseInteger(s, 0); parsePort(s); parseListenAddress(s); parseLogLevelSpec(s);
    parseXffRules(s.split(',')); decodeHex(s); decodeBase64(s); offsetTcpSpec(s, 3);
  }), opts);
});

test('fuzz: parseInteger round-trips every integer in range', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (n) => {
    const r = parseInteger(String(n), 0);
    assert.deepEqual(r, { ok: true, value: n });
  }), opts);
});

test('fuzz: parseRoutesText never throws and every diagnostic names a real line', () => {
  fc.assert(fc.property(grammarText(routeChars, 300), (text) => {
    const r = parseRoutesText(text, 'routes');
    const lines = text.split('\n').length;
    for (const d of r.diagnostics) assert.ok(d.line >= 1 && d.line <= lines, `line ${d.line} of ${lines}`);
  }), opts);
});

test('fuzz: tokenizeRouteLine throws only RouteLineError', () => {
  fc.assert(fc.property(grammarText(routeChars, 200), (line) => {
    try { tokenizeRouteLine(line, 'routes:1'); } catch (e) { assert.ok(e instanceof RouteLineError, String(e)); }
  }), opts);
});

test('fuzz: zhttp decoders throw only ZhttpPacketError on arbitrary bytes', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([Buffer.from('T'), Buffer.from(b)])),
    // A valid packet with one byte changed.
    fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
      const b = encodeZhttpRequest({ ids: [{ id: Buffer.from('abc'), seq: 0 }], type: 'data', method: 'GET', uri: 'http://a/', headers: [['A', 'b']], body: Buffer.from('x') });
      b[i % b.length] = v;
      return b;
    }),
  );
  fc.assert(fc.property(bytes, (b) => {
    for (const decode of [decodeZhttpRequest, decodeZhttpResponse, splitAddressed]) {
      try { decode(b); } catch (e) { assert.ok(e instanceof ZhttpPacketError, `${decode.name}: ${String(e)}`); }
    }
  }), opts);
});

const latin1 = fc.string({ maxLength: 20 }).map((s) => Buffer.from(s, 'utf8').toString('latin1'));
const zhttpRequest: fc.Arbitrary<ZhttpRequest> = fc.record({
  ids: fc.array(fc.record({ id: fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => Buffer.from(b)), seq: fc.nat({ max: 1_000_000 }) }), { minLength: 1, maxLength: 4 }),
  type: fc.constant('data' as const),
  method: fc.constantFrom('GET', 'POST', 'PUT'),
  uri: fc.webUrl(),
  headers: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), latin1), { maxLength: 5 }),
  body: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  more: fc.boolean(),
  credits: fc.nat({ max: 1_000_000 }),
});

test('fuzz: zhttp request packets round-trip through encode and decode', () => {
  fc.assert(fc.property(zhttpRequest, (p) => {
    const back = decodeZhttpRequest(encodeZhttpRequest(p));
    assert.deepEqual(back.ids.map((i) => [i.id.toString('hex'), i.seq]), p.ids.map((i) => [i.id.toString('hex'), i.seq]));
    assert.equal(back.method, p.method);
    assert.equal(back.uri, p.uri);
    assert.deepEqual(back.headers ?? [], p.headers);
    assert.equal((back.body ?? Buffer.alloc(0)).toString('hex'), (p.body ?? Buffer.alloc(0)).toString('hex'));
    assert.equal(back.more === true, p.more === true);
  }), opts);
});

test('fuzz: zhttp response packets round-trip, addressed form included', () => {
  fc.assert(fc.property(
    fc.record({ code: fc.integer({ min: 100, max: 599 }), reason: fc.stringMatching(/^[A-Za-z ]{0,12}$/), body: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) }),
    fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    ({ code, reason, body }, addr) => {
      const packet = encodeZhttpResponse({ ids: [{ id: Buffer.from('i'), seq: 1 }], type: 'data', code, reason, body });
      const { address, packet: inner } = splitAddressed(joinAddressed(addr, packet));
      assert.equal(address.toString(), addr);
      const back = decodeZhttpResponse(inner);
      assert.equal(back.code, code);
      assert.equal(back.reason ?? '', reason);
      assert.equal((back.body ?? Buffer.alloc(0)).toString('hex'), body.toString('hex'));
    }), opts);
});

test('fuzz: publish frames throw only PublishFrameError', () => {
  const frame = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.json().map((j) => Buffer.from('J' + j)),
    fc.string({ maxLength: 100 }).map((s) => Buffer.from('T' + s)),
  );
  fc.assert(fc.property(frame, (b) => {
    try { decodePublishFrame(b); } catch (e) { assert.ok(e instanceof PublishFrameError, String(e)); }
  }), opts);
});

test('fuzz: command requests throw only CommandPacketError and round-trip', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), (b) => {
    try { decodeCommandRequest(b); } catch (e) { assert.ok(e instanceof CommandPacketError, String(e)); }
  }), opts);
  fc.assert(fc.property(fc.stringMatching(/^[a-z-]{1,16}$/), fc.uint8Array({ maxLength: 16 }), fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 10 }), { maxKeys: 5 }), (method, id, args) => {
    const back = decodeCommandRequest(encodeCommandRequest({ method, id: Buffer.from(id), args }));
    assert.equal(back.method, method);
    // An empty id is the same as none.
    assert.equal(back.id?.toString('hex') ?? '', Buffer.from(id).toString('hex'));
    for (const [k, v] of Object.entries(args)) assert.equal((back.args[k] as Buffer).toString('utf8'), v);
  }), opts);
});

test('fuzz: stats frames never throw on arbitrary bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)), (b) => { splitStatsMessage(b); }), opts);
});

test('fuzz: Grip header params and lists never throw', () => {
  fc.assert(fc.property(grammarText(headerChars, 200), fc.boolean(), (s, first) => {
    const p = parseHeaderParams(s, first);
    assert.ok(p === null || Array.isArray(p));
    assert.ok(Array.isArray(splitHeaderList(s)));
  }), opts);
});

test('fuzz: header text encoding round-trips any string', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60, unit: 'binary' }), (s) => {
    assert.equal(decodeHeaderText(encodeHeaderText(s)), s);
  }), opts);
});

test('fuzz: the filter template language throws only FilterError, and text without % is unchanged', () => {
  fc.assert(fc.property(grammarText('%()sI\\abc', 100), (s) => {
    try {
      processFormat(Buffer.from(s, 'latin1'), (type, arg) => `${type}${arg ?? ''}`);
    } catch (e) { assert.ok(e instanceof FilterError, String(e)); }
  }), opts);
  fc.assert(fc.property(fc.string({ maxLength: 80 }).filter((s) => !s.includes('%')), (s) => {
    assert.equal(substituteVars(Buffer.from(s), { a: 'b' }).toString(), s);
  }), opts);
});
