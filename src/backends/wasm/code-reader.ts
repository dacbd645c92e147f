/**
 * Instruction-level reading of wasm function bodies: where each instruction ends, and which
 * proposal (feature) it belongs to. The instrumenter (instrument.ts) walks bodies with it;
 * anything it cannot decode is refused, because code we cannot walk is code we cannot meter.
 *
 * Byte-level helpers (LEB128 read/write) live here too, so the instrumenter and this reader
 * agree on one encoding.
 */

import { ProgramRejectedError } from '../../runtime/errors.js';

/** Proposals an instruction may belong to; the feature gate (policy.ts) decides which run. */
export type WasmFeature =
  | 'simd'
  | 'relaxed-simd'
  | 'threads'
  | 'exceptions'
  | 'gc'
  | 'function-references'
  | 'tail-call'
  | 'bulk-memory'
  | 'reference-types'
  | 'multi-memory';

export function malformedAt(offset: number, what: string): ProgramRejectedError {
  return new ProgramRejectedError(
    'WASM_MALFORMED',
    'malformed',
    `malformed wasm at byte ${offset} (0x${offset.toString(16)}): ${what}`,
  );
}

export class ByteReader {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  byte(): number {
    if (this.pos >= this.end) throw malformedAt(this.pos, 'unexpected end of code');
    return this.bytes[this.pos++]!;
  }

  u32(): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw malformedAt(this.pos, 'LEB128 u32 longer than 5 bytes');
  }

  /** Skip a LEB128 (signed or unsigned) of at most `maxBytes` bytes. */
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) if ((this.byte() & 0x80) === 0) return;
    throw malformedAt(this.pos, 'LEB128 too long');
  }

  skip(n: number): void {
    if (this.pos + n > this.end) throw malformedAt(this.pos, 'unexpected end of code');
    this.pos += n;
  }
}

export function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export function sleb(value: bigint): number[] {
  const out: number[] = [];
  let v = value;
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** What the walker needs to know about one instruction beyond its length. */
export const Op = {
  Plain: 0,
  Block: 1, // block, if: opens a label
  Loop: 2,
  Else: 3,
  End: 4,
  Return: 5, // return, return_call, return_call_indirect: leaves the function
  FloatF32: 6, // scalar op whose f32 result may be a NaN with unspecified bits
  FloatF64: 7,
  FloatF32x4: 8,
  FloatF64x2: 9,
  // Instructions whose work grows with an operand, the i32 on top of the stack (instrument.ts
  // charges fuel for it before they run):
  MemoryGrow: 10, // memory.grow: pages
  MemoryBulk: 11, // memory.fill, memory.copy, memory.init: bytes
  TableBulk: 12, // table.fill, table.copy, table.init, table.grow: elements
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export interface Decoded {
  op: Op;
  /** Set when the instruction belongs to a proposal beyond the MVP. */
  feature: WasmFeature | undefined;
  /** The instruction changes instance state outside memory and globals (tables, dropped segments). */
  mutatesInstance: boolean;
  /**
   * Indices the instruction names, -1 where it names none: the instrumenter checks each against
   * the module's own index spaces, because it appends to them (globals, locals, types, a label)
   * and an index past the guest's own would otherwise land on what it added.
   */
  /** The outermost label a branch may take (br, br_if: its depth; br_table: the largest). */
  label: number;
  local: number;
  global: number;
  /** A type index (call_indirect, return_call_indirect, a multi-value block type). */
  typeIndex: number;
}

/** A fresh Decoded for decode() to fill (one per walk: decode allocates nothing per instruction). */
export function decoded(): Decoded {
  return {
    op: Op.Plain,
    feature: undefined,
    mutatesInstance: false,
    label: -1,
    local: -1,
    global: -1,
    typeIndex: -1,
  };
}

const F32_NAN_OPS = new Set([0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0xb6]);
const F64_NAN_OPS = new Set([0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xbb]);
const F32X4_NAN_OPS = new Set([
  0x5e, 0x67, 0x68, 0x69, 0x6a, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb,
]);
const F64X2_NAN_OPS = new Set([
  0x5f, 0x74, 0x75, 0x7a, 0x94, 0xef, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
]);

function blockType(r: ByteReader, d: Decoded, at: number): WasmFeature | undefined {
  const b = r.bytes[r.pos];
  if (b === 0x40 || b === 0x7f || b === 0x7e || b === 0x7d || b === 0x7c || b === 0x70 || b === 0x6f) {
    r.pos++;
    return undefined;
  }
  if (b === 0x7b) {
    r.pos++;
    return 'simd';
  }
  if (b === 0x63 || b === 0x64) {
    throw unsupported(at, 'function-references', 'typed function references in a block type');
  }
  // s33 type index (multi-value): non-negative; a negative one is a value type we do not know.
  let index = 0;
  for (let i = 0; ; i++) {
    if (i === 5) throw malformedAt(at, 'block type LEB128 longer than 5 bytes');
    const byte = r.byte();
    index += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if ((byte & 0x40) !== 0) throw unsupported(at, 'gc', `block type 0x${b?.toString(16)}`);
      break;
    }
  }
  d.typeIndex = index;
  return undefined;
}

function memarg(r: ByteReader): WasmFeature | undefined {
  const align = r.u32();
  let feature: WasmFeature | undefined;
  if ((align & 0x40) !== 0) {
    if (r.u32() !== 0) feature = 'multi-memory';
  }
  r.skipLeb(10); // offset (u64 for memory64)
  return feature;
}

export function unsupported(at: number, feature: WasmFeature, what: string): ProgramRejectedError {
  return new ProgramRejectedError(
    'WASM_FEATURE_NOT_ALLOWED',
    feature,
    `${what} (feature '${feature}') at byte ${at} is not supported by the sandbox`,
    feature,
  );
}

/**
 * Decode the instruction at r.pos, advancing past it; fills `d` (reused: no allocation per
 * instruction). Throws WASM_MALFORMED on bytes it cannot decode and WASM_FEATURE_NOT_ALLOWED
 * on proposals the instrumenter cannot handle soundly (exceptions, GC).
 */
export function decode(r: ByteReader, d: Decoded): void {
  const at = r.pos;
  const op = r.byte();
  d.op = Op.Plain;
  d.feature = undefined;
  d.mutatesInstance = false;
  d.label = -1;
  d.local = -1;
  d.global = -1;
  d.typeIndex = -1;
  if (op >= 0x45 && op <= 0xc4) {
    if (F32_NAN_OPS.has(op)) d.op = Op.FloatF32;
    else if (F64_NAN_OPS.has(op)) d.op = Op.FloatF64;
    return;
  }
  if (op >= 0x28 && op <= 0x3e) {
    d.feature = memarg(r);
    return;
  }
  switch (op) {
    case 0x00:
    case 0x01:
    case 0x1a:
    case 0x1b:
      return;
    case 0x02:
    case 0x04:
      d.op = Op.Block;
      d.feature = blockType(r, d, at);
      return;
    case 0x03:
      d.op = Op.Loop;
      d.feature = blockType(r, d, at);
      return;
    case 0x05:
      d.op = Op.Else;
      return;
    case 0x0b:
      d.op = Op.End;
      return;
    case 0x0c:
    case 0x0d:
      d.label = r.u32();
      return;
    case 0x10:
      r.u32();
      return;
    case 0x20:
    case 0x21:
    case 0x22:
      d.local = r.u32();
      return;
    case 0x23:
    case 0x24:
      d.global = r.u32();
      return;
    case 0x0e: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) d.label = Math.max(d.label, r.u32());
      return;
    }
    case 0x0f:
      d.op = Op.Return;
      return;
    case 0x11:
      d.typeIndex = r.u32();
      r.u32();
      return;
    case 0x12:
      r.u32();
      d.op = Op.Return;
      d.feature = 'tail-call';
      return;
    case 0x13:
      d.typeIndex = r.u32();
      r.u32();
      d.op = Op.Return;
      d.feature = 'tail-call';
      return;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        if (r.byte() === 0x7b) d.feature = 'simd';
      }
      d.feature ??= 'reference-types';
      return;
    }
    case 0x25:
      r.u32();
      d.feature = 'reference-types';
      return;
    case 0x26:
      r.u32();
      d.feature = 'reference-types';
      d.mutatesInstance = true;
      return;
    case 0x3f:
      if (r.u32() !== 0) d.feature = 'multi-memory';
      return;
    case 0x40:
      if (r.u32() !== 0) d.feature = 'multi-memory';
      d.op = Op.MemoryGrow;
      return;
    case 0x41:
      r.skipLeb(5);
      return;
    case 0x42:
      r.skipLeb(10);
      return;
    case 0x43:
      r.skip(4);
      return;
    case 0x44:
      r.skip(8);
      return;
    case 0xd0: {
      const ht = r.byte();
      if (ht !== 0x70 && ht !== 0x6f) throw unsupported(at, 'gc', 'ref.null of a typed heap type');
      d.feature = 'reference-types';
      return;
    }
    case 0xd1:
      d.feature = 'reference-types';
      return;
    case 0xd2:
      r.u32();
      d.feature = 'reference-types';
      return;
    case 0xfc:
      decodeFc(r, d, at);
      return;
    case 0xfd:
      decodeSimd(r, d, at);
      return;
    case 0xfe:
      // Atomics: the gate refuses them; decode enough to name them.
      d.feature = 'threads';
      if (r.u32() === 0x03) r.skip(1);
      else memarg(r);
      return;
    case 0x06:
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x0a:
    case 0x18:
    case 0x19:
    case 0x1f:
      throw unsupported(at, 'exceptions', `exception-handling instruction 0x${op.toString(16)}`);
    case 0x14:
    case 0x15:
    case 0xd3:
    case 0xd4:
    case 0xd5:
    case 0xd6:
      throw unsupported(at, 'function-references', `instruction 0x${op.toString(16)}`);
    case 0xfb:
      throw unsupported(at, 'gc', 'GC instruction');
    default:
      throw malformedAt(at, `unknown opcode 0x${op.toString(16)}`);
  }
}

function decodeFc(r: ByteReader, d: Decoded, at: number): void {
  const sub = r.u32();
  if (sub <= 7) return; // saturating truncation (MVP-era, on by default)
  d.feature = sub <= 11 ? 'bulk-memory' : 'reference-types';
  switch (sub) {
    case 8: // memory.init data mem
      r.u32();
      r.u32();
      d.op = Op.MemoryBulk;
      return;
    case 9: // data.drop
      r.u32();
      d.mutatesInstance = true;
      return;
    case 10: // memory.copy
      r.u32();
      r.u32();
      d.op = Op.MemoryBulk;
      return;
    case 11: // memory.fill
      r.u32();
      d.op = Op.MemoryBulk;
      return;
    case 12: // table.init
    case 14: // table.copy
      r.u32();
      r.u32();
      d.op = Op.TableBulk;
      d.mutatesInstance = true;
      return;
    case 13: // elem.drop
      r.u32();
      d.mutatesInstance = true;
      return;
    case 15: // table.grow
    case 17: // table.fill
      r.u32();
      d.op = Op.TableBulk;
      d.mutatesInstance = true;
      return;
    case 16: // table.size
      r.u32();
      return;
    default:
      throw malformedAt(at, `unknown 0xfc sub-opcode ${sub}`);
  }
}

function decodeSimd(r: ByteReader, d: Decoded, at: number): void {
  const sub = r.u32();
  d.feature = 'simd';
  if (sub <= 11 || sub === 92 || sub === 93) {
    d.feature = memarg(r) ?? 'simd';
    return;
  }
  if (sub === 12 || sub === 13) {
    r.skip(16);
    return;
  }
  if (sub >= 21 && sub <= 34) {
    r.skip(1);
    return;
  }
  if (sub >= 84 && sub <= 91) {
    d.feature = memarg(r) ?? 'simd';
    r.skip(1);
    return;
  }
  if (sub >= 0x100 && sub <= 0x113) {
    d.feature = 'relaxed-simd';
    return;
  }
  if (sub > 0xff) throw malformedAt(at, `unknown SIMD sub-opcode ${sub}`);
  if (F32X4_NAN_OPS.has(sub)) d.op = Op.FloatF32x4;
  else if (F64X2_NAN_OPS.has(sub)) d.op = Op.FloatF64x2;
}
