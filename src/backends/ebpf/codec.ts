/**
 * Struct codecs: the C layout of a map key or value ↔ a plain TypeScript value.
 *
 * A codec knows its exact byte size and refuses (CodecError, before any syscall) a value of
 * the wrong shape: a missing field, an integer out of range, a byte array of the wrong length,
 * a malformed address. Integers up to 32 bits are numbers, 64-bit ones bigints (a number is
 * accepted on encode). Little-endian unless declared big-endian (network fields: __be16 etc.).
 * Codecs are built by hand with the helpers below or derived from BTF (btf.ts).
 */
import { isIP } from 'node:net';
import { CodecError } from './errors.js';

export interface Codec<T> {
  /** Exact encoded size in bytes. */
  readonly size: number;
  /** A short description of the layout, for messages and `thunderpac map` output. */
  readonly describe: string;
  /** C alignment of the type (for cstruct layout); 1 when absent. */
  readonly align?: number;
  /** Padding: written as zeros, never required on encode nor returned on decode. */
  readonly omit?: boolean;
  encodeInto(value: T, view: DataView, offset: number, path: string): void;
  decodeFrom(view: DataView, offset: number): T;
}

export function encode<T>(codec: Codec<T>, value: T, path = 'value'): Uint8Array {
  const bytes = new Uint8Array(codec.size);
  codec.encodeInto(value, new DataView(bytes.buffer), 0, path);
  return bytes;
}

export function decode<T>(codec: Codec<T>, bytes: Uint8Array, offset = 0): T {
  if (bytes.byteLength - offset < codec.size) {
    throw new CodecError(
      'bytes',
      `need ${codec.size} bytes for ${codec.describe}, got ${bytes.byteLength - offset}`,
    );
  }
  return codec.decodeFrom(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
}

export type Endian = 'le' | 'be';
type IntWidth = 1 | 2 | 4 | 8;

/** Fixed-width integer. 8-byte integers decode to bigint. */
export function int(width: 1, signed?: boolean, endian?: Endian): Codec<number>;
export function int(width: 2, signed?: boolean, endian?: Endian): Codec<number>;
export function int(width: 4, signed?: boolean, endian?: Endian): Codec<number>;
export function int(width: 8, signed?: boolean, endian?: Endian): Codec<bigint>;
export function int(width: IntWidth, signed?: boolean, endian?: Endian): Codec<number> | Codec<bigint>;
export function int(width: IntWidth, signed = false, endian: Endian = 'le'): Codec<number> | Codec<bigint> {
  const little = endian === 'le';
  const name = `${signed ? 'i' : 'u'}${width * 8}${endian === 'be' ? 'be' : ''}`;
  if (width === 8) {
    const min = signed ? -(2n ** 63n) : 0n;
    const max = signed ? 2n ** 63n - 1n : 2n ** 64n - 1n;
    return {
      size: 8,
      describe: name,
      align: 8,
      encodeInto(value, view, offset, path) {
        const big = toBigInt(value, path, name);
        if (big < min || big > max) throw new CodecError(path, `${big} does not fit ${name}`);
        if (signed) view.setBigInt64(offset, big, little);
        else view.setBigUint64(offset, big, little);
      },
      decodeFrom(view, offset) {
        return signed ? view.getBigInt64(offset, little) : view.getBigUint64(offset, little);
      },
    } satisfies Codec<bigint>;
  }
  const bits = width * 8;
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  return {
    size: width,
    describe: name,
    align: width,
    encodeInto(value, view, offset, path) {
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) {
        throw new CodecError(path, `expected an integer for ${name}, got ${describeValue(value)}`);
      }
      if (n < min || n > max) throw new CodecError(path, `${n} does not fit ${name} [${min}, ${max}]`);
      if (width === 1) signed ? view.setInt8(offset, n) : view.setUint8(offset, n);
      else if (width === 2) signed ? view.setInt16(offset, n, little) : view.setUint16(offset, n, little);
      else signed ? view.setInt32(offset, n, little) : view.setUint32(offset, n, little);
    },
    decodeFrom(view, offset) {
      if (width === 1) return signed ? view.getInt8(offset) : view.getUint8(offset);
      if (width === 2) return signed ? view.getInt16(offset, little) : view.getUint16(offset, little);
      return signed ? view.getInt32(offset, little) : view.getUint32(offset, little);
    },
  } satisfies Codec<number>;
}

export const u8 = int(1);
export const u16 = int(2);
export const u32 = int(4);
export const u64 = int(8);
export const be16 = int(2, false, 'be');
export const be32 = int(4, false, 'be');

/** A fixed-length byte array. Accepts Uint8Array or a hex string on encode. */
export function bytes(size: number): Codec<Uint8Array> {
  return {
    size,
    describe: `u8[${size}]`,
    encodeInto(value, view, offset, path) {
      const raw = typeof value === 'string' ? hexBytes(value, path) : value;
      if (!(raw instanceof Uint8Array)) {
        throw new CodecError(path, `expected ${size} bytes, got ${describeValue(value)}`);
      }
      if (raw.byteLength !== size)
        throw new CodecError(path, `expected ${size} bytes, got ${raw.byteLength}`);
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(raw);
    },
    decodeFrom(view, offset) {
      return new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size));
    },
  };
}

/** Bytes the codec writes as zeros and does not decode (padding, spin locks). */
export function skip(size: number): Codec<undefined> {
  return {
    size,
    describe: `pad[${size}]`,
    omit: true,
    encodeInto() {},
    decodeFrom() {
      return undefined;
    },
  };
}

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order, as its text form. */
export function ipAddress(family: 4 | 6): Codec<string> {
  const size = family === 4 ? 4 : 16;
  return {
    size,
    describe: `ipv${family}`,
    encodeInto(value, view, offset, path) {
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(parseIp(value, family, path));
    },
    decodeFrom(view, offset) {
      return formatIp(new Uint8Array(view.buffer, view.byteOffset + offset, size), family);
    },
  };
}

/**
 * An LPM-trie key: `struct { __u32 prefixlen; __u8 addr[4 | 16]; }` as 'ADDRESS/LEN' (a bare
 * address means a host prefix). Host bits beyond the prefix are zeroed on encode, so equal
 * prefixes always make equal keys.
 */
export function ipPrefix(family: 4 | 6): Codec<string> {
  const addrBytes = family === 4 ? 4 : 16;
  const maxLen = addrBytes * 8;
  return {
    size: 4 + addrBytes,
    describe: `ipv${family} prefix`,
    align: 4,
    encodeInto(value, view, offset, path) {
      if (typeof value !== 'string')
        throw new CodecError(path, `expected 'ADDRESS/LEN', got ${describeValue(value)}`);
      const [address = '', lengthText, extra] = value.split('/');
      if (extra !== undefined) throw new CodecError(path, `not a prefix: '${value}'`);
      const length = lengthText === undefined ? maxLen : Number(lengthText);
      if (lengthText !== undefined && !/^\d{1,3}$/.test(lengthText)) {
        throw new CodecError(path, `bad prefix length in '${value}'`);
      }
      if (length > maxLen) throw new CodecError(path, `prefix length ${length} > ${maxLen} in '${value}'`);
      const addr = parseIp(address, family, path);
      for (let bit = length; bit < maxLen; bit++) addr[bit >> 3]! &= ~(0x80 >> (bit & 7));
      view.setUint32(offset, length, true);
      new Uint8Array(view.buffer, view.byteOffset + offset + 4, addrBytes).set(addr);
    },
    decodeFrom(view, offset) {
      const length = view.getUint32(offset, true);
      const addr = new Uint8Array(view.buffer, view.byteOffset + offset + 4, addrBytes);
      return `${formatIp(addr, family)}/${length}`;
    },
  };
}

export interface FieldSpec {
  readonly name: string;
  readonly offset: number;
  readonly codec: Codec<unknown>;
}

/**
 * A C struct of named fields at given offsets (gaps are zero padding). Fields whose codec is
 * skip() are neither required nor returned.
 */
export function struct<T extends object>(
  size: number,
  fields: readonly FieldSpec[],
  name = 'struct',
): Codec<T> {
  for (const field of fields) {
    if (field.offset + field.codec.size > size) {
      throw new CodecError(
        field.name,
        `field ends at ${field.offset + field.codec.size}, past the ${size}-byte ${name}`,
      );
    }
  }
  const encoded = fields.filter((field) => field.codec.omit !== true);
  return {
    size,
    align: Math.max(1, ...fields.map((field) => field.codec.align ?? 1)),
    describe: `${name} { ${fields.map((f) => `${f.codec.describe} ${f.name}`).join('; ')} }`,
    encodeInto(value, view, offset, path) {
      if (typeof value !== 'object' || value === null) {
        throw new CodecError(path, `expected an object for ${name}, got ${describeValue(value)}`);
      }
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        if (!encoded.some((field) => field.name === key)) {
          throw new CodecError(
            `${path}.${key}`,
            `no such field in ${name} (fields: ${encoded.map((f) => f.name).join(', ')})`,
          );
        }
      }
      for (const field of encoded) {
        if (!(field.name in record)) throw new CodecError(`${path}.${field.name}`, 'missing');
        field.codec.encodeInto(record[field.name], view, offset + field.offset, `${path}.${field.name}`);
      }
    },
    decodeFrom(view, offset) {
      const out: Record<string, unknown> = {};
      for (const field of encoded) out[field.name] = field.codec.decodeFrom(view, offset + field.offset);
      return out as T;
    },
  };
}

/** Lays out fields with C alignment (each field aligned to its own size, capped at 8). */
export function cstruct<T extends object>(
  fields: readonly [string, Codec<unknown>][],
  name = 'struct',
): Codec<T> {
  let offset = 0;
  let maxAlign = 1;
  const specs: FieldSpec[] = [];
  for (const [fieldName, codec] of fields) {
    const align = codec.align ?? 1;
    maxAlign = Math.max(maxAlign, align);
    offset = Math.ceil(offset / align) * align;
    specs.push({ name: fieldName, offset, codec });
    offset += codec.size;
  }
  return struct<T>(Math.ceil(offset / maxAlign) * maxAlign, specs, name);
}

export function array<T>(element: Codec<T>, count: number): Codec<T[]> {
  return {
    size: element.size * count,
    describe: `${element.describe}[${count}]`,
    align: element.align ?? 1,
    encodeInto(value, view, offset, path) {
      if (!Array.isArray(value) || value.length !== count) {
        throw new CodecError(path, `expected an array of ${count}, got ${describeValue(value)}`);
      }
      value.forEach((item, i) => {
        element.encodeInto(item, view, offset + i * element.size, `${path}[${i}]`);
      });
    },
    decodeFrom(view, offset) {
      return Array.from({ length: count }, (_, i) => element.decodeFrom(view, offset + i * element.size));
    },
  };
}

function toBigInt(value: unknown, path: string, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new CodecError(path, `expected an integer for ${name}, got ${describeValue(value)}`);
}

function hexBytes(text: string, path: string): Uint8Array {
  const clean = text.startsWith('0x') ? text.slice(2) : text;
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new CodecError(path, `not a hex byte string: '${text}'`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function parseIp(text: unknown, family: 4 | 6, path: string): Uint8Array {
  if (typeof text !== 'string' || isIP(text) !== family) {
    throw new CodecError(path, `expected an IPv${family} address, got ${describeValue(text)}`);
  }
  if (family === 4) return Uint8Array.from(text.split('.'), Number);
  const [head = '', tail = ''] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  let left = groups(head);
  let right = text.includes('::') ? groups(tail) : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const expand = (list: string[]): string[] =>
    list.flatMap((group) => {
      if (!group.includes('.')) return [group];
      const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    });
  left = expand(left);
  right = expand(right);
  const middle = new Array<string>(8 - left.length - right.length).fill('0');
  const all = [...left, ...middle, ...right];
  const out = new Uint8Array(16);
  all.forEach((group, i) => {
    const n = Number.parseInt(group, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

export function formatIp(addr: Uint8Array, family: 4 | 6): string {
  if (family === 4) return Array.from(addr.subarray(0, 4)).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  // RFC 5952: compress the longest run (≥ 2) of zero groups.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/**
 * JSON-safe form of a decoded value (bigint → decimal string, bytes → hex), and the inverse
 * is what `encode` accepts already (decimal strings for 64-bit fields, hex for bytes).
 */
export function toJson(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, toJson(item)]));
  }
  return value;
}
