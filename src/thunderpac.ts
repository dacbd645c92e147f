/**
 * The embedding API: one object that owns the backends, the store and the executor.
 *
 *   const tp = await Thunderpac.open({ store: '/var/lib/thunderpac' });
 *   const sandbox = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 100, memoryMb: 16 } });
 *   const { output, receipt } = await tp.execute(sandbox, { build, input, entry: 'echo' });
 *   const report = await tp.verify(receipt.id);
 *
 * Create a sandbox once and reuse it: prepared programs are cached per sandbox and build.
 */

import { EbpfBackend } from './backends/ebpf/backend.js';
import { OnnxBackend, type OnnxBackendOptions } from './backends/onnx/backend.js';
import { P4Backend } from './backends/p4/backend.js';
import { WasmBackend, type WasmBackendOptions } from './backends/wasm/backend.js';
import {
  type ExecuteRequest,
  type ExecutionResult,
  Executor,
  type ExecutorOptions,
  type VerifyReport,
} from './runtime/executor.js';
import { type DagResult, type DagSpec, type DagVerifyReport, runDag, verifyDag } from './runtime/dag.js';
import { Sandbox, type SandboxOptions } from './runtime/sandbox.js';
import { ThunderpacError as TPError } from './runtime/errors.js';
import type { Backend } from './runtime/types.js';
import { dagStoreOf } from './store/provenance/provenance.js';
import { Store, type StoreOptions } from './store/store.js';

export interface ThunderpacOptions {
  /** Store directory; `false` keeps nothing (receipts are sealed but not logged). */
  readonly store: string | false;
  readonly storeOptions?: StoreOptions;
  readonly wasm?: WasmBackendOptions;
  readonly onnx?: OnnxBackendOptions;
  /**
   * Process CPU time in receipts (`cpuUs`): see ExecutorOptions.cpuAccounting. Two getrusage
   * calls cost ~4–7 µs per execution on a VM with slow syscalls: latency-critical embedders
   * set false (receipts then carry `cpuUs: null`; `durationNs` and the backend's `engineNs`
   * remain).
   */
  readonly cpuAccounting?: ExecutorOptions['cpuAccounting'];
  /**
   * Bounds of the prepared-program cache: `{ maxPrograms, maxFds, maxBytes }` (defaults 256,
   * 256, 1 GiB), least recently used out first; see ExecutorOptions.preparedCache.
   */
  readonly preparedCache?: ExecutorOptions['preparedCache'];
}

export class Thunderpac {
  readonly executor: Executor;
  readonly store: Store | null;
  readonly #closers: (() => Promise<void> | void)[] = [];

  private constructor(options: ThunderpacOptions) {
    this.store = options.store === false ? null : new Store(options.store, options.storeOptions);
    const wasm = new WasmBackend(options.wasm);
    const ebpf = new EbpfBackend();
    // onnxruntime itself loads on the first onnx build or execution, not here.
    const onnx = new OnnxBackend(options.onnx);
    this.#closers.push(
      () => wasm.close(),
      () => ebpf.close(),
      () => onnx.close(),
    );
    const backends: Backend[] = [
      wasm as Backend,
      ebpf as Backend,
      onnx as Backend,
      new P4Backend() as Backend,
    ];
    this.executor = new Executor({
      backends,
      ...(this.store && { store: this.store }),
      ...(options.cpuAccounting !== undefined && { cpuAccounting: options.cpuAccounting }),
      ...(options.preparedCache !== undefined && { preparedCache: options.preparedCache }),
    });
  }

  static async open(options: ThunderpacOptions): Promise<Thunderpac> {
    return new Thunderpac(options);
  }

  sandbox(options: SandboxOptions): Sandbox {
    return new Sandbox(options);
  }

  /** Execute and return the sandbox to idle, whatever the outcome. */
  async execute(sandbox: Sandbox, request: ExecuteRequest): Promise<ExecutionResult> {
    try {
      return await this.executor.execute(sandbox, request);
    } finally {
      if (sandbox.state === 'completed' || sandbox.state === 'failed') sandbox.reset();
    }
  }

  verify(receiptId: string): Promise<VerifyReport> {
    return this.executor.verify(receiptId);
  }

  /** Run a DAG of executions, each step sealed with its receipt and parents (runtime/dag.ts). */
  runDag(spec: DagSpec): Promise<DagResult> {
    return runDag(this.executor, dagStoreOf(this.#needStore()), spec);
  }

  /** Replay the DAG a receipt ran in, step by step, up to that receipt's step. */
  verifyDag(receiptId: string): Promise<DagVerifyReport> {
    return verifyDag(this.executor, dagStoreOf(this.#needStore()), receiptId);
  }

  #needStore(): Store {
    if (!this.store) throw new TPError('NO_STORE', 'DAG runs need a store (Thunderpac.open({ store: DIR }))');
    return this.store;
  }

  async close(): Promise<void> {
    await this.executor.close();
    for (const close of this.#closers.splice(0)) await close();
    this.store?.close();
  }
}
