import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/backend.js';
import { Executor } from '../src/runtime/executor.js';
import { decodePayload, hashPayload, hashPayloadAsync } from '../src/runtime/payload.js';
import { Sandbox } from '../src/runtime/sandbox.js';
import type { Input, Output, Tensor } from '../src/runtime/types.js';
import { Store } from '../src/store/store.js';
import { buildGuests, guest } from './wasm-fixtures.js';

// Sizes either side of the executor's off-thread threshold (64 KiB) and of hashPayload's
// one-shot limit (4 KiB).
const SIZES = [0, 1, 4096, 4097, 65535, 65536, 200_000] as const;

const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(...SIZES).map((n) => new Uint8Array(n).map((_, i) => (i * 31) & 0xff)),
);
const tensor: fc.Arbitrary<Tensor> = fc
  .uint8Array({ minLength: 0, maxLength: 256 })
  .map((b) => ({ dtype: 'uint8', shape: [b.length], data: b }));
const payload: fc.Arbitrary<Input | Output> = fc.oneof(
  bytes.map((b) => ({ kind: 'bytes' as const, bytes: b })),
  fc
    .tuple(bytes, fc.nat(1000))
    .map(([b, port]) => ({ kind: 'packet' as const, bytes: b, ingressPort: port })),
  fc.array(fc.tuple(fc.nat(64), bytes), { maxLength: 3 }).map((ps) => ({
    kind: 'packet' as const,
    verdict: 'XDP_PASS',
    retval: 2,
    packets: ps.map(([port, b]) => ({ port, bytes: b })),
  })),
  fc.dictionary(fc.string({ maxLength: 8 }), tensor, { maxKeys: 4 }).map((tensors) => ({
    kind: 'tensors' as const,
    tensors,
  })),
);

describe('hashPayloadAsync', () => {
  it('hashes exactly the bytes hashPayload hashes, for every payload kind and size', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (p) => {
        expect(await hashPayloadAsync(p)).toBe(hashPayload(p));
      }),
      { numRuns: 150 },
    );
  });

  it('is not affected by the caller reusing the payload buffer right after the call', async () => {
    const data = new Uint8Array(100_000).fill(1);
    const p = { kind: 'bytes' as const, bytes: data };
    const expected = hashPayload(p);
    const pending = hashPayloadAsync(p);
    data.fill(2);
    expect(await pending).toBe(expected);
  });

  it('refuses a payload of an unknown kind with a TypeError instead of hashing something', async () => {
    await expect(hashPayloadAsync({ kind: 'nope' } as unknown as Input)).rejects.toThrow(TypeError);
  });
});

describe('execute() with a large input (hashed off the calling thread)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tp-exec-hash-'));
  const store = new Store(dir);
  const backend = new WasmBackend({ path: 'in-thread' });
  const executor = new Executor({ backends: [backend], store });
  const build = () => createWasmBuild(guest('echo'), { name: 'echo' });
  const limits = { timeoutMs: 2000, memoryMb: 16, fuel: 10_000_000 };

  beforeAll(() => buildGuests());
  afterAll(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('seals the same input and output hashes as the in-place path, either side of the threshold', async () => {
    for (const size of [65535, 65536, 300_000]) {
      const input: Input = { kind: 'bytes', bytes: new Uint8Array(size).map((_, i) => (i * 7) & 0xff) };
      const sandbox = new Sandbox({ backend: 'wasm', limits });
      const r = await executor.execute(sandbox, { build: build(), entry: 'echo', input });
      expect(r.status).toBe('completed');
      expect(r.receipt.input).toEqual({ hash: hashPayload(input), size });
      expect(r.receipt.output).toEqual({ hash: hashPayload(input), size });
      // The stored input is the one hashed, so the receipt replays.
      expect(hashPayload(decodePayload(store.getPayload(r.receipt.input.hash!)))).toBe(r.receipt.input.hash);
      const report = await executor.verify(r.receipt);
      expect(report.match).toBe(true);
    }
  });

  it('still hashes and keeps a large input when the guest then fails', async () => {
    const input: Input = { kind: 'bytes', bytes: new Uint8Array(100_000).fill(9) };
    const sandbox = new Sandbox({ backend: 'wasm', limits });
    const r = await executor.execute(sandbox, { build: build(), entry: 'trap', input });
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('GUEST_TRAP');
    expect(r.receipt.input).toEqual({ hash: hashPayload(input), size: 100_000 });
    expect(store.hasPayload(r.receipt.input.hash!)).toBe(true);
  });
});
