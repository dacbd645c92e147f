import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileToIr } from '../src/p4c/compile.js';
import { P4CompileError } from '../src/p4c/errors.js';
import { toTna, TnaUnsupportedError } from '../src/p4c/tna.js';
import { checkTnaProgram } from '../src/p4c/tna-check.js';
import { packagePath } from '../src/runtime/package-root.js';

const dirs = [packagePath('p4', 'samples'), join(import.meta.dirname, 'p4')];
const corpus = dirs.flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.p4'))
    .map((f) => join(d, f)),
);
// p4c's own samples are not in the repository (see scripts/p4c-samples.ts); where a developer
// has a copy, every compiled one is rewritten too.
const samplesDir = process.env.THUNDERPAC_P4C_SAMPLES ?? packagePath('.cache', 'p4c-samples');
const samples = existsSync(samplesDir)
  ? readdirSync(samplesDir)
      .filter((f) => f.endsWith('-bmv2.p4'))
      .map((f) => join(samplesDir, f))
  : [];

const rewrite = (file: string) =>
  toTna(compileToIr(readFileSync(file, 'utf8'), { file, includeDirs: [join(file, '..')] }));

/** `t.apply()` occurrences per table name in a TNA program's apply blocks. */
function applies(source: string): Map<string, number> {
  const n = new Map<string, number>();
  for (const m of source.matchAll(/\b(\w+)\.apply\(\)/g)) n.set(m[1]!, (n.get(m[1]!) ?? 0) + 1);
  return n;
}

describe('TNA rewrite', () => {
  for (const file of corpus) {
    it(`${file.split('/').slice(-2).join('/')} → TNA source our front end accepts against p4/tna.p4`, () => {
      const { source } = rewrite(file);
      const report = checkTnaProgram(source, { file: 'rewrite.p4' });
      expect(report.blocks).toEqual([
        'IngressParser',
        'Ingress',
        'IngressDeparser',
        'EgressParser',
        'Egress',
        'EgressDeparser',
      ]);
      for (const [table, count] of applies(source)) expect(count, table).toBe(1);
    });
  }

  it.skipIf(samples.length === 0)(
    'every p4c sample we compile rewrites and parses back, or is refused naming the feature',
    () => {
      let accepted = 0;
      for (const file of samples) {
        let ir: ReturnType<typeof compileToIr>;
        try {
          ir = compileToIr(readFileSync(file, 'utf8'), { file, includeDirs: [samplesDir] });
        } catch (err) {
          expect(err).toBeInstanceOf(P4CompileError);
          continue;
        }
        try {
          checkTnaProgram(toTna(ir).source, { file: 'rewrite.p4' });
          accepted++;
        } catch (err) {
          // The only acceptable failure is a typed refusal of a v1model-only construct.
          expect(err, file).toBeInstanceOf(TnaUnsupportedError);
          expect((err as TnaUnsupportedError).feature).toMatch(
            /^(standard_metadata\.\w+|extern |hash|random|direct_meter)/,
          );
        }
      }
      expect(accepted).toBeGreaterThan(samples.length / 2);
    },
  );

  it('maps standard metadata to TNA intrinsic metadata and says so in a header comment', () => {
    const { source } = rewrite(packagePath('p4', 'samples', 'basic_router.p4'));
    expect(source).toMatch(/^\/\* basic_router\.p4 rewritten for the TNA-style architecture/);
    expect(source).toContain('standard_metadata.egress_spec (write)     -> ig_tm_md.ucast_egress_port');
    expect(source).toContain('No TNA equivalent');
    // set egress_spec from an action parameter; mark_to_drop becomes drop_ctl.
    expect(source).toMatch(
      /ig_tm_md\.ucast_egress_port = port;\s+ig_dprsr_md\.drop_ctl = \(\(ig_tm_md\.ucast_egress_port == 9w511\) \? 3w1 : 3w0\);/,
    );
    expect(source).toMatch(/action drop\(\) \{\s+ig_dprsr_md\.drop_ctl = 3w1;/);
    expect(source).toContain('#include <tna.p4>');
    expect(source).toMatch(
      /Pipeline\(IngressParser\(\), Ingress\(\), IngressDeparser\(\),\s+EgressParser\(\), Egress\(\), EgressDeparser\(\)\) pipe;\s+Switch\(pipe\) main;/,
    );
    // The IPv4 checksum update moves into the (ingress) deparser since egress is empty.
    expect(source).toMatch(
      /control IngressDeparser[\s\S]*Checksum\(\) checksum_0;[\s\S]*hdr\.ipv4\.hdrChecksum = checksum_0\.update\(/,
    );
  });

  it('bridges the metadata egress reads and re-parses in egress', () => {
    const src = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; }
struct headers { h_t h; }
struct metadata { bit<8> mark; bit<3> unused; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  apply { meta.mark = hdr.h.a + 1; sm.egress_spec = 2; }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  apply { if (sm.ingress_port == 3) { hdr.h.a = meta.mark; } }
}
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
    const r = toTna(compileToIr(src, { file: 'bridge.p4' }));
    expect([...r.bridged].sort()).toEqual(['ingress_port', 'meta_mark']);
    expect(r.source).toMatch(
      /header bridged_md_t \{[\s\S]*bit<8> meta_mark;[\s\S]*bit<9> ingress_port;[\s\S]*bit<7> _pad;/,
    );
    expect(r.source).toMatch(
      /parser EgressParser[\s\S]*pkt\.extract\(eg_intr_md\);\s+pkt\.extract\(hdr\.bridged_md\);/,
    );
    expect(r.source).toContain('hdr.bridged_md.meta_mark = (hdr.h.a + 8w1);');
    expect(r.source).toContain('if ((hdr.bridged_md.ingress_port == 9w3)) {');
    expect(r.source).toMatch(/control IngressDeparser[\s\S]*pkt\.emit\(hdr\.bridged_md\);/);
    checkTnaProgram(r.source, { file: 'bridge.tna.p4' });
  });

  it('control flow comes back structured: every table applied once, for random apply blocks', () => {
    // Random nests of if / hit-miss / switch / table applies / exits over fresh tables.
    type Gen = { text: string; tables: number };
    const block = fc.letrec<{ stmt: Gen; list: Gen }>((tie) => ({
      stmt: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constant({ text: 'APPLY;', tables: 1 }),
        fc.integer({ min: 0, max: 255 }).map((n) => ({ text: `meta.m = ${n};`, tables: 0 })),
        fc.constant({ text: 'exit;', tables: 0 }),
        fc.tuple(fc.integer({ min: 0, max: 255 }), tie('list'), tie('list')).map(([n, a, b]) => ({
          text: `if (hdr.h.a == ${n}) { ${a.text} } else { ${b.text} }`,
          tables: a.tables + b.tables,
        })),
        fc.tuple(tie('list'), tie('list')).map(([a, b]) => ({
          text: `if (HIT) { ${a.text} } else { ${b.text} }`,
          tables: 1 + a.tables + b.tables,
        })),
        fc.tuple(tie('list'), tie('list')).map(([a, b]) => ({
          text: `switch (SWITCH) { set_m: { ${a.text} } default: { ${b.text} } }`,
          tables: 1 + a.tables + b.tables,
        })),
      ),
      list: fc.array(tie('stmt'), { minLength: 0, maxLength: 3 }).map((xs) => ({
        text: xs.map((x) => x.text).join(' '),
        tables: xs.reduce((n, x) => n + x.tables, 0),
      })),
    }));
    fc.assert(
      fc.property(block.list, (body) => {
        let t = 0;
        const text = body.text.replace(/APPLY|HIT|SWITCH/g, (m) => {
          const name = `t${t++}`;
          return m === 'APPLY'
            ? `${name}.apply()`
            : m === 'HIT'
              ? `${name}.apply().hit`
              : `${name}.apply().action_run`;
        });
        const tables = Array.from(
          { length: t },
          (_, i) => `table t${i} { key = { hdr.h.a: exact; } actions = { set_m; NoAction; } }`,
        );
        const src = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; }
struct headers { h_t h; }
struct metadata { bit<8> m; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  action set_m(bit<8> v) { meta.m = v; }
  ${tables.join('\n  ')}
  apply { ${text} }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
        const out = toTna(compileToIr(src, { file: 'gen.p4' })).source;
        checkTnaProgram(out, { file: 'gen.tna.p4' });
        const counts = applies(out);
        // Tables after an unconditional exit are dead and never placed; the others once each.
        for (const [, n] of counts) expect(n).toBe(1);
        expect(counts.size).toBeLessThanOrEqual(body.tables);
      }),
      { numRuns: 60 },
    );
  });
});
