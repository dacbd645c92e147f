import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogIntegrityError } from '../src/store/errors.js';
import { type Receipt, sealReceipt } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';
import { syntheticReceiptBody } from './helpers/receipt-bodies.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tp-lineage-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const hash = (n: number) => n.toString(16).padStart(64, '0');
let serial = 0;

/** A receipt consuming payload `input`, producing `output` (or nothing), naming `parents`. */
function receipt(input: number, output: number | null, parents: string[]): Receipt {
  serial++;
  return sealReceipt(
    syntheticReceiptBody({
      buildId: hash(0xb),
      input: { hash: hash(input), size: 1 },
      output: output === null ? null : { hash: hash(output), size: 1 },
      startedAt: new Date(1_700_000_000_000 + serial).toISOString(),
      durationNs: serial,
      status: output === null ? 'failed' : 'completed',
      parents,
    }),
  );
}

interface Node {
  input: number;
  output: number | null;
  parents: number[];
}

const graph = fc.array(
  fc.record({
    input: fc.integer({ min: 1, max: 12 }),
    output: fc.option(fc.integer({ min: 1, max: 12 }), { nil: null }),
    parents: fc.uniqueArray(fc.nat(40), { maxLength: 3 }),
  }),
  { minLength: 1, maxLength: 40 },
);

function build(dir: string, nodes: Node[], split: number): Receipt[] {
  const out: Receipt[] = [];
  let store = new Store(dir);
  nodes.forEach((n, i) => {
    if (i === split) {
      store.provenance; // an index that checkpointed part of the log, then catches up
      store.close();
      store = new Store(dir);
    }
    const parents = [...new Set(n.parents.filter((p) => p < i))].map((p) => out[p]!.id);
    const r = receipt(n.input, n.output, parents);
    store.appendReceipt(r);
    out.push(r);
  });
  store.close();
  return out;
}

/** Downstream of `from` by brute force over every receipt. */
function bruteDerived(all: Receipt[], from: string): Set<string> {
  const seen = new Set<string>();
  const queue = [from];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const r of all) {
      if (seen.has(r.id)) continue;
      if (r.input.hash === node || r.parents.includes(node)) {
        seen.add(r.id);
        queue.push(r.id);
        if (r.output?.hash) queue.push(r.output.hash);
      }
    }
  }
  return seen;
}

describe('lineage index', () => {
  it('answers producers, consumers, children and derived-from as a brute-force walk of the log does', () => {
    fc.assert(
      fc.property(graph, fc.nat(40), (nodes, split) => {
        const dir = mkdtempSync(join(tmp, 's'));
        const all = build(dir, nodes, split);
        const store = new Store(dir, { readOnly: true });
        try {
          const p = store.provenance;
          for (let h = 1; h <= 12; h++) {
            const sorted = (xs: string[]) => [...xs].sort();
            expect(sorted(p.producers(hash(h)))).toEqual(
              sorted(all.filter((r) => r.output?.hash === hash(h)).map((r) => r.id)),
            );
            expect(sorted(p.consumers(hash(h)))).toEqual(
              sorted(all.filter((r) => r.input.hash === hash(h)).map((r) => r.id)),
            );
            expect(new Set(p.derivedFrom(hash(h), 10_000).receipts.map((d) => d.receipt))).toEqual(
              bruteDerived(all, hash(h)),
            );
          }
          for (const r of all) {
            expect(p.children(r.id).sort()).toEqual(
              all
                .filter((c) => c.parents.includes(r.id))
                .map((c) => c.id)
                .sort(),
            );
          }
        } finally {
          store.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('persists a checkpoint, and rebuilds from the log one that is damaged, cut or of another store', () => {
    const dir = join(tmp, 'a');
    const all = build(
      dir,
      Array.from({ length: 30 }, (_, i) => ({ input: i + 1, output: i + 2, parents: i ? [i - 1] : [] })),
      10,
    );
    const idx = join(dir, 'provenance', 'lineage.idx');
    // A writer that used provenance checkpoints it on close, covering the whole log.
    const w = new Store(dir);
    expect(w.provenance.lineage.tailEdges).toBe(20 * 2 + 20);
    w.close();
    const open = () => new Store(dir, { readOnly: true });
    let s = open();
    expect(s.provenance.lineage.rebuilt).toBeNull();
    expect(s.provenance.lineage.checkpointEdges).toBe(30 * 2 + 29);
    expect(s.provenance.lineage.tailEdges).toBe(0);
    expect(s.provenance.children(all[3]!.id)).toEqual([all[4]!.id]);
    s.close();

    const good = readFileSync(idx);
    const cases: [string, Buffer, RegExp][] = [
      ['header', Buffer.from(good).fill(0x55, 20, 21), /header fails its checksum/],
      ['cut', good.subarray(0, good.length - 10), /counts 89 edges/],
      [
        'magic',
        Buffer.concat([Buffer.from('TPLINE9\n'), good.subarray(8)]),
        /not a lineage index of this format/,
      ],
    ];
    for (const [, bytes, why] of cases) {
      writeFileSync(idx, bytes);
      s = open();
      expect(s.provenance.lineage.rebuilt).toMatch(why);
      expect(s.provenance.children(all[3]!.id)).toEqual([all[4]!.id]); // answered from the log
      expect(s.provenance.producers(hash(5))).toEqual([all[3]!.id]);
      s.close();
    }
    // A writer rewrites it whole again.
    const w2 = new Store(dir);
    w2.provenance;
    w2.close();
    expect(readFileSync(idx).equals(good)).toBe(true);

    // Another store's checkpoint: its covered receipts are not this log's.
    const other = join(tmp, 'b');
    build(other, [{ input: 1, output: 2, parents: [] }], 99);
    const wo = new Store(other);
    wo.provenance;
    wo.close();
    copyFileSync(join(other, 'provenance', 'lineage.idx'), idx);
    s = open();
    expect(s.provenance.lineage.rebuilt).toMatch(/not what the receipt log holds/);
    expect(s.provenance.producers(hash(2))).toEqual([all[0]!.id]);
    s.close();

    // A damaged edge is reported with its byte offset when read, and by verify().
    const w3 = new Store(dir);
    w3.provenance;
    w3.close();
    const bytes = readFileSync(idx);
    bytes[1096 + 69 * 5 + 40]! ^= 0xff;
    writeFileSync(idx, bytes);
    s = open();
    expect(() => s.provenance.verify()).toThrow(LogIntegrityError);
    expect(() => s.provenance.verify()).toThrow(`(at byte ${1096 + 69 * 5})`);
    s.close();
  });
});
