/** What every scenario returns to bench/run.ts. */
export interface ScenarioResult {
  scenario: string;
  /** Human-readable table(s) already formatted. */
  text: string;
  /** Everything measured, for .bench-results/*.json. */
  data: unknown;
  /** Extra files (name -> content), e.g. a chart; run.ts writes them to .bench-results/. */
  files?: Record<string, string>;
}
