import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileToIr } from '../src/p4c/compile.js';
import { allocateStages, TnaFitError, TOFINO_LIKE } from '../src/p4c/stages.js';

/** Tables t0..tn-1 over one header; `links[i]` says how t(i+1) depends on t(i). */
function chain(links: readonly ('match' | 'action' | 'successor' | 'none')[]): string {
  const n = links.length + 1;
  const tables: string[] = [];
  for (let i = 0; i < n; i++) {
    const link = links[i - 1];
    // match: key on the field the previous table's action writes; action: write that field too.
    const key = link === 'match' ? `meta.f${i - 1}` : `hdr.h.k${i % 4}`;
    const body = link === 'action' ? `meta.f${i - 1} = v; meta.f${i} = v;` : `meta.f${i} = v;`;
    tables.push(
      `action a${i}(bit<8> v) { ${body} } table t${i} { key = { ${key}: exact; } actions = { a${i}; NoAction; } size = 256; }`,
    );
  }
  // successor: t(i+1) and what follows run only when t(i) hit.
  const applyFrom = (i: number): string => {
    if (i >= n) return '';
    return links[i] === 'successor'
      ? `if (t${i}.apply().hit) { ${applyFrom(i + 1)} }`
      : `t${i}.apply(); ${applyFrom(i + 1)}`;
  };
  const text = applyFrom(0);
  const fields = Array.from({ length: n }, (_, i) => `bit<8> f${i};`).join(' ');
  return `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> k0; bit<8> k1; bit<8> k2; bit<8> k3; }
struct headers { h_t h; }
struct metadata { ${fields} }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  ${tables.join('\n  ')}
  apply { ${text} }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
}

const place = (src: string, model = TOFINO_LIKE) =>
  allocateStages(compileToIr(src, { file: 'chain.p4' }), model);

describe('stage allocation: dependencies and the resource model', () => {
  it('a match dependency puts the reader a stage later, named as such', () => {
    const r = place(chain(['match']));
    const [t0, t1] = ['I.t0', 'I.t1'].map((n) => r.tables.find((t) => t.name === n)!);
    expect(t1!.dependsOn).toEqual([{ table: 'I.t0', kind: 'match' }]);
    expect(t1!.stage).toBe(t0!.stage + 1);
  });

  it('an action dependency (both write one field) also needs a later stage', () => {
    const r = place(chain(['action']));
    const t1 = r.tables.find((t) => t.name === 'I.t1')!;
    expect(t1.dependsOn).toEqual([{ table: 'I.t0', kind: 'action' }]);
    expect(t1.stage).toBeGreaterThan(r.tables.find((t) => t.name === 'I.t0')!.stage);
  });

  it('a successor dependency may share the stage (predication), independent tables share stage 0', () => {
    const r = place(chain(['successor']));
    const t1 = r.tables.find((t) => t.name === 'I.t1')!;
    expect(t1.dependsOn).toEqual([{ table: 'I.t0', kind: 'successor' }]);
    expect(t1.stage).toBe(r.tables.find((t) => t.name === 'I.t0')!.stage);
    const free = place(chain(['none', 'none']));
    expect(free.tables.map((t) => t.stage)).toEqual([0, 0, 0]);
  });

  it('every placement respects its dependencies and the per-stage limits (random chains)', () => {
    const link = fc.constantFrom('match' as const, 'action' as const, 'successor' as const, 'none' as const);
    fc.assert(
      fc.property(fc.array(link, { minLength: 1, maxLength: 8 }), (links) => {
        const r = place(chain(links));
        const at = new Map(r.tables.map((t) => [t.name, t.stage]));
        for (const t of r.tables) {
          for (const d of t.dependsOn) {
            const s = at.get(d.table)!;
            expect(d.kind === 'successor' ? t.stage >= s : t.stage > s).toBe(true);
          }
        }
        for (const s of r.stages) {
          expect(s.tables.length).toBeLessThanOrEqual(r.model.tablesPerStage);
          expect(s.sram).toBeLessThanOrEqual(r.model.sramBlocksPerStage);
          expect(s.tcam).toBeLessThanOrEqual(r.model.tcamBlocksPerStage);
          expect(s.matchBits).toBeLessThanOrEqual(r.model.matchBitsPerStage);
        }
        // k consecutive match/action dependencies need at least k+1 stages.
        let run = 0;
        let longest = 0;
        for (const l of links) {
          run = l === 'match' || l === 'action' ? run + 1 : 0;
          longest = Math.max(longest, run);
        }
        expect(r.stagesUsed).toBeGreaterThanOrEqual(longest + 1);
      }),
      { numRuns: 40 },
    );
  });

  it('a dependency chain longer than the pipeline does not fit, naming the table that overflows', () => {
    const links = Array.from({ length: TOFINO_LIKE.stages }, () => 'match' as const);
    try {
      place(chain(links));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TnaFitError);
      expect((err as TnaFitError).table).toBe(`I.t${TOFINO_LIKE.stages}`);
      expect((err as Error).message).toMatch(/its dependencies put it at stage 12 or later/);
    }
    // One stage less than the chain fits exactly.
    expect(place(chain(links.slice(1))).stagesUsed).toBe(TOFINO_LIKE.stages);
  });
});
