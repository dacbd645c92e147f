import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../src/runtime/package-root.js';

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
