import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Repository root (this file runs from dist/bench/lib/). */
export const REPO_ROOT = path.resolve(here, '../../..');

/** The compiled gripd CLI. */
export const GRIPD_BIN = path.join(REPO_ROOT, 'dist/src/cli/gripd.js');

/** Compiled bench directory (for forking workers). */
export const BENCH_DIST = path.resolve(here, '..');

/**
 * Locates the pushpin-reference script: $PUSHPIN_REFERENCE, then shared/ beside the
 * clone (as CI lays it out), then /work/shared. Undefined when none exists.
 */
export function pushpinReferenceScript(): string | undefined {
  const candidates = [
    process.env.PUSHPIN_REFERENCE,
    path.resolve(REPO_ROOT, '../shared/tools/pushpin-reference'),
    '/work/shared/tools/pushpin-reference',
  ];
  return candidates.find((c): c is string => c !== undefined && c !== '' && existsSync(c));
}

/** True when the gripd CLI has been built. */
export function gripdBuilt(): boolean {
  return existsSync(GRIPD_BIN);
}
