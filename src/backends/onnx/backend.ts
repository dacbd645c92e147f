/**
 * The `onnx` backend: a build holding one ONNX model; an execution runs it on named tensors.
 *
 * The I/O contract comes from the model itself: createOnnxBuild opens a session once, reads
 * its input/output metadata (names, dtypes, shapes with symbolic dims) and turns it into the
 * build's TensorsSchema — symbolic dims become named dims, so `N` must bind to one size across
 * all inputs — and the executor validates every input against it before onnxruntime sees it.
 *
 * Two paths:
 *   - worker (default): an OnnxWorkerPool; the event loop stays free while a model runs,
 *     and `timeoutMs` is enforced by terminating the worker;
 *   - in-thread: session.run() on the calling thread — no message hop, but it blocks the
 *     event loop for the whole inference and cannot be interrupted (an inference that ran
 *     past timeoutMs fails the execution when it ends; its result is discarded).
 *
 * Reproducibility: the session options that can change output bits and the onnxruntime
 * version are in the build's manifest (toolchain), hence in its id, hence in every receipt
 * that names the build; onnxDeterminismFlags() also puts them, with the model digest, in the
 * sandbox's determinism flags, which every receipt carries verbatim and replay compares.
 * prepare() refuses a sandbox whose onnx flags contradict the build.
 */

import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { artifact, type Build, createBuild } from '../../runtime/build.js';
import { sha256Hex } from '../../runtime/canonical.js';
import {
  LimitExceededError,
  ProgramRejectedError,
  ThunderpacError,
  ValidationError,
} from '../../runtime/errors.js';
import { isDType } from '../../runtime/schema.js';
import type {
  Backend,
  DType,
  Input,
  Output,
  Prepared,
  RunContext,
  SandboxSpec,
  Tensor,
  TensorData,
  TensorSchema,
  TensorsSchema,
} from '../../runtime/types.js';
import {
  type OnnxSessionOptions,
  ort,
  ortModulePath,
  ortSessionOptions,
  ortVersion,
  sessionOptions,
  sessionOptionsFromRecord,
  sessionOptionsRecord,
} from './ort.js';
import type { Isolation } from './endpoint.js';
import { OnnxWorkerPool, type PoolStats, type WireTensor } from './pool.js';

export const ONNX_ARTIFACT = 'model.onnx';
/** The one entry point of an onnx build. */
export const ONNX_ENTRY = 'infer';

type OrtSession = Awaited<ReturnType<ReturnType<typeof ort>['InferenceSession']['create']>>;

export interface OnnxBuildOptions {
  readonly name: string;
  readonly sessionOptions?: Partial<OnnxSessionOptions>;
  /** Byte bound written into each input tensor's schema (refused before it is read). */
  readonly maxTensorBytes?: number;
}

export interface IoContract {
  readonly inputSchema: TensorsSchema;
  readonly outputSchema: TensorsSchema;
}

function tensorSchemas(
  meta: readonly { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] }[],
  which: 'input' | 'output',
  maxBytes: number | undefined,
): Record<string, TensorSchema> {
  const out: Record<string, TensorSchema> = {};
  for (const m of meta) {
    if (!m.isTensor || !isDType(m.type)) {
      throw new ProgramRejectedError(
        'ONNX_UNSUPPORTED_TYPE',
        'io-type',
        `model ${which} '${m.name}' has type ${m.type ?? 'non-tensor'}; thunderpac exchanges numeric tensors only`,
        m.name,
      );
    }
    const shape = (m.shape ?? []).map((d, i) =>
      // An unnamed dynamic dim (-1, '' or absent) gets a name of its own: free, but bound once.
      typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d !== '' ? d : `${m.name}.${i}`,
    );
    out[m.name] = { dtype: m.type as DType, shape, ...(maxBytes !== undefined && { maxBytes }) };
  }
  return out;
}

/** Read the I/O contract of a model from onnxruntime's session metadata. */
export async function readIoContract(
  model: Uint8Array,
  options: OnnxSessionOptions = sessionOptions(),
  maxTensorBytes?: number,
): Promise<IoContract> {
  let session: OrtSession;
  try {
    session = await ort().InferenceSession.create(model, ortSessionOptions(options));
  } catch (err) {
    throw new ProgramRejectedError(
      'ONNX_INVALID_MODEL',
      'load',
      `onnxruntime refused the model: ${(err as Error).message}`,
    );
  }
  try {
    return {
      inputSchema: {
        kind: 'tensors',
        tensors: tensorSchemas(session.inputMetadata, 'input', maxTensorBytes),
      },
      outputSchema: { kind: 'tensors', tensors: tensorSchemas(session.outputMetadata, 'output', undefined) },
    };
  } finally {
    await session.release();
  }
}

export async function createOnnxBuild(model: Uint8Array, options: OnnxBuildOptions): Promise<Build> {
  const opts = sessionOptions(options.sessionOptions);
  const contract = await readIoContract(model, opts, options.maxTensorBytes);
  return createBuild({
    kind: 'onnx',
    name: options.name,
    source: model,
    artifacts: { [ONNX_ARTIFACT]: { bytes: model, mediaType: 'application/onnx' } },
    inputSchema: contract.inputSchema,
    outputSchema: contract.outputSchema,
    toolchain: { onnxruntime: ortVersion(), ...sessionOptionsRecord(opts) },
  });
}

/** sha256 of the model inside an onnx build. */
export function modelDigest(build: Build): string {
  const ref = build.manifest.artifacts[ONNX_ARTIFACT];
  if (!ref)
    throw new ProgramRejectedError('ONNX_NO_MODEL', 'artifact', `build ${build.id} has no ${ONNX_ARTIFACT}`);
  return ref.digest;
}

/**
 * Determinism flags for a sandbox that runs `build`: the model digest, the onnxruntime version
 * and every session option, as `key=value`. Receipts carry them verbatim.
 */
export function onnxDeterminismFlags(build: Build): string[] {
  const flags = [`onnx.model=sha256:${modelDigest(build)}`];
  for (const [k, v] of Object.entries(build.manifest.toolchain))
    flags.push(`${k === 'onnxruntime' ? 'onnx.runtime' : k}=${v}`);
  return flags.sort();
}

export interface OnnxPrepared extends Prepared {
  readonly backend: 'onnx';
  /** Model digest + session options: the session cache key. */
  readonly key: string;
  readonly digest: string;
  readonly model: Uint8Array;
  readonly options: OnnxSessionOptions;
  readonly path: 'worker' | 'in-thread';
  readonly session: OrtSession | null;
}

export type OnnxPath = 'worker' | 'in-thread';

export interface OnnxBackendOptions {
  /** Where inference runs (default 'worker'). */
  readonly path?: OnnxPath;
  /** Workers (default min(2, cores)). */
  readonly workers?: number;
  /**
   * Worker threads (default) or child processes. Threads cannot be stopped inside a run (see
   * endpoint.ts): choose 'process' where a timeout must stop the inference or a crash must be
   * contained.
   */
  readonly isolation?: Isolation;
  /** Retries of a request whose worker crashed (default 1). */
  readonly retries?: number;
  readonly backoffMs?: { readonly initial: number; readonly max: number };
}

interface SharedSession {
  readonly session: Promise<OrtSession>;
  refs: number;
}

export class OnnxBackend implements Backend<OnnxPrepared> {
  readonly name = 'onnx' as const;
  /**
   * Both paths enforce `timeoutMs` themselves, so the executor needs no backstop timer: the
   * worker pool fails a request at its deadline (killing a process worker, retiring a thread
   * once its run ends); in-thread, the inference cannot be interrupted, so a run that took
   * longer than the limit has its result discarded and fails with LimitExceededError.
   */
  readonly enforcesTimeout = true;
  readonly versions: Readonly<Record<string, string>> = Object.freeze({ onnxruntime: ortVersion() });
  readonly path: OnnxPath;
  readonly #pool: OnnxWorkerPool | null;
  /** In-thread sessions by key, shared by every prepared build of the same model and options. */
  readonly #sessions = new Map<string, SharedSession>();
  readonly #workerRefs = new Map<string, number>();

  constructor(options: OnnxBackendOptions = {}) {
    this.path = options.path ?? 'worker';
    const size = options.workers ?? Math.min(2, os.availableParallelism());
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new ValidationError('range', 'OnnxBackendOptions.workers', 'an integer >= 1', String(size));
    }
    this.#pool =
      this.path === 'worker'
        ? new OnnxWorkerPool({
            size,
            isolation: options.isolation ?? 'thread',
            ortPath: ortModulePath(),
            ...(options.retries !== undefined && { retries: options.retries }),
            ...(options.backoffMs && { backoffMs: options.backoffMs }),
          })
        : null;
  }

  /** The worker pool (null in-thread), for the supervisor and tests. */
  get pool(): OnnxWorkerPool | null {
    return this.#pool;
  }

  poolStats(): PoolStats | null {
    return this.#pool?.stats() ?? null;
  }

  async prepare(build: Build, sandbox: SandboxSpec): Promise<OnnxPrepared> {
    if (build.manifest.kind !== 'onnx') {
      throw new ProgramRejectedError(
        'ONNX_WRONG_KIND',
        'kind',
        `build ${build.id} is a '${build.manifest.kind}' build, not 'onnx'`,
      );
    }
    const model = artifact(build, ONNX_ARTIFACT);
    const digest = modelDigest(build);
    checkFlags(build, sandbox);
    const options = sessionOptionsFromRecord(build.manifest.toolchain);
    const key = `${digest}:${sha256Hex(JSON.stringify(sessionOptionsRecord(options))).slice(0, 16)}`;
    let session: OrtSession | null = null;
    if (this.path === 'in-thread') {
      let shared = this.#sessions.get(key);
      if (!shared) {
        const created = ort().InferenceSession.create(model, ortSessionOptions(options));
        shared = { session: created, refs: 0 };
        this.#sessions.set(key, shared);
        created.catch(() => this.#sessions.delete(key));
      }
      shared.refs++;
      try {
        session = await shared.session;
      } catch (err) {
        throw new ProgramRejectedError(
          'ONNX_INVALID_MODEL',
          'load',
          `onnxruntime refused the model: ${(err as Error).message}`,
        );
      }
    } else {
      this.#workerRefs.set(key, (this.#workerRefs.get(key) ?? 0) + 1);
    }
    return {
      buildId: build.id,
      backend: 'onnx',
      key,
      digest,
      model,
      options,
      path: this.path,
      session,
      offThread: this.path === 'worker',
    };
  }

  async run(prepared: OnnxPrepared, input: Input, ctx: RunContext): Promise<Output> {
    if (ctx.entry !== ONNX_ENTRY) {
      throw new ProgramRejectedError(
        'ONNX_ENTRY',
        'entry',
        `onnx builds have one entry, '${ONNX_ENTRY}'; got '${ctx.entry}'`,
        ctx.entry,
      );
    }
    if (input.kind !== 'tensors') throw new ValidationError('type', 'input.kind', "'tensors'", input.kind);
    if (prepared.path === 'in-thread') {
      const rt = ort();
      const feeds: Record<string, InstanceType<typeof rt.Tensor>> = {};
      for (const [name, t] of Object.entries(input.tensors)) {
        feeds[name] = new rt.Tensor(t.dtype, t.data as never, t.shape as number[]);
      }
      const t0 = performance.now();
      const result = await prepared.session!.run(feeds);
      const elapsedMs = performance.now() - t0;
      ctx.usage.engineNs = Math.round(elapsedMs * 1e6);
      const limit = ctx.sandbox.limits.timeoutMs;
      if (elapsedMs > limit) {
        throw new LimitExceededError(
          'timeoutMs',
          limit,
          Math.ceil(elapsedMs),
          'in-thread inference ran past the timeout (it cannot be interrupted there; the worker path stops it)',
        );
      }
      const tensors: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(result))
        tensors[name] = fromWire(name, t as unknown as WireTensor, true);
      return { kind: 'tensors', tensors };
    }
    const feeds: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(input.tensors))
      feeds[name] = { type: t.dtype, dims: t.shape, data: t.data };
    let result: Awaited<ReturnType<OnnxWorkerPool['run']>>;
    try {
      result = await this.#pool!.run(
        prepared.key,
        prepared.model,
        ortSessionOptions(prepared.options),
        feeds,
        ctx.sandbox.limits.timeoutMs,
      );
    } catch (err) {
      if (err instanceof ThunderpacError) throw err;
      throw new ThunderpacError((err as { code?: string }).code ?? 'ONNX_RUNTIME', (err as Error).message);
    }
    ctx.usage.engineNs = result.ns;
    const tensors: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(result.out)) tensors[name] = fromWire(name, t, false);
    return { kind: 'tensors', tensors };
  }

  async dispose(prepared: OnnxPrepared): Promise<void> {
    if (prepared.path === 'in-thread') {
      const shared = this.#sessions.get(prepared.key);
      if (shared && --shared.refs <= 0) {
        this.#sessions.delete(prepared.key);
        await (await shared.session).release();
      }
      return;
    }
    const refs = (this.#workerRefs.get(prepared.key) ?? 1) - 1;
    if (refs > 0) this.#workerRefs.set(prepared.key, refs);
    else {
      this.#workerRefs.delete(prepared.key);
      this.#pool?.drop(prepared.key);
    }
  }

  /** Stop intake and wait for every accepted inference (graceful shutdown). */
  async drain(): Promise<void> {
    await this.#pool?.drain();
  }

  async close(): Promise<void> {
    await this.#pool?.close();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.allSettled(sessions.map(async (s) => (await s.session).release()));
  }
}

function checkFlags(build: Build, sandbox: SandboxSpec): void {
  const want = new Map(onnxDeterminismFlags(build).map((f) => [f.slice(0, f.indexOf('=')), f]));
  for (const flag of sandbox.determinism.flags) {
    const k = flag.includes('=') ? flag.slice(0, flag.indexOf('=')) : flag;
    if (!k.startsWith('onnx.') && !k.startsWith('ort.')) continue;
    const expected = want.get(k);
    if (expected !== flag) {
      throw new ProgramRejectedError(
        'ONNX_DETERMINISM_FLAGS',
        'determinism',
        `sandbox flag '${flag}' contradicts build ${build.id} (${expected ?? `no ${k}`})`,
        flag,
      );
    }
  }
}

function fromWire(name: string, t: WireTensor, copy: boolean): Tensor {
  if (!isDType(t.type)) {
    throw new ProgramRejectedError(
      'ONNX_UNSUPPORTED_TYPE',
      'io-type',
      `output '${name}' has type ${t.type}`,
      name,
    );
  }
  // In-thread outputs may be views of onnxruntime-owned memory: copy so the receipt's hash and
  // the caller see bytes nobody else writes.
  const data = (copy ? t.data.slice() : t.data) as TensorData;
  return { dtype: t.type, shape: Array.from(t.dims, Number), data };
}
