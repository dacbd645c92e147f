import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dagSpecFromJson } from '../src/cli/dag.js';
import { DagSpecError } from '../src/runtime/dag.js';
import { encodePayload } from '../src/runtime/payload.js';
import { packagePath } from '../src/runtime/package-root.js';
import { Thunderpac } from '../src/thunderpac.js';
import { ipv4Frame } from './p4-helpers.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tp-dag-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** The repository's own programs: P4 router → WASM feature extractor → ONNX Iris MLP. */
function specJson(frame: Uint8Array) {
  return {
    name: 'route-features-classify',
    input: { kind: 'packet', hex: Buffer.from(frame).toString('hex'), ingressPort: 1 },
    steps: [
      { name: 'route', p4: 'p4/samples/basic_router.p4', entry: 'ingress' },
      {
        name: 'features',
        wasm: 'wasm/pkt_features.wasm',
        entry: 'features',
        adapter: { kind: 'packet-to-bytes' },
      },
      {
        name: 'classify',
        model: 'mlp@1',
        adapter: { kind: 'bytes-to-tensor', name: 'x', dtype: 'float32', shape: [1, 4] },
      },
    ],
  };
}

/** Every file under dir (recursively). */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Flip a byte of the stored copy of `bytes`, wherever the store keeps it (blob, segment). */
function tamperStored(storeDir: string, bytes: Uint8Array): string {
  const needle = Buffer.from(bytes);
  for (const f of files(storeDir)) {
    if (f.endsWith('receipts.log') || statSync(f).size < needle.length) continue;
    const data = readFileSync(f);
    const at = data.indexOf(needle);
    if (at < 0) continue;
    data[at + needle.length - 1]! ^= 0x01;
    writeFileSync(f, data);
    return f;
  }
  throw new Error('stored bytes not found');
}

describe('DAG executions across P4, WASM and ONNX', () => {
  it('runs as one call, seals every step with its parents, stores the DAG, and replays', async () => {
    const dir = join(tmp, 'store');
    const frame = ipv4Frame({ dst: [10, 0, 1, 7], ttl: 57, protocol: 17 });
    const spec = await dagSpecFromJson(specJson(frame), packagePath('.'));
    const tp = await Thunderpac.open({ store: dir });
    const r = await tp.runDag(spec);
    expect(r.steps.map((s) => [s.name, s.status, s.error?.message ?? null])).toEqual([
      ['route', 'completed', null],
      ['features', 'completed', null],
      ['classify', 'completed', null],
    ]);
    const [route, features, classify] = r.steps.map((s) => s.receipt!);
    expect([route!.backend, features!.backend, classify!.backend]).toEqual(['p4', 'wasm', 'onnx']);
    expect(route!.parents).toEqual([]);
    expect(features!.parents).toEqual([route!.id]);
    expect(classify!.parents).toEqual([features!.id]);
    // The router forwarded to port 1 with TTL - 1; the guest saw that frame.
    const routed = r.steps[0]!.output!;
    expect(routed.kind === 'packet' && 'packets' in routed && routed.packets[0]!.port).toBe(1);
    const feats = r.steps[1]!.output!;
    if (feats.kind !== 'bytes') throw new Error('expected bytes');
    expect([...new Float32Array(feats.bytes.slice().buffer)].map((x) => Math.round(x * 10) / 10)).toEqual([
      5.6,
      4.4,
      6.2,
      1.8, // ttl 56 after routing, totalLen 24, UDP port 0x0304, protocol 17
    ]);
    const probs = r.steps[2]!.output!;
    if (probs.kind !== 'tensors') throw new Error('expected tensors');
    const p = [...(probs.tensors.probs!.data as Float32Array)];
    expect(p).toHaveLength(3);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(r.lastReceipt!.id).toBe(classify!.id);

    // The provenance index answers lineage questions.
    const store = tp.store!;
    expect(store.provenance.producers(features!.output!.hash!)).toEqual([features!.id]);
    expect(store.provenance.children(route!.id)).toEqual([features!.id]);
    const derived = store.provenance.derivedFrom(route!.input.hash!);
    expect(derived.receipts.map((d) => d.receipt)).toEqual([route!.id, features!.id, classify!.id]);
    expect(store.provenance.producedBy(classify!.output!.hash!).ancestors).toEqual([features!.id, route!.id]);

    const report = await tp.verifyDag(classify!.id);
    expect(report.steps.map((s) => s.status)).toEqual(['match', 'match', 'match']);
    expect(report.match).toBe(true);
    await tp.close();

    // A fresh, read-only open finds the DAG and the lineage again (persisted).
    const ro = await Thunderpac.open({ store: dir, storeOptions: { readOnly: true } });
    expect(ro.store!.provenance.children(features!.id)).toEqual([classify!.id]);
    expect((await ro.verifyDag(classify!.id)).match).toBe(true);
    await ro.close();

    // Tamper with the stored output of the middle step: replay names that step.
    tamperStored(dir, encodePayload(feats));
    const after = await Thunderpac.open({ store: dir, storeOptions: { readOnly: true } });
    const bad = await after.verifyDag(classify!.id);
    expect(bad.match).toBe(false);
    expect(bad.firstDifference).toBe('features');
    expect(bad.steps.map((s) => s.status)).toEqual(['match', 'differs', 'not-checked']);
    expect(bad.steps[1]!.check).toBe('stored-output');
    await after.close();
  }, 60_000);

  it('names the step whose build was tampered with', async () => {
    const dir = join(tmp, 'store');
    const frame = ipv4Frame({ dst: [10, 0, 2, 9], ttl: 30, protocol: 6 });
    const spec = await dagSpecFromJson(specJson(frame), packagePath('.'));
    const tp = await Thunderpac.open({ store: dir });
    const r = await tp.runDag(spec);
    expect(r.status).toBe('completed');
    await tp.close();
    // The ONNX model is the last step's build artifact.
    tamperStored(dir, readFileSync(packagePath('models/mlp/1/model.onnx')));
    const after = await Thunderpac.open({ store: dir, storeOptions: { readOnly: true } });
    const bad = await after.verifyDag(r.lastReceipt!.id);
    expect(bad.firstDifference).toBe('classify');
    expect(bad.steps[2]!.check).toBe('replay');
    expect(bad.steps[2]!.problem).toMatch(/artifact|altered|integrity/i);
    expect(bad.steps.slice(0, 2).map((s) => s.status)).toEqual(['match', 'match']);
    await after.close();
  }, 60_000);

  it('refuses specs with a cycle, an unknown step or a bad adapter, naming the field', async () => {
    const frame = ipv4Frame({ dst: [10, 0, 1, 7] });
    const base = specJson(frame);
    const cyc = { ...base, steps: [{ ...base.steps[0], from: ['features'] }, ...base.steps.slice(1)] };
    const tp = await Thunderpac.open({ store: join(tmp, 's') });
    const err = await tp.runDag(await dagSpecFromJson(cyc, packagePath('.'))).catch((e) => e);
    expect(err).toBeInstanceOf(DagSpecError);
    expect(err.message).toMatch(/steps\[0\]\.from\[0\]: step 'features' comes after 'route'/);
    const badAdapter = {
      ...base,
      steps: [base.steps[0], { ...base.steps[1], adapter: { kind: 'teleport' } }],
    };
    const e2 = await tp.runDag(await dagSpecFromJson(badAdapter, packagePath('.'))).catch((e) => e);
    expect(e2.path).toBe('steps[1].adapter.kind');
    await tp.close();
  }, 60_000);

  it('a step whose parent emitted no packet fails the DAG at that step, and the rest do not run', async () => {
    const frame = ipv4Frame({ dst: [8, 8, 8, 8] }); // no route: dropped
    const tp = await Thunderpac.open({ store: join(tmp, 's') });
    const r = await tp.runDag(await dagSpecFromJson(specJson(frame), packagePath('.')));
    expect(r.status).toBe('failed');
    expect(r.steps.map((s) => s.status)).toEqual(['completed', 'failed', 'not-run']);
    expect(r.steps[1]!.error?.code).toBe('DAG_ADAPTER');
    expect(r.steps[1]!.error?.message).toMatch(/'route' emitted 0 packet/);
    await tp.close();
  }, 60_000);
});
