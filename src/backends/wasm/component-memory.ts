/**
 * Virtual memory size for a component's core modules, so one instance can be reused.
 *
 * Why: a reused instance is restored to its post-instantiation snapshot after each run, but
 * wasm memory cannot shrink, and components built with the preview 1 adapter grow memory on
 * EVERY run (the adapter's bump allocator takes a fresh page for its State the first time a
 * WASI call is made). Restoring to a bigger memory would show the guest a different
 * `memory.size` and different `memory.grow` results than a fresh instance.
 *
 * So, after instrumentation (instrument.ts has already charged memory.grow by its operand, so
 * fuel is unchanged), every `memory.size` becomes `global.get $pages` and every `memory.grow`
 * a call to an appended, unmetered `$grow`, where `$pages` is an imported mutable i32 global
 * (`__thunderpac.pages`) shared by all core modules that see the same memory. `$grow` does
 * what memory.grow does on the virtual size and only grows the real memory when the virtual
 * size passes it. The real memory is then sized once, right after instantiation, to a fixed
 * `virtual + COMPONENT_HEADROOM_PAGES` (component-instance.ts) on fresh and reused instances
 * alike, so everything a guest can observe (including an access past `memory.size` but below
 * that size, which reads zeros instead of trapping) is the same on both.
 *
 * Modules with no memory.size / memory.grow are left as they are. Modules this rewriter does
 * not handle (element segments in expression form) are reported as such, and the component
 * then runs on a fresh instance per execution.
 */

import { ByteReader, type Decoded, decode, decoded, uleb } from './code-reader.js';

/** Import module and name of the shared virtual page count. */
export const PAGES_IMPORT = ['__thunderpac', 'pages'] as const;

export type VirtualizeResult =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'rewritten'; readonly bytes: Uint8Array }
  | { readonly kind: 'unsupported'; readonly why: string };

interface Section {
  readonly id: number;
  readonly body: Uint8Array;
}

function sections(bytes: Uint8Array): Section[] {
  const r = new ByteReader(bytes, 8, bytes.byteLength);
  const out: Section[] = [];
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    out.push({ id, body: bytes.subarray(r.pos, r.pos + size) });
    r.skip(size);
  }
  return out;
}

/** Skip a constant expression (up to its `end`), shifting `global.get` indices. */
function constExpr(r: ByteReader, out: number[], shift: (g: number) => number): void {
  for (;;) {
    const op = r.byte();
    out.push(op);
    if (op === 0x0b) return;
    if (op === 0x23) out.push(...uleb(shift(r.u32())));
    else if (op === 0x41 || op === 0x42) {
      const s = r.pos;
      r.skipLeb(10);
      out.push(...r.bytes.subarray(s, r.pos));
    } else if (op === 0x43) {
      out.push(...r.bytes.subarray(r.pos, r.pos + 4));
      r.skip(4);
    } else if (op === 0x44) {
      out.push(...r.bytes.subarray(r.pos, r.pos + 8));
      r.skip(8);
    } else if (op === 0xd2) out.push(...uleb(r.u32()));
    else if (op === 0xd0) out.push(r.byte());
    else throw new Error(`constant expression opcode 0x${op.toString(16)}`);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

/** Rewrite memory.size / memory.grow onto the imported virtual page count (see above). */
export function virtualizeMemory(bytes: Uint8Array): VirtualizeResult {
  const secs = sections(bytes);
  const code = secs.find((s) => s.id === 10);
  if (code === undefined || !usesMemorySize(code.body)) return { kind: 'unchanged' };
  if (secs.some((s) => s.id === 9 && elemUsesExpressions(s.body)))
    return { kind: 'unsupported', why: 'element segments in expression form' };

  // Counts before the rewrite: imported functions and globals, defined functions, types.
  let importedFuncs = 0;
  let importedGlobals = 0;
  const imports = secs.find((s) => s.id === 2);
  const importEntries: number[][] = [];
  if (imports !== undefined) {
    const r = new ByteReader(imports.body, 0, imports.body.byteLength);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const start = r.pos;
      r.skip(r.u32());
      r.skip(r.u32());
      const kind = r.byte();
      if (kind === 0) {
        importedFuncs++;
        r.u32();
      } else if (kind === 1) {
        r.byte();
        const flags = r.byte();
        r.u32();
        if (flags & 1) r.u32();
      } else if (kind === 2) {
        const flags = r.byte();
        r.skipLeb(10);
        if (flags & 1) r.skipLeb(10);
      } else if (kind === 3) {
        importedGlobals++;
        r.byte();
        r.byte();
      } else return { kind: 'unsupported', why: `import kind ${kind}` };
      importEntries.push([...imports.body.subarray(start, r.pos)]);
    }
  }
  const countOf = (id: number): number => {
    const s = secs.find((x) => x.id === id);
    return s === undefined ? 0 : new ByteReader(s.body, 0, s.body.byteLength).u32();
  };
  const types = countOf(1);
  const definedFuncs = countOf(3);
  const pagesGlobal = importedGlobals; // the new import goes after the imported globals
  const growFunc = importedFuncs + definedFuncs; // appended: no function index moves
  const shift = (g: number): number => (g >= importedGlobals ? g + 1 : g);
  const enc = new TextEncoder();
  const name = (s: string): number[] => [...uleb(enc.encode(s).length), ...enc.encode(s)];

  const out: Section[] = [];
  const put = (id: number, body: number[] | Uint8Array): void => {
    out.push({ id, body: body instanceof Uint8Array ? body : Uint8Array.from(body) });
  };
  const has = (id: number): boolean => secs.some((s) => s.id === id);
  for (const s of secs) {
    switch (s.id) {
      case 0:
        break; // custom sections (names): their global indices would be stale
      case 1: {
        const r = new ByteReader(s.body, 0, s.body.byteLength);
        r.u32();
        put(1, [...uleb(types + 1), ...s.body.subarray(r.pos), 0x60, 1, 0x7f, 1, 0x7f]);
        break;
      }
      case 2:
        put(2, vec([...importEntries, [...name(PAGES_IMPORT[0]), ...name(PAGES_IMPORT[1]), 3, 0x7f, 1]]));
        break;
      case 3: {
        const r = new ByteReader(s.body, 0, s.body.byteLength);
        r.u32();
        put(3, [...uleb(definedFuncs + 1), ...s.body.subarray(r.pos), ...uleb(types)]);
        break;
      }
      case 6: {
        const r = new ByteReader(s.body, 0, s.body.byteLength);
        const n = r.u32();
        const body: number[] = [...uleb(n)];
        for (let i = 0; i < n; i++) {
          body.push(r.byte(), r.byte());
          constExpr(r, body, shift);
        }
        put(6, body);
        break;
      }
      case 7: {
        const r = new ByteReader(s.body, 0, s.body.byteLength);
        const n = r.u32();
        const body: number[] = [...uleb(n)];
        for (let i = 0; i < n; i++) {
          const len = r.u32();
          body.push(...uleb(len), ...s.body.subarray(r.pos, r.pos + len));
          r.skip(len);
          const kind = r.byte();
          const idx = r.u32();
          body.push(kind, ...uleb(kind === 3 ? shift(idx) : idx));
        }
        put(7, body);
        break;
      }
      case 9:
      case 11:
        put(s.id, segmentsShifted(s.id, s.body, shift));
        break;
      case 10:
        put(10, codeRewritten(s.body, pagesGlobal, growFunc, shift));
        break;
      default:
        put(s.id, s.body);
    }
    // Sections the rewrite needs but the module lacks (a module with code has types and functions).
    if (s.id === 1 && !has(2))
      put(2, vec([[...name(PAGES_IMPORT[0]), ...name(PAGES_IMPORT[1]), 3, 0x7f, 1]]));
  }
  const parts: number[] = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  for (const s of out) parts.push(s.id, ...uleb(s.body.byteLength), ...s.body);
  return { kind: 'rewritten', bytes: Uint8Array.from(parts) };
}

function usesMemorySize(code: Uint8Array): boolean {
  let found = false;
  forEachInstruction(code, (op) => {
    if (op === 0x3f || op === 0x40) found = true;
  });
  return found;
}

/** Walk every instruction of a code section body, calling `visit(opcode, start)`. */
function forEachInstruction(code: Uint8Array, visit: (op: number, at: number, r: ByteReader) => void): void {
  const r = new ByteReader(code, 0, code.byteLength);
  const n = r.u32();
  const d: Decoded = decoded();
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const end = r.pos + size;
    const body = new ByteReader(code, r.pos, end);
    const groups = body.u32();
    for (let g = 0; g < groups; g++) {
      body.u32();
      body.byte();
    }
    while (body.pos < end) {
      const at = body.pos;
      visit(code[at]!, at, body);
      body.pos = at;
      decode(body, d);
    }
    r.pos = end;
  }
}

function codeRewritten(
  code: Uint8Array,
  pagesGlobal: number,
  growFunc: number,
  shift: (g: number) => number,
): number[] {
  const r = new ByteReader(code, 0, code.byteLength);
  const n = r.u32();
  const out: number[] = [...uleb(n + 1)];
  const d: Decoded = decoded();
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const end = r.pos + size;
    const b = new ByteReader(code, r.pos, end);
    const groups = b.u32();
    for (let g = 0; g < groups; g++) {
      b.u32();
      b.byte();
    }
    const body: number[] = [...code.subarray(r.pos, b.pos)];
    while (b.pos < end) {
      const at = b.pos;
      const op = code[at]!;
      if ((op === 0x3f || op === 0x40) && code[at + 1] === 0) {
        // memory.size 0 / memory.grow 0 (multi-memory is refused by the feature gate)
        body.push(...(op === 0x3f ? [0x23, ...uleb(pagesGlobal)] : [0x10, ...uleb(growFunc)]));
        b.pos = at + 2;
        continue;
      }
      if (op === 0x23 || op === 0x24) {
        b.pos = at + 1;
        body.push(op, ...uleb(shift(b.u32())));
        continue;
      }
      decode(b, d);
      body.push(...code.subarray(at, b.pos));
    }
    out.push(...uleb(body.length), ...body);
    r.pos = end;
  }
  // $grow (param n i32) (result i32) (local old i32) (local new i32): memory.grow on the
  // virtual size; the real memory grows only past it. Unmetered: its caller was charged.
  const P = uleb(pagesGlobal);
  const grow = [
    1,
    2,
    0x7f, // 2 locals i32: old (1), new (2)
    0x23,
    ...P,
    0x21,
    1, // old = pages
    0x20,
    1,
    0x20,
    0,
    0x6a,
    0x21,
    2, // new = old + n
    0x20,
    2,
    0x20,
    1,
    0x49,
    0x04,
    0x40,
    0x41,
    0x7f,
    0x0f,
    0x0b, // if new <u old: return -1
    0x20,
    2,
    0x3f,
    0,
    0x4b,
    0x04,
    0x40, // if new >u memory.size
    0x20,
    2,
    0x3f,
    0,
    0x6b,
    0x40,
    0,
    0x41,
    0x7f,
    0x46, // memory.grow(new - size) == -1
    0x04,
    0x40,
    0x41,
    0x7f,
    0x0f,
    0x0b, // then return -1
    0x0b,
    0x20,
    2,
    0x24,
    ...P, // pages = new
    0x20,
    1, // old
    0x0b,
  ];
  out.push(...uleb(grow.length), ...grow);
  return out;
}

function elemUsesExpressions(body: Uint8Array): boolean {
  const r = new ByteReader(body, 0, body.byteLength);
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    if (flags & 4) return true;
    if (flags & 2 && !(flags & 1)) r.u32(); // table index
    if (!(flags & 1)) constExpr(r, [], (g) => g);
    if (flags & 3) r.byte(); // elemkind
    const k = r.u32();
    for (let j = 0; j < k; j++) r.u32();
  }
  return false;
}

/** Element (9) or data (11) segments with global.get in offsets shifted. */
function segmentsShifted(id: number, body: Uint8Array, shift: (g: number) => number): number[] {
  const r = new ByteReader(body, 0, body.byteLength);
  const n = r.u32();
  const out: number[] = [...uleb(n)];
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    out.push(...uleb(flags));
    if (id === 9) {
      if (flags & 2 && !(flags & 1)) out.push(...uleb(r.u32()));
      if (!(flags & 1)) constExpr(r, out, shift);
      if (flags & 3) out.push(r.byte());
      const k = r.u32();
      out.push(...uleb(k));
      for (let j = 0; j < k; j++) out.push(...uleb(r.u32()));
    } else {
      if (flags === 2) out.push(...uleb(r.u32()));
      if (flags !== 1) constExpr(r, out, shift);
      const len = r.u32();
      out.push(...uleb(len), ...body.subarray(r.pos, r.pos + len));
      r.skip(len);
    }
  }
  return out;
}
