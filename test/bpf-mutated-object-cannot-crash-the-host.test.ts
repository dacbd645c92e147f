/**
 * Issue #10, defect 6: libbpf 1.1 segfaults inside bpf_object__open_mem on some one-byte
 * mutations of a BPF object (a BTF type id past the last type, in a map definition), and loops
 * forever on a typedef that names itself. Such objects must end in a typed error — through
 * BpfObject.open, execute() and `thunderpac xdp test-run` — while this process lives on.
 * Before the fix, the first test below killed the test process with SIGSEGV.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBpfBuild } from '../src/backends/ebpf/backend.js';
import { BpfError, MalformedObjectError } from '../src/backends/ebpf/errors.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { probeInChild, probeInChildAsync } from '../src/backends/ebpf/object-vetting.js';
import { buildUdpFrame } from '../src/runtime/packets.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import {
  btfTypes,
  btfVarStructMemberTypeField,
  btfVarTypeField,
  elfSection,
  withByte,
  withU32,
} from './helpers/bpf-object-bytes.js';
import { cli } from './helpers/cli.js';
import { storedThunderpac } from './helpers/stored-thunderpac.js';

const counter = new Uint8Array(readFileSync(bpfObjectPath('xdp_counter.bpf.o')));
/** The byte libbpf reads as the low byte of the type id of `pkt_count`'s definition member 0 (`type`). */
const memberTypeField = btfVarStructMemberTypeField(counter, 'pkt_count', 0);
/** One byte: member `type` of the map definition now names type 255, past the last type. */
const memberTypeCrasher = withByte(counter, memberTypeField, 0xff);
/** One byte: the map variable itself now names type 255. */
const variableTypeCrasher = withByte(counter, btfVarTypeField(counter, 'pkt_count'), 0xff);

function refusal(action: () => unknown): MalformedObjectError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(MalformedObjectError);
    return err as MalformedObjectError;
  }
  throw new Error('expected a MalformedObjectError, nothing was thrown');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-bpf-mutated-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a mutated BPF object is refused with a typed error, never parsed into a crash', () => {
  it('the one-byte .BTF mutations really crash libbpf (in the probe process, not here)', async () => {
    for (const crasher of [memberTypeCrasher, variableTypeCrasher]) {
      for (const defect of [probeInChild(crasher), await probeInChildAsync(crasher)]) {
        expect(defect?.check).toBe('probe');
        expect(defect?.problem).toMatch(/libbpf crashed opening it \(SIGSEGV/);
      }
    }
    expect(probeInChild(counter)).toBeNull();
    expect(await probeInChildAsync(counter)).toBeNull();
  });

  it('BpfObject.open of the bytes: EBPF_MALFORMED_OBJECT naming .BTF and the file offset', () => {
    const error = refusal(() => BpfObject.open(memberTypeCrasher));
    expect(error.code).toBe('EBPF_MALFORMED_OBJECT');
    expect(error.check).toBe('btf');
    expect(error.section).toBe('.BTF');
    expect(error.offset).toBe(memberTypeField);
    expect(error.message).toMatch(/refers to type 255, past the last type/);
    expect(error.message).toContain(`file offset ${memberTypeField}`);

    const variable = refusal(() => BpfObject.open(variableTypeCrasher));
    expect(variable.section).toBe('.BTF');
    expect(variable.offset).toBe(btfVarTypeField(counter, 'pkt_count'));

    // This process lives on and still opens the intact object.
    const intact = BpfObject.open(counter);
    expect(intact.programs.map((program) => program.name)).toEqual(['xdp_count']);
    intact.close();
  });

  it('BpfObject.open of a file: the error names the path too', () => {
    const path = join(dir, 'crasher.bpf.o');
    writeFileSync(path, memberTypeCrasher);
    const error = refusal(() => BpfObject.open(path));
    expect(error.path).toBe(path);
    expect(error.message).toContain(path);
  });

  it('a FIFO or a directory named as an object file is refused without blocking', () => {
    const fifo = join(dir, 'object.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const path of [fifo, dir]) {
      let error: unknown;
      try {
        BpfObject.open(path);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(BpfError);
      expect((error as BpfError).code).toBe('EBPF_OPEN');
      expect((error as BpfError).message).toContain(`cannot open BPF object ${path}: not a regular file`);
    }
  });

  it('a typedef that names itself (libbpf loops forever on it) is refused at once as a cycle', () => {
    const u32 = btfTypes(counter).find((type) => type.name === '__u32');
    if (u32 === undefined) throw new Error('xdp_counter has no __u32 typedef');
    const looping = withU32(withU32(counter, u32.offset + 8, u32.id), memberTypeField, u32.id);
    const error = refusal(() => BpfObject.open(looping));
    expect(error.check).toBe('btf');
    expect(error.message).toMatch(/cycle not through a pointer/);
  });

  it('ELF damage is named by section: a section past the end of the file, a relocation past its target', () => {
    const maps = elfSection(counter, '.maps');
    const pastEnd = withU32(counter, maps.headerOffset + 32, counter.byteLength);
    const section = refusal(() => BpfObject.open(pastEnd));
    expect(section.check).toBe('elf');
    expect(section.message).toMatch(/lie outside the \d+-byte file/);
    expect(section.offset).toBe(maps.headerOffset + 24);

    const relocations = elfSection(counter, '.relxdp');
    const relocationPastCode = withU32(counter, relocations.offset, 0x7ffffff0);
    const relocation = refusal(() => BpfObject.open(relocationPastCode));
    expect(relocation.section).toBe('.relxdp');
    expect(relocation.message).toMatch(/relocation at 2147483632 .* lies outside section 'xdp'/);
  });
});

describe('execute() of a build holding the mutated object', () => {
  const tp = storedThunderpac('tp-bpf-mutated-exec-');

  it('fails with a receipt carrying EBPF_MALFORMED_OBJECT', async () => {
    const sandbox = tp().sandbox({ backend: 'ebpf' });
    const build = createBpfBuild(memberTypeCrasher, { name: 'crasher' });
    const result = await tp().execute(sandbox, {
      build,
      entry: 'xdp_count',
      input: { kind: 'packet', bytes: buildUdpFrame({ srcPort: 1, dstPort: 2 }) },
    });
    expect(result.status).toBe('failed');
    expect(result.receipt.error?.code).toBe('EBPF_MALFORMED_OBJECT');
    expect(result.receipt.error?.message).toMatch(/section '.BTF', file offset \d+/);
  });
});

describe('thunderpac xdp test-run of the mutated object', () => {
  it('exits 2 with one line saying what is wrong and where, no stack trace', async () => {
    const path = join(dir, 'crasher-cli.bpf.o');
    writeFileSync(path, variableTypeCrasher);
    const packet = Buffer.from(buildUdpFrame({ srcPort: 1, dstPort: 2 })).toString('hex');
    const { code, out, err } = await cli('xdp', 'test-run', path, '--prog', 'xdp_count', '--packet', packet);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(/malformed BPF object .*crasher-cli\.bpf\.o: .*section '.BTF', file offset \d+/);
    expect(err).not.toMatch(/\n\s+at /);
  });
});
