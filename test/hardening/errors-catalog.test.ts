/**
 * Keeps docs/errors.md in step with the code: every error class, every stable error code
 * and every member of an `…ErrorCode` union in src/ must be named (in backticks) in the
 * catalog. Reads the TypeScript sources, so it needs the repository checkout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/test/hardening -> repository root. */
const ROOT = path.resolve(here, '../../..');
/** Bound on files scanned (a runaway symlink loop must not hang the test). */
const MAX_SOURCE_FILES = 2000;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (out.length >= MAX_SOURCE_FILES) break;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Error class names, `code: 'X'` / `code = 'X'` values and `…ErrorCode` union members in one source text. */
function scanText(text: string): Set<string> {
  const found = new Set<string>();
  for (const m of text.matchAll(/\bclass\s+(\w*Error)\s+extends\b/g)) found.add(m[1]!);
  for (const m of text.matchAll(/\bcode\s*[:=]\s*'([A-Z][A-Z0-9_]+)'/g)) found.add(m[1]!);
  for (const m of text.matchAll(/\btype\s+\w*ErrorCode\s*=([^;]*);/g)) {
    for (const lit of m[1]!.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) found.add(lit[1]!);
  }
  return found;
}

/** What the catalog must mention, each with the file that declares it. */
function collectErrorNames(files: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of files) {
    const rel = path.relative(ROOT, file);
    for (const name of scanText(readFileSync(file, 'utf8'))) found.set(name, rel);
  }
  return found;
}

test('errors catalog: every error class and code in src/ is listed in docs/errors.md', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8');
  const names = collectErrorNames(sources(path.join(ROOT, 'src')));
  // Sanity: the scan itself works (these have existed since the first codecs).
  for (const known of ['InstructError', 'PUBLISH_INVALID', 'ROUTE_LINE_INVALID', 'TnetstringError']) {
    assert.ok(names.has(known), `scanner did not find ${known}`);
  }
  const missing = [...names].filter(([name]) => !doc.includes('`' + name + '`')).map(([name, file]) => `${name} (${file})`);
  assert.deepEqual(missing, [], `add these to docs/errors.md with the reply they map to:\n  ${missing.join('\n  ')}`);
});

test('errors catalog: the scanner sees classes, codes and union members', () => {
  const text = "export class FooError extends Error {}\nconst x = { code: 'BAR_CODE' };\nexport type FooErrorCode =\n  | 'A_ONE'\n  | 'B_TWO';\n";
  assert.deepEqual([...scanText(text)].sort(), ['A_ONE', 'BAR_CODE', 'B_TWO', 'FooError']);
});
