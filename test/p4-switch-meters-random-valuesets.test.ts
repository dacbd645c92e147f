import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';

const source = `#include <core.p4>
#include <v1model.p4>
header h_t { bit<16> proto; bit<8> color; bit<8> dcolor; bit<8> rnd; }
struct headers { h_t h; }
struct metadata { bit<8> dc; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  value_set<bit<16>>(4) special;
  state start {
    pkt.extract(hdr.h);
    transition select(hdr.h.proto) {
      special: accept;
      default: reject_it;
    }
  }
  state reject_it { verify(false, error.NoMatch); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  meter(4, MeterType.packets) m;
  direct_meter<bit<8>>(MeterType.packets) dm;
  action metered() { dm.read(meta.dc); }
  table t { key = { hdr.h.proto: exact; } actions = { metered; NoAction; } meters = dm; }
  apply {
    if (sm.parser_error != error.NoError) { mark_to_drop(sm); exit; }
    sm.egress_spec = 1;
    m.execute_meter(32w2, hdr.h.color);
    t.apply();
    hdr.h.dcolor = meta.dc;
    random(hdr.h.rnd, 8w10, 8w20);
  }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;

const json = compileP4(source, { file: 'meters.p4' }).bmv2;
const pkt = (proto: number) => Uint8Array.from([proto >> 8, proto & 255, 0, 0, 0]);

describe('behavioral switch: meters (injectable clock), random (seeded), value sets', () => {
  it('value_set members select states; others fail parsing and are dropped', () => {
    const sw = new BehavioralSwitch(json);
    expect(sw.process(pkt(0x88cc), 0)).toEqual([]);
    sw.addValueSetMember('special', 0x88cc);
    expect(sw.process(pkt(0x88cc), 0)).toHaveLength(1);
  });

  it('trTCM: green within CBS, yellow within PBS, red beyond; tokens refill with the clock', () => {
    let now = 0n;
    const sw = new BehavioralSwitch(json, { clockNs: () => now });
    sw.addValueSetMember('special', 1);
    // Unconfigured meters color green (0).
    expect(sw.process(pkt(1), 0)[0]!.bytes[2]).toBe(0);
    sw.configureMeter('m', 2, { cir: 1, cburst: 2, pir: 2, pburst: 3 });
    const colors = [0, 1, 2, 3].map(() => sw.process(pkt(1), 0)[0]!.bytes[2]);
    expect(colors).toEqual([0, 0, 1, 2]);
    now += 1_000_000_000n; // one second: +1 committed token, +2 peak tokens
    expect(sw.process(pkt(1), 0)[0]!.bytes[2]).toBe(0);
    expect(sw.process(pkt(1), 0)[0]!.bytes[2]).toBe(1);
    expect(sw.process(pkt(1), 0)[0]!.bytes[2]).toBe(2);
  });

  it('direct meters color the entry that hit', () => {
    const sw = new BehavioralSwitch(json, { clockNs: () => 0n });
    sw.addValueSetMember('special', 7);
    const h = sw.addEntry('t', { key: [7], action: 'metered' });
    sw.configureMeter('dm', h, { cir: 0, cburst: 1, pir: 0, pburst: 1 });
    expect([0, 1].map(() => sw.process(pkt(7), 0)[0]!.bytes[3])).toEqual([0, 2]);
  });

  it('random() is uniform in [lo, hi] and replays with the same seed', () => {
    const run = (seed: number) => {
      const sw = new BehavioralSwitch(json, { seed });
      sw.addValueSetMember('special', 1);
      return Array.from({ length: 50 }, () => sw.process(pkt(1), 0)[0]!.bytes[4]!);
    };
    const a = run(42);
    expect(a.every((v) => v >= 10 && v <= 20)).toBe(true);
    expect(new Set(a).size).toBeGreaterThan(5);
    expect(run(42)).toEqual(a);
    expect(run(43)).not.toEqual(a);
  });
});
