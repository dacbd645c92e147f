import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { instrument } from '../src/backends/wasm/instrument.js';
import { parseModule } from '../src/backends/wasm/module-info.js';
import { WA } from '../src/backends/wasm/wasm-api.js';
import { ProgramRejectedError } from '../src/runtime/errors.js';
import { abiGuest, I32, I64, name, section, vec } from './helpers/wasm-bytes.js';
import { sandbox } from './wasm-fixtures.js';

// The instrumenter appends its counters after the guest's own globals (fuel first, then
// depth), one more type for multi-result wrappers, scratch locals, and a label around each
// body. Each module below names an index just past the guest's own: invalid as written, but it
// would land on what the sandbox added.

/** Issue #10's guest: `loop { global.set 0 (i64.const 1000000); br 0 }` with no globals. */
const REFILLS_FUEL = abiGuest({
  run: [0x00, 0x03, 0x40, 0x42, 0xc0, 0x84, 0x3d, 0x24, 0x00, 0x0c, 0x00, 0x0b, 0x42, 0x00, 0x0b],
});
/** One guest global (i32); `global.set 2` would be the depth counter (global 1 is fuel). */
const RESETS_DEPTH = abiGuest({
  globals: [[I32, 0x01, 0x41, 0x00, 0x0b]],
  run: [0x00, 0x41, 0x00, 0x24, 0x02, 0x42, 0x00, 0x0b],
});
/** `br 1` at a body's top level: only label 0 exists, 1 would be the depth wrapper's outside. */
const BRANCHES_PAST_DEPTH_EPILOGUE = abiGuest({ run: [0x00, 0x42, 0x00, 0x0c, 0x01, 0x0b] });
/** `local.get 2` in a body with two params: the next local is a scratch the sandbox adds. */
const READS_SCRATCH_LOCAL = abiGuest({ run: [0x00, 0x20, 0x02, 0x1a, 0x42, 0x00, 0x0b] });
/** `block (type 2)` with only types 0 and 1: type 2 would be the one the wrapper adds. */
const NAMES_ADDED_TYPE = abiGuest({ run: [0x00, 0x02, 0x02, 0x0b, 0x42, 0x00, 0x0b] });

/** A module exporting global 0 when it has none: the fuel counter under a name of its choosing. */
function exportsFuelCounter(): Uint8Array {
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, 1, I32, 1, I32]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x01, 0x01, 0x01]])),
    ...section(
      7,
      vec([
        [...name('memory'), 0x02, 0x00],
        [...name('alloc'), 0x00, 0x00],
        [...name('fuel'), 0x03, 0x00],
      ]),
    ),
    ...section(10, vec([[4, 0x00, 0x41, 0x00, 0x0b]])),
  ];
  return new Uint8Array(bytes);
}

const cases: [string, Uint8Array][] = [
  ['global.set of the fuel counter', REFILLS_FUEL],
  ['global.set of the depth counter', RESETS_DEPTH],
  ['a branch past the function label', BRANCHES_PAST_DEPTH_EPILOGUE],
  ['a local past the declared ones', READS_SCRATCH_LOCAL],
  ['a block type past the type section', NAMES_ADDED_TYPE],
  ['an export of a global the module does not have', exportsFuelCounter()],
];

const config = { fuel: 1_000, callDepth: 100, nanCanonical: true };
const backend = new WasmBackend({ path: 'in-thread' });
afterAll(() => backend.close());

describe('a guest cannot reach the instrumenter’s globals, types, locals or labels', () => {
  it.each(cases)('V8 rejects %s as written', (_what, bytes) => {
    expect(WA.validate(bytes)).toBe(false);
  });

  it.each(cases)('the instrumenter refuses %s on its own, with a typed error', (_what, bytes) => {
    let err: unknown;
    try {
      instrument(bytes, parseModule(bytes), config);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProgramRejectedError);
    expect(err).toMatchObject({ code: 'WASM_MALFORMED' });
    expect((err as Error).message).toMatch(/index \d+ out of range/);
  });

  it.each(cases)('prepare refuses %s under limits.fuel', async (_what, bytes) => {
    const err = await backend
      .prepare(createWasmBuild(bytes, { name: 'hostile' }), sandbox({ fuel: 1_000 }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ProgramRejectedError);
    expect(err).toMatchObject({ code: 'WASM_MALFORMED' });
  });

  it('the fuel-refilling guest of issue #10 is refused before it can run', async () => {
    const err = await backend
      .prepare(createWasmBuild(REFILLS_FUEL, { name: 'refill' }), sandbox({ fuel: 10_000 }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: 'WASM_MALFORMED', reason: 'malformed' });
    expect((err as Error).message).toContain('global index 0 out of range');
  });

  it('a valid guest with the same shape still runs and runs out of fuel', async () => {
    // The same loop writing its OWN global (index 0 of one i64 global) is valid, and is stopped.
    const bytes = abiGuest({
      globals: [[I64, 0x01, 0x42, 0x00, 0x0b]],
      run: [0x00, 0x03, 0x40, 0x42, 0xc0, 0x84, 0x3d, 0x24, 0x00, 0x0c, 0x00, 0x0b, 0x42, 0x00, 0x0b],
    });
    expect(WA.validate(bytes)).toBe(true);
    const spec = sandbox({ fuel: 10_000 });
    const prepared = await backend.prepare(createWasmBuild(bytes, { name: 'own-global' }), spec);
    const err = await backend
      .run(prepared, { kind: 'bytes', bytes: new Uint8Array(0) }, { entry: 'run', sandbox: spec, usage: {} })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: 'LIMIT_FUEL', limit: 'fuel' });
  });
});
