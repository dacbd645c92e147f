import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { buildGuests, ctx, guest, sandbox, u32s } from './wasm-fixtures.js';

const backend = new WasmBackend({ path: 'in-thread' });
let dir: string;

beforeAll(() => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-tiers-'));
});
afterAll(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The guest ABI by hand in a separate Node process, on the instrumented bytes: prints
 * "<fuel used> <failure or ok>" so the parent can compare with its own run.
 */
const CHILD = `
const { readFileSync } = require('node:fs');
const [file, entry, hex, fuel] = process.argv.slice(1);
const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), {}).exports;
e.__thunderpac_fuel.value = BigInt(fuel);
const input = Buffer.from(hex, 'hex');
let status = 'ok';
try {
  const ptr = e.alloc(input.length);
  new Uint8Array(e.memory.buffer, ptr, input.length).set(input);
  e[entry](ptr, input.length);
} catch (err) {
  status = e.__thunderpac_fuel.value < 0n ? 'fuel' : err.constructor.name;
}
process.stdout.write(String(BigInt(fuel) - e.__thunderpac_fuel.value) + ' ' + status);
`;

const TIERS: Record<string, string[]> = {
  'Liftoff only': ['--liftoff', '--no-wasm-tier-up'],
  'TurboFan only': ['--no-liftoff'],
  'default tiering': [],
};

describe('fuel is a property of the module and input, not of the engine tier or process', () => {
  it.each([
    ['fib', u32s(18), 50_000_000],
    ['sort', u32s(3000, 5), 50_000_000],
    ['matmul', u32s(10, 3), 50_000_000],
    ['interp', u32s(5000), 20_000], // runs out of fuel part-way
  ] as const)(
    '%s: same fuel in this process and in fresh processes on every tier',
    async (entry, input, fuel) => {
      const spec = sandbox({ fuel });
      const p = await backend.prepare(createWasmBuild(guest('kernels'), { name: 'kernels' }), spec);
      const c = ctx(entry, spec);
      const outcome = await backend.run(p, { kind: 'bytes', bytes: input }, c).then(
        () => 'ok',
        (e: { limit?: string }) => e.limit ?? 'error',
      );
      const file = join(dir, `kernels-${entry}.wasm`);
      writeFileSync(file, p.instrumented.bytes);
      for (const [tier, flags] of Object.entries(TIERS)) {
        const out = execFileSync(
          process.execPath,
          [...flags, '-e', CHILD, file, entry, Buffer.from(input).toString('hex'), String(fuel)],
          { encoding: 'utf8' },
        );
        expect(`${tier}: ${out}`).toBe(`${tier}: ${c.usage.fuelUsed} ${outcome}`);
      }
    },
  );
});
