/**
 * The model commands of `thunderpac` (wired into main.ts):
 *
 *   thunderpac models list [--models-dir DIR] [--json]
 *   thunderpac models verify [NAME[@VERSION]] [--models-dir DIR] [--json]
 *   thunderpac run --model NAME[@VERSION] --input FILE.json|- [--json] [--store DIR]
 *                  [--timeout-ms N] [--models-dir DIR]
 *
 * `models verify` exits 1 when any model fails its checksums or has a stale or failing
 * VAL_REPORT.json. `run --model` reads tensors as JSON `{name: {dtype, shape, data}}` (or a
 * sample_io.json, whose `inputs` it uses) and prints outputs and the receipt like every run.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ONNX_ENTRY, onnxDeterminismFlags } from '../backends/onnx/backend.js';
import { reportProblems } from '../backends/onnx/equivalence.js';
import { defaultModelDir, type ModelEntry, ModelRegistry, REPORT_FILE } from '../backends/onnx/registry.js';
import { tensorsFromJson, tensorsToJson } from '../backends/onnx/tensors-json.js';
import { asThunderpacError } from '../runtime/errors.js';
import { Thunderpac } from '../thunderpac.js';
import { parseIntFlag, printOutput, printReceipt, readInput, storeDir, UsageError } from './io.js';
import { parseJsonFile } from './json.js';
import { existingDirectory } from './paths.js';

/** `--models-dir DIR` (checked to be an existing directory), else the shipped models/. */
function modelDir(flag: string | undefined): string {
  return flag === undefined ? defaultModelDir() : existingDirectory(flag, '--models-dir');
}

/** Whether a `run` command line names a model (then runModelCommand handles it). */
export function isModelRun(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--model' || a.startsWith('--model='));
}

function write(json: unknown): void {
  process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
}

interface ModelStatus {
  readonly model: string;
  readonly digest: string | null;
  readonly checksum: 'ok' | 'MISMATCH' | 'UNTRUSTED' | 'ERROR';
  readonly report: 'PASS' | 'STALE' | 'FAIL' | 'MISSING' | '-';
  readonly problems: readonly string[];
}

function status(reg: ModelRegistry, e: ModelEntry): ModelStatus {
  const model = `${e.name}@${e.version}`;
  let digest: string | null = null;
  try {
    digest = reg.load(model).digest;
  } catch (err) {
    const t = asThunderpacError(err);
    const checksum =
      t.code === 'MODEL_CHECKSUM_MISMATCH' || t.code === 'MODEL_DIGEST_PIN'
        ? 'MISMATCH'
        : t.code === 'MODEL_UNTRUSTED'
          ? 'UNTRUSTED'
          : 'ERROR';
    return { model, digest, checksum, report: '-', problems: [`${t.code}: ${t.message}`] };
  }
  const path = join(e.dir, REPORT_FILE);
  let report: unknown = null;
  try {
    if (existsSync(path)) report = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    report = null;
  }
  const problems = reportProblems(report, digest);
  const verdict =
    problems.length === 0
      ? 'PASS'
      : report === null
        ? 'MISSING'
        : problems.some((p) => p.startsWith('stale'))
          ? 'STALE'
          : 'FAIL';
  return { model, digest, checksum: 'ok', report: verdict, problems };
}

export async function modelsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, 'models-dir': { type: 'string' } },
  });
  const [action, filter, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const reg = new ModelRegistry({ dir: modelDir(values['models-dir']) });
  switch (action) {
    case 'list':
    case 'verify': {
      if (action === 'list' && filter) throw new UsageError('models list takes no model name');
      const entries = filter ? [reg.resolve(filter)] : reg.list();
      const rows = entries.map((e) => status(reg, e));
      if (values.json) write(rows);
      else {
        for (const r of rows) {
          process.stdout.write(
            `${r.model.padEnd(16)} ${(r.digest ?? '-').padEnd(64)} checksum ${r.checksum.padEnd(9)} report ${r.report}\n`,
          );
          if (action === 'verify') for (const p of r.problems) process.stdout.write(`  ${p}\n`);
        }
      }
      if (action === 'list') return 0;
      return rows.every((r) => r.checksum === 'ok' && r.report === 'PASS') ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown models action '${action ?? ''}' (list, verify)`);
  }
}

export async function runModelCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      input: { type: 'string' },
      'timeout-ms': { type: 'string' },
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
      'models-dir': { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError('run --model takes no program file');
  if (!values.model) throw new UsageError('run needs --model NAME[@VERSION]');
  if (!values.input) throw new UsageError('run --model needs --input FILE.json (or - for stdin)');
  const timeoutMs = parseIntFlag('timeout-ms', values['timeout-ms']);
  const reg = new ModelRegistry({ dir: modelDir(values['models-dir']) });
  const model = reg.get(values.model);
  const json = parseJsonFile(readInput(values.input).toString('utf8'), values.input, '--input');
  const body = json as { inputs?: unknown };
  const tensors = tensorsFromJson(
    typeof body === 'object' && body !== null && 'inputs' in body ? body.inputs : json,
    'input.tensors',
  );
  const tp = await Thunderpac.open({ store: storeDir(values.store) });
  try {
    const build = await reg.buildOf(model);
    const sandbox = tp.sandbox({
      backend: 'onnx',
      limits: { ...(timeoutMs !== undefined && { timeoutMs }) },
      determinism: { flags: onnxDeterminismFlags(build) },
    });
    const result = await tp.execute(sandbox, {
      build,
      input: { kind: 'tensors', tensors },
      entry: ONNX_ENTRY,
    });
    const output = result.output?.kind === 'tensors' ? tensorsToJson(result.output.tensors) : null;
    if (values.json)
      write({
        model: `${model.name}@${model.version}`,
        digest: model.digest,
        output,
        receipt: result.receipt,
      });
    else {
      process.stdout.write(`model ${model.name}@${model.version} sha256:${model.digest}\n`);
      printOutput(result.output);
      printReceipt(result.receipt);
    }
    return result.status === 'completed' ? 0 : 1;
  } finally {
    await tp.close();
  }
}
