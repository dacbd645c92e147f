import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { BpfError, VerifierError } from '../src/backends/ebpf/errors.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';

function loadRejection(objectFile: string): { error: VerifierError; insnCount: number } {
  const object = BpfObject.open(bpfObjectPath(objectFile));
  try {
    const insnCount = object.programs[0]!.insnCount;
    try {
      object.load();
    } catch (err) {
      expect(err).toBeInstanceOf(VerifierError);
      return { error: err as VerifierError, insnCount };
    }
    throw new Error(`${objectFile} was expected to be rejected by the verifier`);
  } finally {
    object.close();
  }
}

describe('a verifier rejection reaches JavaScript with the full verifier log', () => {
  it('names the program, the errno and the verifier reason', () => {
    const { error } = loadRejection('testdata/bad_unbounded_read.bpf.o');

    expect(error).toBeInstanceOf(BpfError);
    expect(error.code).toBe('EBPF_VERIFIER');
    expect(error.program).toBe('xdp_bad_unbounded_read');
    expect(error.errno).toBe(constants.errno.EACCES);
    expect(error.log).toContain('invalid access to packet');
    expect(error.log).toMatch(/^processed \d+ insns/m);
    // The instruction listing is there, not only the verdict.
    expect(error.log).toMatch(/^0: \(61\) r\d = \*\(u32 \*\)\(r1 \+0\)/m);
    // The message carries the end of the log so a bare stack trace already says why.
    expect(error.message).toContain("'xdp_bad_unbounded_read'");
    expect(error.message).toContain('EACCES');
    expect(error.message).toContain('invalid access to packet');
    // libbpf's own account of the failure is kept separately.
    expect(error.libbpfLog).toContain('BPF program load failed');
  });

  it('keeps a log of hundreds of KiB whole, from the first instruction to the final error', () => {
    const { error, insnCount } = loadRejection('testdata/bad_long_log.bpf.o');

    expect(error.program).toBe('xdp_bad_after_long_prologue');
    expect(error.log.length).toBeGreaterThan(64 * 1024);
    // The verifier walks the straight-line prologue once, listing every instruction in order
    // up to the failing packet read near the end: none may be missing.
    const listed = new Set([...error.log.matchAll(/^(\d+): \(/gm)].map((match) => Number(match[1])));
    const lastListed = Math.max(...listed);
    expect(lastListed).toBeGreaterThan(insnCount - 8);
    for (let index = 0; index <= lastListed; index++) expect(listed.has(index)).toBe(true);
    expect(error.log.trimEnd().split('\n').slice(-4).join('\n')).toContain('invalid access to packet');
    expect(error.log).toMatch(/^processed \d+ insns/m);
  });

  it('a failed object cannot be loaded again; it must be reopened', () => {
    const object = BpfObject.open(bpfObjectPath('testdata/bad_unbounded_read.bpf.o'));
    try {
      expect(() => object.load()).toThrow(VerifierError);
      expect(object.state).toBe('load-failed');
      expect(() => object.load()).toThrow(expect.objectContaining({ code: 'EBPF_STATE' }));
    } finally {
      object.close();
    }
  });
});
