/**
 * Builds Ethernet II + IPv4 + UDP/TCP frames (tests, the demo, the CLI), with correct IPv4 header checksums
 * and correct UDP/TCP checksums (pseudo-header included), so the same frames are valid input
 * for every target: kernel XDP test-runs, the P4 switch, the reference model.
 */

export const ETH_HEADER_BYTES = 14;
export const IPV4_HEADER_BYTES = 20;
export const UDP_HEADER_BYTES = 8;
export const TCP_HEADER_BYTES = 20;
export const ETH_P_IP = 0x0800;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

export interface Ipv4FrameOptions {
  /** 'aa:bb:cc:dd:ee:ff' or 6 bytes. */
  readonly srcMac?: string | Uint8Array;
  readonly dstMac?: string | Uint8Array;
  /** Dotted quad. */
  readonly srcIp?: string;
  readonly dstIp?: string;
  readonly ttl?: number;
  readonly identification?: number;
  readonly payload?: Uint8Array;
}

export interface UdpFrameOptions extends Ipv4FrameOptions {
  readonly srcPort: number;
  readonly dstPort: number;
}

export interface TcpFrameOptions extends Ipv4FrameOptions {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq?: number;
  readonly ack?: number;
  /** OR of TCP_FLAGS; default SYN. */
  readonly flags?: number;
  readonly window?: number;
}

const DEFAULTS = {
  srcMac: '02:00:00:00:00:01',
  dstMac: '02:00:00:00:00:02',
  srcIp: '10.0.0.1',
  dstIp: '10.0.0.2',
  ttl: 64,
  identification: 1,
} as const;

export function parseMac(mac: string | Uint8Array): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw new RangeError(`a MAC address has 6 bytes, got ${mac.length}`);
    return mac;
  }
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((part) => !/^[0-9a-fA-F]{2}$/.test(part))) {
    throw new RangeError(`not a MAC address: '${mac}'`);
  }
  return Uint8Array.from(parts, (part) => Number.parseInt(part, 16));
}

export function parseIpv4(address: string): Uint8Array {
  const parts = address.split('.');
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part) || Number(part) > 255)) {
    throw new RangeError(`not an IPv4 address: '${address}'`);
  }
  return Uint8Array.from(parts, Number);
}

/** RFC 1071 ones'-complement sum of 16-bit big-endian words, folded and inverted. */
export function internetChecksum(...chunks: Uint8Array[]): number {
  let sum = 0;
  // Chunks are summed as one byte stream, so an odd-length chunk carries into the next.
  let pendingHighByte: number | undefined;
  for (const chunk of chunks) {
    for (const byte of chunk) {
      if (pendingHighByte === undefined) {
        pendingHighByte = byte;
      } else {
        sum += (pendingHighByte << 8) | byte;
        pendingHighByte = undefined;
      }
    }
  }
  if (pendingHighByte !== undefined) sum += pendingHighByte << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The checksum an IPv4 header (its checksum field zeroed) must carry. */
export function ipv4HeaderChecksum(header: Uint8Array): number {
  return internetChecksum(header);
}

export function buildUdpFrame(options: UdpFrameOptions): Uint8Array {
  const payload = options.payload ?? new Uint8Array(0);
  const segment = new Uint8Array(UDP_HEADER_BYTES + payload.length);
  const view = new DataView(segment.buffer);
  view.setUint16(0, options.srcPort);
  view.setUint16(2, options.dstPort);
  view.setUint16(4, segment.length);
  segment.set(payload, UDP_HEADER_BYTES);
  const checksum = transportChecksum(options, IPPROTO_UDP, segment);
  // In UDP a computed checksum of 0 is sent as 0xffff (0 means "no checksum").
  view.setUint16(6, checksum === 0 ? 0xffff : checksum);
  return buildIpv4Frame(options, IPPROTO_UDP, segment);
}

export function buildTcpFrame(options: TcpFrameOptions): Uint8Array {
  const payload = options.payload ?? new Uint8Array(0);
  const segment = new Uint8Array(TCP_HEADER_BYTES + payload.length);
  const view = new DataView(segment.buffer);
  view.setUint16(0, options.srcPort);
  view.setUint16(2, options.dstPort);
  view.setUint32(4, options.seq ?? 0);
  view.setUint32(8, options.ack ?? 0);
  view.setUint8(12, (TCP_HEADER_BYTES / 4) << 4);
  view.setUint8(13, options.flags ?? TCP_FLAGS.SYN);
  view.setUint16(14, options.window ?? 65535);
  segment.set(payload, TCP_HEADER_BYTES);
  view.setUint16(16, transportChecksum(options, IPPROTO_TCP, segment));
  return buildIpv4Frame(options, IPPROTO_TCP, segment);
}

/** Ethernet + IPv4 (no options, DF set) around an already built transport segment. */
export function buildIpv4Frame(options: Ipv4FrameOptions, protocol: number, segment: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ETH_HEADER_BYTES + IPV4_HEADER_BYTES + segment.length);
  const view = new DataView(frame.buffer);
  frame.set(parseMac(options.dstMac ?? DEFAULTS.dstMac), 0);
  frame.set(parseMac(options.srcMac ?? DEFAULTS.srcMac), 6);
  view.setUint16(12, ETH_P_IP);

  const ip = ETH_HEADER_BYTES;
  view.setUint8(ip, 0x45); // version 4, IHL 5 words
  view.setUint8(ip + 1, 0); // DSCP/ECN
  view.setUint16(ip + 2, IPV4_HEADER_BYTES + segment.length);
  view.setUint16(ip + 4, options.identification ?? DEFAULTS.identification);
  view.setUint16(ip + 6, 0x4000); // don't fragment, offset 0
  view.setUint8(ip + 8, options.ttl ?? DEFAULTS.ttl);
  view.setUint8(ip + 9, protocol);
  frame.set(parseIpv4(options.srcIp ?? DEFAULTS.srcIp), ip + 12);
  frame.set(parseIpv4(options.dstIp ?? DEFAULTS.dstIp), ip + 16);
  view.setUint16(ip + 10, ipv4HeaderChecksum(frame.subarray(ip, ip + IPV4_HEADER_BYTES)));

  frame.set(segment, ip + IPV4_HEADER_BYTES);
  return frame;
}

function transportChecksum(options: Ipv4FrameOptions, protocol: number, segment: Uint8Array): number {
  const pseudoHeader = new Uint8Array(12);
  pseudoHeader.set(parseIpv4(options.srcIp ?? DEFAULTS.srcIp), 0);
  pseudoHeader.set(parseIpv4(options.dstIp ?? DEFAULTS.dstIp), 4);
  pseudoHeader[9] = protocol;
  new DataView(pseudoHeader.buffer).setUint16(10, segment.length);
  return internetChecksum(pseudoHeader, segment);
}
