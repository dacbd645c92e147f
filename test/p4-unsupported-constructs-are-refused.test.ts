import { describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { P4CompileError } from '../src/p4c/errors.js';

/** A minimal v1model program with hooks to drop a construct into. */
function program(o: { decls?: string; parser?: string; ingress?: string; locals?: string }): string {
  return `#include <core.p4>
#include <v1model.p4>
header a_t { bit<8> x; }
header b_t { bit<16> y; }
${o.decls ?? ''}
struct headers { a_t a; a_t[4] as; }
struct metadata { bit<8> i; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.a); ${o.parser ?? ''} transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  ${o.locals ?? ''}
  apply { ${o.ingress ?? ''} }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
}

function refusal(src: string): P4CompileError {
  try {
    compileP4(src, { file: 'u.p4' });
  } catch (err) {
    expect(err).toBeInstanceOf(P4CompileError);
    return err as P4CompileError;
  }
  throw new Error('expected a refusal');
}

describe('p4c: constructs outside the subset are refused by name with a position', () => {
  const cases: [string, Parameters<typeof program>[0], RegExp][] = [
    [
      'stacks of header unions',
      { decls: 'header_union u_t { a_t a; b_t b; } struct m2 { u_t[2] us; }', locals: 'm2 v;' },
      /stacks of header unions/,
    ],
    ['struct initializers', { ingress: 'meta = { i = 1 };' }, /struct initializer/],
    ['truncate', { ingress: 'truncate(32w10);' }, /extern function truncate/],
    ['dynamic stack index', { ingress: 'hdr.as[meta.i].x = 1;' }, /not a compile-time constant/],
    ['.lastIndex', { ingress: 'meta.i = (bit<8>) hdr.as.lastIndex;' }, /lastIndex/],
    [
      'clone3 (use clone_preserving_field_list)',
      { ingress: 'clone3(CloneType.I2E, 32w1, hdr.a);' },
      /extern function clone3/,
    ],
    ['#if expressions', { decls: '#if 1\n#endif' }, /#if with an expression/],
    ['function-like macros', { decls: '#define F(x) x' }, /function-like macro/],
    [
      'a header as a table key',
      { locals: 'table t { key = { hdr.a: exact; } actions = { NoAction; } }', ingress: 't.apply();' },
      /a table key/,
    ],
    [
      'action profiles',
      {
        locals:
          'table t { key = { hdr.a.x: exact; } actions = { NoAction; } implementation = action_profile(32w4); }',
        ingress: 't.apply();',
      },
      /implementation/,
    ],
  ];
  for (const [name, hooks, message] of cases) {
    it(name, () => {
      const e = refusal(program(hooks));
      expect(e.message).toMatch(message);
      expect(e.message).toMatch(/^u\.p4:\d+:\d+: /);
      expect(['unsupported', 'preprocess', 'type']).toContain(e.kind);
    });
  }
});
