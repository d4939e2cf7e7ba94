import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { hasV8Flag, workerHeapFlags, HEAP_GROWING_PERCENT, WORKER_MAX_SEMI_SPACE_MB } from '../../../src/cluster/heap.js';
import { workerExecArgv } from '../../../src/cluster/primary.js';

describe('heap sizing', () => {
  test('a flag on the command line is found in either spelling, with or without a value', () => {
    assert.equal(hasV8Flag(['--heap-growing-percent=300'], '--heap-growing-percent'), true);
    assert.equal(hasV8Flag(['--enable-source-maps', '--heap_growing_percent=10'], '--heap-growing-percent'), true);
    assert.equal(hasV8Flag(['--max-semi-space-size', '4'], '--max-semi-space-size'), true);
    assert.equal(hasV8Flag([], '--heap-growing-percent'), false);
    assert.equal(hasV8Flag(['--heap-growing-percentage=5', '--max-old-space-size=4096'], '--heap-growing-percent'), false);
  });

  test('workers get gripd\'s defaults only for the flags not already given', () => {
    assert.deepEqual(workerHeapFlags([]), [`--max-semi-space-size=${WORKER_MAX_SEMI_SPACE_MB}`, `--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    assert.deepEqual(workerHeapFlags(['--max_semi_space_size=32']), [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
    assert.deepEqual(workerHeapFlags(['--heap-growing-percent=0', '--max-semi-space-size=2']), []);
  });

  test('the worker command line: defaults first, then the primary\'s options and GRIPD_WORKER_EXEC_ARGV', () => {
    const argv = workerExecArgv({ GRIPD_WORKER_EXEC_ARGV: ' --cpu-prof  --max-semi-space-size=4 ' });
    assert.deepEqual(argv, [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`, ...process.execArgv, '--cpu-prof', '--max-semi-space-size=4']);
  });
});
