/**
 * Pure readers for pushpin.conf value types. Each returns the typed value or an error
 * message (without the key: the caller prefixes `[section] key:`).
 */
import type { ListenAddress, XffRules } from './types.js';

/** Largest integer a numeric key accepts; keeps arithmetic (port offsets, sizes) exact. */
export const MAX_CONFIG_INT = 2 ** 31 - 1;

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/**
 * Booleans: true/false, 1/0, yes/no, on/off (any case). Empty reads as false, as Qt's
 * QVariant::toBool does; anything else is an error (Qt would read it as true).
 */
export function parseBool(s: string): Parsed<boolean> {
  const v = s.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes' || v === 'on') return ok(true);
  if (v === 'false' || v === '0' || v === 'no' || v === 'off' || v === '') return ok(false);
  return fail(`expected true or false, got "${s}"`);
}

/** A decimal integer in [min, max]. */
export function parseInteger(s: string, min: number, max = MAX_CONFIG_INT): Parsed<number> {
  const v = s.trim();
  if (!/^[+-]?\d{1,10}$/.test(v)) return fail(`expected a number, got "${s}"`);
  const n = Number(v);
  if (n < min || n > max) return fail(`${n} is out of range (${min}-${max})`);
  return ok(n);
}

/** A TCP port, 1-65535. */
export function parsePort(s: string): Parsed<number> {
  const v = s.trim();
  if (!/^\d{1,10}$/.test(v)) return fail(`invalid port "${s}"`);
  const n = Number(v);
  if (n < 1 || n > 65535) return fail(`port ${n} is out of range (1-65535)`);
  return ok(n);
}

/**
 * `[ADDR:]PORT` as Pushpin's runner reads http_port, https_ports and --port: `7999`,
 * `127.0.0.1:7999`, `[::1]:7999`. `*` or an empty address means all interfaces.
 */
export function parseListenAddress(s: string): Parsed<ListenAddress> {
  const v = s.trim();
  let host: string | undefined;
  let portText: string;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(v);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (!/^[0-9a-fA-F:.]+$/.test(host)) return fail(`invalid IPv6 address "${host}" in "${s}"`);
  } else if (v.includes(':')) {
    const at = v.lastIndexOf(':');
    host = v.slice(0, at);
    portText = v.slice(at + 1);
    if (host.includes(':')) return fail(`IPv6 addresses need brackets, e.g. [::1]:7999, got "${s}"`);
    if (host !== '' && host !== '*' && !/^[A-Za-z0-9.-]+$/.test(host)) return fail(`invalid address "${host}" in "${s}"`);
  } else {
    portText = v;
  }
  const port = parsePort(portText);
  if (!port.ok) return fail(`${port.error} in "${s}" (expected [ADDR:]PORT)`);
  if (host === '' || host === '*') host = undefined;
  return ok(host === undefined ? { port: port.value } : { host, port: port.value });
}

/** x_forwarded_for rules: comma items `truncate:N` and `append`; empty = leave the header alone. */
export function parseXffRules(items: string[]): Parsed<XffRules> {
  const out: XffRules = { truncate: undefined, append: false };
  for (const raw of items) {
    const item = raw.trim();
    if (item === '') continue;
    if (item === 'append') {
      out.append = true;
    } else if (item.startsWith('truncate:')) {
      const n = parseInteger(item.slice(9), 0);
      if (!n.ok) return fail(`bad rule "${item}": ${n.error}`);
      out.truncate = n.value;
    } else {
      return fail(`unknown rule "${item}" (expected truncate:N or append)`);
    }
  }
  return ok(out);
}

/**
 * Pushpin's log level spec (`log_level`, `--loglevel`): comma items, either `N` (the default
 * level) or `service:N`. Returns the default level (if any) and the per-service levels.
 */
export function parseLogLevelSpec(s: string): Parsed<{ level: number | undefined; services: Record<string, number> }> {
  const services: Record<string, number> = {};
  let level: number | undefined;
  const parts = s.split(',').map((p) => p.trim());
  for (const part of parts) {
    if (part === '') return fail('log level component cannot be empty');
    const at = part.indexOf(':');
    if (at === 0) return fail('log level component name cannot be empty');
    const name = at > 0 ? part.slice(0, at) : '';
    const n = parseInteger(at > 0 ? part.slice(at + 1) : part, 0, 100);
    if (!n.ok) return fail(name ? `log level for ${name} must be a number >= 0, got "${part.slice(at + 1)}"` : `log level must be a number >= 0, got "${part}"`);
    if (name) services[name] = n.value;
    else level = n.value;
  }
  return ok({ level, services });
}

/**
 * Replaces `{libdir}`, `{rundir}` and `{ipc_prefix}` everywhere in `s`, as Pushpin does for
 * every string setting. Unknown `{names}` are left alone.
 */
export function applyTemplate(s: string, vars: { libdir: string; rundir: string; ipcPrefix: string }): string {
  return s.replaceAll('{libdir}', vars.libdir).replaceAll('{rundir}', vars.rundir).replaceAll('{ipc_prefix}', vars.ipcPrefix);
}

/**
 * Adds `offset` to the port of a `tcp://host:port` ZeroMQ spec (port_offset). Other specs
 * (ipc://, inproc://) and an offset of 0 leave the spec unchanged.
 */
export function offsetTcpSpec(spec: string, offset: number): Parsed<string> {
  if (offset === 0 || !spec.startsWith('tcp://')) return ok(spec);
  const m = /^(tcp:\/\/.*:)(\d+)$/.exec(spec);
  if (!m) return fail(`tcp spec "${spec}" has no port`);
  const port = Number(m[2]) + offset;
  if (port > 65535) return fail(`port_offset moves "${spec}" past 65535`);
  return ok(`${m[1]!}${port}`);
}

/** Decodes hex text (whitespace around it ignored), or returns undefined if it is not hex. */
export function decodeHex(s: string): Uint8Array | undefined {
  const v = s.trim();
  if (v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) return undefined;
  return new Uint8Array(Buffer.from(v, 'hex'));
}

/** Decodes standard or URL-safe base64 (padding optional), or undefined if malformed. */
export function decodeBase64(s: string): Uint8Array | undefined {
  const v = s.trim();
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(v) || v.replace(/=+$/, '').length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64'));
}
