import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatGripLast, isGripResponse, parseGripLastHeader, stripGripHeaders } from '../../../src/grip/headers.js';
import { parseHeaderParams, splitHeaderList } from '../../../src/grip/header-params.js';

describe('grip headers: recognising GRIP responses', () => {
  test('any Grip-* header, in any case', () => {
    assert.equal(isGripResponse([['grip-hold', 'stream']]), true);
    assert.equal(isGripResponse([['GRIP-X-Anything', '']]), true);
    assert.equal(isGripResponse([['Content-Type', 'text/plain'], ['X-Grip', '1']]), false);
  });
  test('Content-Type application/grip-instruct, with parameters', () => {
    assert.equal(isGripResponse([['Content-Type', 'application/grip-instruct']]), true);
    assert.equal(isGripResponse([['content-type', 'application/grip-instruct; charset=utf-8']]), true);
    assert.equal(isGripResponse([['Content-Type', 'application/json']]), false);
  });
  test('stripGripHeaders keeps the rest in order', () => {
    assert.deepEqual(stripGripHeaders([['A', '1'], ['Grip-Sig', 'x'], ['B', '2']]), [['A', '1'], ['B', '2']]);
  });
});

describe('grip headers: Grip-Last', () => {
  test('formats one value per channel as Pushpin', () => {
    assert.deepEqual(formatGripLast([{ name: 'a', id: '1' }, { name: 'b', id: 'x-2' }]), ['a; last-id=1', 'b; last-id=x-2']);
  });
  test('quotes ids that need it', () => {
    assert.deepEqual(formatGripLast([{ name: 'a', id: 'x;y' }]), ['a; last-id="x;y"']);
  });
  test('parses repeated and comma-joined headers', () => {
    const want = [{ name: 'a', id: '1' }, { name: 'b', id: '2' }];
    assert.deepEqual(parseGripLastHeader([['Grip-Last', 'a; last-id=1'], ['grip-last', 'b; last-id=2']]), want);
    assert.deepEqual(parseGripLastHeader([['Grip-Last', 'a; last-id=1, b; last-id=2']]), want);
  });
  test('round trip for names without separators and any id', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.:\-/]{1,20}$/);
    const id = fc.string({ maxLength: 20 }).filter((s) => !/[\x00-\x1f\x7f]/.test(s));
    fc.assert(
      fc.property(fc.array(fc.record({ name, id }), { maxLength: 5 }), (records) => {
        const entries = records.map((r) => ({ name: r.name, id: r.id }));
        const headers = formatGripLast(entries).map((v): [string, string] => ['Grip-Last', v]);
        assert.deepEqual(parseGripLastHeader(headers), entries);
        const joined: Array<[string, string]> = headers.length ? [['Grip-Last', headers.map((h) => h[1]).join(', ')]] : [];
        assert.deepEqual(parseGripLastHeader(joined), entries);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('grip headers: Pushpin-style splitting and parameters', () => {
  test('commas inside quotes do not split', () => {
    assert.deepEqual(splitHeaderList('a; x="1,2", b'), ['a; x="1,2"', 'b']);
    assert.deepEqual(splitHeaderList('a,'), ['a']);
    assert.deepEqual(splitHeaderList(',a'), ['', 'a']);
  });
  test('parameters: quoted values with escapes, bare flags, trimming', () => {
    assert.deepEqual(parseHeaderParams('first ; a = 1; b="x\\"y"; flag'), [['first', ''], ['a', '1'], ['b', 'x"y'], ['flag', '']]);
    assert.deepEqual(parseHeaderParams('k=v', true), [['k', 'v']]);
    assert.equal(parseHeaderParams('a; b="open'), null);
    assert.equal(parseHeaderParams('a; b="x\\'), null);
  });
  test('split input at every byte gives the same parse when rejoined', () => {
    const v = 'apple; prev-id="i,1"; filter=f1, banana';
    for (let i = 0; i <= v.length; i++) {
      assert.deepEqual(splitHeaderList(v.slice(0, i) + v.slice(i)), splitHeaderList(v));
    }
  });
});
