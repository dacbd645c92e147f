import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csum16, orNum } from '../src/backends/p4/bits.js';
import { compileCsum16, type PackedField } from '../src/backends/p4/codegen.js';
import type { PacketState } from '../src/backends/p4/state.js';

/*
 * The checksum of fixed-layout inputs (the IPv4 header's) is summed straight from field values
 * by generated code (codegen.ts compileCsum16), never packing bytes. Reference: pack the same
 * fields bit by bit into zeroed bytes with bits.ts's orNum, then bits.ts's csum16 over them.
 */

const fieldsArb = fc.array(fc.integer({ min: 1, max: 53 }), { minLength: 1, maxLength: 14 }).chain((widths) =>
  fc.tuple(
    fc.constant(widths),
    fc.tuple(...widths.map((w) => fc.bigInt({ min: 0n, max: (1n << BigInt(w)) - 1n }).map(Number))),
    // some inputs come through a value function (an expression) rather than a slot
    fc.array(fc.boolean(), { minLength: widths.length, maxLength: widths.length }),
  ),
);

function stateWith(values: readonly number[]): PacketState {
  return {
    n: Float64Array.from(values),
    b: [],
    valid: new Uint8Array(0),
    vb: new Int32Array(0),
    pkt: new Uint8Array(0),
    cursor: 0,
    exit: false,
    cloneSession: -1,
    cloneFieldList: -1,
    resubmit: -1,
    recirculate: -1,
    learn: -1,
    learnReceiver: 0,
  };
}

describe('csum16 summed from field values', () => {
  it('equals csum16 over the packed bytes, for any layout of fields up to 53 bits', () => {
    fc.assert(
      fc.property(fieldsArb, ([widths, values, viaFn]) => {
        let off = 0;
        const fields: PackedField[] = widths.map((w, i) => {
          const f = { off, width: w, slot: i, wide: false, signed: false };
          off += w;
          return f;
        });
        // reversed slots for value functions, so a wrong slot read shows up
        const fns = viaFn.map((on, i) => (on ? (s: PacketState) => s.n[widths.length + i]! : null));
        const s = stateWith([...values, ...values]);
        const sum = compileCsum16(fields, off, fns);
        expect(sum).not.toBeNull();
        const bytes = new Uint8Array(Math.ceil(off / 8));
        for (const [i, f] of fields.entries()) orNum(bytes, f.off, f.width, values[i]!);
        expect(sum!(s)).toBe(csum16(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('matches the IPv4 header checksum of a known packet', () => {
    // 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7 (checksum b861)
    const widths = [4, 4, 8, 16, 16, 3, 13, 8, 8, 32, 32];
    const values = [4, 5, 0, 0x73, 0, 2, 0, 64, 17, 0xc0a80001, 0xc0a800c7];
    let off = 0;
    const fields = widths.map((w, i) => {
      const f = { off, width: w, slot: i, wide: false, signed: false };
      off += w;
      return f;
    });
    expect(compileCsum16(fields, off)!(stateWith(values))).toBe(0xb861);
  });

  it('refuses fields wider than 53 bits (they are BigInts; the caller packs bytes)', () => {
    expect(compileCsum16([{ off: 0, width: 64, slot: 0, wide: true, signed: false }], 64)).toBeNull();
  });
});
