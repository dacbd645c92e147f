/**
 * The model registry served by the daemon: every `name/version` under the models directory,
 * loaded (read, checksum-verified, its I/O contract read from onnxruntime) in the background
 * at start and on first use after, and each inference run as one execution through the
 * ExecutionService, so admission, metrics and attribution apply and a receipt seals it.
 *
 * The KServe v2 routes and the event bus both come through here: an inference is the same
 * execution whichever way it arrives.
 */

import type { FastifyBaseLogger } from 'fastify';
import { ONNX_ENTRY, onnxDeterminismFlags } from '../backends/onnx/backend.js';
import { type ModelEntry, ModelRegistry } from '../backends/onnx/registry.js';
import type { Build } from '../runtime/build.js';
import { asThunderpacError, NotFoundError, ThunderpacError } from '../runtime/errors.js';
import type { SandboxOptions } from '../runtime/sandbox.js';
import type { TensorsSchema } from '../runtime/types.js';
import type { Attribution, ExecutionService, ModelMetadata, ModelService, ModelStatus } from './context.js';
import { parseInferRequest, responseTensor, type TensorSpec, tensorSpecs } from './kserve-tensors.js';

/** The platform name KServe / Triton use for ONNX Runtime models. */
export const ONNX_PLATFORM = 'onnxruntime_onnx';

/** No model (or no such version of it) is served: HTTP 404. */
export class ModelNotFoundError extends NotFoundError {
  readonly statusCode = 404;
}

/**
 * A served model that failed to load (checksum mismatch, onnxruntime refused it): the
 * daemon's problem, not the client's, so HTTP 503.
 */
export class ModelUnavailableError extends ThunderpacError {
  readonly statusCode = 503;
  constructor(model: string, reason: string) {
    super('MODEL_UNAVAILABLE', `model ${model} is not ready: ${reason}`);
  }
}

/** A failed load is tried again on use, but not more often than this. */
const RETRY_LOAD_MS = 5_000;
/** An unknown name re-reads the models directory (new models appear), at most this often. */
const RELIST_MS = 1_000;

interface Loaded {
  readonly build: Build;
  readonly digest: string;
  /** One options object per model: the execution service pools sandboxes by it. */
  readonly sandbox: SandboxOptions;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

class ServedModel {
  readonly name: string;
  readonly version: string;
  readonly label: string;
  loaded: Loaded | null = null;
  error: string | null = null;
  #loading: Promise<Loaded> | null = null;
  #failedAt = 0;

  constructor(entry: ModelEntry) {
    this.name = entry.name;
    this.version = entry.version;
    this.label = `${entry.name}@${entry.version}`;
  }

  get state(): ModelStatus['state'] {
    return this.loaded ? 'ready' : this.#loading ? 'loading' : this.error ? 'failed' : 'unloaded';
  }

  /** The loaded model; loads it once (again after a failure, no sooner than RETRY_LOAD_MS). */
  load(registry: ModelRegistry): Promise<Loaded> {
    if (this.loaded) return Promise.resolve(this.loaded);
    if (this.#loading) return this.#loading;
    if (this.error && Date.now() - this.#failedAt < RETRY_LOAD_MS) {
      return Promise.reject(new ModelUnavailableError(this.label, this.error));
    }
    const loading = this.#read(registry);
    this.#loading = loading;
    // Cleared when settled (not in #read's finally: a synchronous throw there would run
    // before this assignment and leave a settled promise behind).
    const clear = () => {
      if (this.#loading === loading) this.#loading = null;
    };
    loading.then(clear, clear);
    return loading;
  }

  async #read(registry: ModelRegistry): Promise<Loaded> {
    try {
      const model = registry.get(this.label);
      const build = await registry.buildOf(model);
      const loaded: Loaded = {
        build,
        digest: model.digest,
        sandbox: { backend: 'onnx', determinism: { flags: onnxDeterminismFlags(build) } },
        inputs: tensorSpecs(build.manifest.inputSchema as TensorsSchema),
        outputs: tensorSpecs(build.manifest.outputSchema as TensorsSchema),
      };
      this.loaded = loaded;
      this.error = null;
      return loaded;
    } catch (err) {
      this.error = asThunderpacError(err).message;
      this.#failedAt = Date.now();
      throw new ModelUnavailableError(this.label, this.error);
    }
  }

  status(): ModelStatus {
    return {
      name: this.name,
      version: this.version,
      platform: ONNX_PLATFORM,
      state: this.state,
      ready: this.loaded !== null,
      sha256: this.loaded?.digest ?? null,
      ...(this.error !== null && { error: this.error }),
    };
  }
}

export interface DaemonModelsOptions {
  /** The model directory (`--models-dir`; the shipped models/ by default). */
  readonly dir: string;
  readonly executions: ExecutionService;
  readonly log?: FastifyBaseLogger;
}

export class DaemonModels implements ModelService {
  readonly #registry: ModelRegistry;
  readonly #executions: ExecutionService;
  readonly #log: FastifyBaseLogger | undefined;
  /** name → version → model, versions in ascending order (the last is the default). */
  #models = new Map<string, Map<string, ServedModel>>();
  #listedAt = 0;

  constructor(options: DaemonModelsOptions) {
    this.#log = options.log;
    this.#registry = new ModelRegistry({
      dir: options.dir,
      logger: (m) => this.#log?.warn({ models: options.dir }, m),
    });
    this.#executions = options.executions;
    this.#relist();
    void this.warm();
  }

  /** Start loading every model now, so the first inference does not pay for it. */
  warm(): Promise<void> {
    const all = [...this.#models.values()].flatMap((v) => [...v.values()]);
    return Promise.allSettled(
      all.map((m) =>
        m.load(this.#registry).then(
          () => this.#log?.info({ model: m.label }, 'model ready'),
          (err: Error) => this.#log?.warn({ model: m.label, err: err.message }, 'model failed to load'),
        ),
      ),
    ).then(() => {});
  }

  /** Re-read the directory: new models are served, removed ones are no longer. */
  #relist(): void {
    const next = new Map<string, Map<string, ServedModel>>();
    for (const entry of this.#registry.list()) {
      let versions = next.get(entry.name);
      if (!versions) {
        versions = new Map();
        next.set(entry.name, versions);
      }
      versions.set(entry.version, this.#models.get(entry.name)?.get(entry.version) ?? new ServedModel(entry));
    }
    this.#models = next;
    this.#listedAt = Date.now();
  }

  #find(name: string, version: string | undefined): ServedModel {
    const pick = () => {
      const versions = this.#models.get(name);
      if (!versions) return undefined;
      if (version !== undefined) return versions.get(version);
      let latest: ServedModel | undefined;
      for (const m of versions.values()) latest = m; // ascending: the last is the latest
      return latest;
    };
    let model = pick();
    if (!model && Date.now() - this.#listedAt >= RELIST_MS) {
      this.#relist();
      model = pick();
    }
    if (!model) {
      const what = version === undefined ? `'${name}'` : `'${name}' version '${version}'`;
      throw new ModelNotFoundError('model', what);
    }
    return model;
  }

  list(): ModelStatus[] {
    if (Date.now() - this.#listedAt >= RELIST_MS) this.#relist();
    return [...this.#models.values()].flatMap((v) => [...v.values()].map((m) => m.status()));
  }

  /** Ready when every served model is loaded. */
  get allReady(): boolean {
    for (const versions of this.#models.values())
      for (const m of versions.values()) if (!m.loaded) return false;
    return true;
  }

  async status(name: string, version: string | undefined): Promise<ModelStatus> {
    const model = this.#find(name, version);
    await model.load(this.#registry).catch(() => {});
    return model.status();
  }

  async metadata(name: string, version: string | undefined): Promise<ModelMetadata> {
    const model = this.#find(name, version);
    const loaded = await model.load(this.#registry);
    const meta = (s: TensorSpec) => ({ name: s.name, datatype: s.datatype, shape: [...s.shape] });
    return {
      name: model.name,
      versions: [...(this.#models.get(model.name)?.keys() ?? [model.version])],
      platform: ONNX_PLATFORM,
      inputs: loaded.inputs.map(meta),
      outputs: loaded.outputs.map(meta),
    };
  }

  async infer(
    name: string,
    version: string | undefined,
    request: unknown,
    who: Attribution,
  ): ReturnType<ModelService['infer']> {
    const model = this.#find(name, version);
    const loaded = model.loaded ?? (await model.load(this.#registry));
    const parsed = parseInferRequest(request, loaded.inputs, loaded.outputs, model.label);
    const result = await this.#executions.run(
      loaded.sandbox,
      { build: loaded.build, input: { kind: 'tensors', tensors: parsed.tensors }, entry: ONNX_ENTRY },
      who,
    );
    const receiptId = result.receipt.id;
    const head = {
      model_name: model.name,
      model_version: model.version,
      id: parsed.id ?? who.requestId,
      parameters: { receipt_id: receiptId },
    };
    if (result.status !== 'completed' || result.output?.kind !== 'tensors') {
      const error = result.error;
      return {
        status: 'failed',
        receiptId,
        response: {
          ...head,
          error: `inference failed (receipt ${receiptId}): ${error?.message ?? 'no tensors came back'}`,
          code: error?.code ?? 'INTERNAL',
        },
      };
    }
    const tensors = result.output.tensors;
    const names = parsed.outputs ?? loaded.outputs.map((s) => s.name);
    const outputs = names.flatMap((n) => {
      const t = tensors[n];
      return t ? [responseTensor(n, t)] : [];
    });
    return { status: 'completed', receiptId, response: { ...head, outputs } };
  }
}
