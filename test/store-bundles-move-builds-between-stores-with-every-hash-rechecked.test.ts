/**
 * Issue #13, "domains and federation": a build, its inputs, outputs and receipts exported as one
 * bundle and imported into another store with every hash re-checked; what is imported is
 * read-only there, a replay works there, and a damaged, forged or incomplete bundle is refused
 * precisely, writing nothing.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { encodeCanonical } from '../src/runtime/canonical.js';
import type { Receipt } from '../src/runtime/receipt.js';
import { BundleError } from '../src/store/bundle.js';
import { Thunderpac } from '../src/thunderpac.js';
import { buildGuests, guest } from './wasm-fixtures.js';

let dirs: string[];
let open: Thunderpac[];

beforeAll(() => buildGuests());
beforeEach(() => {
  dirs = [];
  open = [];
});
afterEach(async () => {
  for (const tp of open) await tp.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function openStore(dir: string, domain?: string): Promise<Thunderpac> {
  const tp = await Thunderpac.open({ store: dir, ...(domain && { storeOptions: { domain } }) });
  open.push(tp);
  return tp;
}

async function runEcho(tp: Thunderpac, text: string, parents: string[] = []): Promise<Receipt> {
  const build = createWasmBuild(guest('echo'), { name: 'echo' });
  const sandbox = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16 } });
  const r = await tp.execute(sandbox, {
    build,
    entry: 'reverse',
    input: { kind: 'bytes', bytes: new TextEncoder().encode(text) },
    ...(parents.length > 0 && { parents }),
  });
  expect(r.status).toBe('completed');
  return r.receipt;
}

describe('bundles', () => {
  it('carry a build with its receipts and payloads into another store, where they replay', async () => {
    const a = await openStore(tempDir('tp-bundle-a-'), 'lab-a');
    const r1 = await runEcho(a, 'first');
    const r2 = await runEcho(a, 'second', [r1.id]);
    const bundle = join(tempDir('tp-bundle-out-'), 'echo.tpb');
    const exported = a.store!.exportBundle(bundle, { builds: [r1.buildId] });
    expect(exported.receipts).toBe(2);
    expect(exported.builds).toBe(1);

    const b = await openStore(tempDir('tp-bundle-b-'), 'lab-b');
    expect(() => b.store!.getReceipt(r2.id)).toThrow();
    const report = b.store!.importBundle(bundle);
    expect(report.source.domain).toBe('lab-a');
    expect(report.receipts).toBe(2);
    expect(report.added).toBe(report.artifacts);

    expect(b.store!.getReceipt(r2.id)).toEqual(r2);
    expect(b.store!.getBuild(r1.buildId).id).toBe(r1.buildId);
    const verified = await b.verify(r2.id);
    expect(verified).toMatchObject({ match: true, problem: null });

    // Cross-domain artifacts are read-only here.
    const entry = b.store!.artifacts.stat(r1.buildId);
    expect(entry).toMatchObject({ domain: 'lab-a', visibility: 'published' });
    expect(() => b.store!.artifacts.tombstone(r1.buildId)).toThrow(/domain|read-only/);

    // A second import adds nothing.
    const again = b.store!.importBundle(bundle);
    expect(again.added).toBe(0);
    expect(again.present).toBe(again.artifacts);
  });

  it('exported by its last receipt, a DAG brings its ancestors along', async () => {
    const a = await openStore(tempDir('tp-bundle-a-'));
    const r1 = await runEcho(a, 'one');
    const r2 = await runEcho(a, 'two', [r1.id]);
    const r3 = await runEcho(a, 'three', [r2.id]);
    await runEcho(a, 'unrelated');
    const bundle = join(tempDir('tp-bundle-out-'), 'dag.tpb');
    expect(a.store!.exportBundle(bundle, { receipts: [r3.id] }).receipts).toBe(3);
    const b = await openStore(tempDir('tp-bundle-b-'));
    b.store!.importBundle(bundle);
    for (const r of [r1, r2, r3]) expect(b.store!.getReceipt(r.id).id).toBe(r.id);
  });

  it('a flipped byte anywhere is refused with where, and nothing is written', async () => {
    const a = await openStore(tempDir('tp-bundle-a-'));
    const r = await runEcho(a, 'payload that must arrive intact');
    const bundle = join(tempDir('tp-bundle-out-'), 'one.tpb');
    a.store!.exportBundle(bundle, { receipts: [r.id] });
    const original = readFileSync(bundle);
    const b = await openStore(tempDir('tp-bundle-b-'));
    const before = b.store!.stat().artifacts;
    for (const at of [0, 9, 20, original.length >> 1, original.length - 40, original.length - 1]) {
      const damaged = Buffer.from(original);
      damaged[at]! ^= 0x40;
      writeFileSync(bundle, damaged);
      const err = (() => {
        try {
          b.store!.importBundle(bundle);
        } catch (e) {
          return e;
        }
      })();
      expect(err, `byte ${at}`).toBeInstanceOf(BundleError);
      expect((err as BundleError).message).toMatch(/byte \d+|field \$/);
    }
    expect(b.store!.stat().artifacts).toBe(before);
    expect(() => b.store!.getReceipt(r.id)).toThrow();
  });

  it('a bundle whose trailer was recomputed over forged content is still refused by the artifact hashes', async () => {
    const a = await openStore(tempDir('tp-bundle-a-'));
    const r = await runEcho(a, 'forge me');
    const bundle = join(tempDir('tp-bundle-out-'), 'forged.tpb');
    a.store!.exportBundle(bundle, { receipts: [r.id] });
    const bytes = readFileSync(bundle);
    // Change the receipt body's last byte (receipts come last) and fix the trailer.
    const forged = Buffer.from(bytes);
    const bodyEnd = forged.length - 32 - 1;
    forged[bodyEnd]! ^= 1;
    const { createHash } = await import('node:crypto');
    createHash('sha256')
      .update(forged.subarray(0, forged.length - 32))
      .digest()
      .copy(forged, forged.length - 32);
    writeFileSync(bundle, forged);
    const b = await openStore(tempDir('tp-bundle-b-'));
    expect(() => b.store!.importBundle(bundle)).toThrow(
      /artifact [0-9a-f]{64} \(receipt\) (bytes hash|does not decode).*field \$\.artifacts\[\d+\], byte \d+/,
    );
  });

  it('a bundle missing what a receipt needs is refused by field path', async () => {
    const a = await openStore(tempDir('tp-bundle-a-'));
    const r = await runEcho(a, 'needs its input');
    const bundle = join(tempDir('tp-bundle-out-'), 'partial.tpb');
    const { exportBundle } = await import('../src/store/bundle.js');
    // A source that hands out only the receipt: its build and input are left out on purpose.
    const store = a.store!;
    expect(() =>
      exportBundle(
        {
          domain: 'x',
          storeId: 'y',
          getReceipt: (id) => store.getReceipt(id),
          receiptsOfBuild: () => [],
          getBuildManifest: () => ({ manifest: { artifacts: {} } as never, bytes: encodeCanonical({}) }),
          getArtifactBytes: () => new Uint8Array(),
          getPayload: () => {
            throw new Error('no payloads');
          },
          hasPayload: () => false,
        },
        bundle,
        { receipts: [r.id] },
      ),
    ).toThrow(BundleError);
  });

  it('refuses what is not a bundle', async () => {
    const b = await openStore(tempDir('tp-bundle-b-'));
    const path = join(tempDir('tp-bundle-out-'), 'junk.tpb');
    writeFileSync(path, Buffer.alloc(100, 7));
    expect(() => b.store!.importBundle(path)).toThrow(/not a thunderpac bundle/);
    writeFileSync(path, Buffer.from('TPBNDL9\n'.padEnd(100, '\0')));
    expect(() => b.store!.importBundle(path)).toThrow(/another format version/);
    writeFileSync(path, Buffer.alloc(3));
    expect(() => b.store!.importBundle(path)).toThrow(/too short/);
  });
});
