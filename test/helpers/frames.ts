/** IPv6 frames for kernel tests (IPv4 frames come from src/runtime/packets.ts). */
import { parseIp } from '../../src/backends/ebpf/codec.js';
import { internetChecksum, parseMac } from '../../src/runtime/packets.js';

export function buildUdp6Frame(options: {
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  payload?: Uint8Array;
}): Uint8Array {
  const payload = options.payload ?? new Uint8Array(0);
  const udpLength = 8 + payload.length;
  const frame = new Uint8Array(14 + 40 + udpLength);
  const view = new DataView(frame.buffer);
  frame.set(parseMac('02:00:00:00:00:02'), 0);
  frame.set(parseMac('02:00:00:00:00:01'), 6);
  view.setUint16(12, 0x86dd);
  view.setUint32(14, 0x60000000);
  view.setUint16(18, udpLength);
  view.setUint8(20, 17);
  view.setUint8(21, 64);
  const src = parseIp(options.srcIp, 6, 'srcIp');
  const dst = parseIp(options.dstIp, 6, 'dstIp');
  frame.set(src, 22);
  frame.set(dst, 38);
  view.setUint16(54, options.srcPort);
  view.setUint16(56, options.dstPort);
  view.setUint16(58, udpLength);
  frame.set(payload, 62);
  const pseudo = new Uint8Array(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  new DataView(pseudo.buffer).setUint32(32, udpLength);
  pseudo[39] = 17;
  const checksum = internetChecksum(pseudo, frame.subarray(54));
  view.setUint16(60, checksum === 0 ? 0xffff : checksum);
  return frame;
}
