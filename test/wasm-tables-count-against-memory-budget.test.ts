import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createComponentBuild, createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { TABLE_ELEMENT_BYTES, tableElementCap } from '../src/backends/wasm/policy.js';
import { LimitExceededError } from '../src/runtime/errors.js';
import { sandboxSpec } from '../src/runtime/sandbox.js';
import type { SandboxSpec } from '../src/runtime/types.js';
import { abiGuest, FUNCREF, uleb } from './helpers/wasm-bytes.js';
import { sandbox } from './wasm-fixtures.js';

// Issue #10 defect 2: `loop { table.grow (ref.null func) 1000000 }` on a table without a
// maximum took the whole process down (V8 heap limit in WasmTableObject::Grow) on the worker
// path, and reached GBs of RSS in-thread under memoryMb 1.
const GROW_FOREVER = [
  0x00, // no locals
  ...[0x03, 0x40], // loop
  ...[0xd0, 0x70], // ref.null func
  ...[0x41, 0xc0, 0x84, 0x3d], // i32.const 1000000
  ...[0xfc, 0x0f, 0x00, 0x1a], // table.grow 0; drop
  ...[0x0c, 0x00, 0x0b], // br 0; end
  ...[0x42, 0x00, 0x0b], // i64.const 0; end
];

const unbounded = (min = 0): number[] => [FUNCREF, 0x00, ...uleb(min)];
const bounded = (min: number, max: number): number[] => [FUNCREF, 0x01, ...uleb(min), ...uleb(max)];

const worker = new WasmBackend({ path: 'worker', workers: 1 });
const inThread = new WasmBackend({ path: 'in-thread' });
afterAll(async () => {
  await worker.close();
  await inThread.close();
});

async function refusal(backend: WasmBackend, bytes: Uint8Array, spec: SandboxSpec): Promise<unknown> {
  return backend.prepare(createWasmBuild(bytes, { name: 'tables' }), spec).then(
    () => undefined,
    (e: unknown) => e,
  );
}

async function runFailure(backend: WasmBackend, bytes: Uint8Array, spec: SandboxSpec): Promise<unknown> {
  const prepared = await backend.prepare(createWasmBuild(bytes, { name: 'tables' }), spec);
  return backend
    .run(prepared, { kind: 'bytes', bytes: new Uint8Array(0) }, { entry: 'run', sandbox: spec, usage: {} })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

describe('tables are engine memory the guest controls: they count against memoryMb', () => {
  it.each([
    ['worker', worker],
    ['in-thread', inThread],
  ] as const)('a table without a maximum is refused at prepare (%s)', async (_path, backend) => {
    const bytes = abiGuest({ tables: [unbounded()], run: GROW_FOREVER });
    const err = await refusal(backend, bytes, sandbox({ memoryMb: 1, fuel: 1_000_000 }));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ code: 'LIMIT_MEMORY_MB', limit: 'memoryMb', allowed: 1 });
    expect((err as Error).message).toMatch(/table 0 declares no maximum/);
  });

  it('sixteen tables of V8’s largest size are refused (they would take GBs)', async () => {
    const bytes = abiGuest({
      tables: Array.from({ length: 16 }, () => bounded(0, 10_000_000)),
      run: GROW_FOREVER,
    });
    const err = await refusal(inThread, bytes, sandbox({ memoryMb: 1, fuel: 1_000_000 }));
    expect(err).toMatchObject({ code: 'LIMIT_MEMORY_MB', limit: 'memoryMb' });
  });

  it('linear memory and tables share the budget', async () => {
    // 16 pages = 1 MiB of linear memory fills memoryMb 1; one more table element is over it.
    const full = abiGuest({ memory: [0x01, 0x01, 0x10], tables: [bounded(1, 1)], run: GROW_FOREVER });
    expect(await refusal(inThread, full, sandbox({ memoryMb: 1, fuel: 1_000 }))).toMatchObject({
      code: 'LIMIT_MEMORY_MB',
    });
    expect(await refusal(inThread, full, sandbox({ memoryMb: 2, fuel: 1_000 }))).toBeUndefined();
    // A table alone at the budget: memoryMb 1 holds 2^20 / TABLE_ELEMENT_BYTES elements next to one page.
    const elements = ((1 << 20) - 65536) / TABLE_ELEMENT_BYTES;
    const atCap = abiGuest({ tables: [bounded(0, elements)], run: GROW_FOREVER });
    expect(await refusal(inThread, atCap, sandbox({ memoryMb: 1, fuel: 1_000 }))).toBeUndefined();
    const over = abiGuest({ tables: [bounded(0, elements + 1)], run: GROW_FOREVER });
    expect(await refusal(inThread, over, sandbox({ memoryMb: 1, fuel: 1_000 }))).toMatchObject({
      code: 'LIMIT_MEMORY_MB',
    });
  });

  it('tables are capped by the workers’ heap too, whatever memoryMb allows', async () => {
    const small = new WasmBackend({ path: 'in-thread', resourceLimits: { maxOldGenerationSizeMb: 8 } });
    try {
      const cap = tableElementCap(8);
      const bytes = abiGuest({ tables: [bounded(0, cap + 1)], run: GROW_FOREVER });
      const err = await refusal(small, bytes, sandbox({ memoryMb: 1024, fuel: 1_000 }));
      expect(err).toMatchObject({ code: 'LIMIT_MEMORY_MB' });
      expect((err as Error).message).toContain('engine heap');
    } finally {
      await small.close();
    }
  });

  it('a bounded table grown in a loop on the worker path: a timeout, and the host lives on', async () => {
    const bytes = abiGuest({ tables: [bounded(0, 20_000)], run: GROW_FOREVER });
    const err = await runFailure(worker, bytes, sandbox({ memoryMb: 1, timeoutMs: 200 }));
    expect(err).toMatchObject({ code: 'LIMIT_TIMEOUT_MS', limit: 'timeoutMs' });
    // The pool replaced the terminated worker and still runs guests.
    const again = await runFailure(worker, bytes, sandbox({ memoryMb: 1, timeoutMs: 200 }));
    expect(again).toMatchObject({ code: 'LIMIT_TIMEOUT_MS' });
  });

  it('a bounded table grown in a loop in-thread: out of fuel, within the budget', async () => {
    const bytes = abiGuest({ tables: [bounded(0, 20_000)], run: GROW_FOREVER });
    const err = await runFailure(inThread, bytes, sandbox({ memoryMb: 1, fuel: 50_000_000 }));
    expect(err).toMatchObject({ code: 'LIMIT_FUEL', limit: 'fuel' });
  });

  it('a component does not bypass the budget: its core modules’ tables and memories add up', async () => {
    // wasm/components/wasi_cat.wasm: a core module with 64 pages (4 MiB) and a 6-element table,
    // and the jco shim's 23-element table. Each memory alone fits memoryMb 4; with the tables
    // it does not.
    const bytes = new Uint8Array(
      readFileSync(fileURLToPath(new URL('../wasm/components/wasi_cat.wasm', import.meta.url))),
    );
    const spec = (memoryMb: number) =>
      sandboxSpec({ backend: 'wasm', limits: { fuel: 1_000_000, memoryMb }, allowedImports: ['wasi:*'] });
    const build = createComponentBuild(bytes, { name: 'wasi_cat' });
    const refused = await inThread.prepare(build, spec(4)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ code: 'LIMIT_MEMORY_MB', limit: 'memoryMb', allowed: 4 });
    expect((refused as Error).message).toMatch(/tables/);
    await expect(inThread.prepare(build, spec(5))).resolves.toBeDefined();
  });
});
