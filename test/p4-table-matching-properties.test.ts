import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { ipv4Frame, sample } from './p4-helpers.js';

const routerJson = compileP4(sample('basic_router.p4'), { defines: { NO_CONST_ENTRIES: '1' } }).bmv2;
const featuresJson = compileP4(sample('features.p4')).bmv2;

const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
const quad = (v: number): [number, number, number, number] => [
  v >>> 24,
  (v >>> 16) & 255,
  (v >>> 8) & 255,
  v & 255,
];

describe('table matching semantics (property tests against a reference model)', () => {
  it('lpm: the longest matching prefix wins', () => {
    const route = fc.record({
      value: fc.integer({ min: 0, max: 0xffffffff }),
      len: fc.integer({ min: 0, max: 32 }),
    });
    fc.assert(
      fc.property(
        fc.array(route, { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 20 }),
        (routes, dsts) => {
          const sw = new BehavioralSwitch(routerJson);
          const installed: { value: number; len: number; port: number }[] = [];
          for (const r of routes) {
            const value = (r.value & maskOf(r.len)) >>> 0;
            if (installed.some((x) => x.len === r.len && x.value === value)) continue;
            const port = installed.length + 1;
            sw.addEntry('ipv4_lpm', {
              key: [{ value, prefixLength: r.len }],
              action: 'ipv4_forward',
              args: [1, port],
            });
            installed.push({ value, len: r.len, port });
          }
          for (const dst of dsts) {
            const best = installed
              .filter((x) => (dst & maskOf(x.len)) >>> 0 === x.value)
              .sort((a, b) => b.len - a.len)[0];
            const out = sw.process(ipv4Frame({ dst: quad(dst) }), 0);
            expect(out.map((o) => o.port)).toEqual(best ? [best.port] : []);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('ternary + range: the lowest priority number among matching entries wins, ties by insertion', () => {
    const entry = fc.record({
      value: fc.integer({ min: 0, max: 0xffffffff }),
      mask: fc.integer({ min: 0, max: 0xffffffff }),
      lo: fc.integer({ min: 0, max: 65535 }),
      span: fc.integer({ min: 0, max: 40000 }),
      priority: fc.integer({ min: 0, max: 6 }),
    });
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 25 }),
        fc.array(
          fc.record({
            src: fc.integer({ min: 0, max: 0xffffffff }),
            dport: fc.integer({ min: 0, max: 65535 }),
          }),
          { minLength: 1, maxLength: 15 },
        ),
        (entries, packets) => {
          const sw = new BehavioralSwitch(featuresJson);
          sw.addEntry('l2', { key: [0xaaaaaaaaaaaan], action: 'set_port', args: [2] });
          const installed: {
            value: number;
            mask: number;
            lo: number;
            hi: number;
            priority: number;
            cls: number;
          }[] = [];
          for (const e of entries) {
            const value = (e.value & e.mask) >>> 0;
            const hi = Math.min(65535, e.lo + e.span);
            const cls = 10 + installed.length; // never 9 (that class pushes a VLAN tag)
            try {
              sw.addEntry('acl', {
                key: [
                  { value, mask: e.mask },
                  { value: 0, mask: 0 },
                  { low: e.lo, high: hi },
                ],
                action: 'set_class',
                args: [cls],
                priority: e.priority,
              });
            } catch {
              continue; // an identical entry at the same priority
            }
            installed.push({ value, mask: e.mask, lo: e.lo, hi, priority: e.priority, cls });
          }
          for (const p of packets) {
            const frame = udpFrame(p.src, p.dport);
            const winner = installed
              .filter((x) => (p.src & x.mask) >>> 0 === x.value && p.dport >= x.lo && p.dport <= x.hi)
              .sort((a, b) => a.priority - b.priority)[0];
            const out = sw.process(frame, 0);
            if (p.dport === 9) continue; // egress drops UDP port 9
            const dscp = out[0]!.bytes[15]! >> 2;
            expect(dscp).toBe(winner ? winner.cls & 63 : 1);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

function udpFrame(src: number, dport: number): Uint8Array {
  const b = new Uint8Array(14 + 20 + 8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0xaaaaaaaa);
  dv.setUint16(4, 0xaaaa);
  dv.setUint16(12, 0x0800);
  b[14] = 0x45;
  dv.setUint16(16, 28);
  b[22] = 64;
  b[23] = 17;
  dv.setUint32(26, src);
  dv.setUint32(30, 0x0a000001);
  dv.setUint16(34, 1000);
  dv.setUint16(36, dport);
  dv.setUint16(38, 8);
  return b;
}
