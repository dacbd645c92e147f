/**
 * Fuzz target (issue #12, "bad config gets typed errors"; the hardening rule of issue #10): the
 * daemon's `qos` section arrives from a file an operator edits and from `POST /v1/qos/reload`.
 * Any JSON value there, and any mutation of a full valid section (a field replaced by any JSON
 * value, deleted, or joined by an unknown or prototype-polluting key), either parses into a
 * policy an Admission can be built from and asked, or is a QosPolicyError whose path names a
 * field under `qos` — never another error, never a polluted prototype, in bounded time.
 *
 *   bash scripts/fuzz.sh test/fuzz-qos-policy     (long run)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Admission } from '../src/qos/admission.js';
import { QosPolicyError, parseQosPolicy } from '../src/qos/config.js';
import type { QosPolicy } from '../src/qos/policy.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';

/** Every section of the README's example, as JSON.parse gives it (no comments). */
const FULL_SECTION = {
  algorithm: 'gcra',
  tiers: {
    free: { limit: 100, periodMs: 60000, priority: 'low', quota: { limit: 5000, periodMs: 86400000 } },
    premium: { limit: 10000, periodMs: 60000, priority: 'high', weight: 10 },
  },
  defaultTier: 'free',
  actors: { 'uid:1000': 'premium', 'token:ci': 'free', 'gid:100': 'free', 'role:admin': 'premium' },
  resources: [{ kind: 'backend', name: 'onnx', perSecond: 50, perMinute: 2000 }],
  queue: {
    maxInFlight: 64,
    classes: { low: { maxSize: 100, maxPerActor: 10 } },
    deadlineMs: 30000,
    codel: { targetMs: 5, intervalMs: 100 },
  },
  breakers: { per: ['backend', 'build'], failureRateThreshold: 0.5, openDurationMs: 30000 },
  adaptive: { algorithm: 'aimd', minLimit: 4, maxLimit: 256 },
  abuse: {
    violations: 10,
    windowMs: 3600000,
    cooldownMs: 600000,
    spike: { intervalMs: 1000, baselineIntervals: 30, factor: 4, minBaseline: 10 },
  },
  global: { redisUrl: 'redis://127.0.0.1:6379', failMode: 'open' },
  kernel: { rules: [{ prefix: '10.0.0.0/8', ratePps: 1000, burst: 2000 }] },
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value in a JSON tree (the root excluded). */
function pathsOf(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([...prefix, i], ...pathsOf(v, [...prefix, i]));
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...pathsOf(v, [...prefix, k]));
  }
  return out;
}

/** A JSON.parse-like copy with one change at `path` (keys such as `__proto__` stay own keys). */
function mutated(
  root: Json,
  path: (string | number)[],
  change: (parent: Record<string, Json> | Json[], key: string | number) => void,
): Json {
  const copy = JSON.parse(JSON.stringify(root)) as Json;
  let parent = copy as Record<string, Json> | Json[];
  for (const step of path.slice(0, -1))
    parent = (parent as Record<string, Json>)[step as string] as Record<string, Json>;
  change(parent, path[path.length - 1]!);
  return copy;
}

const KEY = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'standard',
    'limit',
    '',
    ' ',
  ),
  fc.string({ maxLength: 12 }),
);
const VALUE: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null,
    true,
    0,
    -1,
    1.5,
    1e308,
    -0,
    2 ** 53,
    2 ** 31,
    '',
    '10.0.0.0/8',
    '::/0',
    'premium',
    'low',
    [],
    {},
    { __proto__: 1 } as unknown as Json,
  ),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
);

/** What a parse may do: give a policy, or a typed error whose message names a field under qos. */
function check(section: unknown): QosPolicy | null {
  const started = performance.now();
  let policy: QosPolicy | null = null;
  try {
    policy = parseQosPolicy(section);
  } catch (error) {
    if (!(error instanceof QosPolicyError)) throw error;
    expect(error.code).toBe('QOS_POLICY');
    expect(error.message).toMatch(/^qos(\.|\[|:)/);
  }
  expect(performance.now() - started).toBeLessThan(1_000);
  expect(({} as Record<string, unknown>).limit).toBeUndefined(); // nothing polluted Object.prototype
  if (policy !== null) {
    // A policy that parsed is usable: every tier named is an own entry with numbers.
    for (const name of Object.keys(policy.tiers)) expect(Object.hasOwn(policy.tiers, name)).toBe(true);
    if (policy.defaultTier !== null) expect(Object.hasOwn(policy.tiers, policy.defaultTier)).toBe(true);
    for (const tier of Object.values(policy.actors)) expect(Object.hasOwn(policy.tiers, tier)).toBe(true);
  }
  return policy;
}

/** A parsed policy admits and refuses without throwing anything but its typed refusals. */
async function exercise(policy: QosPolicy, actors: string[]): Promise<void> {
  // No Redis here: the global section is checked by the parse; the local policy is exercised.
  const admission = new Admission({ ...policy, global: null });
  try {
    for (const id of actors) {
      try {
        const permit = await admission.admit({ actor: { id, roles: [] }, backend: 'onnx', build: 'b1' });
        permit.release(1, true);
      } catch (error) {
        expect((error as { code?: unknown }).code, String(error)).toMatch(/^[A-Z_]+$/);
      }
    }
  } finally {
    admission.close?.();
  }
}

describe('the qos section, fuzzed', () => {
  it('the full example parses (the seed every mutation starts from)', () => {
    expect(check(FULL_SECTION)).not.toBeNull();
  });

  it('a tier named __proto__ (an own key from JSON.parse) is refused, not set as the prototype', () => {
    const section = JSON.parse('{"tiers":{"__proto__":{"limit":5,"periodMs":1000}}}');
    expect(() => parseQosPolicy(section)).toThrow(/qos\.tiers\.__proto__: a tier name/);
  });

  it(
    'any JSON value as the section: a policy or a QosPolicyError',
    () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 4 }), (section) => {
          check(section);
        }),
        fuzzParams(2_000),
      );
    },
    fuzzTimeoutMs(30_000),
  );

  it(
    'one field of the full section replaced, deleted or joined by a key: a policy or a QosPolicyError naming a field',
    async () => {
      const paths = pathsOf(FULL_SECTION as unknown as Json);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...paths),
          fc.oneof(
            VALUE.map((v) => ({ kind: 'replace' as const, v })),
            fc.constant({ kind: 'delete' as const }),
            fc.tuple(KEY, VALUE).map(([k, v]) => ({ kind: 'add' as const, k, v })),
          ),
          fc.array(fc.constantFrom('uid:1000', 'gid:100', 'token:ci', 'role:admin', 'uid:7', '*'), {
            maxLength: 4,
          }),
          async (path, op, actors) => {
            const section = mutated(FULL_SECTION as unknown as Json, path, (parent, key) => {
              if (op.kind === 'replace') (parent as Record<string, Json>)[key as string] = op.v;
              else if (op.kind === 'delete') {
                if (Array.isArray(parent)) parent.splice(key as number, 1);
                else delete parent[key as string];
              } else {
                const target = (parent as Record<string, Json>)[key as string];
                if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
                  Object.defineProperty(target, op.k, {
                    value: op.v,
                    enumerable: true,
                    writable: true,
                    configurable: true,
                  });
                }
              }
            });
            const policy = check(section);
            if (policy !== null) await exercise(policy, actors);
          },
        ),
        fuzzParams(3_000),
      );
    },
    fuzzTimeoutMs(60_000),
  );
});
