import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, parseModule, WasmBackend, type WasmPrepared } from '../src/backends/wasm/index.js';
import { instrument, type MeteringConfig } from '../src/backends/wasm/instrument.js';
import { ProgramRejectedError } from '../src/runtime/errors.js';
import type { Output } from '../src/runtime/types.js';
import { buildGuests, ctx, guest, sandbox, u32s } from './wasm-fixtures.js';

// biome-ignore lint/suspicious/noExplicitAny: the WebAssembly global is untyped under lib ES2022
const WA = (globalThis as unknown as { WebAssembly: any }).WebAssembly;
const inThread = new WasmBackend({ path: 'in-thread' });
const worker = new WasmBackend({ path: 'worker', workers: 1 });
const spec = sandbox({ fuel: 2_000_000_000 });

/** The guest ABI on a fresh instance of the original, uninstrumented module: the reference. */
function raw(bytes: Uint8Array, entry: string, input: Uint8Array): Uint8Array | string {
  const e = new WA.Instance(new WA.Module(bytes), {}).exports;
  try {
    const ptr = e.alloc(input.length) >>> 0;
    new Uint8Array(e.memory.buffer, ptr, input.length).set(input);
    const packed: bigint = e[entry](ptr, input.length);
    if (packed < 0n) return `error ${packed}`;
    const p = Number(packed >> 32n);
    return new Uint8Array(e.memory.buffer.slice(p, p + Number(packed & 0xffffffffn)));
  } catch (err) {
    return `trap ${(err as Error).constructor.name}`;
  }
}

async function metered(backend: WasmBackend, p: WasmPrepared, entry: string, input: Uint8Array) {
  return backend
    .run(p, { kind: 'bytes', bytes: input }, ctx(entry, spec))
    .then((o: Output) => (o.kind === 'bytes' ? o.bytes : 'not bytes'))
    .catch((e: Error & { code?: string }) =>
      e.code === 'GUEST_ERROR' ? `error ${/-?\d+$/.exec(e.message)?.[0]}` : `trap ${e.code}`,
    );
}

const MODULES = {
  echo: ['echo', 'reverse', 'count'],
  fnv: ['fnv', 'sort', 'fib'],
  kernels: ['fib', 'hash', 'matmul', 'sort', 'interp', 'collatz'],
} as const;
type ModuleName = keyof typeof MODULES;
const prepared = {} as Record<ModuleName, { bytes: Uint8Array; t: WasmPrepared; w: WasmPrepared }>;

beforeAll(async () => {
  buildGuests();
  for (const name of Object.keys(MODULES) as ModuleName[]) {
    const bytes = guest(name);
    const build = createWasmBuild(bytes, { name });
    prepared[name] = {
      bytes,
      t: await inThread.prepare(build, spec),
      w: await worker.prepare(build, spec),
    };
  }
});

afterAll(async () => {
  await inThread.close();
  await worker.close();
});

/** Kernels read u32 parameters (a small size first, so they finish fast); the others take raw bytes. */
const params = fc
  .tuple(fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }))
  .map(([a, b]) => u32s(a, b));
const rawBytes = fc.uint8Array({ maxLength: 512 });

describe('instrumentation does not change results', () => {
  it('property: metered (fuel + depth + NaN policy) = uninstrumented, on both paths', async () => {
    const pairs = Object.entries(MODULES).flatMap(([m, es]) => es.map((e) => [m as ModuleName, e] as const));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...pairs), params, rawBytes, async ([m, entry], p, b) => {
        // fnv.fib takes n <= 92 by naive recursion: give it a small n like the kernels.
        const arg = m === 'kernels' || entry === 'fib' ? p : b;
        const expected = raw(prepared[m].bytes, entry, arg);
        expect(await metered(inThread, prepared[m].t, entry, arg)).toEqual(expected);
        expect(await metered(worker, prepared[m].w, entry, arg)).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it('every guest in wasm/ instruments into a valid module under every config, or is refused by name', () => {
    const dir = fileURLToPath(new URL('../wasm/', import.meta.url));
    const configs: MeteringConfig[] = [
      { fuel: 1000, callDepth: 100, nanCanonical: true },
      { fuel: undefined, callDepth: 0, nanCanonical: true },
      { fuel: 5, callDepth: 0, nanCanonical: false },
      { fuel: undefined, callDepth: 7, nanCanonical: false },
    ];
    let checked = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.wasm'))) {
      const bytes = guest(file.slice(0, -5));
      const info = parseModule(bytes);
      for (const config of configs) {
        try {
          const out = instrument(bytes, info, config);
          // V8 without relaxed SIMD / memory64 flags rejects those modules before and after.
          expect(WA.validate(out.bytes)).toBe(WA.validate(bytes));
          checked++;
        } catch (err) {
          expect(err).toBeInstanceOf(ProgramRejectedError);
          expect((err as ProgramRejectedError).code).toBe('WASM_FEATURE_NOT_ALLOWED');
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('instrumentation is fast: well under a millisecond per KiB of code', () => {
    const bytes = guest('kernels');
    const info = parseModule(bytes);
    const config = { fuel: 1000, callDepth: 100, nanCanonical: true };
    for (let i = 0; i < 20; i++) instrument(bytes, info, config); // warm the JIT
    const ms = Math.min(...Array.from({ length: 20 }, () => instrument(bytes, info, config).ms));
    expect(ms).toBeLessThan(bytes.length / 1024);
  });
});
