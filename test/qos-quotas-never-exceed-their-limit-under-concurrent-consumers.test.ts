/**
 * A quota is never over-consumed: many async callers in one process (one Quotas, or several
 * Quotas instances on one shared file, contending for its flock), and three processes hammering
 * one shared quota file. Every allowed consume is counted exactly once: the total recorded
 * equals the sum of the acknowledged consumes and never passes the limit; each refusal was a
 * consume that did not fit at its moment.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { QosConfigError, QosCostError, QosKeyError } from '../src/qos/limiters/errors.js';
import { type QuotaDecision, QuotaExceededError, Quotas } from '../src/qos/quotas/index.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tp-quota-conc-'));
  dirs.push(d);
  return d;
}

/** A caller: consumes of these amounts, yielding `pause` macrotasks/microtasks between them. */
const caller = fc.array(
  fc.record({ amount: fc.integer({ min: 0, max: 6 }), pause: fc.nat(3), macro: fc.boolean() }),
  {
    minLength: 1,
    maxLength: 15,
  },
);

async function pause(n: number, macro: boolean): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (macro) await new Promise((r) => setImmediate(r));
    else await Promise.resolve();
  }
}

describe('quotas under concurrent consumers', () => {
  for (const setup of ['memory', 'shared file, 3 instances'] as const) {
    it(`never go over the limit (${setup})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(caller, { minLength: 2, maxLength: 8 }),
          fc.integer({ min: 1, max: 40 }),
          async (callers, limit) => {
            const plan = { limit, period: 'never' as const };
            const file = setup === 'memory' ? undefined : join(tempDir(), 'quotas.journal');
            const instances =
              file === undefined
                ? [new Quotas({ plan })]
                : [0, 1, 2].map(() => new Quotas({ plan, file, sharing: 'shared' }));
            const decisions: { amount: number; d: QuotaDecision }[] = [];
            try {
              await Promise.all(
                callers.map(async (steps, c) => {
                  const q = instances[c % instances.length]!;
                  for (const s of steps) {
                    await pause(s.pause, s.macro);
                    const amount = Math.min(s.amount, limit);
                    decisions.push({ amount, d: await q.tryConsume('a:alice', amount) });
                  }
                }),
              );
              const allowed = decisions.filter((x) => x.d.allowed).reduce((sum, x) => sum + x.amount, 0);
              const demand = decisions.reduce((sum, x) => sum + x.amount, 0);
              expect(allowed).toBeLessThanOrEqual(limit);
              for (const q of instances) expect((await q.get('a:alice')).used).toBe(allowed);
              for (const { amount, d } of decisions) {
                // A refusal: at its moment the amount did not fit, and usage only grows here.
                if (!d.allowed) expect(d.used + amount).toBeGreaterThan(limit);
                expect(d.used).toBeLessThanOrEqual(limit);
              }
              if (demand <= limit) expect(allowed).toBe(demand);
            } finally {
              for (const q of instances) q.close();
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it('consume() is all or nothing: a refusal is QuotaExceededError with limit, used and resets_at', async () => {
    const q = new Quotas({
      plan: { limit: 10, period: 'hour' },
      wallClock: { now: () => Date.UTC(2026, 0, 1, 5, 30) },
    });
    await q.consume('a:alice', 7);
    const err = await q.consume('a:alice', 4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      limit: 10,
      used: 7,
      amount: 4,
      resetsAt: Date.UTC(2026, 0, 1, 6),
    });
    expect((await q.get('a:alice')).used).toBe(7);
    await q.consume('a:alice', 3);
    expect((await q.get('a:alice')).remaining).toBe(0);
  });

  it('refuse bad settings naming the field, bad keys and impossible amounts, typed', () => {
    const bad: [unknown, string][] = [
      [{ plan: { limit: 0 } }, 'quotas.plan.limit'],
      [{ plan: { limit: 5, period: 'fortnight' } }, 'quotas.plan.period'],
      [{ plan: { limit: 5, period: { everyMs: -1 } } }, 'quotas.plan.period.everyMs'],
      [{ plan: { limit: 5, align: 'local' } }, 'quotas.plan.align'],
      [{ plan: { limit: 5, burst: 2 } }, 'quotas.plan.burst'],
      [{ plan: { limit: 5 }, sharing: 'shared' }, 'quotas.file'],
      [{ plan: { limit: 5 }, file: '/tmp/x', sharing: 'shared', durability: 'batched' }, 'quotas.durability'],
      [{ plan: { limit: 5 }, durability: 'sometimes' }, 'quotas.durability'],
      [{ plan: { limit: 5 }, maxKeys: 0 }, 'quotas.maxKeys'],
    ];
    for (const [options, path] of bad) {
      expect(() => new Quotas(options as never), path).toThrow(
        expect.objectContaining({ code: 'QOS_CONFIG', path }),
      );
      expect(() => new Quotas(options as never)).toThrow(QosConfigError);
    }
    const q = new Quotas({ plan: { limit: 5 } });
    expect(() => q.tryConsumeSync('', 1)).toThrow(QosKeyError);
    expect(() => q.tryConsumeSync('x'.repeat(257), 1)).toThrow(QosKeyError);
    expect(() => q.tryConsumeSync('a:x', 6)).toThrow(QosCostError);
    expect(() => q.tryConsumeSync('a:x', 1.5)).toThrow(QosCostError);
    expect(() => q.tryConsumeSync('a:x', -1)).toThrow(QosCostError);
  });

  it('keep memory bounded: fresh-equivalent keys are dropped, a full table refuses new keys, typed', () => {
    let now = Date.UTC(2026, 0, 1);
    const q = new Quotas({ plan: { limit: 5, period: 'hour' }, maxKeys: 100, wallClock: { now: () => now } });
    for (let i = 0; i < 100; i++) q.tryConsumeSync(`a:${i}`, 1);
    expect(() => q.tryConsumeSync('a:new', 1)).toThrow(expect.objectContaining({ code: 'QUOTA_KEYS_FULL' }));
    q.resetSync('a:0'); // a reset key is fresh: removed at once
    expect(q.tryConsumeSync('a:new', 1).allowed).toBe(true);
    // Keys keep arriving, 50 per hour: those of past hours are fresh and make room.
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 0) now += 3_600_000;
      expect(q.tryConsumeSync(`b:${i}`, 1).allowed).toBe(true);
    }
    expect(q.keys).toBeLessThanOrEqual(100);
  });

  it('three processes hammering one shared quota file consume exactly what they acknowledge, never past the limit', async () => {
    const VITE_NODE = join(process.cwd(), 'node_modules', '.bin', 'vite-node');
    const CONSUMER = join(process.cwd(), 'test', 'helpers', 'qos-quota-consumer.ts');
    const file = join(tempDir(), 'quotas.journal');
    const limit = 1500;
    const procs = [1, 2, 3].map((seed) => {
      const child = spawn(VITE_NODE, [CONSUMER, '--', 'hammer', file, String(limit), '800', String(seed)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (c) => {
        out += String(c);
      });
      const ready = new Promise<void>((resolve) => {
        const check = () => (out.includes('ready\n') ? resolve() : setTimeout(check, 10));
        check();
      });
      const done = new Promise<{ acked: number; allowed: number; refused: number }>((resolve, reject) =>
        child.once('exit', (code) => {
          if (code !== 0) reject(new Error(`consumer exited ${code}`));
          else resolve(JSON.parse(out.trim().split('\n').at(-1)!));
        }),
      );
      return { child, ready, done };
    });
    await Promise.all(procs.map((p) => p.ready));
    for (const p of procs) p.child.stdin!.end('go\n');
    const results = await Promise.all(procs.map((p) => p.done));
    const acked = results.reduce((sum, r) => sum + r.acked, 0);
    const q = new Quotas({ plan: { limit, period: 'never' }, file, sharing: 'shared' });
    const used = q.getSync('k').used;
    q.close();
    expect(used).toBe(acked);
    expect(used).toBeLessThanOrEqual(limit);
    // Demand (3 × 800 × 1..3) far exceeds the limit: it was used up to within one consume.
    expect(used).toBeGreaterThan(limit - 3);
    for (const r of results) expect(r.allowed + r.refused).toBe(800);
  });
});
