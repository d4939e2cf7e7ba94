/**
 * Splits one routes-file line into sections, as Pushpin's routes tokenizer does:
 *
 *   section  := value ( ',' option )*
 *   option   := name [ '=' value ]
 *
 * Sections are separated by runs of spaces (only ' ': a tab is an ordinary character);
 * `#` outside quotes ends the line. Double quotes may wrap any part of a value or option
 * and are removed; inside them only `\\` and `\"` escapes exist. A first section whose
 * text contains '=' has an empty value and is read as options (so `id=x target` and
 * `,id=x target` are the same). Pure; throws RouteLineError.
 */
import { RouteLineError } from './errors.js';

/** Longest line the tokenizer accepts; protects against megabyte lines held in memory per option. */
export const MAX_ROUTE_LINE_CHARS = 16_384;
/** Most sections (condition + targets) on one line; bounds the per-line arrays. */
export const MAX_SECTIONS_PER_LINE = 65;
/** Most options on one section; bounds the per-section option list. */
export const MAX_OPTIONS_PER_SECTION = 256;

export interface LineOption {
  name: string;
  /** '' when written without '='. */
  value: string;
  /** True when written with '=' (even `name=`). */
  hasValue: boolean;
  /** 1-based column where the option starts. */
  column: number;
}

export interface LineSection {
  value: string;
  /** Options in the order written (repeats kept). */
  options: LineOption[];
  /** 1-based column where the section starts. */
  column: number;
}

const enum State {
  Separator,
  Value,
  Option,
}

/**
 * Returns the sections of `line` ([] for a blank or comment-only line).
 * @throws RouteLineError naming the column of a bad quote, escape or empty option
 */
export function tokenizeRouteLine(line: string, source = ''): LineSection[] {
  if (line.length > MAX_ROUTE_LINE_CHARS) {
    throw new RouteLineError(`line too long: ${line.length} characters (limit ${MAX_ROUTE_LINE_CHARS})`, source);
  }
  const out: LineSection[] = [];
  let state: State = State.Separator;
  let i = 0;
  // Where the current section's leading spaces began: Pushpin re-reads an options-only
  // first section from there, so only one at column 1 works.
  let sepStart = 0;
  const n = line.length;

  // Each iteration emits at most one section or option, so the loop is bounded by the line length.
  for (;;) {
    if (state === State.Separator) {
      sepStart = i;
      while (i < n && line[i] === ' ') i++;
      if (i >= n || line[i] === '#') return out;
      state = State.Value;
      continue;
    }

    const start = i;
    let part = '';
    let at: number;
    for (;;) {
      at = findDelimiter(line, i);
      if (at < n && line[at] === '"') {
        part += line.slice(i, at);
        const quoteCol = at + 1;
        at++;
        let closed = false;
        while (at < n) {
          const c = line[at];
          if (c === '\\') {
            at++;
            if (at >= n) throw new RouteLineError(`unterminated escape sequence at column ${at}`, source, at);
            const e = line[at];
            if (e === '\\' || e === '"') part += e;
            else {
              throw new RouteLineError(
                `unexpected escape character '${String(e)}' at column ${at + 1} (inside quotes only \\\\ and \\" are allowed)`,
                source,
                at + 1,
              );
            }
          } else if (c === '"') {
            closed = true;
            break;
          } else {
            part += c;
          }
          at++;
        }
        if (!closed) throw new RouteLineError(`unterminated quoted section starting at column ${quoteCol}`, source, quoteCol);
        i = at + 1;
        continue;
      }
      part += line.slice(i, at);
      break;
    }

    if (state === State.Value) {
      if (part.includes('=')) {
        if (out.length > 0) {
          throw new RouteLineError(`target '${part}' at column ${start + 1} contains '='`, source, start + 1);
        }
        if (sepStart !== start) {
          throw new RouteLineError(
            `condition '${part}' is options only but does not start at column 1; write ',${part}' instead`,
            source,
            start + 1,
          );
        }
        // The first section holds options only: emit an empty value and re-read as options.
        pushSection(out, '', start + 1, source);
        i = start;
        state = State.Option;
        continue;
      }
      pushSection(out, part, start + 1, source);
    } else {
      if (part === '') throw new RouteLineError(`expected an option name after ',' at column ${start}`, source, start);
      const eq = part.indexOf('=');
      const name = eq === -1 ? part : part.slice(0, eq);
      if (name === '') throw new RouteLineError(`option with an empty name ('${part}') at column ${start + 1}`, source, start + 1);
      const last = out[out.length - 1];
      // Unreachable: an option always follows a section; kept for the type checker.
      if (last === undefined) throw new RouteLineError('option without a section', source, start + 1);
      if (last.options.length >= MAX_OPTIONS_PER_SECTION) {
        throw new RouteLineError(`too many options in one section (limit ${MAX_OPTIONS_PER_SECTION})`, source, start + 1);
      }
      last.options.push({ name, value: eq === -1 ? '' : part.slice(eq + 1), hasValue: eq !== -1, column: start + 1 });
    }

    if (at < n && line[at] === ',') {
      at++;
      state = State.Option;
    } else {
      state = State.Separator;
    }
    i = at;
  }
}

function pushSection(out: LineSection[], value: string, column: number, source: string): void {
  if (out.length >= MAX_SECTIONS_PER_LINE) {
    throw new RouteLineError(`too many targets on one line (limit ${MAX_SECTIONS_PER_LINE - 1})`, source, column);
  }
  out.push({ value, options: [], column });
}

/** Index of the next '"', ',', ' ' or '#' at or after `from`, or the line length. */
function findDelimiter(line: string, from: number): number {
  for (let k = from; k < line.length; k++) {
    const c = line.charCodeAt(k);
    if (c === 0x22 || c === 0x2c || c === 0x20 || c === 0x23) return k;
  }
  return line.length;
}
