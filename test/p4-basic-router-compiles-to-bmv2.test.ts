import { describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { sample } from './p4-helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is checked structurally here
type J = any;

describe('p4c: basic_router.p4 → BMv2 JSON and p4info', () => {
  const { bmv2, p4info } = compileP4(sample('basic_router.p4'), { file: 'basic_router.p4' });
  const j = bmv2 as J;

  it('lays out header types, instances and standard metadata', () => {
    const ipv4 = j.header_types.find((t: J) => t.name === 'ipv4_t');
    expect(ipv4.fields.map((f: J) => f[0])).toEqual([
      'version',
      'ihl',
      'diffserv',
      'totalLen',
      'identification',
      'flags',
      'fragOffset',
      'ttl',
      'protocol',
      'hdrChecksum',
      'srcAddr',
      'dstAddr',
    ]);
    expect(ipv4.fields.reduce((n: number, f: J) => n + f[1], 0)).toBe(160);
    const names = j.headers.map((h: J) => [h.name, h.header_type, h.metadata]);
    expect(names).toContainEqual(['ethernet', 'ethernet_t', false]);
    expect(names).toContainEqual(['ipv4', 'ipv4_t', false]);
    expect(names).toContainEqual(['standard_metadata', 'standard_metadata', true]);
    const sm = j.header_types.find((t: J) => t.name === 'standard_metadata');
    expect(sm.fields.find((f: J) => f[0] === 'egress_spec')[1]).toBe(9);
    expect(sm.fields.reduce((n: number, f: J) => n + f[1], 0) % 8).toBe(0);
    expect(j.errors[0]).toEqual(['NoError', 0]);
  });

  it('emits the parser graph with a select on etherType', () => {
    const states = j.parsers[0].parse_states;
    expect(j.parsers[0].init_state).toBe('start');
    const eth = states.find((s: J) => s.name === 'parse_ethernet');
    expect(eth.parser_ops).toEqual([{ op: 'extract', parameters: [{ type: 'regular', value: 'ethernet' }] }]);
    expect(eth.transition_key).toEqual([{ type: 'field', value: ['ethernet', 'etherType'] }]);
    expect(eth.transitions).toEqual([
      { type: 'hexstr', value: '0x0800', mask: null, next_state: 'parse_ipv4' },
      { type: 'default', value: null, mask: null, next_state: null },
    ]);
  });

  it('emits the lpm table with its const entries and actions', () => {
    const ingress = j.pipelines.find((p: J) => p.name === 'ingress');
    const t = ingress.tables.find((x: J) => x.name === 'MyIngress.ipv4_lpm');
    expect(t.match_type).toBe('lpm');
    expect(t.key).toEqual([
      { match_type: 'lpm', name: 'hdr.ipv4.dstAddr', target: ['ipv4', 'dstAddr'], mask: null },
    ]);
    expect(t.actions).toEqual(['MyIngress.ipv4_forward', 'MyIngress.drop', 'NoAction']);
    expect(t.max_size).toBe(1024);
    expect(t.entries[0]).toEqual({
      match_key: [{ match_type: 'lpm', key: '0x0a000100', prefix_length: 24 }],
      action_entry: { action_id: t.action_ids[0], action_data: ['0x101', '0x1'] },
      priority: 1,
    });
    const fwd = j.actions.find((a: J) => a.name === 'MyIngress.ipv4_forward');
    expect(fwd.runtime_data).toEqual([
      { name: 'dstAddr', bitwidth: 48 },
      { name: 'port', bitwidth: 9 },
    ]);
    expect(fwd.primitives.map((p: J) => p.op)).toEqual(['assign', 'assign', 'assign', 'assign']);
    const drop = j.actions.find((a: J) => a.name === 'MyIngress.drop');
    expect(drop.primitives).toEqual([
      { op: 'mark_to_drop', parameters: [{ type: 'header', value: 'standard_metadata' }] },
    ]);
    // The if in apply is a conditional whose branches are the table and a synthetic drop table.
    const cond = ingress.conditionals[0];
    expect(ingress.init_table).toBe(cond.name);
    expect(cond.true_next).toBe('MyIngress.ipv4_lpm');
    expect(ingress.tables.find((x: J) => x.name === cond.false_next).default_entry.action_const).toBe(true);
  });

  it('turns verify/update_checksum into csum16 calculations', () => {
    expect(j.checksums.map((c: J) => [c.target, c.verify, c.update])).toEqual([
      [['ipv4', 'hdrChecksum'], true, false],
      [['ipv4', 'hdrChecksum'], false, true],
    ]);
    const calc = j.calculations.find((c: J) => c.name === j.checksums[0].calculation);
    expect(calc.algo).toBe('csum16');
    expect(calc.input).toHaveLength(11);
    expect(j.deparsers[0].order).toEqual(['ethernet', 'ipv4']);
  });

  it('describes tables and actions in p4info with P4Runtime-style ids', () => {
    expect(p4info.tables).toHaveLength(1);
    const t = p4info.tables[0]!;
    expect(t.preamble.name).toBe('MyIngress.ipv4_lpm');
    expect(t.preamble.id >>> 24).toBe(0x02);
    expect(t.matchFields).toEqual([{ id: 1, name: 'hdr.ipv4.dstAddr', bitwidth: 32, matchType: 'LPM' }]);
    const fwd = p4info.actions.find((a) => a.preamble.name === 'MyIngress.ipv4_forward')!;
    expect(fwd.preamble.id >>> 24).toBe(0x01);
    expect(fwd.params).toEqual([
      { id: 1, name: 'dstAddr', bitwidth: 48 },
      { id: 2, name: 'port', bitwidth: 9 },
    ]);
    expect(t.actionRefs.map((r) => r.id)).toContain(fwd.preamble.id);
    // Deterministic: compiling again gives identical output.
    expect(JSON.stringify(compileP4(sample('basic_router.p4'), { file: 'basic_router.p4' }).bmv2)).toBe(
      JSON.stringify(bmv2),
    );
  });
});
