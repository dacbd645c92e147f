import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { hex, ipv4Checksum, ipv4Frame, sample } from './p4-helpers.js';

const load = (defines: Record<string, string> = {}) =>
  new BehavioralSwitch(compileP4(sample('basic_router.p4'), { file: 'basic_router.p4', defines }).bmv2);

describe('behavioral switch: basic_router.p4', () => {
  it('routes by longest prefix, rewrites MACs, decrements ttl and fixes the checksum', () => {
    const sw = load();
    const cases: [[number, number, number, number], number, number][] = [
      [[10, 0, 1, 9], 1, 0x0101],
      [[10, 0, 2, 200], 2, 0x0202],
      [[10, 9, 9, 9], 3, 0xff],
    ];
    for (const [dst, port, mac] of cases) {
      const input = ipv4Frame({ dst, ttl: 64, dstMac: 0xaaaa });
      const out = sw.process(input, 7);
      expect(out).toHaveLength(1);
      expect(out[0]!.port).toBe(port);
      const b = out[0]!.bytes;
      expect(b.length).toBe(input.length);
      const dv = new DataView(b.buffer, b.byteOffset);
      expect(dv.getUint16(4)).toBe(mac); // new dstAddr from the action data
      expect(hex(b.subarray(6, 12))).toBe(hex(input.subarray(0, 6))); // srcAddr = old dstAddr
      expect(b[22]).toBe(63);
      expect(dv.getUint16(24)).toBe(ipv4Checksum(b.subarray(14, 34)));
      expect(hex(b.subarray(34))).toBe(hex(input.subarray(34))); // payload untouched
    }
  });

  it('drops what no route matches, ttl <= 1, and non-IPv4 frames', () => {
    const sw = load();
    expect(sw.process(ipv4Frame({ dst: [11, 0, 0, 1] }), 1)).toEqual([]);
    expect(sw.process(ipv4Frame({ dst: [10, 0, 1, 1], ttl: 1 }), 1)).toEqual([]);
    const arp = new Uint8Array(42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(sw.process(arp, 1)).toEqual([]);
  });

  it('handles a truncated frame as a parser error, not a crash', () => {
    const sw = load();
    const short = ipv4Frame({ dst: [10, 0, 1, 1] }).subarray(0, 20);
    expect(sw.process(short, 1)).toEqual([]); // ipv4 invalid → the else branch drops
  });

  it('forwards with entries added at runtime, modified and deleted', () => {
    const sw = load({ NO_CONST_ENTRIES: '1' });
    const frame = ipv4Frame({ dst: [172, 16, 5, 5] });
    expect(sw.process(frame, 1)).toEqual([]);
    const wide = sw.addEntry('MyIngress.ipv4_lpm', {
      key: [{ value: 0xac100000, prefixLength: 12 }],
      action: 'ipv4_forward',
      args: [0x111111111111n, 4],
    });
    const narrow = sw.addEntry('ipv4_lpm', {
      key: [{ value: 0xac100500, prefixLength: 24 }],
      action: 'MyIngress.ipv4_forward',
      args: [0x222222222222n, 5],
    });
    expect(sw.process(frame, 1)[0]!.port).toBe(5);
    expect(sw.process(ipv4Frame({ dst: [172, 16, 6, 5] }), 1)[0]!.port).toBe(4);
    sw.modifyEntry('ipv4_lpm', narrow, 'ipv4_forward', [0x333333333333n, 6]);
    expect(sw.process(frame, 1)[0]!.port).toBe(6);
    sw.deleteEntry('ipv4_lpm', narrow);
    expect(sw.process(frame, 1)[0]!.port).toBe(4);
    sw.modifyEntry('ipv4_lpm', wide, 'drop');
    expect(sw.process(frame, 1)).toEqual([]);
    sw.setDefaultAction('ipv4_lpm', 'ipv4_forward', [1, 9]);
    expect(sw.process(ipv4Frame({ dst: [8, 8, 8, 8] }), 1)[0]!.port).toBe(9);
  });
});
