/**
 * Errors raised by the pure GRIP codecs. OWNER: src/grip.
 */

/**
 * A backend's GRIP instruction (Grip-* headers or application/grip-instruct body) is
 * invalid. `message` is Pushpin's text where Pushpin has one (e.g. "failed to parse
 * Grip-Timeout"), otherwise a message in the same style naming the header or field.
 * Maps to a 502 for the client (detail only under `debug`) and a log line.
 */
export class InstructError extends Error {
  override readonly name = 'InstructError';
  /** Stable code for the error catalog. */
  readonly code = 'GRIP_INSTRUCT_INVALID';
  constructor(message: string) {
    super(message);
  }
}

/** A signing or verification key could not be loaded (config `sig_key`/`upstream_key`). */
export class KeySpecError extends Error {
  override readonly name = 'KeySpecError';
  readonly code = 'GRIP_KEY_INVALID';
  constructor(message: string) {
    super(message);
  }
}
