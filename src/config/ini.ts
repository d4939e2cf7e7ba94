/**
 * Pure reader for pushpin.conf's INI dialect (the subset of Qt QSettings' IniFormat
 * that Pushpin's shipped files use). Text in, entries with line numbers out; it opens
 * no file and knows nothing about which keys exist.
 *
 * Rules, as QSettings reads pushpin.conf:
 * - Lines end at `\n`, `\r\n` or `\r`; leading whitespace is ignored; blank lines skipped.
 * - A line whose first non-blank character is `#` or `;` is a comment.
 * - `[name]` starts a section (name trimmed); keys before any section land in section ''.
 * - `key = value`: key and value are trimmed. In the value, `;` outside double quotes
 *   starts a comment, `"..."` keeps whitespace, commas and `;` literally, backslash escapes
 *   (`\\ \" \n \t \r \0 \xHH`) are decoded, and commas outside quotes separate list items
 *   (each item trimmed), as QSettings' string lists.
 * - A repeated key in the same section: the last one wins (a warning names both lines).
 */
import type { Diagnostic } from '../diagnostic.js';

/** Largest config file accepted; protects memory against a wrong path (e.g. a log file). */
export const MAX_INI_BYTES = 1024 * 1024;
/** Longest line accepted; a PEM key should go in a file: key, not inline. */
export const MAX_INI_LINE_LENGTH = 16 * 1024;
/** Most key=value entries per file; bounds the work of mapping and diagnostics. */
export const MAX_INI_ENTRIES = 4096;

export interface IniEntry {
  /** Section name as written ('' for keys before the first section header). */
  section: string;
  key: string;
  /** The value with quotes and escapes resolved, commas kept (for single-valued keys). */
  value: string;
  /** The value split at unquoted commas, items trimmed, empty items kept. */
  list: string[];
  /** 1-based line number. */
  line: number;
}

export interface IniSection {
  name: string;
  line: number;
}

export interface IniDocument {
  file: string;
  /** Entries in file order, duplicates already removed (last one wins). */
  entries: IniEntry[];
  /** Section headers in file order (a section may appear more than once). */
  sections: IniSection[];
  diagnostics: Diagnostic[];
}

/**
 * Parses INI text. Never throws: syntax problems become diagnostics (`file` is used only
 * to label them). Lines without `=` are ignored with a warning, as QSettings ignores them;
 * an unterminated quote or an unterminated section header is an error.
 */
export function parseIni(text: string, file: string): IniDocument {
  const doc: IniDocument = { file, entries: [], sections: [], diagnostics: [] };
  const err = (line: number, message: string): void => { doc.diagnostics.push({ file, line, message, severity: 'error' }); };
  const warn = (line: number, message: string): void => { doc.diagnostics.push({ file, line, message, severity: 'warning' }); };

  if (text.length > MAX_INI_BYTES) {
    err(0, `file too large (${text.length} bytes, limit ${MAX_INI_BYTES})`);
    return doc;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  const lines = text.split(/\r\n|\n|\r/);
  const byKey = new Map<string, number>(); // "section\0key" -> index in entries
  let section = '';
  let count = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i] ?? '';
    if (raw.length > MAX_INI_LINE_LENGTH) {
      err(lineNo, `line too long (${raw.length} characters, limit ${MAX_INI_LINE_LENGTH})`);
      continue;
    }
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;

    if (line.startsWith('[')) {
      const close = line.indexOf(']');
      if (close < 0) {
        err(lineNo, `section header is missing ']': ${line}`);
        continue;
      }
      const name = line.slice(1, close).trim();
      if (name === '') {
        err(lineNo, 'empty section name');
        continue;
      }
      const rest = line.slice(close + 1).trim();
      if (rest !== '' && !rest.startsWith(';') && !rest.startsWith('#')) {
        warn(lineNo, `text after section header [${name}] ignored: ${rest}`);
      }
      section = name;
      doc.sections.push({ name, line: lineNo });
      continue;
    }

    const eq = findUnquoted(line, '=');
    if (eq < 0) {
      warn(lineNo, `line ignored: expected key=value, [section] or a comment: ${truncate(line)}`);
      continue;
    }
    const key = line.slice(0, eq).trim();
    if (key === '') {
      warn(lineNo, 'line ignored: empty key before =');
      continue;
    }
    const parsed = parseIniValue(line.slice(eq + 1));
    if (typeof parsed === 'string') {
      err(lineNo, `${key}: ${parsed}`);
      continue;
    }
    if (++count > MAX_INI_ENTRIES) {
      err(lineNo, `too many entries (limit ${MAX_INI_ENTRIES}); rest of file ignored`);
      break;
    }
    const entry: IniEntry = { section, key, value: parsed.value, list: parsed.list, line: lineNo };
    const id = `${section}\0${key}`;
    const prev = byKey.get(id);
    if (prev !== undefined) {
      const old = doc.entries[prev]!;
      warn(lineNo, `${key} repeated in [${section}] (first set on line ${old.line}); the last value wins`);
      doc.entries[prev] = entry;
    } else {
      byKey.set(id, doc.entries.length);
      doc.entries.push(entry);
    }
  }
  return doc;
}

/**
 * Decodes the text after `=`: returns `{ value, list }` or an error message.
 * Trusts nothing; bounded by its input's length.
 */
export function parseIniValue(raw: string): { value: string; list: string[] } | string {
  const items: string[] = [];
  // Characters of the current item, each marked whether it came from quotes or an escape
  // (those survive trimming; unquoted whitespace at an item's edges does not).
  let chars: string[] = [];
  let kept: boolean[] = [];
  let inQuotes = false;
  const push = (c: string, keep: boolean): void => { chars.push(c); kept.push(keep); };
  const flush = (): void => {
    let a = 0;
    let b = chars.length;
    while (a < b && !kept[a] && /\s/.test(chars[a]!)) a++;
    while (b > a && !kept[b - 1] && /\s/.test(chars[b - 1]!)) b--;
    items.push(chars.slice(a, b).join(''));
    chars = [];
    kept = [];
  };
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '"') { inQuotes = !inQuotes; continue; }
    if (ch === '\\') {
      const next = raw[i + 1];
      if (next === undefined) { push('\\', false); continue; }
      i++;
      switch (next) {
        case 'n': push('\n', true); break;
        case 't': push('\t', true); break;
        case 'r': push('\r', true); break;
        case '0': push('\0', true); break;
        case 'x': {
          const hex = /^[0-9a-fA-F]{1,2}/.exec(raw.slice(i + 1, i + 3));
          if (!hex) return 'invalid \\x escape in value';
          push(String.fromCharCode(parseInt(hex[0], 16)), true);
          i += hex[0].length;
          break;
        }
        default: push(next, true);
      }
      continue;
    }
    if (!inQuotes && ch === ';') break;
    if (!inQuotes && ch === ',') { flush(); continue; }
    push(ch, inQuotes);
  }
  if (inQuotes) return 'unterminated quote in value';
  flush();
  return { value: items.join(','), list: items };
}

function findUnquoted(s: string, ch: string): number {
  let inQuotes = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') { i++; continue; }
    if (c === '"') inQuotes = !inQuotes;
    else if (c === ch && !inQuotes) return i;
  }
  return -1;
}

function truncate(s: string): string {
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}
