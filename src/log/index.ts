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
  // Standard output is written once per turn; a given destination (a log file stream,
  // which buffers itself, or a test's capture) gets each line as it comes.
  const out: LineSink = opts.destination === undefined ? new LineBuffer(process.stdout) : directSink(opts.destination);
  if (opts.json) return pino({ level, base: undefined }, out);
  const stream = {
    write(line: string): void {
      let rec: Record<string, unknown>;
      try { rec = JSON.parse(line) as Record<string, unknown>; } catch { out.write(line); return; }
      const { level: lv, time, msg, ...rest } = rec;
      out.write(textLine(lv as number, time as number, String(msg ?? ''), textFields(rest)));
    },
    flush(): void {
      out.flush();
    },
  };
  const logger = pino({ level, base: undefined }, stream);
  // Children are created from this object, so they see the writer too. With a child's
  // bindings as `fields` (textFields), it prints what `logger.info(msg)` would, without
  // pino's JSON and the parse back (access lines).
  const infoLevel = pino.levels.values['info']!;
  const writeInfo = (msg: string, fields: string): void => { out.write(textLine(infoLevel, Date.now(), msg, fields)); };
  Object.defineProperty(logger, TEXT_INFO, { value: writeInfo });
  return logger;
}

/** Fields as text-mode lines print them: `key=value` separated by spaces. */
export function textFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** One text-mode line: `[LEVEL] yyyy-mm-dd hh:mm:ss.mmm msg key=value…` and a newline. */
function textLine(level: number, time: number, msg: string, extras: string): string {
  const tag = LEVEL_TAGS[level] ?? String(level);
  const ts = new Date(time).toISOString().replace('T', ' ').replace('Z', '');
  return `[${tag}] ${ts} ${msg}${extras ? ' ' + extras : ''}\n`;
}

/** Set on text-mode loggers: writes an info line straight to the output (see createLogger). */
const TEXT_INFO = Symbol('gripd.log.textInfo');

/** Writes one info line: the message, then `fields` (a logger's bindings through textFields). */
export type TextInfoWriter = (msg: string, fields: string) => void;

/**
 * The direct info-line writer of a text-mode logger, or undefined (JSON mode, or a logger
 * not made by createLogger).
 */
export function textInfoWriter(logger: Logger): TextInfoWriter | undefined {
  return (logger as unknown as Record<symbol, TextInfoWriter | undefined>)[TEXT_INFO];
}

interface LineSink {
  write(line: string): boolean;
  flush(): void;
}

function directSink(dest: NodeJS.WritableStream): LineSink {
  return { write: (line) => dest.write(line), flush: () => {} };
}

/** Most bytes of log lines held before they are written. */
const LOG_BUFFER_MAX_BYTES = 64 * 1024;

/**
 * Collects log lines and writes them once per event-loop turn (or when 64 KiB are
 * waiting): under load, one write call carries many access lines instead of one each.
 * Whatever is buffered is written when the process exits.
 */
class LineBuffer implements LineSink {
  private parts: string[] = [];
  private bytes = 0;
  private scheduled = false;
  private readonly flushNow = (): void => this.flush();

  constructor(private readonly dest: NodeJS.WritableStream) {
    process.once('exit', this.flushNow);
  }

  write(line: string): boolean {
    this.parts.push(line);
    this.bytes += line.length;
    if (this.bytes >= LOG_BUFFER_MAX_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.parts.length === 0) return;
    const text = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
    this.parts = [];
    this.bytes = 0;
    this.dest.write(text);
  }
}
