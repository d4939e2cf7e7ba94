/**
 * A problem found in a config or routes file, reported as `file:line: message`.
 */
export interface Diagnostic {
  file: string;
  /** 1-based line number; 0 when the problem is not tied to a line. */
  line: number;
  message: string;
  severity: 'error' | 'warning';
}

export function formatDiagnostic(d: Diagnostic): string {
  return d.line > 0 ? `${d.file}:${d.line}: ${d.message}` : `${d.file}: ${d.message}`;
}
