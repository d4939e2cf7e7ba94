/**
 * The one error type the routes-line parser throws.
 */
export class RouteLineError extends Error {
  /** Stable code for the error catalog. */
  readonly code = 'ROUTE_LINE_INVALID';
  /** Where the line came from, e.g. "routes:3" ('' when unknown). */
  readonly source: string;
  /** 1-based column of the offending character, when the problem has one. */
  readonly column: number | undefined;

  /**
   * @param message what is wrong, without the source prefix (diagnostics add `file:line: `)
   */
  constructor(message: string, source = '', column?: number) {
    super(message);
    this.name = 'RouteLineError';
    this.source = source;
    this.column = column;
  }
}
