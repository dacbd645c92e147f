/**
 * `models list` and `run --model` in client mode: the daemon's model registry (`GET /v1/models`)
 * and its KServe v2 inference (`POST /v2/models/{name}[/versions/{v}]/infer`), printed as the
 * in-process commands print them.
 *
 * The CLI's tensor JSON (`{name: {dtype, shape, data}}`, as in sample_io.json) becomes v2
 * tensors (`{name, datatype, shape, data}`) after the same parsing the in-process run does, so
 * the daemon sees the very values (float32 rounding, integer wrapping) the executor would, and
 * the receipt's input hash matches. The v2 outputs come back as runtime tensors.
 */

import { parseModelRef } from '../backends/onnx/registry.js';
import { tensorsFromJson, tensorsToJson } from '../backends/onnx/tensors-json.js';
import type { ModelStatus } from '../daemon/context.js';
import { DATATYPE_OF } from '../daemon/kserve-tensors.js';
import type { DType, Tensor } from '../runtime/types.js';
import { type DaemonClient, DaemonClientError, EXIT_INTERNAL, errorOf, segment } from './client.js';
import { fetchReceipt } from './client-receipts.js';
import { printOutput, printReceipt } from './io.js';

/** One row of `models list`, as the in-process command computes it (models.ts). */
export interface ModelRow {
  readonly model: string;
  readonly digest: string | null;
  readonly checksum: 'ok' | 'MISMATCH' | 'UNTRUSTED' | 'ERROR';
  readonly report: 'PASS' | 'STALE' | 'FAIL' | 'MISSING' | '-';
  readonly problems: readonly string[];
}

const REPORTS = new Set(['PASS', 'STALE', 'FAIL', 'MISSING']);

/**
 * The daemon's models as `models list` rows. Models still loading are waited for (their /ready
 * route awaits the load), so a list right after the daemon starts shows what a local list
 * shows. The VAL_REPORT verdict is shown when the daemon reports one, else '-'.
 */
export async function listModelsThroughDaemon(client: DaemonClient): Promise<ModelRow[]> {
  let { models } = (await client.request<{ models: ModelStatus[] }>('GET', '/v1/models')).body;
  const pending = models.filter((m) => m.state === 'loading' || m.state === 'unloaded');
  if (pending.length > 0) {
    for (const m of pending) {
      await client.request('GET', `/v2/models/${segment(m.name)}/versions/${segment(m.version)}/ready`, {
        accept: [400],
      });
    }
    ({ models } = (await client.request<{ models: ModelStatus[] }>('GET', '/v1/models')).body);
  }
  return models.map((m) => {
    const reported = (m as { report?: unknown }).report;
    const report =
      typeof reported === 'string' && REPORTS.has(reported) ? (reported as ModelRow['report']) : '-';
    const error = m.error;
    const checksum: ModelRow['checksum'] =
      m.state === 'ready'
        ? 'ok'
        : error && /checksum|digest/i.test(error)
          ? 'MISMATCH'
          : error && /untrusted/i.test(error)
            ? 'UNTRUSTED'
            : 'ERROR';
    return {
      model: `${m.name}@${m.version}`,
      digest: m.sha256,
      checksum,
      report: checksum === 'ok' ? report : '-',
      problems: error ? [error] : [],
    };
  });
}

/** A v2 tensor of a request or a response. */
interface V2Tensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
  readonly data: (number | boolean)[];
}

const DTYPE_OF: Readonly<Record<string, DType>> = Object.fromEntries(
  Object.entries(DATATYPE_OF).map(([dtype, datatype]) => [datatype, dtype as DType]),
);

/** Runtime tensors (parsed from the CLI's JSON) as v2 request inputs. */
export function v2Inputs(tensors: Readonly<Record<string, Tensor>>): V2Tensor[] {
  return Object.entries(tensors).map(([name, t]) => {
    const src = t.data as ArrayLike<number | bigint>;
    const data = Array.from(src, (x) => (t.dtype === 'bool' ? x !== 0 : Number(x)));
    return { name, datatype: DATATYPE_OF[t.dtype], shape: [...t.shape], data };
  });
}

/** v2 response outputs as runtime tensors (what an in-process run returns). */
function runtimeOutputs(outputs: unknown): Record<string, Tensor> {
  if (!Array.isArray(outputs)) {
    throw new DaemonClientError('the daemon answered an inference without outputs', EXIT_INTERNAL);
  }
  const json: Record<string, unknown> = {};
  for (const o of outputs as V2Tensor[]) {
    const dtype = DTYPE_OF[o?.datatype];
    if (!dtype || typeof o.name !== 'string') {
      throw new DaemonClientError(`the daemon answered an output tensor this CLI cannot read`, EXIT_INTERNAL);
    }
    json[o.name] = { dtype, shape: o.shape, data: o.data };
  }
  return tensorsFromJson(json, 'outputs');
}

interface InferResponse {
  readonly model_name: string;
  readonly model_version: string;
  readonly parameters?: { readonly receipt_id?: string };
  readonly outputs?: unknown;
  readonly error?: string;
}

/**
 * `run --model REF` through the daemon: exit 0 when the inference completed, 1 when it ran and
 * failed (its receipt says why), like the in-process run.
 */
export async function runModelThroughDaemon(
  client: DaemonClient,
  ref: string,
  tensors: Readonly<Record<string, Tensor>>,
  json: boolean,
): Promise<number> {
  const { name, version } = parseModelRef(ref);
  const route = `/v2/models/${segment(name)}${version === undefined ? '' : `/versions/${segment(version)}`}/infer`;
  const res = await client.request<InferResponse>('POST', route, {
    body: { inputs: v2Inputs(tensors) },
    accept: [500],
  });
  const receiptId = res.body?.parameters?.receipt_id;
  if (res.status === 500 && typeof receiptId !== 'string') {
    // A 500 without a receipt is the daemon failing, not the model.
    throw errorOf(res.status, res.headers, res.body, '', 'POST', route);
  }
  if (typeof receiptId !== 'string') {
    throw new DaemonClientError('the daemon answered an inference without a receipt id', EXIT_INTERNAL);
  }
  const completed = res.status === 200;
  const output = completed ? runtimeOutputs(res.body.outputs) : null;
  const label = `${res.body.model_name}@${res.body.model_version}`;
  const { models } = (await client.request<{ models: ModelStatus[] }>('GET', '/v1/models')).body;
  const digest =
    models.find((m) => m.name === res.body.model_name && m.version === res.body.model_version)?.sha256 ??
    null;
  const receipt = await fetchReceipt(client, receiptId);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ model: label, digest, output: output && tensorsToJson(output), receipt }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`model ${label} sha256:${digest}\n`);
    if (output) printOutput({ kind: 'tensors', tensors: output });
    printReceipt(receipt);
  }
  return completed ? 0 : 1;
}
