import { pino, type Logger } from 'pino';

export type { Logger };
export { accessLine, logAccess, MAX_ACCESS_FIELD_LENGTH, type AccessRecord } from './access.js';

/**
 * Pushpin's log levels: 0 = errors only, 1 = warnings, 2 = info (default), 3 = debug
 * (what --verbose selects); anything above 3 is also debug. Maps them onto pino levels.
 */
export function pinoLevelFor(level: number): pino.Level {
  if (level <= 0) return 'error';
  if (level === 1) return 'warn';
  if (level === 2) return 'info';
  return 'debug';
}

export interface LoggerOptions {
  /** Pushpin log level 0-3. */
  level: number;
  /** Machine-readable JSON lines (pino's native format) instead of Pushpin-like text lines. */
  json: boolean;
  /** Where to write; default stdout. */
  destination?: NodeJS.WritableStream;
}

const LEVEL_TAGS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERR', 60: 'FATAL' };

/**
 * Creates the process logger. Text mode prints `[LEVEL] yyyy-mm-dd hh:mm:ss.mmm msg key=value…`,
 * close to Pushpin's own lines; JSON mode prints pino's JSON.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const level = pinoLevelFor(opts.level);
  const dest = opts.destination ?? process.stdout;
  if (opts.json) return pino({ level, base: undefined }, dest);
  const stream = {
    write(line: string): void {
      let rec: Record<string, unknown>;
      try { rec = JSON.parse(line) as Record<string, unknown>; } catch { dest.write(line); return; }
      // The access line already says everything its `access` fields hold.
      const { level: lv, time, msg, access: _access, ...rest } = rec;
      void _access;
      const tag = LEVEL_TAGS[lv as number] ?? String(lv);
      const ts = new Date(time as number).toISOString().replace('T', ' ').replace('Z', '');
      const extras = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      dest.write(`[${tag}] ${ts} ${String(msg ?? '')}${extras ? ' ' + extras : ''}\n`);
    },
  };
  return pino({ level, base: undefined }, stream);
}
