/**
 * Issue #10, defect 8: BMv2 JSON that hung the switch (an action id of 2^31), aborted the
 * process (a counter or register array of 2^31 or 10^9 entries) or failed with a raw TypeError
 * reported as INTERNAL. Each is now refused before anything is built — a P4RuntimeError P4_JSON
 * naming the JSON path — through the switch, the backend (a failed execution, not INTERNAL)
 * and `thunderpac p4 run prog.json`.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP4BuildFromJson } from '../src/backends/p4/backend.js';
import { P4RuntimeError } from '../src/backends/p4/errors.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { Thunderpac } from '../src/thunderpac.js';
import { cli } from './helpers/cli.js';
import { fixture, ipv4Frame, sample } from './p4-helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests edit BMv2 JSON freely
type J = any;

const router = (): J =>
  structuredClone(compileP4(sample('basic_router.p4'), { file: 'basic_router.p4' }).bmv2);

function refusal(json: J): P4RuntimeError {
  try {
    new BehavioralSwitch(json);
  } catch (err) {
    expect(err).toBeInstanceOf(P4RuntimeError);
    expect((err as P4RuntimeError).code).toBe('P4_JSON');
    return err as P4RuntimeError;
  }
  throw new Error('the switch loaded it');
}

const indexOf = (j: J, name: string): number => j.actions.findIndex((a: J) => a.name.endsWith(name));

/** Each case: what the JSON gets wrong, the edit, and the path the refusal must name. */
const CASES: [string, (j: J) => void, RegExp][] = [
  [
    'an action id of 2^31 (hung)',
    (j) => {
      j.actions[0].id = 2 ** 31;
    },
    /BMv2 JSON actions\[0\]\.id: expected an integer in 0\.\.\d+, found number 2147483648/,
  ],
  [
    'a counter array of 2^31 entries (aborted on OOM)',
    (j) => {
      j.counter_arrays = [{ name: 'c', id: 0, size: 2 ** 31, is_direct: false }];
    },
    /BMv2 JSON counter_arrays\[0\]\.size: expected an integer in 0\.\.1048576/,
  ],
  [
    'a register array of 10^9 entries (aborted on OOM)',
    (j) => {
      j.register_arrays = [{ name: 'r', id: 0, size: 1e9, bitwidth: 32 }];
    },
    /BMv2 JSON register_arrays\[0\]\.size: expected an integer in 0\.\.1048576/,
  ],
  [
    'a meter array of 2^31 entries',
    (j) => {
      j.meter_arrays = [{ name: 'm', id: 0, size: 2 ** 31, is_direct: false, type: 'packets' }];
    },
    /BMv2 JSON meter_arrays\[0\]\.size/,
  ],
  [
    'a table action id that names no action',
    (j) => {
      j.pipelines[0].tables[0].action_ids[0] = 99;
    },
    /BMv2 JSON pipelines\[0\]\.tables\[0\]\.action_ids\[0\]: expected an integer in 0\.\.\d+, found number 99/,
  ],
  [
    'a primitive parameter that is a number, not {type, value} (TypeError)',
    (j) => {
      j.actions[indexOf(j, 'ipv4_forward')].primitives[0].parameters[1] = 7;
    },
    /BMv2 JSON actions\[\d+\]\.primitives\[0\]\.parameters\[1\]: expected an object, found number 7/,
  ],
  [
    'a primitive with its parameters missing (TypeError)',
    (j) => {
      delete j.actions[indexOf(j, 'ipv4_forward')].primitives[0].parameters;
    },
    /BMv2 JSON actions\[\d+\]\.primitives\[0\]\.parameters: expected 2 parameter\(s\) of 'assign'/,
  ],
  [
    'a hexstr whose value is an object (TypeError)',
    (j) => {
      const st = j.parsers[0].parse_states.find((x: J) => x.transitions[0].type === 'hexstr');
      st.transitions[0].value = {};
    },
    /BMv2 JSON parsers\[0\]\.parse_states\[\d+\]\.transitions\[0\]\.value: expected a number/,
  ],
  [
    'a field reference that is a string (TypeError)',
    (j) => {
      j.pipelines[0].tables[0].key[0].target = 'ipv4';
    },
    /BMv2 JSON pipelines\[0\]\.tables\[0\]\.key\[0\]\.target: expected an array, found 'ipv4'/,
  ],
  [
    'a header field width of 2^40',
    (j) => {
      j.header_types[1].fields[0][1] = 2 ** 40;
    },
    /BMv2 JSON header_types\[1\]\.fields\[0\]\[1\]: expected an integer in 0\.\.2048/,
  ],
  [
    'two parse states of one name (a TypeError per packet)',
    (j) => {
      j.parsers[0].parse_states.push(structuredClone(j.parsers[0].parse_states[0]));
    },
    /BMv2 JSON parsers\[0\]\.parse_states\[\d+\]\.name: expected a name no other entry/,
  ],
  [
    'a jump back to the start of an action (loops forever per packet)',
    (j) => {
      j.actions[0].primitives = [{ op: '_jump', parameters: [{ type: 'hexstr', value: '0x0' }] }];
    },
    /BMv2 JSON actions\[0\]\.primitives\[0\]\.parameters\[0\]\.value: expected a later primitive's index/,
  ],
  [
    'a conditional whose branch leads back to itself (loops forever per packet)',
    (j) => {
      const p = j.pipelines[0];
      p.conditionals = [
        {
          name: 'loop',
          id: 0,
          expression: { type: 'bool', value: true },
          true_next: 'loop',
          false_next: null,
        },
      ];
      p.init_table = 'loop';
    },
    /BMv2 JSON pipelines\[0\]\.conditionals\[0\]: expected a pipeline without cycles/,
  ],
  [
    'a saturating cast to 2^31 bits (found by test/fuzz-bmv2-json.test.ts)',
    (j) => {
      j.actions[0].primitives = [
        {
          op: 'assign',
          parameters: [
            { type: 'field', value: ['ipv4', 'ttl'] },
            {
              type: 'expression',
              value: {
                op: 'usat_cast',
                left: { type: 'hexstr', value: '0x1' },
                right: { type: 'hexstr', value: '0x80000000' },
              },
            },
          ],
        },
      ];
    },
    /BMv2 JSON actions\[0\]: usat_cast needs a width in 0\.\.2048, got 2147483648/,
  ],
  [
    'an expression nested 10,000 deep (stack overflow)',
    (j) => {
      let e: J = { type: 'hexstr', value: '0x1' };
      for (let i = 0; i < 10_000; i++) e = { type: 'expression', value: { op: '~', left: null, right: e } };
      j.actions[indexOf(j, 'ipv4_forward')].primitives[0].parameters[1] = e;
    },
    /BMv2 JSON actions\[\d+\]\.primitives\[0\]\.parameters\[1\](\.value\.right)+: expected expressions nested at most 128 deep/,
  ],
];

describe('the switch refuses malformed BMv2 JSON with P4_JSON and the JSON path', () => {
  for (const [what, edit, message] of CASES) {
    it(what, () => {
      const j = router();
      edit(j);
      expect(refusal(j).message).toMatch(message);
    });
  }

  it('a const entry the table API refuses names the table and the original code', () => {
    const j = structuredClone(compileP4(fixture('semantics.p4'), { file: 'semantics.p4' }).bmv2) as J;
    const t = j.pipelines.flatMap((p: J) => p.tables).find((x: J) => (x.entries ?? []).length > 0);
    expect(t).toBeDefined();
    t.entries[0].action_entry.action_data.push('0x1', '0x2', '0x3');
    expect(refusal(j).message).toMatch(/^BMv2 JSON pipelines\[\d+\]\.tables\[\d+\]: .*\(P4_ACTION_DATA\)$/);
  });

  it('a shift by 2^32 read from the packet does not build a huge BigInt', () => {
    // hdr.ipv4.ttl = (bit<8>)(hdr.ipv4.srcAddr << hdr.ipv4.dstAddr): the amount is a packet's
    const source = sample('basic_router.p4').replace(
      'hdr.ipv4.ttl = hdr.ipv4.ttl - 1;',
      'hdr.ipv4.ttl = (bit<8>)(((bit<64>)hdr.ipv4.srcAddr) << hdr.ipv4.dstAddr);',
    );
    const sw = new BehavioralSwitch(
      compileP4(source, { file: 'shift.p4', defines: { NO_CONST_ENTRIES: '1' } }).bmv2,
    );
    sw.addEntry('ipv4_lpm', {
      key: [{ value: 0n, prefixLength: 0 }],
      action: 'ipv4_forward',
      args: [1n, 2n],
    });
    const out = sw.process(ipv4Frame({ dst: [255, 255, 255, 255] }), 0);
    expect(out).toHaveLength(1);
    expect(out[0]!.bytes[22]).toBe(0); // the TTL byte: everything shifted out
  });
});

describe('malformed BMv2 JSON through the backend and the CLI', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tp-bmv2-bad-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an execution fails with P4_JSON and the path, not INTERNAL', async () => {
    const j = router();
    j.actions[0].id = 2 ** 31;
    const tp = await Thunderpac.open({ store: join(dir, 'store') });
    try {
      const result = await tp.execute(tp.sandbox({ backend: 'p4' }), {
        build: createP4BuildFromJson(JSON.stringify(j), { name: 'bad.json' }),
        entry: 'ingress',
        input: { kind: 'packet', bytes: new Uint8Array(64), ingressPort: 0 },
      });
      expect(result.status).toBe('failed');
      expect(result.receipt.error?.code).toBe('P4_JSON');
      expect(result.receipt.error?.message).toMatch(/actions\[0\]\.id/);
    } finally {
      await tp.close();
    }
  });

  it('`p4 run prog.json` reports the path, with no stack trace', async () => {
    const j = router();
    j.register_arrays = [{ name: 'r', id: 0, size: 2 ** 31, bitwidth: 32 }];
    const file = join(dir, 'huge-register.json');
    writeFileSync(file, JSON.stringify(j));
    const r = await cli('p4', 'run', file, '--port', '1', '--packet', '00', '--store', join(dir, 'store'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/failed \(P4_JSON/);
    expect(r.out + r.err).toMatch(/register_arrays\[0\]\.size/);
    expect(r.out + r.err).not.toMatch(/INTERNAL|\n\s+at /);
  });
});
