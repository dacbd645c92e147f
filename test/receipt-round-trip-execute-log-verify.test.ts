import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { checkReceiptId, type Receipt } from '../src/runtime/receipt.js';
import { sha256Hex } from '../src/runtime/canonical.js';
import { Thunderpac } from '../src/thunderpac.js';
import { buildGuests, guest } from './wasm-fixtures.js';

let dir: string;
let tp: Thunderpac;
const hello = { kind: 'bytes' as const, bytes: new TextEncoder().encode('hello, receipts') };

beforeAll(() => buildGuests());
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tp-rt-'));
  tp = await Thunderpac.open({ store: dir });
});
afterEach(async () => {
  await tp.close();
  rmSync(dir, { recursive: true, force: true });
});

async function runEcho(entry = 'reverse'): Promise<Receipt> {
  const build = createWasmBuild(guest('echo'), { name: 'echo' });
  const sandbox = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16 } });
  const r = await tp.execute(sandbox, { build, entry, input: hello });
  expect(r.status).toBe('completed');
  return r.receipt;
}

async function reopen(): Promise<void> {
  await tp.close();
  tp = await Thunderpac.open({ store: dir });
}

describe('receipt round trip: execute → log → verify', () => {
  it('seals a receipt whose id is the hash of its body and that replays after a restart', async () => {
    const receipt = await runEcho();
    expect(() => checkReceiptId(receipt)).not.toThrow();
    expect(receipt.output?.size).toBe(hello.bytes.length);
    expect(receipt.runtime).toMatchObject({ node: process.versions.node, v8: process.versions.v8 });
    expect(receipt.resources.peakMemoryBytes).toBeGreaterThan(0);
    await reopen();
    expect(tp.store!.getReceipt(receipt.id)).toEqual(receipt);
    const report = await tp.verify(receipt.id);
    expect(report).toMatchObject({ match: true, problem: null, mismatches: [] });
    expect(report.replay?.output).toEqual(receipt.output);
  });

  it('the same input gives the same output hash in a new execution', async () => {
    const a = await runEcho();
    const b = await runEcho();
    expect(a.id).not.toBe(b.id); // start time and duration differ
    expect(b.output).toEqual(a.output);
    expect(b.input).toEqual(a.input);
  });

  it('records parent receipts and refuses unknown parents', async () => {
    const parent = await runEcho();
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const sandbox = tp.sandbox({ backend: 'wasm' });
    const child = await tp.execute(sandbox, { build, entry: 'echo', input: hello, parents: [parent.id] });
    expect(child.receipt.parents).toEqual([parent.id]);
    await expect(
      tp.execute(sandbox, { build, entry: 'echo', input: hello, parents: ['f'.repeat(64)] }),
    ).rejects.toThrow(/not found/);
    await expect(
      tp.execute(sandbox, { build, entry: 'echo', input: hello, parents: ['nope'] }),
    ).rejects.toThrow(/parents\[0\]/);
  });

  it('detects a tampered receipt', async () => {
    const receipt = await runEcho();
    const forged = { ...receipt, output: { hash: 'e'.repeat(64), size: 1 } };
    const report = await tp.executor.verify(forged);
    expect(report.match).toBe(false);
    expect(report.problem).toMatch(/does not hash to its id/);
  });

  it('detects a replay that does not reproduce the recorded output', async () => {
    const receipt = await runEcho('reverse');
    // A receipt that claims another entry ran gives a different output on replay.
    const { id: _, ...body } = receipt;
    const { sealReceipt } = await import('../src/runtime/receipt.js');
    const claim = sealReceipt({ ...body, entry: 'echo' });
    const report = await tp.executor.verify(claim);
    expect(report.match).toBe(false);
    expect(report.mismatches.map((m) => m.field)).toEqual(['output']);
  });

  it('detects a tampered build artifact on disk', async () => {
    const receipt = await runEcho();
    const build = tp.store!.getBuild(receipt.buildId);
    const digest = build.manifest.artifacts['module.wasm']!.digest;
    const { path, offset, length } = tp.store!.artifacts.locate(digest);
    const bytes = readFileSync(path);
    bytes[offset + length - 1] = bytes[offset + length - 1]! ^ 1;
    writeFileSync(path, bytes);
    await reopen();
    const report = await tp.verify(receipt.id);
    expect(report.match).toBe(false);
    expect(report.problem).toMatch(/altered/);
  });

  it('detects a tampered stored input', async () => {
    const receipt = await runEcho();
    // Find the block holding the payload and change its last byte.
    const { path, offset, length } = tp.store!.artifacts.locate(receipt.input.hash!);
    const bytes = readFileSync(path);
    bytes[offset + length - 1] = bytes[offset + length - 1]! ^ 1;
    writeFileSync(path, bytes);
    await reopen();
    const report = await tp.verify(receipt.id);
    expect(report.match).toBe(false);
    expect(report.problem).toMatch(/altered|does not match/);
  });

  it('stores artifacts content-addressed: every block hashes to its id', async () => {
    await runEcho();
    const store = tp.store!;
    store.flush();
    let blocks = 0;
    for (const seg of store.blocks.segments()) {
      blocks += store.blocks.verifySegment(seg, (id, loc) => {
        const bytes = readFileSync(store.blocks.segmentPath(seg)).subarray(
          loc.offset,
          loc.offset + loc.length,
        );
        expect(sha256Hex(bytes)).toBe(id);
      });
    }
    for (const id of store.blocks.largeBlocks()) {
      expect(sha256Hex(readFileSync(store.blocks.largePath(id)))).toBe(id);
      blocks++;
    }
    expect(blocks).toBeGreaterThan(0);
  });
});

describe('failed executions end with a receipt that says why', () => {
  it.each([
    ['runaway guest → timeout', 'spin', { timeoutMs: 200 }, 'LIMIT_TIMEOUT_MS', 'timeoutMs'],
    [
      'output over maxOutputBytes',
      'big',
      { maxOutputBytes: 1024 },
      'LIMIT_MAX_OUTPUT_BYTES',
      'maxOutputBytes',
    ],
    ['input over maxInputBytes', 'echo', { maxInputBytes: 4 }, 'LIMIT_MAX_INPUT_BYTES', 'maxInputBytes'],
  ] as const)('%s', async (_, entry, limits, code, limit) => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const sandbox = tp.sandbox({ backend: 'wasm', limits });
    const started = Date.now();
    const r = await tp.execute(sandbox, { build, entry, input: hello });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(r.status).toBe('failed');
    expect(r.output).toBeNull();
    expect(r.receipt.error).toMatchObject({ code, limit });
    expect(tp.store!.getReceipt(r.receipt.id).status).toBe('failed');
    expect(sandbox.state).toBe('idle');
  });

  it('a guest over its memory cap is refused, with a receipt', async () => {
    const build = createWasmBuild(guest('mem_huge'), { name: 'mem_huge' });
    const r = await tp.execute(tp.sandbox({ backend: 'wasm', limits: { memoryMb: 16 } }), {
      build,
      entry: 'echo',
      input: hello,
    });
    expect(r.status).toBe('failed');
    expect(r.receipt.error).toMatchObject({ code: 'LIMIT_MEMORY_MB', limit: 'memoryMb' });
    // The input was valid, so it is hashed and kept: the refusal itself replays.
    expect(r.receipt.input.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await tp.verify(r.receipt.id)).toMatchObject({ match: true, problem: null });
  });

  it('an oversized input is refused before it is hashed', async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const r = await tp.execute(tp.sandbox({ backend: 'wasm', limits: { maxInputBytes: 8 } }), {
      build,
      entry: 'echo',
      input: hello,
    });
    expect(r.receipt.input).toEqual({ hash: null, size: hello.bytes.length });
    const report = await tp.verify(r.receipt.id);
    expect(report.match).toBe(false);
    expect(report.problem).toMatch(/refused before it was hashed/);
  });

  it('misuse throws instead of producing a receipt', async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    await expect(
      tp.execute(tp.sandbox({ backend: 'ebpf' }), { build, entry: 'echo', input: hello }),
    ).rejects.toThrow(/BACKEND_MISMATCH|is a 'wasm' program/);
    await expect(tp.verify('0'.repeat(64))).rejects.toThrow(/not found/);
  });
});
