/**
 * A small reader of the WebAssembly binary format: just enough structure for the policy
 * checks at prepare (imports with their limits, memories, export signatures).
 *
 * `WebAssembly.Module.imports()` names imports but not the limits of an imported memory or
 * table, says nothing about defined memories (max, shared, memory64) and nothing about
 * function signatures; this parser does. It is not a validator: V8 validates the whole
 * module when the backend compiles it. It is strict about what it reads (every LEB128, every
 * section size, section order) and turns anything it cannot read into ProgramRejectedError
 * 'WASM_MALFORMED' with the byte offset, never an exception of another type.
 */

import { ProgramRejectedError } from '../../runtime/errors.js';

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

/** Limits of a memory (in 64 KiB pages) or a table (in elements). */
export interface Limits {
  readonly min: number;
  /** Absent when the module declares no maximum. */
  readonly max: number | undefined;
  /** threads proposal */
  readonly shared: boolean;
  /** memory64 proposal: 64-bit addresses */
  readonly memory64: boolean;
}

export type ExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag';

export type ImportDesc =
  | { readonly kind: 'function'; readonly typeIndex: number }
  | { readonly kind: 'table'; readonly elemType: ValType; readonly limits: Limits }
  | { readonly kind: 'memory'; readonly limits: Limits }
  | { readonly kind: 'global'; readonly valType: ValType; readonly mutable: boolean }
  | { readonly kind: 'tag'; readonly typeIndex: number };

export type ModuleImport = { readonly module: string; readonly name: string } & ImportDesc;

export interface ModuleExport {
  readonly name: string;
  readonly kind: ExternKind;
  readonly index: number;
}

export interface ModuleInfo {
  readonly types: readonly FuncType[];
  readonly imports: readonly ModuleImport[];
  /** Type index of each function the module defines (after the imported ones in the index space). */
  readonly functions: readonly number[];
  readonly tables: readonly Limits[];
  /** Memories the module defines (imported ones are in `imports`). */
  readonly memories: readonly Limits[];
  readonly exports: readonly ModuleExport[];
  /** A start function runs during instantiation, i.e. inside every execution. */
  readonly hasStart: boolean;
}

export const WASM_PAGE_BYTES = 65536;

const MAGIC = 0x6d736100; // "\0asm" read little-endian
const CORE_VERSION = 1;

const VALTYPES: ReadonlyMap<number, ValType> = new Map([
  [0x7f, 'i32'],
  [0x7e, 'i64'],
  [0x7d, 'f32'],
  [0x7c, 'f64'],
  [0x7b, 'v128'],
  [0x70, 'funcref'],
  [0x6f, 'externref'],
]);

const EXTERN_KINDS: readonly ExternKind[] = ['function', 'table', 'memory', 'global', 'tag'];

// Position of each known section id in the order the spec requires (custom sections, id 0,
// may appear anywhere). Ids 12 (data count) and 13 (tag) sit out of numeric order.
const SECTION_ORDER: Readonly<Record<number, number>> = {
  1: 1, // type
  2: 2, // import
  3: 3, // function
  4: 4, // table
  5: 5, // memory
  13: 6, // tag
  6: 7, // global
  7: 8, // export
  8: 9, // start
  9: 10, // element
  12: 11, // data count
  10: 12, // code
  11: 13, // data
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(offset: number, what: string): ProgramRejectedError {
  return new ProgramRejectedError(
    'WASM_MALFORMED',
    'malformed',
    `malformed wasm at byte ${offset} (0x${offset.toString(16)}): ${what}`,
  );
}

class Reader {
  pos: number;
  end: number;

  constructor(
    readonly bytes: Uint8Array,
    start: number,
    end: number,
  ) {
    this.pos = start;
    this.end = end;
  }

  byte(what: string): number {
    if (this.pos >= this.end) throw malformed(this.pos, `unexpected end while reading ${what}`);
    return this.bytes[this.pos++]!;
  }

  u32(what: string): number {
    const start = this.pos;
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte(what);
      if (i === 4 && b > 0x0f) throw malformed(start, `${what}: LEB128 u32 out of range`);
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw malformed(start, `${what}: LEB128 u32 longer than 5 bytes`);
  }

  /** u64 LEB128 (memory64 limits); exact up to 2^53, which is more pages than any cap. */
  u64(what: string): number {
    const start = this.pos;
    let result = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(what);
      if (i === 9 && b > 0x01) throw malformed(start, `${what}: LEB128 u64 out of range`);
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw malformed(start, `${what}: LEB128 u64 longer than 10 bytes`);
  }

  name(what: string): string {
    const len = this.u32(`${what} length`);
    const start = this.pos;
    if (len > this.end - start) throw malformed(start, `${what} runs past its section`);
    this.pos += len;
    try {
      return utf8.decode(this.bytes.subarray(start, start + len));
    } catch {
      throw malformed(start, `${what} is not valid UTF-8`);
    }
  }

  valType(what: string): ValType {
    const at = this.pos;
    const code = this.byte(what);
    const t = VALTYPES.get(code);
    if (t === undefined)
      throw malformed(at, `${what}: unknown or unsupported value type 0x${code.toString(16)}`);
    return t;
  }

  limits(what: string): Limits {
    const at = this.pos;
    const flags = this.byte(`${what} flags`);
    if (flags > 0x07) throw malformed(at, `${what}: unknown limits flags 0x${flags.toString(16)}`);
    const memory64 = (flags & 0x04) !== 0;
    const read = memory64 ? () => this.u64(what) : () => this.u32(what);
    const min = read();
    const max = (flags & 0x01) !== 0 ? read() : undefined;
    return { min, max, shared: (flags & 0x02) !== 0, memory64 };
  }

  /** A vector's element count, sanity-checked against the bytes left (each element is >= 1 byte). */
  count(what: string): number {
    const at = this.pos;
    const n = this.u32(`${what} count`);
    if (n > this.end - this.pos) throw malformed(at, `${what} count ${n} exceeds the section's size`);
    return n;
  }
}

function readTypes(r: Reader, types: FuncType[]): void {
  const n = r.count('type');
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const form = r.byte('type form');
    if (form !== 0x60) {
      throw malformed(at, `type ${i}: unsupported type form 0x${form.toString(16)} (only function types)`);
    }
    const params: ValType[] = [];
    const np = r.count('param');
    for (let j = 0; j < np; j++) params.push(r.valType('param type'));
    const results: ValType[] = [];
    const nr = r.count('result');
    for (let j = 0; j < nr; j++) results.push(r.valType('result type'));
    types.push({ params, results });
  }
}

function readImports(r: Reader, imports: ModuleImport[]): void {
  const n = r.count('import');
  for (let i = 0; i < n; i++) {
    const module = r.name('import module name');
    const name = r.name('import field name');
    const at = r.pos;
    const kind = r.byte('import kind');
    switch (kind) {
      case 0x00:
        imports.push({ module, name, kind: 'function', typeIndex: r.u32('import type index') });
        break;
      case 0x01: {
        const elemType = r.valType('table element type');
        imports.push({ module, name, kind: 'table', elemType, limits: r.limits('table limits') });
        break;
      }
      case 0x02:
        imports.push({ module, name, kind: 'memory', limits: r.limits('memory limits') });
        break;
      case 0x03: {
        const valType = r.valType('global type');
        const mutAt = r.pos;
        const mut = r.byte('global mutability');
        if (mut > 1) throw malformed(mutAt, `global mutability 0x${mut.toString(16)}`);
        imports.push({ module, name, kind: 'global', valType, mutable: mut === 1 });
        break;
      }
      case 0x04: {
        const attrAt = r.pos;
        if (r.byte('tag attribute') !== 0) throw malformed(attrAt, 'unknown tag attribute');
        imports.push({ module, name, kind: 'tag', typeIndex: r.u32('tag type index') });
        break;
      }
      default:
        throw malformed(at, `unknown import kind 0x${kind.toString(16)}`);
    }
  }
}

function readExports(r: Reader, exports: ModuleExport[]): void {
  const n = r.count('export');
  for (let i = 0; i < n; i++) {
    const name = r.name('export name');
    const at = r.pos;
    const kind = EXTERN_KINDS[r.byte('export kind')];
    if (kind === undefined) throw malformed(at, 'unknown export kind');
    exports.push({ name, kind, index: r.u32('export index') });
  }
}

/** Parse the module structure; throws ProgramRejectedError('WASM_MALFORMED') and nothing else. */
export function parseModule(bytes: Uint8Array): ModuleInfo {
  if (bytes.byteLength < 8) throw malformed(bytes.byteLength, 'too short for the wasm header (8 bytes)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw malformed(0, 'missing the \\0asm magic number');
  const version = view.getUint32(4, true);
  if (version !== CORE_VERSION) {
    // Components use version 0x0d with layer 1 in the upper half.
    const what =
      view.getUint16(6, true) === 1 ? 'a component (layer 1), not a core module' : `version ${version}`;
    throw malformed(4, `unsupported binary: ${what}`);
  }

  const types: FuncType[] = [];
  const imports: ModuleImport[] = [];
  const functions: number[] = [];
  const tables: Limits[] = [];
  const memories: Limits[] = [];
  const exports: ModuleExport[] = [];
  let hasStart = false;
  let codeSeen = false;

  const top = new Reader(bytes, 8, bytes.byteLength);
  let lastRank = 0;
  while (top.pos < top.end) {
    const idAt = top.pos;
    const id = top.byte('section id');
    const size = top.u32('section size');
    const start = top.pos;
    if (size > top.end - start) throw malformed(idAt, `section ${id} size ${size} runs past the end`);
    const r = new Reader(bytes, start, start + size);
    if (id === 0) {
      r.name('custom section name'); // contents are the producer's business
    } else {
      const rank = SECTION_ORDER[id];
      if (rank === undefined) throw malformed(idAt, `unknown section id ${id}`);
      if (rank <= lastRank) throw malformed(idAt, `section ${id} is duplicated or out of order`);
      lastRank = rank;
      switch (id) {
        case 1:
          readTypes(r, types);
          break;
        case 2:
          readImports(r, imports);
          break;
        case 3: {
          const n = r.count('function');
          for (let i = 0; i < n; i++) functions.push(r.u32('function type index'));
          break;
        }
        case 4: {
          const n = r.count('table');
          for (let i = 0; i < n; i++) {
            const at = r.pos;
            if (r.bytes[at] === 0x40)
              throw malformed(at, 'tables with initializer expressions are not supported');
            r.valType('table element type');
            tables.push(r.limits('table limits'));
          }
          break;
        }
        case 5: {
          const n = r.count('memory');
          for (let i = 0; i < n; i++) memories.push(r.limits('memory limits'));
          break;
        }
        case 7:
          readExports(r, exports);
          break;
        case 8:
          r.u32('start function index');
          hasStart = true;
          break;
        case 10: {
          const at = r.pos;
          const n = r.u32('code count');
          if (n !== functions.length) {
            throw malformed(at, `code section has ${n} bodies for ${functions.length} declared functions`);
          }
          codeSeen = true;
          r.pos = r.end; // function bodies: V8 validates them
          break;
        }
        default:
          r.pos = r.end; // global, element, code, data...: V8 validates them
      }
      if (r.pos !== r.end) throw malformed(r.pos, `section ${id} has ${r.end - r.pos} trailing bytes`);
    }
    top.pos = start + size;
  }
  if (functions.length > 0 && !codeSeen) {
    throw malformed(
      bytes.byteLength,
      `${functions.length} functions declared but the code section is missing`,
    );
  }
  return { types, imports, functions, tables, memories, exports, hasStart };
}

/** The signature of function `index` in the module's function index space (imports first). */
export function functionType(info: ModuleInfo, index: number): FuncType | undefined {
  let imported = 0;
  for (const imp of info.imports) {
    if (imp.kind !== 'function') continue;
    if (imported === index) return info.types[imp.typeIndex];
    imported++;
  }
  const typeIndex = info.functions[index - imported];
  return typeIndex === undefined ? undefined : info.types[typeIndex];
}

/** The signature of the exported function `name`, or undefined if there is no such function export. */
export function exportedFunctionType(info: ModuleInfo, name: string): FuncType | undefined {
  const exp = info.exports.find((e) => e.name === name && e.kind === 'function');
  return exp === undefined ? undefined : functionType(info, exp.index);
}

export function sameSignature(t: FuncType, params: readonly ValType[], results: readonly ValType[]): boolean {
  return (
    t.params.length === params.length &&
    t.results.length === results.length &&
    t.params.every((p, i) => p === params[i]) &&
    t.results.every((p, i) => p === results[i])
  );
}
