import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend, type WasmPrepared } from '../src/backends/wasm/index.js';
import { LimitExceededError } from '../src/runtime/errors.js';
import type { Output, SandboxSpec } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';
import { buildGuests, ctx, guest, sandbox, u32s } from './wasm-fixtures.js';

const worker = new WasmBackend({ path: 'worker', workers: 1 });
const inThread = new WasmBackend({ path: 'in-thread' });
const auto = new WasmBackend();
const FUEL = 50_000_000;
const metered = sandbox({ fuel: FUEL });

let kernelsT: WasmPrepared;
let kernelsW: WasmPrepared;
let echoT: WasmPrepared;
let echoW: WasmPrepared;

beforeAll(async () => {
  buildGuests();
  const kernels = createWasmBuild(guest('kernels'), { name: 'kernels' });
  const echo = createWasmBuild(guest('echo'), { name: 'echo' });
  kernelsT = await inThread.prepare(kernels, metered);
  kernelsW = await worker.prepare(kernels, metered);
  echoT = await inThread.prepare(echo, metered);
  echoW = await worker.prepare(echo, metered);
});

afterAll(async () => {
  await worker.close();
  await inThread.close();
  await auto.close();
});

async function run(
  backend: WasmBackend,
  p: WasmPrepared,
  entry: string,
  input: Uint8Array,
  spec: SandboxSpec = metered,
): Promise<{ out: Output | Error; fuel: number | undefined }> {
  const c = ctx(entry, spec);
  const out = await backend.run(p, { kind: 'bytes', bytes: input }, c).catch((e: Error) => e);
  return { out, fuel: c.usage.fuelUsed };
}

const CASES: [string, Uint8Array][] = [
  ['fib', u32s(20)],
  ['hash', u32s(50, 1, 2, 3)],
  ['matmul', u32s(12, 7)],
  ['sort', u32s(500, 9)],
  ['interp', u32s(1000)],
  ['collatz', u32s(50, 27)],
];

describe('fuel metering', () => {
  it('same module + input: same output and same fuel, run after run, on both paths', async () => {
    for (const [entry, input] of CASES) {
      const first = await run(inThread, kernelsT, entry, input);
      expect(first.out).not.toBeInstanceOf(Error);
      expect(first.fuel).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) {
        expect(await run(inThread, kernelsT, entry, input)).toEqual(first);
        expect(await run(worker, kernelsW, entry, input)).toEqual(first);
      }
    }
  });

  it('fuel grows with the work done', async () => {
    const small = await run(inThread, kernelsT, 'fib', u32s(10));
    const big = await run(inThread, kernelsT, 'fib', u32s(15));
    expect(big.fuel!).toBeGreaterThan(small.fuel! * 5);
  });

  it('runs with exactly the fuel it needs, and fails with one unit less', async () => {
    const { fuel } = await run(inThread, kernelsT, 'interp', u32s(200));
    const build = createWasmBuild(guest('kernels'), { name: 'kernels' });
    const exact = sandbox({ fuel: fuel! });
    const short = sandbox({ fuel: fuel! - 1 });
    for (const backend of [inThread, worker]) {
      const ok = await run(backend, await backend.prepare(build, exact), 'interp', u32s(200), exact);
      expect(ok.out).not.toBeInstanceOf(Error);
      expect(ok.fuel).toBe(fuel);
      const fail = await run(backend, await backend.prepare(build, short), 'interp', u32s(200), short);
      expect(fail.out).toBeInstanceOf(LimitExceededError);
      expect(fail.out).toMatchObject({ limit: 'fuel', allowed: fuel! - 1, code: 'LIMIT_FUEL' });
    }
  });

  it('an infinite loop stops at the same fuel count every time, on both paths', async () => {
    const spec = sandbox({ fuel: 100_000 });
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const seen = new Set<string>();
    for (const backend of [inThread, worker, inThread, worker]) {
      const p = await backend.prepare(build, spec);
      const { out, fuel } = await run(backend, p, 'spin', new Uint8Array(3), spec);
      expect(out).toBeInstanceOf(LimitExceededError);
      expect(out).toMatchObject({ limit: 'fuel', allowed: 100_000 });
      seen.add(JSON.stringify([(out as LimitExceededError).observed, fuel]));
    }
    expect(seen.size).toBe(1);
    const [observed] = JSON.parse([...seen][0]!) as [number];
    expect(observed).toBeGreaterThan(100_000);
    expect(observed).toBeLessThan(100_100);
  });

  it('an out-of-fuel trap leaves nothing behind: the next execution is unchanged', async () => {
    const spec = sandbox({ fuel: 1000 });
    const p = await inThread.prepare(createWasmBuild(guest('kernels'), { name: 'kernels' }), spec);
    const before = await run(inThread, p, 'interp', u32s(3), spec);
    expect((await run(inThread, p, 'interp', u32s(100_000), spec)).out).toMatchObject({ limit: 'fuel' });
    expect(await run(inThread, p, 'interp', u32s(3), spec)).toEqual(before);
  });

  it("path 'auto' runs metered modules in-thread and unmetered ones in a worker", async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    expect((await auto.prepare(build, metered)).path).toBe('in-thread');
    expect((await auto.prepare(build, sandbox())).path).toBe('worker');
    expect(echoT.instrumented.chargeSites).toBeGreaterThan(0);
    expect((await run(auto, await auto.prepare(build, metered), 'echo', u32s(1))).fuel).toEqual(
      (await run(worker, echoW, 'echo', u32s(1))).fuel,
    );
  });
});

describe('fuel in receipts', () => {
  it('receipts carry fuelUsed, and a replay after reopening reproduces it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tp-fuel-'));
    try {
      let tp = await Thunderpac.open({ store: dir });
      const build = createWasmBuild(guest('kernels'), { name: 'kernels' });
      const sb = () => tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16, fuel: FUEL } });
      const input = { kind: 'bytes' as const, bytes: u32s(18) };
      const a = await tp.execute(sb(), { build, entry: 'fib', input });
      const b = await tp.execute(sb(), { build, entry: 'fib', input });
      expect(a.status).toBe('completed');
      expect(a.receipt.resources.fuelUsed).toBeGreaterThan(0);
      expect(b.receipt.resources.fuelUsed).toBe(a.receipt.resources.fuelUsed);
      expect(b.receipt.output).toEqual(a.receipt.output);
      expect(a.receipt.determinism.flags).toContain('nan-canonical');
      const failed = await tp.execute(
        tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16, fuel: 1000 } }),
        { build, entry: 'fib', input },
      );
      expect(failed.status).toBe('failed');
      expect(failed.receipt.error).toMatchObject({ code: 'LIMIT_FUEL', limit: 'fuel' });
      await tp.close();
      tp = await Thunderpac.open({ store: dir });
      for (const r of [a, failed]) {
        const report = await tp.verify(r.receipt.id);
        expect(report).toMatchObject({ match: true, mismatches: [] });
        expect(report.replay?.resources.fuelUsed).toBe(r.receipt.resources.fuelUsed);
      }
      await tp.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
