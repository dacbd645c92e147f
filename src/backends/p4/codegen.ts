/**
 * Straight-line JavaScript for the two loops that dominate a packet's time: reading a header's
 * fields out of the packet bytes, and packing field values into bytes (the deparser, and the
 * input of checksums). A header's layout is fixed, so every byte index, shift and mask is a
 * constant known when the JSON is compiled; generated once per header with `new Function`, the
 * code has no loop, no per-field call and no branch on alignment — about 3× faster than the
 * generic per-field readers in bits.ts on IPv4 (measured by bench/p4.ts). The generated source
 * contains only numbers computed here, never a string from the program, so nothing a P4
 * program says can reach the generated code.
 *
 * Values up to 53 bits are numbers; fields wider than 32 bits are split into a high and a low
 * part of at most 32 bits, so every part fits JavaScript's 32-bit operators. Fields wider than
 * 53 bits (BigInts) go through bits.ts's readBits/orBits.
 */

import { orBits, readBits } from './bits.js';
import { NUM_BITS, type PacketState } from './state.js';

/** One field at a fixed bit offset from the start of a byte-aligned block. */
export interface PackedField {
  readonly off: number;
  readonly width: number;
  /** Slot in `n` (narrow) or `b` (wide). */
  readonly slot: number;
  readonly wide: boolean;
  readonly signed: boolean;
}

/** A part of a value: `width` ≤ 32 bits whose most significant bit sits at bit `off`. */
interface Part {
  readonly off: number;
  readonly width: number;
  /** JS expression of the part's value, an integer in [0, 2^width) once masked. */
  readonly expr: string;
}

/** A number spliced into generated code: it must be a safe integer, whatever the JSON said. */
export function int(x: number): string {
  if (!Number.isSafeInteger(x)) throw new Error(`generated code: ${x} is not a safe integer`);
  return x < 0 ? `(${x})` : `${x}`;
}

const HI = 4294967296;

/** Split a ≤ 53-bit value held in variable `v` into parts of at most 32 bits. */
function partsOf(v: string, off: number, width: number): Part[] {
  if (width <= 32) return [{ off, width, expr: v }];
  return [
    { off, width: width - 32, expr: `Math.floor(${v} / ${HI})` },
    { off: off + width - 32, width: 32, expr: `(${v} >>> 0)` },
  ];
}

/**
 * The bits [lo, lo + size) of the block (size ≤ 16) as a JS expression OR-ing the parts that
 * overlap them, or null when none does.
 */
function chunkExpr(parts: readonly Part[], lo: number, size: number): string | null {
  const hi = lo + size;
  const terms: string[] = [];
  for (const p of parts) {
    const a = Math.max(p.off, lo);
    const b = Math.min(p.off + p.width, hi);
    if (a >= b) continue;
    const len = b - a;
    const right = p.off + p.width - b; // bits of the part below this chunk
    const left = hi - b; // bits of the chunk below the part
    let t = right > 0 ? `(${p.expr} >>> ${right})` : `${p.expr}`;
    // bytes are stored into a Uint8Array, which truncates a part that fills the whole byte;
    // words are summed, so a part with bits above this word is masked
    if (size === 8 ? len < 8 : a > p.off) t = `(${t} & ${2 ** len - 1})`;
    if (left > 0) t = `(${t} << ${left})`;
    terms.push(t);
  }
  return terms.length ? terms.join(' | ') : null;
}

/** Bytes [0, bytes) as `out[o + k] = ...` statements from the parts that overlap each byte. */
function byteStatements(parts: readonly Part[], bytes: number, skip: ReadonlySet<number>): string[] {
  const lines: string[] = [];
  for (let k = 0; k < bytes; k++) {
    if (skip.has(k)) continue;
    lines.push(`out[o + ${k}] = ${chunkExpr(parts, k * 8, 8) ?? '0'};`);
  }
  return lines;
}

/**
 * A packer: writes `fields` (bit offsets from byte `o`) into `out`, covering bytes
 * [o, o + ceil(bits / 8)) entirely (bytes are assigned, not OR-ed, so `out` need not be zero).
 * `values[i]`, when given, replaces field i's slot: its value is `values[i](s)`, a number in
 * [0, 2^width).
 */
export function compilePacker(
  fields: readonly PackedField[],
  bits: number,
  values: readonly (((s: PacketState) => number) | null)[] = [],
): (s: PacketState, out: Uint8Array, o: number) => void {
  const body = ['const n = s.n;', ...packerStatements(fields, bits, values)];
  const make = new Function('orBits', 'values', `return function pack(s, out, o) {\n${body.join('\n')}\n};`);
  return make(orBits, values) as (s: PacketState, out: Uint8Array, o: number) => void;
}

/**
 * The statements of a packer, for inlining into a larger generated function: they read
 * `n[slot]` (and `values[i](s)`, `s.b[slot]`) and write bytes `out[o + k]`.
 */
export function packerStatements(
  fields: readonly PackedField[],
  bits: number,
  values: readonly (((s: PacketState) => number) | null)[] = [],
): string[] {
  const bytes = Math.ceil(bits / 8);
  const body: string[] = [];
  const parts: Part[] = [];
  const wide: string[] = [];
  const wideBytes = new Set<number>();
  fields.forEach((f, i) => {
    if (f.width === 0) return;
    if (f.wide || f.width > NUM_BITS) {
      // a BigInt field: zero its bytes, then OR it in bit by bit
      for (let k = f.off >> 3; k <= (f.off + f.width - 1) >> 3; k++) wideBytes.add(k);
      wide.push(`orBits(out, o * 8 + ${f.off}, ${f.width}, s.b[${f.slot}]);`);
      return;
    }
    const v = `v${i}`;
    body.push(`const ${v} = ${values[i] ? `values[${i}](s)` : `n[${f.slot}]`};`);
    parts.push(...partsOf(v, f.off, f.width));
  });
  // bytes shared between a BigInt field and number fields are written by parts first, then OR-ed
  const shared = new Set(
    [...wideBytes].filter((k) => parts.some((p) => p.off < k * 8 + 8 && p.off + p.width > k * 8)),
  );
  body.push(...byteStatements(parts, bytes, new Set([...wideBytes].filter((k) => !shared.has(k)))));
  for (const k of wideBytes) if (!shared.has(k)) body.push(`out[o + ${k}] = 0;`);
  body.push(...wide);
  return body;
}

/** JS expression of the unsigned `width`-bit field at bit `off` of bytes p[c ...]. */
function readExpr(off: number, width: number): string {
  const first = off >> 3;
  const last = (off + width - 1) >> 3;
  const byte = (k: number): string => `p[c + ${k}]`;
  if ((off & 7) === 0 && width === 8) return byte(first);
  if ((off & 7) === 0 && width === 16) return `(${byte(first)} << 8 | ${byte(first + 1)})`;
  if ((off & 7) === 0 && width === 32)
    return `((${byte(first)} << 24 | ${byte(first + 1)} << 16 | ${byte(first + 2)} << 8 | ${byte(first + 3)}) >>> 0)`;
  const terms: string[] = [];
  const small = width <= 31;
  for (let k = first; k <= last; k++) {
    const a = Math.max(off, k * 8);
    const b = Math.min(off + width, k * 8 + 8);
    const len = b - a;
    const right = k * 8 + 8 - b; // low bits of the byte past the field
    const left = off + width - b; // field bits below this byte
    let t = right > 0 ? `(${byte(k)} >>> ${right})` : byte(k);
    if (len < 8) t = `(${t} & ${2 ** len - 1})`;
    if (left > 0) t = small ? `(${t} << ${left})` : `${t} * ${2 ** left}`;
    terms.push(t);
  }
  return `(${terms.join(small ? ' | ' : ' + ')})`;
}

/**
 * An extractor: reads `fields` (bit offsets from byte `c` of `p`) into their slots. Bounds
 * are the caller's to check.
 */
export function compileExtractor(
  fields: readonly PackedField[],
): (s: PacketState, p: Uint8Array, c: number) => void {
  const body = ['const n = s.n;', ...extractorStatements(fields)];
  const make = new Function('readBits', `return function extract(s, p, c) {\n${body.join('\n')}\n};`);
  return make(readBits) as (s: PacketState, p: Uint8Array, c: number) => void;
}

/**
 * The statements of an extractor, for inlining into a larger generated function: they read
 * bytes `p[c + k]` and write `n[slot]` (and `s.b[slot]` through `readBits` for wide fields).
 */
export function extractorStatements(fields: readonly PackedField[]): string[] {
  const body: string[] = [];
  for (const f of fields) {
    if (f.width === 0) continue;
    if (f.wide || f.width > NUM_BITS) {
      const v = `readBits(p, c * 8 + ${f.off}, ${f.width})`;
      body.push(`s.b[${f.slot}] = ${f.signed ? `BigInt.asIntN(${f.width}, ${v})` : v};`);
      continue;
    }
    const e = readExpr(f.off, f.width);
    if (f.signed) {
      const half = 2 ** (f.width - 1);
      body.push(`{ const x = ${e}; n[${f.slot}] = x >= ${half} ? x - ${2 ** f.width} : x; }`);
    } else body.push(`n[${f.slot}] = ${e};`);
  }
  return body;
}

/**
 * The 16-bit ones' complement checksum (BMv2's csum16) of `fields` packed as a packer would
 * (bit offsets from 0, `bits` in all, zero-padded to whole 16-bit words), summed straight from
 * the field values: no bytes are written, each word is a constant expression of shifts and
 * masks. Only for fields of at most 53 bits (null otherwise: the caller packs bytes instead).
 */
export function compileCsum16(
  fields: readonly PackedField[],
  bits: number,
  values: readonly (((s: PacketState) => number) | null)[] = [],
): ((s: PacketState) => number) | null {
  if (fields.some((f) => f.wide || f.width > NUM_BITS)) return null;
  const body: string[] = ['const n = s.n;'];
  const parts: Part[] = [];
  fields.forEach((f, i) => {
    if (f.width === 0) return;
    const v = `v${i}`;
    body.push(`const ${v} = ${values[i] ? `values[${i}](s)` : `n[${f.slot}]`};`);
    parts.push(...partsOf(v, f.off, f.width));
  });
  const words: string[] = [];
  for (let k = 0; k * 16 < bits; k++) {
    const w = chunkExpr(parts, k * 16, 16);
    if (w !== null) words.push(`(${w})`);
  }
  body.push(`let sum = ${words.length ? words.join(' + ') : '0'};`);
  body.push('while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);');
  body.push('return ~sum & 0xffff;');
  const make = new Function('values', `return function csum16(s) {\n${body.join('\n')}\n};`);
  return make(values) as (s: PacketState) => number;
}
