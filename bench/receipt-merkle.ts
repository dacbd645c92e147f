/**
 * What the Merkle tree and signed tree heads cost (src/store/merkle/, src/store/signing.ts):
 *   - per append: the ledger hook (leaf hash + the nodes it completes) beside the log append;
 *   - at N receipts: writer open, rebuild from the log, id lookup, inclusion and consistency
 *     proof generation, proof verification (incl. Ed25519 verify), Ed25519 sign of a tree head.
 *
 *   node --experimental-strip-types bench/receipt-merkle.ts [N]   (or npx tsx; default 1000000)
 */

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type ReceiptBody, sealReceiptEncoded } from '../src/runtime/receipt.js';
import { ReceiptLedger } from '../src/store/merkle/ledger.js';
import { verifyProofDocument } from '../src/store/merkle/proof.js';
import { consistencyProof, inclusionProof, leafHashOfId, nodeHash } from '../src/store/merkle/rfc6962.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { TreeHeadSigner } from '../src/store/signing.js';
import { Store } from '../src/store/store.js';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'tp-bench-merkle-'));

const sandbox = Object.freeze({
  limits: Object.freeze({ timeoutMs: 1000, memoryMb: 64, maxInputBytes: 1 << 20, maxOutputBytes: 1 << 20 }),
  fs: Object.freeze({ kind: 'none' as const }),
  allowedImports: Object.freeze([]) as readonly string[],
  network: false as const,
});
const determinism = Object.freeze({ seed: 0, flags: Object.freeze([]) as unknown as string[] });
const runtime = Object.freeze({ node: process.versions.node });
function sealed(n: number) {
  const body: ReceiptBody = {
    v: 1,
    buildId: 'a'.repeat(64),
    backend: 'wasm',
    entry: 'run',
    input: { hash: n.toString(16).padStart(64, '0'), size: n },
    output: { hash: 'b'.repeat(64), size: 1 },
    startedAt: new Date(1_700_000_000_000 + n).toISOString(),
    durationNs: 1000 + n,
    resources: { cpuUs: 1, peakMemoryBytes: 65536, fuelUsed: null, engineNs: null },
    sandbox,
    determinism,
    runtime,
    status: 'completed',
    error: null,
    parents: [],
  };
  return sealReceiptEncoded(body);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
const fmt = (us: number) =>
  us < 1
    ? `${(us * 1000).toFixed(0)} ns`
    : us < 1000
      ? `${us.toFixed(1)} µs`
      : `${(us / 1000).toFixed(1)} ms`;

try {
  const { privateKey } = generateKeyPairSync('ed25519');
  const signer = new TreeHeadSigner(privateKey);
  const storeDir = join(dir, 'store');
  const store = new Store(storeDir, { sync: 'never', signingKey: signer, headIntervalMs: 1e9 });
  const ledger = store.ledger;
  // The same receipts into a bare log (no tree) and into the store (log + ledger hook), batch by
  // batch, alternating: the difference is what the tree adds per append.
  const bare = new ReceiptLog(join(dir, 'bare.log'), { sync: 'never' });
  let logNs = 0;
  let bothNs = 0;
  const ids: string[] = [];
  const BATCH = 4096;
  for (let at = 0; at < N; at += BATCH) {
    const batch = [];
    for (let i = at; i < Math.min(N, at + BATCH); i++) batch.push(sealed(i));
    let t = performance.now();
    for (const { receipt, body } of batch) bare.append(receipt, body);
    logNs += (performance.now() - t) * 1e6;
    t = performance.now();
    for (const { receipt, body } of batch) {
      store.receipts.append(receipt, body);
      ledger.append(receipt.id, body.byteLength);
    }
    bothNs += (performance.now() - t) * 1e6;
    if (at % (BATCH * 16) === 0) ids.push(batch[batch.length >> 1]!.receipt.id);
  }
  bare.close();
  const treeNs = bothNs - logNs;
  // The hook's own work, measured alone: one leaf hash (SHA-256 of 33 bytes) + amortised nodes.
  const hashes = Array.from({ length: 200_000 }, (_, i) => sealed(i).receipt.id);
  let th = performance.now();
  for (const id of hashes) leafHashOfId(id);
  const leafNs = ((performance.now() - th) * 1e6) / hashes.length;
  th = performance.now();
  const a32 = Buffer.alloc(32);
  for (let i = 0; i < hashes.length; i++) nodeHash(a32, a32);
  const nodeNs = ((performance.now() - th) * 1e6) / hashes.length;
  console.log(`N = ${N}`);
  console.log(
    `append: bare log ${fmt(logNs / N / 1000)}/receipt, log + ledger hook ${fmt(bothNs / N / 1000)}/receipt: the tree adds ${fmt(treeNs / N / 1000)} (${((treeNs / logNs) * 100).toFixed(1)}%)`,
  );
  console.log(
    `leaf hash SHA-256(0x00||id) ${fmt(leafNs / 1000)}, node hash SHA-256(0x01||l||r) ${fmt(nodeNs / 1000)} (about one of each per append)`,
  );
  let t = performance.now();
  store.receipts.flush();
  const logFlush = performance.now() - t;
  t = performance.now();
  ledger.sync();
  console.log(
    `first sync: log flush ${fmt(logFlush * 1000)} (the log's), then ${N}-leaf tree write + signed head ${fmt((performance.now() - t) * 1000)}`,
  );

  const signs: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const s = performance.now();
    signer.sign(N, ledger.tree.root(), Date.now());
    signs.push((performance.now() - s) * 1000);
  }
  console.log(`Ed25519 sign of a tree head (incl. root from the frontier): median ${fmt(median(signs))}`);

  const lookups: number[] = [];
  const proofs: number[] = [];
  const cons: number[] = [];
  const proves: number[] = [];
  const verifies: number[] = [];
  for (const id of ids.slice(0, 200)) {
    let s = performance.now();
    const index = ledger.tree.indexOf(id)!;
    lookups.push((performance.now() - s) * 1000);
    s = performance.now();
    inclusionProof(ledger.tree, index, N);
    proofs.push((performance.now() - s) * 1000);
    s = performance.now();
    consistencyProof(ledger.tree, index + 1, N);
    cons.push((performance.now() - s) * 1000);
    s = performance.now();
    const doc = ledger.prove(id, store.receipts.get(id));
    proves.push((performance.now() - s) * 1000);
    const json = JSON.parse(JSON.stringify(doc));
    s = performance.now();
    verifyProofDocument(json, { publicKey: signer.publicKey });
    verifies.push((performance.now() - s) * 1000);
  }
  console.log(
    `at ${N}: id -> leaf lookup median ${fmt(median(lookups))}, inclusion proof ${fmt(median(proofs))}, consistency proof ${fmt(median(cons))}`,
  );
  console.log(
    `ledger.prove (sync + lookup + proof + head check) median ${fmt(median(proves))}; verifyProofDocument (pinned key) median ${fmt(median(verifies))}`,
  );
  store.close();
  console.log(
    `receipts.merkle: ${(statSync(join(storeDir, 'receipts.merkle')).size / 2 ** 20).toFixed(1)} MiB; receipts.log ${(statSync(join(storeDir, 'receipts.log')).size / 2 ** 20).toFixed(1)} MiB`,
  );

  t = performance.now();
  const log = new ReceiptLog(join(storeDir, 'receipts.log'), { sync: 'never' });
  const logOpen = performance.now() - t;
  t = performance.now();
  let opened = new ReceiptLedger(storeDir, log, { sync: 'never' });
  console.log(
    `open: the log ${fmt(logOpen * 1000)} (the log's), then the ledger (tree + heads + checks) ${fmt((performance.now() - t) * 1000)}`,
  );
  opened.close();
  rmSync(join(storeDir, 'receipts.merkle'));
  t = performance.now();
  opened = new ReceiptLedger(storeDir, log, { sync: 'never' });
  console.log(
    `ledger open rebuilding the tree from the log: ${fmt((performance.now() - t) * 1000)} (${opened.tree.rebuilt})`,
  );
  opened.close();
  log.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
