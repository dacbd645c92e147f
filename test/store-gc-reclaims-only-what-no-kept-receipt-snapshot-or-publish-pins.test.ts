/**
 * GC under retention: payloads of expired receipts are reclaimed (verify then says "payload
 * reclaimed by GC"), while kept receipts, snapshots and published artifacts pin theirs; receipts
 * never leave the log; dead segments are freed and partly dead ones compacted, and the report
 * says what was freed. A dry run reports the same and changes nothing.
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { sealReceipt } from '../src/runtime/receipt.js';
import { ArtifactReclaimedError } from '../src/store/artifacts/errors.js';
import { chooseKept, type ReceiptRefs } from '../src/store/retention.js';
import { Store } from '../src/store/store.js';
import { Thunderpac } from '../src/thunderpac.js';
import { sampleReceipt } from './helpers/receipt-log-fixtures.js';
import { buildGuests, guest } from './wasm-fixtures.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-gc-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** n receipts, each with its own 1000-byte input and one shared output. */
function fill(store: Store, n: number): { ids: string[]; inputs: string[]; output: string } {
  const output = sha('shared output');
  store.putPayload(output, Buffer.from('shared output'));
  const ids: string[] = [];
  const inputs: string[] = [];
  for (let i = 0; i < n; i++) {
    const bytes = Buffer.alloc(1000, i);
    const key = sha(`input ${i}`);
    store.putPayload(key, bytes);
    const { id: _, ...body } = sampleReceipt(i, 'gc');
    const r = sealReceipt({ ...body, input: { hash: key, size: 1000 }, output: { hash: output, size: 13 } });
    store.appendReceipt(r);
    ids.push(r.id);
    inputs.push(key);
  }
  store.flush();
  store.receipts.flush();
  return { ids, inputs, output };
}

describe('store gc', () => {
  it('reclaims the payloads of expired receipts only, keeps every receipt, and reports it', () => {
    const store = new Store(dir, { segmentBytes: 4096 });
    const { ids, inputs, output } = fill(store, 12);
    store.artifacts.publish(inputs[0]!); // published: never reclaimed
    const before = store.stat();

    const dry = store.gc({ retention: { keepReceipts: 4 }, graceMs: 0, dryRun: true });
    expect(dry.receipts).toEqual({ total: 12, kept: 4, expired: 8 });
    expect(dry.reclaimed.artifacts).toBe(7);
    expect(store.stat()).toEqual(before); // nothing changed
    for (const k of inputs) expect(store.hasPayload(k)).toBe(true);

    const report = store.gc({ retention: { keepReceipts: 4 }, graceMs: 0 });
    expect(report.receipts).toEqual(dry.receipts);
    expect(report.reclaimed).toEqual({ artifacts: 7, bytes: 7000 });
    expect(report.freed.bytes).toBeGreaterThan(5000);
    expect(report.freed.files).toBeGreaterThan(0);
    expect(store.stat().bytes).toBeLessThan(before.bytes - 5000);

    expect(store.receipts.size).toBe(12); // receipts never leave the log
    for (const id of ids) expect(store.getReceipt(id).id).toBe(id);
    expect([...store.getPayload(inputs[0]!)]).toEqual([...Buffer.alloc(1000, 0)]);
    for (let i = 1; i < 8; i++) {
      expect(() => store.getPayload(inputs[i]!)).toThrow(ArtifactReclaimedError);
      expect(() => store.getPayload(inputs[i]!)).toThrow(/reclaimed by GC/);
    }
    for (let i = 8; i < 12; i++)
      expect([...store.getPayload(inputs[i]!)]).toEqual([...Buffer.alloc(1000, i)]);
    expect(store.getPayload(output).toString()).toBe('shared output');
    store.close();

    // The same after reopening (the reclaimed markers are in the index).
    const again = new Store(dir, { readOnly: true });
    expect(() => again.getPayload(inputs[3]!)).toThrow(/reclaimed by GC/);
    expect(again.getPayload(inputs[9]!).length).toBe(1000);
    again.close();
  });

  it('keeps what a snapshot pins until the snapshot is dropped', () => {
    const store = new Store(dir, { segmentBytes: 4096 });
    const { inputs } = fill(store, 12);
    const snap = store.snapshot('before gc');
    expect(store.snapshots().map((s) => s.id)).toEqual([snap.id]);
    expect(snap.artifacts).toBe(13);
    store.gc({ retention: { keepReceipts: 2 }, graceMs: 0 });
    expect(() => store.getPayload(inputs[0]!)).toThrow(/reclaimed by GC/);
    // The snapshot still reads every block it names, re-hashed, compacted or not.
    const t = store.snapshots_.open(snap.id);
    let read = 0;
    for (const e of t.entries()) {
      store.blocks.read(e, e.block);
      read++;
    }
    t.close();
    expect(read).toBe(13);
    const pinned = store.stat().bytes;
    store.dropSnapshot(snap.id);
    const report = store.gc({ retention: { keepReceipts: 2 }, graceMs: 0 });
    expect(report.freed.bytes).toBeGreaterThan(5000);
    expect(store.stat().bytes).toBeLessThan(pinned - 5000);
    store.close();
  });

  it('compaction moves live blocks out of partly dead segments and frees the rest', () => {
    const store = new Store(dir, { segmentBytes: 8192 });
    const keys: string[] = [];
    for (let i = 0; i < 40; i++) keys.push(store.artifacts.put(Buffer.alloc(700, i), { kind: 'blob' }));
    store.flush();
    for (let i = 0; i < 40; i += 2) store.artifacts.tombstone(keys[i]!);
    const before = store.stat();
    const report = store.compact();
    expect(report.segmentsCompacted).toBeGreaterThan(0);
    expect(report.bytesFreed).toBeGreaterThan(0);
    expect(store.stat().bytes).toBeLessThan(before.bytes);
    for (let i = 1; i < 40; i += 2)
      expect([...store.artifacts.get(keys[i]!)]).toEqual([...Buffer.alloc(700, i)]);
    store.close();
    const again = new Store(dir);
    for (let i = 1; i < 40; i += 2) expect(again.artifacts.get(keys[i]!).length).toBe(700);
    for (let i = 0; i < 40; i += 2) expect(again.artifacts.has(keys[i]!)).toBe(false);
    again.close();
  });

  it('retention keeps exactly the receipts every policy keeps (against a brute-force model)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ age: fc.nat(30), size: fc.nat(100) }), { maxLength: 40 }),
        fc.option(fc.nat(40), { nil: undefined }),
        fc.option(fc.nat(30), { nil: undefined }),
        fc.option(fc.nat(2000), { nil: undefined }),
        (rows, keepReceipts, keepDays, maxBytes) => {
          const now = 100 * 86_400_000;
          const refs: ReceiptRefs[] = rows.map((r, i) => ({
            id: String(i),
            startedAtMs: now - r.age * 86_400_000,
            payloads: [`p${i}`],
            buildId: 'b',
          }));
          const size = (k: string): number => rows[Number(k.slice(1))]!.size;
          const kept = chooseKept(refs, { keepReceipts, keepDays, maxBytes }, now, size);
          let budget = 0;
          let full = false;
          for (let i = rows.length - 1; i >= 0; i--) {
            let want = true;
            if (keepReceipts !== undefined && i < rows.length - keepReceipts) want = false;
            if (keepDays !== undefined && rows[i]!.age > keepDays) want = false;
            if (maxBytes !== undefined) {
              if (full || budget + rows[i]!.size > maxBytes) {
                full = true;
                want = false;
              } else budget += rows[i]!.size;
            }
            expect(kept[i]).toBe(want);
          }
        },
      ),
    );
  });
});

describe('verify of an expired receipt', () => {
  beforeAll(() => buildGuests());

  it('says the payload was reclaimed by GC instead of reporting corruption', async () => {
    const tp = await Thunderpac.open({ store: dir });
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const sandbox = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16 } });
    const input = (s: string) => ({ kind: 'bytes' as const, bytes: new TextEncoder().encode(s) });
    const old = await tp.execute(sandbox, { build, entry: 'reverse', input: input('old one') });
    const fresh = await tp.execute(sandbox, { build, entry: 'reverse', input: input('new one') });
    const report = tp.store!.gc({ retention: { keepReceipts: 1 }, graceMs: 0 });
    expect(report.receipts.expired).toBe(1);
    expect((await tp.verify(fresh.receipt.id)).match).toBe(true);
    const expired = await tp.verify(old.receipt.id);
    expect(expired.match).toBe(false);
    expect(expired.problem).toMatch(/payload reclaimed by GC/);
    await tp.close();
  });
});
