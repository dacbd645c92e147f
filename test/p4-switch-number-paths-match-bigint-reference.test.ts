import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';

/*
 * The switch computes on numbers where a value's range allows it and on BigInts elsewhere
 * (src/backends/p4/expr.ts). These properties check that choice never changes a result:
 * random P4 expressions over fields of many widths (4..64 bits, signed and unsigned) run
 * through the compiled switch and through an arbitrary-precision reference written here from
 * the P4 spec; random exact/lpm/ternary entries over 9-, 48- and 64-bit keys are matched by
 * the switch and by a linear reference matcher.
 */

interface Ty {
  readonly w: number;
  readonly s: boolean;
}
const TYPES: readonly Ty[] = [
  { w: 4, s: false },
  { w: 8, s: false },
  { w: 13, s: false },
  { w: 16, s: false },
  { w: 32, s: false },
  { w: 48, s: false },
  { w: 64, s: false },
  { w: 8, s: true },
  { w: 16, s: true },
  { w: 40, s: true },
];
const tyName = (t: Ty): string => `${t.s ? 'int' : 'bit'}<${t.w}>`;
const field = (t: Ty, v: 'x' | 'y'): string => `${v}${t.s ? 's' : 'u'}${t.w}`;

/** Reduce to the type's domain: [0, 2^w) for bit<w>, two's complement for int<w>. */
const norm = (t: Ty, v: bigint): bigint => (t.s ? BigInt.asIntN(t.w, v) : BigInt.asUintN(t.w, v));

type Env = ReadonlyMap<string, bigint>;
interface Ex {
  readonly src: string;
  readonly ev: (env: Env) => bigint;
}

function leaf(t: Ty): fc.Arbitrary<Ex> {
  const vars = (['x', 'y'] as const).map((v) => {
    const name = field(t, v);
    return fc.constant<Ex>({ src: `hdr.i.${name}`, ev: (env) => env.get(name)! });
  });
  const lit = fc
    .bigInt({ min: 0n, max: (1n << BigInt(t.s ? t.w - 1 : t.w)) - 1n })
    .map((v): Ex => ({ src: `${t.w}${t.s ? 's' : 'w'}${v}`, ev: () => v }));
  return fc.oneof(...vars, lit);
}

function expr(t: Ty, depth: number): fc.Arbitrary<Ex> {
  if (depth === 0) return leaf(t);
  const sub = expr(t, depth - 1);
  const bin = (op: string, f: (a: bigint, b: bigint) => bigint) =>
    fc
      .tuple(sub, sub)
      .map(([a, b]): Ex => ({ src: `(${a.src} ${op} ${b.src})`, ev: (e) => norm(t, f(a.ev(e), b.ev(e))) }));
  const max = t.s ? (1n << BigInt(t.w - 1)) - 1n : (1n << BigInt(t.w)) - 1n;
  const min = t.s ? -(1n << BigInt(t.w - 1)) : 0n;
  const clamp = (v: bigint): bigint => (v < min ? min : v > max ? max : v);
  const options: fc.Arbitrary<Ex>[] = [
    leaf(t),
    bin('+', (a, b) => a + b),
    bin('-', (a, b) => a - b),
    bin('*', (a, b) => a * b),
    bin('&', (a, b) => a & b),
    bin('|', (a, b) => a | b),
    bin('^', (a, b) => a ^ b),
    bin('|+|', (a, b) => clamp(a + b)),
    bin('|-|', (a, b) => clamp(a - b)),
    sub.map((a): Ex => ({ src: `(~${a.src})`, ev: (e) => norm(t, ~a.ev(e)) })),
    fc
      .tuple(sub, fc.integer({ min: 0, max: t.w + 2 }))
      .map(([a, k]): Ex => ({ src: `(${a.src} << ${k})`, ev: (e) => norm(t, a.ev(e) << BigInt(k)) })),
    fc
      .tuple(sub, fc.integer({ min: 0, max: t.w + 2 }))
      .map(([a, k]): Ex => ({ src: `(${a.src} >> ${k})`, ev: (e) => norm(t, a.ev(e) >> BigInt(k)) })),
    fc.tuple(fc.constantFrom(...TYPES), fc.boolean(), sub, sub).chain(([ct, lt, a, b]) =>
      fc.tuple(expr(ct, depth - 1), expr(ct, depth - 1)).map(
        ([ca, cb]): Ex => ({
          src: `(${ca.src} ${lt ? '<' : '=='} ${cb.src} ? ${a.src} : ${b.src})`,
          ev: (e) => ((lt ? ca.ev(e) < cb.ev(e) : ca.ev(e) === cb.ev(e)) ? a.ev(e) : b.ev(e)),
        }),
      ),
    ),
  ];
  if (!t.s) {
    const others = TYPES.filter((u) => !u.s && u.w !== t.w);
    // casts between unsigned widths: truncate or zero-extend
    options.push(
      fc
        .constantFrom(...others)
        .chain((u) =>
          expr(u, depth - 1).map(
            (a): Ex => ({ src: `((${tyName(t)}) ${a.src})`, ev: (e) => norm(t, a.ev(e)) }),
          ),
        ),
    );
    // slices of a wider unsigned field
    const wider = TYPES.filter((u) => !u.s && u.w > t.w);
    if (wider.length > 0)
      options.push(
        fc.tuple(fc.constantFrom(...wider), fc.constantFrom<'x' | 'y'>('x', 'y')).chain(([u, v]) =>
          fc.integer({ min: 0, max: u.w - t.w }).map((lo): Ex => {
            const name = field(u, v);
            return {
              src: `hdr.i.${name}[${lo + t.w - 1}:${lo}]`,
              ev: (e) => norm(t, e.get(name)! >> BigInt(lo)),
            };
          }),
        ),
      );
    // concatenation of two narrower unsigned values whose widths add up to this one
    const halves = TYPES.filter((u) => !u.s && TYPES.some((v) => !v.s && u.w + v.w === t.w));
    for (const u of halves) {
      const v = TYPES.find((x) => !x.s && u.w + x.w === t.w)!;
      options.push(
        fc.tuple(expr(u, depth - 1), expr(v, depth - 1)).map(
          ([a, b]): Ex => ({
            src: `(${a.src} ++ ${b.src})`,
            ev: (e) => (a.ev(e) << BigInt(v.w)) | b.ev(e),
          }),
        ),
      );
    }
  }
  return fc.oneof({ depthSize: 'small' }, ...options);
}

/** Bit-exact reader, BigInt all the way: independent of the switch's number paths. */
function readField(bytes: Uint8Array, bitOff: number, w: number): bigint {
  let v = 0n;
  for (let i = 0; i < w; i++) {
    const bit = bitOff + i;
    v = (v << 1n) | BigInt((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1);
  }
  return v;
}

function program(results: readonly { t: Ty; e: Ex }[]): { source: string; inBits: number; outPad: number } {
  const inFields = TYPES.flatMap((t) => [`${tyName(t)} ${field(t, 'x')};`, `${tyName(t)} ${field(t, 'y')};`]);
  const inBits = TYPES.reduce((a, t) => a + 2 * t.w, 0);
  const inPad = (8 - (inBits % 8)) % 8;
  const outBits = results.reduce((a, r) => a + r.t.w, 0);
  const outPad = (8 - (outBits % 8)) % 8;
  const source = `#include <core.p4>
#include <v1model.p4>
header in_t { ${inFields.join(' ')} ${inPad ? `bit<${inPad}> pad;` : ''} }
header out_t { ${results.map((r, i) => `${tyName(r.t)} r${i};`).join(' ')} ${outPad ? `bit<${outPad}> pad;` : ''} }
struct headers { in_t i; out_t o; }
struct metadata { }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.i); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  apply {
    sm.egress_spec = 1;
    hdr.o.setValid();
${results.map((r, i) => `    hdr.o.r${i} = ${r.e.src};`).join('\n')}
  }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.i); pkt.emit(hdr.o); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
  return { source, inBits: inBits + inPad, outPad };
}

describe('number and BigInt paths agree with an arbitrary-precision reference', () => {
  it('random expressions over 4..64-bit fields compute what P4 says', () => {
    const result = fc.constantFrom(...TYPES).chain((t) => expr(t, 3).map((e) => ({ t, e })));
    fc.assert(
      fc.property(
        fc.array(result, { minLength: 1, maxLength: 6 }),
        fc.array(fc.uint8Array({ minLength: 64, maxLength: 64 }), { minLength: 1, maxLength: 4 }),
        (results, inputs) => {
          const { source, inBits } = program(results);
          const sw = new BehavioralSwitch(compileP4(source, { file: 'exprs.p4' }).bmv2);
          for (const input of inputs) {
            const bytes = input.subarray(0, inBits / 8);
            const env = new Map<string, bigint>();
            let off = 0;
            for (const t of TYPES)
              for (const v of ['x', 'y'] as const) {
                env.set(field(t, v), norm(t, readField(bytes, off, t.w)));
                off += t.w;
              }
            const [out] = sw.process(bytes, 0);
            expect(out).toBeDefined();
            let at = inBits;
            results.forEach((r, i) => {
              const got = norm(r.t, readField(out!.bytes, at, r.t.w));
              expect({ i, src: r.e.src, got }).toEqual({ i, src: r.e.src, got: r.e.ev(env) });
              at += r.t.w;
            });
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('exact (9 + 48 + 64-bit), lpm (64-bit) and ternary (48-bit) keys match like a linear reference', () => {
    const source = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<48> mac; bit<64> id; bit<8> tag; }
struct headers { h_t h; }
struct metadata { }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  action set(bit<8> v) { hdr.h.tag = v; }
  action add(bit<8> v) { hdr.h.tag = hdr.h.tag + v; }
  table ex { key = { sm.ingress_port: exact; hdr.h.mac: exact; hdr.h.id: exact; } actions = { set; NoAction; } default_action = NoAction(); }
  table lp { key = { hdr.h.id: lpm; } actions = { add; NoAction; } default_action = NoAction(); }
  table te { key = { hdr.h.mac: ternary; } actions = { add; NoAction; } default_action = NoAction(); }
  apply { sm.egress_spec = 1; hdr.h.tag = 0; ex.apply(); lp.apply(); te.apply(); }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
    const json = compileP4(source, { file: 'keys.p4' }).bmv2;
    // small value spaces so that packets hit entries often
    const mac = fc.bigInt({ min: 0n, max: 3n }).map((v) => 0xfedcba980000n | v);
    const id = fc.bigInt({ min: 0n, max: 3n }).map((v) => (v << 62n) | 0x123n);
    const port = fc.integer({ min: 0, max: 2 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ port, mac, id, v: fc.integer({ min: 1, max: 200 }) }), { maxLength: 12 }),
        fc.array(
          fc.record({ value: id, len: fc.integer({ min: 0, max: 64 }), v: fc.integer({ min: 1, max: 20 }) }),
          {
            maxLength: 12,
          },
        ),
        fc.array(
          fc.record({
            value: mac,
            mask: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
            v: fc.integer({ min: 1, max: 20 }),
            p: fc.nat(5),
          }),
          { maxLength: 12 },
        ),
        fc.array(fc.record({ port, mac, id }), { minLength: 1, maxLength: 10 }),
        (exacts, lpms, ternaries, packets) => {
          const sw = new BehavioralSwitch(json);
          const ex = new Map<string, number>();
          for (const e of exacts) {
            const k = `${e.port},${e.mac},${e.id}`;
            if (ex.has(k)) continue;
            sw.addEntry('ex', { key: [e.port, e.mac, e.id], action: 'set', args: [e.v] });
            ex.set(k, e.v);
          }
          const lp: { value: bigint; len: number; v: number }[] = [];
          const lpMask = (len: number): bigint =>
            len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(64 - len);
          for (const l of lpms) {
            const value = l.value & lpMask(l.len);
            if (lp.some((x) => x.len === l.len && x.value === value)) continue;
            sw.addEntry('lp', { key: [{ value, prefixLength: l.len }], action: 'add', args: [l.v] });
            lp.push({ value, len: l.len, v: l.v });
          }
          const te: { value: bigint; mask: bigint; v: number; p: number; seq: number }[] = [];
          for (const t of ternaries) {
            const value = t.value & t.mask;
            if (te.some((x) => x.p === t.p && x.value === value && x.mask === t.mask)) continue;
            sw.addEntry('te', { key: [{ value, mask: t.mask }], action: 'add', args: [t.v], priority: t.p });
            te.push({ value, mask: t.mask, v: t.v, p: t.p, seq: te.length });
          }
          for (const p of packets) {
            const bytes = new Uint8Array(15);
            const dv = new DataView(bytes.buffer);
            dv.setUint16(0, Number(p.mac >> 32n));
            dv.setUint32(2, Number(p.mac & 0xffffffffn));
            dv.setBigUint64(6, p.id);
            let tag = ex.get(`${p.port},${p.mac},${p.id}`) ?? 0;
            const best = lp
              .filter((x) => (p.id & lpMask(x.len)) === x.value)
              .sort((a, b) => b.len - a.len)[0];
            if (best) tag += best.v;
            const win = te
              .filter((x) => (p.mac & x.mask) === x.value)
              .sort((a, b) => a.p - b.p || a.seq - b.seq)[0];
            if (win) tag += win.v;
            const [out] = sw.process(bytes, p.port);
            expect(out!.bytes[14]).toBe(tag & 0xff);
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it('ternary + range tables with few mask tuples (the tuple-space path) pick what a linear scan picks', () => {
    const source = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<32> src; bit<16> port; bit<8> proto; bit<16> dport; bit<8> tag; }
struct headers { h_t h; }
struct metadata { }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  action tag(bit<8> v) { hdr.h.tag = v; }
  table acl {
    key = { hdr.h.src: ternary; hdr.h.port: ternary; hdr.h.proto: ternary; hdr.h.dport: range; }
    actions = { tag; NoAction; }
    default_action = NoAction();
  }
  apply { sm.egress_spec = 1; hdr.h.tag = 0; acl.apply(); }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
    const json = compileP4(source, { file: 'acl.p4' }).bmv2;
    const small = (max: number) => fc.integer({ min: 0, max });
    const entry = fc.record({
      src: small(1).map((v) => (0x0a000000 | (v << 8) | v) >>> 0),
      srcMask: fc.constantFrom(0xffffff00, 0xffffffff),
      port: small(1),
      portMask: fc.constantFrom(0, 0xffff),
      proto: fc.constantFrom(6, 17),
      lo: small(60),
      span: small(10),
      priority: small(4),
    });
    const packet = fc.record({
      src: small(1).map((v) => (0x0a000000 | (v << 8) | (v + (v % 2))) >>> 0),
      port: small(1),
      proto: fc.constantFrom(6, 17),
      dport: small(70),
    });
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 8, maxLength: 40 }),
        fc.array(packet, { minLength: 1, maxLength: 20 }),
        (entries, packets) => {
          const sw = new BehavioralSwitch(json);
          const rows: { e: (typeof entries)[number]; tag: number; seq: number }[] = [];
          for (const e of entries) {
            const tag = rows.length + 1;
            try {
              sw.addEntry('acl', {
                key: [
                  { value: (e.src & e.srcMask) >>> 0, mask: e.srcMask },
                  { value: e.port & e.portMask, mask: e.portMask },
                  { value: e.proto, mask: 0xff },
                  { low: e.lo, high: e.lo + e.span },
                ],
                action: 'tag',
                args: [tag],
                priority: e.priority,
              });
            } catch {
              continue; // the same entry at the same priority
            }
            rows.push({ e, tag, seq: rows.length });
          }
          for (const p of packets) {
            const bytes = new Uint8Array(12);
            const dv = new DataView(bytes.buffer);
            dv.setUint32(0, p.src);
            dv.setUint16(4, p.port);
            bytes[6] = p.proto;
            dv.setUint16(7, p.dport);
            const win = rows
              .filter(
                ({ e }) =>
                  (p.src & e.srcMask) >>> 0 === (e.src & e.srcMask) >>> 0 &&
                  (p.port & e.portMask) === (e.port & e.portMask) &&
                  p.proto === e.proto &&
                  p.dport >= e.lo &&
                  p.dport <= e.lo + e.span,
              )
              .sort((x, y) => x.e.priority - y.e.priority || x.seq - y.seq)[0];
            const [out] = sw.process(bytes, 0);
            expect(out!.bytes[9]).toBe(win ? win.tag : 0);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
