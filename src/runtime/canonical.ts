/**
 * Canonical encoding and hashing.
 *
 * Everything content-addressed in thunderpac (build ids, receipt ids, input and output hashes)
 * is SHA-256 over a canonical MessagePack encoding, chosen because msgpack is compact, has a
 * native binary type (artifacts and payloads need no base64) and msgpackr is fast. msgpack
 * alone is not canonical, so `canonicalize` fixes the freedoms it leaves:
 *   - map keys are sorted by UTF-16 code unit order (Array.prototype.sort default), at every depth;
 *   - keys whose value is `undefined` are dropped (so optional fields absent or undefined hash alike);
 *   - integers use msgpack's smallest integer form, other numbers float64 (msgpackr's default);
 *     -0 is written as 0 and NaN is refused, since neither round-trips as one value in JSON;
 *   - typed arrays become their little-endian bytes (a `bin`), with dtype and shape carried by
 *     the enclosing object;
 *   - records/structures extensions are off, so the bytes depend on the value alone.
 */

import { createHash, hash } from 'node:crypto';
import { Packr } from 'msgpackr';

const packr = new Packr({
  useRecords: false,
  variableMapSize: true,
  moreTypes: false,
  int64AsType: 'bigint',
});

export type Canonical =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly Canonical[]
  | { readonly [key: string]: Canonical };

export function canonicalize(value: unknown, path = '$'): Canonical {
  if (
    value === null ||
    typeof value === 'boolean' ||
    typeof value === 'string' ||
    typeof value === 'bigint'
  ) {
    return value;
  }
  if (typeof value === 'number') {
    if (Number.isNaN(value)) throw new TypeError(`${path}: NaN has no canonical encoding`);
    return Object.is(value, -0) ? 0 : value;
  }
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) return value.map((v, i) => canonicalize(v, `${path}[${i}]`));
  if (typeof value === 'object') {
    const out: Record<string, Canonical> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = canonicalize(v, `${path}.${key}`);
    }
    return out;
  }
  throw new TypeError(`${path}: ${typeof value} has no canonical encoding`);
}

/** Canonical msgpack bytes of a value (see module comment for the rules). */
export function encodeCanonical(value: unknown): Uint8Array {
  return packr.pack(canonicalize(value));
}

/**
 * Pack a value that is already in canonical form (keys sorted, no undefined, no -0/NaN) without
 * walking it again. For hot paths that build their records in canonical order by construction;
 * a property test pins each such builder to `encodeCanonical`.
 */
export function packCanonical(value: Canonical): Uint8Array {
  return packr.pack(value);
}

const canonicalCache = new WeakMap<object, Canonical>();

/** `canonicalize` memoized for frozen objects (sandbox specs, version tables): they cannot change. */
export function canonicalizeFrozen(value: object): Canonical {
  let c = canonicalCache.get(value);
  if (c === undefined) {
    c = canonicalize(value);
    if (Object.isFrozen(value)) canonicalCache.set(value, c);
  }
  return c;
}

export function decodeCanonical<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

export function sha256Hex(...parts: readonly (Uint8Array | string)[]): string {
  // One-shot hashing skips the Hash object: about twice as fast for the small records of the
  // hot path (receipts, headers).
  if (parts.length === 1) return hash('sha256', parts[0]!, 'hex');
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** sha256 of the canonical encoding: the id of builds, receipts and other records. */
export function canonicalDigest(value: unknown): string {
  return sha256Hex(encodeCanonical(value));
}

export const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

const frozenBytes = new WeakMap<object, Uint8Array>();

/** Buffer's native latin1 copy, applied to plain Uint8Arrays (it accepts any). */
const latin1Write = Buffer.prototype.latin1Write as (
  this: Uint8Array,
  s: string,
  offset: number,
  length: number,
) => number;

/**
 * Writes canonical msgpack piece by piece into one reused buffer, for records that hot paths
 * build in canonical (sorted-key) order by construction — a receipt per execution — without
 * materializing an object tree for msgpackr to walk. Each method writes exactly the bytes
 * msgpackr writes for that value with this module's settings (useRecords off, so fixints up
 * to 127; integers outside int32/uint32 as float64); a property test holds the writer and every
 * builder on top of it to `encodeCanonical`. Not reentrant: one record at a time.
 */
export class CanonicalWriter {
  // A plain Uint8Array: Buffer's subclass costs a constructor call per view.
  #buf = new Uint8Array(2048);
  #view = new DataView(this.#buf.buffer);
  /** #buf's size, kept apart: a typed array's byteLength is not a plain field load. */
  #cap = 2048;
  #pos = 0;

  /** Start a new record; the previous record's `view()` becomes invalid. */
  reset(): void {
    this.#pos = 0;
  }

  /** Make room for `n` more bytes; returns the (possibly new) buffer. */
  #room(n: number): Uint8Array {
    if (this.#pos + n > this.#cap) this.#grow(n);
    return this.#buf;
  }

  #grow(n: number): void {
    this.#cap = Math.max(this.#cap * 2, this.#pos + n);
    const bigger = new Uint8Array(this.#cap);
    bigger.set(this.#buf.subarray(0, this.#pos));
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }

  #header(n: number, fix: number, b16: number): void {
    const buf = this.#room(5);
    if (n < 0x10) buf[this.#pos++] = fix | n;
    else if (n < 0x10000) {
      buf[this.#pos++] = b16;
      buf[this.#pos++] = n >> 8;
      buf[this.#pos++] = n & 0xff;
    } else {
      buf[this.#pos++] = b16 + 1;
      this.#view.setUint32(this.#pos, n);
      this.#pos += 4;
    }
  }

  /** A map header for `n` entries; the caller then writes n sorted keys, each with its value. */
  map(n: number): void {
    this.#header(n, 0x80, 0xde);
  }

  array(n: number): void {
    this.#header(n, 0x90, 0xdc);
  }

  nil(): void {
    this.#room(1)[this.#pos++] = 0xc0;
  }

  str(s: string): void {
    const n = s.length;
    if (n >= 48 && n < 0x100 && Buffer.byteLength(s) === n) {
      // Long ASCII (digests): one native copy beats the loop below. UTF-8 length == length
      // holds for ASCII only; anything else takes the loop and its fallback.
      const buf = this.#room(n + 2);
      buf[this.#pos] = 0xd9;
      buf[this.#pos + 1] = n;
      this.#pos += 2 + latin1Write.call(buf, s, this.#pos + 2, n);
      return;
    }
    const buf = this.#room(n + 5);
    const start = this.#pos;
    const head = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    let at = start + head;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        // Non-ASCII: msgpackr's own UTF-8 rules (lone surrogates included) decide the bytes.
        this.raw(packr.pack(s));
        return;
      }
      buf[at++] = c;
    }
    if (head === 1) buf[start] = 0xa0 | n;
    else if (head === 2) {
      buf[start] = 0xd9;
      buf[start + 1] = n;
    } else if (head === 3) {
      buf[start] = 0xda;
      this.#view.setUint16(start + 1, n);
    } else {
      buf[start] = 0xdb;
      this.#view.setUint32(start + 1, n);
    }
    this.#pos = at;
  }

  /** A number already in canonical form (not NaN; -0 is written as 0, as msgpackr does). */
  num(v: number): void {
    const buf = this.#room(9);
    const view = this.#view;
    let p = this.#pos;
    if (v >>> 0 === v) {
      if (v < 0x80) buf[p++] = v;
      else if (v < 0x100) {
        buf[p++] = 0xcc;
        buf[p++] = v;
      } else if (v < 0x10000) {
        buf[p++] = 0xcd;
        view.setUint16(p, v);
        p += 2;
      } else {
        buf[p++] = 0xce;
        view.setUint32(p, v);
        p += 4;
      }
    } else if (v >> 0 === v) {
      if (v >= -0x20) buf[p++] = 0x100 + v;
      else if (v >= -0x80) {
        buf[p++] = 0xd0;
        buf[p++] = v + 0x100;
      } else if (v >= -0x8000) {
        buf[p++] = 0xd1;
        view.setInt16(p, v);
        p += 2;
      } else {
        buf[p++] = 0xd2;
        view.setInt32(p, v);
        p += 4;
      }
    } else {
      buf[p++] = 0xcb;
      view.setFloat64(p, v);
      p += 8;
    }
    this.#pos = p;
  }

  /** Bytes that are already canonical msgpack (one value, or a run of keys and values). */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    const buf = this.#room(n);
    if (n > 24) buf.set(bytes, this.#pos);
    else {
      // Short runs (keys): a loop beats the call into TypedArray#set.
      const p = this.#pos;
      for (let i = 0; i < n; i++) buf[p + i] = bytes[i]!;
    }
    this.#pos += n;
  }

  /** Any value, through the generic canonical encoder (for rare parts: error records). */
  value(v: unknown): void {
    this.raw(encodeCanonical(v));
  }

  /**
   * A frozen object (a sandbox policy, a version table): encoded once, then copied in. An
   * object that is not frozen could change between records, so it is encoded every time.
   */
  frozen(obj: object): void {
    let bytes = frozenBytes.get(obj);
    if (bytes === undefined) {
      bytes = new Uint8Array(packr.pack(canonicalizeFrozen(obj)));
      if (Object.isFrozen(obj)) frozenBytes.set(obj, bytes);
    }
    this.raw(bytes);
  }

  /** Bytes written since `reset`. */
  get length(): number {
    return this.#pos;
  }

  /** The record written since `reset`, in place: valid until the next `reset`. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** The record written since `reset`, as its own copy. */
  copy(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}
