/**
 * Derives struct codecs (codec.ts) from the BTF the kernel holds for a map's key and value.
 *
 * Rules: integers by size and sign (bool as 0/1); typedefs __be16/__be32/__be64 (and
 * __sum16) are big-endian, everything else host (little) endian; char/u8 arrays are byte
 * arrays; struct bpf_spin_lock and fields named pad* are padding; an LPM-trie key shaped
 * `{ __u32 prefixlen; __u8 addr[4|16]; }` becomes an 'ADDRESS/LEN' prefix. What BTF cannot
 * express faithfully (bitfields, unions, pointers) falls back to raw bytes of the right size,
 * so a derived codec is never wrong, only sometimes less friendly.
 */
import type { NativeBtfType } from './addon.js';
import {
  array,
  bytes,
  type Codec,
  type Endian,
  type FieldSpec,
  int,
  ipPrefix,
  skip,
  struct,
} from './codec.js';

const BIG_ENDIAN_TYPEDEFS = new Set(['__be16', '__be32', '__be64', '__sum16', '__wsum']);

export function codecFromBtf(type: NativeBtfType, endian: Endian = 'le'): Codec<unknown> {
  switch (type.kind) {
    case 'typedef':
      return codecFromBtf(type.type, BIG_ENDIAN_TYPEDEFS.has(type.name) ? 'be' : endian);
    case 'int':
    case 'enum': {
      const signed = type.signed;
      if (type.kind === 'int' && (type.bitOffset !== 0 || type.bits !== type.size * 8))
        return bytes(type.size);
      if (type.size === 1 || type.size === 2 || type.size === 4 || type.size === 8) {
        return int(type.size, signed, endian) as Codec<unknown>;
      }
      return bytes(type.size);
    }
    case 'array': {
      const element = type.element;
      const base = unwrap(element);
      if (base.kind === 'int' && base.size === 1) return bytes(type.count) as Codec<unknown>;
      return array(codecFromBtf(element, endian), type.count) as Codec<unknown>;
    }
    case 'struct': {
      if (type.name === 'bpf_spin_lock' || type.name === 'bpf_timer')
        return skip(type.size) as Codec<unknown>;
      if (type.members.some((member) => member.bitfieldSize !== 0 || member.bitOffset % 8 !== 0)) {
        return bytes(type.size) as Codec<unknown>;
      }
      const fields: FieldSpec[] = type.members.map((member, i) => ({
        name: member.name === '' ? `_${i}` : member.name,
        offset: member.bitOffset / 8,
        codec: /^_*pad/.test(member.name) ? skip(member.type.size) : codecFromBtf(member.type),
      }));
      return struct(type.size, fields, `struct ${type.name || '(anon)'}`) as Codec<unknown>;
    }
    default:
      return bytes(type.size) as Codec<unknown>;
  }
}

/** The LPM-trie key layout, if `type` is `{ u32 prefixlen; u8 addr[4|16] }`. */
export function lpmPrefixFamily(type: NativeBtfType): 4 | 6 | undefined {
  const base = unwrap(type);
  if (base.kind !== 'struct' || base.members.length !== 2) return undefined;
  const [length, addr] = base.members;
  const lengthType = length && unwrap(length.type);
  const addrType = addr && unwrap(addr.type);
  if (lengthType?.kind !== 'int' || lengthType.size !== 4 || addrType?.kind !== 'array') return undefined;
  if (addr!.bitOffset !== 32) return undefined;
  const element = unwrap(addrType.element);
  if (element.kind !== 'int' || element.size !== 1) return undefined;
  if (addrType.count === 4) return 4;
  if (addrType.count === 16) return 6;
  return undefined;
}

/** Key codec for a map: an IP prefix for LPM tries whose key has the usual shape. */
export function keyCodecFromBtf(type: NativeBtfType, isLpmTrie: boolean): Codec<unknown> {
  const family = isLpmTrie ? lpmPrefixFamily(type) : undefined;
  return family === undefined ? codecFromBtf(type) : (ipPrefix(family) as Codec<unknown>);
}

function unwrap(type: NativeBtfType): NativeBtfType {
  return type.kind === 'typedef' ? unwrap(type.type) : type;
}
