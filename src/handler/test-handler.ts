/**
 * The built-in `test` route target, answering as Pushpin's test handler does: `/` says
 * hello, `/response` is a long-poll and `/stream` a stream hold on channel `test` (or
 * each `?channel=` given). Holds come back as Grip headers so the normal GRIP path
 * takes over.
 */
import type { BackendResponse } from '../proxy/types.js';

/** Largest request body the test handler reads (as Pushpin's test handler). */
export const TEST_REQUEST_MAX_BYTES = 100_000;

/** A request as the test handler sees it. */
export interface TestRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

function textResponse(status: number, reason: string, body: string, extra: Array<[string, string]> = []): BackendResponse {
  return { status, reason, headers: [['Content-Type', 'text/plain'], ...extra], body: Buffer.from(body) };
}

/** Answers one request; never rejects. */
export async function testHandler(req: TestRequest): Promise<BackendResponse> {
  if (req.body.length > TEST_REQUEST_MAX_BYTES) return textResponse(400, 'Bad Request', 'request too large\n');
  const q = req.path.indexOf('?');
  let path = q >= 0 ? req.path.slice(0, q) : req.path;
  if (path.length >= 2 && path.endsWith('/')) path = path.slice(0, -1);
  const channels = new Set<string>();
  if (q >= 0) {
    try {
      for (const [k, v] of new URLSearchParams(req.path.slice(q + 1))) if (k === 'channel') channels.add(v);
    } catch {
      // A query that does not decode names no channels.
    }
  }
  if (channels.size === 0) channels.add('test');
  const channelHeader = [...channels].join(', ');
  switch (path) {
    case '/':
      return textResponse(200, 'OK', 'Hello from the Pushpin test handler!\n');
    case '/response':
      return textResponse(200, 'OK', 'nothing for now\n', [['Grip-Hold', 'response'], ['Grip-Channel', channelHeader]]);
    case '/stream':
      return textResponse(200, 'OK', '[stream opened]\n', [['Grip-Hold', 'stream'], ['Grip-Channel', channelHeader]]);
    default:
      return textResponse(404, 'Not Found', 'no such test resource\n');
  }
}

/**
 * The test handler's WebSocket resource: `/ws` (relative to the route's path_beg) accepts
 * the connection, echoes every message and subscribes it to channel `test` or each
 * `?channel=` given, as Pushpin's test handler does. Returns undefined for other paths
 * (the handshake is then refused with 404).
 */
export function testWebSocket(pathAndQuery: string): { channels: string[] } | undefined {
  const q = pathAndQuery.indexOf('?');
  let path = q >= 0 ? pathAndQuery.slice(0, q) : pathAndQuery;
  if (path.length >= 2 && path.endsWith('/')) path = path.slice(0, -1);
  if (path !== '/ws') return undefined;
  const channels = new Set<string>();
  if (q >= 0) {
    try {
      for (const [k, v] of new URLSearchParams(pathAndQuery.slice(q + 1))) if (k === 'channel') channels.add(v);
    } catch {
      // A query that does not decode names no channels.
    }
  }
  if (channels.size === 0) channels.add('test');
  return { channels: [...channels] };
}
