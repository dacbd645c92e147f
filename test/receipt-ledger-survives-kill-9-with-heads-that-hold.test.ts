/**
 * A writer killed with SIGKILL at random points, again and again: every reopen finds a tree that
 * matches the log and a latest signed tree head that the log still holds (no head ever commits a
 * receipt the crash lost), and consistency between every pair of recorded heads verifies.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyProofDocument } from '../src/store/merkle/proof.js';
import { Store } from '../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-ledger-kill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startWriter(store: string, key: string, from: number): Promise<ChildProcess> {
  // node runs vite-node itself (no npx or shell between): the pid killed is the writer's.
  const child = spawn(
    process.execPath,
    ['node_modules/.bin/vite-node', 'test/helpers/merkle-writer.ts', '--', store, key, String(from)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`writer exited (${code}) before it was ready`)));
  });
}

describe('the receipt ledger under kill -9', () => {
  it('reopens with a tree that matches the log and heads the log still holds', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = join(dir, 'key.pem');
    writeFileSync(key, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const storeDir = join(dir, 'store');
    let next = 0;
    let seen = 0;
    for (let round = 0; round < 3; round++) {
      const child = await startWriter(storeDir, key, next);
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 600));
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid!, 'SIGKILL');
      await exited;
      const store = new Store(storeDir, { signingKey: key });
      try {
        const ledger = store.ledger;
        expect(store.receipts.size).toBeGreaterThan(seen); // the writer did append before the kill
        expect(ledger.heads.count).toBeGreaterThan(round);
        seen = store.receipts.size;
        expect(ledger.tree.size).toBe(store.receipts.size);
        const head = ledger.sync()!;
        expect(head.treeSize).toBe(store.receipts.size);
        const ids = store.receipts.ids();
        const last = ids[ids.length - 1]!;
        verifyProofDocument(ledger.prove(last, store.getReceipt(last)), { publicKey });
        expect(ledger.verify()).toBe(ledger.heads.count);
        const first = ledger.heads.get(0).treeSize;
        verifyProofDocument(ledger.proveConsistency(first), { publicKey });
        next = store.receipts.size + 1_000_000 * (round + 1);
      } finally {
        store.close();
      }
    }
  }, 180_000);
});
