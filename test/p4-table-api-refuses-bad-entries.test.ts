import { describe, expect, it } from 'vitest';
import { P4RuntimeError } from '../src/backends/p4/errors.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { sample } from './p4-helpers.js';

const load = (defines: Record<string, string> = { NO_CONST_ENTRIES: '1' }) =>
  new BehavioralSwitch(compileP4(sample('basic_router.p4'), { file: 'basic_router.p4', defines }).bmv2);

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(P4RuntimeError);
    return (err as P4RuntimeError).code;
  }
  throw new Error('expected an error');
}

describe('behavioral switch: table API errors', () => {
  const fwd = (value: number | bigint, prefixLength = 32, args: (number | bigint)[] = [1, 1]) => ({
    key: [{ value, prefixLength }],
    action: 'ipv4_forward',
    args,
  });

  it('refuses keys of the wrong width or shape', () => {
    const sw = load();
    expect(code(() => sw.addEntry('ipv4_lpm', fwd(2n ** 32n)))).toBe('P4_KEY_WIDTH');
    expect(code(() => sw.addEntry('ipv4_lpm', fwd(1, 33)))).toBe('P4_KEY_WIDTH');
    expect(code(() => sw.addEntry('ipv4_lpm', { key: [], action: 'drop' }))).toBe('P4_KEY_COUNT');
    expect(code(() => sw.addEntry('ipv4_lpm', { key: [{ low: 1, high: 2 }], action: 'drop' }))).toBe(
      'P4_KEY_KIND',
    );
  });

  it('refuses unknown actions and bad action data', () => {
    const sw = load();
    expect(
      code(() => sw.addEntry('ipv4_lpm', { key: [{ value: 1, prefixLength: 32 }], action: 'teleport' })),
    ).toBe('P4_ACTION_UNKNOWN');
    expect(code(() => sw.addEntry('ipv4_lpm', fwd(1, 32, [1])))).toBe('P4_ACTION_DATA');
    expect(code(() => sw.addEntry('ipv4_lpm', fwd(1, 32, [1, 512])))).toBe('P4_ACTION_DATA');
    expect(code(() => sw.setDefaultAction('ipv4_lpm', 'teleport'))).toBe('P4_ACTION_UNKNOWN');
    expect(code(() => sw.addEntry('no_such_table', fwd(1)))).toBe('P4_TABLE_UNKNOWN');
  });

  it('refuses duplicates, unknown handles and a full table', () => {
    const sw = load();
    sw.addEntry('ipv4_lpm', fwd(0x0a000000, 8));
    expect(code(() => sw.addEntry('ipv4_lpm', fwd(0x0a000000, 8)))).toBe('P4_ENTRY_DUPLICATE');
    expect(code(() => sw.deleteEntry('ipv4_lpm', 999))).toBe('P4_ENTRY_UNKNOWN');
    const small = new BehavioralSwitch(
      compileP4(sample('basic_router.p4').replace('size = 1024;', 'size = 2;'), {
        defines: { NO_CONST_ENTRIES: '1' },
      }).bmv2,
    );
    small.addEntry('ipv4_lpm', fwd(1));
    small.addEntry('ipv4_lpm', fwd(2));
    expect(code(() => small.addEntry('ipv4_lpm', fwd(3)))).toBe('P4_TABLE_FULL');
  });

  it('refuses runtime changes to a table with const entries', () => {
    const sw = load({});
    expect(code(() => sw.addEntry('ipv4_lpm', fwd(0xc0a80000, 16)))).toBe('P4_CONST_TABLE');
  });
});
