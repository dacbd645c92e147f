import { describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { P4CompileError } from '../src/p4c/errors.js';
import { sample } from './p4-helpers.js';

function compileError(source: string): P4CompileError {
  try {
    compileP4(source, { file: 'broken.p4' });
  } catch (err) {
    expect(err).toBeInstanceOf(P4CompileError);
    return err as P4CompileError;
  }
  throw new Error('expected a compile error');
}

/** basic_router.p4 with one line replaced, so the error position is known. */
function mutate(find: string, replace: string): string {
  const src = sample('basic_router.p4');
  expect(src).toContain(find);
  return src.replace(find, replace);
}

function lineOf(source: string, needle: string): number {
  return source.slice(0, source.indexOf(needle)).split('\n').length;
}

describe('p4c: errors carry file:line:col and what was expected', () => {
  it('syntax: a missing semicolon', () => {
    const src = mutate('hdr.ipv4.ttl = hdr.ipv4.ttl - 1;', 'hdr.ipv4.ttl = hdr.ipv4.ttl - 1');
    const e = compileError(src);
    expect(e.kind).toBe('syntax');
    expect(e.pos.file).toBe('broken.p4');
    expect(e.pos.line).toBe(lineOf(src, 'hdr.ipv4.ttl = hdr.ipv4.ttl - 1') + 1);
    expect(e.expected).toBe("';'");
    expect(e.message).toMatch(/^broken\.p4:\d+:\d+: syntax error: expected ';', found '}'/);
  });

  it('type: assigning bit<48> to bit<9>', () => {
    const src = mutate('standard_metadata.egress_spec = port;', 'standard_metadata.egress_spec = dstAddr;');
    const e = compileError(src);
    expect(e.kind).toBe('type');
    expect(e.pos.line).toBe(lineOf(src, 'standard_metadata.egress_spec = dstAddr'));
    expect(e.expected).toBe('a value of type bit<9>');
    expect(e.found).toBe('bit<48>');
  });

  it('type: an unknown field, with its column', () => {
    const src = mutate('hdr.ipv4.ttl > 1', 'hdr.ipv4.hops > 1');
    const e = compileError(src);
    expect(e.kind).toBe('type');
    const line = src.split('\n')[e.pos.line - 1]!;
    expect(line).toContain('hdr.ipv4.hops');
    expect(e.pos.col).toBe(line.indexOf('hdr.ipv4.hops') + 1);
    expect(e.found).toBe("'hops'");
  });

  it('type: an action not in the table, an undeclared state, a bad lpm mask', () => {
    expect(compileError(mutate('default_action = drop();', 'default_action = nope();')).message).toMatch(
      /expected an action, found 'nope'/,
    );
    expect(compileError(mutate('TYPE_IPV4: parse_ipv4;', 'TYPE_IPV4: parse_ipv6;')).message).toMatch(
      /found 'parse_ipv6'/,
    );
    expect(compileError(mutate('0x0a000100 &&& 0xffffff00', '0x0a000100 &&& 0xff00ff00')).message).toMatch(
      /prefix mask/,
    );
  });

  it('preprocess: a missing include and an unterminated #ifdef', () => {
    const inc = compileError('#include <nosuch.p4>\n');
    expect(inc.kind).toBe('preprocess');
    expect(inc.pos).toEqual({ file: 'broken.p4', line: 1, col: 1 });
    const ifdef = compileError('#include <core.p4>\n#ifdef X\nconst bit<8> A = 1;\n');
    expect(ifdef.message).toMatch(/broken\.p4:2:1: .*#endif/);
  });

  it('unsupported constructs are refused by name, never miscompiled', () => {
    const e = compileError(mutate('mark_to_drop(standard_metadata);', 'resubmit(meta);'));
    expect(e.kind).toBe('unsupported');
    expect(e.message).toMatch(/extern function resubmit/);
    const twice = compileError(mutate('ipv4_lpm.apply();', 'ipv4_lpm.apply(); ipv4_lpm.apply();'));
    expect(twice.message).toMatch(/more than once/);
  });

  it('a program without V1Switch main', () => {
    const e = compileError('#include <core.p4>\n#include <v1model.p4>\nconst bit<8> X = 1;\n');
    expect(e.kind).toBe('semantic');
    expect(e.message).toMatch(/V1Switch/);
  });
});
