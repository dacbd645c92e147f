import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { sample } from './p4-helpers.js';

/*
 * Ternary tables with few distinct masks (ACLs) are matched by tuple space search, keyed by
 * int32 masked values (tables.ts). Random ACLs drawn from a handful of prefix masks — so the
 * tuple space, not the fallback scan, answers — with addresses across the whole 32-bit range
 * (high bit set included), against a reference written here: among entries whose masked
 * source address matches and whose port range holds the packet's, the lowest priority number
 * wins, ties to the entry added first.
 */

const featuresJson = compileP4(sample('features.p4')).bmv2;
const MASKS = [0, 0xff000000, 0xffff0000, 0xffffff00, 0xffffffff];

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

describe('tuple space search (ternary ACLs with few masks)', () => {
  it('picks the entry a priority scan of every entry picks', () => {
    const entry = fc.record({
      base: fc.integer({ min: 0, max: 7 }),
      value: fc.integer({ min: 0, max: 0xffffffff }),
      mask: fc.constantFrom(...MASKS),
      lo: fc.integer({ min: 0, max: 65535 }),
      span: fc.integer({ min: 0, max: 65535 }),
      priority: fc.integer({ min: 0, max: 4 }),
    });
    // a few address "networks", so that packets and entries share prefixes and hit
    const bases = fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(
        bases,
        fc.array(entry, { minLength: 8, maxLength: 40 }),
        fc.array(
          fc.record({
            base: fc.integer({ min: 0, max: 7 }),
            low: fc.integer({ min: 0, max: 0xffff }),
            dport: fc.integer({ min: 0, max: 65535 }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        (nets, entries, packets) => {
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
            // the entry's value near one of the networks, its low bits random
            const value = ((nets[e.base]! ^ (e.value & 0xff)) & e.mask) >>> 0;
            const hi = Math.min(65535, e.lo + e.span);
            const cls = 10 + (installed.length % 50); // never 9 (that class pushes a VLAN tag)
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
            if (p.dport === 9) continue; // egress drops UDP port 9
            const src = ((nets[p.base]! & 0xffff0000) | p.low) >>> 0;
            const winner = installed
              .filter((x) => (src & x.mask) >>> 0 === x.value && p.dport >= x.lo && p.dport <= x.hi)
              .reduce<(typeof installed)[number] | undefined>(
                (best, x) => (best === undefined || x.priority < best.priority ? x : best),
                undefined,
              );
            const out = sw.process(udpFrame(src, p.dport), 0);
            const dscp = out[0]!.bytes[15]! >> 2;
            expect(dscp).toBe(winner ? winner.cls & 63 : 1);
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});
