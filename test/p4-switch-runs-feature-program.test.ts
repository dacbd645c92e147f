import { describe, expect, it } from 'vitest';
import { crc16, crc32 } from '../src/backends/p4/bits.js';
import { P4RuntimeError } from '../src/backends/p4/errors.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { ipv4Checksum, sample } from './p4-helpers.js';

const PORT_MAC = 0x0a0b0c0d0e0fn;

function load(): BehavioralSwitch {
  const sw = new BehavioralSwitch(compileP4(sample('features.p4'), { file: 'features.p4' }).bmv2);
  sw.addEntry('l2', { key: [PORT_MAC], action: 'set_port', args: [3] });
  return sw;
}

/** eth [+ vlan tags] + ipv4 + udp, written independently of the code under test. */
function frame(o: {
  vids?: number[];
  src?: number;
  dst?: number;
  ttl?: number;
  dport?: number;
  mac?: bigint;
}): Uint8Array {
  const vids = o.vids ?? [];
  const b = new Uint8Array(14 + 4 * vids.length + 20 + 8 + 4);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Number((o.mac ?? PORT_MAC) >> 16n));
  dv.setUint16(4, Number((o.mac ?? PORT_MAC) & 0xffffn));
  dv.setUint16(12, vids.length ? 0x8100 : 0x0800);
  let off = 14;
  vids.forEach((vid, i) => {
    dv.setUint16(off, vid);
    dv.setUint16(off + 2, i === vids.length - 1 ? 0x0800 : 0x8100);
    off += 4;
  });
  const ip = off;
  b[ip] = 0x45;
  dv.setUint16(ip + 2, 32);
  b[ip + 8] = o.ttl ?? 64;
  b[ip + 9] = 17;
  dv.setUint32(ip + 12, o.src ?? 0xc0a80001);
  dv.setUint32(ip + 16, o.dst ?? 0x0a000005);
  dv.setUint16(ip + 10, ipv4Checksum(b.subarray(ip, ip + 20)));
  dv.setUint16(ip + 20, 1234);
  dv.setUint16(ip + 22, o.dport ?? 53);
  dv.setUint16(ip + 24, 12);
  dv.setUint16(ip + 26, 0xbeef);
  return b;
}

function crc16Arc(bytes: number[]): number {
  let c = 0;
  for (const x of bytes) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  }
  return c;
}

describe('behavioral switch: features.p4', () => {
  it('hash algorithms match their published check values', () => {
    const digits = new TextEncoder().encode('123456789');
    expect(crc16(digits)).toBe(0xbb3d);
    expect(crc32(digits)).toBe(0xcbf43926);
  });

  it('l2 miss drops through exit; the indexed counter counts every packet', () => {
    const sw = load();
    expect(sw.process(frame({ mac: 0x111111111111n }), 4)).toEqual([]);
    expect(sw.process(frame({}), 4)).toHaveLength(1);
    expect(sw.readCounter('port_counter', 4)).toEqual({ packets: 2, bytes: 2 * 46 });
    expect(() => sw.readCounter('port_counter', 16)).toThrow(P4RuntimeError);
  });

  it('acl miss: class +1 → DSCP, register, crc16 hash, saturating ttl, checksum', () => {
    const sw = load();
    const out = sw.process(frame({ ttl: 2, dst: 0x0a000005 }), 1);
    expect(out).toHaveLength(1);
    expect(out[0]!.port).toBe(3);
    const b = out[0]!.bytes;
    const dv = new DataView(b.buffer, b.byteOffset);
    expect(b[15]).toBe(1 << 2);
    expect(b[22]).toBe(0); // 2 |-| 3 saturates at 0
    expect(dv.getUint16(18)).toBe(crc16Arc([192, 168, 0, 1, 10, 0, 0, 5]));
    expect(dv.getUint16(24)).toBe(ipv4Checksum(b.subarray(14, 34)));
    sw.process(frame({ dst: 0x0a000015 }), 1);
    expect(sw.readRegister('seen', 5)).toBe(2n);
    sw.writeRegister('seen', 5, 40);
    sw.process(frame({}), 1);
    expect(sw.readRegister('seen', 5)).toBe(41n);
    expect(() => sw.writeRegister('seen', 5, 2n ** 32n)).toThrow(/does not fit/);
  });

  it('acl: ternary priorities (lower wins), ranges, direct counters, and pushing a VLAN tag', () => {
    const sw = load();
    const deny = sw.addEntry('acl', {
      key: [
        { value: 0xc0a80000, mask: 0xffff0000 },
        { value: 17, mask: 0xff },
        { low: 0, high: 65535 },
      ],
      action: 'deny',
      priority: 10,
    });
    expect(sw.process(frame({ src: 0xc0a80107 }), 1)).toEqual([]);
    const permit = sw.addEntry('acl', {
      key: [
        { value: 0xc0a80107, mask: 0xffffffff },
        { value: 0, mask: 0 },
        { low: 50, high: 60 },
      ],
      action: 'permit',
      priority: 5,
    });
    expect(sw.process(frame({ src: 0xc0a80107, dport: 53 }), 1)).toHaveLength(1);
    expect(sw.process(frame({ src: 0xc0a80107, dport: 61 }), 1)).toEqual([]); // outside the range → deny
    expect(sw.readDirectCounter('acl', permit)).toEqual({ packets: 1, bytes: 46 });
    expect(sw.readDirectCounter('acl', deny).packets).toBe(2);
    expect(() => sw.addEntry('acl', { key: [0, 0, { low: 0, high: 1 }], action: 'permit' })).toThrow(
      /priority/,
    );

    sw.addEntry('acl', {
      key: [0x01020304, 17, { low: 0, high: 65535 }],
      action: 'set_class',
      args: [9],
      priority: 1,
    });
    const out = sw.process(frame({ src: 0x01020304 }), 1)[0]!.bytes;
    const dv = new DataView(out.buffer, out.byteOffset);
    expect(out.length).toBe(46 + 4);
    expect(dv.getUint16(12)).toBe(0x8100);
    expect(dv.getUint16(14) & 0xfff).toBe(99);
    expect(dv.getUint16(16)).toBe(0x0800);
    expect(out[18]).toBe(0x45);
    expect(out[19]).toBe(9 << 2);
  });

  it('pops VLAN tags by vid class (const entries with an isValid() key)', () => {
    const sw = load();
    const single = sw.process(frame({ vids: [10] }), 1)[0]!.bytes;
    expect(single.length).toBe(46);
    expect(new DataView(single.buffer, single.byteOffset).getUint16(12)).toBe(0x0800);
    expect(single[15]).toBe(8 << 2); // vlan_class(7), then the acl miss adds 1
    const double = sw.process(frame({ vids: [20, 5] }), 1)[0]!.bytes;
    const dv = new DataView(double.buffer, double.byteOffset);
    expect(double.length).toBe(50);
    expect(dv.getUint16(12)).toBe(0x8100);
    expect(dv.getUint16(14) & 0xfff).toBe(5);
    expect(dv.getUint16(16)).toBe(0x0800);
    expect(double[19]).toBe(10 << 2);
  });

  it('egress switch on values: port 7 zeroes the UDP checksum, port 9 drops', () => {
    const sw = load();
    const seven = sw.process(frame({ dport: 7 }), 1)[0]!.bytes;
    expect(new DataView(seven.buffer, seven.byteOffset).getUint16(40)).toBe(0);
    const other = sw.process(frame({ dport: 8 }), 1)[0]!.bytes;
    expect(new DataView(other.buffer, other.byteOffset).getUint16(40)).toBe(0xbeef);
    expect(sw.process(frame({ dport: 9 }), 1)).toEqual([]);
  });
});
