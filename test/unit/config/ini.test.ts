import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseIni, parseIniValue, MAX_INI_BYTES, MAX_INI_ENTRIES, MAX_INI_LINE_LENGTH } from '../../../src/config/ini.js';
import { formatDiagnostic } from '../../../src/diagnostic.js';

const msgs = (text: string): string[] => parseIni(text, 'p.conf').diagnostics.map(formatDiagnostic);
const entries = (text: string): Array<[string, string, string, number]> =>
  parseIni(text, 'p.conf').entries.map((e) => [e.section, e.key, e.value, e.line]);

describe('ini: structure', () => {
  test('ini: reads sections, keys and line numbers', () => {
    assert.deepEqual(entries('[global]\nrundir=run\n\n[runner]\nhttp_port=7999\n'), [
      ['global', 'rundir', 'run', 2],
      ['runner', 'http_port', '7999', 5],
    ]);
  });

  test('ini: # and ; comment lines are skipped, also when indented', () => {
    assert.deepEqual(entries('# a=b\n  ; c=d\n[proxy]\n\t# e=f\ndebug=true\n'), [['proxy', 'debug', 'true', 5]]);
  });

  test('ini: whitespace around keys, values and section names is trimmed', () => {
    assert.deepEqual(entries('  [ proxy ]  \n  sig_iss   =   pushpin   \n'), [['proxy', 'sig_iss', 'pushpin', 2]]);
  });

  test('ini: CRLF and CR line endings count lines the same way', () => {
    assert.deepEqual(entries('[a]\r\nx=1\r\ny=2\rz=3'), [
      ['a', 'x', '1', 2],
      ['a', 'y', '2', 3],
      ['a', 'z', '3', 4],
    ]);
  });

  test('ini: a leading byte order mark is ignored', () => {
    assert.deepEqual(entries('\ufeff[a]\nx=1\n'), [['a', 'x', '1', 2]]);
  });

  test('ini: keys before any section land in section ""', () => {
    assert.deepEqual(entries('x=1\n[a]\n'), [['', 'x', '1', 1]]);
  });

  test('ini: an empty value is kept as ""', () => {
    assert.deepEqual(entries('[proxy]\ncdn_loop=\n'), [['proxy', 'cdn_loop', '', 2]]);
  });

  test('ini: only the first = separates key and value', () => {
    assert.deepEqual(entries('[a]\nk=v=w\n'), [['a', 'k', 'v=w', 2]]);
  });

  test('ini: a repeated key: last wins, warning names both lines', () => {
    const doc = parseIni('[a]\nk=1\nk=2\n', 'p.conf');
    assert.deepEqual(doc.entries.map((e) => [e.value, e.line]), [['2', 3]]);
    assert.deepEqual(doc.diagnostics.map(formatDiagnostic), ['p.conf:3: k repeated in [a] (first set on line 2); the last value wins']);
    assert.equal(doc.diagnostics[0]!.severity, 'warning');
  });

  test('ini: a section may appear twice; keys merge', () => {
    assert.deepEqual(entries('[a]\nx=1\n[b]\ny=2\n[a]\nz=3\n').map((e) => e.slice(0, 2)), [['a', 'x'], ['b', 'y'], ['a', 'z']]);
  });
});

describe('ini: values', () => {
  test('ini: ; outside quotes starts a comment', () => {
    assert.deepEqual(parseIniValue(' abc ; note'), { value: 'abc', list: ['abc'] });
  });

  test('ini: quotes keep spaces, ; and commas', () => {
    assert.deepEqual(parseIniValue(' " a;b, c " '), { value: ' a;b, c ', list: [' a;b, c '] });
  });

  test('ini: commas split list items, each trimmed', () => {
    assert.deepEqual(parseIniValue('truncate:0, append'), { value: 'truncate:0,append', list: ['truncate:0', 'append'] });
  });

  test('ini: empty list items are kept (the mapper drops them)', () => {
    assert.deepEqual((parseIniValue('a,,b') as { list: string[] }).list, ['a', '', 'b']);
  });

  test('ini: backslash escapes', () => {
    assert.deepEqual(parseIniValue('a\\tb\\nc\\\\d\\"e\\x41'), { value: 'a\tb\nc\\d"eA', list: ['a\tb\nc\\d"eA'] });
  });

  test('ini: # inside a value is literal', () => {
    assert.equal((parseIniValue('a#b') as { value: string }).value, 'a#b');
  });

  test('ini: unterminated quote is an error naming the key', () => {
    assert.deepEqual(msgs('[proxy]\nsig_iss="abc\n'), ['p.conf:2: sig_iss: unterminated quote in value']);
  });

  test('ini: bad \\x escape is an error', () => {
    assert.deepEqual(msgs('[a]\nk=\\xZZ\n'), ['p.conf:2: k: invalid \\x escape in value']);
  });
});

describe('ini: bad input', () => {
  test('ini: a line without = is ignored with a warning', () => {
    const d = parseIni('[a]\njust words\n', 'p.conf').diagnostics;
    assert.deepEqual(d.map(formatDiagnostic), ['p.conf:2: line ignored: expected key=value, [section] or a comment: just words']);
    assert.equal(d[0]!.severity, 'warning');
  });

  test('ini: empty key is ignored with a warning', () => {
    assert.deepEqual(msgs('[a]\n=1\n'), ['p.conf:2: line ignored: empty key before =']);
  });

  test('ini: unterminated section header is an error', () => {
    const d = parseIni('[proxy\nx=1\n', 'p.conf').diagnostics;
    assert.deepEqual(d.map(formatDiagnostic), ["p.conf:1: section header is missing ']': [proxy"]);
    assert.equal(d[0]!.severity, 'error');
  });

  test('ini: empty section name is an error', () => {
    assert.deepEqual(msgs('[ ]\n'), ['p.conf:1: empty section name']);
  });

  test('ini: text after a section header is warned about', () => {
    assert.deepEqual(msgs('[a] x\n'), ['p.conf:1: text after section header [a] ignored: x']);
    assert.deepEqual(msgs('[a] ; fine\n'), []);
  });

  test('ini: a file over MAX_INI_BYTES is refused whole', () => {
    const doc = parseIni('#'.repeat(MAX_INI_BYTES + 1), 'p.conf');
    assert.equal(doc.entries.length, 0);
    assert.deepEqual(doc.diagnostics.map(formatDiagnostic), [`p.conf: file too large (${MAX_INI_BYTES + 1} bytes, limit ${MAX_INI_BYTES})`]);
  });

  test('ini: a line over MAX_INI_LINE_LENGTH is an error and skipped', () => {
    const doc = parseIni(`[a]\nk=${'x'.repeat(MAX_INI_LINE_LENGTH)}\nj=1\n`, 'p.conf');
    assert.deepEqual(doc.entries.map((e) => e.key), ['j']);
    assert.match(formatDiagnostic(doc.diagnostics[0]!), /^p\.conf:2: line too long/);
  });

  test('ini: more than MAX_INI_ENTRIES entries stops with an error', () => {
    const lines = ['[a]'];
    for (let i = 0; i <= MAX_INI_ENTRIES; i++) lines.push(`k${i}=1`);
    const doc = parseIni(lines.join('\n'), 'p.conf');
    assert.equal(doc.entries.length, MAX_INI_ENTRIES);
    assert.deepEqual(doc.diagnostics.map(formatDiagnostic), [`p.conf:${MAX_INI_ENTRIES + 2}: too many entries (limit ${MAX_INI_ENTRIES}); rest of file ignored`]);
  });

  test('ini: binary garbage never throws', () => {
    let seed = 7;
    for (let n = 0; n < 200; n++) {
      let s = '';
      for (let i = 0; i < 200; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        s += String.fromCharCode(seed % 128);
      }
      assert.doesNotThrow(() => parseIni(s, 'x'));
    }
  });
});
