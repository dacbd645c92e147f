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
import { canonicalDigest, DIGEST_PATTERN } from './canonical.js';
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
import { type FsOptions, Sandbox } from './sandbox.js';
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
}

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
}

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

/** Shared by every receipt without parents (frozen: receipts are read-only records). */
const NO_PARENTS: readonly string[] = Object.freeze([]);

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

interface PreparedEntry {
  readonly promise: Promise<Prepared>;
  ready: Prepared | undefined;
}

function nsSince(t0: number): number {
  return Math.round((performance.now() - t0) * 1e6);
}

export class Executor {
  readonly #backends = new Map<BackendName, Backend>();
  readonly #store: RecordStore | undefined;
  readonly #graceMs: number;
  /** Prepared programs per sandbox spec (by identity: specs are frozen) and build id. */
  /** Prepared programs per (sandbox, build): the pending prepare, and its value once resolved. */
  readonly #prepared = new WeakMap<SandboxSpec, Map<string, PreparedEntry>>();
  readonly #runtimeVersions = new Map<BackendName, Readonly<Record<string, string>>>();
  readonly #storedBuilds = new Set<string>();
  /** Specs whose memory fs tree is in the store (a replay needs the files the guest saw). */
  readonly #storedTrees = new WeakSet<SandboxSpec>();
  readonly #cpuAccounting: boolean | 'unmetered';
  #lastReady: { spec: SandboxSpec; buildId: string; prepared: Prepared } | undefined;
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

  #prepare(backend: Backend, build: Build, spec: SandboxSpec): Promise<Prepared> {
    let perBuild = this.#prepared.get(spec);
    if (!perBuild) {
      perBuild = new Map();
      this.#prepared.set(spec, perBuild);
    }
    let entry = perBuild.get(build.id);
    if (!entry) {
      const created: PreparedEntry = { promise: backend.prepare(build, spec), ready: undefined };
      entry = created;
      perBuild.set(build.id, created);
      created.promise.then(
        // Executions after the first find it resolved and skip an await.
        (prepared) => {
          created.ready = prepared;
        },
        // A failed prepare is not cached: the next execution reports the refusal afresh.
        () => {
          if (perBuild.get(build.id) === created) perBuild.delete(build.id);
        },
      );
    }
    return entry.promise;
  }

  /**
   * The resolved prepared program, if any. The last one found is remembered by identity:
   * executions in a row mostly repeat (sandbox, build), and two map lookups cost more.
   */
  #readyPrepared(spec: SandboxSpec, buildId: string): Prepared | undefined {
    const last = this.#lastReady;
    if (last !== undefined && last.spec === spec && last.buildId === buildId) return last.prepared;
    const prepared = this.#prepared.get(spec)?.get(buildId)?.ready;
    if (prepared !== undefined) this.#lastReady = { spec, buildId, prepared };
    return prepared;
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
    const spec = sandbox.spec;
    const { build, input, entry } = request;
    if (build.manifest.kind !== spec.backend) {
      throw new TPError(
        'BACKEND_MISMATCH',
        `build ${build.id} is a '${build.manifest.kind}' program; sandbox runs '${spec.backend}'`,
      );
    }
    const backend = this.backend(spec.backend);
    const parents = this.#checkParents(request.parents ?? []);
    sandbox.begin();

    const startedAt = isoNow();
    const t0 = performance.now();
    const cpu0 = this.#measuresCpu(backend, spec) ? process.cpuUsage() : undefined;
    const usage: Usage = {};
    const attempt: Attempt = { input: { hash: null, size: 0 }, output: null, outputValue: null, error: null };
    const record = options.record ?? true;
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

      const prepared = this.#readyPrepared(spec, build.id) ?? (await this.#prepare(backend, build, spec));
      const ctx: RunContext = { entry, sandbox: spec, usage };
      let output: Output;
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
        limit + this.#graceMs,
      );
    });
    return Promise.race([backend.run(prepared, input, ctx), backstop]).finally(() => clearTimeout(timer));
  }

  #checkParents(parents: readonly string[]): readonly string[] {
    if (parents.length === 0) return NO_PARENTS;
    return parents.map((id, i) => {
      if (typeof id !== 'string' || !DIGEST_PATTERN.test(id)) {
        throw new ValidationError('type', `parents[${i}]`, 'a receipt id (sha256 hex)', String(id));
      }
      if (this.#store) this.#store.getReceipt(id); // throws NotFoundError for an unknown parent
      return id;
    });
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

    const sandbox = new Sandbox({
      backend: original.backend,
      limits: original.sandbox.limits,
      fs,
      ...(original.sandbox.wasi === undefined ? {} : { wasi: original.sandbox.wasi }),
      allowedImports: original.sandbox.allowedImports,
      determinism: original.determinism,
    });
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

  async dispose(build: Build, spec: SandboxSpec): Promise<void> {
    const perBuild = this.#prepared.get(spec);
    const entry = perBuild?.get(build.id);
    if (!entry) return;
    perBuild!.delete(build.id);
    if (this.#lastReady?.spec === spec && this.#lastReady.buildId === build.id) this.#lastReady = undefined;
    const prepared = await entry.promise.catch(() => undefined);
    if (prepared) await this.backend(spec.backend).dispose(prepared);
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
