/**
 * Fuzz target: the WASM sandbox against V8's own validator (issue #10, defect 1).
 *
 * Modules: the shipped guests in wasm/ and small hand-built ones dense in indices (globals,
 * locals, labels, types, a table), mutated where a hostile author could: a bit flipped, a byte
 * set (to anything, or to a small number, which is how an index or a LEB128 count moves by
 * one), inserted or deleted. Oracles:
 *   - instrumentation never turns a module V8 rejects into one V8 accepts (the hole through
 *     which a guest wrote the fuel and depth counters);
 *   - prepare refuses every module V8 rejects, with a typed error; every refusal, of any
 *     module, is a ThunderpacError, never a raw TypeError or RangeError;
 *   - a module prepare accepts runs each entry to an output or a typed error, within its fuel
 *     (fuelUsed never above the limit), never hanging (fuel bounds it in-thread).
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { instrument } from '../src/backends/wasm/instrument.js';
import { parseModule } from '../src/backends/wasm/module-info.js';
import { WA } from '../src/backends/wasm/wasm-api.js';
import { ThunderpacError } from '../src/runtime/errors.js';
import type { RunContext } from '../src/runtime/types.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';
import { abiGuest, FUNCREF, I32, I64 } from './helpers/wasm-bytes.js';
import { sandbox } from './wasm-fixtures.js';

const WASM_DIR = fileURLToPath(new URL('../wasm/', import.meta.url));
const SHIPPED = ['echo', 'fnv', 'kernels', 'nan', 'tailcall', 'wasi_raw', 'wasi_cat', 'abort_import'];

/** Globals, locals, a loop, a branch, a block: every index one byte, so one edit moves it. */
const INDEX_DENSE = abiGuest({
  globals: [
    [I64, 0x01, 0x42, 0x00, 0x0b],
    [I32, 0x00, 0x41, 0x05, 0x0b],
  ],
  run: [
    ...[0x01, 0x02, I32], // two i32 locals: 2, 3
    ...[0x03, 0x40], // loop
    ...[0x23, 0x00, 0x42, 0x01, 0x7c, 0x24, 0x00], // global 0 += 1
    ...[0x20, 0x02, 0x41, 0x01, 0x6a, 0x22, 0x02], // local 2 += 1 (tee)
    ...[0x23, 0x01, 0x49, 0x0d, 0x00, 0x0b], // br_if 0 while local 2 < global 1; end
    ...[0x02, 0x40, 0x0c, 0x00, 0x0b], // block { br 0 }
    ...[0x20, 0x00, 0x21, 0x03], // local 3 = param 0
    ...[0x23, 0x00, 0x0b], // global 0; end
  ],
});

/** A bounded table, grown and called through: table, type and element indices. */
const TABLE_DENSE = abiGuest({
  tables: [[FUNCREF, 0x01, 0x01, 0x04]],
  run: [
    0x00,
    ...[0xd0, 0x70, 0x41, 0x01, 0xfc, 0x0f, 0x00, 0x1a], // table.grow 0 by 1; drop
    ...[0xfc, 0x10, 0x00, 0x1a], // table.size 0; drop
    ...[0x41, 0x07, 0x41, 0x00, 0x11, 0x00, 0x00, 0x1a], // call_indirect (type 0) [0]: traps (null)
    ...[0x42, 0x00, 0x0b],
  ],
});

const SEEDS: readonly Uint8Array[] = [
  ...SHIPPED.map((n) => new Uint8Array(readFileSync(`${WASM_DIR}${n}.wasm`))),
  INDEX_DENSE,
  TABLE_DENSE,
];

type Edit = { kind: 'flip' | 'set' | 'small' | 'insert' | 'delete'; at: number; value: number };

const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'small', 'small', 'insert', 'delete'),
  at: fc.nat(),
  value: fc.nat(255),
});

/** Seed `seed` with the edits applied (positions taken modulo the length as it is then). */
function mutate(seed: number, edits: readonly Edit[]): Uint8Array {
  const b = [...SEEDS[seed % SEEDS.length]!];
  for (const e of edits) {
    const at = 8 + (e.at % Math.max(1, b.length - 8)); // the header is checked elsewhere
    switch (e.kind) {
      case 'flip':
        b[at] = (b[at] ?? 0) ^ (1 << (e.value % 8));
        break;
      case 'set':
        b[at] = e.value;
        break;
      case 'small':
        b[at] = e.value % 16;
        break;
      case 'insert':
        b.splice(at, 0, e.value);
        break;
      case 'delete':
        b.splice(at, 1);
        break;
    }
  }
  return new Uint8Array(b);
}

const mutant = fc.tuple(fc.nat(), fc.array(edit, { minLength: 1, maxLength: 3 }));

const CONFIGS = [
  { fuel: 10_000, callDepth: 100, nanCanonical: true },
  { fuel: undefined, callDepth: 64, nanCanonical: false },
  { fuel: 500, callDepth: 0, nanCanonical: true },
] as const;

const FUEL = 200_000;
const spec = sandbox({ fuel: FUEL, memoryMb: 16 }, ['env.abort', 'wasi_snapshot_preview1.*']);
const backend = new WasmBackend({ path: 'in-thread' });
afterAll(() => backend.close());

function typed(err: unknown): void {
  if (!(err instanceof ThunderpacError)) throw err; // a raw TypeError/RangeError: a finding
}

describe('the sandbox agrees with V8 on which modules are valid', () => {
  it('property: instrumentation never makes a module V8 rejects valid', {
    timeout: fuzzTimeoutMs(30_000),
  }, async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(mutant, fc.nat(CONFIGS.length - 1), async ([seed, edits], c) => {
        // A long run is minutes of synchronous work: let the test runner's own messages through.
        if (++cases % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
        const bytes = mutate(seed, edits);
        let out: Uint8Array;
        try {
          out = instrument(bytes, parseModule(bytes), CONFIGS[c]!).bytes;
        } catch (err) {
          typed(err);
          return;
        }
        if (!WA.validate(bytes)) expect(WA.validate(out)).toBe(false);
      }),
      fuzzParams(3_000),
    );
  });

  it('property: prepare refuses what V8 rejects; what it accepts runs within its fuel', {
    timeout: fuzzTimeoutMs(30_000),
  }, async () => {
    await fc.assert(
      fc.asyncProperty(mutant, async ([seed, edits]) => {
        const bytes = mutate(seed, edits);
        const valid = WA.validate(bytes);
        let prepared: Awaited<ReturnType<WasmBackend['prepare']>>;
        try {
          prepared = await backend.prepare(createWasmBuild(bytes, { name: 'mutant' }), spec);
        } catch (err) {
          typed(err);
          return;
        }
        expect(valid).toBe(true);
        for (const entry of prepared.entries) {
          const ctx: RunContext = { entry, sandbox: spec, usage: {} };
          try {
            await backend.run(prepared, { kind: 'bytes', bytes: new TextEncoder().encode('abc') }, ctx);
          } catch (err) {
            typed(err);
            continue; // out of fuel reports the charge that went past the limit, too
          }
          // Completed: then within its fuel (a guest that refilled its counter would not be).
          expect(ctx.usage.fuelUsed).toBeLessThanOrEqual(FUEL);
        }
        await backend.dispose(prepared);
      }),
      fuzzParams(1_000),
    );
  });
});
