import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoutesText, RouteTable, rewritePath, parseRouteLine, normalizeHost, type RouteQuery } from '../../../src/routes/index.js';

/** Builds a table where each line's route is tagged by its prefix= value. */
function table(...lines: string[]): RouteTable {
  const { routes, diagnostics } = parseRoutesText(lines.join('\n'), 'routes');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return new RouteTable(routes);
}
const Q: RouteQuery = { host: 'example.com', path: '/', ssl: false, proto: 'http' };
function pick(t: RouteTable, q: Partial<RouteQuery>): string | undefined {
  return t.match({ ...Q, ...q })?.prefix;
}

describe('route table: host selection', () => {
  test('exact host before *', () => {
    const t = table('*,prefix=star test', 'example.com,prefix=exact test');
    assert.equal(pick(t, {}), 'exact');
    assert.equal(pick(t, { host: 'other.com' }), 'star');
  });
  test('a host with routes of its own never falls back to *', () => {
    const t = table('*,prefix=star test', 'example.com,path_beg=/api,prefix=api test');
    assert.equal(pick(t, { path: '/api/x' }), 'api');
    assert.equal(pick(t, { path: '/other' }), undefined);
  });
  test('no * routes: unknown hosts get no route', () => {
    assert.equal(pick(table('example.com,prefix=e test'), { host: 'x.org' }), undefined);
  });
  test('host matching ignores port and case', () => {
    const t = table('example.com,prefix=e test', '*,prefix=s test');
    assert.equal(pick(t, { host: 'EXAMPLE.com:8080' }), 'e');
    assert.equal(pick(t, { host: 'Example.Com' }), 'e');
  });
  test('IPv6 host with port', () => {
    const t = table('::1,prefix=v6 test', '*,prefix=s test');
    assert.equal(pick(t, { host: '[::1]:7999' }), 'v6');
    assert.equal(normalizeHost('[::1]'), '::1');
    assert.equal(normalizeHost('fe80::1'), 'fe80::1');
  });
  test('empty Host goes to *', () => assert.equal(pick(table('*,prefix=s test'), { host: '' }), 's'));
  test('id-only routes are never selected by host', () => {
    const t = table('id=only,prefix=id test');
    assert.equal(pick(t, {}), undefined);
    assert.equal(t.byId('only')?.prefix, 'id');
  });
});

describe('route table: specificity within a host', () => {
  test('a route with proto beats one without, whatever the path length', () => {
    const t = table('*,path_beg=/long/path,prefix=path test', '*,proto=http,prefix=proto test');
    assert.equal(pick(t, { path: '/long/path/x' }), 'proto');
    const r = table('*,proto=http,prefix=proto test', '*,path_beg=/long/path,prefix=path test');
    assert.equal(pick(r, { path: '/long/path/x' }), 'proto');
  });
  test('proto must match the request', () => {
    const t = table('*,proto=ws,prefix=ws test', '*,prefix=any test');
    assert.equal(pick(t, { proto: 'ws' }), 'ws');
    assert.equal(pick(t, { proto: 'http' }), 'any');
  });
  test('longest path_beg wins, in either line order', () => {
    const a = table('*,path_beg=/a,prefix=short test', '*,path_beg=/a/b,prefix=long test', '*,prefix=none test');
    const b = table('*,path_beg=/a/b,prefix=long test', '*,prefix=none test', '*,path_beg=/a,prefix=short test');
    for (const t of [a, b]) {
      assert.equal(pick(t, { path: '/a/b/c' }), 'long');
      assert.equal(pick(t, { path: '/a/c' }), 'short');
      assert.equal(pick(t, { path: '/x' }), 'none');
    }
  });
  test('path_beg is a plain prefix (no segment boundary)', () => {
    assert.equal(pick(table('*,path_beg=/api,prefix=api test'), { path: '/apix' }), 'api');
  });
  test('path_beg ignores the query string', () => {
    assert.equal(pick(table('*,path_beg=/a?b,prefix=q test', '*,prefix=n test'), { path: '/a?b' }), 'n');
  });
  test('ssl: a route with ssl beats one without at equal path', () => {
    const t = table('*,prefix=any test', '*,ssl=yes,prefix=tls test');
    assert.equal(pick(t, { ssl: true }), 'tls');
    assert.equal(pick(t, { ssl: false }), 'any');
  });
  test('ssl must match the request', () => {
    const t = table('*,ssl=no,prefix=plain test');
    assert.equal(pick(t, { ssl: true }), undefined);
    assert.equal(pick(t, { ssl: false }), 'plain');
  });
  // Pinned against Pushpin 1.36: these two pairs differ only in line order.
  test('Pushpin quirk: a later ssl route beats an earlier longer path_beg', () => {
    const t = table('*,path_beg=/q/long,prefix=A test', '*,path_beg=/q,ssl=no,prefix=B test');
    assert.equal(pick(t, { path: '/q/long/x' }), 'B');
  });
  test('Pushpin quirk: a later longer path_beg beats an earlier ssl route', () => {
    const t = table('*,path_beg=/z,ssl=no,prefix=C test', '*,path_beg=/z/long,prefix=D test');
    assert.equal(pick(t, { path: '/z/long/x' }), 'D');
  });
  test('rules stack: proto first, then an ssl route over a proto-only one; path over ssl when later', () => {
    const t = table('*,path_beg=/a,prefix=first test', '*,path_beg=/b,prefix=other test', '*,proto=http,prefix=p1 test', '*,ssl=no,proto=http,prefix=p2 test');
    assert.equal(pick(t, { path: '/a' }), 'p2');
    const u = table('*,ssl=no,prefix=s test', '*,ssl=yes,prefix=y test', '*,path_beg=/x,prefix=x test');
    assert.equal(pick(u, { path: '/x' }), 'x');
  });
  test('path_beg length counts UTF-8 bytes', () => {
    const t = table('*,path_beg=/é,prefix=e test', '*,path_beg=/ab,prefix=ab test');
    assert.equal(pick(t, { path: '/é' }), 'e');
  });
});

describe('route table: duplicates and ids', () => {
  test('a duplicate condition keeps the first route', () => {
    const a = parseRouteLine('*,path_beg=/s,prefix=s1 test', 'r:1');
    const b = parseRouteLine('*,path_beg=/s,prefix=s2 test', 'r:2');
    const t = new RouteTable([a, b]);
    assert.equal(t.routes.length, 1);
    assert.equal(pick(t, { path: '/s' }), 's1');
  });
  test('same condition on different hosts is not a duplicate', () => {
    const t = new RouteTable([parseRouteLine('a.com test', 'r:1'), parseRouteLine('b.com test', 'r:2')]);
    assert.equal(t.routes.length, 2);
  });
  test('byId finds explicit and generated ids', () => {
    const t = table('*,id=main,prefix=m test', 'example.com,path_beg=/x,prefix=g test');
    assert.equal(t.byId('main')?.prefix, 'm');
    assert.equal(t.byId('example.com,*,*,/x')?.prefix, 'g');
    assert.equal(t.byId('nope'), undefined);
  });
  test('a shared id reaches neither route', () => {
    const t = new RouteTable([parseRouteLine('a.com,id=x test', 'r:1'), parseRouteLine('b.com,id=x test', 'r:2')]);
    assert.equal(t.byId('x'), undefined);
    assert.equal(t.isIdShared('x'), true);
    assert.equal(t.isIdShared('y'), false);
  });
  test('routes are frozen and in file order', () => {
    const t = table('b.com test', 'a.com test');
    assert.deepEqual(t.routes.map((r) => r.domain), ['b.com', 'a.com']);
    assert.ok(Object.isFrozen(t.routes));
  });
});

describe('route table: resolve with Pushpin-Route', () => {
  const t = new RouteTable([
    parseRouteLine('*,prefix=star test', 'r:1'),
    parseRouteLine('id=api,path_beg=/api,prefix=api test', 'r:2'),
    parseRouteLine('a.com,id=dup,prefix=d1 test', 'r:3'),
    parseRouteLine('b.com,id=dup,prefix=d2 test', 'r:4'),
  ]);
  const R = (q: Partial<RouteQuery> & { routeId?: string }): string | undefined => t.resolve({ ...Q, ...q })?.prefix;
  test('no id: host lookup', () => assert.equal(R({}), 'star'));
  test('known id with matching path', () => assert.equal(R({ routeId: 'api', path: '/api/x' }), 'api'));
  test('known id with other path: no route', () => assert.equal(R({ routeId: 'api', path: '/x' }), undefined));
  test('unknown id: no route, no fallback', () => {
    assert.equal(R({ routeId: 'nope' }), undefined);
    assert.equal(R({ routeId: 'nope', proto: 'ws' }), undefined);
  });
  test('shared id: host lookup (Pushpin 1.36)', () => {
    assert.equal(R({ routeId: 'dup' }), 'star');
    assert.equal(R({ routeId: 'dup', proto: 'ws' }), 'star');
  });
  test('empty id is no id', () => assert.equal(R({ routeId: '' }), 'star'));
});

describe('rewritePath', () => {
  const r = (line: string) => parseRouteLine(line, 'r:1');
  test('no rewrite options: unchanged', () => assert.equal(rewritePath(r('* test'), '/a/b?c=1'), '/a/b?c=1'));
  test('replace_beg swaps the path_beg prefix', () => {
    assert.equal(rewritePath(r('*,path_beg=/api/,replace_beg=/v2/ test'), '/api/items?x=1'), '/v2/items?x=1');
  });
  test('replace_beg empty on the whole path gives "/" (as Pushpin sends)', () => {
    assert.equal(rewritePath(r('*,path_beg=/e,replace_beg= test'), '/e'), '/');
    assert.equal(rewritePath(r('*,path_beg=/e,replace_beg= test'), '/e?x=1'), '/?x=1');
  });
  test('replace_beg without path_beg prepends', () => {
    assert.equal(rewritePath(r('*,replace_beg=/pre test'), '/x'), '/pre/x');
  });
  test('replace_beg takes precedence over path_rem', () => {
    assert.equal(rewritePath(r('*,path_beg=/ab,path_rem=1,replace_beg=/z test'), '/abc'), '/zc');
  });
  test('path_rem strips bytes', () => {
    assert.equal(rewritePath(r('*,path_beg=/api,path_rem=4 test'), '/api/x'), '/x');
    assert.equal(rewritePath(r('*,path_rem=1 test'), '/abc'), 'abc');
    assert.equal(rewritePath(r('*,path_rem=10 test'), '/abc'), '/');
  });
  test('path_rem zero or negative does nothing', () => {
    assert.equal(rewritePath(r('*,path_rem=0 test'), '/abc'), '/abc');
    assert.equal(rewritePath(r('*,path_rem=-3 test'), '/abc'), '/abc');
  });
  test('path_rem counts UTF-8 bytes of a raw path', () => {
    assert.equal(rewritePath(r('*,path_beg=/é,replace_beg=/e test'), '/é/x'), '/e/x');
  });
});
