import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { AclWithReference, sample } from './p4-helpers.js';

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
          const acl = new AclWithReference(featuresJson);
          for (const e of entries) {
            // the entry's value near one of the networks, its low bits random
            const value = ((nets[e.base]! ^ (e.value & 0xff)) & e.mask) >>> 0;
            acl.add(value, e.mask, e.lo, Math.min(65535, e.lo + e.span), e.priority);
          }
          for (const p of packets) {
            if (p.dport === 9) continue; // egress drops UDP port 9
            const src = ((nets[p.base]! & 0xffff0000) | p.low) >>> 0;
            expect(acl.dscp(src, p.dport)).toBe(acl.expectedDscp(src, p.dport));
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});
