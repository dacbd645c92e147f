import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { BpfError, ClosedHandleError } from '../src/backends/ebpf/errors.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { buildUdpFrame } from '../src/runtime/packets.js';

function thrownBy(action: () => unknown): BpfError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(BpfError);
    return err as BpfError;
  }
  throw new Error('expected a BpfError, nothing was thrown');
}

describe('bad inputs raise typed BpfErrors, never crashes', () => {
  it('a missing file: EBPF_OPEN naming the path', () => {
    const path = '/nonexistent/thunderpac/missing.bpf.o';
    const error = thrownBy(() => BpfObject.open(path));
    expect(error.code).toBe('EBPF_OPEN');
    expect(error.errno).toBe(constants.errno.ENOENT);
    expect(error.path).toBe(path);
    expect(error.message).toContain(path);
  });

  it('bytes that are not an ELF object: EBPF_MALFORMED_OBJECT, refused before libbpf sees them', () => {
    const error = thrownBy(() => BpfObject.open(new TextEncoder().encode('definitely not an ELF file')));
    expect(error.code).toBe('EBPF_MALFORMED_OBJECT');
    expect(error.message).toMatch(/ELF/);
    expect(thrownBy(() => BpfObject.open(new Uint8Array(0))).code).toBe('EBPF_MALFORMED_OBJECT');
  });

  it('an unknown program or map name: EBPF_NOT_FOUND listing what exists', () => {
    const object = BpfObject.open(bpfObjectPath('xdp_counter.bpf.o')).load();
    try {
      const program = thrownBy(() =>
        object.testRun('no_such_program', buildUdpFrame({ srcPort: 1, dstPort: 2 })),
      );
      expect(program.code).toBe('EBPF_NOT_FOUND');
      expect(program.program).toBe('no_such_program');
      expect(program.message).toContain('xdp_count');

      const map = thrownBy(() => object.mapLookup('no_such_map', new Uint8Array(4)));
      expect(map.code).toBe('EBPF_NOT_FOUND');
      expect(map.message).toContain('pkt_count');
    } finally {
      object.close();
    }
  });

  it('test-running before load, or with a packet too short for XDP, is refused', () => {
    const object = BpfObject.open(bpfObjectPath('xdp_counter.bpf.o'));
    try {
      const frame = buildUdpFrame({ srcPort: 1, dstPort: 2 });
      expect(thrownBy(() => object.testRun('xdp_count', frame)).code).toBe('EBPF_STATE');
      object.load();
      const tooShort = thrownBy(() => object.testRun('xdp_count', new Uint8Array(4)));
      expect(tooShort.code).toBe('EBPF_TEST_RUN');
      expect(tooShort.errno).toBe(constants.errno.EINVAL);
    } finally {
      object.close();
    }
  });

  it('a map key of the wrong size: EBPF_INVALID_ARG', () => {
    const object = BpfObject.open(bpfObjectPath('xdp_counter.bpf.o')).load();
    try {
      expect(thrownBy(() => object.mapLookup('pkt_count', new Uint8Array(2))).code).toBe('EBPF_INVALID_ARG');
    } finally {
      object.close();
    }
  });

  it('every use of a closed object throws ClosedHandleError', () => {
    const object = BpfObject.open(bpfObjectPath('xdp_counter.bpf.o')).load();
    object.close();
    const frame = buildUdpFrame({ srcPort: 1, dstPort: 2 });
    for (const use of [
      () => object.programs,
      () => object.maps,
      () => object.load(),
      () => object.testRun('xdp_count', frame),
      () => object.mapLookup('pkt_count', new Uint8Array(4)),
    ]) {
      const error = thrownBy(use);
      expect(error).toBeInstanceOf(ClosedHandleError);
      expect(error.code).toBe('EBPF_CLOSED');
    }
  });
});
