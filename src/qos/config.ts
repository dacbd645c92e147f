/**
 * The `qos` config section, validated into a QosPolicy. Plain JSON in, a typed error out that
 * names the field path as segments (`['tiers', 'free', 'limit']`), so the daemon turns it into
 * `config.json:12:5: qos.tiers.free.limit: …` and an embedder gets the same path.
 *
 *   "qos": {
 *     "algorithm": "token-bucket",
 *     "tiers": { "free": { "limit": 100, "periodMs": 60000, "burst": 100,
 *                          "weight": 1, "priority": "low",
 *                          "quota": { "limit": 5000, "periodMs": 86400000 } } },
 *     "defaultTier": "standard",
 *     "actors": { "uid:1000": "premium", "token:ci": "free", "role:runner": "standard" },
 *     "resources": [ { "kind": "backend", "name": "onnx", "perSecond": 50, "perMinute": 2000 } ],
 *     "queue": { "maxInFlight": 64, "classes": { "low": { "maxSize": 100 } },
 *                "deadlineMs": 30000, "codel": { "targetMs": 5, "intervalMs": 100 } },
 *     "breakers": { "per": ["backend"], "failureRateThreshold": 0.5 },
 *     "adaptive": { "algorithm": "aimd", "minLimit": 4, "maxLimit": 256 },
 *     "abuse": { "violations": 10, "windowMs": 3600000, "cooldownMs": 600000,
 *                "spike": { "intervalMs": 1000, "baselineIntervals": 30, "factor": 4, "minBaseline": 10 } },
 *     "global": { "redisUrl": "redis://127.0.0.1:6379", "failMode": "open", "leaseSize": 10,
 *                 "leaseTtlMs": 1000, "commandTimeoutMs": 50, "keyPrefix": "thunderpac:qos:",
 *                 "quotas": true },
 *     "kernel": { "rules": [ { "prefix": "10.0.0.0/8", "ratePps": 1000, "burst": 2000 } ] }
 *   }
 */

import { isIP } from 'node:net';
import { ThunderpacError } from '../runtime/errors.js';
import { resolveBreakerOptions } from './backpressure/index.js';
import { systemClock } from './clock.js';
import {
  ALGORITHMS,
  type Algorithm,
  QosConfigError,
  perWindowLimiter,
  validateRateSpecFor,
} from './limiters/index.js';
import {
  type AbusePolicy,
  type AdaptivePolicy,
  type BreakerPolicy,
  DEFAULT_ABUSE,
  DEFAULT_QOS_POLICY,
  DEFAULT_SPIKE,
  DEFAULT_QOS_TIERS,
  type GlobalPolicy,
  type KernelPolicy,
  type KernelRule,
  type PerWindow,
  type QosPolicy,
  type QueuePolicy,
  type QuotaSpec,
  type ResourceKind,
  type ResourceLimit,
  type SpikePolicy,
  type TierPolicy,
} from './policy.js';
import { PRIORITIES } from './queues/index.js';

export type QosPath = readonly (string | number)[];

/** A `qos` value that cannot be used: names the field path (segments) under the section. */
export class QosPolicyError extends ThunderpacError {
  readonly segments: QosPath;
  readonly detail: string;
  constructor(segments: QosPath, detail: string) {
    super('QOS_POLICY', `${formatQosPath(['qos', ...segments])}: ${detail}`);
    this.segments = segments;
    this.detail = detail;
  }
}

export function formatQosPath(path: QosPath): string {
  let out = '';
  for (const s of path) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[\w$-]+$/.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (v !== null && typeof v === 'object') return 'an object';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function fail(path: QosPath, expected: string, found: unknown): never {
  throw new QosPolicyError(path, `expected ${expected}, found ${shown(found)}`);
}

function obj(path: QosPath, v: unknown, keys: readonly string[] | null): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object', v);
  const o = v as Record<string, unknown>;
  if (keys) {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k))
        throw new QosPolicyError([...path, k], `unknown key (expected one of: ${keys.join(', ')})`);
    }
  }
  return o;
}

function int(path: QosPath, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    fail(path, `an integer from ${min} to ${max}`, v);
  return v;
}

function ms(path: QosPath, v: unknown, max = 2 ** 31 - 1): number {
  return int(path, v, 1, max);
}

function oneOf<T extends string>(path: QosPath, v: unknown, values: readonly T[]): T {
  if (!values.includes(v as T)) fail(path, `one of ${values.join(', ')}`, v);
  return v as T;
}

/** Q1's limiter validation reports a dotted path: rebased under ours. */
function rebase<T>(path: QosPath, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof QosConfigError) {
      const [, ...rest] = err.path.split('.');
      throw new QosPolicyError([...path, ...rest], `expected ${err.expected}, found ${err.found}`);
    }
    if (err instanceof ThunderpacError && 'path' in err && typeof err.path === 'string') {
      const p = err.path;
      throw new QosPolicyError([...path, ...(p ? p.split('.') : [])], err.message.replace(`${p}: `, ''));
    }
    throw err;
  }
}

const SUBJECT =
  /^(\*|(uid|gid):(0|[1-9]\d{0,9})|token:[A-Za-z0-9._-]{1,64}|role:(admin|operator|runner|auditor))$/;
const TIER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function quota(path: QosPath, v: unknown): QuotaSpec {
  const o = obj(path, v, ['limit', 'periodMs']);
  return {
    limit: int([...path, 'limit'], o.limit, 1),
    periodMs: ms([...path, 'periodMs'], o.periodMs, 1e12),
  };
}

function tier(path: QosPath, v: unknown, algorithm: Algorithm): TierPolicy {
  const o = obj(path, v, ['limit', 'periodMs', 'burst', 'weight', 'priority', 'quota']);
  const { weight, priority, quota: q, ...rate } = o;
  return {
    rate: rebase(path, () => validateRateSpecFor('tier', rate, algorithm)),
    weight: weight === undefined ? 1 : int([...path, 'weight'], weight, 1, 1_000_000),
    priority: priority === undefined ? 'medium' : oneOf([...path, 'priority'], priority, PRIORITIES),
    quota: q === undefined || q === null ? null : quota([...path, 'quota'], q),
  };
}

const WINDOWS = ['perSecond', 'perMinute', 'perHour'] as const;

function resource(path: QosPath, v: unknown, algorithm: Algorithm): ResourceLimit {
  const o = obj(path, v, ['kind', 'name', 'perActor', ...WINDOWS]);
  const kind = oneOf<ResourceKind>([...path, 'kind'], o.kind, ['build', 'backend', 'model']);
  const name = o.name ?? '*';
  if (typeof name !== 'string' || name.length === 0 || name.length > 128)
    fail([...path, 'name'], 'a resource name (1-128 characters) or "*"', name);
  const limits: Record<string, number> = {};
  for (const w of WINDOWS) if (o[w] !== undefined) limits[w] = int([...path, w], o[w], 1);
  if (Object.keys(limits).length === 0)
    throw new QosPolicyError(path, 'expected at least one of perSecond, perMinute, perHour');
  if (o.perActor !== undefined && typeof o.perActor !== 'boolean')
    fail([...path, 'perActor'], 'a boolean', o.perActor);
  // The limiter's own checks (exact integer products), here: a section that parses also builds.
  rebase(path, () => perWindowLimiter(limits, algorithm, systemClock, {}, 'limits'));
  return { kind, name, limits: limits as PerWindow, perActor: o.perActor === true };
}

function queue(path: QosPath, v: unknown): QueuePolicy {
  const o = obj(path, v, ['maxInFlight', 'classes', 'deadlineMs', 'codel']);
  const classes: Record<string, { maxSize?: number; maxPerActor?: number }> = {};
  if (o.classes !== undefined) {
    const c = obj([...path, 'classes'], o.classes, PRIORITIES);
    for (const [name, value] of Object.entries(c)) {
      const where = [...path, 'classes', name];
      const k = obj(where, value, ['maxSize', 'maxPerActor']);
      classes[name] = {
        ...(k.maxSize !== undefined && { maxSize: int([...where, 'maxSize'], k.maxSize, 0, 1 << 24) }),
        ...(k.maxPerActor !== undefined && {
          maxPerActor: int([...where, 'maxPerActor'], k.maxPerActor, 0, 1 << 24),
        }),
      };
    }
  }
  let codel: QueuePolicy['codel'] = null;
  if (o.codel !== undefined && o.codel !== null && o.codel !== false) {
    const c = obj([...path, 'codel'], o.codel, ['targetMs', 'intervalMs']);
    codel = {
      targetMs: ms([...path, 'codel', 'targetMs'], c.targetMs),
      intervalMs: ms([...path, 'codel', 'intervalMs'], c.intervalMs),
    };
  }
  return {
    maxInFlight:
      o.maxInFlight === undefined ? null : int([...path, 'maxInFlight'], o.maxInFlight, 1, 1 << 20),
    classes,
    deadlineMs:
      o.deadlineMs === undefined || o.deadlineMs === null ? null : ms([...path, 'deadlineMs'], o.deadlineMs),
    codel,
  };
}

const BREAKER_KEYS = [
  'windowSize',
  'minimumCalls',
  'failureRateThreshold',
  'slowCallDurationMs',
  'slowCallRateThreshold',
  'openDurationMs',
  'halfOpenProbes',
] as const;

function breakers(path: QosPath, v: unknown): BreakerPolicy {
  const o = obj(path, v, ['per', ...BREAKER_KEYS]);
  const per = o.per ?? ['backend', 'build'];
  if (!Array.isArray(per) || per.length === 0)
    fail([...path, 'per'], 'a non-empty array of "backend", "build"', per);
  const kinds = per.map((p, i) => oneOf([...path, 'per', i], p, ['backend', 'build'] as const));
  const options: Record<string, unknown> = {};
  for (const k of BREAKER_KEYS) {
    if (o[k] === undefined) continue;
    if (typeof o[k] !== 'number') fail([...path, k], 'a number', o[k]);
    options[k] = o[k];
  }
  rebase(path, () => resolveBreakerOptions(options, ''));
  return { per: [...new Set(kinds)], ...options };
}

function adaptive(path: QosPath, v: unknown): AdaptivePolicy {
  const o = obj(path, v, ['algorithm', 'initialLimit', 'minLimit', 'maxLimit']);
  const out: Record<string, unknown> = {
    algorithm: oneOf([...path, 'algorithm'], o.algorithm ?? 'aimd', ['aimd', 'gradient'] as const),
  };
  for (const k of ['initialLimit', 'minLimit', 'maxLimit'] as const)
    if (o[k] !== undefined) out[k] = int([...path, k], o[k], 1, 1 << 20);
  const min = (out.minLimit as number | undefined) ?? 1;
  const max = (out.maxLimit as number | undefined) ?? 1000;
  if (max < min) fail([...path, 'maxLimit'], `an integer ≥ minLimit (${min})`, max);
  const initial = out.initialLimit as number | undefined;
  if (initial !== undefined && (initial < min || initial > max))
    fail([...path, 'initialLimit'], `an integer in [${min}, ${max}]`, initial);
  return out as unknown as AdaptivePolicy;
}

function spike(path: QosPath, v: unknown): SpikePolicy | null {
  if (v === undefined || v === null || v === false) return null;
  if (v === true) return DEFAULT_SPIKE;
  const o = obj(path, v, ['intervalMs', 'baselineIntervals', 'factor', 'minBaseline']);
  const d = DEFAULT_SPIKE;
  const factor = o.factor ?? d.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 1 || factor > 1e6)
    fail([...path, 'factor'], 'a number greater than 1 (at most 1000000)', factor);
  return {
    intervalMs: o.intervalMs === undefined ? d.intervalMs : ms([...path, 'intervalMs'], o.intervalMs),
    baselineIntervals:
      o.baselineIntervals === undefined
        ? d.baselineIntervals
        : int([...path, 'baselineIntervals'], o.baselineIntervals, 1, 10_000),
    factor,
    minBaseline:
      o.minBaseline === undefined ? d.minBaseline : int([...path, 'minBaseline'], o.minBaseline, 1, 1e9),
  };
}

function abuse(path: QosPath, v: unknown): AbusePolicy {
  const o = obj(path, v, ['violations', 'windowMs', 'cooldownMs', 'spike']);
  return {
    spike: spike([...path, 'spike'], o.spike),
    violations:
      o.violations === undefined
        ? DEFAULT_ABUSE.violations
        : int([...path, 'violations'], o.violations, 1, 100_000),
    windowMs: o.windowMs === undefined ? DEFAULT_ABUSE.windowMs : ms([...path, 'windowMs'], o.windowMs),
    cooldownMs:
      o.cooldownMs === undefined ? DEFAULT_ABUSE.cooldownMs : ms([...path, 'cooldownMs'], o.cooldownMs),
  };
}

function global(path: QosPath, v: unknown): GlobalPolicy {
  const o = obj(path, v, [
    'redisUrl',
    'failMode',
    'leaseSize',
    'leaseTtlMs',
    'commandTimeoutMs',
    'keyPrefix',
    'quotas',
  ]);
  if (o.quotas !== undefined && typeof o.quotas !== 'boolean')
    fail([...path, 'quotas'], 'a boolean', o.quotas);
  const url = o.redisUrl;
  let ok = false;
  if (typeof url === 'string') {
    try {
      const u = new URL(url);
      ok = (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
    } catch {
      ok = false;
    }
  }
  if (!ok) fail([...path, 'redisUrl'], 'a redis://HOST:PORT URL', url);
  return {
    redisUrl: url as string,
    failMode:
      o.failMode === undefined
        ? 'open'
        : oneOf([...path, 'failMode'], o.failMode, ['open', 'closed'] as const),
    leaseSize:
      o.leaseSize === undefined || o.leaseSize === null
        ? null
        : int([...path, 'leaseSize'], o.leaseSize, 1, 1_000_000),
    leaseTtlMs: o.leaseTtlMs === undefined ? 1000 : ms([...path, 'leaseTtlMs'], o.leaseTtlMs, 3_600_000),
    commandTimeoutMs:
      o.commandTimeoutMs === undefined ? 50 : ms([...path, 'commandTimeoutMs'], o.commandTimeoutMs, 60_000),
    keyPrefix: keyPrefix([...path, 'keyPrefix'], o.keyPrefix),
    quotas: o.quotas !== false,
  };
}

function keyPrefix(path: QosPath, v: unknown): string {
  if (v === undefined) return 'thunderpac:qos:';
  if (typeof v !== 'string' || v.length > 128 || !/^[\x21-\x7e]*$/.test(v))
    fail(path, 'a key prefix of at most 128 printable ASCII characters', v);
  return v;
}

/** `a.b.c.d[/n]` or an IPv6 `x::y[/n]`; the host bits must be zero. */
export function parsePrefix(text: string): { family: 4 | 6; addr: Uint8Array; prefixlen: number } | null {
  const [host, len, ...extra] = text.split('/');
  if (host === undefined || extra.length > 0) return null;
  const family = isIP(host);
  if (family !== 4 && family !== 6) return null;
  const bits = family === 4 ? 32 : 128;
  const prefixlen = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : -1;
  if (!(prefixlen >= 0 && prefixlen <= bits)) return null;
  const addr = family === 4 ? Uint8Array.from(host.split('.').map(Number)) : ipv6Bytes(host);
  for (let bit = prefixlen; bit < bits; bit++) if (addr[bit >> 3]! & (0x80 >> (bit & 7))) return null;
  return { family, addr, prefixlen };
}

function ipv6Bytes(host: string): Uint8Array {
  let h = host;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  let tail: number[] = [];
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    tail = [(p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!];
    h = h.slice(0, -v4[1]!.length).replace(/:$/, ':0');
    if (h.endsWith('::0')) h = h.slice(0, -1);
  }
  const [l, r] = h.includes('::') ? h.split('::') : [h, undefined];
  const left = l
    ? l
        .split(':')
        .filter((s) => s !== '')
        .map((s) => Number.parseInt(s, 16))
    : [];
  const right = r
    ? r
        .split(':')
        .filter((s) => s !== '')
        .map((s) => Number.parseInt(s, 16))
    : [];
  const groups = 8 - tail.length;
  const mid = r === undefined ? [] : new Array<number>(groups - left.length - right.length).fill(0);
  const words = [...left, ...mid, ...right].slice(0, groups).concat(tail);
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

function kernel(path: QosPath, v: unknown): KernelPolicy {
  const o = obj(path, v, ['rules']);
  const rules = o.rules ?? [];
  if (!Array.isArray(rules)) fail([...path, 'rules'], 'an array of rules', rules);
  if (rules.length > 1024)
    fail([...path, 'rules'], 'at most 1024 rules (the LPM tries hold 1024)', rules.length);
  const seen = new Set<string>();
  return {
    rules: rules.map((r, i): KernelRule => {
      const where = [...path, 'rules', i];
      const k = obj(where, r, ['prefix', 'ratePps', 'burst']);
      if (typeof k.prefix !== 'string' || parsePrefix(k.prefix) === null)
        fail([...where, 'prefix'], 'an IPv4 or IPv6 prefix like "10.0.0.0/8" (host bits zero)', k.prefix);
      if (seen.has(k.prefix)) throw new QosPolicyError([...where, 'prefix'], 'duplicate prefix');
      seen.add(k.prefix);
      const ratePps = int([...where, 'ratePps'], k.ratePps, 1, 1e9);
      return {
        prefix: k.prefix,
        ratePps,
        burst: k.burst === undefined ? ratePps : int([...where, 'burst'], k.burst, 1, 1e9),
      };
    }),
  };
}

const TOP = [
  'algorithm',
  'tiers',
  'defaultTier',
  'actors',
  'resources',
  'queue',
  'breakers',
  'adaptive',
  'abuse',
  'global',
  'kernel',
] as const;

/** The `qos` section as written (undefined or null: the default policy) → a QosPolicy. */
export function parseQosPolicy(value: unknown): QosPolicy {
  if (value === undefined || value === null) return DEFAULT_QOS_POLICY;
  const o = obj([], value, TOP);
  const algorithm =
    o.algorithm === undefined ? 'token-bucket' : oneOf(['algorithm'], o.algorithm, ALGORITHMS);
  let tiers: Record<string, TierPolicy> = { ...DEFAULT_QOS_TIERS };
  if (o.tiers !== undefined) {
    const t = obj(['tiers'], o.tiers, null);
    if (Object.keys(t).length === 0) fail(['tiers'], 'at least one tier', t);
    tiers = {};
    for (const [name, spec] of Object.entries(t)) {
      if (!TIER_NAME.test(name) || name === '__proto__')
        throw new QosPolicyError(
          ['tiers', name],
          'a tier name of 1-64 letters, digits, _ . - (not __proto__)',
        );
      tiers[name] = tier(['tiers', name], spec, algorithm);
    }
  }
  const names = Object.keys(tiers);
  const defaultTier =
    o.defaultTier === undefined
      ? tiers.standard
        ? 'standard'
        : names[0]!
      : o.defaultTier === null
        ? null
        : oneOf(['defaultTier'], o.defaultTier, names);
  const actors: Record<string, string> = {};
  const a = o.actors === undefined ? { 'role:admin': 'premium' } : obj(['actors'], o.actors, null);
  for (const [subject, t] of Object.entries(a)) {
    if (!SUBJECT.test(subject))
      throw new QosPolicyError(
        ['actors', subject],
        'expected a subject "uid:N", "gid:N", "token:NAME", "role:ROLE" or "*"',
      );
    if (o.actors === undefined && !names.includes(t as string)) continue; // a default naming a tier the config dropped
    actors[subject] = oneOf(['actors', subject], t, names);
  }
  const resourcesValue = o.resources ?? [];
  if (!Array.isArray(resourcesValue)) fail(['resources'], 'an array of resource limits', resourcesValue);
  return {
    algorithm,
    tiers,
    defaultTier,
    actors,
    resources: resourcesValue.map((r, i) => resource(['resources', i], r, algorithm)),
    queue: o.queue === undefined ? DEFAULT_QOS_POLICY.queue : queue(['queue'], o.queue),
    breakers:
      o.breakers === undefined || o.breakers === null || o.breakers === false
        ? null
        : breakers(['breakers'], o.breakers),
    adaptive:
      o.adaptive === undefined || o.adaptive === null || o.adaptive === false
        ? null
        : adaptive(['adaptive'], o.adaptive),
    abuse:
      o.abuse === undefined
        ? DEFAULT_ABUSE
        : o.abuse === null || o.abuse === false
          ? null
          : abuse(['abuse'], o.abuse),
    global: o.global === undefined || o.global === null ? null : global(['global'], o.global),
    kernel: o.kernel === undefined || o.kernel === null ? null : kernel(['kernel'], o.kernel),
  };
}
