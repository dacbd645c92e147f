import { describe, expect, it } from 'vitest';
import { runStf } from '../src/backends/p4/stf.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { fixture, sample } from './p4-helpers.js';

// The programs bench/p4.ts measures are proven correct first: each p4/samples/NAME.p4 here
// passes test/p4/NAME.stf, whose expected bytes were worked out independently of the switch.
const benchPrograms = ['l2_switch', 'l3_acl_router', 'mpls_vlan_stack'];

describe('benchmark sample programs pass their STF tests', () => {
  for (const name of benchPrograms) {
    it(`${name}.p4 passes ${name}.stf`, () => {
      const sw = new BehavioralSwitch(compileP4(sample(`${name}.p4`), { file: `${name}.p4` }).bmv2);
      const r = runStf(sw, fixture(`${name}.stf`));
      expect(r.failures).toEqual([]);
      expect(r.packetsIn).toBeGreaterThanOrEqual(5);
    });
  }
});
