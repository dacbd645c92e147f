import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createP4Build } from '../src/backends/p4/backend.js';
import { runStf } from '../src/backends/p4/stf.js';
import { Thunderpac } from '../src/thunderpac.js';
import { GuestError } from '../src/runtime/errors.js';
import { P4RuntimeError } from '../src/backends/p4/errors.js';
import { BehavioralSwitch, MAX_REENTRIES } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';

/*
 * simple_switch's clone (I2E, E2E), resubmit, recirculate and digest, driven by the BMv2 JSON
 * primitives p4c's simple_switch back end emits (`clone_ingress_pkt_to_egress`,
 * `clone_egress_pkt_to_egress`, `resubmit`, `recirculate`, `generate_digest` with
 * `field_lists` / `learn_lists`): the program is compiled here, then those primitives are
 * added to its actions exactly as p4c writes them. Ingress writes instance_type into `iitype`,
 * egress into `itype` and the carried metadata `keep` into `mark`, so the bytes out show what
 * each copy carried. (simple_switch sets instance_type back to NORMAL for every unicast packet
 * entering egress: RESUBMIT and RECIRC are seen by ingress only.)
 */
const source = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> kind; bit<8> mark; bit<8> seen; bit<8> iitype; bit<8> itype; }
struct headers { h_t h; }
struct metadata { bit<8> keep; bit<8> lost; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  action a_clone() { meta.keep = 7; meta.lost = 9; sm.egress_spec = 1; }
  action a_resubmit() { meta.keep = 7; meta.lost = 9; }
  action a_digest() { meta.keep = 0x33; sm.egress_spec = 1; }
  table t_clone { actions = { a_clone; } default_action = a_clone(); }
  table t_resubmit { actions = { a_resubmit; } default_action = a_resubmit(); }
  table t_digest { actions = { a_digest; } default_action = a_digest(); }
  apply {
    hdr.h.iitype = (bit<8>) sm.instance_type;
    if (hdr.h.kind == 1) {
      t_clone.apply();
    } else if (hdr.h.kind == 2 || hdr.h.kind == 6) {
      if (sm.instance_type == 0 || hdr.h.kind == 6) { t_resubmit.apply(); } else { sm.egress_spec = 2; }
    } else if (hdr.h.kind == 3) {
      sm.egress_spec = 3;
    } else if (hdr.h.kind == 4) {
      t_digest.apply();
    } else {
      sm.egress_spec = 1;
    }
  }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  action a_recirc() { hdr.h.seen = hdr.h.seen + 1; meta.keep = meta.keep + 1; }
  action a_e2e() { meta.keep = 42; }
  table t_recirc { actions = { a_recirc; } default_action = a_recirc(); }
  table t_e2e { actions = { a_e2e; } default_action = a_e2e(); }
  apply {
    hdr.h.itype = (bit<8>) sm.instance_type;
    hdr.h.mark = meta.keep;
    if (hdr.h.kind == 3 && hdr.h.seen < 3) { t_recirc.apply(); }
    if (hdr.h.kind == 5 && sm.instance_type == 0) { t_e2e.apply(); }
  }
}
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;

// biome-ignore lint/suspicious/noExplicitAny: editing BMv2 JSON the way p4c writes it
type J = any;
const hex = (n: number): J => ({ type: 'hexstr', value: `0x${n.toString(16)}` });

function program(): J {
  const j = compileP4(source, { file: 'v1model_ops.p4' }).bmv2 as J;
  const keep = ['scalars', 'meta_keep'];
  j.field_lists = [{ id: 1, name: 'field_list1', elements: [{ type: 'field', value: keep }] }];
  j.learn_lists = [
    {
      id: 1,
      name: 'learn_t',
      elements: [
        { type: 'field', value: ['h', 'kind'] },
        { type: 'field', value: keep },
      ],
    },
  ];
  const add = (action: string, op: string, parameters: J[]) =>
    j.actions.find((a: J) => a.name === action).primitives.push({ op, parameters });
  add('I.a_clone', 'clone_ingress_pkt_to_egress', [hex(5), hex(1)]);
  add('I.a_resubmit', 'resubmit', [hex(1)]);
  add('I.a_digest', 'generate_digest', [hex(1), hex(1)]);
  add('E.a_recirc', 'recirculate', [hex(1)]);
  add('E.a_e2e', 'clone_egress_pkt_to_egress', [hex(6), hex(1)]);
  return j;
}

const json = program();
const pkt = (kind: number) => Uint8Array.from([kind, 0, 0, 0xdd, 0xee]);
const outs = (sw: BehavioralSwitch, kind: number, port = 4) =>
  sw.process(pkt(kind), port).map((o) => ({ port: o.port, bytes: [...o.bytes] }));

describe('v1model clone / resubmit / recirculate / digest with simple_switch semantics', () => {
  it('I2E clone: the re-parsed original goes to the session port first, carrying only its field list', () => {
    const sw = new BehavioralSwitch(json);
    sw.setCloneSession(5, { port: 9 });
    // bytes: kind, mark (= keep in egress), seen, iitype (ingress), itype (egress)
    expect(outs(sw, 1)).toEqual([
      { port: 9, bytes: [1, 7, 0, 0xdd, 1] }, // INGRESS_CLONE, re-parsed from the bytes received
      { port: 1, bytes: [1, 7, 0, 0, 0] }, // NORMAL
    ]);
  });

  it('a clone to an unconfigured session is not made; a session can be a multicast group', () => {
    const sw = new BehavioralSwitch(json);
    expect(outs(sw, 1)).toEqual([{ port: 1, bytes: [1, 7, 0, 0, 0] }]);
    sw.setMulticastGroup(3, [5, 6]);
    sw.setCloneSession(5, { multicastGroup: 3 });
    expect(outs(sw, 1).map((o) => o.port)).toEqual([5, 6, 1]);
    sw.setCloneSession(5, null);
    expect(outs(sw, 1).map((o) => o.port)).toEqual([1]);
  });

  it('resubmit: ingress runs again on the original bytes as RESUBMIT (6), metadata reset but the field list', () => {
    const sw = new BehavioralSwitch(json);
    expect(outs(sw, 2)).toEqual([{ port: 2, bytes: [2, 7, 0, 6, 0] }]);
  });

  it('recirculate: the deparsed packet re-enters ingress as RECIRC (4) until the program stops', () => {
    const sw = new BehavioralSwitch(json);
    // three egress passes recirculate (seen 0 → 3, keep carried and incremented), the fourth leaves
    expect(outs(sw, 3)).toEqual([{ port: 3, bytes: [3, 3, 3, 4, 0] }]);
  });

  it('E2E clone: a copy of the packet as egress left it passes egress again as EGRESS_CLONE (2)', () => {
    const sw = new BehavioralSwitch(json);
    sw.setCloneSession(6, { port: 8 });
    expect(outs(sw, 5)).toEqual([
      { port: 1, bytes: [5, 0, 0, 0, 0] },
      { port: 8, bytes: [5, 42, 0, 0, 2] },
    ]);
  });

  it('digest: the learn list values at the end of ingress, kept until taken', () => {
    const sw = new BehavioralSwitch(json);
    expect(outs(sw, 4)).toEqual([{ port: 1, bytes: [4, 0x33, 0, 0, 0] }]);
    outs(sw, 4);
    expect(sw.takeDigests()).toEqual([
      { receiver: 1, list: 'learn_t', values: { 'h.kind': 4n, 'scalars.meta_keep': 0x33n } },
      { receiver: 1, list: 'learn_t', values: { 'h.kind': 4n, 'scalars.meta_keep': 0x33n } },
    ]);
    expect(sw.takeDigests()).toEqual([]);
  });

  it('a packet that resubmits forever is stopped with a typed error, and the switch still works', () => {
    const sw = new BehavioralSwitch(json);
    let err: unknown;
    try {
      sw.process(pkt(6), 4);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuestError);
    expect((err as GuestError).code).toBe('P4_RECIRCULATION_LIMIT');
    expect((err as Error).message).toContain(String(MAX_REENTRIES));
    expect(outs(sw, 3)).toEqual([{ port: 3, bytes: [3, 3, 3, 4, 0] }]);
  });

  it('bad clone sessions and dangling list ids are refused', () => {
    const sw = new BehavioralSwitch(json);
    const code = (f: () => void): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof P4RuntimeError ? e.code : `other: ${(e as Error).message}`;
      }
      return undefined;
    };
    expect(code(() => sw.setCloneSession(70_000, { port: 1 }))).toBe('P4_INDEX_RANGE');
    expect(code(() => sw.setCloneSession(1, { port: 511 }))).toBe('P4_INDEX_RANGE');
    expect(code(() => sw.setCloneSession(1, { multicastGroup: 0 }))).toBe('P4_INDEX_RANGE');
    const dangling = structuredClone(json);
    dangling.learn_lists = [];
    expect(code(() => new BehavioralSwitch(dangling))).toBe('P4_JSON');
    const noList = structuredClone(json);
    noList.field_lists = [];
    expect(code(() => new BehavioralSwitch(noList))).toBe('P4_JSON');
  });
});

describe('the compiler emits these primitives as p4c does', () => {
  const digestProgram = `#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
struct headers { eth_t eth; }
struct learn_t { bit<48> src; bit<9> port; }
struct metadata { learn_t learn; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.eth); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  apply {
    meta.learn.src = hdr.eth.src;
    meta.learn.port = sm.ingress_port;
    digest<learn_t>(1, meta.learn);
    meta.learn.port = 0;
    digest(2, { hdr.eth.type, sm.ingress_port });
    sm.egress_spec = 1;
  }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.eth); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;

  it('digest: generate_digest(receiver, learn list id), data copied where digest is called', () => {
    const j = compileP4(digestProgram, { file: 'digest.p4' }).bmv2 as J;
    expect(j.learn_lists.map((l: J) => [l.id, l.name, l.elements.length])).toEqual([
      [1, 'learn_t', 2],
      [2, 'digest', 2],
    ]);
    const prims = j.actions.flatMap((a: J) => a.primitives).filter((p: J) => p.op === 'generate_digest');
    expect(prims.map((p: J) => p.parameters.map((x: J) => x.type))).toEqual([
      ['hexstr', 'hexstr'],
      ['hexstr', 'hexstr'],
    ]);
    const sw = new BehavioralSwitch(j);
    const frame = Uint8Array.from([1, 2, 3, 4, 5, 6, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x08, 0x06]);
    expect(sw.process(frame, 7)).toHaveLength(1);
    const [first, second] = sw.takeDigests();
    // simple_switch learns once per packet: the last digest called wins
    expect(first).toEqual({
      receiver: 2,
      list: 'digest',
      values: { 'scalars.digest_1_0': 0x0806n, 'scalars.digest_1_1': 7n },
    });
    expect(second).toBeUndefined();
  });

  it('clone(I2E) outside ingress, resubmit outside ingress and @field_list on a header are compile errors', () => {
    const wrap = (ingress: string, egress: string, meta = 'bit<8> keep;') => `#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; }
struct headers { h_t h; }
struct metadata { ${meta} }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { ${ingress} } }
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { ${egress} } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;
    const error = (src: string): string => {
      try {
        compileP4(src, { file: 'bad.p4' });
        return 'compiled';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(error(wrap('', 'clone(CloneType.I2E, 5);'))).toMatch(/bad\.p4:\d+:\d+.*ingress/);
    expect(error(wrap('', 'resubmit_preserving_field_list(1);'))).toMatch(/bad\.p4:\d+:\d+.*ingress/);
    expect(error(wrap('recirculate_preserving_field_list(1);', ''))).toMatch(/bad\.p4:\d+:\d+.*egress/);
    expect(error(wrap('', '', '@field_list(1) h_t hh;'))).toMatch(/bad\.p4:\d+:\d+.*field_list/);
    expect(error(wrap('clone(CloneType.I2E, 5);', ''))).toBe('compiled');
  });
});

describe('packet paths end to end: P4 source → BMv2 JSON → switch, checked by STF', () => {
  // Kept out of the test/p4 corpus: TNA has no rewrite for clone/resubmit/recirculate.
  const dir = join(import.meta.dirname, 'p4', 'packet-paths');
  it('v1model_clone_resubmit.p4 passes v1model_clone_resubmit.stf', () => {
    const file = 'v1model_clone_resubmit.p4';
    const sw = new BehavioralSwitch(compileP4(readFileSync(join(dir, file), 'utf8'), { file }).bmv2);
    const r = runStf(sw, readFileSync(join(dir, 'v1model_clone_resubmit.stf'), 'utf8'));
    expect(r.failures).toEqual([]);
    expect(r.packetsOut).toBe(8);
  });
});

describe('the p4 backend: clone sessions in the control plane, loops as failed executions', () => {
  it('a clone leaves with the original, receipts verify, a resubmit loop fails with P4_RECIRCULATION_LIMIT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tp-p4-paths-'));
    const tp = await Thunderpac.open({ store: dir });
    try {
      const file = 'v1model_clone_resubmit.p4';
      const source = readFileSync(join(import.meta.dirname, 'p4', 'packet-paths', file), 'utf8');
      const build = createP4Build(source, {
        name: 'paths',
        file,
        controlPlane: { cloneSessions: [{ session: 5, target: { port: 9 } }] },
      });
      const sandbox = tp.sandbox({ backend: 'p4' });
      const run = (bytes: number[]) =>
        tp.execute(sandbox, {
          build,
          entry: 'ingress',
          input: { kind: 'packet', bytes: Uint8Array.from(bytes), ingressPort: 4 },
        });
      const r = await run([1, 0, 0, 0xdd, 0xee]);
      expect(r.status).toBe('completed');
      expect(r.output?.kind === 'packet' && r.output.packets.map((p) => [p.port, [...p.bytes]])).toEqual([
        [9, [1, 7, 0, 0xdd, 1]],
        [1, [1, 7, 0, 0, 0]],
      ]);
      expect((await tp.verify(r.receipt.id)).match).toBe(true);

      const loop = createP4Build(source.replace('if (sm.instance_type == 0) {', 'if (true) {'), {
        name: 'loop',
        file,
      });
      const failed = await tp.execute(sandbox, {
        build: loop,
        entry: 'ingress',
        input: { kind: 'packet', bytes: Uint8Array.from([2, 0, 0, 0, 0]), ingressPort: 4 },
      });
      expect(failed.status).toBe('failed');
      expect(failed.error?.code).toBe('P4_RECIRCULATION_LIMIT');

      const bad = createP4Build(source, {
        name: 'bad',
        file,
        controlPlane: { cloneSessions: [{ session: 5, target: { port: 600 } }] },
      });
      const refused = await tp.execute(sandbox, {
        build: bad,
        entry: 'ingress',
        input: { kind: 'packet', bytes: Uint8Array.from([1, 0, 0, 0, 0]), ingressPort: 4 },
      });
      expect(refused.status).toBe('failed');
      expect(refused.error?.code).toBe('P4_INDEX_RANGE');
    } finally {
      await tp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
