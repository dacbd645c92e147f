/**
 * Module instrumentation at prepare time: fuel metering, a call-depth counter and NaN
 * canonicalization, injected into the bytes V8 compiles. One rewrite, done once per build and
 * metering config, by our own binary rewriter over code-reader.ts.
 *
 * Why not binaryen.js: measured here (binaryen 132, Node 20, AMD EPYC): 480 ms just to load
 * its 100 MB package, 12-30 ms per small module to read + de-NaN + emit. This pass copies every
 * byte it does not change, so it is a single linear walk (well under a millisecond for the
 * guests in wasm/) and pulls in no dependency.
 *
 * What it injects (all into new globals, exported so the host can drive them):
 *   fuel   i64 `__thunderpac_fuel`: at every function entry and every loop header, subtract
 *          the static weight of the instructions that run before the next charge (the
 *          function's top level / the loop's own body, nested loops excluded: each
 *          instruction weighs 1) and trap with `unreachable` when the result is negative. A
 *          loop iteration or a call always costs >= 1, so every execution terminates, and the
 *          charge sequence depends only on the path taken: same module + input = same fuel
 *          on every run, path and V8 tier. The host reads a negative counter after a trap as
 *          "out of fuel". Instructions whose work grows with an operand (bulk memory and
 *          table ops, memory.grow) are also charged by that operand, just before they run,
 *          so a huge copy stops on fuel before it starts (see BULK_BYTES_PER_FUEL). A start
 *          function runs on the same counter: its fuel is part of every execution's. With
 *          `deferStart` it is exported (START_EXPORT) instead of run by instantiation, so the
 *          host reads the counters when it traps or runs out of fuel.
 *   depth  i32 `__thunderpac_depth`: +1 at function entry (trap past the limit), -1 on every
 *          way out (the body is wrapped in a block so branches to the function label pass
 *          the epilogue; `return` and tail calls decrement first). Makes stack exhaustion
 *          deterministic; V8's own stack limit depends on tier and frame sizes.
 *   NaN    after each float instruction whose NaN result bits the spec leaves open
 *          (arithmetic, sqrt, min/max, rounding, promote/demote; scalar and SIMD), replace a
 *          NaN by the canonical quiet NaN (0x7fc00000 / 0x7ff8000000000000), as wasmtime's
 *          NaN canonicalization does. Bitwise ops (abs, neg, copysign, reinterpret) and
 *          loads keep their deterministic bits.
 * Every mutable global the module defines is exported too (`__thunderpac_g<N>`), so the
 * in-thread path can snapshot and restore instance state between executions.
 */

import { performance } from 'node:perf_hooks';
import { ProgramRejectedError } from '../../runtime/errors.js';
import {
  ByteReader,
  type Decoded,
  decode,
  decoded,
  malformedAt,
  Op,
  sleb,
  uleb,
  unsupported,
  type WasmFeature,
} from './code-reader.js';
import type { ModuleInfo, ValType } from './module-info.js';

export const FUEL_EXPORT = '__thunderpac_fuel';
export const DEPTH_EXPORT = '__thunderpac_depth';
export const START_EXPORT = '__thunderpac_start';
export const STATE_EXPORT_PREFIX = '__thunderpac_g';

/**
 * Dynamic fuel: the static weight counts each instruction once, but memory.fill/copy/init,
 * table ops and memory.grow do work proportional to an operand, and a one-instruction copy of
 * 1 GiB must not cost 1. A unit of fuel stands for about one simple instruction; memset and
 * memcpy move ~64 bytes in that time, so bulk memory ops cost 1 per 64 bytes (rounded up).
 * Growing memory costs what filling the new pages would (1024 per 64 KiB page), and table ops
 * 1 per element (each a reference store with a GC write barrier).
 */
export const BULK_BYTES_PER_FUEL = 64;
export const FUEL_PER_PAGE = 1024;
export const FUEL_PER_TABLE_ELEMENT = 1;
const BULK_SHIFT = Math.log2(BULK_BYTES_PER_FUEL);
const PAGE_SHIFT = Math.log2(FUEL_PER_PAGE);

export interface MeteringConfig {
  /** Initial value of the fuel counter (covers a start function); undefined = no fuel metering. */
  readonly fuel: number | undefined;
  /** Deepest call nesting allowed; 0 = no depth counter. */
  readonly callDepth: number;
  readonly nanCanonical: boolean;
  /**
   * Remove the start section and export the start function as `__thunderpac_start` instead,
   * for a host that calls it right after instantiation (abi.ts does): then its fuel, traps and
   * depth are read from the counters like an entry's, where a trap inside instantiation would
   * leave no instance to read them from. Nothing else can run between the two, so the guest
   * cannot tell. Off by default: hosts that instantiate the bytes themselves must opt in.
   */
  readonly deferStart?: boolean;
}

export interface Instrumented {
  readonly bytes: Uint8Array;
  /** Proposals the code uses (for the feature gate). */
  readonly features: ReadonlySet<WasmFeature>;
  /** Code mutates tables or drops segments: instance state that cannot be snapshotted from JS. */
  readonly mutatesInstance: boolean;
  /** Export names of the module's own mutable globals, with their types. */
  readonly stateGlobals: readonly { readonly name: string; readonly type: ValType }[];
  /** The start function was deferred (MeteringConfig.deferStart): call START_EXPORT first. */
  readonly startDeferred: boolean;
  /** Charge sites injected (function entries + loop headers). */
  readonly chargeSites: number;
  /** Wall time of the rewrite, for reports. */
  readonly ms: number;
}

const SECTION_RANK: Readonly<Record<number, number>> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};

const VALTYPE_CODE: Readonly<Record<ValType, number>> = {
  i32: 0x7f,
  i64: 0x7e,
  f32: 0x7d,
  f64: 0x7c,
  v128: 0x7b,
  funcref: 0x70,
  externref: 0x6f,
};
const CODE_VALTYPE = new Map(Object.entries(VALTYPE_CODE).map(([k, v]) => [v, k as ValType]));

/** A growable byte buffer. */
class Writer {
  buf = new Uint8Array(1024);
  len = 0;

  #room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  bytes(b: ArrayLike<number>): void {
    this.#room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  byte(b: number): void {
    this.#room(1);
    this.buf[this.len++] = b;
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

interface Section {
  readonly id: number;
  readonly start: number; // payload start
  readonly end: number;
}

function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  const r = new ByteReader(bytes, 8, bytes.byteLength);
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    out.push({ id, start: r.pos, end: r.pos + size });
    r.pos += size;
  }
  return out;
}

function section(w: Writer, id: number, payload: Uint8Array): void {
  w.byte(id);
  w.bytes(uleb(payload.byteLength));
  w.bytes(payload);
}

const F32_CANON = [0x00, 0x00, 0xc0, 0x7f];
const F64_CANON = [0, 0, 0, 0, 0, 0, 0xf8, 0x7f];

/** Instruction sequences the pass emits; global/local indices filled in per module. */
class Emitter {
  constructor(
    readonly fuelGlobal: number,
    readonly depthGlobal: number,
    readonly depthLimit: number,
  ) {}

  /** fuel -= cost (leaves nothing on the stack). */
  #subtractFuel(w: Writer, cost: number): void {
    const f = uleb(this.fuelGlobal);
    w.byte(0x23);
    w.bytes(f);
    w.byte(0x42);
    w.bytes(sleb(BigInt(cost)));
    w.byte(0x7d); // i64.sub
    w.byte(0x24);
    w.bytes(f);
  }

  /** depth += delta (±1; leaves nothing on the stack). */
  #addDepth(w: Writer, op: 0x6a | 0x6b): void {
    const g = uleb(this.depthGlobal);
    w.byte(0x23);
    w.bytes(g);
    w.bytes([0x41, 0x01, op, 0x24]); // i32.const 1; i32.add | i32.sub; global.set
    w.bytes(g);
  }

  /** Pushes (fuel < 0). */
  #fuelExhausted(w: Writer): void {
    w.byte(0x23);
    w.bytes(uleb(this.fuelGlobal));
    w.bytes([0x42, 0x00, 0x53]); // i64.const 0; i64.lt_s
  }

  /** Pushes (depth > limit). */
  #tooDeep(w: Writer): void {
    w.byte(0x23);
    w.bytes(uleb(this.depthGlobal));
    w.byte(0x41);
    w.bytes(sleb(BigInt(this.depthLimit)));
    w.byte(0x4b); // i32.gt_u
  }

  /** if (top of stack) unreachable */
  static #trapIf(w: Writer): void {
    w.bytes([0x04, 0x40, 0x00, 0x0b]); // if; unreachable; end
  }

  /**
   * Before an instruction with a size operand (an i32 on top of the stack): fuel -= the
   * operand's weight; if (fuel < 0) unreachable; the operand is put back via a scratch local.
   */
  chargeBySize(w: Writer, op: Op, scratch: number): void {
    const n = uleb(scratch);
    const f = uleb(this.fuelGlobal);
    w.byte(0x21); // local.set $n
    w.bytes(n);
    w.byte(0x23); // global.get $fuel
    w.bytes(f);
    w.byte(0x20); // local.get $n
    w.bytes(n);
    w.byte(0xad); // i64.extend_i32_u: sizes are unsigned; no i32 overflow below
    if (op === Op.MemoryBulk) {
      // ceil(n / 64)
      w.bytes([0x42, ...sleb(BigInt(BULK_BYTES_PER_FUEL - 1)), 0x7c]); // i64.const 63; i64.add
      w.bytes([0x42, ...sleb(BigInt(BULK_SHIFT)), 0x88]); // i64.const 6; i64.shr_u
    } else if (op === Op.MemoryGrow) {
      w.bytes([0x42, ...sleb(BigInt(PAGE_SHIFT)), 0x86]); // i64.const 10; i64.shl
    } else if (FUEL_PER_TABLE_ELEMENT !== 1) {
      w.bytes([0x42, ...sleb(BigInt(FUEL_PER_TABLE_ELEMENT)), 0x7e]); // i64.mul
    }
    w.byte(0x7d); // i64.sub
    w.byte(0x24); // global.set $fuel
    w.bytes(f);
    this.#fuelExhausted(w);
    Emitter.#trapIf(w);
    w.byte(0x20); // local.get $n
    w.bytes(n);
  }

  /** fuel -= cost; if (fuel < 0) unreachable */
  charge(w: Writer, cost: number): void {
    this.#subtractFuel(w, cost);
    this.#fuelExhausted(w);
    Emitter.#trapIf(w);
  }

  /** depth += 1; if (depth > limit) unreachable */
  enter(w: Writer): void {
    this.#addDepth(w, 0x6a);
    this.#tooDeep(w);
    Emitter.#trapIf(w);
  }

  /**
   * Function entry with both counters: charge fuel, enter a level, then ONE branch on
   * (fuel < 0) | (depth > limit): the call-heavy kernels pay one compare-and-branch less per
   * call. The host tells the two apart by reading the counters (fuel first).
   */
  chargeAndEnter(w: Writer, cost: number): void {
    this.#subtractFuel(w, cost);
    this.#addDepth(w, 0x6a);
    this.#fuelExhausted(w);
    this.#tooDeep(w);
    w.byte(0x72); // i32.or
    Emitter.#trapIf(w);
  }

  leave(w: Writer): void {
    this.#addDepth(w, 0x6b);
  }

  /** x -> (x == x ? x : canonical NaN), via a scratch local of x's type. */
  canonicalize(w: Writer, op: Op, local: number): void {
    const l = uleb(local);
    w.byte(0x22); // local.tee
    w.bytes(l);
    switch (op) {
      case Op.FloatF32:
        w.byte(0x43);
        w.bytes(F32_CANON);
        break;
      case Op.FloatF64:
        w.byte(0x44);
        w.bytes(F64_CANON);
        break;
      default: {
        w.bytes([0xfd, 0x0c]); // v128.const
        const lane = op === Op.FloatF32x4 ? F32_CANON : F64_CANON;
        for (let i = 0; i < 16 / lane.length; i++) w.bytes(lane);
      }
    }
    w.byte(0x20);
    w.bytes(l);
    w.byte(0x20);
    w.bytes(l);
    switch (op) {
      case Op.FloatF32:
        w.bytes([0x5b, 0x1b]); // f32.eq; select
        break;
      case Op.FloatF64:
        w.bytes([0x61, 0x1b]); // f64.eq; select
        break;
      case Op.FloatF32x4:
        w.bytes([0xfd, 0x41, 0xfd, 0x52]); // f32x4.eq; v128.bitselect
        break;
      default:
        w.bytes([0xfd, 0x47, 0xfd, 0x52]); // f64x2.eq; v128.bitselect
    }
  }
}

interface BodyPlan {
  funcCost: number;
  loopCosts: number[];
  needF32: boolean;
  needF64: boolean;
  needV128: boolean;
  /** Has an instruction charged by its size operand (needs an i32 scratch local). */
  needSize: boolean;
}

/**
 * Rewrite `bytes` (already parsed into `info`, which checked section order and sizes).
 * Throws ProgramRejectedError for code it cannot decode or features it cannot instrument.
 */
export function instrument(bytes: Uint8Array, info: ModuleInfo, config: MeteringConfig): Instrumented {
  const t0 = performance.now();
  const secs = sections(bytes);
  const features = new Set<WasmFeature>();
  let mutatesInstance = false;
  const d: Decoded = decoded();

  const importedGlobals = info.imports.filter((i) => i.kind === 'global').length;

  // ---- globals the module defines: count, and which are mutable (state to snapshot)
  const globalSec = secs.find((s) => s.id === 6);
  let definedGlobals = 0;
  const stateGlobals: { name: string; type: ValType; index: number }[] = [];
  if (globalSec) {
    const r = new ByteReader(bytes, globalSec.start, globalSec.end);
    definedGlobals = r.u32();
    for (let i = 0; i < definedGlobals; i++) {
      const at = r.pos;
      const code = r.byte();
      const type = CODE_VALTYPE.get(code);
      if (type === undefined) throw unsupported(at, 'gc', `global of type 0x${code.toString(16)}`);
      const mutable = r.byte() === 1;
      for (;;) {
        const insn = r.pos;
        decode(r, d);
        if (d.feature) features.add(d.feature);
        // An initializer may read only globals before it; never the counters appended below.
        if (d.global >= importedGlobals + i) throw outOfRange(insn, 'global', d.global, importedGlobals + i);
        if (d.op === Op.End) break;
      }
      if (mutable) {
        const index = importedGlobals + i;
        stateGlobals.push({ name: `${STATE_EXPORT_PREFIX}${index}`, type, index });
      }
    }
  }

  const fuelOn = config.fuel !== undefined;
  const depthOn = config.callDepth > 0;
  // Everything below appends to the guest's index spaces (globals, types, locals, a label), so
  // every index the guest names is checked against its own spaces first: one past them would
  // otherwise name what the sandbox added (assertEngineValid checks the original too).
  const ownGlobals = importedGlobals + definedGlobals;
  const ownFunctions = info.imports.filter((i) => i.kind === 'function').length + info.functions.length;
  const ownTypes = info.types.length;
  for (const e of info.exports) {
    const n =
      e.kind === 'global' ? ownGlobals : e.kind === 'function' ? ownFunctions : Number.POSITIVE_INFINITY;
    if (e.index >= n) throw outOfRange(0, `export '${e.name}' ${e.kind}`, e.index, n);
  }
  const fuelGlobal = importedGlobals + definedGlobals;
  const depthGlobal = fuelGlobal + (fuelOn ? 1 : 0);
  const em = new Emitter(fuelGlobal, depthGlobal, config.callDepth);

  // ---- types: the depth wrapper block of a multi-result function needs a [] -> results type
  const extraTypes: ValType[][] = [];
  const blockTypeOf = (results: readonly ValType[]): number[] => {
    if (results.length === 0) return [0x40];
    if (results.length === 1) return [VALTYPE_CODE[results[0]!]];
    const same = (rs: readonly ValType[]) =>
      rs.length === results.length && rs.every((t, i) => t === results[i]);
    let idx = info.types.findIndex((t) => t.params.length === 0 && same(t.results));
    if (idx < 0) {
      const k = extraTypes.findIndex(same);
      idx = info.types.length + (k < 0 ? extraTypes.push([...results]) - 1 : k);
    }
    return sleb(BigInt(idx));
  };

  // ---- code
  let chargeSites = 0;
  const codeSec = secs.find((s) => s.id === 10);
  let newCode: Uint8Array | undefined;
  if (codeSec) {
    const r = new ByteReader(bytes, codeSec.start, codeSec.end);
    const n = r.u32();
    const w = new Writer();
    w.bytes(uleb(n));
    for (let f = 0; f < n; f++) {
      const size = r.u32();
      const bodyStart = r.pos;
      const bodyEnd = bodyStart + size;
      if (bodyEnd > codeSec.end)
        throw malformedAt(bodyStart, `function ${f} body runs past the code section`);
      const type = info.types[info.functions[f] ?? -1];
      if (type === undefined) throw malformedAt(bodyStart, `function ${f} has no type`);
      const body = rewriteBody(bytes, bodyStart, bodyEnd, type.params.length, blockTypeOf(type.results));
      w.bytes(uleb(body.byteLength));
      w.bytes(body);
      r.pos = bodyEnd;
    }
    newCode = w.done();
  }

  function plan(r: ByteReader, ownLocals: number): BodyPlan {
    const p: BodyPlan = {
      funcCost: 0,
      loopCosts: [],
      needF32: false,
      needF64: false,
      needV128: false,
      needSize: false,
    };
    // Which accumulator each open label charges into: -1 = the function, k = loop k.
    const frames: number[] = [-1];
    while (frames.length > 0) {
      const at = r.pos;
      decode(r, d);
      if (d.feature) features.add(d.feature);
      if (d.mutatesInstance) mutatesInstance = true;
      // frames.length = labels open here, the function's own included: a deeper branch would
      // take the depth wrapper's enclosing label and skip the depth counter's epilogue.
      if (d.label >= frames.length) throw outOfRange(at, 'branch label', d.label, frames.length);
      if (d.local >= ownLocals) throw outOfRange(at, 'local', d.local, ownLocals);
      if (d.global >= ownGlobals) throw outOfRange(at, 'global', d.global, ownGlobals);
      if (d.typeIndex >= ownTypes) throw outOfRange(at, 'type', d.typeIndex, ownTypes);
      const acc = frames[frames.length - 1]!;
      if (d.op !== Op.End) {
        if (acc < 0) p.funcCost++;
        else p.loopCosts[acc]!++;
      }
      switch (d.op) {
        case Op.Block:
          frames.push(acc);
          break;
        case Op.Loop:
          frames.push(p.loopCosts.push(0) - 1);
          break;
        case Op.End:
          frames.pop();
          break;
        case Op.FloatF32:
          p.needF32 = true;
          break;
        case Op.FloatF64:
          p.needF64 = true;
          break;
        case Op.FloatF32x4:
        case Op.FloatF64x2:
          p.needV128 = true;
          break;
        case Op.MemoryGrow:
        case Op.MemoryBulk:
        case Op.TableBulk:
          p.needSize = true;
          break;
      }
      if (frames.length === 0 && r.pos !== r.end) throw malformedAt(at, 'code after the function end');
    }
    return p;
  }

  function rewriteBody(
    src: Uint8Array,
    start: number,
    end: number,
    nParams: number,
    wrapType: number[],
  ): Uint8Array {
    const r = new ByteReader(src, start, end);
    const groups = r.u32();
    let nLocals = 0;
    const groupsStart = r.pos;
    for (let i = 0; i < groups; i++) {
      nLocals += r.u32();
      const at = r.pos;
      const t = r.byte();
      if (!CODE_VALTYPE.has(t)) throw unsupported(at, 'gc', `local of type 0x${t.toString(16)}`);
    }
    const codeStart = r.pos;
    const p = plan(r, nParams + nLocals);
    const nan = config.nanCanonical;
    // Scratch locals for NaN canonicalization, appended after the declared ones.
    const extra: number[] = [];
    const scratch = (need: boolean, type: number): number => {
      if (!need) return -1;
      extra.push(type);
      return nParams + nLocals + extra.length - 1;
    };
    const scratchF32 = scratch(nan && p.needF32, 0x7d);
    const scratchF64 = scratch(nan && p.needF64, 0x7c);
    const scratchV128 = scratch(nan && p.needV128, 0x7b);
    const scratchSize = scratch(fuelOn && p.needSize, 0x7f);

    const w = new Writer();
    w.bytes(uleb(groups + extra.length));
    w.bytes(src.subarray(groupsStart, codeStart));
    for (const t of extra) w.bytes([0x01, t]);
    if (fuelOn && depthOn) em.chargeAndEnter(w, Math.max(1, p.funcCost));
    else if (fuelOn) em.charge(w, Math.max(1, p.funcCost));
    else if (depthOn) em.enter(w);
    if (fuelOn) chargeSites++;
    if (depthOn) {
      w.byte(0x02);
      w.bytes(wrapType);
    }
    r.pos = codeStart;
    let open = 1;
    let loop = 0;
    while (open > 0) {
      const at = r.pos;
      decode(r, d);
      if (d.op === Op.Return && depthOn) em.leave(w);
      if (fuelOn && (d.op === Op.MemoryBulk || d.op === Op.MemoryGrow || d.op === Op.TableBulk)) {
        em.chargeBySize(w, d.op, scratchSize);
      }
      w.bytes(src.subarray(at, r.pos));
      switch (d.op) {
        case Op.Block:
          open++;
          break;
        case Op.Loop:
          open++;
          if (fuelOn) {
            em.charge(w, Math.max(1, p.loopCosts[loop]!));
            chargeSites++;
          }
          loop++;
          break;
        case Op.End:
          open--;
          break;
        case Op.FloatF32:
          if (nan) em.canonicalize(w, d.op, scratchF32);
          break;
        case Op.FloatF64:
          if (nan) em.canonicalize(w, d.op, scratchF64);
          break;
        case Op.FloatF32x4:
        case Op.FloatF64x2:
          if (nan) em.canonicalize(w, d.op, scratchV128);
          break;
      }
    }
    if (depthOn) {
      // The original final `end` closed the wrapper block; now leave and close the function.
      em.leave(w);
      w.byte(0x0b);
    }
    return w.done();
  }

  // ---- new globals and exports
  const newGlobals = new Writer();
  if (fuelOn) newGlobals.bytes([0x7e, 0x01, 0x42, ...sleb(BigInt(config.fuel!)), 0x0b]);
  if (depthOn) newGlobals.bytes([0x7f, 0x01, 0x41, 0x00, 0x0b]);
  const addedGlobals = (fuelOn ? 1 : 0) + (depthOn ? 1 : 0);

  const existing = new Set(info.exports.map((e) => e.name));
  // [name, export kind (0x00 func, 0x03 global), index]
  const newExports: [string, number, number][] = [];
  if (fuelOn) newExports.push([FUEL_EXPORT, 0x03, fuelGlobal]);
  if (depthOn) newExports.push([DEPTH_EXPORT, 0x03, depthGlobal]);
  for (const g of stateGlobals) newExports.push([g.name, 0x03, g.index]);
  const startSec = config.deferStart ? secs.find((s) => s.id === 8) : undefined;
  if (startSec) {
    const start = new ByteReader(bytes, startSec.start, startSec.end).u32();
    if (start >= ownFunctions) throw outOfRange(startSec.start, 'start function', start, ownFunctions);
    newExports.push([START_EXPORT, 0x00, start]);
  }
  for (const [name] of newExports) {
    if (existing.has(name)) {
      throw new ProgramRejectedError(
        'WASM_ABI',
        'abi',
        `export name '${name}' is reserved by the sandbox`,
        name,
      );
    }
  }
  const exportEntries = new Writer();
  for (const [name, kind, index] of newExports) {
    const utf8 = new TextEncoder().encode(name);
    exportEntries.bytes(uleb(utf8.byteLength));
    exportEntries.bytes(utf8);
    exportEntries.byte(kind);
    exportEntries.bytes(uleb(index));
  }

  // ---- reassemble, section by section; sections we add go where the order requires
  const out = new Writer();
  out.bytes(bytes.subarray(0, 8));
  let typesDone = extraTypes.length === 0;
  let globalsDone = addedGlobals === 0;
  let exportsDone = newExports.length === 0;
  const typeEntries = (): Writer => {
    const t = new Writer();
    for (const rs of extraTypes) {
      t.bytes([0x60, 0x00, ...uleb(rs.length), ...rs.map((v) => VALTYPE_CODE[v])]);
    }
    return t;
  };
  const emitMissingBefore = (rank: number): void => {
    if (!typesDone && rank > 1) {
      const t = typeEntries();
      section(out, 1, concat(uleb(extraTypes.length), t.done()));
      typesDone = true;
    }
    if (!globalsDone && rank > 7) {
      section(out, 6, concat(uleb(addedGlobals), newGlobals.done()));
      globalsDone = true;
    }
    if (!exportsDone && rank > 8) {
      section(out, 7, concat(uleb(newExports.length), exportEntries.done()));
      exportsDone = true;
    }
  };
  for (const s of secs) {
    if (s === startSec) continue; // deferred: exported instead
    const rank = s.id === 0 ? 0 : (SECTION_RANK[s.id] ?? 0);
    if (s.id !== 0) emitMissingBefore(rank);
    const payload = bytes.subarray(s.start, s.end);
    if (s.id === 1 && !typesDone) {
      section(out, 1, appendVector(payload, info.types.length, extraTypes.length, typeEntries().done()));
      typesDone = true;
    } else if (s.id === 6 && !globalsDone) {
      section(out, 6, appendVector(payload, definedGlobals, addedGlobals, newGlobals.done()));
      globalsDone = true;
    } else if (s.id === 7 && !exportsDone) {
      section(out, 7, appendVector(payload, info.exports.length, newExports.length, exportEntries.done()));
      exportsDone = true;
    } else if (s.id === 10 && newCode) {
      section(out, 10, newCode);
    } else {
      out.byte(s.id);
      out.bytes(uleb(payload.byteLength));
      out.bytes(payload);
    }
  }
  emitMissingBefore(Number.POSITIVE_INFINITY);

  return {
    bytes: out.done(),
    features,
    mutatesInstance,
    stateGlobals: stateGlobals.map(({ name, type }) => ({ name, type })),
    startDeferred: startSec !== undefined,
    chargeSites,
    ms: performance.now() - t0,
  };
}

/** An index past the guest's own index space: invalid as written (V8 would say so too). */
function outOfRange(at: number, what: string, index: number, count: number): ProgramRejectedError {
  return malformedAt(at, `${what} index ${index} out of range (the module has ${count})`);
}

function concat(a: ArrayLike<number>, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.byteLength);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A vector section payload with `added` more entries appended. */
function appendVector(payload: Uint8Array, count: number, added: number, entries: Uint8Array): Uint8Array {
  const r = new ByteReader(payload, 0, payload.byteLength);
  r.u32();
  const rest = payload.subarray(r.pos);
  const head = uleb(count + added);
  const out = new Uint8Array(head.length + rest.byteLength + entries.byteLength);
  out.set(head);
  out.set(rest, head.length);
  out.set(entries, head.length + rest.byteLength);
  return out;
}
