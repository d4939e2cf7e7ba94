import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CommandPacketError,
  decodeCommandRequest,
  decodeCommandResponse,
  encodeCommandRequest,
  encodeCommandResponse,
  zmqUrisFor,
} from '../../../src/zmq/command-packet.js';
import { encodeTnetstring } from '../../../src/zmq/tnetstring.js';
import type { Config } from '../../../src/config/types.js';

test('command packet: request round trip and byte layout', () => {
  const enc = encodeCommandRequest({ id: 'abc', method: 'conncheck', args: { ids: ['a', 'b'] } });
  assert.equal(enc.toString(), '60:2:id,3:abc,6:method,9:conncheck,4:args,17:3:ids,8:1:a,1:b,]}}');
  const req = decodeCommandRequest(enc);
  assert.equal(req.method, 'conncheck');
  assert.deepEqual(req.id, Buffer.from('abc'));
  assert.deepEqual(req.args, { ids: [Buffer.from('a'), Buffer.from('b')] });
});

test('command packet: args default to an empty dict', () => {
  assert.deepEqual(decodeCommandRequest(encodeCommandRequest({ method: 'recover' })).args, {});
});

test('command packet: malformed requests name the field', () => {
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.from('garbage'), /tnetstring parse failed/],
    [encodeTnetstring([1]), /not a dict/],
    [encodeTnetstring({}), /'method'/],
    [encodeTnetstring({ method: 5 }), /'method'/],
    [encodeTnetstring({ method: 'x', id: 1 }), /'id'/],
    [encodeTnetstring({ method: 'x', from: [] }), /'from'/],
    [encodeTnetstring({ method: 'x', args: [] }), /'args'/],
  ];
  for (const [buf, re] of cases) {
    assert.throws(() => decodeCommandRequest(buf), (e: unknown) => e instanceof CommandPacketError && re.test(e.message));
  }
});

test('command packet: responses as Pushpin writes them', () => {
  assert.equal(encodeCommandResponse({ id: Buffer.from('1'), success: true, value: null }).toString(), '37:2:id,1:1,7:success,4:true!5:value,0:~}');
  assert.equal(
    encodeCommandResponse({ success: false, condition: 'method-not-found' }).toString(),
    '50:7:success,5:false!9:condition,16:method-not-found,}',
  );
  const r = decodeCommandResponse(encodeCommandResponse({ id: Buffer.from('9'), success: false, condition: 'bad-request', value: 'why' }));
  assert.deepEqual(r, { id: Buffer.from('9'), success: false, condition: 'bad-request', value: Buffer.from('why') });
});

test('command packet: get-zmq-uris reflects the config like Pushpin', () => {
  const handler = { commandSpec: 'tcp://127.0.0.1:5563', pushInSpec: 'tcp://127.0.0.1:5560', pushInSubSpecs: ['tcp://127.0.0.1:5562'], pushInSubConnect: false };
  const cfg = { handler } as unknown as Config;
  assert.deepEqual(zmqUrisFor(cfg), { command: handler.commandSpec, 'publish-pull': handler.pushInSpec, 'publish-sub': 'tcp://127.0.0.1:5562' });
  const connectCfg = { handler: { ...handler, pushInSubConnect: true } } as unknown as Config;
  assert.equal(zmqUrisFor(connectCfg)['publish-sub'], undefined);
});

test('command packet: bytes after the request are ignored, as Pushpin does', () => {
  const f = Buffer.concat([encodeCommandRequest({ id: '1', method: 'recover' }), Buffer.from('xx')]);
  assert.equal(decodeCommandRequest(f).method, 'recover');
});
