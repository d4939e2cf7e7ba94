import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { encodeFrame, MAX_CONTROL_PAYLOAD_BYTES } from '../../../src/websocket/frame.js';

// @types/ws does not declare the Receiver; load it untyped.
const Receiver = (createRequire(import.meta.url)('ws') as { Receiver: unknown }).Receiver as new (o: object) => NodeJS.WritableStream & { on(e: string, f: (...a: never[]) => void): void };

/** Parses frames as a client would (ws's own receiver) and returns the messages. */
function parse(buf: Buffer): Array<{ data: Buffer; binary: boolean }> {
  const out: Array<{ data: Buffer; binary: boolean }> = [];
  const r = new Receiver({ isServer: false, maxPayload: 0 });
  r.on('message', (data: Buffer, binary: boolean) => out.push({ data, binary }));
  r.on('error', (err: Error) => { throw err; });
  r.write(buf);
  return out;
}

test('frame: header lengths at the 7-bit, 16-bit and 64-bit boundaries', () => {
  for (const [n, header] of [[0, 2], [125, 2], [126, 4], [65_535, 4], [65_536, 10], [200_000, 10]] as const) {
    const payload = Buffer.alloc(n, 0x61);
    const f = encodeFrame('text', payload);
    assert.equal(f.length, header + n, `length ${n}`);
    assert.equal(f[0], 0x81);
    const msgs = parse(f);
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]!.data.length, n);
    assert.equal(msgs[0]!.binary, false);
  }
});

test('frame: binary opcode and exact bytes for a small frame', () => {
  assert.deepEqual([...encodeFrame('binary', Buffer.from([0, 255]))], [0x82, 2, 0, 255]);
  assert.deepEqual(parse(encodeFrame('binary', Buffer.from([1, 2, 3])))[0]!.binary, true);
});

test('frame: control frames are cut to 125 bytes', () => {
  const f = encodeFrame('ping', Buffer.alloc(300, 1));
  assert.equal(f[0], 0x89);
  assert.equal(f[1], MAX_CONTROL_PAYLOAD_BYTES);
  assert.equal(f.length, 2 + MAX_CONTROL_PAYLOAD_BYTES);
});
