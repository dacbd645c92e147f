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
