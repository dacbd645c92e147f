import { describe, expect, it } from 'vitest';
import { runStf, StfSyntaxError } from '../src/backends/p4/stf.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { fixture, sample } from './p4-helpers.js';

const router = () =>
  new BehavioralSwitch(
    compileP4(sample('basic_router.p4'), { file: 'basic_router.p4', defines: { NO_CONST_ENTRIES: '1' } })
      .bmv2,
  );

describe('STF runner', () => {
  it('passes basic_router_runtime.stf', () => {
    const r = runStf(router(), fixture('basic_router_runtime.stf'));
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.packetsIn).toBe(4);
    expect(r.packetsOut).toBe(3);
  });

  it('reports expected vs got, missing and unexpected packets', () => {
    const stf = fixture('basic_router_runtime.stf')
      .replace('expect 1 000000000101', 'expect 1 000000000102')
      .replace(/expect 3 .*\n/, 'expect 4 00\n');
    const r = runStf(router(), stf);
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatch(/port 1\n {2}expected: 000000000102.*\n {2}got: {6}000000000101/);
    expect(r.failures[1]).toMatch(/expected on port 4: 00\n {2}got: nothing/);
    expect(r.failures[2]).toMatch(/^unexpected packet on port 3: 0000000000ff/);
  });

  it("reads p4c's order: an expect written before its packet waits for it; a bare packet line sends nothing", () => {
    const lines = fixture('basic_router_runtime.stf').split('\n');
    // Every expect moved before the packet it is about (p4c's tests are often written so).
    const swapped: string[] = [];
    for (const l of lines) {
      if (l.startsWith('expect') && swapped.at(-1)?.startsWith('packet')) swapped.splice(-1, 0, l);
      else swapped.push(l);
    }
    expect(swapped.join('\n')).not.toBe(lines.join('\n'));
    const r = runStf(router(), `${swapped.join('\n')}\npacket 0\n`);
    expect(r.failures).toEqual([]);
    expect(r.packetsIn).toBe(4);
    // An early expect that no packet meets still fails, naming its line.
    const unmet = runStf(router(), 'expect 7 00\n');
    expect(unmet.ok).toBe(false);
    expect(unmet.failures[0]).toMatch(/^line 1: expected on port 7: 00\n {2}got: nothing/);
  });

  it('refuses malformed lines with their line number', () => {
    expect(() => runStf(router(), 'packet x 00')).toThrow(StfSyntaxError);
    expect(() => runStf(router(), '\nfrobnicate')).toThrow(/stf line 2: unknown command/);
    expect(() => runStf(router(), 'add ipv4_lpm hdr.ipv4.dstAddr:1/32 teleport()')).toThrow(
      /no action 'teleport'/,
    );
  });
});
