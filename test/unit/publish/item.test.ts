import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  MAX_CHANNEL_NAME_BYTES,
  MAX_ITEMS_PER_PUBLISH,
  PublishError,
  parsePublishBody,
  parsePublishItem,
} from '../../../src/publish/item.js';

const body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const one = (item: unknown) => parsePublishBody(body({ items: [item] }))[0]!;
const rejects = (fn: () => unknown, message: string): PublishError => {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof PublishError, `expected PublishError, got ${String(caught)}`);
  assert.equal(caught.message, message);
  return caught;
};

interface Vector { body: string; status: number; text: string }
const fixture = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/grip/pushpin-1.36-publish-replies.json', import.meta.url), 'utf8'),
) as { vectors: Vector[] };

/** Inputs where gripd deliberately differs from Pushpin 1.36 (see docs/grip.md). */
const DIFFERENT: Record<string, string> = {
  '{"items":[{"channel":"a","formats":{"http-stream":{"action":"bogus"}}}]}': "Invalid format: 'http-stream' contains 'action' with unknown value\n",
  '{"items":[{"channel":"a","formats":{"http-response":{"code":"x","body":""}}}]}': "Invalid format: 'http-response' contains 'code' with wrong type\n",
  '{"items":[{"channel":"a","formats":{"http-response":{"code":true,"body":""}}}]}': "Invalid format: 'http-response' contains 'code' with wrong type\n",
};

describe('publish item: replies captured from Pushpin 1.36', () => {
  for (const v of fixture.vectors) {
    test(`${v.body} -> ${v.status} ${v.text.trim()}`, () => {
      const want = DIFFERENT[v.body] ?? (v.status === 200 ? 'Published\n' : v.text);
      let got: string;
      try {
        parsePublishBody(Buffer.from(v.body));
        got = 'Published\n';
      } catch (e) {
        assert.ok(e instanceof PublishError);
        got = e.message + '\n';
      }
      assert.equal(got, want);
    });
  }
});

describe('publish item: formats', () => {
  test('http-stream content and content-bin', () => {
    assert.deepEqual(one({ channel: 'c', formats: { 'http-stream': { content: 'hi\n' } } }).formats.httpStream, {
      action: 'send',
      content: Buffer.from('hi\n'),
    });
    assert.deepEqual(one({ channel: 'c', formats: { 'http-stream': { 'content-bin': 'AAE=' } } }).formats.httpStream?.content, Buffer.from([0, 1]));
    assert.deepEqual(one({ channel: 'c', formats: { 'http-stream': { action: 'close' } } }).formats.httpStream, { action: 'close' });
    assert.deepEqual(one({ channel: 'c', formats: { 'http-stream': { action: 'hint' } } }).formats.httpStream, { action: 'hint' });
  });

  test('http-response defaults, headers as object or pairs, Grip-* stripped, expose list kept', () => {
    const r = one({
      channel: 'c',
      formats: { 'http-response': { headers: [['X-A', '1'], ['Grip-Expose-Headers', 'X-B, X-C']], body: 'ok' } },
    }).formats.httpResponse;
    assert.deepEqual(r, {
      action: 'send',
      code: 200,
      reason: 'OK',
      headers: [['X-A', '1']],
      exposeHeaders: ['X-B', 'X-C'],
      body: Buffer.from('ok'),
    });
    const r2 = one({ channel: 'c', formats: { 'http-response': { code: 404, headers: { 'X-A': 'é' }, 'body-bin': 'aGk=' } } }).formats.httpResponse;
    assert.equal(r2?.reason, 'Not Found');
    assert.deepEqual(r2?.headers, [['X-A', Buffer.from('é').toString('latin1')]]);
    assert.equal(r2?.body?.toString(), 'hi');
  });

  test('http-response body-patch and hint', () => {
    const patch = [{ op: 'replace', path: '/a', value: 1 }];
    assert.deepEqual(one({ channel: 'c', formats: { 'http-response': { 'body-patch': patch } } }).formats.httpResponse?.bodyPatch, patch);
    assert.deepEqual(one({ channel: 'c', formats: { 'http-response': { action: 'hint' } } }).formats.httpResponse, { action: 'hint' });
  });

  test('ws-message text, binary, ping, close with code and reason, refresh', () => {
    const ws = (f: unknown) => one({ channel: 'c', formats: { 'ws-message': f } }).formats.wsMessage;
    assert.deepEqual(ws({ content: 'hi' }), { action: 'send', type: 'text', content: Buffer.from('hi') });
    assert.deepEqual(ws({ 'content-bin': 'AAE=' }), { action: 'send', type: 'binary', content: Buffer.from([0, 1]) });
    assert.deepEqual(ws({ type: 'ping' }), { action: 'send', type: 'ping' });
    assert.deepEqual(ws({ action: 'close', code: 4000, reason: 'bye' }), { action: 'close', type: 'text', code: 4000, reason: 'bye' });
    assert.deepEqual(ws({ action: 'refresh' }), { action: 'refresh', type: 'text' });
  });

  test('no-op actions drop the format', () => {
    const i = one({ channel: 'c', formats: { 'http-response': { action: 'close' }, 'http-stream': { action: 'refresh' }, 'ws-message': { action: 'hint' } } });
    assert.deepEqual(i.formats, {});
  });

  test('item fields: id, prev-id, no-seq, meta, size; legacy top-level formats', () => {
    const i = one({ channel: 'c', id: '2', 'prev-id': '1', 'no-seq': true, meta: { user: 'u' }, size: 10, 'http-stream': { content: 'x' } });
    assert.equal(i.channel, 'c');
    assert.equal(i.id, '2');
    assert.equal(i.prevId, '1');
    assert.equal(i.noSeq, true);
    assert.deepEqual(i.meta, { user: 'u' });
    assert.equal(i.size, 10);
    assert.equal(i.formats.httpStream?.content?.toString(), 'x');
  });
});

describe('publish item: tnetstring input', () => {
  const b = (s: string) => Buffer.from(s);
  test('byte strings are accepted where JSON has strings; body is bytes; body-bin is ignored', () => {
    const i = parsePublishItem(
      new Map<string, unknown>([
        ['channel', b('c')],
        ['id', b('1')],
        ['formats', new Map<string, unknown>([['http-response', { body: b('\x00\x01'), 'body-bin': b('ignored'), headers: [[b('X'), b('y')]] }]])],
      ]),
      0,
      { input: 'tnetstring' },
    );
    assert.equal(i.channel, 'c');
    assert.deepEqual(i.formats.httpResponse?.body, b('\x00\x01'));
    assert.deepEqual(i.formats.httpResponse?.headers, [['X', 'y']]);
  });
  test('missing body names tnetstring forms', () => {
    rejects(
      () => parsePublishItem({ channel: b('c'), formats: { 'http-stream': {} } }, 0, { input: 'tnetstring' }),
      "Invalid format: 'http-stream' does not contain 'content'",
    );
    rejects(
      () => parsePublishItem({ channel: b('c'), formats: { 'http-response': {} } }, 0, { input: 'tnetstring' }),
      "Invalid format: 'http-response' does not contain 'body' or 'body-patch'",
    );
  });
  test('ws-message content-bin must be bytes in tnetstring input', () => {
    const i = parsePublishItem({ channel: b('c'), formats: { 'ws-message': { 'content-bin': b('\xff') } } }, 0, { input: 'tnetstring' });
    assert.equal(i.formats.wsMessage?.type, 'binary');
    rejects(
      () => parsePublishItem({ channel: b('c'), formats: { 'ws-message': { 'content-bin': 5 } } }, 0, { input: 'tnetstring' }),
      "Invalid format: 'ws-message' contains 'content-bin' with wrong type",
    );
  });
  test('a channel from the SUB topic wins', () => {
    assert.equal(parsePublishItem({ formats: { 'http-stream': { content: b('x') } } }, 0, { channel: 'topic', input: 'tnetstring' }).channel, 'topic');
  });
});

describe('publish item: limits and hostile input', () => {
  test('errors carry the item index, field and detail', () => {
    const e = rejects(
      () => parsePublishBody(body({ items: [{ channel: 'a', formats: { 'http-stream': { content: 'x' } } }, { channel: 'b', formats: { 'http-stream': { content: 5 } } }] })),
      "Invalid format: 'http-stream' contains 'content' with wrong type",
    );
    assert.equal(e.itemIndex, 1);
    assert.equal(e.field, 'http-stream');
    assert.equal(e.detail, "'http-stream' contains 'content' with wrong type");
    assert.equal(e.status, 400);
  });

  test(`more than ${MAX_ITEMS_PER_PUBLISH} items are refused`, () => {
    const items = Array.from({ length: 10_000 }, () => ({ channel: 'a', formats: { 'http-stream': { content: 'x' } } }));
    rejects(() => parsePublishBody(body({ items })), `Invalid format: object contains 'items' with too many elements (at most ${MAX_ITEMS_PER_PUBLISH})`);
  });

  test('channel names with control characters or over the length limit are refused', () => {
    rejects(() => one({ channel: 'a\nb', formats: { 'http-stream': { content: 'x' } } }), "Invalid format: publish item object contains 'channel' with invalid value (control character)");
    rejects(
      () => one({ channel: 'x'.repeat(MAX_CHANNEL_NAME_BYTES + 1), formats: { 'http-stream': { content: 'x' } } }),
      `Invalid format: publish item object contains 'channel' with invalid value (longer than ${MAX_CHANNEL_NAME_BYTES} bytes)`,
    );
  });

  test('header CR/LF and bad names are refused', () => {
    rejects(() => one({ channel: 'a', formats: { 'http-response': { headers: { 'X-A': 'a\r\nSet-Cookie: x' }, body: '' } } }), "Invalid format: headers contains 'X-A' with invalid value");
    rejects(() => one({ channel: 'a', formats: { 'http-response': { headers: [['X A', 'v']], body: '' } } }), "Invalid format: headers contains 'X A' with invalid name");
  });

  test('base64 that does not decode is refused', () => {
    rejects(() => one({ channel: 'a', formats: { 'http-stream': { 'content-bin': 'not base64!' } } }), "Invalid format: 'http-stream' contains 'content-bin' with invalid value");
  });

  test('any body raises only PublishError', () => {
    const anyVal = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }));
    const fmt = fc.oneof(anyVal, fc.record({ action: anyVal, code: anyVal, reason: anyVal, headers: anyVal, body: anyVal, 'body-bin': anyVal, 'body-patch': anyVal, content: anyVal, 'content-bin': anyVal, type: anyVal, 'content-filters': anyVal }, { requiredKeys: [] }));
    const item = fc.record({ channel: anyVal, id: anyVal, 'prev-id': anyVal, 'no-seq': anyVal, meta: anyVal, size: anyVal, formats: fc.oneof(anyVal, fc.record({ 'http-response': fmt, 'http-stream': fmt, 'ws-message': fmt }, { requiredKeys: [] })), 'http-stream': fmt }, { requiredKeys: [] });
    const input = fc.oneof(fc.string(), fc.json(), item.map((i) => JSON.stringify({ items: [i] })), anyVal.map((v) => JSON.stringify({ items: v })));
    fc.assert(
      fc.property(input, (s) => {
        try {
          parsePublishBody(Buffer.from(s));
        } catch (e) {
          if (!(e instanceof PublishError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
