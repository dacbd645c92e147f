/**
 * The pipeline in front of an onnx build: requests are tensors with the model's batch
 * dimension first; a batch is the concatenation of its requests along dimension 0, run as ONE
 * execution (one receipt, which each response names), and split back into per-request outputs.
 *
 * Requests only share a batch when their tensors agree on names, dtypes and trailing dims
 * (batchKey). If a merged batch fails validation, its requests are re-run one by one so a bad
 * request fails alone, with its own error and path, instead of taking its neighbours down.
 *
 * For the breaker and the adaptive limit (see pipeline.ts), a request's ValidationError is the
 * caller's fault, not the model's: only other failures (a crashed worker, a timeout, a thrown
 * execution) count against the model unless `isFault` says otherwise.
 */

import type { Build } from '../../runtime/build.js';
import type { ExecuteRequest, ExecutionResult } from '../../runtime/executor.js';
import { ValidationError } from '../../runtime/errors.js';
import type { Sandbox, SandboxOptions } from '../../runtime/sandbox.js';
import { onnxDeterminismFlags, ONNX_ENTRY } from './backend.js';
import { batchKey, batchRows, concatBatch, splitBatch, type Tensors } from './batch.js';
import { type Outcome, Pipeline, type PipelineOptions } from './pipeline.js';

export interface OnnxRequest {
  readonly tensors: Tensors;
}

export interface OnnxResponse {
  readonly tensors: Tensors;
  /** The receipt of the execution this request was part of. */
  readonly receiptId: string;
  /** How many requests shared that execution. */
  readonly batchSize: number;
}

/** What the pipeline needs of a Thunderpac instance (structural: no import of the facade). */
export interface OnnxExecutor {
  sandbox(options: SandboxOptions): Sandbox;
  execute(sandbox: Sandbox, request: ExecuteRequest): Promise<ExecutionResult>;
}

export type OnnxPipelineOptions = Omit<PipelineOptions<OnnxRequest, OnnxResponse>, 'handler' | 'batchKey'> & {
  readonly limits?: SandboxOptions['limits'];
};

export function createOnnxPipeline(
  tp: OnnxExecutor,
  build: Build,
  options: OnnxPipelineOptions,
): Pipeline<OnnxRequest, OnnxResponse> {
  // One sandbox per concurrent batch: a sandbox runs one execution at a time.
  const free: Sandbox[] = [];
  for (let i = 0; i < options.concurrency; i++) {
    free.push(
      tp.sandbox({
        backend: 'onnx',
        ...(options.limits && { limits: options.limits }),
        determinism: { flags: onnxDeterminismFlags(build) },
      }),
    );
  }

  async function runOne(sandbox: Sandbox, tensors: Tensors): Promise<ExecutionResult> {
    return tp.execute(sandbox, { build, input: { kind: 'tensors', tensors }, entry: ONNX_ENTRY });
  }

  async function handler(batch: readonly OnnxRequest[]): Promise<Outcome<OnnxResponse>[]> {
    const sandbox = free.pop();
    if (!sandbox) throw new Error('onnx pipeline: no free sandbox (concurrency accounting bug)');
    try {
      const result = await runOne(sandbox, concatBatch(batch.map((r) => r.tensors)));
      if (result.status === 'completed' && result.output?.kind === 'tensors') {
        const parts = splitBatch(
          result.output.tensors,
          batch.map((r) => batchRows(r.tensors)),
        );
        return parts.map((tensors) => ({
          ok: true,
          value: { tensors, receiptId: result.receipt.id, batchSize: batch.length },
        }));
      }
      if (batch.length > 1 && result.error instanceof ValidationError) {
        const outcomes: Outcome<OnnxResponse>[] = [];
        for (const r of batch) {
          const one = await runOne(sandbox, r.tensors);
          outcomes.push(
            one.status === 'completed' && one.output?.kind === 'tensors'
              ? { ok: true, value: { tensors: one.output.tensors, receiptId: one.receipt.id, batchSize: 1 } }
              : { ok: false, error: one.error },
          );
        }
        return outcomes;
      }
      return batch.map(() => ({ ok: false, error: result.error }));
    } finally {
      free.push(sandbox);
    }
  }

  return new Pipeline<OnnxRequest, OnnxResponse>({
    ...options,
    isFault: options.isFault ?? ((error) => !(error instanceof ValidationError)),
    handler,
    batchKey: (r) => batchKey(r.tensors),
  });
}
