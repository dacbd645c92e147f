/**
 * Hashing and encoding of execution inputs and outputs.
 *
 * The hash of a payload is sha256 over a small canonical header (its kind, tensor names, dtypes
 * and shapes, ports, verdicts) followed by the raw data bytes in a fixed order. The data is fed
 * to the hash in place: hashing never copies a payload. The stored form (`encodePayload`) is the
 * canonical msgpack of the same structure and decodes back to an equal Input/Output.
 */

import { createHash, webcrypto } from 'node:crypto';
import { type Canonical, decodeCanonical, encodeCanonical, packCanonical, sha256Hex } from './canonical.js';

/** Up to this size a payload is copied next to its header and hashed in one shot. */
const SMALL_PAYLOAD_BYTES = 4096;
import { IntegrityError } from './errors.js';
import type { DType, Input, Output, PacketDigest, Tensor, TensorData } from './types.js';

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A digest with its value keys sorted, as the canonical encoding orders them. */
function canonicalDigest(d: PacketDigest): Canonical {
  const values: Record<string, string> = {};
  for (const k of Object.keys(d.values).sort()) values[k] = d.values[k]!;
  return { list: d.list, receiver: d.receiver, values };
}

/**
 * The structural part of a payload, without data bytes, built with its keys in canonical
 * (sorted) order so it can be packed without a canonicalizing walk; test/payload-hash.test.ts
 * holds it to `encodeCanonical`.
 */
export function payloadHeader(p: Input | Output): Canonical {
  switch (p.kind) {
    case 'bytes':
      return { kind: 'bytes', size: p.bytes.byteLength };
    case 'packet':
      if ('packets' in p) {
        const packets = p.packets.map((e) => ({ port: e.port, size: e.bytes.byteLength }));
        // Digests are small and structural: they go in the header whole, keys sorted.
        if (p.digests && p.digests.length > 0) {
          return {
            digests: p.digests.map(canonicalDigest),
            kind: 'packet-out',
            packets,
            retval: p.retval,
            verdict: p.verdict,
          };
        }
        return { kind: 'packet-out', packets, retval: p.retval, verdict: p.verdict };
      }
      return { ingressPort: p.ingressPort ?? 0, kind: 'packet', size: p.bytes.byteLength };
    case 'tensors': {
      const tensors: Record<string, Canonical> = {};
      for (const name of Object.keys(p.tensors).sort()) {
        const t = p.tensors[name]!;
        tensors[name] = { dtype: t.dtype, shape: t.shape as number[], size: t.data.byteLength };
      }
      return { kind: 'tensors', tensors };
    }
  }
}

/** `u32be header length | canonical header`: what every payload hash starts with. */
function prefixedHeader(p: Input | Output, extra: number): Buffer {
  const head = packCanonical(payloadHeader(p));
  const out = Buffer.allocUnsafe(4 + head.byteLength + extra);
  out.writeUInt32BE(head.byteLength, 0);
  out.set(head, 4);
  return out;
}

/** The data bytes of a payload, in the order they are hashed (tensors by sorted name). */
function dataParts(p: Input | Output): Uint8Array[] {
  switch (p.kind) {
    case 'bytes':
      return [p.bytes];
    case 'packet':
      return 'packets' in p ? p.packets.map((e) => e.bytes) : [p.bytes];
    case 'tensors':
      return Object.keys(p.tensors)
        .sort()
        .map((name) => bytesOf(p.tensors[name]!.data));
  }
}

/**
 * sha256 over `u32be header length | canonical header | data bytes`. The header is
 * length-prefixed so header bytes can never be confused with data bytes. Data over 4 KiB is
 * fed to the hash in place, never copied.
 */
export function hashPayload(p: Input | Output): string {
  if (p.kind === 'bytes' && p.bytes.byteLength <= SMALL_PAYLOAD_BYTES) return hashSmallBytes(p.bytes);
  const single = p.kind === 'packet' && !('packets' in p) ? p.bytes : undefined;
  if (single && single.byteLength <= SMALL_PAYLOAD_BYTES) {
    // Small payloads: one contiguous buffer and a one-shot hash beat a streaming Hash object.
    const all = prefixedHeader(p, single.byteLength);
    all.set(single, all.byteLength - single.byteLength);
    return sha256Hex(all);
  }
  const h = createHash('sha256').update(prefixedHeader(p, 0));
  for (const part of dataParts(p)) h.update(part);
  return h.digest('hex');
}

/**
 * `u32be header length | { kind: 'bytes', size: n }` is the same up to `n` for every small
 * bytes payload: written once into a scratch buffer, then only n and the data per hash.
 */
const SMALL_BYTES_HEAD = packCanonical({ kind: 'bytes', size: 0 }).subarray(0, -1); // without n
const smallScratch = new Uint8Array(4 + SMALL_BYTES_HEAD.byteLength + 3 + SMALL_PAYLOAD_BYTES);
smallScratch.set(SMALL_BYTES_HEAD, 4);

/**
 * The hot path's payload (a small `bytes` input or output of a guest call): no header object,
 * no allocation. Same bytes as the general path, which a property test holds it to.
 */
function hashSmallBytes(data: Uint8Array): string {
  const n = data.byteLength; // <= SMALL_PAYLOAD_BYTES < 2^16
  const buf = smallScratch;
  let p = 4 + SMALL_BYTES_HEAD.byteLength;
  // n as msgpack writes it: positive fixint, uint8 or uint16
  if (n < 0x80) buf[p++] = n;
  else if (n < 0x100) {
    buf[p++] = 0xcc;
    buf[p++] = n;
  } else {
    buf[p++] = 0xcd;
    buf[p++] = n >> 8;
    buf[p++] = n & 0xff;
  }
  const headLength = p - 4; // < 256
  buf[0] = 0;
  buf[1] = 0;
  buf[2] = 0;
  buf[3] = headLength;
  buf.set(data, p);
  return sha256Hex(buf.subarray(0, p + n));
}

/**
 * Scratch for hashPayloadAsync, reused across calls. Why: a fresh multi-hundred-KiB buffer per
 * call costs its page faults (~200 µs for 384 KiB on this VM, as much as hashing it); a warm
 * one costs a memcpy. Reuse is safe because WebCrypto copies its input before digest() returns
 * (the spec says "a copy of the bytes held by data"; Node's async HashJob copies too). Payloads
 * over the cap get a buffer of their own rather than pinning that much memory for good.
 */
const ASYNC_SCRATCH_MAX_BYTES = 16 * 1024 * 1024;
let asyncScratch: Buffer = Buffer.alloc(0);

/**
 * `hashPayload` computed on the libuv threadpool (WebCrypto's digest), so a caller can overlap
 * hashing a large payload with other work. Same bytes hashed, same digest. WebCrypto hashes one
 * buffer, not a stream, so the header and data are first copied into one buffer on the calling
 * thread (memcpy, ~10× faster than sha256 here) — which also means the caller may reuse or
 * mutate the payload as soon as this returns.
 */
export async function hashPayloadAsync(p: Input | Output): Promise<string> {
  const parts = dataParts(p);
  let size = 0;
  for (const part of parts) size += part.byteLength;
  const head = prefixedHeader(p, 0);
  const total = head.byteLength + size;
  let all: Buffer;
  if (total > ASYNC_SCRATCH_MAX_BYTES) all = Buffer.allocUnsafe(total);
  else {
    if (asyncScratch.byteLength < total)
      asyncScratch = Buffer.allocUnsafe(
        Math.min(ASYNC_SCRATCH_MAX_BYTES, Math.max(total, 2 * asyncScratch.byteLength)),
      );
    all = asyncScratch.subarray(0, total);
  }
  all.set(head, 0);
  let at = head.byteLength;
  for (const part of parts) {
    all.set(part, at);
    at += part.byteLength;
  }
  const digest = webcrypto.subtle.digest('SHA-256', all); // copies `all` before returning
  return Buffer.from(await digest).toString('hex');
}

export function encodePayload(p: Input | Output): Uint8Array {
  switch (p.kind) {
    case 'bytes':
      return encodeCanonical({ kind: 'bytes', bytes: p.bytes });
    case 'packet':
      if ('packets' in p) {
        return encodeCanonical({
          kind: 'packet-out',
          verdict: p.verdict,
          retval: p.retval,
          packets: p.packets,
          ...(p.digests && p.digests.length > 0 && { digests: p.digests.map(canonicalDigest) }),
        });
      }
      return encodeCanonical({ kind: 'packet', ingressPort: p.ingressPort ?? 0, bytes: p.bytes });
    case 'tensors': {
      const tensors: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(p.tensors)) {
        tensors[name] = { dtype: t.dtype, shape: t.shape, data: bytesOf(t.data) };
      }
      return encodeCanonical({ kind: 'tensors', tensors });
    }
  }
}

const TYPED: Readonly<Record<DType, new (b: ArrayBuffer, o: number, n: number) => TensorData>> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

function ownBytes(b: Uint8Array): Uint8Array {
  // Decoded bins may be views into a shared decode buffer; copy so they stay valid.
  return new Uint8Array(b);
}

type Encoded =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'packet'; ingressPort: number; bytes: Uint8Array }
  | {
      kind: 'packet-out';
      verdict: string;
      retval: number;
      packets: { port: number; bytes: Uint8Array }[];
      digests?: PacketDigest[];
    }
  | { kind: 'tensors'; tensors: Record<string, { dtype: DType; shape: number[]; data: Uint8Array }> };

export function decodePayload(bytes: Uint8Array): Input | Output {
  const e = decodeCanonical<Encoded>(bytes);
  switch (e?.kind) {
    case 'bytes':
      return { kind: 'bytes', bytes: ownBytes(e.bytes) };
    case 'packet':
      return { kind: 'packet', ingressPort: e.ingressPort, bytes: ownBytes(e.bytes) };
    case 'packet-out':
      return {
        kind: 'packet',
        verdict: e.verdict,
        retval: e.retval,
        packets: e.packets.map((p) => ({ port: p.port, bytes: ownBytes(p.bytes) })),
        ...(e.digests && { digests: e.digests }),
      };
    case 'tensors': {
      const tensors: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(e.tensors)) {
        const copy = ownBytes(t.data);
        const Ctor = TYPED[t.dtype];
        const width =
          Ctor === Uint8Array ? 1 : (Ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
        tensors[name] = {
          dtype: t.dtype,
          shape: t.shape,
          data: new Ctor(copy.buffer as ArrayBuffer, 0, copy.byteLength / width),
        };
      }
      return { kind: 'tensors', tensors };
    }
    default:
      throw new IntegrityError('stored payload has an unknown encoding');
  }
}
