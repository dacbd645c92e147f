import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BpfObject, libbpfVersion, numPossibleCpus, testRunFd } from '../src/backends/ebpf/object.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { buildTcpFrame, buildUdpFrame } from '../src/runtime/packets.js';

const COUNTER_OBJECT = bpfObjectPath('xdp_counter.bpf.o');
const VERDICT_OBJECT = bpfObjectPath('xdp_verdict.bpf.o');
const PAD_TAIL_BYTES = 32; // xdp_verdict.bpf.c
const DROPPED_UDP_PORT = 9; // xdp_verdict.bpf.c default drop_udp_port

const opened: BpfObject[] = [];
function open(...args: Parameters<typeof BpfObject.open>): BpfObject {
  const object = BpfObject.open(...args);
  opened.push(object);
  return object;
}

afterEach(() => {
  for (const object of opened.splice(0)) object.close();
});

const ARRAY_KEY_ZERO = new Uint8Array(4);

/** Sums the per-CPU { packets, bytes } slots of xdp_count's pkt_count map. */
function readCounter(object: BpfObject): { packets: bigint; bytes: bigint } {
  const slots = object.mapLookupPerCpu('pkt_count', ARRAY_KEY_ZERO);
  expect(slots).not.toBeNull();
  let packets = 0n;
  let bytes = 0n;
  for (const slot of slots!) {
    const view = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
    packets += view.getBigUint64(0, true);
    bytes += view.getBigUint64(8, true);
  }
  return { packets, bytes };
}

describe('BpfObject opens, loads and test-runs XDP programs in the kernel', () => {
  it('reports the libbpf version it links', () => {
    expect(libbpfVersion()).toMatch(/^\d+\.\d+$/);
    expect(numPossibleCpus()).toBeGreaterThan(0);
  });

  it('opens from a path and lists programs and maps, with fds only after load', () => {
    const object = open(COUNTER_OBJECT);
    expect(object.name).toBe('xdp_counter');
    expect(object.state).toBe('opened');
    expect(object.programs).toEqual([
      expect.objectContaining({ name: 'xdp_count', sectionName: 'xdp', typeName: 'xdp', fd: null }),
    ]);
    expect(object.maps).toEqual([
      expect.objectContaining({
        name: 'pkt_count',
        typeName: 'percpu_array',
        keySize: 4,
        valueSize: 16,
        maxEntries: 1,
        perCpu: true,
        fd: null,
      }),
    ]);

    object.load();
    expect(object.state).toBe('loaded');
    expect(object.program('xdp_count').fd).toEqual(expect.any(Number));
    expect(object.map('pkt_count').fd).toEqual(expect.any(Number));
  });

  it('opens from a Buffer under the given object name', () => {
    const object = open(readFileSync(VERDICT_OBJECT), { objectName: 'verdict_mem' });
    expect(object.name).toBe('verdict_mem');
    expect(object.source).toBe('<memory>');
    expect(object.programs.map((program) => program.name)).toEqual([
      'xdp_drop_udp',
      'xdp_swap_mac',
      'xdp_pad_tail',
    ]);
    object.load();
    const frame = buildUdpFrame({ srcPort: 1234, dstPort: DROPPED_UDP_PORT });
    expect(object.testRun('xdp_drop_udp', frame).action).toBe('XDP_DROP');
  });

  it('xdp_count passes the packet unchanged and counts it in its map; repeat runs it N times', () => {
    const object = open(COUNTER_OBJECT).load();
    expect(readCounter(object)).toEqual({ packets: 0n, bytes: 0n });

    const frame = buildUdpFrame({ srcPort: 4000, dstPort: 53, payload: new Uint8Array(100).fill(0xab) });
    const once = object.testRun('xdp_count', frame);
    expect(once.retval).toBe(2);
    expect(once.action).toBe('XDP_PASS');
    expect(once.data).toEqual(frame);
    expect(once.repeat).toBe(1);
    expect(readCounter(object)).toEqual({ packets: 1n, bytes: BigInt(frame.length) });

    const repeated = object.testRun('xdp_count', frame, { repeat: 100 });
    expect(repeated.repeat).toBe(100);
    expect(repeated.action).toBe('XDP_PASS');
    expect(typeof repeated.durationNs).toBe('number');
    expect(repeated.durationNs).toBeGreaterThanOrEqual(0);
    expect(readCounter(object)).toEqual({ packets: 101n, bytes: BigInt(101 * frame.length) });
  });

  it('xdp_drop_udp drops UDP to its port and passes other UDP and TCP to the same port', () => {
    const object = open(VERDICT_OBJECT).load();
    const verdict = (frame: Uint8Array) => object.testRun('xdp_drop_udp', frame).action;

    expect(verdict(buildUdpFrame({ srcPort: 5555, dstPort: DROPPED_UDP_PORT }))).toBe('XDP_DROP');
    expect(verdict(buildUdpFrame({ srcPort: 5555, dstPort: 53 }))).toBe('XDP_PASS');
    expect(verdict(buildUdpFrame({ srcPort: DROPPED_UDP_PORT, dstPort: 53 }))).toBe('XDP_PASS');
    expect(verdict(buildTcpFrame({ srcPort: 5555, dstPort: DROPPED_UDP_PORT }))).toBe('XDP_PASS');
    // A frame too short to hold an IPv4 header is passed, not read out of bounds.
    expect(verdict(buildUdpFrame({ srcPort: 1, dstPort: DROPPED_UDP_PORT }).subarray(0, 20))).toBe(
      'XDP_PASS',
    );
  });

  it('xdp_swap_mac rewrites the frame and bounces it with XDP_TX', () => {
    const object = open(VERDICT_OBJECT).load();
    const frame = buildTcpFrame({
      srcMac: '02:aa:aa:aa:aa:aa',
      dstMac: '02:bb:bb:bb:bb:bb',
      srcPort: 1,
      dstPort: 2,
    });
    const result = object.testRun('xdp_swap_mac', frame);

    expect(result.action).toBe('XDP_TX');
    expect(result.data).not.toEqual(frame);
    expect(result.data.subarray(0, 6)).toEqual(frame.subarray(6, 12));
    expect(result.data.subarray(6, 12)).toEqual(frame.subarray(0, 6));
    expect(result.data.subarray(12)).toEqual(frame.subarray(12));
  });

  it('returns an output longer than the input when the program grows the packet', () => {
    const object = open(VERDICT_OBJECT).load();
    const frame = buildUdpFrame({ srcPort: 1, dstPort: 2 });

    const grown = object.testRun('xdp_pad_tail', frame);
    expect(grown.action).toBe('XDP_PASS');
    expect(grown.data.length).toBe(frame.length + PAD_TAIL_BYTES);
    expect(grown.data.subarray(0, frame.length)).toEqual(frame);

    expect(grown.dataSize).toBe(frame.length + PAD_TAIL_BYTES);
    expect(grown.truncated).toBe(false);

    // An explicit capacity is a cap: the output comes back cut to it, flagged, not re-run.
    const capped = object.testRun('xdp_pad_tail', frame, { dataOutSize: frame.length });
    expect(capped.truncated).toBe(true);
    expect(capped.data).toEqual(grown.data.subarray(0, frame.length));
    expect(capped.dataSize).toBe(frame.length + PAD_TAIL_BYTES);
  });

  it('test-runs by program fd, from the object and standalone', () => {
    const object = open(VERDICT_OBJECT).load();
    const fd = object.program('xdp_drop_udp').fd!;
    const frame = buildUdpFrame({ srcPort: 1, dstPort: DROPPED_UDP_PORT });

    expect(object.testRun(fd, frame).action).toBe('XDP_DROP');
    expect(testRunFd(fd, frame, { xdp: true }).action).toBe('XDP_DROP');
    expect(testRunFd(fd, frame).retval).toBe(1);
  });

  it('close is idempotent and releases the program fds', () => {
    const object = open(COUNTER_OBJECT).load();
    object.close();
    object.close();
    expect(object.closed).toBe(true);
    expect(object.state).toBe('closed');
  });

  it('Symbol.dispose closes the object', () => {
    const object = open(COUNTER_OBJECT);
    object[Symbol.dispose]();
    expect(object.closed).toBe(true);
  });
});
