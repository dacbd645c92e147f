/**
 * Bit-level reads and writes of big-endian packet fields, and the hash/checksum algorithms
 * BMv2 offers. Fields that span at most six bytes go through plain numbers (exact below
 * 2^53); wider ones through BigInt.
 */

export function readBits(buf: Uint8Array, bitOff: number, width: number): bigint {
  if (width === 0) return 0n;
  const first = bitOff >> 3;
  const last = (bitOff + width - 1) >> 3;
  const span = last - first + 1;
  const shift = span * 8 - ((bitOff & 7) + width);
  if (span <= 4) {
    // 32-bit integer ops: the common case (every field of Ethernet/IPv4/UDP but the MACs).
    let acc = 0;
    for (let i = first; i <= last; i++) acc = (acc << 8) | buf[i]!;
    acc = (acc >>> shift) >>> 0;
    return BigInt(width === 32 ? acc : acc & ((1 << width) - 1));
  }
  if (span <= 6) {
    let acc = 0;
    for (let i = first; i <= last; i++) acc = acc * 256 + buf[i]!;
    return BigInt(Math.floor(acc / 2 ** shift) % 2 ** width);
  }
  let acc = 0n;
  for (let i = first; i <= last; i++) acc = (acc << 8n) | BigInt(buf[i]!);
  return (acc >> BigInt(shift)) & ((1n << BigInt(width)) - 1n);
}

/** OR a field into a zero-initialized buffer (the deparser builds fresh buffers). */
export function orBits(buf: Uint8Array, bitOff: number, width: number, value: bigint): void {
  if (width === 0) return;
  const first = bitOff >> 3;
  const last = (bitOff + width - 1) >> 3;
  const span = last - first + 1;
  const shift = span * 8 - ((bitOff & 7) + width);
  if (span <= 4 && width <= 32) {
    let acc = Number(BigInt.asUintN(width, value));
    // Shift left within 32 bits: multiply, since `<<` would wrap past bit 31.
    acc *= 1 << shift;
    for (let i = last; i >= first; i--) {
      buf[i]! |= acc & 0xff;
      acc = Math.floor(acc / 256);
    }
    return;
  }
  const v = BigInt.asUintN(width, value);
  if (span <= 6) {
    let acc = Number(v) * 2 ** shift;
    for (let i = last; i >= first; i--) {
      buf[i]! |= acc % 256;
      acc = Math.floor(acc / 256);
    }
    return;
  }
  let acc = v << BigInt(shift);
  for (let i = last; i >= first; i--) {
    buf[i]! |= Number(acc & 0xffn);
    acc >>= 8n;
  }
}

/** Pack (value, width) pairs MSB-first into bytes, zero-padding the last byte. */
export function pack(parts: readonly (readonly [bigint, number])[]): Uint8Array {
  let total = 0;
  for (const [, w] of parts) total += w;
  const out = new Uint8Array(Math.ceil(total / 8));
  let off = 0;
  for (const [v, w] of parts) {
    orBits(out, off, w, v);
    off += w;
  }
  return out;
}

export function csum16(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const CRC32_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3), as BMv2's crc32. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-16/ARC (poly 0x8005 reflected, init 0), as BMv2's crc16. */
export function crc16(bytes: Uint8Array): number {
  let c = 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  }
  return c & 0xffff;
}

export function xor16(bytes: Uint8Array): number {
  let x = 0;
  for (let i = 0; i < bytes.length; i += 2) x ^= (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  return x & 0xffff;
}

export function hashBytes(algo: string, bytes: Uint8Array): bigint {
  switch (algo) {
    case 'csum16':
      return BigInt(csum16(bytes));
    case 'crc32':
      return BigInt(crc32(bytes));
    case 'crc16':
      return BigInt(crc16(bytes));
    case 'xor16':
      return BigInt(xor16(bytes));
    case 'identity': {
      let v = 0n;
      for (const b of bytes) v = (v << 8n) | BigInt(b);
      return v;
    }
    default:
      throw new Error(`hash algorithm ${algo}`);
  }
}
