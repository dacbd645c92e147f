import { describe, expect, it } from 'vitest';
import { SandboxStateError, ValidationError } from '../src/runtime/errors.js';
import { DEFAULT_LIMITS, Sandbox, sandboxSpec } from '../src/runtime/sandbox.js';

describe('sandbox', () => {
  it('walks idle → executing → completed | failed → idle', () => {
    const s = new Sandbox({ backend: 'wasm' });
    expect(s.state).toBe('idle');
    s.begin();
    expect(s.state).toBe('executing');
    s.complete();
    expect(s.state).toBe('completed');
    s.reset();
    s.begin();
    s.fail();
    expect(s.state).toBe('failed');
    s.reset();
    expect(s.state).toBe('idle');
  });

  it.each([
    ['complete from idle', (s: Sandbox) => s.complete()],
    ['fail from idle', (s: Sandbox) => s.fail()],
    ['reset from idle', (s: Sandbox) => s.reset()],
    [
      'begin while executing',
      (s: Sandbox) => {
        s.begin();
        s.begin();
      },
    ],
    [
      'begin before reset',
      (s: Sandbox) => {
        s.begin();
        s.complete();
        s.begin();
      },
    ],
  ])('throws on %s', (_, fn) => {
    const s = new Sandbox({ backend: 'wasm' });
    expect(() => fn(s)).toThrow(SandboxStateError);
  });

  it('is deny-by-default and frozen', () => {
    const spec = sandboxSpec({ backend: 'wasm' });
    expect(spec.network).toBe(false);
    expect(spec.fs).toEqual({ kind: 'none' });
    expect(spec.allowedImports).toEqual([]);
    expect(spec.limits).toEqual(DEFAULT_LIMITS);
    expect(Object.isFrozen(spec) && Object.isFrozen(spec.limits)).toBe(true);
  });

  it('refuses bad limits with the field path', () => {
    for (const [limits, path] of [
      [{ timeoutMs: 0 }, 'sandbox.limits.timeoutMs'],
      [{ memoryMb: 1.5 }, 'sandbox.limits.memoryMb'],
      [{ maxInputBytes: -1 }, 'sandbox.limits.maxInputBytes'],
      [{ fuel: 0 }, 'sandbox.limits.fuel'],
    ] as const) {
      try {
        sandboxSpec({ backend: 'wasm', limits });
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).path).toBe(path);
      }
    }
  });
});
