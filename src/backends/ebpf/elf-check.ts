/**
 * A strict structural check of a BPF ELF object (ELF64, little-endian, relocatable, EM_BPF),
 * done in TypeScript before libbpf parses the bytes. libbpf 1.1 trusts parts of what it reads,
 * so every offset, size and index the object declares is checked against the bytes it has:
 * the header, the section header table, each section's extent, string tables, symbols and
 * relocations. What a legitimate clang object contains always passes; the first violation
 * throws an ObjectDefect naming the section and the file offset of the faulty field.
 */
import { ObjectDefect } from './object-defect.js';

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  /** Where the section's bytes start in the file (meaningless for SHT_NOBITS). */
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly entsize: number;
  /** File offset of this section's header, for error locations. */
  readonly headerOffset: number;
}

export interface BpfElfLayout {
  readonly sections: readonly ElfSection[];
  /** The first section of that name. */
  section(name: string): ElfSection | undefined;
}

const EM_BPF = 247;
const ET_REL = 1;
const ELF_HEADER_SIZE = 64;
const SECTION_HEADER_SIZE = 64;
const SYMBOL_SIZE = 24;
const REL_SIZE = 16;
const RELA_SIZE = 24;
/** Past this, ELF stores the section count in section 0 (extended numbering): clang never does. */
const SHN_LORESERVE = 0xff00;
const SHN_ABS = 0xfff1;
const SHN_COMMON = 0xfff2;

export const SHT_NULL = 0;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;

/** Bytes each BPF relocation type patches at r_offset (R_BPF_64_64 is a 16-byte ld_imm64). */
const BPF_RELOCATION_WIDTHS: ReadonlyMap<number, number> = new Map([
  [0, 0], // R_BPF_NONE
  [1, 16], // R_BPF_64_64
  [2, 8], // R_BPF_64_ABS64
  [3, 4], // R_BPF_64_ABS32
  [4, 4], // R_BPF_64_NODYLD32
  [10, 8], // R_BPF_64_32 (call instruction)
]);

function fail(problem: string, section?: string, offset?: number): never {
  throw new ObjectDefect('elf', problem, section, offset);
}

/** Reads a 64-bit field as a number; values past 2^53 cannot fit any file, so they become Infinity. */
function u64(view: DataView, at: number): number {
  const value = view.getBigUint64(at, true);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(value);
}

export function checkBpfElf(bytes: Uint8Array): BpfElfLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = bytes.byteLength;
  if (length < ELF_HEADER_SIZE) fail(`${length} bytes is too short for an ELF header`, undefined, 0);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    fail('not an ELF file (bad magic)', undefined, 0);
  }
  if (bytes[4] !== 2) fail(`not a 64-bit ELF (class ${bytes[4]})`, undefined, 4);
  if (bytes[5] !== 1) fail(`not a little-endian ELF (data encoding ${bytes[5]})`, undefined, 5);
  if (bytes[6] !== 1) fail(`unknown ELF identification version ${bytes[6]}`, undefined, 6);
  const type = view.getUint16(16, true);
  if (type !== ET_REL) fail(`not a relocatable object (e_type ${type})`, undefined, 16);
  const machine = view.getUint16(18, true);
  if (machine !== EM_BPF) fail(`not a BPF object (e_machine ${machine}, expected ${EM_BPF})`, undefined, 18);
  const version = view.getUint32(20, true);
  if (version !== 1) fail(`unknown ELF version ${version}`, undefined, 20);
  const phnum = view.getUint16(56, true);
  if (phnum !== 0) fail(`a relocatable object with ${phnum} program headers`, undefined, 56);
  const ehsize = view.getUint16(52, true);
  if (ehsize !== ELF_HEADER_SIZE)
    fail(`ELF header size ${ehsize}, expected ${ELF_HEADER_SIZE}`, undefined, 52);
  const shentsize = view.getUint16(58, true);
  if (shentsize !== SECTION_HEADER_SIZE) {
    fail(`section header size ${shentsize}, expected ${SECTION_HEADER_SIZE}`, undefined, 58);
  }
  const shnum = view.getUint16(60, true);
  if (shnum === 0 || shnum >= SHN_LORESERVE) fail(`unsupported section count ${shnum}`, undefined, 60);
  const shoff = u64(view, 40);
  if (shoff < ELF_HEADER_SIZE || shoff + shnum * SECTION_HEADER_SIZE > length) {
    fail(
      `section header table (${shnum} entries at ${shoff}) lies outside the ${length}-byte file`,
      undefined,
      40,
    );
  }
  const shstrndx = view.getUint16(62, true);
  if (shstrndx === 0 || shstrndx >= shnum)
    fail(`section name table index ${shstrndx} out of range`, undefined, 62);

  const raw: Omit<ElfSection, 'name'>[] = [];
  for (let index = 0; index < shnum; index++) {
    const at = shoff + index * SECTION_HEADER_SIZE;
    const section = {
      index,
      type: view.getUint32(at + 4, true),
      flags: u64(view, at + 8),
      offset: u64(view, at + 24),
      size: u64(view, at + 32),
      link: view.getUint32(at + 40, true),
      info: view.getUint32(at + 44, true),
      entsize: u64(view, at + 56),
      headerOffset: at,
    };
    const align = u64(view, at + 48);
    raw.push(section);
    const where = `section ${index}`;
    if (index === 0) {
      if (section.type !== SHT_NULL) fail('section 0 is not SHT_NULL', where, at + 4);
      continue;
    }
    if (section.type !== SHT_NOBITS && section.type !== SHT_NULL && section.offset + section.size > length) {
      fail(
        `section bytes [${section.offset}, +${section.size}) lie outside the ${length}-byte file`,
        where,
        at + 24,
      );
    }
    if (section.link >= shnum)
      fail(`sh_link ${section.link} out of range (${shnum} sections)`, where, at + 40);
    if (align !== 0 && (align > 2 ** 32 || (align & (align - 1)) !== 0)) {
      fail(`alignment ${align} is not a power of two`, where, at + 48);
    }
  }

  const names = raw[shstrndx] as Omit<ElfSection, 'name'>;
  checkStringTable(bytes, names, `section ${shstrndx}`);
  const sections: ElfSection[] = raw.map((section) => {
    const nameOffset = view.getUint32(section.headerOffset, true);
    if (nameOffset >= names.size) {
      fail(
        `section name offset ${nameOffset} past the section name table`,
        `section ${section.index}`,
        section.headerOffset,
      );
    }
    return { ...section, name: cString(bytes, names.offset + nameOffset) };
  });

  let symbols: ElfSection | undefined;
  for (const section of sections) {
    if (section.type === SHT_STRTAB) checkStringTable(bytes, section, section.name);
    if (section.type === SHT_SYMTAB) {
      if (symbols !== undefined) fail('more than one symbol table', section.name, section.headerOffset);
      symbols = section;
    }
  }
  const symbolCount = symbols === undefined ? 0 : checkSymbols(bytes, view, sections, symbols);
  for (const section of sections) {
    if (section.type === SHT_REL || section.type === SHT_RELA) {
      checkRelocations(view, sections, section, symbols, symbolCount);
    }
  }
  return {
    sections,
    section: (name) => sections.find((section) => section.name === name),
  };
}

/** A string table must start and end with NUL, so every offset into it names a terminated string. */
function checkStringTable(bytes: Uint8Array, table: Omit<ElfSection, 'name'>, name: string): void {
  if (table.type !== SHT_STRTAB) fail(`a string table of type ${table.type}`, name, table.headerOffset + 4);
  if (table.size === 0) fail('empty string table', name, table.headerOffset + 32);
  if (bytes[table.offset] !== 0) fail('string table does not start with NUL', name, table.offset);
  if (bytes[table.offset + table.size - 1] !== 0) {
    fail('string table is not NUL-terminated', name, table.offset + table.size - 1);
  }
}

function cString(bytes: Uint8Array, at: number): string {
  const end = bytes.indexOf(0, at);
  return Buffer.from(bytes.buffer, bytes.byteOffset + at, end - at).toString('latin1');
}

function checkSymbols(
  bytes: Uint8Array,
  view: DataView,
  sections: readonly ElfSection[],
  symtab: ElfSection,
): number {
  if (symtab.entsize !== SYMBOL_SIZE)
    fail(`symbol size ${symtab.entsize}, expected ${SYMBOL_SIZE}`, symtab.name, symtab.headerOffset + 56);
  if (symtab.size % SYMBOL_SIZE !== 0)
    fail(`size ${symtab.size} is not a whole number of symbols`, symtab.name, symtab.headerOffset + 32);
  const strings = sections[symtab.link] as ElfSection;
  if (strings.type !== SHT_STRTAB)
    fail(`sh_link ${symtab.link} is not a string table`, symtab.name, symtab.headerOffset + 40);
  const count = symtab.size / SYMBOL_SIZE;
  if (symtab.info > count)
    fail(
      `first global symbol ${symtab.info} past the ${count} symbols`,
      symtab.name,
      symtab.headerOffset + 44,
    );
  for (let index = 0; index < count; index++) {
    const at = symtab.offset + index * SYMBOL_SIZE;
    const name = view.getUint32(at, true);
    if (name >= strings.size)
      fail(`symbol ${index}: name offset ${name} past its string table`, symtab.name, at);
    const shndx = view.getUint16(at + 6, true);
    if (shndx === 0 || shndx === SHN_ABS || shndx === SHN_COMMON) continue;
    if (shndx >= sections.length)
      fail(`symbol ${index}: section index ${shndx} out of range`, symtab.name, at + 6);
    const target = sections[shndx] as ElfSection;
    const value = u64(view, at + 8);
    const size = u64(view, at + 16);
    if (value + size > target.size) {
      fail(
        `symbol ${index} '${cString(bytes, strings.offset + name)}': [${value}, +${size}) lies outside section '${target.name}' (${target.size} bytes)`,
        symtab.name,
        at + 8,
      );
    }
  }
  return count;
}

function checkRelocations(
  view: DataView,
  sections: readonly ElfSection[],
  relocations: ElfSection,
  symtab: ElfSection | undefined,
  symbolCount: number,
): void {
  const rela = relocations.type === SHT_RELA;
  const entrySize = rela ? RELA_SIZE : REL_SIZE;
  const name = relocations.name;
  if (relocations.entsize !== entrySize)
    fail(
      `relocation size ${relocations.entsize}, expected ${entrySize}`,
      name,
      relocations.headerOffset + 56,
    );
  if (relocations.size % entrySize !== 0)
    fail(
      `size ${relocations.size} is not a whole number of relocations`,
      name,
      relocations.headerOffset + 32,
    );
  if (symtab === undefined || relocations.link !== symtab.index) {
    fail(`sh_link ${relocations.link} is not the symbol table`, name, relocations.headerOffset + 40);
  }
  if (relocations.info === 0 || relocations.info >= sections.length) {
    fail(`target section index ${relocations.info} out of range`, name, relocations.headerOffset + 44);
  }
  const target = sections[relocations.info] as ElfSection;
  if (target.type === SHT_NOBITS || target.type === SHT_NULL) {
    fail(
      `relocations apply to section '${target.name}', which has no bytes`,
      name,
      relocations.headerOffset + 44,
    );
  }
  for (let at = relocations.offset; at < relocations.offset + relocations.size; at += entrySize) {
    const offset = u64(view, at);
    const type = view.getUint32(at + 8, true);
    const symbol = view.getUint32(at + 12, true);
    const width = BPF_RELOCATION_WIDTHS.get(type);
    if (width === undefined) fail(`unknown BPF relocation type ${type}`, name, at + 8);
    if (symbol >= symbolCount)
      fail(`relocation symbol ${symbol} past the ${symbolCount} symbols`, name, at + 12);
    if (offset + width > target.size) {
      fail(
        `relocation at ${offset} (+${width} bytes) lies outside section '${target.name}' (${target.size} bytes)`,
        name,
        at,
      );
    }
  }
}
