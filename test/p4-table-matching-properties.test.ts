import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { AclWithReference, ipv4Frame, sample } from './p4-helpers.js';

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
      // Dense random masks, and sparse ones (~4 bits) that many sources match, so entries overlap
      // and priorities decide.
      mask: fc.oneof(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc
          .tuple(...[0, 1, 2].map(() => fc.integer({ min: 0, max: 0xffffffff })))
          .map(([a, b, c]) => (a! & b! & c!) >>> 0),
      ),
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
            // Aim at an entry (its masked bits, the rest random) or not: random sources alone
            // almost never match a random mask, let alone two entries at once.
            aim: fc.option(fc.nat(), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 15 },
        ),
        (entries, packets) => {
          const acl = new AclWithReference(featuresJson);
          for (const e of entries) {
            acl.add((e.value & e.mask) >>> 0, e.mask, e.lo, Math.min(65535, e.lo + e.span), e.priority);
          }
          for (const p of packets) {
            if (p.dport === 9) continue; // egress drops UDP port 9
            const at = p.aim === undefined ? undefined : entries[p.aim % entries.length]!;
            const src = at ? ((at.value & at.mask) | (p.src & ~at.mask)) >>> 0 : p.src;
            const dport = at ? at.lo : p.dport;
            if (dport === 9) continue;
            expect(acl.dscp(src, dport)).toBe(acl.expectedDscp(src, dport));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
