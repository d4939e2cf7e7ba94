import http from 'node:http';

/** Keep-alive agent so a burst of publishes reuses one connection. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
/** Bound on one publish request. */
const PUBLISH_TIMEOUT_MS = 10_000;

/**
 * POSTs one http-stream item to a Pushpin-compatible publish API (`/publish/`).
 * Resolves with the HTTP status; rejects on network errors or timeout.
 */
export function publishStream(publishUrl: string, channel: string, content: string): Promise<number> {
  const body = JSON.stringify({ items: [{ channel, formats: { 'http-stream': { content } } }] });
  return new Promise((resolve, reject) => {
    const req = http.request(publishUrl + '/publish/', {
      method: 'POST', agent, timeout: PUBLISH_TIMEOUT_MS,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('publish timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Drops idle keep-alive publish connections (call before stopping a server). */
export function closePublishConnections(): void {
  agent.destroy();
}

/**
 * Publishes `count` items made by `content(i)` with at most `concurrency` requests in
 * flight (1 = strictly one after another). Rejects on the first failure.
 */
export async function publishMany(publishUrl: string, channel: string, count: number, concurrency: number, content: (i: number) => string): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, async () => {
    while (next < count) {
      const i = next++;
      const status = await publishStream(publishUrl, channel, content(i));
      if (status !== 200) throw new Error(`publish answered ${status}`);
    }
  });
  await Promise.all(lanes);
}

/** One publish item as the HTTP publish API takes it (`{ channel, formats, ... }`). */
export type PublishItemJson = { channel: string; formats: Record<string, Record<string, unknown>>; id?: string };

/**
 * POSTs `items` in one request to `/publish/` (keep-alive). Resolves with the HTTP status;
 * rejects on network errors or timeout.
 */
export function publishItems(publishUrl: string, items: PublishItemJson[]): Promise<number> {
  const body = JSON.stringify({ items });
  return new Promise((resolve, reject) => {
    const req = http.request(publishUrl + '/publish/', {
      method: 'POST', agent, timeout: PUBLISH_TIMEOUT_MS,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('publish timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
