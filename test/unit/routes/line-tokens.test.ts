import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tokenizeRouteLine, RouteLineError, MAX_ROUTE_LINE_CHARS, MAX_OPTIONS_PER_SECTION } from '../../../src/routes/index.js';

/** Sections as [value, [[name, value], ...]] for compact comparisons. */
function tok(line: string): Array<[string, Array<[string, string]>]> {
  return tokenizeRouteLine(line).map((s) => [s.value, s.options.map((o) => [o.name, o.value] as [string, string])]);
}

function rejects(line: string, re: RegExp): void {
  assert.throws(() => tokenizeRouteLine(line), (e: unknown) => e instanceof RouteLineError && re.test(e.message));
}

// Vectors follow Pushpin's routesfiletest.cpp.
describe('routes tokenizer: Pushpin vectors', () => {
  test('one bare value', () => assert.deepEqual(tok('apple'), [['apple', []]]));
  test('two sections', () => assert.deepEqual(tok('apple banana'), [['apple', []], ['banana', []]]));
  test('surrounding spaces and a trailing comment', () => {
    assert.deepEqual(tok('  apple   banana  # comment'), [['apple', []], ['banana', []]]);
  });
  test('options, flag options and a quoted value with escapes', () => {
    assert.deepEqual(tok('apple,organic,type=gala,from="washington, \\"usa\\""'), [
      ['apple', [['organic', ''], ['type', 'gala'], ['from', 'washington, "usa"']]],
    ]);
  });
  test('options on several sections', () => {
    assert.deepEqual(tok('apple,organic banana cherry,type=bing'), [
      ['apple', [['organic', '']]],
      ['banana', []],
      ['cherry', [['type', 'bing']]],
    ]);
  });
  test('empty value before a comma', () => assert.deepEqual(tok(',organic'), [['', [['organic', '']]]]));
  test("first section with '=' is options on an empty value", () => {
    assert.deepEqual(tok('type=gala'), [['', [['type', 'gala']]]]);
  });
  test('unterminated quote is an error', () => rejects('apple,organic,type="gala', /unterminated quoted section starting at column 20/));
  test('trailing comma is an error', () => rejects('apple,organic,', /expected an option name after ',' at column 14/));
  test('option with empty name is an error', () => rejects('apple,organic,=gala', /option with an empty name \('=gala'\) at column 15/));
});

describe('routes tokenizer: quoting and comments', () => {
  test('blank and comment-only lines have no sections', () => {
    assert.deepEqual(tok(''), []);
    assert.deepEqual(tok('    '), []);
    assert.deepEqual(tok('# all comment'), []);
    assert.deepEqual(tok('   # indented comment'), []);
  });
  test("'#' right after a value ends the line", () => {
    assert.deepEqual(tok('apple#x banana'), [['apple', []]]);
    assert.deepEqual(tok('apple,a=1#x banana'), [['apple', [['a', '1']]]]);
  });
  test("quoted '#', ',' and ' ' are literal", () => {
    assert.deepEqual(tok('"a #b,c" d'), [['a #b,c', []], ['d', []]]);
  });
  test('quotes may cover part of a value and join with the rest', () => {
    assert.deepEqual(tok('ab"c d"ef,x=1"2 3"4'), [['abc def', [['x', '12 34']]]]);
  });
  test('quoted name=value is split at the first =', () => {
    assert.deepEqual(tok('a,"header=X: y=z"'), [['a', [['header', 'X: y=z']]]]);
  });
  test('empty quotes give an empty value', () => assert.deepEqual(tok('a,x="" b'), [['a', [['x', '']]], ['b', []]]));
  test('a tab is not a separator', () => assert.deepEqual(tok('*\t1.2.3.4:80'), [['*\t1.2.3.4:80', []]]));
  test('options-only first section at column 1 with more sections', () => {
    assert.deepEqual(tok('id=a,debug test'), [['', [['id', 'a'], ['debug', '']]], ['test', []]]);
  });
  test("quoted '=' in the first section also makes it options", () => {
    assert.deepEqual(tok('"id=a" test'), [['', [['id', 'a']]], ['test', []]]);
  });
  test('repeated options are all kept in order', () => {
    assert.deepEqual(tok('a,h=1,h=2'), [['a', [['h', '1'], ['h', '2']]]]);
  });
});

describe('routes tokenizer: errors', () => {
  test('backslash at the end inside quotes', () => rejects('a,x="ab\\', /unterminated escape sequence/));
  test('unknown escape', () => rejects('a,x="a\\nb"', /unexpected escape character 'n' at column 8/));
  test('options-only first section after spaces (Pushpin rejects it)', () => rejects('  id=a test', /does not start at column 1; write ',id=a'/));
  test("'=' in a target", () => rejects('* host=x', /target 'host=x' at column 3 contains '='/));
  test('comma then space', () => rejects('a, b', /expected an option name after ','/));
  test('line too long', () => rejects('a'.repeat(MAX_ROUTE_LINE_CHARS + 1), /line too long: 16385 characters \(limit 16384\)/));
  test('too many options', () => rejects('a' + ',x'.repeat(MAX_OPTIONS_PER_SECTION + 1), /too many options in one section/));
  test('too many sections', () => rejects('a' + ' b'.repeat(70), /too many targets on one line \(limit 64\)/));
  test('error carries source and column', () => {
    try {
      tokenizeRouteLine('a,=1', 'routes:7');
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(e instanceof RouteLineError);
      assert.equal(e.source, 'routes:7');
      assert.equal(e.column, 3);
      assert.equal(e.code, 'ROUTE_LINE_INVALID');
    }
  });
});
