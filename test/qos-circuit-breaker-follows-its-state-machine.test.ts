/**
 * Model-based test (fast-check commands) of the circuit breaker: random sequences of acquire,
 * release (ok or failed, fast or slow, of any permit still out, including stale ones from an
 * earlier state), abandon and clock steps, against a model that states the state machine with
 * an array for the window. After every command the breaker's state, permit generation, window
 * counts, probes left and the state changes it announced equal the model's.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
  CircuitBreakers,
  REFUSED,
  resolveBreakerOptions,
} from '../src/qos/backpressure/index.js';
import { ManualClock } from '../src/qos/clock.js';
import { QosConfigError } from '../src/qos/queues/index.js';

class Model {
  state: BreakerState = 'closed';
  window: { failed: boolean; slow: boolean }[] = [];
  openedAt = 0;
  gen = 0;
  probesGiven = 0;
  probesSucceeded = 0;
  now = 0;
  permits: number[] = [];
  changes: string[] = [];
  constructor(readonly o: Required<CircuitBreakerOptions>) {}

  go(to: BreakerState): void {
    this.changes.push(`${this.state}->${to}`);
    this.state = to;
    this.gen++;
    this.probesGiven = this.probesSucceeded = 0;
    if (to === 'open') this.openedAt = this.now;
    if (to === 'closed') this.window = [];
  }
  refresh(): void {
    if (this.state === 'open' && this.now - this.openedAt >= this.o.openDurationMs) this.go('half-open');
  }
  acquire(): number {
    this.refresh();
    if (this.state === 'closed') return this.gen;
    if (this.state === 'half-open' && this.probesGiven < this.o.halfOpenProbes) {
      this.probesGiven++;
      return this.gen;
    }
    return REFUSED;
  }
  release(permit: number, ms: number, ok: boolean): void {
    if (permit !== this.gen) return;
    const slow = ms >= this.o.slowCallDurationMs;
    if (this.state === 'closed') {
      this.window.push({ failed: !ok, slow });
      if (this.window.length > this.o.windowSize) this.window.shift();
      const n = this.window.length;
      const failed = this.window.filter((c) => c.failed).length;
      const slowN = this.window.filter((c) => c.slow).length;
      if (
        n >= this.o.minimumCalls &&
        (failed / n >= this.o.failureRateThreshold || slowN / n >= this.o.slowCallRateThreshold)
      ) {
        this.go('open');
      }
    } else if (this.state === 'half-open') {
      if (!ok || slow) this.go('open');
      else if (++this.probesSucceeded === this.o.halfOpenProbes) this.go('closed');
    }
  }
  abandon(permit: number): void {
    if (permit === this.gen && this.state === 'half-open' && this.probesGiven > this.probesSucceeded)
      this.probesGiven--;
  }
}

interface Real {
  breaker: CircuitBreaker;
  clock: ManualClock;
  changes: string[];
}

function agree(m: Model, r: Real): void {
  m.refresh();
  expect(r.breaker.state).toBe(m.state);
  const w = r.breaker.window;
  if (m.state === 'closed') {
    expect(w.calls).toBe(m.window.length);
    expect(w.failures).toBe(m.window.filter((c) => c.failed).length);
    expect(w.slow).toBe(m.window.filter((c) => c.slow).length);
  }
  expect(r.breaker.probesLeft).toBe(m.state === 'half-open' ? m.o.halfOpenProbes - m.probesGiven : 0);
  expect(r.breaker.retryAfterMs).toBe(m.state === 'open' ? m.openedAt + m.o.openDurationMs - m.now : 0);
  expect(r.changes).toEqual(m.changes);
}

class Acquire implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real): void {
    const want = m.acquire();
    const got = r.breaker.acquire();
    expect(got).toBe(want);
    if (got !== REFUSED) m.permits.push(got);
    agree(m, r);
  }
  toString = () => 'acquire';
}

class Release implements fc.Command<Model, Real> {
  constructor(
    readonly pick: number,
    readonly ms: number,
    readonly ok: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.permits.length > 0;
  run(m: Model, r: Real): void {
    const [permit] = m.permits.splice(this.pick % m.permits.length, 1);
    m.release(permit!, this.ms, this.ok);
    r.breaker.release(permit!, this.ms, this.ok);
    agree(m, r);
  }
  toString = () => `release(#${this.pick}, ${this.ms} ms, ${this.ok ? 'ok' : 'failed'})`;
}

class Abandon implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.permits.length > 0;
  run(m: Model, r: Real): void {
    const [permit] = m.permits.splice(this.pick % m.permits.length, 1);
    m.abandon(permit!);
    r.breaker.abandon(permit!);
    agree(m, r);
  }
  toString = () => `abandon(#${this.pick})`;
}

class Advance implements fc.Command<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.clock.advance(this.ms);
    agree(m, r);
  }
  toString = () => `advance(${this.ms})`;
}

const optionsArb = fc
  .record({
    windowSize: fc.integer({ min: 1, max: 10 }),
    minimumCalls: fc.integer({ min: 1, max: 10 }),
    failureRateThreshold: fc.constantFrom(0.2, 0.5, 0.75, 1),
    slowCallRateThreshold: fc.constantFrom(0.3, 0.6, 1),
    slowCallDurationMs: fc.constantFrom(10, 50),
    openDurationMs: fc.integer({ min: 0, max: 60 }),
    halfOpenProbes: fc.integer({ min: 1, max: 4 }),
  })
  .map((o) => ({ ...o, minimumCalls: Math.min(o.minimumCalls, o.windowSize) }));

const commands = fc.commands(
  [
    fc.constant(new Acquire()),
    fc
      .tuple(fc.nat(), fc.integer({ min: 0, max: 80 }), fc.boolean())
      .map(([p, ms, ok]) => new Release(p, ms, ok)),
    fc.nat().map((p) => new Abandon(p)),
    fc.integer({ min: 0, max: 30 }).map((ms) => new Advance(ms)),
  ],
  { maxCommands: 300, size: 'large' },
);

describe('CircuitBreaker', () => {
  it('follows its state machine exactly (model-based)', () => {
    const visited = new Set<string>();
    fc.assert(
      fc.property(optionsArb, commands, (options, cmds) => {
        const clock = new ManualClock(0);
        const breaker = new CircuitBreaker('backend:wasm', clock, options);
        const changes: string[] = [];
        breaker.subscribe((to, from, key) => {
          expect(key).toBe('backend:wasm');
          changes.push(`${from}->${to}`);
        });
        const model = new Model(resolveBreakerOptions(options));
        fc.modelRun(() => ({ model, real: { breaker, clock, changes } }), cmds);
        for (const c of changes) visited.add(c);
      }),
      { numRuns: 200 },
    );
    // Every edge of the machine was taken somewhere.
    expect([...visited].sort()).toEqual([
      'closed->open',
      'half-open->closed',
      'half-open->open',
      'open->half-open',
    ]);
  });

  it('keys breakers apart and bounds how many it keeps', () => {
    const clock = new ManualClock(0);
    const breakers = new CircuitBreakers(clock, { windowSize: 2, minimumCalls: 2, openDurationMs: 100 }, 3);
    const seen: string[] = [];
    breakers.subscribe((to, _from, key) => seen.push(`${key}:${to}`));
    const wasm = breakers.get('backend:wasm');
    for (let i = 0; i < 2; i++) wasm.release(wasm.acquire(), 1, false);
    expect(wasm.state).toBe('open');
    expect(breakers.get('backend:onnx').state).toBe('closed');
    expect(breakers.get('build:a').acquire()).not.toBe(REFUSED);
    breakers.get('build:b'); // the 4th key: a closed one is forgotten, the open one kept
    expect(breakers.size).toBe(3);
    expect(breakers.get('backend:wasm')).toBe(wasm);
    expect(seen).toEqual(['backend:wasm:open']);
    expect(Object.fromEntries(breakers.states())['backend:wasm']).toBe('open');
  });

  it('refuses bad options with typed errors naming the field', () => {
    const cases: [CircuitBreakerOptions, string][] = [
      [{ windowSize: 0 }, 'windowSize'],
      [{ windowSize: 5, minimumCalls: 6 }, 'minimumCalls'],
      [{ failureRateThreshold: 0 }, 'failureRateThreshold'],
      [{ slowCallRateThreshold: 1.5 }, 'slowCallRateThreshold'],
      [{ openDurationMs: -1 }, 'openDurationMs'],
      [{ halfOpenProbes: 0 }, 'halfOpenProbes'],
    ];
    for (const [o, path] of cases) {
      expect(() => resolveBreakerOptions(o, 'breakers.')).toThrow(QosConfigError);
      expect(() => resolveBreakerOptions(o, 'breakers.')).toThrow(`breakers.${path}`);
    }
  });
});
