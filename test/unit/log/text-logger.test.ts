import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, logAccess, accessLine, textInfoWriter } from '../../../src/log/index.js';

/** A logger writing into an array of raw chunks. */
function capture(json: boolean): { logger: ReturnType<typeof createLogger>; chunks: string[] } {
  const chunks: string[] = [];
  const destination = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return { logger: createLogger({ level: 2, json, destination }), chunks };
}

const LINE = /^\[INFO\] \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (.*)\n$/;
const record = { method: 'GET', path: '/a?b=1', backend: '127.0.0.1:8080', status: 200, bodyBytes: 12, durationMs: 1.25 };

describe('text logger', () => {
  test('an access line has the same shape as any info line, one line per request, in order', () => {
    const { logger, chunks } = capture(false);
    assert.notEqual(textInfoWriter(logger), undefined);
    logger.info('before');
    logAccess(logger, record);
    logger.warn('after');
    assert.equal(chunks.length, 3);
    assert.equal(LINE.exec(chunks[0]!)?.[1], 'before');
    assert.equal(LINE.exec(chunks[1]!)?.[1], 'GET /a?b=1 -> 127.0.0.1:8080 code=200 12 1.3ms');
    assert.equal(LINE.exec(chunks[1]!)?.[1], accessLine(record));
    assert.match(chunks[2]!, /^\[WARN\] .* after\n$/);
  });

  test('a child logger with bindings keeps them on access lines', () => {
    const { logger, chunks } = capture(false);
    logAccess(logger.child({ worker: 1 }), record);
    assert.equal(chunks.length, 1);
    assert.equal(LINE.exec(chunks[0]!)?.[1], `${accessLine(record)} worker=1`);
  });

  test('nothing is written below info level', () => {
    const chunks: string[] = [];
    const destination = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
    logAccess(createLogger({ level: 1, json: false, destination }), record);
    assert.equal(chunks.length, 0);
  });

  test('JSON mode carries the fields under access', () => {
    const { logger, chunks } = capture(true);
    assert.equal(textInfoWriter(logger), undefined);
    logAccess(logger, record);
    const rec = JSON.parse(chunks[0]!) as { msg: string; access: typeof record; level: number };
    assert.equal(rec.level, 30);
    assert.equal(rec.msg, accessLine(record));
    assert.deepEqual(rec.access, record);
  });
});
