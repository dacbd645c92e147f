/** Reads the packets of a classic libpcap file (not pcapng), Ethernet link type only. */
import { UsageError } from './io.js';
import { readUserFile } from './paths.js';

const LINKTYPE_ETHERNET = 1;

export function readPcap(path: string): Uint8Array[] {
  const data = readUserFile(path, '--pcap');
  if (data.length < 24) throw new UsageError(`${path}: too short for a pcap file`);
  const magic = data.readUInt32LE(0);
  let little: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new UsageError(`${path}: not a pcap file (pcapng is not supported)`);
  const u32 = (offset: number): number => (little ? data.readUInt32LE(offset) : data.readUInt32BE(offset));
  const linkType = u32(20) & 0x0fffffff;
  if (linkType !== LINKTYPE_ETHERNET)
    throw new UsageError(`${path}: link type ${linkType}, only Ethernet (1) is supported`);
  const packets: Uint8Array[] = [];
  for (let offset = 24; offset < data.length; ) {
    if (offset + 16 > data.length) throw new UsageError(`${path}: truncated record header at byte ${offset}`);
    const captured = u32(offset + 8);
    const start = offset + 16;
    if (start + captured > data.length) throw new UsageError(`${path}: truncated packet at byte ${offset}`);
    packets.push(new Uint8Array(data.subarray(start, start + captured)));
    offset = start + captured;
  }
  return packets;
}

/** A pcap file of Ethernet frames (microsecond timestamps, all zero): for tests and examples. */
export function writePcap(frames: readonly Uint8Array[]): Uint8Array {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  const parts: Buffer[] = [header];
  for (const frame of frames) {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    parts.push(record, Buffer.from(frame));
  }
  return Buffer.concat(parts);
}
