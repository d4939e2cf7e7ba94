/**
 * The access log line for one proxied request, in Pushpin's shape:
 * `GET /path -> 127.0.0.1:8080 from=1.2.3.4 route=id code=200 123 1.2ms ua=...`.
 * accessLine is pure (formats, never writes); logAccess hands the line to the logger.
 */
import type { Logger } from 'pino';
import { textFields, textInfoWriter } from './index.js';

export interface AccessRecord {
  method: string;
  /** Request target as received (path and query; or an absolute URI). */
  path: string;
  /** Response status sent to the client; undefined when the request ended in an error. */
  status?: number;
  /** The request was handed to the GRIP handler (held) rather than answered directly. */
  accepted?: boolean;
  /** Route id (only when the route has an explicit id=, as Pushpin logs it). */
  route?: string;
  /** Backend target as `host:port` (or `test`, `zhttp/...`). */
  backend?: string;
  /** Response body bytes sent. */
  bodyBytes?: number;
  /** Time from request start to the end of the response, milliseconds. */
  durationMs: number;
  /** Client address (included when [proxy] log_from is set). */
  from?: string;
  /** Client User-Agent (included when [proxy] log_user_agent is set). */
  userAgent?: string;
  /** Referer header, logged as Pushpin does. */
  referer?: string;
  /** The request was retried after a GRIP hold ended. */
  retry?: boolean;
}

/** Longest User-Agent/Referer text copied into a log line; protects the log from huge headers. */
export const MAX_ACCESS_FIELD_LENGTH = 512;

function clip(s: string): string {
  // Control characters would let a client forge extra log lines.
  const clean = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > MAX_ACCESS_FIELD_LENGTH ? clean.slice(0, MAX_ACCESS_FIELD_LENGTH) + '...' : clean;
}

/** Formats the access line (no trailing newline). */
export function accessLine(r: AccessRecord): string {
  let s = `${r.method} ${clip(r.path)}`;
  if (r.backend) s += ` -> ${r.backend}`;
  if (r.from) s += ` from=${r.from}`;
  if (r.referer) s += ` ref=${clip(r.referer)}`;
  if (r.route) s += ` route=${r.route}`;
  if (r.accepted) s += ' accept';
  else if (r.status !== undefined) s += ` code=${r.status}${r.bodyBytes === undefined ? "" : ` ${r.bodyBytes}`}`;
  else s += ' error';
  if (r.retry) s += ' retry';
  s += ` ${formatDuration(r.durationMs)}`;
  if (r.userAgent) s += ` ua=${clip(r.userAgent)}`;
  return s;
}

function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0ms';
  return ms < 10 ? `${ms.toFixed(1)}ms` : `${Math.round(ms)}ms`;
}

/** Each text logger's bindings as its lines print them, worked out once per logger. */
const fieldsOf = new WeakMap<Logger, string>();

function boundFields(logger: Logger): string {
  let fields = fieldsOf.get(logger);
  if (fields === undefined) {
    fields = textFields(logger.bindings());
    fieldsOf.set(logger, fields);
  }
  return fields;
}

/**
 * Logs one access line at info level (Pushpin's level 2). In JSON mode the fields are
 * also attached as structured properties under `access`.
 */
export function logAccess(logger: Logger, r: AccessRecord): void {
  if (!logger.isLevelEnabled('info')) return;
  // Text lines already say everything the fields hold; only JSON logs carry them. A text
  // logger takes the line directly (no JSON round trip per request).
  const direct = textInfoWriter(logger);
  if (direct !== undefined) direct(accessLine(r), boundFields(logger));
  else logger.info({ access: r }, accessLine(r));
}
