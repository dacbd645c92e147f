import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { LogRewrittenError, ProofError } from '../src/store/merkle/errors.js';
import { verifyProofDocument } from '../src/store/merkle/proof.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  type NodeSource,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../src/store/merkle/rfc6962.js';
import { sealReceipt } from '../src/runtime/receipt.js';
import { TreeHeadSigner } from '../src/store/signing.js';
import { Store } from '../src/store/store.js';
import { sampleReceipt, writeClosedLog } from './helpers/receipt-log-fixtures.js';

// ---- RFC 6962 §2.1, written out as the RFC states it, over arrays (the brute-force reference)

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);
const k = (n: number) => {
  let x = 1;
  while (x * 2 < n) x *= 2;
  return x;
};
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(LEAF, d[0]!);
  const s = k(d.length);
  return sha(NODE, mth(d.slice(0, s)), mth(d.slice(s)));
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s
    ? [...path(m, d.slice(0, s)), mth(d.slice(s))]
    : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}
const proof = (m: number, d: Buffer[]) => (m === 0 || m === d.length ? [] : subproof(m, d, true));

/** A NodeSource over leaves, computing each complete subtree by brute force. */
function source(d: Buffer[]): NodeSource {
  return { node: (level, index) => mth(d.slice(index * 2 ** level, (index + 1) * 2 ** level)) };
}

const leaves = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => sha(Buffer.from(`${seed}:${i}`)));

describe('RFC 6962 hashing and proofs', () => {
  it('roots, inclusion and consistency proofs equal the RFC definitions, and verify', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 130 }), fc.nat(), fc.nat(), fc.nat(), (n, seed, a, b) => {
        const d = leaves(n, seed);
        const src = source(d);
        expect(rootHash(src, n).equals(mth(d))).toBe(true);
        const m = a % n;
        const p = inclusionProof(src, m, n);
        expect(p.map((x) => x.toString('hex'))).toEqual(path(m, d).map((x) => x.toString('hex')));
        verifyInclusion(m, n, leafHash(d[m]!), p, mth(d));
        const old = b % (n + 1);
        const c = consistencyProof(src, old, n);
        expect(c.map((x) => x.toString('hex'))).toEqual(proof(old, d).map((x) => x.toString('hex')));
        verifyConsistency(old, n, mth(d.slice(0, old)), mth(d), c);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a tampered hash, a wrong index, a wrong size and a wrong root, saying which field', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 100 }), fc.nat(), fc.nat(), fc.nat(), (n, seed, a, t) => {
        const d = leaves(n, seed);
        const root = mth(d);
        const m = a % n;
        const p = path(m, d);
        const leaf = leafHash(d[m]!);
        if (p.length > 0) {
          const bad = p.map((x) => Buffer.from(x));
          const hit = bad[t % bad.length]!;
          hit[t % 32] = hit[t % 32]! ^ 1;
          expect(() => verifyInclusion(m, n, leaf, bad, root)).toThrow(ProofError);
        }
        expect(() => verifyInclusion((m + 1) % n, n, leaf, p, root)).toThrow(ProofError);
        // (A wrong size alone can give a path of the same shape: the size is bound by the signed
        // head, whose treeSize the document must repeat — checked in the proof document tests.)
        expect(() => verifyInclusion(m, n + 1, leaf, p, mth([...d, d[0]!]))).toThrow(ProofError);
        expect(() => verifyInclusion(m, n, leaf, p, sha(root))).toThrow(/treeHead\.rootHash/);
        expect(() => verifyInclusion(m, n, leaf, [...p, root], root)).toThrow(/^inclusion has/);
        const old = 1 + (t % (n - 1));
        const c = proof(old, d);
        const oldRoot = mth(d.slice(0, old));
        expect(() => verifyConsistency(old, n, sha(oldRoot), root, c)).toThrow(ProofError);
        expect(() => verifyConsistency(old, n, oldRoot, sha(root), c)).toThrow(
          /newTreeHead\.rootHash|oldTreeHead/,
        );
        if (c.length > 0) {
          const bad = c.map((x) => Buffer.from(x));
          const hit = bad[t % bad.length]!;
          hit[0] = hit[0]! ^ 0x80;
          expect(() => verifyConsistency(old, n, oldRoot, root, bad)).toThrow(ProofError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ---- the persisted tree over a store's receipt log

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tp-merkle-'));
  dirs.push(d);
  return d;
}
function keyFile(dir: string, name = 'key.pem'): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const file = join(dir, name);
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return file;
}

describe('the store keeps an RFC 6962 tree over its receipts and signs its heads', () => {
  it('proofs from the persisted tree match the brute-force tree at every size, across reopen', () => {
    const dir = tmp();
    const key = keyFile(dir);
    const signer = TreeHeadSigner.fromFile(key);
    let next = 0;
    const ids: Buffer[] = [];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.boolean(), fc.nat(), (batch, _reopen, pick) => {
        const store = new Store(join(dir, 'store'), { signingKey: key, sync: 'never' });
        try {
          for (let i = 0; i < batch; i++) {
            const r = sampleReceipt(next++);
            store.appendReceipt(r);
            ids.push(Buffer.from(r.id, 'hex'));
          }
          const head = store.ledger.sync()!;
          expect(head.treeSize).toBe(ids.length);
          expect(head.rootHash.equals(mth(ids))).toBe(true);
          const m = pick % ids.length;
          const id = ids[m]!.toString('hex');
          const doc = store.ledger.prove(id, store.getReceipt(id));
          expect(doc.leafIndex).toBe(m);
          expect(doc.inclusion).toEqual(path(m, ids).map((x) => x.toString('hex')));
          const report = verifyProofDocument(JSON.parse(JSON.stringify(doc)), {
            publicKey: signer.publicKey,
          });
          expect(report.signature).toBe('pinned');
          const first = store.ledger.heads.get(0).treeSize;
          const c = store.ledger.proveConsistency(first);
          expect(c.consistency).toEqual(proof(first, ids).map((x) => x.toString('hex')));
          verifyProofDocument(c, { publicKey: signer.publicKey });
        } finally {
          store.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('a read-only store proves beside the writer, and refuses a proof under another key', () => {
    const dir = tmp();
    const key = keyFile(dir);
    const other = TreeHeadSigner.fromFile(keyFile(dir, 'other.pem'));
    const writer = new Store(join(dir, 's'), { signingKey: key });
    const receipts = Array.from({ length: 37 }, (_, i) => sampleReceipt(i));
    for (const r of receipts) writer.appendReceipt(r);
    writer.ledger.sync();
    const reader = new Store(join(dir, 's'), { readOnly: true });
    try {
      const id = receipts[20]!.id;
      const doc = reader.ledger.prove(id, reader.getReceipt(id));
      expect(verifyProofDocument(doc).signature).toBe('embedded');
      expect(() => verifyProofDocument(doc, { publicKey: other.publicKey })).toThrow(/treeHead\.keyId/);
      // A receipt edited in the document: its id no longer hashes its body.
      const edited = { ...doc, receipt: { ...doc.receipt, status: 'failed' } };
      expect(() => verifyProofDocument(edited)).toThrow(/receipt\.id is .* the receipt was altered/);
      // A signature flipped.
      const sig = Buffer.from(doc.treeHead.signature!, 'base64');
      sig[5]! ^= 1;
      const forged = { ...doc, treeHead: { ...doc.treeHead, signature: sig.toString('base64') } };
      expect(() => verifyProofDocument(forged)).toThrow(/treeHead\.signature does not verify/);
      // The size changed in the head: the signature no longer covers it.
      const resized = { ...doc, treeSize: 38, treeHead: { ...doc.treeHead, treeSize: 38 } };
      expect(() => verifyProofDocument(resized)).toThrow(ProofError);
    } finally {
      reader.close();
      writer.close();
    }
  });

  it("a receipt sealed under the store's key names it, and a proof under another key is refused", () => {
    const dir = tmp();
    const signer = TreeHeadSigner.fromFile(keyFile(dir));
    const other = TreeHeadSigner.fromFile(keyFile(dir, 'other.pem'));
    const store = new Store(join(dir, 's'), { signingKey: signer });
    try {
      expect(store.signer).toBe(signer.signer);
      expect(store.signer).toMatch(/^ed25519:[0-9a-f]{64}$/);
      const { id: _a, ...body } = sampleReceipt(1);
      const named = sealReceipt({ ...body, signer: store.signer! });
      const { id: _b, ...body2 } = sampleReceipt(2);
      const misnamed = sealReceipt({ ...body2, signer: other.signer });
      store.appendReceipt(named);
      store.appendReceipt(misnamed);
      const ok = store.ledger.prove(named.id, store.getReceipt(named.id));
      expect(ok.receipt.signer).toBe(signer.signer);
      expect(verifyProofDocument(ok, { publicKey: signer.publicKey }).signature).toBe('pinned');
      const bad = store.ledger.prove(misnamed.id, store.getReceipt(misnamed.id));
      expect(() => verifyProofDocument(bad, { publicKey: signer.publicKey })).toThrow(
        /receipt\.signer names key [0-9a-f]{64}, but the tree head is signed by key/,
      );
    } finally {
      store.close();
    }
  });

  it("a tree file that is missing, damaged or another log's is rebuilt from the log", () => {
    const dir = tmp();
    const s = join(dir, 's');
    let store = new Store(s, { sync: 'never' });
    const ids = Array.from({ length: 50 }, (_, i) => sampleReceipt(i));
    for (const r of ids) store.appendReceipt(r);
    store.close();
    const root = mth(ids.map((r) => Buffer.from(r.id, 'hex')));
    const tree = join(s, 'receipts.merkle');
    const bytes = readFileSync(tree);
    store = new Store(s, { sync: 'never' });
    expect(store.ledger.tree.rebuilt).toBeUndefined(); // a clean close leaves a tree that is used
    store.close();
    for (const damage of [
      () => rmSync(tree),
      () => writeFileSync(tree, bytes.subarray(0, bytes.length - 40)),
      () => writeFileSync(tree, 'not a tree'),
    ]) {
      damage();
      store = new Store(s, { sync: 'never' });
      try {
        expect(store.ledger.tree.rebuilt).toBeDefined();
        expect(store.ledger.tree.root().equals(root)).toBe(true);
      } finally {
        store.close();
      }
      writeFileSync(tree, bytes);
    }
    // A damaged inner node or leaf is not on the edge open checks: the proof shows it, and the
    // tree is rebuilt before a proof leaves the ledger.
    for (const [pos, leaf] of [
      [6, 1], // node (2, 0): on the path of leaf 5
      [7, 4], // leaf 4 itself
    ] as const) {
      const b = Buffer.from(bytes);
      const at = 4096 + 32 * pos;
      b[at] = b[at]! ^ 1;
      writeFileSync(tree, b);
      store = new Store(s, { sync: 'never' });
      try {
        expect(store.ledger.tree.rebuilt).toBeUndefined();
        for (const m of [leaf, 5]) {
          const id = ids[m]!.id;
          verifyProofDocument(store.ledger.prove(id, store.getReceipt(id)), { allowUnsigned: true });
        }
        expect(store.ledger.tree.rebuilt).toMatch(/not among the tree's leaves|did not verify/);
      } finally {
        store.close();
      }
      writeFileSync(tree, bytes);
    }
  });

  it('a rewritten or cut log is refused, naming the tree head it contradicts', () => {
    const dir = tmp();
    const s = join(dir, 's');
    const store = new Store(s, { signingKey: keyFile(dir), sync: 'never' });
    const receipts = Array.from({ length: 20 }, (_, i) => sampleReceipt(i));
    for (const r of receipts) store.appendReceipt(r);
    store.close();
    // A whole new, internally valid log with one receipt changed: its own checks all pass.
    const rewritten = receipts.map((r, i) => (i === 7 ? sampleReceipt(1000) : r));
    writeClosedLog(join(s, 'receipts.log'), rewritten);
    expect(() => new Store(s)).toThrow(LogRewrittenError);
    expect(() => new Store(s)).toThrow(/tree head #0 .* committed root/);
    writeClosedLog(join(s, 'receipts.log'), receipts.slice(0, 15));
    expect(() => new Store(s)).toThrow(/holds 15 receipts, but tree head #0 .* committed 20/);
    writeClosedLog(join(s, 'receipts.log'), receipts);
    new Store(s).close();
  });
});
