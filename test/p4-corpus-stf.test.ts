import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStf } from '../src/backends/p4/stf.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { fixture } from './p4-helpers.js';

// Every test/p4/NAME.p4 with a NAME.stf next to it compiles and passes its STF.
const programs = readdirSync(join(import.meta.dirname, 'p4')).filter((f) => f.endsWith('.p4'));

describe('P4 corpus: .p4 + .stf pairs', () => {
  for (const p of programs) {
    const stf = p.replace(/\.p4$/, '.stf');
    it(`${p} passes ${stf}`, () => {
      const sw = new BehavioralSwitch(compileP4(fixture(p), { file: p }).bmv2);
      const r = runStf(sw, fixture(stf));
      expect(r.failures).toEqual([]);
    });
  }
});
