/**
 * Builds the publish item that `gripd-publish` sends, in the same shape as
 * `pushpin-publish` (pure: no I/O; file contents are passed in already read).
 */

export interface PublishCommand {
  channel: string;
  /** Message text; undefined with --hint or --close. */
  content?: Buffer;
  /** True when content came from `@file` (no newline is added then). */
  fromFile: boolean;
  id?: string;
  prevId?: string;
  sender?: string;
  /** HTTP status code for the http-response format (0-999). */
  code: number;
  headers: Array<[string, string]>;
  meta: Array<[string, string]>;
  action: 'send' | 'hint' | 'close';
  /** Content is a JSON Patch array for http-response body-patch. */
  patch: boolean;
  noSeq: boolean;
  /** Add a newline to HTTP payloads (not to WebSocket messages, nor to file contents). */
  eol: boolean;
}

export class PublishCommandError extends Error {
  override name = 'PublishCommandError';
}

/** A JSON-ready publish item; binary content goes into the `-bin` base64 fields. */
export type JsonItem = Record<string, unknown>;

function putBytes(target: Record<string, unknown>, key: 'body' | 'content', value: Buffer): void {
  // Non-UTF-8 payloads travel base64-encoded under the "-bin" key, as the publish API expects.
  const text = value.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(value)) target[key] = text;
  else target[`${key}-bin`] = value.toString('base64');
}

/** Maps command-line choices to one publish item (JSON form). */
export function buildPublishItem(cmd: PublishCommand): JsonItem {
  const formats: Record<string, unknown> = {};
  if (cmd.action === 'hint') {
    formats['http-response'] = { action: 'hint' };
    formats['http-stream'] = { action: 'hint' };
    formats['ws-message'] = { action: 'hint' };
  } else if (cmd.action === 'close') {
    formats['http-stream'] = { action: 'close' };
    formats['ws-message'] = { action: 'close' };
  } else {
    if (!Number.isInteger(cmd.code) || cmd.code < 0 || cmd.code > 999) {
      throw new PublishCommandError('code must be an integer between 0 and 999');
    }
    if (cmd.content === undefined) throw new PublishCommandError('must specify content');
    const httpResponse: Record<string, unknown> = { code: cmd.code };
    if (cmd.patch) {
      let ops: unknown;
      try {
        ops = JSON.parse(cmd.content.toString('utf8'));
      } catch (err) {
        throw new PublishCommandError(`patch content is not JSON: ${(err as Error).message}`);
      }
      if (!Array.isArray(ops)) throw new PublishCommandError('patch content must be a JSON array');
      httpResponse['body-patch'] = ops;
    } else {
      const httpContent = cmd.eol && !cmd.fromFile ? Buffer.concat([cmd.content, Buffer.from('\n')]) : cmd.content;
      putBytes(httpResponse, 'body', httpContent);
      const stream: Record<string, unknown> = {};
      putBytes(stream, 'content', httpContent);
      formats['http-stream'] = stream;
      const ws: Record<string, unknown> = {};
      putBytes(ws, 'content', cmd.content);
      formats['ws-message'] = ws;
    }
    if (cmd.headers.length > 0) httpResponse['headers'] = cmd.headers.map(([k, v]) => [k, v]);
    formats['http-response'] = httpResponse;
  }
  const item: JsonItem = { channel: cmd.channel };
  if (cmd.id) item['id'] = cmd.id;
  if (cmd.prevId) item['prev-id'] = cmd.prevId;
  item['formats'] = formats;
  const meta: Record<string, string> = {};
  if (cmd.sender) meta['sender'] = cmd.sender;
  for (const [k, v] of cmd.meta) meta[k] = v;
  if (Object.keys(meta).length > 0) item['meta'] = meta;
  if (cmd.noSeq) item['no-seq'] = true;
  return item;
}

/** Splits `"Name: value"` as pushpin-publish does (value trimmed). */
export function parseHeaderArg(arg: string): [string, string] {
  const pos = arg.indexOf(':');
  if (pos < 0) throw new PublishCommandError('header must be in the form "name: value"');
  const name = arg.slice(0, pos);
  const value = arg.slice(pos + 1).trim();
  if (/[\r\n\0]/.test(name) || /[\r\n\0]/.test(value) || name.trim() === '') {
    throw new PublishCommandError(`invalid header: ${JSON.stringify(arg)}`);
  }
  return [name, value];
}

/** Splits `"name=value"` as pushpin-publish does (value trimmed). */
export function parseMetaArg(arg: string): [string, string] {
  const pos = arg.indexOf('=');
  if (pos < 0) throw new PublishCommandError('meta must be in the form "name=value"');
  return [arg.slice(0, pos), arg.slice(pos + 1).trim()];
}
