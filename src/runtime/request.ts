/**
 * An execute request, read once and defensively before an execution starts.
 *
 * What a caller hands to `execute` is untrusted: a field may be a getter that throws, a Proxy
 * whose traps throw or answer differently on every read, a typed array whose buffer was
 * detached, or simply the wrong type. Every field is read once here and copied into values of
 * our own (time of check = time of use); any failure is a ValidationError naming the field.
 *
 *  - `build`, `entry`, `parents`, `attribution`: API misuse; refused before the sandbox leaves idle.
 *  - `input`: copied into a fresh Input whose byte views are genuine (not Proxies, no own
 *    properties shadowing `byteLength`...) and over live buffers; an input that cannot be
 *    read is reported by a failed execution with a receipt, like any other invalid input.
 */

import { types } from 'node:util';
import { type Build, type BuildManifest, buildId, openBuild } from './build.js';
import { DIGEST_PATTERN, decodeCanonical, encodeCanonical } from './canonical.js';
import { IntegrityError, ThunderpacError, ValidationError } from './errors.js';
import { BACKEND_NAMES } from './sandbox.js';
import { assertSchema } from './schema.js';
import type { BackendName, Input, Tensor, TensorData } from './types.js';
import { copyArray, describeUntrusted, guardedRead, isRecord, readField } from './untrusted.js';

/** Bounds on the request's own fields (they go into every receipt). */
export const MAX_ENTRY_CHARS = 1024;
export const MAX_PARENTS = 1024;
export const MAX_INPUT_TENSORS = 1024;
export const MAX_TENSOR_RANK = 64;
/** Bound on each attribution string (actor id, request id): both are sealed into the receipt. */
export const MAX_ATTRIBUTION_CHARS = 256;

/** Who asked for an execution and in answer to what; sealed into its receipt (receipt.ts). */
export interface ExecutionAttribution {
  /** The actor's stable id: `uid:1000`, `token:ci-bot`, `daemon`. */
  readonly actor: string;
  /** The id of the request (HTTP request, bus message) that caused the execution. */
  readonly requestId: string;
}

export interface CheckedRequest {
  readonly build: Build;
  readonly entry: string;
  /** Receipt ids, each a sha256 hex string (whether the store holds them is checked later). */
  readonly parents: readonly string[];
  /** The input as copied, or why it could not be: the execution then fails with a receipt. */
  readonly input: Input | ValidationError;
  /** undefined when the caller did not attribute the execution (library use). */
  readonly attribution: ExecutionAttribution | undefined;
}

// The intrinsic typed-array accessors: they read a view's internal slots, so neither a Proxy
// (they throw on one: no slots) nor an own property shadowing `byteLength` can lie to them.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
function intrinsicGetter(name: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(typedArrayPrototype, name)!.get! as (this: unknown) => unknown;
}
const viewTag = intrinsicGetter(Symbol.toStringTag); // the class name, or undefined: never throws
const viewBuffer = intrinsicGetter('buffer');
const viewByteOffset = intrinsicGetter('byteOffset');
const viewLength = intrinsicGetter('length');

type ViewConstructor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TensorData;
const VIEW_CONSTRUCTORS: Readonly<Record<string, ViewConstructor>> = {
  Float32Array,
  Float64Array,
  Int8Array,
  Uint8Array,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
};

/** A buffer the caller can change while the execution runs (grow, shrink, or write from another thread). */
function isVolatile(buffer: ArrayBufferLike): boolean {
  return types.isSharedArrayBuffer(buffer) || (buffer as { resizable?: boolean }).resizable === true;
}

/**
 * A fresh view of the same class over the same memory as `x`, or a ValidationError: `x` must
 * be a genuine typed array of class `want` (any when undefined) over a buffer that is not
 * detached. Shared or resizable buffers are copied, so the bytes cannot change underneath.
 */
export function snapshotView(x: unknown, path: string, want: string | undefined): TensorData {
  const tag = viewTag.call(x) as string | undefined;
  const Ctor = tag === undefined ? undefined : VIEW_CONSTRUCTORS[tag];
  if (Ctor === undefined || (want !== undefined && tag !== want)) {
    throw new ValidationError('type', path, `a ${want ?? 'typed array'}`, describeView(x, tag));
  }
  const buffer = viewBuffer.call(x) as ArrayBufferLike;
  const offset = viewByteOffset.call(x) as number;
  const length = viewLength.call(x) as number;
  if (length === 0 && isDetached(buffer)) {
    throw new ValidationError(
      'type',
      path,
      `a ${tag} over a live buffer`,
      'a view of a detached ArrayBuffer',
    );
  }
  const view = new Ctor(buffer, offset, length);
  return isVolatile(buffer) ? (view.slice() as TensorData) : view;
}

const U8_PROTOTYPE = Uint8Array.prototype;
const BUFFER_PROTOTYPE = Buffer.prototype;

/**
 * The input's bytes: `x` itself when it is a plain Uint8Array or Buffer that reads as one (the
 * hot path: a brand check, the intrinsic length, and the properties later code uses compared
 * with their intrinsic values — tens of nanoseconds, where a fresh view costs hundreds),
 * else a fresh view made by snapshotView (a subclass, own properties shadowing `byteLength`,
 * `length`, `slice`...). A Proxy, a detached buffer, anything else: a ValidationError.
 */
export function snapshotBytes(x: unknown, path: string): Uint8Array {
  if (viewTag.call(x) !== 'Uint8Array') return snapshotView(x, path, 'Uint8Array') as Uint8Array;
  const view = x as Uint8Array;
  const length = viewLength.call(view) as number;
  if (length === 0) return snapshotView(x, path, 'Uint8Array') as Uint8Array; // detached?
  const proto = Object.getPrototypeOf(view);
  if (proto !== U8_PROTOTYPE && proto !== BUFFER_PROTOTYPE)
    return snapshotView(x, path, 'Uint8Array') as Uint8Array;
  try {
    if (
      view.byteLength === length &&
      view.length === length &&
      view.slice === proto.slice &&
      view.subarray === proto.subarray &&
      view.byteOffset === viewByteOffset.call(view)
    ) {
      return view;
    }
  } catch {
    // an own getter that threw: the fresh view below reads nothing through it
  }
  return snapshotView(x, path, 'Uint8Array') as Uint8Array;
}

function describeView(x: unknown, tag: string | undefined): string {
  return tag === undefined ? describeUntrusted(x) : `a ${tag}`;
}

/** A view over a detached buffer reads as empty; making a new view over the buffer throws. */
function isDetached(buffer: ArrayBufferLike): boolean {
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Builds already checked, by identity, with the copy that executions use. */
const checkedBuilds = new WeakMap<object, Build>();

/**
 * The build, checked once per build object: its manifest copied (a canonical round trip), its
 * id re-derived from the manifest and every artifact's digest verified (openBuild), so an
 * execution never runs bytes other than the ones its receipt's build id names.
 */
let lastBuildGiven: unknown;
let lastBuildChecked: Build | undefined;

export function checkBuild(x: unknown): Build {
  // Executions in a row mostly repeat their build: one compare instead of a WeakMap lookup.
  if (x === lastBuildGiven && lastBuildChecked !== undefined) return lastBuildChecked;
  if (typeof x === 'object' && x !== null) {
    const known = checkedBuilds.get(x);
    if (known !== undefined) {
      lastBuildGiven = x;
      lastBuildChecked = known;
      return known;
    }
  }
  if (!isRecord(x, 'build')) {
    throw new ValidationError('type', 'build', 'a Build (createBuild, openBuild)', describeUntrusted(x));
  }
  const id = readField(x, 'id', 'build.id');
  if (typeof id !== 'string' || !DIGEST_PATTERN.test(id)) {
    throw new ValidationError('type', 'build.id', 'a build id (sha256 hex)', describeUntrusted(id));
  }
  const given = readField(x, 'manifest', 'build.manifest');
  if (!isRecord(given, 'build.manifest')) {
    throw new ValidationError('type', 'build.manifest', 'a build manifest', describeUntrusted(given));
  }
  const manifest = guardedRead('build.manifest', 'a canonical build manifest', () =>
    decodeCanonical<BuildManifest>(encodeCanonical(given)),
  );
  if (!BACKEND_NAMES.includes(manifest.kind as BackendName)) {
    throw new ValidationError(
      'type',
      'build.manifest.kind',
      `one of [${BACKEND_NAMES.join(', ')}]`,
      describeUntrusted(manifest.kind),
    );
  }
  assertSchema(manifest.inputSchema, 'build.manifest.inputSchema');
  assertSchema(manifest.outputSchema, 'build.manifest.outputSchema');
  if (!isRecord(manifest.artifacts, 'build.manifest.artifacts')) {
    throw new ValidationError(
      'type',
      'build.manifest.artifacts',
      'an object of artifact refs',
      describeUntrusted(manifest.artifacts),
    );
  }
  const artifactsGiven = readField(x, 'artifacts', 'build.artifacts');
  if (!types.isMap(artifactsGiven)) {
    throw new ValidationError(
      'type',
      'build.artifacts',
      'a Map of name -> bytes',
      describeUntrusted(artifactsGiven),
    );
  }
  const artifacts = new Map<string, Uint8Array>();
  // The intrinsic forEach walks the Map's own entries: no iterator the caller could replace.
  Map.prototype.forEach.call(artifactsGiven, (bytes: unknown, name: unknown) => {
    const where = `build.artifacts[${describeUntrusted(name)}]`;
    if (typeof name !== 'string') throw new ValidationError('type', where, 'a name', describeUntrusted(name));
    artifacts.set(name, snapshotView(bytes, where, 'Uint8Array') as Uint8Array);
  });
  if (buildId(manifest) !== id) throw new IntegrityError('build id does not match its manifest', id);
  const build = Object.freeze(
    guardedRead('build.artifacts', 'artifacts matching the manifest', () =>
      openBuild(manifest, artifacts, id),
    ),
  );
  checkedBuilds.set(x, build);
  return build;
}

function checkEntry(x: unknown): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > MAX_ENTRY_CHARS || x.includes('\0')) {
    throw new ValidationError(
      'type',
      'entry',
      `a non-empty string of at most ${MAX_ENTRY_CHARS} characters without NUL`,
      describeUntrusted(x),
    );
  }
  return x;
}

const NO_PARENTS: readonly string[] = Object.freeze([]);

function checkParents(x: unknown): readonly string[] {
  if (x === undefined) return NO_PARENTS;
  const parents = copyArray(x, 'parents', 'an array of receipt ids', MAX_PARENTS);
  if (parents.length === 0) return NO_PARENTS;
  parents.forEach((id, i) => {
    if (typeof id !== 'string' || !DIGEST_PATTERN.test(id)) {
      throw new ValidationError('type', `parents[${i}]`, 'a receipt id (sha256 hex)', describeUntrusted(id));
    }
  });
  return Object.freeze(parents as string[]);
}

/** Printable: no control, format, private-use, unassigned or lone surrogate code points. */
const PRINTABLE = /^[^\p{C}]+$/u;

function checkAttributionField(x: unknown, path: string): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > MAX_ATTRIBUTION_CHARS || !PRINTABLE.test(x)) {
    throw new ValidationError(
      'type',
      path,
      `a non-empty printable string of at most ${MAX_ATTRIBUTION_CHARS} characters`,
      describeUntrusted(x),
    );
  }
  return x;
}

/** `{ actor, requestId }` read once into a frozen copy of our own, or undefined when absent. */
function checkAttribution(x: unknown): ExecutionAttribution | undefined {
  if (x === undefined) return undefined;
  if (!isRecord(x, 'attribution')) {
    throw new ValidationError('type', 'attribution', '{ actor, requestId }', describeUntrusted(x));
  }
  const actor = checkAttributionField(readField(x, 'actor', 'attribution.actor'), 'attribution.actor');
  const requestId = checkAttributionField(
    readField(x, 'requestId', 'attribution.requestId'),
    'attribution.requestId',
  );
  return Object.freeze({ actor, requestId });
}

/** The input's structure copied field by field; its contents are checked against the schema later. */
function snapshotInput(x: unknown): Input {
  // Not an object: nothing to read; the schema check says what is wrong with it.
  if (typeof x !== 'object' || x === null) return x as Input;
  let kind: unknown;
  try {
    kind = (x as { kind?: unknown }).kind;
  } catch {
    kind = readField(x, 'kind', 'input.kind'); // reads again only to name what threw
  }
  if (kind === 'bytes') {
    // The hot path: a named load (an inline cache hit) instead of readField's keyed one.
    let bytes: unknown;
    try {
      bytes = (x as { bytes?: unknown }).bytes;
    } catch {
      bytes = readField(x, 'bytes', 'input.bytes'); // reads again only to name what threw
    }
    return { kind, bytes: snapshotBytes(bytes, 'input.bytes') };
  }
  switch (kind) {
    case 'packet': {
      const bytes = snapshotBytes(readField(x, 'bytes', 'input.bytes'), 'input.bytes');
      const ingressPort = readField(x, 'ingressPort', 'input.ingressPort');
      return (ingressPort === undefined ? { kind, bytes } : { kind, bytes, ingressPort }) as Input;
    }
    case 'tensors':
      return { kind, tensors: snapshotTensors(readField(x, 'tensors', 'input.tensors')) };
    default:
      return { kind } as unknown as Input;
  }
}

function snapshotTensors(x: unknown): Record<string, Tensor> {
  if (!isRecord(x, 'input.tensors')) return x as Record<string, Tensor>; // reported by the schema check
  const names = guardedRead('input.tensors', 'an object of tensors', () => Object.keys(x));
  if (names.length > MAX_INPUT_TENSORS) {
    throw new ValidationError(
      'size',
      'input.tensors',
      `at most ${MAX_INPUT_TENSORS} tensors`,
      String(names.length),
    );
  }
  const tensors: Record<string, Tensor> = {};
  for (const name of names) {
    const path = `input.tensors.${name}`;
    const t = readField(x, name, path);
    if (!isRecord(t, path)) {
      tensors[name] = t as Tensor; // reported by the schema check
      continue;
    }
    const dtype = readField(t, 'dtype', `${path}.dtype`);
    const shape = copyArray(
      readField(t, 'shape', `${path}.shape`),
      `${path}.shape`,
      'an array of sizes',
      MAX_TENSOR_RANK,
    );
    const data = snapshotView(readField(t, 'data', `${path}.data`), `${path}.data`, undefined);
    tensors[name] = { dtype, shape, data } as Tensor;
  }
  return tensors;
}

/**
 * Read an execute request once. Throws a ValidationError (or the build's IntegrityError) for
 * a request that is misuse of the API; an unreadable input comes back as the error instead.
 */
export function readExecuteRequest(request: unknown): CheckedRequest {
  if (!isRecord(request, 'request')) {
    throw new ValidationError(
      'type',
      'request',
      '{ build, input, entry, parents?, attribution? }',
      describeUntrusted(request),
    );
  }
  // Named loads first (inline-cache hits on the hot path); a getter or trap that throws sends
  // every field through readField, which names the one that threw. Either way each value
  // used is the result of one read.
  let fields:
    | { build: unknown; entry: unknown; parents: unknown; input: unknown; attribution: unknown }
    | undefined;
  try {
    const r = request as {
      build?: unknown;
      entry?: unknown;
      parents?: unknown;
      input?: unknown;
      attribution?: unknown;
    };
    fields = {
      build: r.build,
      entry: r.entry,
      parents: r.parents,
      input: r.input,
      attribution: r.attribution,
    };
  } catch {
    fields = undefined;
  }
  const build = checkBuild(fields ? fields.build : readField(request, 'build', 'build'));
  const entry = checkEntry(fields ? fields.entry : readField(request, 'entry', 'entry'));
  const parents = checkParents(fields ? fields.parents : readField(request, 'parents', 'parents'));
  const attribution = checkAttribution(
    fields ? fields.attribution : readField(request, 'attribution', 'attribution'),
  );
  let input: Input | ValidationError;
  try {
    input = snapshotInput(fields ? fields.input : readField(request, 'input', 'input'));
  } catch (err) {
    if (!(err instanceof ValidationError)) {
      throw err instanceof ThunderpacError
        ? err
        : new ValidationError('type', 'input', 'an input', 'unreadable');
    }
    input = err;
  }
  return { build, entry, parents, input, attribution };
}
