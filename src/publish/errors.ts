/**
 * Errors of the publish-item parser. OWNER: src/publish (item parsing).
 */

/**
 * A publish request or item is invalid. `message` is exactly the first line of Pushpin's
 * 400 body for the same input (e.g. "Invalid format: publish item object does not contain
 * 'channel'"); the HTTP API answers `400 Bad Request` with `message + "\n"` as text/plain.
 * `detail` is the text after "Invalid format: " (what Pushpin logs for ZeroMQ input:
 * "received message with invalid format: <detail>"). `itemIndex` is the 0-based index of the
 * offending item when one is at fault, and `field` the key named, when known.
 */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  /** Stable code for the error catalog. */
  readonly code = 'PUBLISH_INVALID';
  /** HTTP status the publish API answers with. */
  readonly status = 400;
  readonly detail: string;
  readonly itemIndex: number | undefined;
  readonly field: string | undefined;

  constructor(message: string, detail: string, itemIndex?: number, field?: string) {
    super(message);
    this.detail = detail;
    this.itemIndex = itemIndex;
    this.field = field;
  }
}
