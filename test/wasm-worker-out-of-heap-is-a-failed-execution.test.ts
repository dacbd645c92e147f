import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { LimitExceededError } from '../src/runtime/errors.js';
import { abiGuest, I64, uleb } from './helpers/wasm-bytes.js';
import { sandbox } from './wasm-fixtures.js';

/**
 * A guest with `n` mutable i64 globals. The sandbox exports each (to snapshot instance state),
 * so every instance carries n WebAssembly.Global objects on the engine heap: about 100 bytes
 * of heap per 5 bytes of module, an allocation the guest controls.
 */
function manyGlobals(n: number): Uint8Array {
  const one = [I64, 0x01, 0x42, 0x00, 0x0b];
  const base = abiGuest({ globals: [one], run: [0x00, 0x42, 0x00, 0x0b] });
  const oneSection = [0x06, 0x06, 0x01, ...one];
  const at = base.findIndex((_, i) => oneSection.every((b, j) => base[i + j] === b));
  const count = uleb(n);
  const payloadLength = count.length + n * one.length;
  const head = [0x06, ...uleb(payloadLength), ...count];
  const out = new Uint8Array(base.length - oneSection.length + head.length + n * one.length);
  out.set(base.subarray(0, at));
  out.set(head, at);
  for (let i = 0; i < n; i++) out.set(one, at + head.length + i * one.length);
  out.set(base.subarray(at + oneSection.length), at + head.length + n * one.length);
  return out;
}

// A worker heap small enough that 99,000 exported globals exhaust it (V8 allows 100,000
// exports), large enough for Node's worker bootstrap.
const backend = new WasmBackend({
  path: 'worker',
  workers: 1,
  resourceLimits: { maxOldGenerationSizeMb: 10 },
});
afterAll(() => backend.close());

describe('a worker out of heap is a failed execution, not a dead host', () => {
  it('LimitExceededError memoryMb, and the pool runs the next execution', { timeout: 60_000 }, async () => {
    const spec = sandbox({ memoryMb: 1, timeoutMs: 30_000 });
    const prepared = await backend.prepare(createWasmBuild(manyGlobals(99_000), { name: 'globals' }), spec);
    const run = () =>
      backend
        .run(
          prepared,
          { kind: 'bytes', bytes: new Uint8Array(0) },
          { entry: 'run', sandbox: spec, usage: {} },
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    const err = await run();
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ code: 'LIMIT_MEMORY_MB', limit: 'memoryMb', allowed: 1 });
    expect((err as Error).message).toMatch(/heap/);
    // The slot got a fresh worker: the same failure again, typed again.
    expect(await run()).toMatchObject({ code: 'LIMIT_MEMORY_MB' });
    // And a small guest still runs on it.
    const small = await backend.prepare(createWasmBuild(manyGlobals(10), { name: 'small' }), spec);
    const out = await backend.run(
      small,
      { kind: 'bytes', bytes: new Uint8Array(0) },
      { entry: 'run', sandbox: spec, usage: {} },
    );
    expect(out.kind).toBe('bytes');
  });
});
