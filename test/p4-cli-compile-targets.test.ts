import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStf } from '../src/backends/p4/stf.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { checkTnaProgram } from '../src/p4c/tna-check.js';
import { packagePath } from '../src/runtime/package-root.js';
import { cli } from './helpers/cli.js';

const router = packagePath('p4', 'samples', 'basic_router.p4');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-p4targets-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('thunderpac p4 compile --target bmv2|p4info|tna -o OUT', () => {
  it('--target bmv2 -o FILE writes BMv2 JSON the switch runs', async () => {
    const out = join(dir, 'router.json');
    const r = await cli('p4', 'compile', router, '--target', 'bmv2', '-o', out);
    expect(r.code).toBe(0);
    const sw = new BehavioralSwitch(JSON.parse(readFileSync(out, 'utf8')));
    expect(sw.table('MyIngress.ipv4_lpm').keys.length).toBe(1);
    // And `p4 stf` takes that JSON as the program, as the CLI says.
    const stf = join(dir, 'drop.stf');
    writeFileSync(stf, 'packet 0 00\n');
    expect((await cli('p4', 'stf', out, stf)).code).toBe(0);
    expect(runStf(sw, 'packet 0 00\n').ok).toBe(true);
  });

  it('--target p4info -o FILE writes the p4info', async () => {
    const out = join(dir, 'router.p4info.json');
    expect((await cli('p4', 'compile', router, '--target', 'p4info', '-o', out)).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('ipv4_lpm');
  });

  it('--target tna -o DIR/ writes the TNA program and its stage report beside it', async () => {
    const out = join(dir, 'tna') + '/';
    const r = await cli('p4', 'compile', router, '--target', 'tna', '-o', out);
    expect(r.code).toBe(0);
    const p4 = readFileSync(join(out, 'basic_router.tna.p4'), 'utf8');
    const stages = JSON.parse(readFileSync(join(out, 'basic_router.stages.json'), 'utf8'));
    expect(r.out).toContain('basic_router.tna.p4');
    expect(checkTnaProgram(p4, { file: 'basic_router.tna.p4' }).blocks).toHaveLength(6);
    expect(stages.tables.map((t: { name: string }) => t.name)).toContain('MyIngress.ipv4_lpm');
    expect(stages.model.stages).toBe(12);
  });

  it('--target tna -o FILE.p4 names the report after the file; without -o the program is printed', async () => {
    const out = join(dir, 'named', 'router-tna.p4');
    expect((await cli('p4', 'compile', router, '--target', 'tna', '-o', out)).code).toBe(0);
    expect(existsSync(join(dir, 'named', 'router-tna.stages.json'))).toBe(true);
    const printed = await cli('p4', 'compile', router, '--target', 'tna');
    expect(printed.code).toBe(0);
    expect(printed.out).toBe(readFileSync(out, 'utf8'));
  });

  it('refuses a v1model-only feature in TNA mode with a typed error naming it (exit 2)', async () => {
    const prog = join(dir, 'inst.p4');
    writeFileSync(
      prog,
      readFileSync(router, 'utf8').replace(
        'apply {\n        if (hdr.ipv4.isValid()',
        'apply {\n        if (standard_metadata.instance_type == 1) { mark_to_drop(standard_metadata); }\n        if (hdr.ipv4.isValid()',
      ),
    );
    expect(readFileSync(prog, 'utf8')).toContain('instance_type');
    const r = await cli('p4', 'compile', prog, '--target', 'tna', '-o', join(dir, 'inst.tna.p4'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/P4_TNA_UNSUPPORTED: .*standard_metadata\.instance_type/);
    expect(existsSync(join(dir, 'inst.tna.p4'))).toBe(false);
  });

  it('says which table does not fit the stage model (exit 2)', async () => {
    const big = join(dir, 'big.p4');
    writeFileSync(big, readFileSync(router, 'utf8').replace('size = 1024;', 'size = 1000000;'));
    const r = await cli('p4', 'compile', big, '--target', 'tna');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/P4_TNA_DOES_NOT_FIT: table MyIngress\.ipv4_lpm does not fit/);
  });

  it('refuses an unknown --target with exit 2', async () => {
    const r = await cli('p4', 'compile', router, '--target', 'tofino9');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--target expects one of bmv2, p4info, tna, got 'tofino9'/);
  });
});
