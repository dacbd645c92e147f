/**
 * A structural check of an object's .BTF and .BTF.ext sections before libbpf parses them.
 * libbpf 1.1 checks each BTF type record's size but not what the records refer to: a member,
 * variable or array whose type id points past the last type, or a chain of typedefs that loops
 * back on itself, crashes or hangs it while it reads map definitions (later libbpf releases
 * added the same checks as btf_validate_type). So every type id, string offset and record
 * here is checked against the section that holds it, and the types that a value is built of
 * (everything but a pointer's target) must not form a cycle. Throws an ObjectDefect naming
 * the section and the file offset of the faulty field.
 */
import { ObjectDefect } from './object-defect.js';

const BTF_MAGIC = 0xeb9f;
const BTF_HEADER_SIZE = 24;
const BTF_TYPE_HEADER_SIZE = 12;
/** The kernel's limits (BTF_MAX_TYPE, BTF_MAX_NAME_OFFSET). */
const BTF_MAX_TYPE = 0x000fffff;
const BTF_MAX_NAME_OFFSET = 0x00ffffff;

const KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** Where a BTF section lies in the object file, so defects can name a file offset. */
export interface SectionBytes {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** File offset of bytes[0]. */
  readonly fileOffset: number;
}

/** What a valid .BTF section offers the .BTF.ext check. */
export interface CheckedBtf {
  readonly typeCount: number;
  readonly stringsLength: number;
  kindOf(typeId: number): number;
}

function failAt(check: 'btf' | 'btf.ext', section: SectionBytes, problem: string, at: number): never {
  throw new ObjectDefect(check, problem, section.name, section.fileOffset + at);
}

export function checkBtf(section: SectionBytes): CheckedBtf {
  const { bytes } = section;
  const fail: (problem: string, at: number) => never = (problem, at) => failAt('btf', section, problem, at);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < BTF_HEADER_SIZE) fail(`${bytes.byteLength} bytes is too short for a BTF header`, 0);
  if (view.getUint16(0, true) !== BTF_MAGIC) fail('bad BTF magic', 0);
  if (bytes[2] !== 1) fail(`unknown BTF version ${bytes[2]}`, 2);
  if (bytes[3] !== 0) fail(`unknown BTF flags ${bytes[3]}`, 3);
  const headerLength = view.getUint32(4, true);
  if (headerLength < BTF_HEADER_SIZE || headerLength > bytes.byteLength)
    fail(`BTF header length ${headerLength} out of range`, 4);
  for (let at = BTF_HEADER_SIZE; at < headerLength; at++) {
    if (bytes[at] !== 0) fail('unknown BTF header fields are not zero', at);
  }
  const typeOffset = view.getUint32(8, true);
  const typeLength = view.getUint32(12, true);
  const stringOffset = view.getUint32(16, true);
  const stringLength = view.getUint32(20, true);
  const dataLength = bytes.byteLength - headerLength;
  if (typeOffset % 4 !== 0) fail(`type section offset ${typeOffset} is not 4-byte aligned`, 8);
  if (typeOffset + typeLength > dataLength)
    fail(`type section [${typeOffset}, +${typeLength}) past the BTF data`, 8);
  if (stringOffset + stringLength > dataLength)
    fail(`string section [${stringOffset}, +${stringLength}) past the BTF data`, 16);
  if (typeOffset < stringOffset + stringLength && stringOffset < typeOffset + typeLength) {
    fail('type and string sections overlap', 8);
  }
  if (stringLength === 0 || stringLength > BTF_MAX_NAME_OFFSET + 1)
    fail(`string section length ${stringLength} out of range`, 20);
  const strings = headerLength + stringOffset;
  if (bytes[strings] !== 0) fail('string section does not start with NUL', strings);
  if (bytes[strings + stringLength - 1] !== 0)
    fail('string section is not NUL-terminated', strings + stringLength - 1);
  const checkName = (nameOffset: number, what: string, at: number): void => {
    if (nameOffset >= stringLength)
      fail(`${what}: name offset ${nameOffset} past the ${stringLength}-byte string section`, at);
  };

  // Pass 1: walk the records, check each one's extent and names, and collect its type
  // references (edges) so pass 2 can check them against the final type count.
  const start = headerLength + typeOffset;
  const end = start + typeLength;
  const kinds: number[] = [0]; // type 0 is void
  const recordAt: number[] = [0];
  /** Per type: [first edge, end) in edgeTargets; edges of pointers are kept apart (they may close a cycle). */
  const edgeStart: number[] = [0, 0];
  const edgeTargets: number[] = [];
  const edgeFieldAt: number[] = [];
  const edgeIsPointer: boolean[] = [];
  const addEdge = (target: number, at: number, pointer = false): void => {
    edgeTargets.push(target);
    edgeFieldAt.push(at);
    edgeIsPointer.push(pointer);
  };
  let at = start;
  while (at < end) {
    const id = kinds.length;
    if (id > BTF_MAX_TYPE) fail(`more than ${BTF_MAX_TYPE} types`, at);
    if (at + BTF_TYPE_HEADER_SIZE > end) fail(`type ${id}: record header runs past the type section`, at);
    const info = view.getUint32(at + 4, true);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const type = view.getUint32(at + 8, true);
    checkName(view.getUint32(at, true), `type ${id}`, at);
    const body = at + BTF_TYPE_HEADER_SIZE;
    const bodySize = bodySizeOf(kind, vlen);
    if (bodySize === undefined) fail(`type ${id}: unknown BTF kind ${kind}`, at + 4);
    if (body + bodySize > end)
      fail(`type ${id}: record of ${BTF_TYPE_HEADER_SIZE + bodySize} bytes runs past the type section`, at);
    switch (kind) {
      case KIND.PTR:
        addEdge(type, at + 8, true);
        break;
      case KIND.TYPEDEF:
      case KIND.VOLATILE:
      case KIND.CONST:
      case KIND.RESTRICT:
      case KIND.FUNC:
      case KIND.VAR:
      case KIND.DECL_TAG:
      case KIND.TYPE_TAG:
      case KIND.FUNC_PROTO: // its return type
        addEdge(type, at + 8);
        break;
      case KIND.ARRAY:
        addEdge(view.getUint32(body, true), body);
        addEdge(view.getUint32(body + 4, true), body + 4);
        break;
      default:
        break;
    }
    for (let member = 0; member < vlen; member++) {
      switch (kind) {
        case KIND.STRUCT:
        case KIND.UNION: {
          const field = body + member * 12;
          checkName(view.getUint32(field, true), `type ${id} member ${member}`, field);
          addEdge(view.getUint32(field + 4, true), field + 4);
          break;
        }
        case KIND.ENUM:
        case KIND.ENUM64: {
          const field = body + member * (kind === KIND.ENUM ? 8 : 12);
          checkName(view.getUint32(field, true), `type ${id} enumerator ${member}`, field);
          break;
        }
        case KIND.FUNC_PROTO: {
          const field = body + member * 8;
          checkName(view.getUint32(field, true), `type ${id} parameter ${member}`, field);
          addEdge(view.getUint32(field + 4, true), field + 4);
          break;
        }
        case KIND.DATASEC: {
          const field = body + member * 12;
          addEdge(view.getUint32(field, true), field);
          break;
        }
        default:
          break;
      }
    }
    kinds.push(kind);
    recordAt.push(at);
    edgeStart.push(edgeTargets.length);
    at = body + bodySize;
  }
  const typeCount = kinds.length - 1;

  // Pass 2: every reference names an existing type, of the kind its referrer needs.
  for (let id = 1; id <= typeCount; id++) {
    const kind = kinds[id] as number;
    for (let edge = edgeStart[id] as number; edge < (edgeStart[id + 1] as number); edge++) {
      const target = edgeTargets[edge] as number;
      const field = edgeFieldAt[edge] as number;
      if (target > typeCount)
        fail(`type ${id}: refers to type ${target}, past the last type ${typeCount}`, field);
      const targetKind = kinds[target] as number;
      if (kind === KIND.FUNC && targetKind !== KIND.FUNC_PROTO)
        fail(`FUNC ${id} does not point to a FUNC_PROTO`, field);
      if (kind === KIND.DATASEC && targetKind !== KIND.VAR && targetKind !== KIND.FUNC) {
        fail(`DATASEC ${id}: entry type ${target} is not a VAR or FUNC`, field);
      }
      if ((kind === KIND.VAR || kind === KIND.ARRAY) && target === 0 && edge === (edgeStart[id] as number)) {
        fail(`type ${id}: ${kind === KIND.VAR ? 'variable' : 'array element'} of type void`, field);
      }
    }
  }

  // Pass 3: no cycle through anything but a pointer (a typedef of itself, a struct holding
  // itself): libbpf would follow it forever. Iterative, so deep chains cannot overflow.
  const state = new Uint8Array(typeCount + 1); // 0 unseen, 1 on the path, 2 done
  const stack: number[] = [];
  const nextEdge: number[] = [];
  for (let root = 1; root <= typeCount; root++) {
    if (state[root] !== 0) continue;
    stack.push(root);
    nextEdge.push(edgeStart[root] as number);
    state[root] = 1;
    while (stack.length > 0) {
      const top = stack.length - 1;
      const id = stack[top] as number;
      const edge = nextEdge[top] as number;
      if (edge >= (edgeStart[id + 1] as number)) {
        state[id] = 2;
        stack.pop();
        nextEdge.pop();
        continue;
      }
      nextEdge[top] = edge + 1;
      if (edgeIsPointer[edge]) continue;
      const target = edgeTargets[edge] as number;
      if (state[target] === 1)
        fail(
          `type ${id}: refers back to type ${target}, a cycle not through a pointer`,
          edgeFieldAt[edge] as number,
        );
      if (state[target] === 0 && target !== 0) {
        state[target] = 1;
        stack.push(target);
        nextEdge.push(edgeStart[target] as number);
      }
    }
  }

  return {
    typeCount,
    stringsLength: stringLength,
    kindOf: (typeId) => kinds[typeId] ?? -1,
  };
}

/** Bytes that follow a type's 12-byte header, by kind; undefined for an unknown kind. */
function bodySizeOf(kind: number, vlen: number): number | undefined {
  switch (kind) {
    case KIND.INT:
    case KIND.VAR:
    case KIND.DECL_TAG:
      return 4;
    case KIND.PTR:
    case KIND.FWD:
    case KIND.TYPEDEF:
    case KIND.VOLATILE:
    case KIND.CONST:
    case KIND.RESTRICT:
    case KIND.FUNC:
    case KIND.FLOAT:
    case KIND.TYPE_TAG:
      return 0;
    case KIND.ARRAY:
      return 12;
    case KIND.STRUCT:
    case KIND.UNION:
    case KIND.DATASEC:
    case KIND.ENUM64:
      return vlen * 12;
    case KIND.ENUM:
    case KIND.FUNC_PROTO:
      return vlen * 8;
    default:
      return undefined;
  }
}

const BTF_EXT_MIN_HEADER = 24;
/** The three record kinds of .BTF.ext: where their (offset, length) sits in the header, their minimum record size. */
const EXT_INFOS = [
  { what: 'func_info', headerField: 8, minRecord: 8 },
  { what: 'line_info', headerField: 16, minRecord: 16 },
  { what: 'core_relo', headerField: 24, minRecord: 16 },
] as const;
const BPF_INSN_SIZE = 8;
/** enum bpf_core_relo_kind: FIELD_BYTE_OFFSET (0) .. TYPE_MATCHES (12). */
const MAX_CORE_RELO_KIND = 12;
const ACCESS_STRING = /^[0-9]+(:[0-9]+)*$/;

/**
 * Checks .BTF.ext against the object's valid .BTF: header, each info block's extent and record
 * size, and every type id, string offset and instruction offset in its records.
 * `sectionSize(name)` gives the size of the ELF section of that name, or undefined.
 */
export function checkBtfExt(
  section: SectionBytes,
  btf: CheckedBtf,
  btfStrings: (offset: number) => string,
  sectionSize: (name: string) => number | undefined,
): void {
  const { bytes } = section;
  const fail: (problem: string, at: number) => never = (problem, at) =>
    failAt('btf.ext', section, problem, at);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < BTF_EXT_MIN_HEADER)
    fail(`${bytes.byteLength} bytes is too short for a BTF.ext header`, 0);
  if (view.getUint16(0, true) !== BTF_MAGIC) fail('bad BTF.ext magic', 0);
  if (bytes[2] !== 1) fail(`unknown BTF.ext version ${bytes[2]}`, 2);
  if (bytes[3] !== 0) fail(`unknown BTF.ext flags ${bytes[3]}`, 3);
  const headerLength = view.getUint32(4, true);
  if (headerLength < BTF_EXT_MIN_HEADER || headerLength > bytes.byteLength)
    fail(`BTF.ext header length ${headerLength} out of range`, 4);
  const dataLength = bytes.byteLength - headerLength;
  const checkString = (offset: number, what: string, at: number): void => {
    if (offset >= btf.stringsLength) fail(`${what}: string offset ${offset} past the BTF strings`, at);
  };
  const checkType = (typeId: number, what: string, at: number): void => {
    if (typeId === 0 || typeId > btf.typeCount)
      fail(`${what}: type id ${typeId} out of range (1..${btf.typeCount})`, at);
  };

  for (const info of EXT_INFOS) {
    if (info.headerField + 8 > headerLength) continue; // an older header without this block
    const offset = view.getUint32(info.headerField, true);
    const length = view.getUint32(info.headerField + 4, true);
    if (length === 0) continue;
    if (offset % 4 !== 0) fail(`${info.what} offset ${offset} is not 4-byte aligned`, info.headerField);
    if (offset + length > dataLength)
      fail(`${info.what} block [${offset}, +${length}) past the BTF.ext data`, info.headerField);
    const blockStart = headerLength + offset;
    const blockEnd = blockStart + length;
    if (length < 4) fail(`${info.what} block too short for its record size`, blockStart);
    const recordSize = view.getUint32(blockStart, true);
    if (recordSize < info.minRecord || recordSize % 4 !== 0)
      fail(`${info.what} record size ${recordSize} invalid`, blockStart);
    let at = blockStart + 4;
    while (at < blockEnd) {
      if (at + 8 > blockEnd) fail(`${info.what}: section header runs past the block`, at);
      const nameOffset = view.getUint32(at, true);
      const count = view.getUint32(at + 4, true);
      checkString(nameOffset, `${info.what} section name`, at);
      if (count === 0) fail(`${info.what}: a section with no records`, at + 4);
      const records = at + 8;
      if (records + count * recordSize > blockEnd)
        fail(`${info.what}: ${count} records run past the block`, at + 4);
      const sectionName = btfStrings(nameOffset);
      const insnLimit = sectionSize(sectionName);
      for (let index = 0; index < count; index++) {
        const record = records + index * recordSize;
        const what = `${info.what} ${index} of '${sectionName}'`;
        const insnOffset = view.getUint32(record, true);
        if (insnOffset % BPF_INSN_SIZE !== 0)
          fail(`${what}: instruction offset ${insnOffset} not a multiple of ${BPF_INSN_SIZE}`, record);
        if (insnLimit !== undefined && insnOffset >= insnLimit) {
          fail(`${what}: instruction offset ${insnOffset} past the ${insnLimit}-byte section`, record);
        }
        if (info.what === 'func_info') {
          const typeId = view.getUint32(record + 4, true);
          checkType(typeId, what, record + 4);
          if (btf.kindOf(typeId) !== KIND.FUNC) fail(`${what}: type ${typeId} is not a FUNC`, record + 4);
        } else if (info.what === 'line_info') {
          checkString(view.getUint32(record + 4, true), `${what} file name`, record + 4);
          checkString(view.getUint32(record + 8, true), `${what} line`, record + 8);
        } else {
          checkType(view.getUint32(record + 4, true), what, record + 4);
          const access = view.getUint32(record + 8, true);
          checkString(access, `${what} access string`, record + 8);
          if (!ACCESS_STRING.test(btfStrings(access)))
            fail(`${what}: access string '${btfStrings(access)}' is not n[:n...]`, record + 8);
          const kind = view.getUint32(record + 12, true);
          if (kind > MAX_CORE_RELO_KIND) fail(`${what}: unknown CO-RE relocation kind ${kind}`, record + 12);
        }
      }
      at = records + count * recordSize;
    }
  }
}
