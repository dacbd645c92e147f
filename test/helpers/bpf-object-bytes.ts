/**
 * Finds fields inside a BPF ELF object's bytes, so tests can mutate a shipped object at a
 * precise place (a BTF type id, a section header) however clang laid it out. Written apart from
 * src/backends/ebpf/elf-check.ts and btf-check.ts on purpose: the tests must not locate their
 * mutations with the code they test. Only well-formed objects are read here.
 */

export interface SectionPlace {
  readonly index: number;
  readonly name: string;
  /** File offset of the section's header. */
  readonly headerOffset: number;
  /** File offset and size of the section's bytes. */
  readonly offset: number;
  readonly size: number;
}

export function elfSections(bytes: Uint8Array): SectionPlace[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(view.getBigUint64(40, true));
  const shnum = view.getUint16(60, true);
  const shstrndx = view.getUint16(62, true);
  const header = (index: number) => shoff + index * 64;
  const namesAt = Number(view.getBigUint64(header(shstrndx) + 24, true));
  const sections: SectionPlace[] = [];
  for (let index = 0; index < shnum; index++) {
    const at = header(index);
    const nameAt = namesAt + view.getUint32(at, true);
    sections.push({
      index,
      name: Buffer.from(bytes.subarray(nameAt, bytes.indexOf(0, nameAt))).toString('latin1'),
      headerOffset: at,
      offset: Number(view.getBigUint64(at + 24, true)),
      size: Number(view.getBigUint64(at + 32, true)),
    });
  }
  return sections;
}

export function elfSection(bytes: Uint8Array, name: string): SectionPlace {
  const section = elfSections(bytes).find((candidate) => candidate.name === name);
  if (section === undefined) throw new Error(`no section '${name}' in the object`);
  return section;
}

export interface BtfTypePlace {
  readonly id: number;
  readonly kind: number;
  readonly name: string;
  /** File offset of the type's record (name_off, info, size/type, then its members). */
  readonly offset: number;
  readonly vlen: number;
}

const BTF_KIND_VAR = 14;
const BTF_KIND_STRUCT = 4;

/** Every type record of the object's .BTF with its file offset. */
export function btfTypes(bytes: Uint8Array): BtfTypePlace[] {
  const btf = elfSection(bytes, '.BTF');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(btf.offset + 4, true);
  const typesAt = btf.offset + headerLength + view.getUint32(btf.offset + 8, true);
  const typesEnd = typesAt + view.getUint32(btf.offset + 12, true);
  const stringsAt = btf.offset + headerLength + view.getUint32(btf.offset + 16, true);
  const types: BtfTypePlace[] = [];
  for (let at = typesAt; at < typesEnd; ) {
    const info = view.getUint32(at + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const nameAt = stringsAt + view.getUint32(at, true);
    types.push({
      id: types.length + 1,
      kind,
      vlen,
      name: Buffer.from(bytes.subarray(nameAt, bytes.indexOf(0, nameAt))).toString('latin1'),
      offset: at,
    });
    at += 12 + extraBytes(kind, vlen);
  }
  return types;
}

function extraBytes(kind: number, vlen: number): number {
  if (kind === 1 || kind === 14 || kind === 17) return 4; // INT, VAR, DECL_TAG
  if (kind === 3) return 12; // ARRAY
  if (kind === 4 || kind === 5 || kind === 15 || kind === 19) return vlen * 12; // STRUCT, UNION, DATASEC, ENUM64
  if (kind === 6 || kind === 13) return vlen * 8; // ENUM, FUNC_PROTO
  return 0;
}

/** File offset of the type-id field of the VAR named `name` (e.g. a map in .maps). */
export function btfVarTypeField(bytes: Uint8Array, name: string): number {
  const variable = btfTypes(bytes).find((type) => type.kind === BTF_KIND_VAR && type.name === name);
  if (variable === undefined) throw new Error(`no BTF VAR '${name}'`);
  return variable.offset + 8;
}

/**
 * File offset of the type-id field of member `member` of the struct that VAR `name` has as its
 * type (for a map: its definition struct, member 0 being `type`).
 */
export function btfVarStructMemberTypeField(bytes: Uint8Array, name: string, member: number): number {
  const types = btfTypes(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const variable = types.find((type) => type.kind === BTF_KIND_VAR && type.name === name);
  if (variable === undefined) throw new Error(`no BTF VAR '${name}'`);
  const struct = types[view.getUint32(variable.offset + 8, true) - 1];
  if (struct === undefined || struct.kind !== BTF_KIND_STRUCT)
    throw new Error(`VAR '${name}' is not a struct`);
  return struct.offset + 12 + member * 12 + 4;
}

/** A copy of `bytes` with the little-endian u32 at `offset` replaced. */
export function withU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  new DataView(copy.buffer).setUint32(offset, value, true);
  return copy;
}

/** A copy of `bytes` with one byte replaced. */
export function withByte(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[offset] = value;
  return copy;
}
