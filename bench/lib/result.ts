/** What every scenario returns to bench/run.ts. */
export interface ScenarioResult {
  scenario: string;
  /** Human-readable table(s) already formatted. */
  text: string;
  /** Everything measured, for .bench-results/*.json. */
  data: unknown;
}
