/**
 * Receipt: the sealed record of one execution.
 *
 * `id = sha256(canonical receipt body)`: any change to any field (an output hash, a status,
 * a duration) changes the id, so a receipt that does not hash to its id has been tampered with.
 * Fields are split in two:
 *   - what a replay must reproduce exactly (build, entry, input, output, status, error code,
 *     fuel, determinism settings): compared by `verify`;
 *   - what describes this particular run (start time, durations, cpu, memory, runtime versions,
 *     and who asked for it: `actor` and `requestId`): sealed into the id but expected to differ
 *     on replay.
 *
 * `actor` and `requestId` (issue #11: "who ran this" is part of the sealed record) are set when
 * the caller attributes the execution (the daemon does: the actor's id and the HTTP request or
 * bus message id); library executions leave them out, and then the body's encoding is exactly
 * what it was before the fields existed. They describe the run, not its result: an auditor who
 * replays a receipt is not the actor who ran it, and `verify` does not compare them (a replay
 * carries no attribution of its own).
 */

import { CanonicalWriter, canonicalDigest, DIGEST_PATTERN, sha256Hex } from './canonical.js';
import { IntegrityError, type ReceiptError } from './errors.js';
import type { BackendName, Determinism, FsPolicy, SandboxLimits, WasiProcess } from './types.js';

export interface PayloadRef {
  /** null when the payload was refused before it was hashed (oversized, malformed). */
  readonly hash: string | null;
  readonly size: number;
}

export interface ReceiptResources {
  /**
   * Process CPU time (user + system) spent during the execution, µs; null when it was not
   * measured: by default for fuel-metered executions, whose cost is `fuelUsed`, and for every
   * execution under `cpuAccounting: false` (measuring costs two getrusage syscalls).
   */
  readonly cpuUs: number | null;
  /** Peak guest memory where the backend knows it (WASM linear memory), bytes. */
  readonly peakMemoryBytes: number | null;
  readonly fuelUsed: number | null;
  /** Time measured by the engine itself (kernel test-run duration), ns. */
  readonly engineNs: number | null;
}

export type ExecutionStatus = 'completed' | 'failed';

export interface ReceiptBody {
  readonly v: 1;
  readonly buildId: string;
  readonly backend: BackendName;
  readonly entry: string;
  readonly input: PayloadRef;
  readonly output: PayloadRef | null;
  /** Wall-clock start, ISO 8601 UTC with ms. */
  readonly startedAt: string;
  /** Monotonic duration of the whole execution (validate → receipt), ns. */
  readonly durationNs: number;
  readonly resources: ReceiptResources;
  /** The sandbox policy the execution ran under; a replay runs under the same one. */
  readonly sandbox: {
    readonly limits: SandboxLimits;
    readonly fs: FsPolicy;
    /** argv and environment of WASI guests, when the sandbox sets them. */
    readonly wasi?: WasiProcess;
    readonly allowedImports: readonly string[];
    readonly network: false;
  };
  readonly determinism: Determinism;
  readonly runtime: Readonly<Record<string, string>>;
  readonly status: ExecutionStatus;
  readonly error: ReceiptError | null;
  readonly parents: readonly string[];
  /**
   * Who asked for the execution (the daemon's actor id: `uid:1000`, `token:ci-bot`); absent
   * for executions the caller did not attribute. Describes the run: not compared on replay.
   */
  readonly actor?: string;
  /** The request (HTTP request id, bus message id) that caused the execution; as `actor`. */
  readonly requestId?: string;
  /**
   * The key whose signed tree heads cover this receipt (`ed25519:<raw public key hex>`, see
   * src/store/signing.ts), when the store that sealed it signs; absent otherwise, so unsigned
   * receipts keep their exact encoding. The signature is the tree head's, with the receipt's
   * inclusion proof (`thunderpac receipt prove`): no per-receipt signature is made.
   */
  readonly signer?: string;
}

export interface Receipt extends ReceiptBody {
  readonly id: string;
}

export function sealReceipt(body: ReceiptBody): Receipt {
  return { id: canonicalDigest(body), ...body };
}

/**
 * `sealReceipt` for the executor's hot path: the body is encoded by the receipt writer into a
 * shared buffer and hashed there, no copy. Same id as `sealReceipt` for a body whose fields are
 * all set as the type says (the executor's are; `sealReceipt` also tolerates `undefined`).
 */
export function sealReceiptInPlace(body: ReceiptBody): Receipt {
  writeReceiptBody(body);
  return withId(sha256Hex(writer.view()), body);
}

/**
 * `{ id, ...body }`, spelled out: one object shape for every receipt (the hot path builds one
 * per execution, and a spread copies through a slower generic path).
 */
function withId(id: string, b: ReceiptBody): Receipt {
  const actor = b.actor;
  const requestId = b.requestId;
  if (actor !== undefined || requestId !== undefined || b.signer !== undefined) {
    return withIdAttributed(id, b, actor, requestId);
  }
  return {
    id,
    v: b.v,
    buildId: b.buildId,
    backend: b.backend,
    entry: b.entry,
    input: b.input,
    output: b.output,
    startedAt: b.startedAt,
    durationNs: b.durationNs,
    resources: b.resources,
    sandbox: b.sandbox,
    determinism: b.determinism,
    runtime: b.runtime,
    status: b.status,
    error: b.error,
    parents: b.parents,
  };
}

/** `withId` of an attributed body: the same fields, then `actor` and `requestId` (each only when set). */
function withIdAttributed(
  id: string,
  b: ReceiptBody,
  actor: string | undefined,
  requestId: string | undefined,
): Receipt {
  const r: { -readonly [K in keyof Receipt]: Receipt[K] } = {
    id,
    v: b.v,
    buildId: b.buildId,
    backend: b.backend,
    entry: b.entry,
    input: b.input,
    output: b.output,
    startedAt: b.startedAt,
    durationNs: b.durationNs,
    resources: b.resources,
    sandbox: b.sandbox,
    determinism: b.determinism,
    runtime: b.runtime,
    status: b.status,
    error: b.error,
    parents: b.parents,
    actor,
    requestId,
    signer: b.signer,
  };
  // An absent field is no key at all, as in the body (the daemon sets both: this is rare).
  if (actor === undefined) delete r.actor;
  if (requestId === undefined) delete r.requestId;
  if (r.signer === undefined) delete r.signer;
  return r;
}

/** A receipt with the canonical bytes of its body: logs store these bytes as they are. */
export interface SealedReceipt {
  readonly receipt: Receipt;
  readonly body: Uint8Array;
}

const writer = new CanonicalWriter();

/** Seal and keep the encoding, so the hot path encodes a receipt exactly once. */
export function sealReceiptEncoded(body: ReceiptBody): SealedReceipt {
  writeReceiptBody(body);
  return { receipt: withId(sha256Hex(writer.view()), body), body: writer.copy() };
}

function canonicalNumber(n: number, field: string): number {
  if (Number.isNaN(n)) throw new TypeError(`receipt ${field}: NaN has no canonical encoding`);
  return n;
}

function writeNumber(n: number | null, field: string): void {
  if (n === null) writer.nil();
  else writer.num(canonicalNumber(n, field));
}

// ---- runs of the encoding that repeat from one receipt to the next, encoded once

const segmentWriter = new CanonicalWriter();

/** Encode a run of keys and values with a writer of its own (the record writer may be mid-record). */
function segment(write: (w: CanonicalWriter) => void): Uint8Array {
  segmentWriter.reset();
  write(segmentWriter);
  return segmentWriter.copy();
}

const keys = (...names: string[]) =>
  segment((w) => {
    for (const n of names) w.str(n);
  });
const refHash = (key: string) =>
  segment((w) => {
    w.str(key);
    w.map(2);
    w.str('hash');
  });
const INPUT = keys('input');
const INPUT_HASH = refHash('input');
const OUTPUT = keys('output');
const OUTPUT_HASH = refHash('output');
const PARENTS = keys('parents');
const ACTOR = keys('actor');
const REQUEST_ID = keys('requestId');
const SIGNER = keys('signer');
const STARTED_AT = keys('startedAt');
/** The head run starts with the map header of an unattributed body: 15 entries (fixmap, one byte). */
const BASE_ENTRIES = 15;
const RESOURCES_CPU = segment((w) => {
  w.str('resources');
  w.map(4);
  w.str('cpuUs');
});
const NO_PARENTS_RESOURCES_CPU = segment((w) => {
  w.str('parents');
  w.array(0);
  w.raw(RESOURCES_CPU);
});
const ENGINE = keys('engineNs');
const FUEL = keys('fuelUsed');
const PEAK = keys('peakMemoryBytes');
const SIZE = keys('size');

/** Bounded string-keyed caches: a long-lived executor sees few builds, entries and statuses. */
const MAX_CACHED = 256;

function cached(cache: Map<string, Uint8Array>, key: string, write: (w: CanonicalWriter) => void) {
  let bytes = cache.get(key);
  if (bytes === undefined) {
    bytes = segment(write);
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, bytes);
  }
  return bytes;
}

/** `{ backend, buildId, determinism, durationNs:` — per determinism settings (frozen) and build. */
const heads = new WeakMap<object, Map<string, { readonly backend: string; readonly bytes: Uint8Array }>>();
function head(b: ReceiptBody): Uint8Array {
  const write = (w: CanonicalWriter) => {
    w.map(BASE_ENTRIES);
    w.str('backend');
    w.str(b.backend);
    w.str('buildId');
    w.str(b.buildId);
    w.str('determinism');
    w.frozen(b.determinism);
    w.str('durationNs');
  };
  if (!Object.isFrozen(b.determinism)) return segment(write);
  let perBuild = heads.get(b.determinism);
  if (perBuild === undefined) {
    perBuild = new Map();
    heads.set(b.determinism, perBuild);
  }
  // Keyed by the build id alone (no key string built per receipt); the backend is checked.
  let run = perBuild.get(b.buildId);
  if (run === undefined || run.backend !== b.backend) {
    run = { backend: b.backend, bytes: segment(write) };
    if (perBuild.size >= MAX_CACHED) perBuild.clear();
    perBuild.set(b.buildId, run);
  }
  return run.bytes;
}

/** `entry: <entry>, error:` — per entry name. */
const entries = new Map<string, Uint8Array>();
function entryRun(entry: string): Uint8Array {
  return cached(entries, entry, (w) => {
    w.str('entry');
    w.str(entry);
    w.str('error');
  });
}

/** `runtime: {...}, sandbox: {...}, startedAt:` — per sandbox policy and versions (both frozen). */
const tails = new WeakMap<object, WeakMap<object, Uint8Array>>();
function tail(b: ReceiptBody): Uint8Array {
  const write = (w: CanonicalWriter) => {
    w.str('runtime');
    w.frozen(b.runtime);
    w.str('sandbox');
    w.frozen(b.sandbox);
    w.str('startedAt');
  };
  if (!Object.isFrozen(b.sandbox) || !Object.isFrozen(b.runtime)) return segment(write);
  let perRuntime = tails.get(b.sandbox);
  if (perRuntime === undefined) {
    perRuntime = new WeakMap();
    tails.set(b.sandbox, perRuntime);
  }
  let bytes = perRuntime.get(b.runtime);
  if (bytes === undefined) {
    bytes = segment(write);
    perRuntime.set(b.runtime, bytes);
  }
  return bytes;
}

/** `status: <status>, v: <v> }` (v is 1: the type says so; anything else is encoded afresh). */
const ends = new Map<string, Uint8Array>();
function end(b: ReceiptBody): Uint8Array {
  const write = (w: CanonicalWriter) => {
    w.str('status');
    w.str(b.status);
    w.str('v');
    w.num(b.v);
  };
  return b.v === 1 ? cached(ends, b.status, write) : segment(write);
}

/** `key: { hash, size }` or `key: null`; `keyHash` is the run from the key through 'hash'. */
function writeRef(key: Uint8Array, keyHash: Uint8Array, ref: PayloadRef | null): void {
  if (ref === null) {
    writer.raw(key);
    writer.nil();
    return;
  }
  writer.raw(keyHash);
  if (ref.hash === null) writer.nil();
  else writer.str(ref.hash);
  writer.raw(SIZE);
  writer.num(canonicalNumber(ref.size, 'size'));
}

/**
 * The canonical encoding of a receipt body, written in sorted-key order by construction instead
 * of by a generic walk. The runs that repeat between receipts (keys, the build, the entry, the
 * frozen per-sandbox parts: policy, determinism, versions) are encoded once and copied in; only
 * hashes, sizes, times and resource figures are written per receipt. Byte-identical to
 * `encodeCanonical(body)` — a property test holds it to that.
 */
/**
 * The constant runs of the last receipt's shape. Consecutive receipts almost always share
 * build, entry and sandbox, and comparing six fields is cheaper than the cache lookups.
 */
interface Runs {
  readonly backend: string;
  readonly buildId: string;
  readonly entry: string;
  readonly determinism: object;
  readonly runtime: object;
  readonly sandbox: object;
  readonly head: Uint8Array;
  /** `head` without its map header, for bodies with more entries (attributed ones). */
  readonly headKeys: Uint8Array;
  readonly entryRun: Uint8Array;
  readonly tail: Uint8Array;
}

let last: Runs = {
  backend: '',
  buildId: '',
  entry: '',
  determinism: {},
  runtime: {},
  sandbox: {},
  head: new Uint8Array(0),
  headKeys: new Uint8Array(0),
  entryRun: new Uint8Array(0),
  tail: new Uint8Array(0),
};

function runsOf(b: ReceiptBody): Runs {
  const l = last;
  if (
    l.sandbox === b.sandbox &&
    l.runtime === b.runtime &&
    l.determinism === b.determinism &&
    l.buildId === b.buildId &&
    l.entry === b.entry &&
    l.backend === b.backend
  ) {
    return l;
  }
  const headRun = head(b);
  const runs: Runs = {
    backend: b.backend,
    buildId: b.buildId,
    entry: b.entry,
    determinism: b.determinism,
    runtime: b.runtime,
    sandbox: b.sandbox,
    head: headRun,
    headKeys: headRun.subarray(1),
    entryRun: entryRun(b.entry),
    tail: tail(b),
  };
  // Only frozen parts can be remembered by identity: others may change under the same object.
  if (Object.isFrozen(b.sandbox) && Object.isFrozen(b.runtime) && Object.isFrozen(b.determinism)) last = runs;
  return runs;
}

function writeReceiptBody(b: ReceiptBody): void {
  const r = b.resources;
  const runs = runsOf(b);
  const actor = b.actor;
  const requestId = b.requestId;
  const signer = b.signer;
  writer.reset();
  // Sorted keys: `actor` comes before `backend`, `requestId` between `parents` and `resources`,
  // `signer` between `sandbox` and `startedAt`.
  if (actor === undefined && requestId === undefined && signer === undefined) writer.raw(runs.head);
  else {
    writer.map(
      BASE_ENTRIES +
        (actor === undefined ? 0 : 1) +
        (requestId === undefined ? 0 : 1) +
        (signer === undefined ? 0 : 1),
    );
    if (actor !== undefined) {
      writer.raw(ACTOR);
      writer.str(actor);
    }
    writer.raw(runs.headKeys);
  }
  writer.num(canonicalNumber(b.durationNs, 'durationNs'));
  writer.raw(runs.entryRun);
  if (b.error === null) writer.nil();
  else writer.value(b.error);
  writeRef(INPUT, INPUT_HASH, b.input);
  writeRef(OUTPUT, OUTPUT_HASH, b.output);
  if (b.parents.length === 0 && requestId === undefined) writer.raw(NO_PARENTS_RESOURCES_CPU);
  else {
    writer.raw(PARENTS);
    writer.array(b.parents.length);
    for (const id of b.parents) writer.str(id);
    if (requestId !== undefined) {
      writer.raw(REQUEST_ID);
      writer.str(requestId);
    }
    writer.raw(RESOURCES_CPU);
  }
  writeNumber(r.cpuUs, 'cpuUs');
  writer.raw(ENGINE);
  writeNumber(r.engineNs, 'engineNs');
  writer.raw(FUEL);
  writeNumber(r.fuelUsed, 'fuelUsed');
  writer.raw(PEAK);
  writeNumber(r.peakMemoryBytes, 'peakMemoryBytes');
  if (signer === undefined) writer.raw(runs.tail);
  else {
    // The tail run ends with the `startedAt` key: the signer goes in before it.
    writer.raw(runs.tail.subarray(0, runs.tail.length - STARTED_AT.length));
    writer.raw(SIGNER);
    writer.str(signer);
    writer.raw(STARTED_AT);
  }
  writer.str(b.startedAt);
  writer.raw(end(b));
}

/** The canonical bytes of a receipt body (what its id hashes and the receipt log stores). */
export function encodeReceiptBody(b: ReceiptBody): Uint8Array {
  writeReceiptBody(b);
  return writer.copy();
}

/** Recompute a receipt's id; throws IntegrityError when the receipt was altered. */
export function checkReceiptId(receipt: Receipt): void {
  const { id, ...body } = receipt;
  if (typeof id !== 'string' || !DIGEST_PATTERN.test(id)) {
    throw new IntegrityError(`receipt id is not a sha256 digest: ${String(id)}`);
  }
  const actual = canonicalDigest(body);
  if (actual !== id) throw new IntegrityError(`receipt ${id} does not hash to its id`, id, actual);
}

/**
 * The fields a faithful replay must reproduce bit for bit. Not `actor` or `requestId`: they say
 * who asked for this run, and a replay is asked for by someone else (see the module comment).
 */
export function replayFingerprint(r: ReceiptBody): Record<string, unknown> {
  return {
    buildId: r.buildId,
    backend: r.backend,
    entry: r.entry,
    input: r.input,
    output: r.output,
    status: r.status,
    errorCode: r.error?.code ?? null,
    fuelUsed: r.resources.fuelUsed,
    determinism: r.determinism,
    sandbox: r.sandbox,
  };
}
