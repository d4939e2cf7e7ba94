import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { hasHeapGrowingFlag } from '../../../src/cluster/heap.js';

describe('heap sizing', () => {
  test('a --heap-growing-percent on the command line (either spelling) is the user\'s choice', () => {
    assert.equal(hasHeapGrowingFlag(['--heap-growing-percent=300']), true);
    assert.equal(hasHeapGrowingFlag(['--enable-source-maps', '--heap_growing_percent=10']), true);
    assert.equal(hasHeapGrowingFlag(['--heap-growing-percent', '20']), true);
  });

  test('other flags leave gripd\'s default in place', () => {
    assert.equal(hasHeapGrowingFlag([]), false);
    assert.equal(hasHeapGrowingFlag(['--max-old-space-size=4096', '--cpu-prof', '--heap-growing-percentage=5']), false);
  });
});
