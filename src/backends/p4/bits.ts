/**
 * Bit-level reads and writes of big-endian packet fields, and the hash/checksum algorithms
 * BMv2 offers. Fields that span at most six bytes go through plain numbers (exact below
 * 2^53); wider ones through BigInt.
 */

export function readBits(buf: Uint8Array, bitOff: number, width: number): bigint {
  if (width === 0) return 0n;
  if ((bitOff & 7) === 0 && (width & 31) === 0) {
    // whole 32-bit words (IPv6 addresses, options): four bytes per BigInt step
    let acc = 0n;
    for (let i = bitOff >> 3, end = i + (width >> 3); i < end; i += 4)
      acc =
        (acc << 32n) |
        BigInt(((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0);
    return acc;
  }
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

/**
 * Read an unsigned field of at most 53 bits as a number. Byte-aligned 8/16/32-bit fields (most
 * of them) take a direct path; fields wider than 32 bits are read as two halves.
 */
export function readNum(buf: Uint8Array, bitOff: number, width: number): number {
  if (width > 32) {
    const hiW = width - 32;
    return readNum(buf, bitOff, hiW) * 4294967296 + readNum(buf, bitOff + hiW, 32);
  }
  if (width === 0) return 0;
  const first = bitOff >> 3;
  if ((bitOff & 7) === 0) {
    if (width === 8) return buf[first]!;
    if (width === 16) return (buf[first]! << 8) | buf[first + 1]!;
    if (width === 32)
      return ((buf[first]! << 24) | (buf[first + 1]! << 16) | (buf[first + 2]! << 8) | buf[first + 3]!) >>> 0;
  }
  const last = (bitOff + width - 1) >> 3;
  const shift = (last - first + 1) * 8 - ((bitOff & 7) + width);
  if (last - first < 4) {
    let acc = 0;
    for (let i = first; i <= last; i++) acc = (acc << 8) | buf[i]!;
    acc = (acc >>> shift) >>> 0;
    return width === 32 ? acc : acc & ((1 << width) - 1);
  }
  // Five bytes (a 32-bit field off a byte boundary): doubles are exact to 2^53.
  let acc = 0;
  for (let i = first; i <= last; i++) acc = acc * 256 + buf[i]!;
  return Math.floor(acc / 2 ** shift) % 2 ** width;
}

/**
 * OR an unsigned field of at most 53 bits, given as a number in [0, 2^width), into a
 * zero-initialized buffer.
 */
export function orNum(buf: Uint8Array, bitOff: number, width: number, value: number): void {
  if (width > 32) {
    const hiW = width - 32;
    orNum(buf, bitOff, hiW, Math.floor(value / 4294967296));
    orNum(buf, bitOff + hiW, 32, value % 4294967296);
    return;
  }
  if (width === 0) return;
  const first = bitOff >> 3;
  if ((bitOff & 7) === 0) {
    if (width === 8) {
      buf[first] = value;
      return;
    }
    if (width === 16) {
      buf[first] = value >>> 8;
      buf[first + 1] = value;
      return;
    }
    if (width === 32) {
      buf[first] = value >>> 24;
      buf[first + 1] = value >>> 16;
      buf[first + 2] = value >>> 8;
      buf[first + 3] = value;
      return;
    }
  }
  const last = (bitOff + width - 1) >> 3;
  const shift = (last - first + 1) * 8 - ((bitOff & 7) + width);
  // value * 2^shift < 2^39: exact; `<<` would wrap past bit 31.
  let acc = value * 2 ** shift;
  for (let i = last; i >= first; i--) {
    buf[i]! |= acc % 256;
    acc = Math.floor(acc / 256);
  }
}

/** OR a field into a zero-initialized buffer (the deparser builds fresh buffers). */
export function orBits(buf: Uint8Array, bitOff: number, width: number, value: bigint): void {
  if (width === 0) return;
  if ((bitOff & 7) === 0 && (width & 31) === 0) {
    let v = BigInt.asUintN(width, value);
    for (let i = (bitOff >> 3) + (width >> 3) - 4; i >= bitOff >> 3; i -= 4) {
      const w = Number(v & 0xffffffffn);
      buf[i]! |= w >>> 24;
      buf[i + 1]! |= w >>> 16;
      buf[i + 2]! |= w >>> 8;
      buf[i + 3]! |= w;
      v >>= 32n;
    }
    return;
  }
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

/** The 16/32-bit algorithms as numbers (identity is not one of them: its width is the input's). */
export function hashNum(algo: string, bytes: Uint8Array): number {
  switch (algo) {
    case 'csum16':
      return csum16(bytes);
    case 'crc32':
      return crc32(bytes);
    case 'crc16':
      return crc16(bytes);
    case 'xor16':
      return xor16(bytes);
    default:
      throw new Error(`hash algorithm ${algo}`);
  }
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
