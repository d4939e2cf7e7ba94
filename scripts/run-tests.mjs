#!/usr/bin/env node
// Finds the compiled test files (dist/test/**/*.test.js) and runs them with node's test
// runner. Node 20's --test does not expand globs itself. Arguments narrow the set to
// files whose path contains any of them, e.g. `npm test -- unit/routes`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const root = 'dist/test';
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.test.js')) files.push(p);
  }
})(root);
const chosen = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (chosen.length === 0) {
  console.error(`no test files under ${root} match ${filters.join(' ') || '*'}`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...chosen], {
  stdio: 'inherit',
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
