import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LpmTrie } from '../src/backends/p4/lpm-trie.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { trieAfterLookups } from '../src/backends/p4/tables.js';
import { compileP4 } from '../src/p4c/compile.js';
import { ipv4Frame, sample } from './p4-helpers.js';

/*
 * Route tables (one 32-bit lpm key) answer from a DIR-16-8-8 trie once trieAfterLookups(n)
 * lookups have passed since their entries last changed, and from a Map per prefix length
 * before that. Both against a reference written here: the longest installed prefix that
 * covers the address. Prefixes are drawn around a few "networks" so that they nest (/8 under
 * /16 under /24 under /32, lengths on both sides of the trie's 16- and 24-bit strides), and
 * addresses across the whole 32-bit range, high bit set included.
 */

const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
const quad = (v: number): [number, number, number, number] => [
  v >>> 24,
  (v >>> 16) & 255,
  (v >>> 8) & 255,
  v & 255,
];

interface Route {
  readonly value: number;
  readonly len: number;
}

function longest<T extends Route>(routes: readonly T[], key: number): T | undefined {
  let best: T | undefined;
  for (const r of routes)
    if ((key & maskOf(r.len)) >>> 0 === r.value && (best === undefined || r.len > best.len)) best = r;
  return best;
}

const nets = fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 });
const routeArb = fc.record({
  net: fc.integer({ min: 0, max: 3 }),
  noise: fc.integer({ min: 0, max: 0xffffffff }),
  len: fc.oneof(fc.integer({ min: 0, max: 32 }), fc.constantFrom(8, 15, 16, 17, 23, 24, 25, 31, 32)),
});
const keyArb = fc.record({
  net: fc.integer({ min: 0, max: 3 }),
  noise: fc.integer({ min: 0, max: 0xffffffff }),
});
/** Near a network: its top bits, and random low bits below a random cut. */
const near = (net: number, noise: number): number => {
  const cut = noise & 31;
  return ((net & maskOf(cut)) | (noise & ~maskOf(cut))) >>> 0;
};

describe('lpm trie (DIR-16-8-8)', () => {
  it('finds the longest covering prefix, as a scan of every prefix does', () => {
    fc.assert(
      fc.property(
        nets,
        fc.array(routeArb, { maxLength: 60 }),
        fc.array(keyArb, { minLength: 1, maxLength: 60 }),
        (ns, rs, ks) => {
          const routes: (Route & { id: number })[] = [];
          for (const r of rs) {
            const value = (near(ns[r.net]!, r.noise) & maskOf(r.len)) >>> 0;
            if (!routes.some((x) => x.len === r.len && x.value === value))
              routes.push({ value, len: r.len, id: routes.length });
          }
          const trie = new LpmTrie(routes.map((r) => ({ value: r.value, length: r.len, item: r.id })));
          for (const k of ks) {
            const key = near(ns[k.net]!, k.noise);
            expect(trie.lookup(key)).toBe(longest(routes, key)?.id);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a route table answers the same before and after its trie is built, across adds and deletes', () => {
    const json = compileP4(sample('basic_router.p4'), { defines: { NO_CONST_ENTRIES: '1' } }).bmv2;
    fc.assert(
      fc.property(
        nets,
        fc.array(routeArb, { minLength: 1, maxLength: 40 }),
        fc.array(keyArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (ns, rs, ks, deletes) => {
          const sw = new BehavioralSwitch(json);
          const table = sw.table('ipv4_lpm');
          const installed: (Route & { port: number; handle: number })[] = [];
          for (const r of rs) {
            const value = (near(ns[r.net]!, r.noise) & maskOf(r.len)) >>> 0;
            if (installed.some((x) => x.len === r.len && x.value === value)) continue;
            const port = installed.length + 1;
            const handle = sw.addEntry('ipv4_lpm', {
              key: [{ value, prefixLength: r.len }],
              action: 'ipv4_forward',
              args: [1, port],
            });
            installed.push({ value, len: r.len, port, handle });
          }
          const dsts = ks.map((k) => near(ns[k.net]!, k.noise));
          // whole packets for the keys drawn, then the table's own match() (the key array filled
          // as a generated pipeline fills it) until the trie must have been built, then packets
          const packets = (): void => {
            for (const dst of dsts) {
              const best = longest(installed, dst);
              const out = sw.process(ipv4Frame({ dst: quad(dst) }), 0);
              expect(out.map((o) => o.port)).toEqual(best ? [best.port] : []);
            }
          };
          const lookups = (): void => {
            for (let i = 0; i < trieAfterLookups(installed.length) + 1; i++) {
              const dst = dsts[i % dsts.length]!;
              table.keyN[0] = dst;
              expect(table.match()?.handle).toBe(longest(installed, dst)?.handle);
            }
          };
          packets(); // the Maps answer
          lookups();
          packets(); // the trie answers
          for (const d of deletes) {
            if (installed.length === 0) break;
            const [gone] = installed.splice(d % installed.length, 1);
            sw.deleteEntry('ipv4_lpm', gone!.handle);
          }
          packets(); // after deletes: the Maps again
          lookups();
          packets(); // and a rebuilt trie
        },
      ),
      { numRuns: 15 },
    );
  });
});
