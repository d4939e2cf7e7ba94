/**
 * Replies gripd's proxy produces itself, with the status lines and body texts Pushpin
 * 1.36 uses so clients see the same bytes (modulo Date).
 */
import type { ServerResponse } from 'node:http';

/** Body of every 502 caused by the backend, unless the route is in debug mode. */
export const TEXT_PROXY_ERROR = 'Error while proxying to origin.';

/** No route matched: Pushpin 1.36's wording; `host` is the Host header without its port. */
export function textNoRoute(host: string): string {
  return `No route for host: ${host}`;
}

/** Debug detail when every target refused or failed to connect. */
export function textNoTargets(targets: string[]): string {
  return `Unable to connect to any targets. Tried: ${targets.join(', ')}`;
}

/** Debug detail when a GRIP instruct response exceeds the read limit. */
export function textInstructTooLarge(target: string): string {
  return `GRIP instruct response too large from ${target}`;
}

/** The backend answered with GRIP but the request body was too big to keep for retries. */
export const TEXT_REQUEST_TOO_LARGE_FOR_GRIP = 'Request too large to accept GRIP instruct.';

/**
 * Answer to a `Pushpin-Check` request header. Pushpin answers with its own copyright
 * notice; gripd answers with its own notice in the same shape (200, text/plain).
 */
export const TEXT_PUSHPIN_CHECK =
  'gripd: a Pushpin-compatible GRIP proxy.\n' +
  'Licensed under the MIT License; see the LICENSE file shipped with gripd.';

/**
 * Sends a complete `text/plain` reply whose body is `text` plus a newline, with only
 * Content-Type and Content-Length (as Pushpin's local replies). Does nothing when the
 * response has already started.
 */
export function sendText(res: ServerResponse, status: number, reason: string, text: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(text + '\n', 'utf8');
  // Pushpin's local replies carry no Date header.
  res.sendDate = false;
  res.writeHead(status, reason, ['Content-Type', 'text/plain', 'Content-Length', String(body.length)]);
  res.end(body);
}
