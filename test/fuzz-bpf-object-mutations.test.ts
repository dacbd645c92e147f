/**
 * Fuzz target: mutated copies of the shipped BPF objects (byte changes, truncations,
 * insertions, section header edits, BTF words) opened and loaded through the public path,
 * BpfObject.open + load. Every case must end in success or a typed BpfError — never a crash of
 * this process (libbpf 1.1 segfaults on some of them, issue #10 defect 6) and never a hang.
 * Short in the suite; `bash scripts/fuzz.sh test/fuzz-bpf` runs it long.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BpfError } from '../src/backends/ebpf/errors.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { vettingStats } from '../src/backends/ebpf/object-vetting.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { elfSection, elfSections } from './helpers/bpf-object-bytes.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';

const SHIPPED = ['xdp_pass', 'xdp_counter', 'xdp_verdict', 'xdp_ratelimit', 'xdp_acl'].map((name) =>
  Uint8Array.from(readFileSync(bpfObjectPath(`${name}.bpf.o`))),
);

type Mutation = (bytes: Uint8Array) => Uint8Array;

/**
 * Structural edits find their place with the test's own ELF reader, which reads only
 * well-formed objects: after an earlier mutation broke the layout, the edit is skipped.
 */
function whereStructureAllows(edit: Mutation): Mutation {
  return (bytes) => {
    try {
      return edit(bytes);
    } catch (err) {
      if (err instanceof RangeError || (err instanceof Error && err.message.startsWith('no section')))
        return bytes;
      throw err;
    }
  };
}

/** Values that tend to sit on a boundary of whatever field they land in. */
const edgyU32 = fc.oneof(
  fc.constantFrom(0, 1, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0),
  fc.integer({ min: 0, max: 0xffff }),
  fc.nat(),
);

const setBytes = fc
  .array(
    fc.tuple(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.integer({ min: 0, max: 255 })),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  .map(
    (changes): Mutation =>
      (bytes) => {
        const copy = Uint8Array.from(bytes);
        for (const [where, value] of changes) copy[Math.floor(where * copy.length)] = value;
        return copy;
      },
  );

const truncate = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }).map(
  (where): Mutation =>
    (bytes) =>
      bytes.slice(0, Math.floor(where * bytes.length)),
);

const insert = fc
  .tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.uint8Array({ minLength: 1, maxLength: 16 }))
  .map(
    ([where, extra]): Mutation =>
      (bytes) => {
        const at = Math.floor(where * bytes.length);
        const copy = new Uint8Array(bytes.length + extra.length);
        copy.set(bytes.subarray(0, at));
        copy.set(extra, at);
        copy.set(bytes.subarray(at), at + extra.length);
        return copy;
      },
  );

/** sh_name, sh_type, sh_offset, sh_size, sh_link, sh_info, sh_entsize (low 32 bits of 64-bit fields). */
const SECTION_HEADER_FIELDS = [0, 4, 24, 32, 40, 44, 56];
const editSectionHeader = fc.tuple(fc.nat(), fc.constantFrom(...SECTION_HEADER_FIELDS), edgyU32).map(
  ([pick, field, value]): Mutation =>
    whereStructureAllows((bytes) => {
      const sections = elfSections(bytes);
      const section = sections[pick % sections.length];
      const copy = Uint8Array.from(bytes);
      if (section !== undefined)
        new DataView(copy.buffer).setUint32(section.headerOffset + field, value, true);
      return copy;
    }),
);

/** A 4-byte-aligned word inside .BTF or .BTF.ext: names, infos, type ids, offsets, counts. */
const editBtfWord = fc.tuple(fc.constantFrom('.BTF', '.BTF.ext'), fc.nat(), edgyU32).map(
  ([name, pick, value]): Mutation =>
    whereStructureAllows((bytes) => {
      const section = elfSection(bytes, name);
      const words = Math.floor(section.size / 4);
      const copy = Uint8Array.from(bytes);
      if (words > 0) new DataView(copy.buffer).setUint32(section.offset + (pick % words) * 4, value, true);
      return copy;
    }),
);

const mutation = fc.oneof(setBytes, truncate, insert, editSectionHeader, editBtfWord);
const mutated = fc
  .tuple(fc.nat({ max: SHIPPED.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([which, mutations]) =>
    mutations.reduce((bytes, apply) => apply(bytes), SHIPPED[which] as Uint8Array),
  );

const outcomes = { loaded: 0, refusedBeforeLibbpf: 0, otherTypedErrors: 0 };
const before = { ...vettingStats };

afterAll(() => {
  const delta = Object.fromEntries(
    Object.entries(vettingStats).map(([key, value]) => [key, value - before[key as keyof typeof before]]),
  );
  console.log(`fuzz-bpf-object-mutations: ${JSON.stringify({ ...outcomes, vetting: delta })}`);
});

describe('fuzz: mutated BPF objects through BpfObject.open + load', () => {
  it(
    'every mutation ends in success or a typed BpfError, and this process survives',
    async () => {
      let cases = 0;
      await fc.assert(
        fc.asyncProperty(mutated, async (bytes) => {
          // A long run must let the test runner's own messages through now and then.
          if (++cases % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
          let object: BpfObject | undefined;
          try {
            object = BpfObject.open(bytes);
            object.load();
            for (const program of object.programs) expect(typeof program.name).toBe('string');
            outcomes.loaded++;
          } catch (err) {
            if (!(err instanceof BpfError)) throw err;
            if (err.code === 'EBPF_MALFORMED_OBJECT') outcomes.refusedBeforeLibbpf++;
            else outcomes.otherTypedErrors++;
          } finally {
            object?.close();
          }
        }),
        fuzzParams(600),
      );
    },
    fuzzTimeoutMs(60_000),
  );
});
