import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { P4CompileError } from '../src/p4c/errors.js';

// Constructs the p4c samples needed (control-level initializers, calls nested in expressions,
// list initializers, header parameters and results, `table t()`): each compiles to what the
// P4_16 spec says, checked on the switch against values computed here, or is refused by name.

/** Ethernet-less toy: one header h { a, b, c, d : bit<8> } extracted and emitted; egress port 1. */
function program(o: { decls?: string; locals?: string; ingress: string }): string {
  return `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<8> b; bit<8> c; bit<8> d; }
header g_t { bit<8> x; bit<8> y; }
struct headers { h_t h; g_t g; }
struct metadata { bit<8> m; }
${o.decls ?? ''}
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  ${o.locals ?? ''}
  apply { sm.egress_spec = 1; ${o.ingress} }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); pkt.emit(hdr.g); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
}

function run(src: string, bytes: number[]): number[] {
  const sw = new BehavioralSwitch(compileP4(src, { file: 't.p4' }).bmv2);
  const out = sw.process(Uint8Array.from(bytes), 0);
  expect(out.map((p) => p.port)).toEqual([1]);
  return [...out[0]!.bytes];
}

function refusal(src: string): P4CompileError {
  try {
    compileP4(src, { file: 't.p4' });
  } catch (err) {
    expect(err).toBeInstanceOf(P4CompileError);
    return err as P4CompileError;
  }
  throw new Error('expected a refusal');
}

const byte = fc.integer({ min: 0, max: 255 });

describe('p4c front end: constructs from the p4c samples', () => {
  it('a control-level variable initializer runs at the start of every apply', () => {
    // The initializer reads the packet, so it must run per packet, not once.
    const src = program({ locals: 'bit<8> first = hdr.h.a + 1;', ingress: 'hdr.h.d = first;' });
    expect(run(src, [5, 0, 0, 0])).toEqual([5, 0, 0, 6]);
    expect(run(src, [9, 0, 0, 0])).toEqual([9, 0, 0, 10]);
  });

  it('calls nested in expressions are evaluated, left to right, with copy-in', () => {
    const src = program({
      decls: 'bit<8> add(in bit<8> x, in bit<8> y) { return x + y; }',
      ingress: 'hdr.h.c = add(hdr.h.a, hdr.h.b) ^ (add(hdr.h.b, 8w1) << 1);',
    });
    const sw = new BehavioralSwitch(compileP4(src, { file: 't.p4' }).bmv2);
    fc.assert(
      fc.property(byte, byte, (a, b) => {
        const [out] = sw.process(Uint8Array.from([a, b, 0, 0]), 0);
        const expected = ((a + b) & 255) ^ ((((b + 1) & 255) << 1) & 255);
        expect([...out!.bytes]).toEqual([a, b, expected, 0]);
      }),
      { numRuns: 50 },
    );
  });

  it('a call in an if condition runs before the branch is chosen', () => {
    const src = program({
      decls: 'bool big(in bit<8> x) { return x > 100; }',
      ingress: 'if (big(hdr.h.a)) { hdr.h.d = 1; } else { hdr.h.d = 2; }',
    });
    expect(run(src, [200, 0, 0, 0])[3]).toBe(1);
    expect(run(src, [7, 0, 0, 0])[3]).toBe(2);
  });

  it('x = f(x) with an inout parameter ends with the returned value in x', () => {
    const src = program({
      decls: 'bit<8> bump(inout bit<8> v) { v = v + 1; return 8w42; }',
      ingress: 'hdr.h.a = bump(hdr.h.a); hdr.h.b = bump(hdr.h.c);',
    });
    // a: copy-out writes a+1, then the result 42 lands in a; c gets c+1 and b gets 42.
    expect(run(src, [1, 0, 7, 0])).toEqual([42, 42, 8, 0]);
  });

  it('a list initializes a header field by field and makes it valid', () => {
    const src = program({ ingress: 'hdr.g = { 8w7, hdr.h.a };' });
    expect(run(src, [3, 0, 0, 0])).toEqual([3, 0, 0, 0, 7, 3]);
  });

  it('a function can return a header built from a list, and take headers in and out', () => {
    const src = program({
      decls: `g_t make(in bit<8> v) { return { v, v + 1 }; }
void clear(out g_t g) { }
bit<8> sum(in h_t h) { return h.a + h.b; }`,
      ingress: 'hdr.g = make(hdr.h.a); hdr.h.d = sum(hdr.h);',
    });
    expect(run(src, [4, 5, 0, 0])).toEqual([4, 5, 0, 9, 4, 5]);
    // An out header starts invalid: clear() leaves hdr.g invalid, so it is not emitted.
    const cleared = program({
      decls: 'void clear(out g_t g) { }',
      ingress: 'hdr.g.setValid(); clear(hdr.g);',
    });
    expect(run(cleared, [1, 2, 3, 4])).toEqual([1, 2, 3, 4]);
  });

  it('accepts `table t()` with an empty parameter list', () => {
    const src = program({
      locals: 'action set() { hdr.h.d = 9; } table t() { actions = { set; } const default_action = set; }',
      ingress: 't.apply();',
    });
    expect(run(src, [0, 0, 0, 0])).toEqual([0, 0, 0, 9]);
  });

  it('a writing function right of || or in a ?: branch runs only when reached (short-circuit)', () => {
    const decls = 'bool touch(inout bit<8> v) { v = 1; return true; }';
    const or = program({
      decls,
      ingress: 'bool x = hdr.h.a == 0 || touch(hdr.h.b); if (x) { hdr.h.d = 7; }',
    });
    expect(run(or, [0, 5, 0, 0])).toEqual([0, 5, 0, 7]); // a == 0: touch never runs
    expect(run(or, [3, 5, 0, 0])).toEqual([3, 1, 0, 7]); // a != 0: touch runs and returns true
    const mux = program({ decls, ingress: 'bool y = hdr.h.a == 0 ? true : touch(hdr.h.c);' });
    expect(run(mux, [0, 0, 5, 0])).toEqual([0, 0, 5, 0]);
    expect(run(mux, [1, 0, 5, 0])).toEqual([1, 0, 1, 0]);
    // A literal on the left decides the operator statically.
    const decided = program({
      decls,
      ingress: 'bool z = false || touch(hdr.h.b); bool w = true || touch(hdr.h.c);',
    });
    expect(run(decided, [0, 5, 5, 0])).toEqual([0, 1, 5, 0]);
  });

  it('a table applied inside an expression is applied only when reached', () => {
    const src = program({
      locals:
        'action mark() { hdr.h.d = 9; } table t { key = { hdr.h.a: exact; } actions = { mark; } default_action = mark(); }',
      ingress: 'bool x = hdr.h.b == 0 || t.apply().hit; hdr.h.c = x ? 8w1 : 8w2;',
    });
    expect(run(src, [0, 0, 0, 0])).toEqual([0, 0, 1, 0]); // b == 0: t is not applied
    expect(run(src, [0, 4, 0, 0])).toEqual([0, 4, 2, 9]); // t applied, misses, default marks d
  });

  it('an action with arguments bound in the actions list writes through them (copy-out even on exit)', () => {
    const src = program({
      locals:
        'action bump(inout bit<8> v, bit<8> by) { v = v + by; } table t { key = { hdr.h.a: exact; } actions = { bump(hdr.h.b); } const entries = { 1: bump(5); } }',
      ingress: 't.apply();',
    });
    expect(run(src, [1, 10, 0, 0])).toEqual([1, 15, 0, 0]); // hit: b += 5
    expect(run(src, [2, 10, 0, 0])).toEqual([2, 10, 0, 0]); // miss: NoAction
    const exiting = program({
      locals: 'action set_then_exit(inout bit<8> v) { v = 2; exit; }',
      ingress: 'set_then_exit(hdr.h.d); hdr.h.c = 9;',
    });
    expect(run(exiting, [0, 0, 0, 0])).toEqual([0, 0, 0, 2]); // d copied out, the rest skipped
  });

  it('a control instance applied inside another runs its body in place on the arguments', () => {
    const src = program({
      decls: `control Add(inout h_t x, in bit<8> by) {
  action add() { x.c = x.a + by; }
  table t { actions = { add; } const default_action = add; }
  apply { t.apply(); }
}`,
      locals: 'Add() adder;',
      ingress: 'adder.apply(hdr.h, hdr.h.b + 1);',
    });
    expect(run(src, [3, 4, 0, 0])).toEqual([3, 4, 8, 0]);
    const names = compileP4(src, { file: 't.p4' }).bmv2 as { pipelines: { tables: { name: string }[] }[] };
    expect(names.pipelines[0]!.tables.map((t) => t.name)).toContain('I.adder.t');
  });

  it('refuses a control instance applied to overlapping arguments', () => {
    const e = refusal(
      program({
        decls: 'control Two(inout h_t x, inout bit<8> y) { apply { y = x.a; } }',
        locals: 'Two() two;',
        ingress: 'two.apply(hdr.h, hdr.h.a);',
      }),
    );
    expect(e.message).toMatch(/arguments of I\.two\.apply that overlap \(hdr\.h and hdr\.h\.a\)/);
  });

  it('@priority on const entries overrides the written order (a lower number wins)', () => {
    const src = program({
      locals: `action set(bit<8> v) { hdr.h.d = v; }
  table t { key = { hdr.h.a: ternary; } actions = { set; }
    const entries = { 0x01 &&& 0x0f: set(1) @priority(3); 0x11: set(2); 0x11 &&& 0xf0: set(3) @priority(1); } }`,
      ingress: 't.apply();',
    });
    expect(run(src, [0x01, 0, 0, 0])[3]).toBe(1); // only the first entry matches
    expect(run(src, [0x11, 0, 0, 0])[3]).toBe(3); // all match: priority 1 beats written order
    expect(run(src, [0x12, 0, 0, 0])[3]).toBe(3);
  });

  it('headers compare equal when both are invalid or both valid with equal fields', () => {
    const src = program({
      locals: 'g_t copy;',
      ingress: `copy = { hdr.h.a, hdr.h.b };
        if (hdr.h.c == hdr.h.d) { copy.setInvalid(); }
        hdr.g.setValid(); hdr.g.x = hdr.h.a; hdr.g.y = 8w7;
        hdr.h.d = (bit<8>)(bit<1>)(copy == hdr.g);`,
    });
    expect(run(src, [1, 7, 5, 6])).toEqual([1, 7, 5, 1, 1, 7]); // both valid, fields equal
    expect(run(src, [1, 8, 5, 6])).toEqual([1, 8, 5, 0, 1, 7]); // y differs
    expect(run(src, [1, 7, 6, 6])).toEqual([1, 7, 6, 0, 1, 7]); // copy invalid, hdr.g valid
  });

  it('assigns a slice of a slice', () => {
    const src = program({ ingress: 'bit<8> n = 8w0xff; n[7:4][2:1] = 2w0; hdr.h.d = n;' });
    expect(run(src, [0, 0, 0, 0])[3]).toBe(0b10011111);
  });

  it('a sub-parser applied in a state is inlined: its states run there, then the rest of the state', () => {
    const src = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<8> b; bit<8> c; bit<8> d; }
header g_t { bit<8> x; bit<8> y; }
struct headers { h_t h; g_t g; }
struct metadata { bit<8> m; }
parser Sub(packet_in pkt, inout headers hdr, out bit<8> seen) {
  bit<8> local;
  state start { pkt.extract(hdr.g); local = hdr.g.x; transition select(local) { 1: twice; default: accept; } }
  state twice { seen = local + hdr.g.y; transition accept; }
}
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  Sub() sub;
  state start { pkt.extract(hdr.h); sub.apply(pkt, hdr, meta.m); hdr.h.d = meta.m; transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { sm.egress_spec = 1; } }
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); pkt.emit(hdr.g); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
    expect(run(src, [0, 0, 0, 0, 1, 5])).toEqual([0, 0, 0, 6, 1, 5]); // Sub's second state ran
    expect(run(src, [0, 0, 0, 0, 2, 5])).toEqual([0, 0, 0, 0, 2, 5]); // accepted early: m stays 0
    const overlap = src.replace('sub.apply(pkt, hdr, meta.m)', 'sub.apply(pkt, hdr, hdr.h.a)');
    expect(refusal(overlap).message).toMatch(/arguments of sub\.apply that overlap \(hdr and hdr\.h\.a\)/);
  });

  it('refuses a call that writes what the same statement reads elsewhere', () => {
    const decls = 'bit<8> touch(inout bit<8> v) { v = 1; return 8w2; }';
    const e = refusal(program({ decls, ingress: 'hdr.h.c = hdr.h.b + touch(hdr.h.b);' }));
    expect(e.message).toMatch(/function touch writes hdr\.h\.b, which the same statement also reads/);
  });

  it('refuses a list of the wrong length for a header', () => {
    const e = refusal(program({ ingress: 'hdr.g = { 8w1 };' }));
    expect(e.kind).toBe('type');
    expect(e.message).toMatch(/2 values for header g_t, found 1/);
  });
});
