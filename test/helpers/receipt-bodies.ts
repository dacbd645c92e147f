/**
 * Receipt bodies made up for tests of indexes and queries (receipt lists, lineage, the fleet
 * index): every field a body needs, with neutral values, and the fields a test is about given
 * by the caller. Not an execution: nothing replays them.
 */

import type { ReceiptBody } from '../../src/runtime/receipt.js';

type Given = Pick<
  ReceiptBody,
  'buildId' | 'input' | 'output' | 'startedAt' | 'durationNs' | 'status' | 'parents'
> &
  Partial<ReceiptBody>;

export function syntheticReceiptBody(given: Given): ReceiptBody {
  return {
    v: 1,
    backend: 'wasm',
    entry: 'e',
    resources: { cpuUs: null, peakMemoryBytes: null, fuelUsed: null, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1, memoryMb: 1, maxInputBytes: 1, maxOutputBytes: 1 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: {},
    error: null,
    ...given,
  };
}
