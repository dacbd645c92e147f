/**
 * Receipt: the sealed record of one execution.
 *
 * `id = sha256(canonical receipt body)`: any change to any field (an output hash, a status,
 * a duration) changes the id, so a receipt that does not hash to its id has been tampered with.
 * Fields are split in two:
 *   - what a replay must reproduce exactly (build, entry, input, output, status, error code,
 *     fuel, determinism settings): compared by `verify`;
 *   - what describes this particular run (start time, durations, cpu, memory, runtime versions):
 *     sealed into the id but expected to differ on replay.
 */

import {
  type Canonical,
  canonicalDigest,
  canonicalize,
  canonicalizeFrozen,
  DIGEST_PATTERN,
  packCanonical,
  sha256Hex,
} from './canonical.js';
import { IntegrityError, type ReceiptError } from './errors.js';
import type { BackendName, Determinism, FsPolicy, SandboxLimits } from './types.js';

export interface PayloadRef {
  /** null when the payload was refused before it was hashed (oversized, malformed). */
  readonly hash: string | null;
  readonly size: number;
}

export interface ReceiptResources {
  /**
   * Process CPU time (user + system) spent during the execution, µs; null when the executor
   * runs with `cpuAccounting: false` (it costs two getrusage syscalls per execution).
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
    readonly allowedImports: readonly string[];
    readonly network: false;
  };
  readonly determinism: Determinism;
  readonly runtime: Readonly<Record<string, string>>;
  readonly status: ExecutionStatus;
  readonly error: ReceiptError | null;
  readonly parents: readonly string[];
}

export interface Receipt extends ReceiptBody {
  readonly id: string;
}

export function sealReceipt(body: ReceiptBody): Receipt {
  return { id: canonicalDigest(body), ...body };
}

/** A receipt with the canonical bytes of its body: logs store these bytes as they are. */
export interface SealedReceipt {
  readonly receipt: Receipt;
  readonly body: Uint8Array;
}

/** Seal and keep the encoding, so the hot path encodes a receipt exactly once. */
export function sealReceiptEncoded(body: ReceiptBody): SealedReceipt {
  const bytes = encodeReceiptBody(body);
  return { receipt: { id: sha256Hex(bytes), ...body }, body: bytes };
}

function canonicalNumber(n: number | null, field: string): number | null {
  if (n === null) return null;
  if (Number.isNaN(n)) throw new TypeError(`receipt ${field}: NaN has no canonical encoding`);
  return Object.is(n, -0) ? 0 : n;
}

function canonicalRef(ref: PayloadRef | null): Canonical {
  return ref === null ? null : { hash: ref.hash, size: canonicalNumber(ref.size, 'size') };
}

/**
 * The canonical encoding of a receipt body, built in sorted-key order by construction instead of
 * by a generic walk: the per-sandbox parts (policy, determinism, versions) are frozen and their
 * canonical forms memoized. Byte-identical to `encodeCanonical(body)` — a property test holds it
 * to that.
 */
export function encodeReceiptBody(b: ReceiptBody): Uint8Array {
  const r = b.resources;
  return packCanonical({
    backend: b.backend,
    buildId: b.buildId,
    determinism: canonicalizeFrozen(b.determinism),
    durationNs: canonicalNumber(b.durationNs, 'durationNs'),
    entry: b.entry,
    error: b.error === null ? null : canonicalize(b.error),
    input: canonicalRef(b.input),
    output: canonicalRef(b.output),
    parents: b.parents,
    resources: {
      cpuUs: canonicalNumber(r.cpuUs, 'cpuUs'),
      engineNs: canonicalNumber(r.engineNs, 'engineNs'),
      fuelUsed: canonicalNumber(r.fuelUsed, 'fuelUsed'),
      peakMemoryBytes: canonicalNumber(r.peakMemoryBytes, 'peakMemoryBytes'),
    },
    runtime: canonicalizeFrozen(b.runtime),
    sandbox: canonicalizeFrozen(b.sandbox),
    startedAt: b.startedAt,
    status: b.status,
    v: b.v,
  });
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

/** The fields a faithful replay must reproduce bit for bit. */
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
