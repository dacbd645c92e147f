import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/backend.js';
import { canonicalDigest } from '../src/runtime/canonical.js';
import { Executor } from '../src/runtime/executor.js';
import { hashPayload } from '../src/runtime/payload.js';
import { checkReceiptId, type Receipt } from '../src/runtime/receipt.js';
import { Sandbox } from '../src/runtime/sandbox.js';
import type { Input, RunContext } from '../src/runtime/types.js';
import { Store } from '../src/store/store.js';
import { buildGuests, guest, sandbox } from './wasm-fixtures.js';

const inThread = new WasmBackend({ path: 'in-thread' });
const auto = new WasmBackend();
const dir = mkdtempSync(join(tmpdir(), 'tp-exec-hot-'));
const store = new Store(dir);

beforeAll(() => buildGuests());
afterAll(async () => {
  await inThread.close();
  await auto.close();
  rmSync(dir, { recursive: true, force: true });
});

const bytesInput = (b: Uint8Array): Input => ({ kind: 'bytes', bytes: b });
/** A receipt without its id: what the id is the digest of. */
const body = (r: Receipt): Omit<Receipt, 'id'> => {
  const { id: _id, ...rest } = r;
  return rest;
};

describe('the executor hot path seals the same receipts as the generic encoder', () => {
  it('for any sequence of builds, sandboxes, entries, inputs, outcomes and parents', async () => {
    const executor = new Executor({ backends: [inThread], store });
    const builds = [
      createWasmBuild(guest('echo'), { name: 'echo' }),
      createWasmBuild(guest('echo'), { name: 'echo-again' }), // other build id, same code
    ];
    // All metered: this backend runs in-thread, where only fuel stops 'spin'.
    const specs = [
      { timeoutMs: 1000, memoryMb: 16, fuel: 1_000_000 },
      { timeoutMs: 2000, memoryMb: 16, fuel: 5_000 },
      { timeoutMs: 1000, memoryMb: 16, fuel: 2_000, callDepth: 64 },
    ];
    const parents: string[] = [];
    const step = fc.record({
      build: fc.nat(builds.length - 1),
      spec: fc.nat(specs.length - 1),
      entry: fc.constantFrom('echo', 'reverse', 'fail', 'trap', 'spin', 'no-such-entry'),
      input: fc.uint8Array({ maxLength: 300 }),
      withParent: fc.boolean(),
      // Attributed executions (the daemon's) and unattributed ones (library use), interleaved.
      attribution: fc.option(
        fc.record({
          actor: fc.stringMatching(/^[\x20-\x7e\u00e9\u{1F600}]{1,40}$/u),
          requestId: fc.stringMatching(/^[0-9a-z-]{1,64}$/),
        }),
        { nil: undefined },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        for (const s of steps) {
          const sb = new Sandbox({ backend: 'wasm', limits: specs[s.spec] });
          const input = bytesInput(s.input);
          const r = await executor.execute(sb, {
            build: builds[s.build]!,
            entry: s.entry,
            input,
            parents: s.withParent && parents.length > 0 ? [parents[parents.length - 1]!] : [],
            ...(s.attribution === undefined ? {} : { attribution: s.attribution }),
          });
          // Attribution is sealed as given, and an unattributed receipt has no such keys at all.
          if (s.attribution === undefined) {
            expect(Object.hasOwn(r.receipt, 'actor') || Object.hasOwn(r.receipt, 'requestId')).toBe(false);
          } else {
            expect(r.receipt.actor).toBe(s.attribution.actor);
            expect(r.receipt.requestId).toBe(s.attribution.requestId);
          }
          // The id is the digest of the generic canonical encoding of the body.
          expect(r.receipt.id).toBe(canonicalDigest(body(r.receipt)));
          expect(() => checkReceiptId(r.receipt)).not.toThrow();
          expect(r.receipt.input).toEqual({ hash: hashPayload(input), size: s.input.length });
          if (r.status === 'completed') {
            expect(r.receipt.output?.hash).toBe(hashPayload(r.output!));
          }
          // What the log kept is the same receipt.
          expect(store.getReceipt(r.receipt.id)).toEqual(r.receipt);
          parents.push(r.receipt.id);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('without a store too, and a replay of such a receipt matches', async () => {
    const executor = new Executor({ backends: [inThread] });
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const sb = new Sandbox({ backend: 'wasm', limits: { timeoutMs: 1000, memoryMb: 16, fuel: 100_000 } });
      const r = await executor.execute(sb, {
        build,
        entry: 'reverse',
        input: bytesInput(new Uint8Array([i])),
      });
      expect(r.status).toBe('completed');
      expect(r.receipt.id).toBe(canonicalDigest(body(r.receipt)));
      seen.add(r.receipt.id);
    }
    expect(seen.size).toBe(5);
  });
});

describe('CPU accounting', () => {
  const build = createWasmBuild(guest('echo'), { name: 'echo' });
  const input = bytesInput(new Uint8Array(8).fill(1));
  const run = async (executor: Executor, fuel: number | undefined) => {
    const limits = { timeoutMs: 1000, memoryMb: 16, ...(fuel === undefined ? {} : { fuel }) };
    const r = await executor.execute(new Sandbox({ backend: 'wasm', limits }), {
      build,
      entry: 'echo',
      input,
    });
    expect(r.status).toBe('completed');
    return r.receipt.resources;
  };

  it('by default, leaves CPU time out of fuel-metered receipts (fuel is their cost) and measures the rest', async () => {
    const executor = new Executor({ backends: [auto] });
    const metered = await run(executor, 1_000_000);
    expect(metered.cpuUs).toBeNull();
    expect(metered.fuelUsed).toBeGreaterThan(0);
    const unmetered = await run(executor, undefined);
    expect(unmetered.cpuUs).toEqual(expect.any(Number));
    expect(unmetered.fuelUsed).toBeNull();
  });

  it('refuses a setting that is not true, false or unmetered, naming the option', () => {
    expect(
      () => new Executor({ backends: [auto], cpuAccounting: 'sometimes' as unknown as boolean }),
    ).toThrow(expect.objectContaining({ code: 'VALIDATION_TYPE', path: 'ExecutorOptions.cpuAccounting' }));
  });

  it('measures always with `true` and never with `false`', async () => {
    expect((await run(new Executor({ backends: [auto], cpuAccounting: true }), 1_000_000)).cpuUs).toEqual(
      expect.any(Number),
    );
    expect((await run(new Executor({ backends: [auto], cpuAccounting: false }), undefined)).cpuUs).toBeNull();
  });
});

describe('the synchronous in-thread path', () => {
  it('gives what run() gives, and nothing for a module that runs on a worker', async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const spec = sandbox({ fuel: 100_000 });
    const p = await inThread.prepare(build, spec);
    const input = bytesInput(new Uint8Array([1, 2, 3]));
    const a: RunContext = { entry: 'reverse', sandbox: spec, usage: {} };
    const b: RunContext = { entry: 'reverse', sandbox: spec, usage: {} };
    expect(inThread.runSync(p, input, a)).toEqual(await inThread.run(p, input, b));
    expect(a.usage).toEqual(b.usage);
    const onWorker = await auto.prepare(build, sandbox());
    expect(auto.runSync(onWorker, input, { entry: 'echo', sandbox: sandbox(), usage: {} })).toBeUndefined();
  });

  it('throws the typed errors run() rejects with, and the executor seals them as failures', async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const spec = sandbox({ fuel: 100_000, maxInputBytes: 4 });
    const p = await inThread.prepare(build, spec);
    const ctx = (entry: string): RunContext => ({ entry, sandbox: spec, usage: {} });
    const tensors = { kind: 'tensors', tensors: {} } as Input;
    expect(() => inThread.runSync(p, tensors, ctx('echo'))).toThrow(/input\.kind/);
    expect(() => inThread.runSync(p, bytesInput(new Uint8Array(5)), ctx('echo'))).toThrow(
      expect.objectContaining({ code: 'LIMIT_MAX_INPUT_BYTES' }),
    );
    expect(() => inThread.runSync(p, bytesInput(new Uint8Array(1)), ctx('nope'))).toThrow(
      expect.objectContaining({ code: 'WASM_NO_SUCH_EXPORT' }),
    );
    expect(() => inThread.runSync(p, bytesInput(new Uint8Array(1)), ctx('spin'))).toThrow(
      expect.objectContaining({ code: 'LIMIT_FUEL' }),
    );

    const executor = new Executor({ backends: [inThread] });
    const r = await executor.execute(new Sandbox(spec), {
      build,
      entry: 'spin',
      input: bytesInput(new Uint8Array(1)),
    });
    expect(r.status).toBe('failed');
    expect(r.receipt.error).toMatchObject({ code: 'LIMIT_FUEL' });
    expect(r.receipt.input.hash).toBe(hashPayload(bytesInput(new Uint8Array(1))));
  });

  it('re-prepares after dispose instead of running a disposed module from the ready cache', async () => {
    const executor = new Executor({ backends: [inThread] });
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const sb = new Sandbox({ backend: 'wasm', limits: { timeoutMs: 1000, memoryMb: 16, fuel: 100_000 } });
    const go = async () => {
      const r = await executor.execute(sb, { build, entry: 'echo', input: bytesInput(new Uint8Array(2)) });
      sb.reset();
      return r;
    };
    expect((await go()).status).toBe('completed');
    await executor.dispose(build, sb.spec);
    const again = await go();
    expect(again.error).toBeNull();
    expect(again.status).toBe('completed');
  });
});
