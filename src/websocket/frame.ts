/**
 * Server-side WebSocket frame encoding (RFC 6455 section 5.2), pure. Used to build a
 * published message ONCE and write the same bytes to every subscriber's socket.
 */

/** Frame opcodes gripd sends. */
export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export type FrameKind = keyof typeof OPCODE;

/**
 * Control frames (close, ping, pong) carry at most this many payload bytes (RFC 6455
 * 5.5); longer payloads are cut so the frame stays valid.
 */
export const MAX_CONTROL_PAYLOAD_BYTES = 125;

/**
 * One unmasked, final frame (as a server sends) with `payload`: the header and payload
 * in a single Buffer. Control-frame payloads are truncated to MAX_CONTROL_PAYLOAD_BYTES.
 */
export function encodeFrame(kind: FrameKind, payload: Buffer): Buffer {
  const opcode = OPCODE[kind];
  let data = payload;
  if (opcode >= 0x8 && data.length > MAX_CONTROL_PAYLOAD_BYTES) data = data.subarray(0, MAX_CONTROL_PAYLOAD_BYTES);
  const n = data.length;
  const headerLen = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerLen + n);
  out[0] = 0x80 | opcode;
  if (n < 126) {
    out[1] = n;
  } else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  data.copy(out, headerLen);
  return out;
}
