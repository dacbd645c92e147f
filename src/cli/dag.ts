/**
 * `thunderpac dag run SPEC.json [--json] [--store DIR] [--models-dir DIR]` and
 * `thunderpac dag verify <receipt-id> [--json] [--store DIR]` (runtime/dag.ts).
 *
 * A spec file (JSON; paths relative to the spec file's folder):
 *
 *   {
 *     "name": "route-features-classify",
 *     "input": { "kind": "packet", "hex": "ffff…", "ingressPort": 1 },
 *     "steps": [
 *       { "name": "route", "p4": "../p4/samples/basic_router.p4", "entry": "ingress" },
 *       { "name": "features", "wasm": "../wasm/pkt_features.wasm", "entry": "features",
 *         "adapter": { "kind": "packet-to-bytes" } },
 *       { "name": "classify", "model": "mlp@1",
 *         "adapter": { "kind": "bytes-to-tensor", "name": "x", "dtype": "float32", "shape": [1, 4] } }
 *     ]
 *   }
 *
 * input: `{ kind: 'bytes' | 'packet', hex | base64 | file, ingressPort? }` or
 * `{ kind: 'tensors', tensors: { name: { dtype, shape, data } } }`. A step names its program
 * with exactly one of `p4` (P4_16 source; optional `defines`, `controlPlane`), `wasm` (a core
 * module), `onnx` (a model file) or `model` (NAME[@VERSION] from the model registry); `entry`
 * (default: `ingress` for p4, the ONNX entry for models; required for wasm), optional `from`,
 * `adapter` and `limits`. A bad field is a typed error naming it (`steps[1].adapter.kind`).
 *
 * `dag run` prints each step (name, status, receipt) and the DAG's key and last receipt; exit
 * 0 when every step completed, 1 when one failed. `dag verify` replays the DAG a receipt ran in
 * and prints each step's verdict; exit 0 when every step matches, 1 at the first that differs
 * (named, with the check that failed).
 */

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Build } from '../runtime/build.js';
import { type DagSpec, type DagStepSpec, DagSpecError, type DagVerifyReport } from '../runtime/dag.js';
import type { SandboxLimits } from '../runtime/types.js';
import type { Input } from '../runtime/types.js';
import { outputJson, storeDir, UsageError } from './io.js';
import { parseJsonFile } from './json.js';
import { existingDirectory, readUserFile } from './paths.js';

type Obj = Record<string, unknown>;

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function bytesField(o: Obj, path: string, base: string): Uint8Array {
  const given = ['hex', 'base64', 'file'].filter((k) => o[k] !== undefined);
  if (given.length !== 1) throw new DagSpecError(path, 'expected exactly one of hex, base64, file');
  const v = o[given[0]!];
  if (typeof v !== 'string') throw new DagSpecError(`${path}.${given[0]}`, 'expected a string');
  if (given[0] === 'hex') {
    if (!/^([0-9a-fA-F]{2})*$/.test(v)) throw new DagSpecError(`${path}.hex`, 'expected pairs of hex digits');
    return Buffer.from(v, 'hex');
  }
  if (given[0] === 'base64') return Buffer.from(v, 'base64');
  return readUserFile(resolve(base, v), `${path}.file`);
}

/** The `input` of a spec file as an Input. */
export async function dagInputFromJson(json: unknown, path: string, base: string): Promise<Input> {
  if (!isObj(json)) throw new DagSpecError(path, 'expected an object');
  switch (json.kind) {
    case 'bytes':
      return { kind: 'bytes', bytes: bytesField(json, path, base) };
    case 'packet': {
      const port = json.ingressPort ?? 0;
      if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 0xffffffff)
        throw new DagSpecError(`${path}.ingressPort`, 'expected an integer 0..2^32-1');
      return { kind: 'packet', bytes: bytesField(json, path, base), ingressPort: port as number };
    }
    case 'tensors': {
      const { tensorsFromJson } = await import('../backends/onnx/tensors-json.js');
      return { kind: 'tensors', tensors: tensorsFromJson(json.tensors, `${path}.tensors`) };
    }
    default:
      throw new DagSpecError(
        `${path}.kind`,
        `expected bytes, packet or tensors, got ${JSON.stringify(json.kind)}`,
      );
  }
}

/**
 * A spec file's JSON as a DagSpec: programs built (P4 compiled, models read through the
 * registry with their checksums checked), sandboxes made with each backend's defaults.
 */
export async function dagSpecFromJson(json: unknown, base: string, modelsDir?: string): Promise<DagSpec> {
  if (!isObj(json)) throw new DagSpecError('$', 'expected an object');
  const { Sandbox } = await import('../runtime/sandbox.js');
  const input = await dagInputFromJson(json.input, 'input', base);
  if (!Array.isArray(json.steps)) throw new DagSpecError('steps', 'expected an array');
  const steps: DagStepSpec[] = [];
  for (const [i, raw] of json.steps.entries()) {
    const at = `steps[${i}]`;
    if (!isObj(raw)) throw new DagSpecError(at, 'expected an object');
    const kinds = ['p4', 'wasm', 'onnx', 'model'].filter((k) => raw[k] !== undefined);
    if (kinds.length !== 1) throw new DagSpecError(at, 'expected exactly one of p4, wasm, onnx, model');
    const kind = kinds[0]!;
    const ref = raw[kind];
    if (typeof ref !== 'string') throw new DagSpecError(`${at}.${kind}`, 'expected a string');
    if (raw.limits !== undefined && !isObj(raw.limits))
      throw new DagSpecError(`${at}.limits`, 'expected an object');
    const limits = (raw.limits ?? {}) as Partial<SandboxLimits>;
    let build: Build;
    let entry = raw.entry;
    let sandbox: InstanceType<typeof Sandbox>;
    if (kind === 'p4') {
      const { createP4Build } = await import('../backends/p4/backend.js');
      const file = resolve(base, ref);
      const source = readUserFile(file, `${at}.p4`).toString('utf8');
      build = createP4Build(source, {
        name: ref,
        file,
        includeDirs: [dirname(file)],
        ...(isObj(raw.defines) ? { defines: raw.defines as Record<string, string> } : {}),
        ...(isObj(raw.controlPlane) ? { controlPlane: raw.controlPlane as never } : {}),
      });
      entry ??= 'ingress';
      sandbox = new Sandbox({ backend: 'p4', limits });
    } else if (kind === 'wasm') {
      const { createWasmBuild } = await import('../backends/wasm/backend.js');
      build = createWasmBuild(readUserFile(resolve(base, ref), `${at}.wasm`), { name: ref });
      sandbox = new Sandbox({ backend: 'wasm', limits });
    } else {
      const onnx = await import('../backends/onnx/backend.js');
      if (kind === 'onnx') {
        build = await onnx.createOnnxBuild(readUserFile(resolve(base, ref), `${at}.onnx`), { name: ref });
      } else {
        const { ModelRegistry, defaultModelDir } = await import('../backends/onnx/registry.js');
        build = await new ModelRegistry({ dir: modelsDir ?? defaultModelDir() }).build(ref);
      }
      entry ??= onnx.ONNX_ENTRY;
      sandbox = new Sandbox({
        backend: 'onnx',
        limits,
        determinism: { flags: onnx.onnxDeterminismFlags(build) },
      });
    }
    if (typeof entry !== 'string')
      throw new DagSpecError(`${at}.entry`, 'expected the entry point (a string)');
    steps.push({
      name: raw.name as string,
      build,
      sandbox,
      entry,
      ...(raw.from !== undefined ? { from: raw.from as string[] } : {}),
      ...(raw.adapter !== undefined ? { adapter: raw.adapter as never } : {}),
    });
  }
  return { name: json.name as string, input, steps };
}

function write(json: unknown): void {
  process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
}

export function printDagVerify(report: DagVerifyReport, json: boolean): number {
  if (json) write(report);
  else {
    for (const s of report.steps) {
      const why = s.status === 'differs' ? `  ${s.check}: ${s.problem}` : '';
      process.stdout.write(`${s.name.padEnd(16)} ${s.status.padEnd(11)} ${s.receipt ?? '-'}${why}\n`);
    }
    process.stdout.write(
      report.match
        ? `DAG ${report.name} (${report.dag}): every step replays\n`
        : `DAG ${report.name} (${report.dag}): first difference at step '${report.firstDifference}'\n`,
    );
  }
  return report.match ? 0 : 1;
}

export async function dagCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
      'models-dir': { type: 'string' },
    },
  });
  const [action, arg] = positionals;
  const { Thunderpac } = await import('../thunderpac.js');
  switch (action) {
    case 'run': {
      if (!arg) throw new UsageError('dag run needs a spec file (JSON)');
      const file = resolve(arg);
      const json = parseJsonFile(readFileSync(file, 'utf8'), file, 'SPEC');
      const modelsDir =
        values['models-dir'] === undefined
          ? undefined
          : existingDirectory(values['models-dir'], '--models-dir');
      const spec = await dagSpecFromJson(json, dirname(file), modelsDir);
      const tp = await Thunderpac.open({ store: storeDir(values.store) });
      try {
        const r = await tp.runDag(spec);
        if (values.json) {
          write({
            status: r.status,
            dag: r.dag,
            lastReceipt: r.lastReceipt?.id ?? null,
            steps: r.steps.map((s) => ({
              name: s.name,
              status: s.status,
              receipt: s.receipt?.id ?? null,
              error: s.error ? { code: s.error.code, message: s.error.message } : null,
              output: outputJson(s.output),
            })),
          });
        } else {
          for (const s of r.steps) {
            const err = s.error ? `  ${s.error.code}: ${s.error.message}` : '';
            process.stdout.write(
              `${s.name.padEnd(16)} ${s.status.padEnd(9)} ${s.receipt?.id ?? '-'}${err}\n`,
            );
          }
          process.stdout.write(`dag ${r.dag}\nlast receipt ${r.lastReceipt?.id ?? '-'}\n`);
        }
        return r.status === 'completed' ? 0 : 1;
      } finally {
        await tp.close();
      }
    }
    case 'verify': {
      if (!arg) throw new UsageError('dag verify needs a receipt id');
      // Replay writes nothing: a read-only store (works beside a daemon).
      const tp = await Thunderpac.open({
        store: storeDir(values.store, { create: false }),
        storeOptions: { readOnly: true },
      });
      try {
        return printDagVerify(await tp.verifyDag(arg), values.json);
      } finally {
        await tp.close();
      }
    }
    default:
      throw new UsageError(`unknown dag action '${action ?? ''}' (run, verify)`);
  }
}
