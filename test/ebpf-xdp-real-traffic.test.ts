/**
 * Real UDP traffic between two test-made namespaces, through XDP programs attached in native
 * mode on the receiving veth. Bounded: a few hundred datagrams per case, addresses private to
 * the pair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acl } from '../src/backends/ebpf/acl.js';
import { xdpQuery } from '../src/backends/ebpf/link.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { DROP_EVENT, decodeDropEvent, type DropEvent, RateLimiter } from '../src/backends/ebpf/ratelimit.js';
import { RingBuffer } from '../src/backends/ebpf/ringbuf.js';
import { XdpManager } from '../src/backends/ebpf/xdp.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { createVethPair, receiveUdp, sendUdp, type VethPair } from './helpers/netns.js';

let pair: VethPair;
let manager: XdpManager;
const objects: BpfObject[] = [];

beforeAll(() => {
  pair = createVethPair('traffic');
  manager = new XdpManager({ root: `/sys/fs/bpf/thunderpac-test-traffic-${process.pid}` });
});

afterAll(() => {
  try {
    manager?.close();
  } finally {
    for (const object of objects) object.close();
    pair?.destroy();
  }
});

function load(name: string): BpfObject {
  const object = BpfObject.open(bpfObjectPath(name)).load();
  objects.push(object);
  return object;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends while a receiver counts what XDP let through. */
async function exchange(
  options: Parameters<typeof sendUdp>[1],
): Promise<{ received: number; elapsedS: number }> {
  const receiver = receiveUdp(pair.nsB, { port: options.port, family: options.to.includes(':') ? 6 : 4 });
  await receiver.ready;
  const sent = await sendUdp(pair.nsA, options);
  receiver.finish();
  expect(sent.sent).toBe(options.count);
  return { received: await receiver.count, elapsedS: (sent.lastMs - sent.firstMs) / 1000 };
}

describe('xdp_ratelimit on a veth pair', () => {
  /*
   * Tolerance. Under overload the bucket is empty from the moment the burst is spent, so the
   * number passed is exactly burst + rate × (time between the first and the last packet the
   * program sees), rounded down to whole packets. We measure that window at the sender; the
   * kernel sees each datagram within a fraction of a millisecond of its send callback, so the
   * window is off by at most a few ms: ±1 packet at these rates. Allow ±(2 packets + 5 %) for
   * scheduling noise on a busy 2-core machine (a delayed NAPI poll shifts when the kernel sees
   * the first or last packet), and require every packet to be either passed or dropped, and the
   * receiver to get exactly the passed ones.
   */
  it('passes the burst, then the configured rate, and drops the rest (IPv4 and IPv6)', async () => {
    const object = load('xdp_ratelimit.bpf.o');
    const limiter = new RateLimiter(object);
    try {
      const rate = 200;
      const burst = 50;
      limiter.setRule(`${pair.ipA}/32`, { ratePps: rate, burst });
      limiter.setRule(`${pair.ip6A}/128`, { ratePps: 100, burst: 10 });
      limiter.setDropEvents(true);
      const events: DropEvent[] = [];
      const ring = RingBuffer.openTyped(limiter.events, DROP_EVENT, (e) => events.push(decodeDropEvent(e)));
      manager.attach(object, 'xdp_ratelimit', { device: pair.devB, netns: pair.nsB });
      try {
        // 1. A back-to-back flood: the burst, plus what accrues during the flood.
        const flood = await exchange({ to: pair.ipB, port: 7000, count: 300 });
        let stats = limiter.stats();
        expect(stats.passed + stats.dropped).toBe(300n);
        expect(Number(stats.passed)).toBe(flood.received);
        expect(flood.received).toBeGreaterThanOrEqual(burst);
        expect(flood.received).toBeLessThanOrEqual(burst + Math.ceil(rate * flood.elapsedS * 1.05) + 2);

        // 2. After the bucket refills (burst / rate = 250 ms), offer 2x the rate for ~1 s.
        await sleep(400);
        const paced = await exchange({ to: pair.ipB, port: 7000, count: 400, perTick: 8, intervalMs: 20 });
        const before = stats;
        stats = limiter.stats();
        const passed = Number(stats.passed - before.passed);
        expect(passed).toBe(paced.received);
        expect(Number(stats.dropped - before.dropped)).toBe(400 - passed);
        const expected = burst + rate * paced.elapsedS;
        expect(paced.elapsedS).toBeGreaterThan(0.5);
        expect(Math.abs(passed - expected)).toBeLessThanOrEqual(2 + expected * 0.05);

        // 3. IPv6 from the other rule.
        const six = await exchange({ to: pair.ip6B, port: 7001, count: 100 });
        expect(six.received).toBeGreaterThanOrEqual(10);
        expect(six.received).toBeLessThanOrEqual(10 + Math.ceil(100 * six.elapsedS * 1.05) + 2);

        // Per-source counters and one ring-buffer event per drop.
        const sources = new Map(limiter.sources().map((s) => [s.source, s]));
        expect(sources.get(pair.ipA)?.passed).toBe(BigInt(flood.received + paced.received));
        expect(sources.get(pair.ip6A)).toMatchObject({
          passed: BigInt(six.received),
          dropped: BigInt(100 - six.received),
        });
        const totalDropped = Number(limiter.stats().dropped);
        const deadline = Date.now() + 2000;
        while (events.length < totalDropped && Date.now() < deadline) await sleep(10);
        expect(events.length + Number(limiter.stats().eventsLost)).toBe(totalDropped);
        expect(events.filter((e) => e.source === pair.ip6A).length).toBe(100 - six.received);
      } finally {
        ring.close();
        manager.detach({ device: pair.devB, netns: pair.nsB });
      }
    } finally {
      limiter.close();
    }
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(0);
  });
});

describe('xdp_acl on a veth pair', () => {
  it('drops, passes and counts real datagrams per rule', async () => {
    const object = load('xdp_acl.bpf.o');
    const acl = new Acl(object);
    try {
      acl.setRules([
        { dst: `${pair.ipB}/32`, protocol: 'udp', dstPort: 7101, action: 'drop' },
        { src: `${pair.ipA}/32`, protocol: 'udp', dstPort: [7102, 7103], action: 'count' },
      ]);
      manager.attach(object, 'xdp_acl', { device: pair.devB, netns: pair.nsB });
      try {
        const toPass = await exchange({ to: pair.ipB, port: 7100, count: 20 });
        const toDrop = await exchange({ to: pair.ipB, port: 7101, count: 30 });
        const toCount = await exchange({ to: pair.ipB, port: 7102, count: 40 });
        expect([toPass.received, toDrop.received, toCount.received]).toEqual([20, 0, 40]);
        const counters = acl.counters();
        expect(counters.rules.map((c) => c.packets)).toEqual([30n, 40n]);
        // Unmatched IP packets: our 20, plus any IPv6 multicast chatter (MLD) the kernel sends.
        expect(counters.default.packets).toBeGreaterThanOrEqual(20n);
        // Frames: 14 Ethernet + 20 IPv4 + 8 UDP + 32 payload.
        expect(counters.rules[1]!.bytes).toBe(40n * 74n);
      } finally {
        manager.detach({ device: pair.devB, netns: pair.nsB });
      }
    } finally {
      acl.close();
    }
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(0);
  });
});
