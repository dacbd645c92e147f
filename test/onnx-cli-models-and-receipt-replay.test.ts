import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isModelRun, modelsCommand, runModelCommand } from '../src/cli/models.js';
import { defaultModelDir } from '../src/backends/onnx/registry.js';
import type { Receipt } from '../src/runtime/receipt.js';
import { packagePath } from '../src/runtime/package-root.js';
import { Thunderpac } from '../src/thunderpac.js';

let tmp: string;
let out: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tp-onnx-cli-'));
  out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(tmp, { recursive: true, force: true });
});

function copyModels(): string {
  const dir = join(tmp, 'models');
  cpSync(defaultModelDir(), dir, { recursive: true });
  return dir;
}

describe('thunderpac models', () => {
  it('list prints name, version, digest and status of every shipped model', async () => {
    expect(await modelsCommand(['list', '--json'])).toBe(0);
    const rows = JSON.parse(out) as { model: string; checksum: string; report: string; digest: string }[];
    expect(rows.map((r) => r.model)).toEqual(['cnn@1', 'mlp@1', 'tree@1']);
    for (const r of rows) {
      expect(r).toMatchObject({ checksum: 'ok', report: 'PASS' });
      expect(r.digest).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('verify exits 0 for intact models, 1 for a checksum mismatch or a stale report', async () => {
    const dir = copyModels();
    expect(await modelsCommand(['verify', '--models-dir', dir])).toBe(0);
    expect(await modelsCommand(['verify', 'mlp@1', '--models-dir', dir])).toBe(0);

    const model = join(dir, 'tree/1/model.onnx');
    const bytes = readFileSync(model);
    bytes[10]! ^= 0xff;
    writeFileSync(model, bytes);
    out = '';
    expect(await modelsCommand(['verify', '--models-dir', dir])).toBe(1);
    expect(out).toMatch(/tree@1 .* checksum MISMATCH/);
    expect(out).toMatch(/MODEL_CHECKSUM_MISMATCH/);
    expect(await modelsCommand(['verify', 'mlp', '--models-dir', dir])).toBe(0);

    const reportPath = join(dir, 'mlp/1/VAL_REPORT.json');
    const report = JSON.parse(readFileSync(reportPath, 'utf8'));
    writeFileSync(reportPath, JSON.stringify({ ...report, modelDigest: 'a'.repeat(64) }));
    out = '';
    expect(await modelsCommand(['verify', 'mlp', '--models-dir', dir])).toBe(1);
    expect(out).toMatch(/report STALE/);
    writeFileSync(reportPath, JSON.stringify({ ...report, status: 'FAIL' }));
    expect(await modelsCommand(['verify', 'mlp', '--models-dir', dir])).toBe(1);
  });
});

describe('thunderpac run --model', () => {
  it('runs a model on JSON tensors, prints outputs and a receipt that replays via verify', async () => {
    const store = join(tmp, 'store');
    const input = join(defaultModelDir(), 'tree/1/sample_io.json');
    expect(isModelRun(['--model', 'tree', '--input', input])).toBe(true);
    expect(isModelRun(['prog.wasm', '--export', 'x'])).toBe(false);
    expect(await runModelCommand(['--model', 'tree@1', '--input', input, '--json', '--store', store])).toBe(
      0,
    );
    const result = JSON.parse(out) as { output: Record<string, { data: number[] }>; receipt: Receipt };
    const sample = JSON.parse(readFileSync(input, 'utf8'));
    expect(result.output.label!.data).toEqual(sample.outputs.label.data);
    expect(result.receipt.status).toBe('completed');
    expect(result.receipt.backend).toBe('onnx');

    const tp = await Thunderpac.open({ store });
    try {
      const report = await tp.verify(result.receipt.id);
      expect(report.problem).toBeNull();
      expect(report.mismatches).toEqual([]);
      expect(report.match).toBe(true);
    } finally {
      await tp.close();
    }
  });

  it('fails (exit 1, failed receipt) on input that does not match the model', async () => {
    const file = join(tmp, 'bad.json');
    writeFileSync(file, JSON.stringify({ x: { dtype: 'float32', shape: [1, 3], data: [1, 2, 3] } }));
    expect(await runModelCommand(['--model', 'mlp', '--input', file, '--store', join(tmp, 'store')])).toBe(1);
    expect(out).toMatch(/VALIDATION_DIM: input\.tensors\.x\.shape\[1\]: expected 4, found 3/);
  });
});

describe('thunderpac run --model, as a process', () => {
  it('a cold worker pool keeps the process alive until the answer (exit 0, not 13)', () => {
    // Regression: with every worker unref'd while it starts and no timer yet, the only pending
    // request did not hold the event loop and node exited with 13 (unsettled top-level await).
    const store = mkdtempSync(join(tmpdir(), 'tp-onnx-cli-proc-'));
    try {
      const out = execFileSync(
        process.execPath,
        [
          'bin/thunderpac.js',
          'run',
          '--model',
          'mlp',
          '--input',
          join(defaultModelDir(), 'mlp', '1', 'sample_io.json'),
          '--store',
          store,
          '--json',
        ],
        { cwd: packagePath(), timeout: 60_000 },
      );
      const printed = JSON.parse(out.toString()) as { output: Record<string, unknown>; receipt: Receipt };
      expect(Object.keys(printed.output)).toEqual(['probs']);
      expect(printed.receipt.status).toBe('completed');
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
