/**
 * Whole routes-file text -> routes + diagnostics. Pure. A bad line is reported and
 * skipped; the others still load, as Pushpin does.
 */
import type { Diagnostic } from '../diagnostic.js';
import { RouteLineError } from './errors.js';
import { tokenizeRouteLine } from './line-tokens.js';
import { parseRouteLineDetailed } from './routes-line.js';
import { conditionKey } from './table.js';
import type { Route } from './types.js';

/** Most lines read from one routes text; protects memory and startup time from a runaway file. */
export const MAX_ROUTES_LINES = 100_000;

/**
 * Parses routes text (a routes file, or --route lines joined with '\n').
 *
 * Lines end at '\n' or '\r\n'; a leading UTF-8 BOM is ignored. Blank and comment lines are
 * skipped silently. Rejected lines become 'error' diagnostics and are left out; lines that
 * load with a remark become 'warning' diagnostics. A line whose domain, proto, ssl and
 * path_beg repeat an earlier line's is left out with an 'error' (Pushpin: "skipping
 * duplicate condition"); a repeated id gives a 'warning' (neither route is reachable by id).
 *
 * @param file display name used in diagnostics and Route.source (`file:line`)
 */
export function parseRoutesText(text: string, file: string): { routes: Route[]; diagnostics: Diagnostic[] } {
  const routes: Route[] = [];
  const diagnostics: Diagnostic[] = [];
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const conditions = new Map<string, Map<string, number>>();
  const ids = new Map<string, number>();

  let lineNo = 0;
  let start = 0;
  while (start <= body.length) {
    let end = body.indexOf('\n', start);
    if (end === -1) end = body.length;
    if (start === body.length && end === start) break; // No line after a final newline.
    lineNo++;
    if (lineNo > MAX_ROUTES_LINES) {
      diagnostics.push({ file, line: lineNo, message: `too many lines (limit ${MAX_ROUTES_LINES}); the rest is ignored`, severity: 'error' });
      break;
    }
    let line = body.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    start = end + 1;

    const source = `${file}:${lineNo}`;
    try {
      if (tokenizeRouteLine(line, source).length === 0) continue;
      const { route, warnings } = parseRouteLineDetailed(line, source);
      for (const w of warnings) diagnostics.push({ file, line: lineNo, message: w, severity: 'warning' });

      if (route.domain !== '') {
        let keys = conditions.get(route.domain);
        if (keys === undefined) conditions.set(route.domain, (keys = new Map()));
        const key = conditionKey(route);
        const prev = keys.get(key);
        if (prev !== undefined) {
          diagnostics.push({
            file,
            line: lineNo,
            message: `skipping duplicate condition (same domain, proto, ssl and path_beg as line ${prev})`,
            severity: 'error',
          });
          continue;
        }
        keys.set(key, lineNo);
      }
      const prevId = ids.get(route.id);
      if (prevId !== undefined) {
        diagnostics.push({
          file,
          line: lineNo,
          message: `id '${route.id}' is also used on line ${prevId}; neither route can be selected by id`,
          severity: 'warning',
        });
      } else ids.set(route.id, lineNo);
      routes.push(route);
    } catch (err) {
      const message = err instanceof RouteLineError ? err.message : `unexpected parser failure: ${String(err)}`;
      diagnostics.push({ file, line: lineNo, message, severity: 'error' });
    }
  }
  return { routes, diagnostics };
}
