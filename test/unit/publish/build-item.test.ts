import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { buildPublishItem, parseHeaderArg, parseMetaArg, PublishCommandError, type PublishCommand } from '../../../src/publish/build-item.js';

const base: PublishCommand = {
  channel: 'test', content: Buffer.from('hello'), fromFile: false, code: 200,
  headers: [], meta: [], action: 'send', patch: false, noSeq: false, eol: true,
};

describe('build-item (gripd-publish)', () => {
  test('send: http payloads get a newline, the ws message does not', () => {
    assert.deepEqual(buildPublishItem(base), {
      channel: 'test',
      formats: {
        'http-stream': { content: 'hello\n' },
        'ws-message': { content: 'hello' },
        'http-response': { code: 200, body: 'hello\n' },
      },
    });
  });

  test('--no-eol and file contents add no newline', () => {
    const a = buildPublishItem({ ...base, eol: false });
    const b = buildPublishItem({ ...base, fromFile: true });
    for (const item of [a, b]) {
      assert.deepEqual((item['formats'] as Record<string, unknown>)['http-stream'], { content: 'hello' });
    }
  });

  test('binary content travels base64 under -bin keys', () => {
    const item = buildPublishItem({ ...base, content: Buffer.from([0xff, 0x00]), eol: false });
    assert.deepEqual(item['formats'], {
      'http-stream': { 'content-bin': '/wA=' },
      'ws-message': { 'content-bin': '/wA=' },
      'http-response': { code: 200, 'body-bin': '/wA=' },
    });
  });

  test('ids, sender, meta, headers, no-seq', () => {
    const item = buildPublishItem({
      ...base, id: '2', prevId: '1', sender: 'me', meta: [['user', 'bob']], headers: [['X-A', 'b']], noSeq: true, code: 404,
    });
    assert.equal(item['id'], '2');
    assert.equal(item['prev-id'], '1');
    assert.deepEqual(item['meta'], { sender: 'me', user: 'bob' });
    assert.equal(item['no-seq'], true);
    assert.deepEqual((item['formats'] as Record<string, Record<string, unknown>>)['http-response'], {
      code: 404, body: 'hello\n', headers: [['X-A', 'b']],
    });
  });

  test('hint and close formats', () => {
    assert.deepEqual(buildPublishItem({ ...base, action: 'hint', content: undefined })['formats'], {
      'http-response': { action: 'hint' }, 'http-stream': { action: 'hint' }, 'ws-message': { action: 'hint' },
    });
    assert.deepEqual(buildPublishItem({ ...base, action: 'close', content: undefined })['formats'], {
      'http-stream': { action: 'close' }, 'ws-message': { action: 'close' },
    });
  });

  test('patch: JSON array becomes body-patch; anything else is refused', () => {
    const item = buildPublishItem({ ...base, patch: true, content: Buffer.from('[{"op":"add","path":"/a","value":1}]') });
    assert.deepEqual(item['formats'], { 'http-response': { code: 200, 'body-patch': [{ op: 'add', path: '/a', value: 1 }] } });
    assert.throws(() => buildPublishItem({ ...base, patch: true, content: Buffer.from('{}') }), /must be a JSON array/);
    assert.throws(() => buildPublishItem({ ...base, patch: true, content: Buffer.from('[') }), PublishCommandError);
  });

  test('rejects missing content and out-of-range codes', () => {
    assert.throws(() => buildPublishItem({ ...base, content: undefined }), /must specify content/);
    assert.throws(() => buildPublishItem({ ...base, code: 1000 }), /between 0 and 999/);
  });

  test('header and meta arguments split as pushpin-publish does', () => {
    assert.deepEqual(parseHeaderArg('X-Foo:  bar '), ['X-Foo', 'bar']);
    assert.throws(() => parseHeaderArg('nocolon'), /name: value/);
    assert.throws(() => parseHeaderArg('X: a\r\nInjected: 1'), /invalid header/);
    assert.deepEqual(parseMetaArg('a= b'), ['a', 'b']);
    assert.throws(() => parseMetaArg('ab'), /name=value/);
  });
});
