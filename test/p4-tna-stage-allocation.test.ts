import { describe, expect, it } from 'vitest';
import { compileToIr } from '../src/p4c/compile.js';
import { allocateStages, TnaFitError, TOFINO_LIKE } from '../src/p4c/stages.js';
import { sample } from './p4-helpers.js';

describe('Tofino-style stage allocation', () => {
  it('places basic_router in a few stages with the LPM table in TCAM', () => {
    const report = allocateStages(compileToIr(sample('basic_router.p4')));
    const lpm = report.tables.find((t) => t.name === 'MyIngress.ipv4_lpm')!;
    expect(lpm.stage).toBe(0);
    expect(lpm.needs).toEqual({ sram: 1, tcam: 2, matchBits: 32 });
    expect(report.stagesUsed).toBeLessThanOrEqual(TOFINO_LIKE.stages);
  });

  it('orders tables by match and action dependencies (features.p4)', () => {
    const report = allocateStages(compileToIr(sample('features.p4')));
    const at = (n: string) => report.tables.find((t) => t.name === n)!;
    const acl = at('MyIngress.acl');
    // The DSCP rewrite reads meta.class, which acl's set_class writes: a later stage.
    const dscp = report.tables.find((t) => t.dependsOn.some((d) => d.table === 'MyIngress.acl'))!;
    expect(dscp.stage).toBeGreaterThan(acl.stage);
    // vlan_map only runs when the parser saw a tag: no dependency on l2 beyond control flow.
    expect(at('MyIngress.vlan_map').stage).toBeGreaterThanOrEqual(0);
    for (const t of report.tables) {
      for (const d of t.dependsOn) {
        const on = at(d.table);
        expect(d.kind === 'successor' ? t.stage >= on.stage : t.stage > on.stage).toBe(true);
      }
    }
  });

  it('names the table that does not fit', () => {
    const big = sample('basic_router.p4').replace('size = 1024;', 'size = 1000000;');
    try {
      allocateStages(compileToIr(big));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TnaFitError);
      expect((err as TnaFitError).table).toBe('MyIngress.ipv4_lpm');
      expect((err as Error).message).toMatch(/needs \d+ (SRAM|TCAM) blocks, a stage has (80|24)/);
    }
    const tiny = { ...TOFINO_LIKE, stages: 1, tablesPerStage: 1 };
    expect(() => allocateStages(compileToIr(sample('features.p4')), tiny)).toThrow(TnaFitError);
  });
});
