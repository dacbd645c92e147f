import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileToIr } from '../src/p4c/compile.js';
import { P4CompileError } from '../src/p4c/errors.js';
import { toTna, TnaUnsupportedError } from '../src/p4c/tna.js';
import { checkTnaProgram } from '../src/p4c/tna-check.js';
import { packagePath } from '../src/runtime/package-root.js';

/** A v1model program with hooks, rewritten for TNA. */
function v1model(o: { decls?: string; locals?: string; ingress?: string; egress?: string }): string {
  return `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<8> b; bit<16> c; }
struct headers { h_t h; }
struct metadata { bit<8> m; bit<16> w; }
${o.decls ?? ''}
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  ${o.locals ?? ''}
  apply { ${o.ingress ?? ''} }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { ${o.egress ?? ''} } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
}

function refusal(src: string): TnaUnsupportedError {
  const ir = compileToIr(src, { file: 'v.p4' });
  try {
    toTna(ir);
  } catch (err) {
    expect(err).toBeInstanceOf(TnaUnsupportedError);
    return err as TnaUnsupportedError;
  }
  throw new Error('expected a TNA refusal');
}

describe('TNA rewrite refuses v1model features without a TNA equivalent, by name', () => {
  const cases: [string, Parameters<typeof v1model>[0], RegExp][] = [
    [
      'instance_type',
      { ingress: 'if (sm.instance_type == 0) { hdr.h.a = 1; }' },
      /standard_metadata\.instance_type/,
    ],
    ['priority', { ingress: 'sm.priority = 3;' }, /standard_metadata\.priority/],
    [
      'egress_port read in ingress',
      { ingress: 'hdr.h.c = (bit<16>)sm.egress_port;' },
      /standard_metadata\.egress_port has no TNA equivalent in ingress/,
    ],
    [
      'packet_length read in ingress',
      { ingress: 'hdr.h.c = (bit<16>)sm.packet_length;' },
      /standard_metadata\.packet_length/,
    ],
    [
      'writing ingress_port',
      { ingress: 'sm.ingress_port = 1;' },
      /standard_metadata\.ingress_port is written in ingress/,
    ],
    [
      'egress_spec written in egress',
      { egress: 'sm.egress_spec = 1;' },
      /standard_metadata\.egress_spec is written in egress/,
    ],
    [
      'csum16 as a hash',
      { ingress: 'hash(hdr.h.c, HashAlgorithm.csum16, 16w0, { hdr.h.a }, 32w65536);' },
      /hash algorithm csum16/,
    ],
    [
      'a hash with a base',
      { ingress: 'hash(hdr.h.c, HashAlgorithm.crc16, 16w5, { hdr.h.a }, 32w65536);' },
      /hash with a base/,
    ],
    [
      'a hash with a max that is not a power of two',
      { ingress: 'hash(hdr.h.c, HashAlgorithm.crc16, 16w0, { hdr.h.a }, 32w1000);' },
      /hash with max 1000/,
    ],
    ['random over [1, 10]', { ingress: 'random(meta.m, 8w1, 8w10);' }, /random over a range/],
    [
      'a register used by ingress and egress',
      {
        decls: 'register<bit<8>>(4) shared_reg;',
        ingress: 'shared_reg.write(0, hdr.h.a);',
        egress: 'shared_reg.read(hdr.h.b, 0);',
      },
      /extern shared_reg is used by both ingress and egress/,
    ],
    [
      'a direct meter',
      {
        locals:
          'direct_meter<bit<8>>(MeterType.packets) dm; action m() { dm.read(meta.m); } table t { key = { hdr.h.a: exact; } actions = { m; } meters = dm; }',
        ingress: 't.apply();',
      },
      /direct_meter/,
    ],
  ];
  for (const [what, o, message] of cases) {
    it(what, () => {
      const e = refusal(v1model(o));
      expect(e.code).toBe('P4_TNA_UNSUPPORTED');
      expect(e.message).toMatch(message);
      expect(e.feature.length).toBeGreaterThan(0);
    });
  }

  it('maps what has a TNA equivalent instead of refusing it (egress_port and packet_length in egress)', () => {
    const { source } = toTna(
      compileToIr(v1model({ egress: 'hdr.h.c = (bit<16>)sm.egress_port + (bit<16>)sm.packet_length;' }), {
        file: 'v.p4',
      }),
    );
    expect(source).toContain('((bit<16>)eg_intr_md.egress_port)');
    expect(source).toContain('((bit<32>)eg_intr_md.pkt_length)');
    checkTnaProgram(source, { file: 'v.tna.p4' });
  });
});

describe('the TNA checker refuses malformed TNA programs with file:line:col', () => {
  const good = toTna(
    compileToIr(readFileSync(packagePath('p4', 'samples', 'basic_router.p4'), 'utf8')),
  ).source;
  const bad = (edit: (s: string) => string): P4CompileError => {
    try {
      checkTnaProgram(edit(good), { file: 'bad.p4' });
    } catch (err) {
      expect(err).toBeInstanceOf(P4CompileError);
      return err as P4CompileError;
    }
    throw new Error('expected the checker to refuse');
  };

  it('accepts the unedited rewrite', () => {
    expect(checkTnaProgram(good, { file: 'good.p4' }).tables).toBe(1);
  });

  it('refuses a program without Switch(pipe) main', () => {
    expect(bad((s) => s.replace('Switch(pipe) main;', '')).message).toMatch(
      /bad\.p4:\d+:\d+: .*Switch\(pipe\) main/,
    );
  });

  it('refuses an ingress control whose tm metadata parameter has the wrong type', () => {
    const e = bad((s) =>
      s.replace(
        'inout ingress_intrinsic_metadata_for_tm_t ig_tm_md',
        'inout ingress_intrinsic_metadata_for_deparser_t ig_tm_md',
      ),
    );
    expect(e.message).toMatch(
      /bad\.p4:\d+:\d+: type error: expected struct ingress_intrinsic_metadata_for_tm_t for parameter ig_tm_md of IngressT/,
    );
  });

  it('refuses a wrong direction, and blocks in the wrong place of the Pipeline', () => {
    expect(
      bad((s) =>
        s.replace(
          'in ingress_intrinsic_metadata_t ig_intr_md,',
          'inout ingress_intrinsic_metadata_t ig_intr_md,',
        ),
      ).message,
    ).toMatch(/expected in parameter ig_intr_md of IngressT, found inout/);
    expect(
      bad((s) => s.replace('Pipeline(IngressParser(), Ingress(),', 'Pipeline(Ingress(), IngressParser(),'))
        .message,
    ).toMatch(/expected a parser declaration/);
  });

  it('refuses a header type that differs between blocks of one pipeline half', () => {
    const e = bad((s) =>
      s
        .replace('struct headers_t {', 'struct other_t { ethernet_t ethernet; }\nstruct headers_t {')
        .replace(
          'control IngressDeparser(packet_out pkt, inout headers_t hdr',
          'control IngressDeparser(packet_out pkt, inout other_t hdr',
        ),
    );
    expect(e.message).toMatch(/type IH of the pipeline/);
  });

  it('refuses an unknown extern method and a wrong constructor arity', () => {
    expect(bad((s) => s.replace('checksum_0.update(', 'checksum_0.updat(')).message).toMatch(
      /expected a method of Checksum, found 'updat'/,
    );
    expect(bad((s) => s.replace('Checksum() checksum_0;', 'Checksum(16w1) checksum_0;')).message).toMatch(
      /expected 0 constructor argument\(s\) for Checksum, found 1/,
    );
  });

  it('refuses an undeclared field, as the v1model front end does', () => {
    expect(bad((s) => s.replace('hdr.ipv4.ttl = (hdr.ipv4.ttl', 'hdr.ipv4.tll = (hdr.ipv4.ttl')).kind).toBe(
      'type',
    );
  });
});
