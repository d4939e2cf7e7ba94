import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseRoutesText, MAX_ROUTES_LINES } from '../../../src/routes/index.js';
import { formatDiagnostic } from '../../../src/diagnostic.js';

const FIXTURE = fileURLToPath(new URL('../../../../test/fixtures/routes/mixed.routes', import.meta.url));

describe('routes text', () => {
  test('fixture: good lines load, each bad line is reported as file:line and skipped', () => {
    const { routes, diagnostics } = parseRoutesText(readFileSync(FIXTURE, 'utf8'), 'routes');
    assert.deepEqual(routes.map((r) => r.source), ['routes:3', 'routes:4', 'routes:5', 'routes:6', 'routes:13']);
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      "routes:6: unknown route option 'bogus' ignored",
      "routes:7: proto must be 'http' or 'ws', got 'wss'",
      'routes:8: path_beg cannot be empty',
      'routes:9: skipping duplicate condition (same domain, proto, ssl and path_beg as line 4)',
      "routes:10: header must be 'name:value', got 'NoColon'",
      "routes:11: target 'localhost' has a bad format: expected host:port, [v6addr]:port, test, zhttp/<spec> or zhttpreq/<spec>",
      "routes:12: target '127.0.0.1:99999' has an invalid port '99999' (must be 1-65535)",
      'routes:14: unterminated quoted section starting at column 11',
      'routes:15: missing target: a route needs a condition and at least one target',
      'routes:16: missing target: a route needs a condition and at least one target (tabs do not separate fields; use spaces)',
    ]);
    assert.deepEqual(
      diagnostics.map((d) => d.severity),
      ['warning', 'error', 'error', 'error', 'error', 'error', 'error', 'error', 'error', 'error'],
    );
    const api = routes[1];
    assert.deepEqual(api?.targets.map((t) => [t.host, t.port, t.ssl, t.hostHeader]), [
      ['10.0.0.1', 80, false, undefined],
      ['10.0.0.2', 80, true, 'api.internal'],
    ]);
  });
  test('empty text and comments only: no routes, no diagnostics', () => {
    assert.deepEqual(parseRoutesText('', 'r'), { routes: [], diagnostics: [] });
    assert.deepEqual(parseRoutesText('# x\n\n   \n', 'r'), { routes: [], diagnostics: [] });
  });
  test('CRLF line ends and a BOM', () => {
    const { routes, diagnostics } = parseRoutesText('\uFEFF* test\r\nexample.com test\r\n', 'r');
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(routes.map((r) => [r.domain, r.source]), [['*', 'r:1'], ['example.com', 'r:2']]);
  });
  test('a repeated id warns but both routes load', () => {
    const { routes, diagnostics } = parseRoutesText('a.com,id=x test\nb.com,id=x test', 'r');
    assert.equal(routes.length, 2);
    assert.deepEqual(diagnostics.map(formatDiagnostic), ["r:2: id 'x' is also used on line 1; neither route can be selected by id"]);
  });
  test('the same condition on different domains is fine', () => {
    assert.equal(parseRoutesText('a.com test\nb.com test\n* test', 'r').routes.length, 3);
  });
  test('line count is bounded', () => {
    const { routes, diagnostics } = parseRoutesText('\n'.repeat(MAX_ROUTES_LINES + 5) + '* test', 'r');
    assert.equal(routes.length, 0);
    assert.deepEqual(diagnostics.map(formatDiagnostic), [`r:${MAX_ROUTES_LINES + 1}: too many lines (limit ${MAX_ROUTES_LINES}); the rest is ignored`]);
  });
  test('garbage never throws', () => {
    const junk = Array.from({ length: 200 }, (_, i) => String.fromCharCode((i * 7919) % 256).repeat(i % 13)).join('\n');
    const { diagnostics } = parseRoutesText(junk, 'r');
    assert.ok(diagnostics.every((d) => d.line > 0 && d.message.length > 0));
  });
});
