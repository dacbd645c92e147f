import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleb, uleb } from '../src/backends/wasm/code-reader.js';
import { createWasmBuild, WasmBackend, type WasmPrepared } from '../src/backends/wasm/index.js';
import { BULK_BYTES_PER_FUEL, FUEL_PER_PAGE, instrument } from '../src/backends/wasm/instrument.js';
import { parseModule } from '../src/backends/wasm/module-info.js';
import { WA } from '../src/backends/wasm/wasm-api.js';
import { LimitExceededError } from '../src/runtime/errors.js';
import type { Output, SandboxSpec } from '../src/runtime/types.js';
import { ctx, sandbox, u32s } from './wasm-fixtures.js';

// ---------------------------------------------------------------- a guest, assembled here

/**
 * A guest-ABI module whose entries each run one size-dependent instruction on n = the u32
 * input, then return the 16 bytes at 1024 (so outputs can be compared with and without
 * metering):
 *   fill  memory.fill(1024, 0xab, n)        copy  memory.copy(1024, 0, n)
 *   init  memory.init(seg 0, 1024, 0, n)    grow  drop(memory.grow(n))
 * Memory: 2 pages, at most 16. `startLoops` > 0 adds a start function that loops that often
 * and then stores 0x5a at 1039 (the last byte of every output).
 */
function bulkGuest(startLoops = 0): Uint8Array {
  const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
  const sec = (id: number, payload: number[]) => [id, ...uleb(payload.length), ...payload];
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
  const body = (locals: number[][], code: number[]) => {
    const b = [...vec(locals), ...code, 0x0b];
    return [...uleb(b.length), ...b];
  };
  const n = [0x20, 0x00, 0x28, 0x02, 0x00]; // local.get $ptr; i32.load
  const dst = [0x41, ...sleb(1024n)];
  const out = [0x42, ...sleb((1024n << 32n) | 16n)]; // i64.const (1024 << 32) | 16
  const entries: [string, number[]][] = [
    ['fill', [...dst, 0x41, ...sleb(0xabn), ...n, 0xfc, 0x0b, 0x00, ...out]],
    ['copy', [...dst, 0x41, 0x00, ...n, 0xfc, 0x0a, 0x00, 0x00, ...out]],
    ['init', [...dst, 0x41, 0x00, ...n, 0xfc, 0x08, 0x00, 0x00, ...out]],
    ['grow', [...n, 0x40, 0x00, 0x1a, ...out]],
  ];
  const start = startLoops > 0;
  const startIndex = 1 + entries.length;
  const types = vec([
    [0x60, 1, 0x7f, 1, 0x7f], // alloc: (i32) -> i32
    [0x60, 2, 0x7f, 0x7f, 1, 0x7e], // entries: (i32, i32) -> i64
    [0x60, 0, 0], // start: () -> ()
  ]);
  const funcs = vec([[0], ...entries.map(() => [1]), ...(start ? [[2]] : [])]);
  const exports = vec([
    [...name('memory'), 0x02, 0x00],
    [...name('alloc'), 0x00, 0x00],
    ...entries.map(([e], i) => [...name(e), 0x00, i + 1]),
  ]);
  const loop = [
    ...[0x41, ...sleb(BigInt(startLoops)), 0x21, 0x00], // i = startLoops
    ...[0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b], // loop: i--, br_if i
    ...[0x41, ...sleb(1039n), 0x41, ...sleb(0x5an), 0x3a, 0x00, 0x00], // i32.store8 [1039] = 0x5a
  ];
  const code = [
    ...uleb(1 + entries.length + (start ? 1 : 0)),
    ...body([], [0x41, 0x00]), // alloc: the input always goes at 0
    ...entries.flatMap(([, c]) => body([], c)),
    ...(start ? body([[1, 0x7f]], loop) : []),
  ];
  const segment = [0x01, ...uleb(256), ...Array.from({ length: 256 }, (_, i) => i)]; // passive
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...sec(1, types),
    ...sec(3, funcs),
    ...sec(5, vec([[0x01, 2, 16]])),
    ...sec(7, exports),
    ...(start ? sec(8, uleb(startIndex)) : []),
    ...sec(12, uleb(1)),
    ...sec(10, code),
    ...sec(11, vec([segment])),
  ]);
}

// ---------------------------------------------------------------- running it

const inThread = new WasmBackend({ path: 'in-thread' });
const worker = new WasmBackend({ path: 'worker', workers: 1 });
const FUEL = 10_000_000;
const metered = sandbox({ fuel: FUEL });
const build = createWasmBuild(bulkGuest(), { name: 'bulk' });
let dir: string;
let bulkT: WasmPrepared;
let bulkW: WasmPrepared;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tp-bulk-fuel-'));
  bulkT = await inThread.prepare(build, metered);
  bulkW = await worker.prepare(build, metered);
});
afterAll(async () => {
  await inThread.close();
  await worker.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(
  backend: WasmBackend,
  p: WasmPrepared,
  entry: string,
  n: number,
  spec: SandboxSpec = metered,
): Promise<{ out: Output | Error; fuel: number | undefined }> {
  const c = ctx(entry, spec);
  const out = await backend.run(p, { kind: 'bytes', bytes: u32s(n) }, c).catch((e: Error) => e);
  return { out, fuel: c.usage.fuelUsed };
}

const bulkCost = (bytes: number) => Math.ceil(bytes / BULK_BYTES_PER_FUEL);
// fill at 1024 in 2 pages: anything up to here stays in bounds.
const IN_BOUNDS = 2 * 65536 - 1024;

describe('fuel charges bulk memory work by its size', () => {
  it('memory.fill of N bytes costs ceil(N / 64) more than a fill of 0, for any N', async () => {
    const base = (await run(inThread, bulkT, 'fill', 0)).fuel!;
    expect(base).toBeGreaterThan(0);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: IN_BOUNDS }), async (n) => {
        const r = await run(inThread, bulkT, 'fill', n);
        expect(r.out).not.toBeInstanceOf(Error);
        expect(r.fuel).toBe(base + bulkCost(n));
      }),
      { numRuns: 60 },
    );
  });

  it('memory.copy and memory.init are charged the same way, on both paths', async () => {
    for (const [entry, sizes] of [
      ['fill', [0, 1, 64, 65, 4096, IN_BOUNDS]],
      ['copy', [0, 1, 63, 64, 65, 60_000]],
      ['init', [0, 1, 64, 65, 256]],
    ] as const) {
      const base = (await run(inThread, bulkT, entry, 0)).fuel!;
      for (const n of sizes) {
        const t = await run(inThread, bulkT, entry, n);
        expect(t.fuel, `${entry} ${n}`).toBe(base + bulkCost(n));
        expect(await run(worker, bulkW, entry, n)).toEqual(t);
      }
    }
  });

  it('stops a huge memory.copy on fuel before it runs, with the exact charge', async () => {
    const limit = 1000; // an in-bounds copy of IN_BOUNDS bytes needs ~2000
    const spec = sandbox({ fuel: limit });
    const base = (await run(inThread, bulkT, 'copy', 0)).fuel!;
    // In bounds but over budget, and far out of bounds: without the charge up front the first
    // would complete and the second would fail as an out-of-bounds trap, not as out of fuel.
    for (const n of [IN_BOUNDS, 0x7fff_ffff]) {
      for (const backend of [inThread, worker]) {
        const p = await backend.prepare(build, spec);
        const { out, fuel } = await run(backend, p, 'copy', n, spec);
        expect(out).toBeInstanceOf(LimitExceededError);
        expect(out).toMatchObject({ limit: 'fuel', allowed: limit });
        expect(fuel).toBe(base + bulkCost(n));
        expect((out as LimitExceededError).observed).toBe(fuel);
      }
    }
    // The same copy unmetered is V8's bounds trap: the fuel charge, not V8, stopped it above.
    const unmetered = await inThread.prepare(build, sandbox());
    const { out } = await run(inThread, unmetered, 'copy', 0x7fff_ffff, sandbox());
    expect(out).toMatchObject({ code: 'GUEST_TRAP' });
  });

  it('memory.grow costs FUEL_PER_PAGE per page asked for, granted or not', async () => {
    const base = (await run(inThread, bulkT, 'grow', 0)).fuel!;
    for (const pages of [1, 3, 14, 100]) {
      // 100 pages is past the maximum: grow fails (returns -1) but the request is charged.
      const r = await run(worker, bulkW, 'grow', pages);
      expect(r.out).not.toBeInstanceOf(Error);
      expect(r.fuel).toBe(base + pages * FUEL_PER_PAGE);
    }
  });

  it('outputs are the same with and without metering', async () => {
    const plain = await inThread.prepare(build, sandbox());
    for (const [entry, n] of [
      ['fill', 100],
      ['copy', 3000],
      ['init', 200],
      ['grow', 2],
    ] as const) {
      const m = await run(inThread, bulkT, entry, n);
      const u = await run(inThread, plain, entry, n, sandbox());
      expect(u.out).not.toBeInstanceOf(Error);
      expect(m.out).toEqual(u.out);
      expect(u.fuel).toBeUndefined();
    }
  });

  it('charges the same fuel in fresh processes on every V8 tier', async () => {
    const file = join(dir, 'bulk.wasm');
    writeFileSync(file, bulkT.instrumented.bytes);
    // The guest ABI by hand on the instrumented bytes, in a child process.
    const child = `
      const { readFileSync } = require('node:fs');
      const [file, entry, n, fuel] = process.argv.slice(1);
      const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), {}).exports;
      const p = e.alloc(4);
      new DataView(e.memory.buffer).setUint32(p, Number(n), true);
      let status = 'ok';
      try { e[entry](p, 4); } catch (err) { status = e.__thunderpac_fuel.value < 0n ? 'fuel' : 'trap'; }
      process.stdout.write(String(BigInt(fuel) - e.__thunderpac_fuel.value) + ' ' + status);`;
    const tiers = [['--liftoff', '--no-wasm-tier-up'], ['--no-liftoff'], []];
    for (const [entry, n] of [
      ['fill', 5000],
      ['copy', 0x7fff_ffff],
      ['grow', 3],
    ] as const) {
      const here = await run(inThread, bulkT, entry, n);
      const status = here.out instanceof Error ? 'fuel' : 'ok';
      for (const flags of tiers) {
        const got = execFileSync(
          process.execPath,
          [...flags, '-e', child, file, entry, String(n), String(FUEL)],
          {
            encoding: 'utf8',
          },
        );
        expect(`${flags.join(' ')}: ${got}`).toBe(`${flags.join(' ')}: ${here.fuel} ${status}`);
      }
    }
  });
});

describe('fuel counts the start function', () => {
  it('every execution is charged the start function, on a reused instance as on a fresh one', async () => {
    const withStart = createWasmBuild(bulkGuest(1000), { name: 'bulk-start' });
    const startT = await inThread.prepare(withStart, metered);
    const startW = await worker.prepare(withStart, metered);
    expect(startT.runner?.reuses).toBe(true);
    expect(startT.instrumented.startDeferred).toBe(true);
    const plain = (await run(inThread, bulkT, 'fill', 10)).fuel!;
    const first = await run(inThread, startT, 'fill', 10);
    // The start function ran before the entry (its byte is in the output), on every path.
    expect((first.out as { bytes: Uint8Array }).bytes[15]).toBe(0x5a);
    // A 1000-iteration loop: at least one unit per iteration.
    expect(first.fuel! - plain).toBeGreaterThanOrEqual(1000);
    for (let i = 0; i < 3; i++) {
      expect(await run(inThread, startT, 'fill', 10)).toEqual(first);
      expect(await run(worker, startW, 'fill', 10)).toEqual(first);
    }
  });

  it('a start function that needs more than the limit fails as out of fuel, the same on both paths', async () => {
    const spec = sandbox({ fuel: 500 });
    const build = createWasmBuild(bulkGuest(10_000), { name: 'bulk-start' });
    const seen = new Set<string>();
    for (const backend of [inThread, worker, inThread]) {
      const p = await backend.prepare(build, spec);
      const { out, fuel } = await run(backend, p, 'fill', 1, spec);
      expect(out).toBeInstanceOf(LimitExceededError);
      expect(out).toMatchObject({ code: 'LIMIT_FUEL', allowed: 500 });
      expect((out as LimitExceededError).observed).toBe(fuel);
      seen.add(String(fuel));
    }
    expect(seen.size).toBe(1);
    expect(Number([...seen][0])).toBeGreaterThan(500);
  });

  it('defers the start function to an export that instantiation does not run', async () => {
    const p = await inThread.prepare(createWasmBuild(bulkGuest(3), { name: 'bulk-start' }), metered);
    const m = new WA.Module(p.instrumented.bytes);
    const e = new WA.Instance(m, {}).exports as {
      __thunderpac_fuel: { value: bigint };
      __thunderpac_start: () => void;
    };
    // Instantiating did not run it: nothing is charged until the host calls it.
    expect(e.__thunderpac_fuel.value).toBe(BigInt(FUEL));
    e.__thunderpac_start();
    expect(e.__thunderpac_fuel.value).toBeLessThan(BigInt(FUEL));
    // Without deferStart (how component.ts instruments) the start section stays.
    expect(
      instrument(bulkGuest(3), parseModule(bulkGuest(3)), { fuel: 10, callDepth: 8, nanCanonical: true })
        .startDeferred,
    ).toBe(false);
  });
});
