import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePublishFrame, publishFrameFormat, PublishFrameError } from '../../../src/zmq/publish-frame.js';
import { encodeTnetstring } from '../../../src/zmq/tnetstring.js';

const item = { channel: 'test', formats: { 'http-stream': { content: 'hi\n' } } };

test('publish frame: "J" prefix is JSON', () => {
  const f = Buffer.from('J' + JSON.stringify(item));
  assert.equal(publishFrameFormat(f), 'json');
  assert.deepEqual(decodePublishFrame(f), item);
});

test('publish frame: "T" prefix and no prefix are tnetstring', () => {
  const t = encodeTnetstring(item);
  for (const f of [Buffer.concat([Buffer.from('T'), t]), t]) {
    assert.equal(publishFrameFormat(f), 'tnetstring');
    const v = decodePublishFrame(f) as Record<string, unknown>;
    assert.deepEqual(v['channel'], Buffer.from('test'));
  }
});

test('publish frame: JSON that is not an object is rejected', () => {
  for (const s of ['J[1]', 'Jnull', 'J"x"', 'J5']) {
    assert.throws(() => decodePublishFrame(Buffer.from(s)), (e: unknown) => e instanceof PublishFrameError && /not a valid json object/.test(e.message));
  }
});

test('publish frame: malformed JSON and tnetstring name the reason', () => {
  assert.throws(() => decodePublishFrame(Buffer.from('J{')), /json parse failed/);
  assert.throws(() => decodePublishFrame(Buffer.from('{"channel":"x"}')), /tnetstring parse failed/);
  assert.throws(() => decodePublishFrame(Buffer.alloc(0)), /tnetstring parse failed/);
  assert.throws(() => decodePublishFrame(Buffer.from('T100000000:')), /claimed length 100000000/);
});

test('publish frame: bytes after the tnetstring are ignored, as Pushpin does', () => {
  const f = Buffer.concat([Buffer.from('T'), encodeTnetstring(item), Buffer.from('junk')]);
  assert.deepEqual((decodePublishFrame(f) as Record<string, unknown>)['channel'], Buffer.from('test'));
});

test('publish frame: the frame pushpin-publish 1.36 sends decodes (captured fixture)', async () => {
  const { readFile } = await import('node:fs/promises');
  const { fileURLToPath } = await import('node:url');
  const path = fileURLToPath(new URL('../../../../test/fixtures/zmq/pushpin-publish-item.tnet', import.meta.url));
  const v = decodePublishFrame(await readFile(path)) as Record<string, Record<string, Record<string, unknown>>>;
  assert.deepEqual(v['channel'], Buffer.from('test'));
  assert.deepEqual(v['formats']!['http-stream']!['content'], Buffer.from('hello\n'));
  assert.deepEqual(v['formats']!['http-response']!['headers'], [[Buffer.from('X-A'), Buffer.from('b')]]);
});
