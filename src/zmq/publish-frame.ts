/**
 * Decoding of one publish frame as it arrives on the PULL socket or as the second part
 * of a SUB message (pure). Pushpin's prefix rules:
 * - first byte `J`: the rest is JSON and must be an object;
 * - first byte `T`: the rest is a tnetstring;
 * - anything else (including an empty frame): the whole frame is a tnetstring.
 *
 * The result is the raw decoded value (JSON values, or tnetstring values with byte strings
 * as Buffers); turning it into a PublishItem is src/publish's job.
 */
import { decodeTnetstringPrefix, TnetstringError } from './tnetstring.js';

/** Why a publish frame could not be decoded; `reason` is short and log-friendly. */
export class PublishFrameError extends Error {
  override name = 'PublishFrameError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

const PREFIX_JSON = 0x4a; // 'J'
const PREFIX_TNETSTRING = 0x54; // 'T'

/** Which framing a frame uses, by Pushpin's first-byte rule. */
export function publishFrameFormat(frame: Uint8Array): 'json' | 'tnetstring' {
  return frame.length > 0 && frame[0] === PREFIX_JSON ? 'json' : 'tnetstring';
}

/** Decodes one publish frame; throws PublishFrameError naming the reason. */
export function decodePublishFrame(frame: Buffer): unknown {
  if (publishFrameFormat(frame) === 'json') {
    let doc: unknown;
    try {
      doc = JSON.parse(frame.toString('utf8', 1));
    } catch (e) {
      throw new PublishFrameError(`invalid format (json parse failed: ${(e as Error).message})`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new PublishFrameError('invalid format (not a valid json object)');
    }
    return doc;
  }
  const start = frame.length > 0 && frame[0] === PREFIX_TNETSTRING ? 1 : 0;
  try {
    // Bytes after the value are ignored, as Pushpin does.
    return decodeTnetstringPrefix(frame, start).value;
  } catch (e) {
    if (e instanceof TnetstringError) {
      throw new PublishFrameError(`invalid format (tnetstring parse failed: ${e.message.replace(/^tnetstring: /, '')})`);
    }
    throw e;
  }
}
