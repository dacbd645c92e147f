/**
 * The nouns every backend and the orchestration share. Backends import from here (and from
 * the other modules of src/runtime/); nothing in src/runtime/ imports a backend.
 */

import type { Build } from './build.js';

export type BackendName = 'wasm' | 'onnx' | 'ebpf' | 'p4';

// ---------------------------------------------------------------- data

export type DType =
  | 'float32'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** What an execution consumes. `bytes` for guest-ABI programs, `packet` for data planes. */
export type Input =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'packet'; readonly bytes: Uint8Array; readonly ingressPort?: number }
  | { readonly kind: 'tensors'; readonly tensors: Readonly<Record<string, Tensor>> };

/** One packet leaving a data-plane program. */
export interface EgressPacket {
  readonly port: number;
  readonly bytes: Uint8Array;
}

/**
 * A message a data-plane program sent to its control plane for this packet (v1model `digest`:
 * a learn list). Values are lowercase hex strings ('0x…') because fields can be wider than 64
 * bits; keys are `header.field` names.
 */
export interface PacketDigest {
  readonly receiver: number;
  readonly list: string;
  readonly values: Readonly<Record<string, string>>;
}

/** What an execution produces. Everything here is hashed into the receipt, so it must be deterministic. */
export type Output =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | {
      readonly kind: 'packet';
      /** Program verdict, e.g. XDP_PASS / XDP_DROP, or 'forward' / 'drop' for P4. */
      readonly verdict: string;
      /** The raw numeric return value where the target has one (XDP action code). */
      readonly retval: number;
      readonly packets: readonly EgressPacket[];
      /** Digests the packet produced, in order; absent when none (and for targets without them). */
      readonly digests?: readonly PacketDigest[];
    }
  | { readonly kind: 'tensors'; readonly tensors: Readonly<Record<string, Tensor>> };

// ---------------------------------------------------------------- schemas

export interface BytesSchema {
  readonly kind: 'bytes';
  readonly minBytes?: number;
  readonly maxBytes?: number;
}

export interface PacketSchema {
  readonly kind: 'packet';
  readonly minBytes?: number;
  readonly maxBytes?: number;
  /** Highest ingress port number accepted (inclusive); absent means any u32. */
  readonly maxPort?: number;
}

/** A dimension is a fixed size or a name; one name binds to one size across an input. */
export type Dim = number | string;

export interface TensorSchema {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
  readonly min?: number;
  readonly max?: number;
  readonly maxBytes?: number;
}

export interface TensorsSchema {
  readonly kind: 'tensors';
  readonly tensors: Readonly<Record<string, TensorSchema>>;
  /** Refuse tensors the schema does not name (default true: deny what is not declared). */
  readonly closed?: boolean;
}

/** Accepts anything of its kind; used where a program has no declared contract. */
export interface AnySchema {
  readonly kind: 'any';
}

export type Schema = BytesSchema | PacketSchema | TensorsSchema | AnySchema;

// ---------------------------------------------------------------- sandbox

export interface SandboxLimits {
  /** Wall-clock limit of one execution; the guest is killed when it passes. */
  readonly timeoutMs: number;
  /** Cap on guest linear memory (WASM) or working set where the backend can enforce it. */
  readonly memoryMb: number;
  /** Instruction budget for metered guests; undefined = unmetered (then timeoutMs is the backstop). */
  readonly fuel?: number;
  /** Deepest guest call nesting (WASM: an injected counter); undefined = the backend's default. */
  readonly callDepth?: number;
  readonly maxInputBytes: number;
  readonly maxOutputBytes: number;
  readonly cpuCores?: number;
}

/**
 * The filesystem a guest sees. `memory` names its tree by digest (fs-tree.ts): the receipt pins
 * exactly what the guest saw, and the tree's bytes travel beside the policy (`SandboxSpec.fsTree`,
 * the store), not inside every receipt. `writable`: each execution gets a private copy of the
 * tree, discarded after it; `maxBytes` bounds that copy.
 */
export type FsPolicy =
  | { readonly kind: 'none' }
  | { readonly kind: 'read-only'; readonly dir: string }
  | {
      readonly kind: 'memory';
      readonly digest: string;
      readonly files: number;
      readonly bytes: number;
      readonly writable: boolean;
      readonly maxBytes: number;
    };

/** The files of a memory filesystem: relative path -> contents, keys sorted; directories implied. */
export type FsTree = Readonly<Record<string, Uint8Array>>;

/** The process a WASI guest sees: argv (default: the build's name alone) and its environment. */
export interface WasiProcess {
  readonly args?: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Settings that change results; recorded in every receipt so a replay uses the same ones. */
export interface Determinism {
  readonly seed: number;
  readonly flags: readonly string[];
}

export interface SandboxSpec {
  readonly backend: BackendName;
  readonly limits: SandboxLimits;
  readonly network: false;
  readonly fs: FsPolicy;
  /** The tree of a `memory` fs (its digest is fs.digest); absent for the other kinds. */
  readonly fsTree?: FsTree;
  /** argv and environment of WASI guests; absent = [build name] and an empty environment. */
  readonly wasi?: WasiProcess;
  /** Import allow-list as "module.name" (WASM host functions); empty = deny every import. */
  readonly allowedImports: readonly string[];
  readonly determinism: Determinism;
}

// ---------------------------------------------------------------- backend

/** Resource use the backend observed; the executor adds wall and cpu time itself. */
export interface Usage {
  fuelUsed?: number;
  peakMemoryBytes?: number;
  /** Time measured inside the kernel or engine itself (e.g. BPF_PROG_TEST_RUN duration). */
  engineNs?: number;
  /** What a WASI command wrote to stderr (bounded); not part of the receipt. */
  stderr?: Uint8Array;
}

export interface RunContext {
  /** Entry point: WASM export, BPF program or P4 pipeline name. */
  readonly entry: string;
  readonly sandbox: SandboxSpec;
  /** Filled in by the backend while it runs; read by the executor for the receipt. */
  readonly usage: Usage;
}

/** Whatever a backend keeps per (build, sandbox) between executions: compiled module, loaded object... */
export interface Prepared {
  readonly buildId: string;
  readonly backend: BackendName;
  /**
   * True when run() computes on another thread or process (a worker pool): the calling thread
   * is idle meanwhile, so the executor hashes the input there after starting the run instead
   * of handing the hash to the threadpool (which would compete with the worker for cores).
   */
  readonly offThread?: boolean;
}

/**
 * What a prepared program holds until it is disposed, as its backend counts it: the executor's
 * prepared-program cache keeps the sum of these within its budgets (see prepared-cache.ts).
 */
export interface PreparedCost {
  /** Open file descriptors (a loaded BPF object: its programs and maps, and the object's BTF). */
  readonly fds: number;
  /** Memory, estimated: compiled code, instance memory, kernel map memory. */
  readonly bytes: number;
}

export interface Backend<P extends Prepared = Prepared> {
  readonly name: BackendName;
  /**
   * True when `run` always settles within the sandbox's timeout by itself (it stops its guest,
   * or its guest cannot run away: fuel, a verifier-bounded program, synchronous code), so the
   * executor skips its backstop timer. Leave unset when a run may hang.
   */
  readonly enforcesTimeout?: boolean;
  /**
   * True when, under a sandbox with `limits.fuel`, every run counts fuel (`usage.fuelUsed`):
   * the executor then leaves process CPU time out of the receipt by default (fuel is the
   * deterministic cost measure), see ExecutorOptions.cpuAccounting.
   */
  readonly metersFuel?: boolean;
  /** Versions of the engines this backend runs on; they go into every receipt. */
  readonly versions: Readonly<Record<string, string>>;
  /** Compile / load / instantiate; the executor caches the result per build and sandbox. */
  prepare(build: Build, sandbox: SandboxSpec): Promise<P>;
  /** The hot path. Must enforce sandbox.limits (throwing LimitExceededError) and fill ctx.usage. */
  run(prepared: P, input: Input, ctx: RunContext): Promise<Output>;
  /**
   * Optional: the same as `run`, returning the output directly (throwing what `run` would
   * reject with), for a prepared program that runs to completion on the calling thread; the
   * executor then skips a promise round trip. undefined: this program runs elsewhere, use `run`.
   */
  runSync?(prepared: P, input: Input, ctx: RunContext): Output | undefined;
  /** Release what `prepare` acquired; the executor calls it once no execution uses the program. */
  dispose(prepared: P): Promise<void>;
  /** Optional: what a prepared program holds (absent: nothing worth counting but its slot). */
  cost?(prepared: P): PreparedCost;
}
