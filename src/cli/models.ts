/**
 * The model commands of `thunderpac` (wired into main.ts):
 *
 *   thunderpac models list [--models-dir DIR] [--json]
 *   thunderpac models verify [NAME[@VERSION]] [--models-dir DIR] [--json]
 *   thunderpac run --model NAME[@VERSION] --input FILE.json|- [--json] [--store DIR]
 *                  [--timeout-ms N] [--models-dir DIR]
 *
 * With `--socket PATH` (or $THUNDERPAC_SOCKET) `models list` and `run --model` go through the
 * daemon (client-models.ts); `models verify` always checks the local files (the daemon has no
 * verify route).
 *
 * `models verify` exits 1 when any model fails its checksums or has a stale or failing
 * VAL_REPORT.json. `run --model` reads tensors as JSON `{name: {dtype, shape, data}}` (or a
 * sample_io.json, whose `inputs` it uses) and prints outputs and the receipt like every run.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { reportProblems } from '../backends/onnx/equivalence.js';
import { defaultModelDir, type ModelEntry, ModelRegistry, REPORT_FILE } from '../backends/onnx/registry.js';
import { tensorsFromJson, tensorsToJson } from '../backends/onnx/tensors-json.js';
import { asThunderpacError } from '../runtime/errors.js';
import type { Tensor } from '../runtime/types.js';
import { clientSocket, refuseLocalFlags, withDaemon } from './client.js';
import { listModelsThroughDaemon, runModelThroughDaemon } from './client-models.js';
import { parseIntFlag, printOutput, printReceipt, readInput, storeDir, UsageError } from './io.js';
import { parseJsonFile } from './json.js';
import { existingDirectory } from './paths.js';

/** `--models-dir DIR` (checked to be an existing directory), else the shipped models/. */
function modelDir(flag: string | undefined): string {
  return flag === undefined ? defaultModelDir() : existingDirectory(flag, '--models-dir');
}

/** Whether a `run` command line names a model (in io.ts, so main.ts need not load this module to ask). */
export { isModelRun } from './io.js';

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

/** Loaded by the in-process paths only (client mode need not pay for the runtime). */
const runtime = () =>
  Promise.all([
    import('../backends/onnx/backend.js'),
    import('../backends/onnx/equivalence.js'),
    import('../thunderpac.js'),
  ]);

function status(reg: ModelRegistry, e: ModelEntry, problemsOf: typeof reportProblems): ModelStatus {
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
  const problems = problemsOf(report, digest);
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
    options: {
      json: { type: 'boolean', default: false },
      'models-dir': { type: 'string' },
      socket: { type: 'string' },
    },
  });
  const [action, filter, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (action === 'verify' && values.socket !== undefined) {
    throw new UsageError(
      'models verify checks the files in --models-dir here; the daemon has no verify route (drop --socket)',
    );
  }
  const socket = action === 'list' ? clientSocket(values.socket) : undefined;
  if (socket !== undefined) {
    refuseLocalFlags(values, ['models-dir']);
    if (filter) throw new UsageError('models list takes no model name');
    const rows = await withDaemon(socket, listModelsThroughDaemon);
    printRows(rows, values.json, false);
    return 0;
  }
  const reg = new ModelRegistry({ dir: modelDir(values['models-dir']) });
  switch (action) {
    case 'list':
    case 'verify': {
      if (action === 'list' && filter) throw new UsageError('models list takes no model name');
      const entries = filter ? [reg.resolve(filter)] : reg.list();
      const [, { reportProblems }] = await runtime();
      const rows = entries.map((e) => status(reg, e, reportProblems));
      printRows(rows, values.json, action === 'verify');
      if (action === 'list') return 0;
      return rows.every((r) => r.checksum === 'ok' && r.report === 'PASS') ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown models action '${action ?? ''}' (list, verify)`);
  }
}

/** `models list|verify` rows, as JSON or one line each (verify adds the problems). */
function printRows(rows: readonly ModelStatus[], json: boolean, problems: boolean): void {
  if (json) {
    write(rows);
    return;
  }
  for (const r of rows) {
    process.stdout.write(
      `${r.model.padEnd(16)} ${(r.digest ?? '-').padEnd(64)} checksum ${r.checksum.padEnd(9)} report ${r.report}\n`,
    );
    if (problems) for (const p of r.problems) process.stdout.write(`  ${p}\n`);
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
      socket: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError('run --model takes no program file');
  if (!values.model) throw new UsageError('run needs --model NAME[@VERSION]');
  if (!values.input) throw new UsageError('run --model needs --input FILE.json (or - for stdin)');
  const socket = clientSocket(values.socket);
  if (socket !== undefined) {
    // The daemon's model registry, store and limits apply; the infer route takes no timeout.
    refuseLocalFlags(values, ['store', 'models-dir', 'timeout-ms']);
    const tensors = readTensors(values.input);
    return withDaemon(socket, (client) => runModelThroughDaemon(client, values.model!, tensors, values.json));
  }
  const timeoutMs = parseIntFlag('timeout-ms', values['timeout-ms']);
  const reg = new ModelRegistry({ dir: modelDir(values['models-dir']) });
  const model = reg.get(values.model);
  const tensors = readTensors(values.input);
  const [{ ONNX_ENTRY, onnxDeterminismFlags }, , { Thunderpac }] = await runtime();
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

/** `--input FILE.json`: tensors `{name: {dtype, shape, data}}`, or a sample_io.json's `inputs`. */
function readTensors(input: string): Record<string, Tensor> {
  const json = parseJsonFile(readInput(input).toString('utf8'), input, '--input');
  const body = json as { inputs?: unknown };
  return tensorsFromJson(
    typeof body === 'object' && body !== null && 'inputs' in body ? body.inputs : json,
    'input.tensors',
  );
}
