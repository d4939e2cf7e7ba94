/**
 * Routes-file I/O: read, resolve key/cert files, log diagnostics, watch for changes.
 * Never throws after startup: a bad file reloads with its bad lines skipped.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { formatDiagnostic, type Diagnostic } from '../diagnostic.js';
import type { Logger } from '../log/index.js';
import { parseRoutesText } from './routes-text.js';
import { RouteTable } from './table.js';
import type { Route } from './types.js';

/** Largest routes file read; protects memory from a wrong path (e.g. a log file). */
export const MAX_ROUTES_FILE_BYTES = 4 * 1024 * 1024;
/** Largest sig_key / client_cert / client_key file read. */
export const MAX_KEY_FILE_BYTES = 1024 * 1024;
/** Quiet time after the last change event before reloading; editors emit bursts. */
export const DEFAULT_RELOAD_DEBOUNCE_MS = 250;

export interface WatchRoutesOptions {
  logger: Logger;
  /** Called with a fresh table after each reload that changed the file's text. */
  onUpdate(table: RouteTable): void;
  /** Debounce for change events, default DEFAULT_RELOAD_DEBOUNCE_MS (Pushpin waits 1 s). */
  debounceMs?: number;
}

export interface RoutesWatch {
  /** The table loaded at startup. */
  table: RouteTable;
  /** Stops watching; no onUpdate call happens afterwards. */
  close(): void;
  /**
   * Re-reads the file now (SIGHUP), with the same rules as a change seen by the watcher:
   * a file without one valid line keeps the running routes. Resolves when done.
   */
  reload(): Promise<void>;
}

/**
 * Reads `file` into a RouteTable (missing file -> empty table and a warning), logs every
 * diagnostic as `file:line: message`, then watches the file's directory (so an editor
 * replacing the file by rename is seen) and calls onUpdate with a new table on change.
 * Invalid lines are skipped (as Pushpin); a reload that cannot read the file, or finds
 * invalid lines and not one valid route, keeps the current table. Never rejects.
 */
export async function watchRoutesFile(file: string, opts: WatchRoutesOptions): Promise<RoutesWatch> {
  const { logger } = opts;
  const debounceMs = opts.debounceMs ?? DEFAULT_RELOAD_DEBOUNCE_MS;
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const base = path.basename(abs);

  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let lastText: string | undefined;
  let running = false;
  let again = false;

  const first = await loadRoutesFile(abs, file, logger);
  lastText = first.text;
  const table = first.table ?? new RouteTable([]);

  async function reload(): Promise<void> {
    // One reload at a time; a change during a reload triggers one more.
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const res = await loadRoutesFile(abs, file, logger, lastText);
        if (closed) return;
        if (res.table !== undefined && res.errors > 0 && res.table.routes.length === 0) {
          // A file replaced by garbage (or caught mid-write) with not one valid line: its
          // lines are reported above as file:line and the running routes stay. A file with
          // some valid lines applies them and skips the bad ones, as Pushpin does.
          lastText = res.text;
          logger.error(`${file}: no valid route in ${res.errors} invalid line(s); keeping the running routes`);
        } else if (res.table !== undefined) {
          lastText = res.text;
          opts.onUpdate(res.table);
        }
      } while (again && !closed);
    } catch (err) {
      logger.error({ err: (err as Error).message }, `routes reload of ${file} failed; keeping current routes`);
    } finally {
      running = false;
    }
  }

  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      // Some platforms give no name; then any change in the directory may be ours.
      if (closed || (name !== null && name !== base)) return;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        void reload();
      }, debounceMs);
    });
    watcher.on('error', (err) => {
      logger.warn({ err: err.message }, `stopped watching ${dir} for routes changes`);
    });
  } catch (err) {
    logger.warn({ err: (err as Error).message }, `cannot watch ${dir}; routes changes need a restart or SIGHUP`);
  }

  return {
    table,
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
    },
    reload,
  };
}

/**
 * Reads and parses one routes file and resolves file references. Returns no table when
 * the file cannot be read, or when its text equals `unchangedFrom`.
 */
async function loadRoutesFile(
  abs: string,
  display: string,
  logger: Logger,
  unchangedFrom?: string,
): Promise<{ table?: RouteTable; text?: string; errors: number }> {
  let text: string;
  try {
    const st = await stat(abs);
    if (st.size > MAX_ROUTES_FILE_BYTES) {
      logger.warn(`${display}: routes file is ${st.size} bytes (limit ${MAX_ROUTES_FILE_BYTES}); not loaded`);
      return { errors: 0 };
    }
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') logger.warn(`${display}: routes file not found; no routes loaded from it`);
    else logger.warn({ err: e.message }, `${display}: unable to read routes file`);
    return { errors: 0 };
  }
  if (unchangedFrom !== undefined && text === unchangedFrom) return { text, errors: 0 };

  const { routes, diagnostics } = parseRoutesText(text, display);
  const resolved = await resolveRouteFiles(routes, path.dirname(abs), display);
  for (const d of [...diagnostics, ...resolved.diagnostics].sort((a, b) => a.line - b.line)) {
    logger.warn(formatDiagnostic(d));
  }
  const table = new RouteTable(resolved.routes);
  const errors = [...diagnostics, ...resolved.diagnostics].filter((d) => d.severity === 'error').length;
  if (errors === 0 || table.routes.length > 0) logger.info(`routes loaded with ${table.routes.length} entries from ${display}`);
  return { table, text, errors };
}

/**
 * Fills the file-backed fields the pure parser leaves as paths:
 * - `sig_key=file:PATH` (relative to `baseDir`): PEM text when it starts with
 *   "-----BEGIN", else the file's trimmed hex text decoded to bytes. An unreadable file
 *   leaves sigKey unset, so the global key is used (Pushpin does the same), with a warning.
 * - `client_cert=` / `client_key=` (relative to the working directory, as Pushpin): an
 *   unreadable file drops the route with an error, as Pushpin skips such lines.
 * Returns new route objects; the input is not modified. Also for --route lines (baseDir =
 * the working directory, as Pushpin).
 */
export async function resolveRouteFiles(
  routes: readonly Route[],
  baseDir: string,
  display: string,
): Promise<{ routes: Route[]; diagnostics: Diagnostic[] }> {
  const out: Route[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const r of routes) {
    const line = lineOf(r.source);
    let route = r;
    if (r.sigKeyFile !== undefined) {
      const p = path.resolve(baseDir, r.sigKeyFile);
      try {
        const data = await readSmall(p);
        const key = data.subarray(0, 10).toString('latin1') === '-----BEGIN'
          ? new Uint8Array(data)
          : new Uint8Array(Buffer.from(data.toString('latin1').trim(), 'hex'));
        route = { ...route, sigKey: key };
      } catch (err) {
        diagnostics.push({
          file: display,
          line,
          message: `cannot read sig_key file '${p}': ${(err as Error).message}; using the global sig_key`,
          severity: 'warning',
        });
      }
    }
    let dropped = false;
    const targets = [];
    for (const t of route.targets) {
      if (t.clientCertFile === undefined && t.clientKeyFile === undefined) {
        targets.push(t);
        continue;
      }
      const next = { ...t };
      for (const [field, fileField, option] of [
        ['clientCert', 'clientCertFile', 'client_cert'],
        ['clientKey', 'clientKeyFile', 'client_key'],
      ] as const) {
        const f = t[fileField];
        if (f === undefined) continue;
        try {
          next[field] = (await readSmall(path.resolve(f))).toString('utf8');
        } catch (err) {
          diagnostics.push({ file: display, line, message: `cannot read ${option} '${f}': ${(err as Error).message}`, severity: 'error' });
          dropped = true;
        }
      }
      targets.push(next);
    }
    if (dropped) continue;
    out.push(targets === route.targets ? route : { ...route, targets });
  }
  return { routes: out, diagnostics };
}

async function readSmall(p: string): Promise<Buffer> {
  const st = await stat(p);
  if (st.size > MAX_KEY_FILE_BYTES) throw new Error(`file is ${st.size} bytes (limit ${MAX_KEY_FILE_BYTES})`);
  return readFile(p);
}

function lineOf(source: string): number {
  const m = /:(\d+)$/.exec(source);
  return m === null ? 0 : Number(m[1]);
}
