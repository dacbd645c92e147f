import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { checkReceiptId } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';
import { Thunderpac } from '../src/thunderpac.js';
import { REPO_ROOT } from './helpers/daemon.js';
import { cli } from './helpers/cli.js';
import { sampleReceipt } from './helpers/receipt-log-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-prove-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keyPem = join(dir, 'key.pem');
const pubPem = join(dir, 'pub.pem');
writeFileSync(keyPem, privateKey.export({ format: 'pem', type: 'pkcs8' }));
writeFileSync(pubPem, publicKey.export({ format: 'pem', type: 'spki' }));
const other = generateKeyPairSync('ed25519').publicKey;
const otherPem = join(dir, 'other.pem');
writeFileSync(otherPem, other.export({ format: 'pem', type: 'spki' }));

const storeDir = join(dir, 'store');
const receipts = Array.from({ length: 25 }, (_, i) => sampleReceipt(i));
{
  const store = new Store(storeDir, { signingKey: keyPem });
  for (const r of receipts.slice(0, 10)) store.appendReceipt(r);
  store.ledger.sync();
  for (const r of receipts.slice(10)) store.appendReceipt(r);
  store.close();
}

function save(name: string, json: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

describe('receipt prove / verify-proof', () => {
  it('proves a receipt and verifies the proof with no store, pinned to the public key', async () => {
    const proved = await cli('receipt', 'prove', receipts[13]!.id, '--store', storeDir);
    expect(proved.code, proved.err).toBe(0);
    const doc = JSON.parse(proved.out);
    expect(doc).toMatchObject({ format: 'thunderpac.receipt-proof/1', leafIndex: 13, treeSize: 25 });
    const file = save('proof.json', proved.out);
    const ok = await cli('receipt', 'verify-proof', file, '--public-key', pubPem);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/receipt .* is leaf 13 of the tree of 25, signed by key [0-9a-f]{64}\n/);
    const embedded = await cli('receipt', 'verify-proof', file, '--json');
    expect(JSON.parse(embedded.out)).toMatchObject({ ok: true, signature: 'embedded' });
  });

  it('refuses a tampered proof with exit 1, naming the field', async () => {
    const doc = JSON.parse((await cli('receipt', 'prove', receipts[3]!.id, '--store', storeDir)).out);
    const cases: [unknown, RegExp][] = [
      [{ ...doc, receipt: { ...doc.receipt, durationNs: 1 } }, /receipt\.id is .*the receipt was altered/],
      [
        { ...doc, inclusion: doc.inclusion.slice(1) },
        /inclusion has 4 hashes; the path of leaf 3 in a tree of 25 has 5/,
      ],
      [
        { ...doc, inclusion: [doc.inclusion[1], doc.inclusion[0], ...doc.inclusion.slice(2)] },
        /treeHead\.rootHash is/,
      ],
      [
        { ...doc, inclusion: ['zz', ...doc.inclusion.slice(1)] },
        /inclusion\[0\] is "zz": expected 64 lowercase hex/,
      ],
      [{ ...doc, leafIndex: 4 }, /treeHead\.rootHash is/],
      [
        { ...doc, treeHead: { ...doc.treeHead, timestampMs: doc.treeHead.timestampMs + 1 } },
        /treeHead\.signature does not verify/,
      ],
      [{ ...doc, treeHead: { ...doc.treeHead, signature: null } }, /treeHead\.signature is absent/],
    ];
    for (const [bad, why] of cases) {
      const r = await cli('receipt', 'verify-proof', save('bad.json', bad), '--public-key', pubPem);
      expect(r.code, JSON.stringify(bad).slice(0, 200)).toBe(1);
      expect(r.err).toMatch(why);
    }
    const wrongKey = await cli('receipt', 'verify-proof', save('p.json', doc), '--public-key', otherPem);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toMatch(
      /treeHead\.keyId is [0-9a-f]{64}, but the public key checked against has key id/,
    );
  });

  it('proves consistency between two recorded tree heads', async () => {
    const r = await cli('receipt', 'prove', '--consistency', '10:25', '--store', storeDir);
    expect(r.code, r.err).toBe(0);
    const file = save('cons.json', r.out);
    const ok = await cli('receipt', 'verify-proof', file, '--public-key', pubPem);
    expect(ok.out).toMatch(/the tree of 10 is a prefix of the tree of 25/);
    const doc = JSON.parse(r.out);
    const bad = { ...doc, consistency: [...doc.consistency].reverse() };
    const refused = await cli('receipt', 'verify-proof', save('cb.json', bad), '--public-key', pubPem);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/oldTreeHead\.rootHash|newTreeHead\.rootHash|consistency has/);
    const missing = await cli('receipt', 'prove', '--consistency', '11', '--store', storeDir);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/oldTreeHead is missing: no tree head of 11 receipts was recorded/);
  });

  it('an execution in a signing store seals the signer into its receipt, and its proof verifies', async () => {
    const execDir = join(dir, 'exec-store');
    const tp = await Thunderpac.open({ store: execDir, storeOptions: { signingKey: keyPem } });
    let id: string;
    try {
      const build = createWasmBuild(readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm')), { name: 'echo' });
      const r = await tp.execute(tp.sandbox({ backend: 'wasm' }), {
        build,
        entry: 'echo',
        input: { kind: 'bytes', bytes: new TextEncoder().encode('signed') },
      });
      expect(r.receipt.signer).toMatch(/^ed25519:[0-9a-f]{64}$/);
      checkReceiptId(r.receipt);
      id = r.receipt.id;
    } finally {
      await tp.close();
    }
    const proved = await cli('receipt', 'prove', id, '--store', execDir);
    expect(proved.code, proved.err).toBe(0);
    const ok = await cli('receipt', 'verify-proof', save('exec.json', proved.out), '--public-key', pubPem);
    expect(ok.code, ok.err).toBe(0);
  });

  it('a proof file that is not there or not JSON exits 2', async () => {
    expect((await cli('receipt', 'verify-proof', join(dir, 'nope.json'))).code).toBe(2);
    const notJson = await cli('receipt', 'verify-proof', save('x.json', '{oops'));
    expect(notJson.code).toBe(2);
    expect(notJson.err).toMatch(/proof file is not JSON/);
  });
});
