/**
 * The daemon signs its receipt tree heads with the key its config names (`store.signingKey`) and
 * serves proofs: GET /v1/receipts/:id/proof (receipt + inclusion proof + signed head) and
 * GET /v1/tree-heads/consistency, both checked here with nothing but the public key.
 */

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyProofDocument } from '../src/store/merkle/proof.js';
import { Store } from '../src/store/store.js';
import { startTestDaemon } from './helpers/daemon.js';
import { sampleReceipt } from './helpers/receipt-log-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-daemon-proof-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('daemon receipt proofs', () => {
  it('serves inclusion and consistency proofs signed with the configured key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const storeDir = join(dir, 'store');
    const receipts = Array.from({ length: 12 }, (_, i) => sampleReceipt(i));
    const store = new Store(storeDir, { signingKey: keyFile });
    for (const r of receipts.slice(0, 5)) store.appendReceipt(r);
    store.ledger.sync();
    for (const r of receipts.slice(5)) store.appendReceipt(r);
    store.close();

    const daemon = await startTestDaemon({ store: storeDir, config: { store: { signingKey: keyFile } } });
    try {
      const r = await daemon.request({ method: 'GET', path: `/v1/receipts/${receipts[7]!.id}/proof` });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toMatchObject({ leafIndex: 7, treeSize: 12 });
      expect(verifyProofDocument(r.body, { publicKey })).toMatchObject({ ok: true, signature: 'pinned' });

      const c = await daemon.request({ method: 'GET', path: '/v1/tree-heads/consistency?from=5' });
      expect(c.status, c.text).toBe(200);
      expect(verifyProofDocument(c.body, { publicKey })).toMatchObject({ oldTreeSize: 5, treeSize: 12 });

      const missing = await daemon.request({ method: 'GET', path: '/v1/tree-heads/consistency?from=6' });
      expect(missing.status).toBe(409);
      expect(missing.text).toMatch(/no tree head of 6 receipts was recorded/);
      const bad = await daemon.request({ method: 'GET', path: '/v1/tree-heads/consistency?from=x' });
      expect(bad.status).toBe(400);
    } finally {
      await daemon.stop();
    }
  });
});
