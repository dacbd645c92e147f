/**
 * The deparser: valid headers in the program's emit order, then the payload the parser did
 * not consume. Each header's fields are packed by generated straight-line code (codegen.ts);
 * output packets are views cut from a shared slab, or, at most 64 bytes long and of the input's
 * length, typed arrays of their own that V8 keeps in its heap (ON_HEAP_MAX).
 */

import { orBits, orNum } from './bits.js';
import { compilePacker, int, packerStatements } from './codegen.js';
import { wrapNum } from './expr.js';
import type { HeaderLayout } from './layout.js';
import type { PacketState } from './state.js';

/** Size of the slabs output packets are cut from. */
const SLAB_BYTES = 64 * 1024;

/**
 * Output packets of at most this many bytes that keep the input's length are copies of their
 * own rather than slab views: V8 (typed_array_max_size_in_heap, 64 by default) allocates a
 * typed array that small in its heap, inline, so `new Uint8Array(pkt)` is one cheap call —
 * measured ~30 % cheaper than a slab view and set() at 60 bytes. One byte over, V8 gives it a
 * backing store of its own, over ten times dearer: do not raise this.
 */
const ON_HEAP_MAX = 64;

export class Deparser {
  readonly #layouts: readonly HeaderLayout[];
  readonly #emitOrder: readonly number[];

  constructor(layouts: readonly HeaderLayout[], emitOrder: readonly number[]) {
    this.#layouts = layouts;
    this.#emitOrder = emitOrder;
  }

  /** Bits each header emits, and its field writer: compiled once, used by every deparse. */

  #emitter(l: HeaderLayout): (s: PacketState, out: Uint8Array, off: number) => number {
    const fields = l.slots.map((fs, i) => ({
      fs,
      w: l.widths[i]!,
      varbit: i === l.varbitField,
      unsign: fs.signed && !fs.wide ? wrapNum(l.widths[i]!, false) : null,
    }));
    const hid = l.id;
    if (l.varbitField < 0 && l.bits % 8 === 0) {
      let off = 0;
      const packed = fields.map((f) => {
        const x = { off, width: f.w, slot: f.fs.slot, wide: f.fs.wide, signed: f.fs.signed };
        off += f.w;
        return x;
      });
      const pack = compilePacker(packed, l.bits);
      const bits = l.bits;
      // headers start on byte boundaries: every header before this one is whole bytes
      return (s, out, at) => {
        pack(s, out, at >> 3);
        return bits;
      };
    }
    return (s, out, off) => {
      // the buffer may hold the input packet's bytes here: clear this header's before OR-ing
      out.fill(0, off >> 3, (off + l.bits + (l.varbitField >= 0 ? s.vb[hid]! : 0) + 7) >> 3);
      let at = off;
      for (const f of fields) {
        const w = f.varbit ? s.vb[hid]! : f.w;
        if (f.fs.wide) orBits(out, at, w, s.b[f.fs.slot]!);
        else orNum(out, at, w, f.unsign ? f.unsign(s.n[f.fs.slot]!) : s.n[f.fs.slot]!);
        at += w;
      }
      return at - off;
    };
  }

  /**
   * Output packets are views into a shared slab, as Node's Buffer pool does: a typed array over
   * 64 bytes otherwise gets its own backing store, which costs more than the rest of a simple
   * program's packet. Every byte of a view is written before it is returned.
   */
  #slab = new ArrayBuffer(SLAB_BYTES);
  #slabUsed = 0;

  #alloc(n: number): Uint8Array {
    if (n > SLAB_BYTES / 16) return new Uint8Array(n);
    if (this.#slabUsed + n > SLAB_BYTES) {
      this.#slab = new ArrayBuffer(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const v = new Uint8Array(this.#slab, this.#slabUsed, n);
    this.#slabUsed += (n + 7) & ~7;
    return v;
  }

  /** The deparser as one generated function, built on first use. */
  #generated: ((s: PacketState) => Uint8Array) | null = null;

  deparse(s: PacketState): Uint8Array {
    if (this.#generated === null) this.#generated = this.#compile();
    return this.#generated(s);
  }

  /**
   * One function for the program's emit order: the output length summed from constants (and
   * varbit lengths) of the valid headers, then each valid header packed — inline, straight-line
   * byte stores for byte-aligned fixed-size headers, its emitter for the rest. The source holds
   * only slot numbers and constants.
   */
  #compile(): (s: PacketState) => Uint8Array {
    const emitters = this.#layouts.map((l) => this.#emitter(l));
    const size: string[] = [];
    const emit: string[] = [];
    for (const id of this.#emitOrder) {
      const l = this.#layouts[id]!;
      const h = int(id);
      size.push(`if (v[${h}] !== 0) bits += ${int(l.bits)}${l.varbitField >= 0 ? ` + vb[${h}]` : ''};`);
      if (l.varbitField < 0 && l.bits % 8 === 0) {
        let off = 0;
        const fields = l.slots.map((fs, i) => {
          const f = { off, width: l.widths[i]!, slot: fs.slot, wide: fs.wide, signed: fs.signed };
          off += l.widths[i]!;
          return f;
        });
        // headers start on byte boundaries: every header before this one is whole bytes
        emit.push(
          `if (v[${h}] !== 0) {\n{ const o = off >> 3;\n${packerStatements(fields, l.bits).join('\n')}\n}\noff += ${int(l.bits)};\n}`,
        );
      } else emit.push(`if (v[${h}] !== 0) off += E[${h}](s, out, off);`);
    }
    const src = `return function deparse(s) {
const n = s.n; const v = s.valid; const vb = s.vb;
let bits = 0;
${size.join('\n')}
const pkt = s.pkt;
const hdrBytes = bits >> 3;
let out;
if (hdrBytes === s.cursor) {
  // headers take as many bytes as were parsed (fields rewritten, none added or removed):
  // copy the packet whole, then pack the headers over its front: a packet of at most
  // ON_HEAP_MAX bytes is copied into a typed array of its own (V8 keeps one that small in its
  // heap, allocated inline: one call, about a third cheaper than a slab view and set());
  // a larger one into a slab view (one set() call; a byte loop measured slower from ~50 bytes)
  if (pkt.length <= ${int(ON_HEAP_MAX)}) out = new Uint8Array(pkt);
  else {
    out = alloc(pkt.length);
    out.set(pkt);
  }
} else {
  out = alloc(hdrBytes + pkt.length - s.cursor);
  out.set(pkt.subarray(s.cursor), hdrBytes);
}
let off = 0;
${emit.join('\n')}
return out;
};`;
    const make = new Function('E', 'alloc', 'orBits', src);
    return make(emitters, (len: number) => this.#alloc(len), orBits) as (s: PacketState) => Uint8Array;
  }
}
