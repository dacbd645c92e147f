import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { equivalenceReport, generateModel } from '../scripts/build-models-lib.js';
import { ZOO } from '../scripts/build-models-zoo.js';
import {
  checkEquivalence,
  type EquivalenceReport,
  reportProblems,
} from '../src/backends/onnx/equivalence.js';
import { decodeModel } from '../src/backends/onnx/onnx-proto.js';
import { referenceRun } from '../src/backends/onnx/reference.js';
import { defaultModelDir } from '../src/backends/onnx/registry.js';
import { sha256Hex } from '../src/runtime/canonical.js';

describe.each(ZOO.map((z) => [z.name, z] as const))('model %s', (_name, z) => {
  const dir = join(defaultModelDir(), z.name, z.version);

  it('regenerates byte for byte from code (model.onnx, sample_io.json, checksums.txt)', () => {
    const g = generateModel(z);
    for (const [file, bytes] of Object.entries(g.files)) {
      expect(sha256Hex(readFileSync(join(dir, file))), file).toBe(sha256Hex(bytes));
    }
  });

  it('has a VAL_REPORT.json that is current (same model digest) and passing', () => {
    const digest = sha256Hex(readFileSync(join(dir, 'model.onnx')));
    const report = JSON.parse(readFileSync(join(dir, 'VAL_REPORT.json'), 'utf8')) as EquivalenceReport;
    expect(reportProblems(report, digest)).toEqual([]);
    expect(report.maxAbsDiff).toBeLessThanOrEqual(1e-4);
  });

  it('still passes when the equivalence check is run now', async () => {
    const report = await equivalenceReport(z, readFileSync(join(dir, 'model.onnx')));
    expect(report.status).toBe('PASS');
  });
});

describe('equivalence reports', () => {
  const mlpDir = join(defaultModelDir(), 'mlp', '1');
  const report = JSON.parse(readFileSync(join(mlpDir, 'VAL_REPORT.json'), 'utf8')) as EquivalenceReport;
  const digest = sha256Hex(readFileSync(join(mlpDir, 'model.onnx')));

  it('are stale when the model digest changed', () => {
    expect(reportProblems(report, 'f'.repeat(64))[0]).toMatch(/^stale/);
  });

  it('fail on status, on a max diff above tolerance and on class disagreement', () => {
    expect(reportProblems({ ...report, status: 'FAIL' }, digest).join()).toMatch(/failing: status FAIL/);
    expect(reportProblems({ ...report, maxAbsDiff: 1e-3 }, digest).join()).toMatch(/max abs diff/);
    const outputs = {
      label: { dtype: 'int64', elements: 4, maxAbsDiff: 0, meanAbsDiff: 0, agreement: 0.75 },
    };
    expect(reportProblems({ ...report, outputs }, digest).join()).toMatch(/label/);
    expect(reportProblems(null, digest)).toEqual(['VAL_REPORT.json is missing or malformed']);
  });

  it('FAIL when the implementations disagree beyond 1e-4, or on one class label', async () => {
    const bytes = readFileSync(mlpDir + '/model.onnx');
    const inputs = { seed: 1, rows: 8, range: [-1, 1] as const };
    const off = await checkEquivalence(bytes, {
      name: 'mlp',
      version: '1',
      inputs,
      reference: (m, f) => {
        const out = referenceRun(m, f);
        (out.probs!.data as Float64Array)[3]! += 2e-4;
        return out;
      },
    });
    expect(off.status).toBe('FAIL');
    expect(off.maxAbsDiff).toBeGreaterThan(1e-4);
    const treeBytes = readFileSync(join(defaultModelDir(), 'tree', '1', 'model.onnx'));
    const wrongLabel = await checkEquivalence(treeBytes, {
      name: 'tree',
      version: '1',
      inputs,
      reference: (m, f) => {
        const out = referenceRun(m, f);
        const label = out.label!.data as BigInt64Array;
        label[0] = (label[0]! + 1n) % 3n;
        return out;
      },
    });
    expect(wrongLabel.status).toBe('FAIL');
    expect(wrongLabel.outputs.label!.agreement).toBe(7 / 8);
  });

  it('the reference refuses operators it does not implement', () => {
    const model = decodeModel(readFileSync(join(mlpDir, 'model.onnx')));
    model.graph.node[1]!.op_type = 'Sigmoid';
    expect(() => referenceRun(model, { x: { shape: [1, 4], data: [0, 0, 0, 0] } })).toThrow(
      /Sigmoid not implemented/,
    );
  });
});
