/**
 * Executor: validate → hash input → prepare (cached per build and sandbox) → run under limits
 * → check output limits → hash output → seal receipt → append.
 *
 * An execution that fails after it started — invalid input, a limit hit, a guest trap, a
 * program refused at prepare — resolves with `status: 'failed'` and a receipt that says why;
 * only misuse of the API itself (a sandbox that is not idle, a backend that is not registered)
 * throws. Replay (`verify`) re-executes from the stored build and input and compares every
 * field a faithful replay must reproduce.
 */

import { performance } from 'node:perf_hooks';
import type { Build } from './build.js';
import { canonicalDigest } from './canonical.js';
import {
  asThunderpacError,
  IntegrityError,
  LimitExceededError,
  type ThunderpacError,
  ThunderpacError as TPError,
  ValidationError,
} from './errors.js';
import { channels } from './events.js';
import { decodeFsTree, encodeFsTree } from './fs-tree.js';
import { PACKAGE_VERSION } from './package-root.js';
import { decodePayload, encodePayload, hashPayload, hashPayloadAsync } from './payload.js';
import {
  checkReceiptId,
  type PayloadRef,
  type Receipt,
  type ReceiptBody,
  replayFingerprint,
  sealReceiptEncoded,
  sealReceiptInPlace,
} from './receipt.js';
import type { RecordStore } from './record-store.js';
import {
  DEFAULT_PREPARED_CACHE_LIMITS,
  PreparedCache,
  type PreparedCacheLimits,
  type PreparedCacheStats,
  type PreparedEntry,
  preparedCacheLimits,
} from './prepared-cache.js';
import { type ExecutionAttribution, readExecuteRequest } from './request.js';
import { type FsOptions, MAX_TIMER_MS, Sandbox } from './sandbox.js';
import { payloadBytes, validateInput, validateOutput } from './schema.js';
import type {
  Backend,
  BackendName,
  Input,
  Output,
  Prepared,
  RunContext,
  SandboxSpec,
  Schema,
  Usage,
} from './types.js';

export interface ExecuteRequest {
  readonly build: Build;
  readonly input: Input;
  /** Entry point (WASM export, BPF program name...). */
  readonly entry: string;
  /** Receipts this execution derives from (provenance). */
  readonly parents?: readonly string[];
  /**
   * Who asked for the execution and in answer to which request: sealed into the receipt as
   * `actor` and `requestId` (each a non-empty printable string of at most 256 characters).
   * Absent: the receipt has neither field, exactly as before they existed.
   */
  readonly attribution?: ExecutionAttribution;
}

export type { ExecutionAttribution };

export interface ExecutionResult {
  readonly status: 'completed' | 'failed';
  readonly output: Output | null;
  readonly error: ThunderpacError | null;
  readonly receipt: Receipt;
}

export interface ExecutorOptions {
  readonly backends: readonly Backend[];
  /** Where builds, payloads and receipts go; without one, receipts are sealed but not kept. */
  readonly store?: RecordStore;
  /**
   * Grace period after `timeoutMs` before the executor itself gives up on a backend that did
   * not enforce its timeout. A backstop only: backends are expected to stop their guest.
   */
  readonly backstopGraceMs?: number;
  /**
   * Measure process CPU time per execution: always (true), never (false), or, by default,
   * 'unmetered': for every execution except fuel-metered ones (the sandbox sets `limits.fuel`
   * and the backend `metersFuel`). Measuring costs two getrusage syscalls — about 2 µs per
   * execution on this VM, more than the rest of a small in-thread execution — and a metered
   * execution's receipt already carries its deterministic cost, `fuelUsed`; process CPU time
   * also counts every other thread of the process, so it is an imprecise per-execution figure
   * anyway. A receipt without the measurement carries `cpuUs: null`.
   */
  readonly cpuAccounting?: boolean | 'unmetered';
  /**
   * Bounds of the prepared-program cache (one entry per sandbox and build; see
   * prepared-cache.ts): at most `maxPrograms` entries, holding at most `maxFds` file
   * descriptors and `maxBytes` of memory together, least recently used out first.
   * Defaults: DEFAULT_PREPARED_CACHE_LIMITS (256 programs, 256 fds, 1 GiB).
   */
  readonly preparedCache?: Partial<PreparedCacheLimits>;
}

export { DEFAULT_PREPARED_CACHE_LIMITS, type PreparedCacheLimits, type PreparedCacheStats };

export interface Mismatch {
  readonly field: string;
  readonly expected: unknown;
  readonly actual: unknown;
}

export interface VerifyReport {
  readonly receiptId: string;
  /** true when the replay reproduced every replayable field of the receipt. */
  readonly match: boolean;
  /** Why the receipt could not be replayed at all (tampered receipt, build or input), if so. */
  readonly problem: string | null;
  readonly mismatches: readonly Mismatch[];
  readonly replay: Receipt | null;
}

/** The receipt fields that read the same for every failure mode. */
interface Attempt {
  input: PayloadRef;
  output: PayloadRef | null;
  outputValue: Output | null;
  error: ThunderpacError | null;
}

/**
 * From this input size on, the input is hashed by WebCrypto on the libuv threadpool, started
 * before the backend runs, so that for a backend that blocks the calling thread (onnxruntime's
 * session.run, in-thread WASM) hashing overlaps with the run on another core. Below it, hashing
 * in place (sha256 ~1.66 GB/s here: 64 KiB ≈ 40 µs) costs less than the copy and the thread hop.
 */
const OFF_THREAD_HASH_MIN_BYTES = 64 * 1024;

let isoMs = Number.NaN;
let isoString = '';

/** `new Date().toISOString()`, formatted once per millisecond (executions are microseconds). */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoString = new Date(ms).toISOString();
  }
  return isoString;
}

/** Errno values of running out of file descriptors (per process, system-wide). */
const FD_EXHAUSTION = new Set(['EMFILE', 'ENFILE']);
const FD_EXHAUSTION_ERRNO = new Set([24, 23]);

/** Whether an error says the process (or system) ran out of file descriptors. */
function isFdExhaustion(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  if (typeof code === 'string' && FD_EXHAUSTION.has(code)) return true;
  return typeof errno === 'number' && FD_EXHAUSTION_ERRNO.has(Math.abs(errno));
}

function nsSince(t0: number): number {
  return Math.round((performance.now() - t0) * 1e6);
}

export class Executor {
  readonly #backends = new Map<BackendName, Backend>();
  readonly #store: RecordStore | undefined;
  readonly #graceMs: number;
  /** Prepared programs per (sandbox spec by identity, build id), bounded (prepared-cache.ts). */
  readonly #cache: PreparedCache;
  readonly #runtimeVersions = new Map<BackendName, Readonly<Record<string, string>>>();
  readonly #storedBuilds = new Set<string>();
  /** Specs whose memory fs tree is in the store (a replay needs the files the guest saw). */
  readonly #storedTrees = new WeakSet<SandboxSpec>();
  readonly #cpuAccounting: boolean | 'unmetered';
  /** The entry the last execution used: executions in a row mostly repeat (sandbox, build). */
  #lastEntry: PreparedEntry | undefined;
  /** The receipt's sandbox part, built and frozen once per spec (its canonical form is memoized). */
  readonly #receiptSandbox = new WeakMap<SandboxSpec, ReceiptBody['sandbox']>();

  constructor(options: ExecutorOptions) {
    for (const b of options.backends) {
      this.#backends.set(b.name, b);
      this.#runtimeVersions.set(
        b.name,
        Object.freeze({ thunderpac: PACKAGE_VERSION, node: process.versions.node, ...b.versions }),
      );
    }
    this.#store = options.store;
    this.#graceMs = options.backstopGraceMs ?? 1_000;
    if (!Number.isSafeInteger(this.#graceMs) || this.#graceMs < 0 || this.#graceMs > MAX_TIMER_MS) {
      throw new ValidationError(
        'range',
        'ExecutorOptions.backstopGraceMs',
        `an integer in [0, ${MAX_TIMER_MS}]`,
        String(options.backstopGraceMs),
      );
    }
    this.#cache = new PreparedCache(
      preparedCacheLimits(options.preparedCache, 'ExecutorOptions.preparedCache'),
    );
    const cpu = options.cpuAccounting ?? 'unmetered';
    if (cpu !== true && cpu !== false && cpu !== 'unmetered') {
      throw new ValidationError(
        'type',
        'ExecutorOptions.cpuAccounting',
        "true | false | 'unmetered'",
        String(cpu),
      );
    }
    this.#cpuAccounting = cpu;
  }

  get store(): RecordStore | undefined {
    return this.#store;
  }

  backend(name: BackendName): Backend {
    const b = this.#backends.get(name);
    if (!b) throw new TPError('BACKEND_UNAVAILABLE', `no '${name}' backend is registered with this executor`);
    return b;
  }

  /** What the prepared-program cache holds now, and its bounds. */
  get preparedCache(): PreparedCacheStats {
    return this.#cache.stats();
  }

  /**
   * The cache entry of (sandbox, build), pinned for the caller's execution (unpin when it
   * ends); a miss starts the prepare. A hit is a compare with the last entry used, or one
   * lookup, plus a recency bump.
   */
  #pinEntry(backend: Backend, build: Build, spec: SandboxSpec): PreparedEntry {
    const last = this.#lastEntry;
    if (last !== undefined && last.spec === spec && last.buildId === build.id && !last.evicted) {
      this.#cache.touch(last);
      this.#cache.pin(last);
      return last;
    }
    let entry = this.#cache.find(spec, build.id);
    if (entry === undefined) {
      entry = this.#cache.add(spec, build.id, backend, () => this.#prepare(backend, build, spec));
    } else {
      this.#cache.touch(entry);
      this.#cache.pin(entry);
    }
    this.#lastEntry = entry;
    return entry;
  }

  /**
   * backend.prepare; when it fails for want of file descriptors, the prepared programs no
   * execution uses are disposed and the prepare tried once more. Still out of fds: a typed
   * FD_EXHAUSTED error (the execution fails with a receipt; the process lives on).
   */
  async #prepare(backend: Backend, build: Build, spec: SandboxSpec): Promise<Prepared> {
    try {
      return await backend.prepare(build, spec);
    } catch (err) {
      if (!isFdExhaustion(err)) throw err;
    }
    await this.#cache.evictIdle();
    try {
      return await backend.prepare(build, spec);
    } catch (err) {
      if (!isFdExhaustion(err)) throw err;
      throw new TPError(
        'FD_EXHAUSTED',
        `out of file descriptors preparing build ${build.id}, even after releasing every idle prepared program: ${asThunderpacError(err).message}`,
        { cause: err },
      );
    }
  }

  /** Whether executions in this sandbox measure process CPU time (see ExecutorOptions). */
  #measuresCpu(backend: Backend, spec: SandboxSpec): boolean {
    const mode = this.#cpuAccounting;
    if (mode !== 'unmetered') return mode;
    return spec.limits.fuel === undefined || backend.metersFuel !== true;
  }

  async execute(
    sandbox: Sandbox,
    request: ExecuteRequest,
    options: { record?: boolean } = {},
  ): Promise<ExecutionResult> {
    // Everything that can refuse the request is checked before the sandbox leaves idle.
    if (!Sandbox.isSandbox(sandbox)) {
      throw new ValidationError('type', 'sandbox', 'a Sandbox (tp.sandbox())', typeof sandbox);
    }
    const spec = sandbox.spec;
    const { build, entry, input: inputRead, parents: parentsRead, attribution } = readExecuteRequest(request);
    if (build.manifest.kind !== spec.backend) {
      throw new TPError(
        'BACKEND_MISMATCH',
        `build ${build.id} is a '${build.manifest.kind}' program; sandbox runs '${spec.backend}'`,
      );
    }
    const backend = this.backend(spec.backend);
    const parents = this.#checkParents(parentsRead);
    const record = options?.record ?? true;
    sandbox.begin();
    try {
      // An input that could not be read is reported like any invalid input: a failed receipt.
      const input = inputRead instanceof ValidationError ? (undefined as unknown as Input) : inputRead;
      const startedAt = isoNow();
      const t0 = performance.now();
      const cpu0 = this.#measuresCpu(backend, spec) ? process.cpuUsage() : undefined;
      const usage: Usage = {};
      const attempt: Attempt = {
        input: { hash: null, size: 0 },
        output: null,
        outputValue: null,
        error: null,
      };
      const keep = this.#store && record ? this.#store : undefined;
      let validated = false;
      let hashing: Promise<string> | undefined;

      try {
        // The build first: every receipt in the log must name a build the store can produce.
        if (this.#store && record && !this.#storedBuilds.has(build.id)) {
          this.#store.putBuild(build);
          this.#storedBuilds.add(build.id);
        }
        if (spec.fsTree && this.#store && record && !this.#storedTrees.has(spec)) {
          if (spec.fs.kind === 'memory') this.#store.putPayload(spec.fs.digest, encodeFsTree(spec.fsTree));
          this.#storedTrees.add(spec);
        }
        if (inputRead instanceof ValidationError) throw inputRead;
        const inputSize = safePayloadBytes(input);
        attempt.input = { hash: null, size: inputSize };
        if (channels.executionStart.hasSubscribers) {
          channels.executionStart.publish({
            buildId: build.id,
            backend: spec.backend,
            entry,
            inputBytes: inputSize,
          });
        }
        check(input, inputSize, 'maxInputBytes', spec, build.manifest.inputSchema);
        validated = true;

        // Pinned while it runs: the cache never disposes a program an execution is using.
        const cached = this.#pinEntry(backend, build, spec);
        let output: Output;
        try {
          const prepared = cached.ready ?? (await cached.promise);
          const ctx: RunContext = { entry, sandbox: spec, usage };
          if (inputSize >= OFF_THREAD_HASH_MIN_BYTES && prepared.offThread !== true) {
            // Large input: start hashing on the threadpool before the backend runs, so the hash
            // overlaps with a run that blocks this thread (onnxruntime, in-thread WASM).
            hashing = hashPayloadAsync(input);
            hashing.catch(() => undefined); // awaited below or in the catch: never unhandled
            output = await this.#runWithBackstop(backend, prepared, input, ctx);
            attempt.input = keepHashed(await hashing, input, inputSize, keep);
          } else {
            // A backend that finishes on this thread answers synchronously: no promise to await.
            const running =
              backend.runSync?.(prepared, input, ctx) ?? this.#runWithBackstop(backend, prepared, input, ctx);
            // Hash the input while a worker-based backend computes: on another core the hash is free.
            // (In-thread backends have already finished; backends copy the input they send away, so
            // it is unchanged either way.) Attaching `await` in the same synchronous step means an
            // early rejection of `running` is never reported as unhandled.
            try {
              attempt.input = keepPayload(input, inputSize, keep);
            } catch (err) {
              if (running instanceof Promise) running.catch(() => undefined);
              throw err;
            }
            output = running instanceof Promise ? await running : running;
          }
        } finally {
          this.#cache.unpin(cached);
        }
        attempt.output = admit(
          output,
          payloadBytes(output),
          'maxOutputBytes',
          spec,
          build.manifest.outputSchema,
          keep,
        );
        attempt.outputValue = output;
      } catch (err) {
        attempt.error = asThunderpacError(err);
        // Out of fds anywhere (the store, a prepare, a backend): release the idle prepared
        // programs so that the executions after this one find room again.
        if (isFdExhaustion(err)) await this.#cache.evictIdle();
        // A valid input that failed later (refused at prepare, trapped) is still hashed and kept,
        // so its receipt can be replayed.
        if (validated && attempt.input.hash === null) {
          try {
            attempt.input =
              hashing === undefined
                ? keepPayload(input, attempt.input.size, keep)
                : keepHashed(await hashing, input, attempt.input.size, keep);
          } catch {
            // the receipt then says the input was not hashed; the error above is what matters
          }
        }
      }

      const cpu = cpu0 ? process.cpuUsage(cpu0) : undefined;
      const failed = attempt.error !== null;
      const body: ReceiptBody = {
        v: 1,
        buildId: build.id,
        backend: spec.backend,
        entry,
        input: attempt.input,
        output: failed ? null : attempt.output,
        startedAt,
        durationNs: nsSince(t0),
        resources: {
          cpuUs: cpu ? cpu.user + cpu.system : null,
          peakMemoryBytes: usage.peakMemoryBytes ?? null,
          fuelUsed: usage.fuelUsed ?? null,
          engineNs: usage.engineNs ?? null,
        },
        sandbox: this.#sandboxPart(spec),
        determinism: spec.determinism,
        runtime: this.#runtimeVersions.get(spec.backend)!,
        status: failed ? 'failed' : 'completed',
        error: attempt.error ? attempt.error.toReceiptError() : null,
        parents,
        // Always in the literal (undefined when unattributed: left out of the encoding and of
        // the receipt object), so that every body has one shape and no copy is made.
        actor: attribution?.actor,
        requestId: attribution?.requestId,
        // The store's tree-head key, when it signs (a store-less execution has none).
        signer: keep?.signer,
      };
      let receipt: Receipt;
      if (keep) {
        const sealed = sealReceiptEncoded(body);
        receipt = sealed.receipt;
        keep.appendReceipt(receipt, sealed.body);
      } else {
        receipt = sealReceiptInPlace(body); // no store: the encoding is hashed in place, never copied
      }

      if (attempt.error) {
        sandbox.fail();
        this.#publishFailure(receipt, attempt.error);
        return { status: 'failed', output: null, error: attempt.error, receipt };
      }
      sandbox.complete();
      if (channels.executionStop.hasSubscribers) channels.executionStop.publish({ receipt });
      return { status: 'completed', output: attempt.outputValue, error: null, receipt };
    } catch (err) {
      // Nothing past begin() may leave the sandbox executing: a throw (a store that cannot
      // append, a bug) fails it, so that a reset makes it usable again.
      if (sandbox.state === 'executing') sandbox.fail();
      throw asThunderpacError(err);
    }
  }

  #sandboxPart(spec: SandboxSpec): ReceiptBody['sandbox'] {
    let part = this.#receiptSandbox.get(spec);
    if (!part) {
      part = Object.freeze({
        limits: spec.limits,
        fs: spec.fs,
        ...(spec.wasi === undefined ? {} : { wasi: spec.wasi }),
        allowedImports: spec.allowedImports,
        network: false,
      });
      this.#receiptSandbox.set(spec, part);
    }
    return part;
  }

  #runWithBackstop(backend: Backend, prepared: Prepared, input: Input, ctx: RunContext): Promise<Output> {
    if (backend.enforcesTimeout) return backend.run(prepared, input, ctx);
    const limit = ctx.sandbox.limits.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LimitExceededError('timeoutMs', limit, undefined, 'backend did not stop its guest in time'),
          ),
        // Node clamps a delay over 2^31 - 1 ms to 1 ms: never let the sum get there.
        Math.min(limit + this.#graceMs, MAX_TIMER_MS),
      );
    });
    return Promise.race([backend.run(prepared, input, ctx), backstop]).finally(() => clearTimeout(timer));
  }

  /** Parents are well-formed receipt ids already (request.ts); with a store, each must be in it. */
  #checkParents(parents: readonly string[]): readonly string[] {
    if (this.#store) for (const id of parents) this.#store.getReceipt(id); // NotFoundError if unknown
    return parents;
  }

  #publishFailure(receipt: Receipt, error: ThunderpacError): void {
    if (error instanceof LimitExceededError && channels.resourceExceeded.hasSubscribers) {
      channels.resourceExceeded.publish({
        buildId: receipt.buildId,
        backend: receipt.backend,
        limit: error.limit,
        allowed: error.allowed,
        observed: error.observed,
      });
    }
    if (error instanceof ValidationError && channels.validationFailed.hasSubscribers) {
      channels.validationFailed.publish({
        buildId: receipt.buildId,
        backend: receipt.backend,
        path: error.path,
        kind: error.kind,
        expected: error.expected,
        found: error.found,
      });
    }
    if (channels.executionException.hasSubscribers) {
      channels.executionException.publish({ receipt, error: error.toReceiptError() });
    }
  }

  /**
   * Replay the execution a receipt records, from the stored build and input, and compare.
   * Tampering with the receipt, the build's artifacts or the stored input is reported as a
   * problem; a replay whose output or status differs is reported field by field.
   */
  async verify(receiptOrId: string | Receipt): Promise<VerifyReport> {
    const store = this.#store;
    if (!store) throw new TPError('NO_STORE', 'verify needs an executor with a store');
    const original = typeof receiptOrId === 'string' ? store.getReceipt(receiptOrId) : receiptOrId;
    const fail = (problem: string): VerifyReport => ({
      receiptId: original.id,
      match: false,
      problem,
      mismatches: [],
      replay: null,
    });
    let build: Build;
    let input: Input;
    let fs: FsOptions;
    try {
      checkReceiptId(original);
      const recorded = original.sandbox.fs;
      // A memory fs is named by digest in the receipt; its files come back from the store.
      fs =
        recorded.kind === 'memory'
          ? { ...recorded, files: decodeFsTree(store.getPayload(recorded.digest), recorded.digest) }
          : recorded;
      build = store.getBuild(original.buildId);
      if (original.input.hash === null) {
        return fail('the input was refused before it was hashed, so there is nothing to replay');
      }
      const decoded = decodePayload(store.getPayload(original.input.hash));
      if ('packets' in decoded || hashPayload(decoded) !== original.input.hash) {
        throw new IntegrityError('stored input does not match the receipt', original.input.hash);
      }
      input = decoded as Input;
    } catch (err) {
      return fail(asThunderpacError(err).message);
    }

    let sandbox: Sandbox;
    try {
      sandbox = new Sandbox({
        backend: original.backend,
        limits: original.sandbox.limits,
        fs,
        ...(original.sandbox.wasi === undefined ? {} : { wasi: original.sandbox.wasi }),
        allowedImports: original.sandbox.allowedImports,
        determinism: original.determinism,
      });
    } catch (err) {
      return fail(`the receipt's sandbox cannot be rebuilt: ${asThunderpacError(err).message}`);
    }
    const replay = await this.execute(sandbox, { build, input, entry: original.entry }, { record: false });
    const expected = replayFingerprint(original);
    const actual = replayFingerprint(replay.receipt);
    const mismatches: Mismatch[] = [];
    for (const field of Object.keys(expected)) {
      if (canonicalDigest(expected[field] ?? null) !== canonicalDigest(actual[field] ?? null))
        mismatches.push({ field, expected: expected[field], actual: actual[field] });
    }
    return {
      receiptId: original.id,
      match: mismatches.length === 0,
      problem: null,
      mismatches,
      replay: replay.receipt,
    };
  }

  /** Dispose the prepared program of (build, sandbox) now, or when the execution using it ends. */
  async dispose(build: Build, spec: SandboxSpec): Promise<void> {
    const entry = this.#cache.find(spec, build.id);
    if (entry === undefined) return;
    if (this.#lastEntry === entry) this.#lastEntry = undefined;
    await this.#cache.evict(entry);
  }

  /** Dispose every prepared program (those in use when their executions end). */
  async close(): Promise<void> {
    this.#lastEntry = undefined;
    await this.#cache.clear();
  }
}

/**
 * Admit an input or output: size against the sandbox limit first (an oversized payload is
 * refused without being read), then the schema, then hash it and keep it in the store.
 */
function admit(
  value: Input | Output,
  size: number,
  limit: 'maxInputBytes' | 'maxOutputBytes',
  spec: SandboxSpec,
  schema: Schema,
  store: RecordStore | undefined,
): PayloadRef {
  check(value, size, limit, spec, schema);
  return keepPayload(value, size, store);
}

/** Size against the sandbox limit first (refused without being read), then the schema. */
function check(
  value: Input | Output,
  size: number,
  limit: 'maxInputBytes' | 'maxOutputBytes',
  spec: SandboxSpec,
  schema: Schema,
): void {
  const which = limit === 'maxInputBytes' ? 'input' : 'output';
  if (size > spec.limits[limit])
    throw new LimitExceededError(limit, spec.limits[limit], size, `${which} too large`);
  if (which === 'input') validateInput(schema, value);
  else validateOutput(schema, value as Output);
}

/** Hash a checked payload and keep it in the store. */
function keepPayload(value: Input | Output, size: number, store: RecordStore | undefined): PayloadRef {
  return keepHashed(hashPayload(value), value, size, store);
}

/** Keep a payload whose hash is known in the store. */
function keepHashed(
  hash: string,
  value: Input | Output,
  size: number,
  store: RecordStore | undefined,
): PayloadRef {
  if (store && !store.hasPayload(hash)) store.putPayload(hash, encodePayload(value));
  return { hash, size };
}

/** Input size for the limit check, without trusting the input's shape yet. */
function safePayloadBytes(input: unknown): number {
  try {
    const n = payloadBytes(input as Input);
    return Number.isSafeInteger(n) ? n : 0;
  } catch {
    return 0; // malformed input: validateInput reports exactly what is wrong with it
  }
}
