/**
 * Public surface of src/routes: Pushpin's routes file (parser, table, watched loader).
 */
export type { Route, Target, RouteCondition } from './types.js';
export { RouteLineError } from './errors.js';
export {
  MAX_ROUTE_LINE_CHARS,
  MAX_SECTIONS_PER_LINE,
  MAX_OPTIONS_PER_SECTION,
  tokenizeRouteLine,
  type LineSection,
  type LineOption,
} from './line-tokens.js';
export {
  parseRouteLine,
  parseRouteLineDetailed,
  idFromCondition,
  MAX_TARGETS_PER_ROUTE,
  MAX_HEADERS_PER_ROUTE,
  MAX_SUBSCRIPTIONS_PER_TARGET,
  type ParsedRouteLine,
} from './routes-line.js';
export { parseRoutesText, MAX_ROUTES_LINES } from './routes-text.js';
export { RouteTable, rewritePath, normalizeHost, conditionKey, type RouteQuery } from './table.js';
export {
  watchRoutesFile,
  resolveRouteFiles,
  MAX_ROUTES_FILE_BYTES,
  MAX_KEY_FILE_BYTES,
  DEFAULT_RELOAD_DEBOUNCE_MS,
  type WatchRoutesOptions,
  type RoutesWatch,
} from './loader.js';
