/**
 * The QoS policy as data: one value the daemon reads from its config's `qos` section, an
 * embedder builds by hand, and `Admission` (admission.ts) enforces. Every limit is named here
 * with its default; config.ts validates a JSON value into this shape (typed errors naming the
 * field path).
 *
 * Actors are named the way the daemon's policy names them (src/daemon/policy.ts): `uid:N`,
 * `gid:N`, `token:NAME`, `role:ROLE`, or `*`. The most specific subject decides: the actor's
 * own id (uid or token), then a gid (primary, then supplementary), then a role, then `*`, then
 * `defaultTier`.
 */

import type { Algorithm, RateSpec } from './limiters/index.js';
import type { Priority } from './queues/index.js';

export interface QuotaSpec {
  /** Units (executions) per period. */
  readonly limit: number;
  /** The period, ms; periods start at multiples of it on the wall clock (UTC). */
  readonly periodMs: number;
}

export interface TierPolicy {
  /** The tier's rate limit per actor (token bucket or the chosen algorithm). */
  readonly rate: RateSpec;
  /** DRR weight of this tier's actors in the fair queue (default 1). */
  readonly weight: number;
  /** Priority class of this tier's executions (default 'medium'). */
  readonly priority: Priority;
  /** Executions per period per actor, or null for none. */
  readonly quota: QuotaSpec | null;
}

export type ResourceKind = 'build' | 'backend' | 'model';

export interface PerWindow {
  readonly perSecond?: number;
  readonly perMinute?: number;
  readonly perHour?: number;
}

/** Limits on one resource (or every resource of a kind with name '*'), per window at once. */
export interface ResourceLimit {
  readonly kind: ResourceKind;
  /** The build id, backend name or model name; '*' for each one of the kind separately. */
  readonly name: string;
  readonly limits: PerWindow;
  /** Keyed per (actor, resource) instead of per resource (default false). */
  readonly perActor: boolean;
}

export interface QueuePolicy {
  /** Executions running at once (default: the daemon's limits.maxInFlight, else 64). */
  readonly maxInFlight: number | null;
  /** Per class: most items waiting, and per actor (default: the daemon's limits.maxQueued, else 1024). */
  readonly classes: Partial<Record<Priority, { readonly maxSize?: number; readonly maxPerActor?: number }>>;
  /** A queued execution not started within this is dropped (503), ms; null: none (default). */
  readonly deadlineMs: number | null;
  /** CoDel shedding by queue delay; null: off (default — bounds by length only). */
  readonly codel: { readonly targetMs: number; readonly intervalMs: number } | null;
}

export interface BreakerPolicy {
  /** Which keys get a breaker: per backend and/or per build (default both). */
  readonly per: readonly ('backend' | 'build')[];
  readonly windowSize?: number;
  readonly minimumCalls?: number;
  readonly failureRateThreshold?: number;
  readonly slowCallDurationMs?: number;
  readonly slowCallRateThreshold?: number;
  readonly openDurationMs?: number;
  readonly halfOpenProbes?: number;
}

export interface AdaptivePolicy {
  readonly algorithm: 'aimd' | 'gradient';
  readonly initialLimit?: number;
  readonly minLimit?: number;
  readonly maxLimit?: number;
}

/**
 * Per-actor spike detection (src/qos/abuse/spike-detector.ts): the requests of the current
 * interval against the mean of the `baselineIntervals` before it; reaching
 * `factor × max(baseline, minBaseline)` is a spike, counted as a violation of kind `spike`.
 */
export interface SpikePolicy {
  /** Length of an interval, ms (default 1000). */
  readonly intervalMs: number;
  /** Intervals averaged into the baseline (default 30). */
  readonly baselineIntervals: number;
  /** How many times the baseline makes a spike (> 1, default 4). */
  readonly factor: number;
  /** Requests per interval an actor is assumed to make at least (default 10). */
  readonly minBaseline: number;
}

export interface AbusePolicy {
  /** More than this many refusals (violations) within `windowMs` puts the actor in cooldown (default 10). */
  readonly violations: number;
  /** The window violations are counted over, ms (default 1 h). */
  readonly windowMs: number;
  /** How long a cooldown blocks the actor, ms (default 10 min). */
  readonly cooldownMs: number;
  /** Spike detection; null or absent: off (default — a load test must not cool itself down). */
  readonly spike?: SpikePolicy | null;
}

/**
 * Tier rate limits shared by every daemon through Redis (src/qos/global: a GCRA per actor in an
 * atomic Lua script, leases as the local fast path). Over any window the fleet admits at most
 * the tier's definition + hosts × (leaseSize − 1) per actor while Redis answers; while it does
 * not, each daemon decides alone (failMode 'open': a local GCRA of the same definition, so at
 * most hosts × definition) or refuses with 503 ('closed').
 */
export interface GlobalPolicy {
  /** redis://host:port for limits shared across daemons. */
  readonly redisUrl: string;
  /** When Redis cannot be reached: admit on local decisions ('open', default) or refuse ('closed'). */
  readonly failMode: 'open' | 'closed';
  /**
   * Units a daemon takes from Redis per round trip and spends locally; null (default): per tier
   * min(10, max(1, ⌊burst / 10⌋)). Always at most the tier's burst. 1: every check a round trip, exact.
   */
  readonly leaseSize?: number | null;
  /** Unspent leased units are dropped after this, ms (default 1000). */
  readonly leaseTtlMs?: number;
  /** Longest one Redis call may take before the check decides without it, ms (default 50). */
  readonly commandTimeoutMs?: number;
  /** Prefix of every Redis key (default `thunderpac:qos:`): daemons sharing limits use the same. */
  readonly keyPrefix?: string;
  /**
   * Tier quotas kept in Redis too (default true): one budget per actor for the fleet, consumed
   * atomically. Redis down: failMode 'open' counts on this host alone (at most hosts × limit
   * extra), 'closed' refuses (503). Make the Redis persistent (appendonly) to keep them.
   */
  readonly quotas?: boolean;
}

/** One per-source packet rate rule for the kernel's XDP rate limiter. */
export interface KernelRule {
  /** Source prefix, `10.0.0.0/8`, `192.0.2.7` (= /32), `2001:db8::/32`. */
  readonly prefix: string;
  /** Packets per second refilled. */
  readonly ratePps: number;
  /** Packets admissible at once (default ratePps). */
  readonly burst: number;
}

export interface KernelPolicy {
  readonly rules: readonly KernelRule[];
}

export interface QosPolicy {
  /** Limiter algorithm for tiers and resource limits (default 'token-bucket'). */
  readonly algorithm: Algorithm;
  readonly tiers: Readonly<Record<string, TierPolicy>>;
  /**
   * Tier of an actor no subject names (default 'standard' if defined, else the first tier);
   * null: such actors have no tier limit (resource limits still apply). The daemon without a
   * `qos` section uses null and no subjects: nobody is rate limited until the config says so.
   */
  readonly defaultTier: string | null;
  /** Subject → tier name. */
  readonly actors: Readonly<Record<string, string>>;
  readonly resources: readonly ResourceLimit[];
  readonly queue: QueuePolicy;
  /** null: no breakers. */
  readonly breakers: BreakerPolicy | null;
  /** null: a fixed concurrency limit (queue.maxInFlight). */
  readonly adaptive: AdaptivePolicy | null;
  /** null: no cooldowns. */
  readonly abuse: AbusePolicy | null;
  /** null: limits are local only. */
  readonly global: GlobalPolicy | null;
  /** null: nothing compiled into the kernel. */
  readonly kernel: KernelPolicy | null;
}

export const MINUTE = 60_000;
export const HOUR = 3_600_000;

/** The seed's tiers: premium 10,000 / standard 1,000 / free 100 executions per minute. */
export const DEFAULT_QOS_TIERS: Readonly<Record<string, TierPolicy>> = Object.freeze({
  premium: { rate: { limit: 10_000, periodMs: MINUTE }, weight: 10, priority: 'high', quota: null },
  standard: { rate: { limit: 1_000, periodMs: MINUTE }, weight: 1, priority: 'medium', quota: null },
  free: { rate: { limit: 100, periodMs: MINUTE }, weight: 1, priority: 'low', quota: null },
});

/** The seed's "> 10 violations in an hour", with a 10 minute cooldown. */
export const DEFAULT_ABUSE: AbusePolicy = Object.freeze({
  violations: 10,
  windowMs: HOUR,
  cooldownMs: 10 * MINUTE,
  spike: null,
});

/** Spike settings when the config says `"spike": true` or leaves fields out. */
export const DEFAULT_SPIKE: SpikePolicy = Object.freeze({
  intervalMs: 1000,
  baselineIntervals: 30,
  factor: 4,
  minBaseline: 10,
});

export const DEFAULT_QUEUE: QueuePolicy = Object.freeze({
  maxInFlight: null,
  classes: {},
  deadlineMs: null,
  codel: null,
});

/**
 * The policy of a daemon whose config has no `qos` section: the seed's tiers are defined but
 * no actor is in one (so no rate limits or quotas), the queue bounds of the daemon's limits.
 */
export const DEFAULT_QOS_POLICY: QosPolicy = Object.freeze({
  algorithm: 'token-bucket',
  tiers: DEFAULT_QOS_TIERS,
  defaultTier: null,
  actors: Object.freeze({}),
  resources: [],
  queue: DEFAULT_QUEUE,
  breakers: null,
  adaptive: null,
  abuse: DEFAULT_ABUSE,
  global: null,
  kernel: null,
});

/** Who is asking, as admission needs to know it (the daemon's Actor fits). */
export interface QosActor {
  /** `uid:1000`, `token:ci`, … */
  readonly id: string;
  readonly roles: readonly string[];
  readonly gid?: number | undefined;
  readonly groups?: readonly number[] | undefined;
}

/** The tier of an actor under `policy` (see the module comment for precedence); null: none. */
export function tierOf(policy: QosPolicy, actor: QosActor): string | null {
  const a = policy.actors;
  const own = a[actor.id];
  if (own !== undefined) return own;
  if (actor.gid !== undefined) {
    const byGid = a[`gid:${actor.gid}`];
    if (byGid !== undefined) return byGid;
  }
  for (const g of actor.groups ?? []) {
    const byGroup = a[`gid:${g}`];
    if (byGroup !== undefined) return byGroup;
  }
  for (const r of actor.roles) {
    const byRole = a[`role:${r}`];
    if (byRole !== undefined) return byRole;
  }
  return a['*'] ?? policy.defaultTier;
}
