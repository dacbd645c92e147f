import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../src/runtime/package-root.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';

export const sample = (name: string): string => readFileSync(packagePath('p4', 'samples', name), 'utf8');
export const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'p4', name), 'utf8');

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 1071 over an IPv4 header, written here independently of the code under test. */
export function ipv4Checksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) {
    if (i === 10) continue; // the checksum field itself
    sum += header[i]! * 256 + (header[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return 0xffff - sum;
}

/** Ethernet II + IPv4 (20 bytes) + payload, with a correct header checksum. */
export function ipv4Frame(opts: {
  dst: [number, number, number, number];
  ttl?: number;
  srcMac?: number;
  dstMac?: number;
  protocol?: number;
  payload?: number[];
  badChecksum?: boolean;
}): Uint8Array {
  const payload = opts.payload ?? [1, 2, 3, 4];
  const f = new Uint8Array(14 + 20 + payload.length);
  const dv = new DataView(f.buffer);
  dv.setUint16(4, opts.dstMac ?? 0xaaaa);
  dv.setUint16(10, opts.srcMac ?? 0xbbbb);
  dv.setUint16(12, 0x0800);
  f[14] = 0x45;
  dv.setUint16(16, 20 + payload.length);
  dv.setUint16(18, 0x1234);
  f[22] = opts.ttl ?? 64;
  f[23] = opts.protocol ?? 17;
  f.set([192, 168, 0, 1], 26);
  f.set(opts.dst, 30);
  f.set(payload, 34);
  const c = ipv4Checksum(f.subarray(14, 34));
  dv.setUint16(24, opts.badChecksum ? c ^ 0xff : c);
  return f;
}

/** Ethernet (dst aa:aa:aa:aa:aa:aa) + IPv4 + UDP from `src` to 10.0.0.1:`dport`. */
export function udpFrame(src: number, dport: number): Uint8Array {
  const b = new Uint8Array(14 + 20 + 8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0xaaaaaaaa);
  dv.setUint16(4, 0xaaaa);
  dv.setUint16(12, 0x0800);
  b[14] = 0x45;
  dv.setUint16(16, 28);
  b[22] = 64;
  b[23] = 17;
  dv.setUint32(26, src);
  dv.setUint32(30, 0x0a000001);
  dv.setUint16(34, 1000);
  dv.setUint16(36, dport);
  dv.setUint16(38, 8);
  return b;
}

interface AclEntry {
  readonly value: number;
  readonly mask: number;
  readonly lo: number;
  readonly hi: number;
  readonly priority: number;
  readonly cls: number;
}

/**
 * features.p4's ACL (ternary source, ternary destination, range destination port → set_class,
 * which lands in the DSCP) on a switch, beside a reference written here: among entries whose
 * masked source matches and whose port range holds the packet's, the lowest priority number
 * wins, ties to the entry added first; no match leaves class 1.
 */
export class AclWithReference {
  readonly sw: BehavioralSwitch;
  readonly #installed: AclEntry[] = [];

  constructor(featuresJson: unknown) {
    this.sw = new BehavioralSwitch(featuresJson);
    this.sw.addEntry('l2', { key: [0xaaaaaaaaaaaan], action: 'set_port', args: [2] });
  }

  /** Install an entry (destination wildcarded); false when the switch refuses it as a duplicate. */
  add(value: number, mask: number, lo: number, hi: number, priority: number): boolean {
    const cls = 10 + (this.#installed.length % 50); // never 9 (that class pushes a VLAN tag)
    try {
      this.sw.addEntry('acl', {
        key: [
          { value, mask },
          { value: 0, mask: 0 },
          { low: lo, high: hi },
        ],
        action: 'set_class',
        args: [cls],
        priority,
      });
    } catch {
      return false; // an identical entry at the same priority
    }
    this.#installed.push({ value, mask, lo, hi, priority, cls });
    return true;
  }

  /** The DSCP the reference expects for a UDP packet from `src` to `dport`. */
  expectedDscp(src: number, dport: number): number {
    let best: AclEntry | undefined;
    for (const x of this.#installed) {
      const hit = (src & x.mask) >>> 0 === x.value && dport >= x.lo && dport <= x.hi;
      if (hit && (best === undefined || x.priority < best.priority)) best = x;
    }
    return best ? best.cls & 63 : 1;
  }

  /** The DSCP of the packet the switch forwards (egress drops UDP port 9: don't ask for it). */
  dscp(src: number, dport: number): number {
    const out = this.sw.process(udpFrame(src, dport), 0);
    return out[0]!.bytes[15]! >> 2;
  }
}
