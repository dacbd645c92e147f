/**
 * The few top-level fields of a receipt body that the receipt index keeps (actor, backend,
 * buildId, startedAt, status), read straight from its canonical msgpack bytes: the walk skips
 * every other value (sandbox, resources, runtime...) without building it, several times faster
 * than decoding the whole body, which is what building the index over a large log costs.
 *
 * Anything that is not the shape this expects (not a map, a wanted field that is not a string,
 * bytes that end early, the one byte msgpack never uses) falls back to the generic decoder,
 * so a surprising record is read correctly, only slower. A property test holds this to
 * `decodeCanonical` on random receipt bodies.
 */

import { decodeCanonical } from '../runtime/canonical.js';
import { ValidationError } from '../runtime/errors.js';

export interface IndexedFields {
  readonly actor?: unknown;
  readonly backend?: unknown;
  readonly buildId?: unknown;
  readonly startedAt?: unknown;
  readonly status?: unknown;
}

const WANTED = ['actor', 'backend', 'buildId', 'startedAt', 'status'].map(
  (name) => [name, new TextEncoder().encode(name)] as const,
);
/** Buffer's native latin1 decoder, which takes any Uint8Array as `this` (several times faster than TextDecoder for short strings). */
const latin1Slice = (
  Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }
).latin1Slice;

/** The wanted field whose name the bytes [start, end) spell, compared byte by byte (no string made). */
function wantedName(b: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start;
  for (const [name, bytes] of WANTED) {
    if (bytes.length !== n) continue;
    let i = 0;
    while (i < n && b[start + i] === bytes[i]) i++;
    if (i === n) return name;
  }
  return undefined;
}

/** The fields the index keeps, from a receipt body's canonical bytes. */
export function indexedFieldsOf(body: Uint8Array): IndexedFields {
  return scan(body) ?? pick(decodeCanonical<Record<string, unknown>>(body));
}

function pick(b: Record<string, unknown>): IndexedFields {
  return { actor: b.actor, backend: b.backend, buildId: b.buildId, startedAt: b.startedAt, status: b.status };
}

/** Big-endian unsigned integer of `n` bytes at `at` (n ≤ 4). */
function uint(b: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i]!;
  return v;
}

/** A string's [start, end) at `at`, or undefined when the value there is not a string. */
function stringAt(b: Uint8Array, at: number): [number, number] | undefined {
  const t = b[at];
  if (t === undefined) return undefined;
  let start: number;
  let len: number;
  if (t >= 0xa0 && t <= 0xbf) {
    start = at + 1;
    len = t & 0x1f;
  } else if (t === 0xd9) {
    start = at + 2;
    len = uint(b, at + 1, 1);
  } else if (t === 0xda) {
    start = at + 3;
    len = uint(b, at + 1, 2);
  } else if (t === 0xdb) {
    start = at + 5;
    len = uint(b, at + 1, 4);
  } else return undefined;
  return start + len <= b.length ? [start, start + len] : undefined;
}

/** The offset after the value at `at` (skipping nested values), or -1 when the bytes are not msgpack. */
function skip(b: Uint8Array, at: number): number {
  let pos = at;
  let pending = 1;
  while (pending > 0) {
    pending--;
    const t = b[pos];
    if (t === undefined) return -1;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) pos += 1;
    else if (t <= 0x8f) {
      pending += 2 * (t & 0x0f);
      pos += 1;
    } else if (t <= 0x9f) {
      pending += t & 0x0f;
      pos += 1;
    } else if (t <= 0xbf) pos += 1 + (t & 0x1f);
    else {
      switch (t) {
        case 0xc4:
        case 0xd9:
          pos += 2 + uint(b, pos + 1, 1);
          break;
        case 0xc5:
        case 0xda:
          pos += 3 + uint(b, pos + 1, 2);
          break;
        case 0xc6:
        case 0xdb:
          pos += 5 + uint(b, pos + 1, 4);
          break;
        case 0xc7:
          pos += 3 + uint(b, pos + 1, 1);
          break;
        case 0xc8:
          pos += 4 + uint(b, pos + 1, 2);
          break;
        case 0xc9:
          pos += 6 + uint(b, pos + 1, 4);
          break;
        case 0xcc:
        case 0xd0:
          pos += 2;
          break;
        case 0xcd:
        case 0xd1:
          pos += 3;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          pos += 5;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          pos += 9;
          break;
        case 0xd4:
          pos += 3;
          break;
        case 0xd5:
          pos += 4;
          break;
        case 0xd6:
          pos += 6;
          break;
        case 0xd7:
          pos += 10;
          break;
        case 0xd8:
          pos += 18;
          break;
        case 0xdc:
          pending += uint(b, pos + 1, 2);
          pos += 3;
          break;
        case 0xdd:
          pending += uint(b, pos + 1, 4);
          pos += 5;
          break;
        case 0xde:
          pending += 2 * uint(b, pos + 1, 2);
          pos += 3;
          break;
        case 0xdf:
          pending += 2 * uint(b, pos + 1, 4);
          pos += 5;
          break;
        default:
          return -1; // 0xc1: never used
      }
    }
    if (pos > b.length) return -1;
  }
  return pos;
}

/**
 * The wanted fields by walking the top-level map, or undefined to fall back to decoding.
 * Exported for its property test (which checks that the fast path is taken where it should be).
 */
export function scan(b: Uint8Array): IndexedFields | undefined {
  const t = b[0];
  let entries: number;
  let pos: number;
  if (t !== undefined && t >= 0x80 && t <= 0x8f) {
    entries = t & 0x0f;
    pos = 1;
  } else if (t === 0xde) {
    entries = uint(b, 1, 2);
    pos = 3;
  } else return undefined;
  const out: Record<string, string> = {};
  let found = 0;
  for (let i = 0; i < entries && found < WANTED.length; i++) {
    const key = stringAt(b, pos);
    if (key === undefined) return undefined;
    const name = wantedName(b, key[0], key[1]);
    pos = key[1];
    if (name !== undefined) {
      const value = stringAt(b, pos);
      if (value === undefined) return undefined; // not a string: the decoder says what it is
      // Non-ASCII (an actor's name): the decoder's own UTF-8 rules, as it would read it.
      for (let j = value[0]; j < value[1]; j++) if (b[j]! >= 0x80) return undefined;
      out[name] = latin1Slice.call(b, value[0], value[1]); // ASCII: latin1 reads it the same, natively
      found++;
      pos = value[1];
    } else {
      pos = skip(b, pos);
      if (pos < 0) return undefined;
    }
  }
  return out;
}

/** Strings to small integers and back; 0 is reserved for "absent". */
export class Interner {
  readonly #ids = new Map<string, number>();
  readonly #names: string[];

  constructor(names: readonly string[] = ['']) {
    this.#names = [...names];
    for (let i = 1; i < this.#names.length; i++) this.#ids.set(this.#names[i]!, i);
  }

  id(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#names.length;
      this.#names.push(name);
      this.#ids.set(name, id);
    }
    return id;
  }

  /** The id of a name seen before, else -1 (a filter on a name never seen matches nothing). */
  find(name: string): number {
    return this.#ids.get(name) ?? -1;
  }

  get size(): number {
    return this.#names.length;
  }

  get names(): readonly string[] {
    return this.#names;
  }

  /** Approximate bytes held (the strings and the map entries). */
  get bytes(): number {
    let n = 0;
    for (const s of this.#names) n += 2 * s.length + 64;
    return n;
  }
}

const INITIAL_CAPACITY = 1024;

/**
 * The receipt index's columns by ordinal (start time, status, backend, build, actor), growable,
 * with their interned strings: built from receipt bodies, or resumed from a checkpoint's columns
 * (receipt-checkpoint.ts). Shared by the index (receipt-index.ts) and the checkpoint writer
 * (receipt-log.ts), so both intern and read fields the same way.
 */
export class ColumnBuilder {
  count = 0;
  #capacity = 0;
  startedMs: Float64Array<ArrayBufferLike> = new Float64Array(0);
  status: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  backend: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  build: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  actor: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  readonly statuses: Interner;
  readonly backends: Interner;
  readonly builds: Interner;
  readonly actors: Interner;

  constructor(from?: IndexColumnsLike) {
    this.statuses = new Interner(from?.statuses);
    this.backends = new Interner(from?.backends);
    this.builds = new Interner(from?.builds);
    this.actors = new Interner(from?.actors);
    if (from) {
      // Taken as they are (no copy: a million rows are 20 MB); the first add grows them by copying.
      this.startedMs = from.startedMs;
      this.status = from.status;
      this.backend = from.backend;
      this.build = from.build;
      this.actor = from.actor;
      this.count = from.startedMs.length;
      this.#capacity = this.count;
    }
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Index one receipt body (its canonical bytes). */
  add(body: Uint8Array): void {
    const f = indexedFieldsOf(body);
    const i = this.count;
    if (i === this.#capacity) this.#grow(Math.max(INITIAL_CAPACITY, this.#capacity * 2));
    this.startedMs[i] = typeof f.startedAt === 'string' ? Date.parse(f.startedAt) : Number.NaN;
    this.status[i] = this.statuses.id(String(f.status));
    this.backend[i] = this.backends.id(String(f.backend));
    this.build[i] = this.builds.id(String(f.buildId));
    this.actor[i] = typeof f.actor === 'string' ? this.actors.id(f.actor) : 0;
    if (this.statuses.size > 0xffff || this.backends.size > 0xffff) {
      // Never in a log this runtime wrote (two statuses, four backends): refuse rather than wrap.
      throw new ValidationError('size', 'receipt log', 'at most 65535 statuses or backends', 'more');
    }
    this.count = i + 1;
  }

  #grow(capacity: number): void {
    const grown = <T extends Float64Array | Uint16Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old.subarray(0, this.count) as never);
      return next;
    };
    this.startedMs = grown(this.startedMs, (n) => new Float64Array(n));
    this.status = grown(this.status, (n) => new Uint16Array(n));
    this.backend = grown(this.backend, (n) => new Uint16Array(n));
    this.build = grown(this.build, (n) => new Uint32Array(n));
    this.actor = grown(this.actor, (n) => new Uint32Array(n));
    this.#capacity = capacity;
  }

  /** The first `count` rows as views (not copies) with the string tables. */
  columns(): IndexColumnsLike {
    const n = this.count;
    return {
      startedMs: this.startedMs.subarray(0, n),
      status: this.status.subarray(0, n),
      backend: this.backend.subarray(0, n),
      build: this.build.subarray(0, n),
      actor: this.actor.subarray(0, n),
      statuses: this.statuses.names,
      backends: this.backends.names,
      builds: this.builds.names,
      actors: this.actors.names,
    };
  }
}

/** Columns by ordinal and their string tables (the shape receipt-checkpoint.ts persists). */
export interface IndexColumnsLike {
  readonly startedMs: Float64Array;
  readonly status: Uint16Array;
  readonly backend: Uint16Array;
  readonly build: Uint32Array;
  readonly actor: Uint32Array;
  readonly statuses: readonly string[];
  readonly backends: readonly string[];
  readonly builds: readonly string[];
  readonly actors: readonly string[];
}
