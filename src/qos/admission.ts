/**
 * Admission: one QosPolicy enforced before every execution, composed from the QoS pieces —
 * a library API (the daemon's DaemonExecutions is one embedder; nothing here knows HTTP).
 *
 *   const admission = new Admission(policy, { clock });
 *   const permit = await admission.admit({ actor, backend: 'wasm', build: id });  // or throws
 *   try { … run … } finally { permit.release(durationMs, ok); }
 *
 * Order of checks, each refusal typed (QosRefusal, with the HTTP status and Retry-After the
 * daemon answers with):
 *  1. cooldown (abuse)                → 429 ACTOR_COOLDOWN
 *  2. circuit breakers (backend/build) → 503 CIRCUIT_OPEN
 *  3. the actor's tier rate limit      → 429 RATE_LIMITED; with policy.global (admit() only:
 *     check() stays synchronous and local) a GCRA in Redis shared by every daemon, leases as
 *     the local fast path; Redis unreachable: failMode 'open' decides locally, 'closed'
 *                                      → 503 QOS_UNAVAILABLE
 *  4. per-resource limits              → 429 RATE_LIMITED
 *  5. the tier's quota (consumed last, so a refused request never spends quota)
 *                                      → 429 QUOTA_EXCEEDED
 *  6. a concurrency slot (fixed or adaptive), else the priority fair queue (class by tier,
 *     DRR weight by tier, deadline, CoDel): full → QueueDropError 'class-full', shed by delay
 *     or past deadline → QueueDropError (503s).
 * A request refused by a later limit has spent its earlier limits' budget (as Envoy's
 * descriptors do); every limit is still never exceeded. Each 429 counts as a violation of its
 * actor (src/qos/abuse's AbuseDetector; with abuse.spike, a request spike is one too): more
 * than `abuse.violations` within `abuse.windowMs` starts a cooldown of exactly cooldownMs,
 * announced through `onAbuse` and diagnostics_channel. Quotas go through src/qos/quotas,
 * journaled in `quotaFile` when given (the daemon's store) so usage survives restarts; with
 * policy.global (quotas not false) admit() consumes them in Redis instead (one fleet budget).
 *
 * Reload (`reload(policy)`) keeps state where the definition did not change: a tier or
 * resource limit whose definition (algorithm and numbers) is the same keeps its limiter and
 * every key's level; a changed one starts fresh (full buckets: the new definition from now).
 * Quota usage is kept (a changed quota limit applies to what is already used); violations and
 * cooldowns are kept while the abuse settings are unchanged (changed: a fresh detector). A
 * changed qos.global connection starts a new one; a tier whose definition is unchanged keeps
 * its global limiter (and its leases). Breakers and the adaptive limit are kept unless their settings changed. The
 * queue keeps its waiting items (moved into a new queue when its bounds changed).
 */

import { ThunderpacError } from '../runtime/errors.js';
import { channels } from '../runtime/events.js';
import { ABUSE_DETECTED, AbuseDetector, SPIKE_DETECTED, type ViolationKind } from './abuse/index.js';
import {
  AimdLimit,
  type CircuitBreaker,
  CircuitBreakers,
  ConcurrencyLimiter,
  GradientLimit,
} from './backpressure/index.js';
import { type Clock, systemClock } from './clock.js';
import { type GlobalDecision, GlobalStore, RedisGcraLimiter, RedisQuota } from './global/index.js';
import {
  actorKey,
  actorResourceKey,
  createLimiter,
  type KeyedLimiter,
  perWindowLimiter,
  resourceKey,
} from './limiters/index.js';
import {
  type AbusePolicy,
  type AdaptivePolicy,
  type BreakerPolicy,
  type QosActor,
  type QosPolicy,
  type QueuePolicy,
  type ResourceKind,
  type ResourceLimit,
  tierOf,
} from './policy.js';
import { PRIORITIES, type Priority, PriorityFairQueue, QueueDropError } from './queues/index.js';
import {
  type QuotaDurability,
  QuotaKeysFullError,
  type QuotaPlan,
  Quotas,
  quotaPlan,
} from './quotas/index.js';

/** Why admission refused, as the daemon answers it. */
export type QosRefusalCode =
  | 'RATE_LIMITED'
  | 'QUOTA_EXCEEDED'
  | 'ACTOR_COOLDOWN'
  | 'CIRCUIT_OPEN'
  /** qos.global with failMode 'closed' and Redis unreachable (503). */
  | 'QOS_UNAVAILABLE';

/** A refusal by policy: `statusCode` (429 / 503), `retryAfterS` (whole seconds, ≥ 1), `details`. */
export class QosRefusal extends ThunderpacError {
  readonly statusCode: 429 | 503;
  readonly retryAfterS: number;
  /** Fields of the typed body: the key, the limit, the window, resets_at… */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(
    code: QosRefusalCode,
    message: string,
    statusCode: 429 | 503,
    retryAfterMs: number,
    details: Record<string, unknown>,
  ) {
    super(code, message);
    this.statusCode = statusCode;
    this.retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000));
    this.details = details;
  }
}

export interface AdmissionRequest {
  readonly actor: QosActor;
  readonly backend?: string | undefined;
  readonly build?: string | undefined;
  readonly model?: string | undefined;
}

export interface AdmissionOptions {
  /** Monotonic time for limiters, queue and breakers (default performance.now). */
  readonly clock?: Clock;
  /** Wall-clock ms for quota periods (default Date.now). */
  readonly wallClock?: () => number;
  /** Concurrency when the policy does not set queue.maxInFlight (default 64). */
  readonly maxInFlight?: number;
  /** Class size when the policy does not set one (default 1024). */
  readonly maxQueued?: number;
  /**
   * Journal of the tier quotas (the daemon: `<store>/daemon/qos-quotas.journal`): usage survives
   * a restart and a SIGKILL (src/qos/quotas: flock'd, journaled). Absent: quotas in memory.
   */
  readonly quotaFile?: string;
  /** How each quota consume reaches the journal (default 'write': survives SIGKILL). */
  readonly quotaDurability?: QuotaDurability;
}

/** What a granted admission holds: give it back exactly once. */
export interface Permit {
  readonly tier: string | null;
  readonly priority: Priority;
  /** The execution ran: frees the slot and tells breakers and the adaptive limit how it went. */
  release(durationMs: number, ok: boolean): void;
  /** It never ran: frees the slot, no sample. */
  abandon(): void;
}

/** What abuse detection announces (`onAbuse`), besides `thunderpac:qos:abuse_detected`. */
export type AdmissionAbuseEvent =
  | {
      readonly name: 'qos.abuse_detected';
      readonly actor: string;
      /** The violations that crossed the threshold, oldest first: kind and wall-clock epoch ms. */
      readonly violations: readonly {
        readonly kind: string;
        readonly at: number;
        readonly detail?: string;
      }[];
      readonly windowMs: number;
      readonly cooldownMs: number;
    }
  | {
      readonly name: 'qos.spike_detected';
      readonly actor: string;
      readonly count: number;
      readonly baseline: number;
      readonly threshold: number;
      readonly intervalMs: number;
    };

/** Which limit decided, for `thunderpac_qos_decisions_total{limit,result}` (bounded). */
export type DecisionLimit = 'cooldown' | 'breaker' | 'tier' | 'resource' | 'quota' | 'queue';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

interface ResourceEntry {
  readonly def: string;
  readonly spec: ResourceLimit;
  readonly limiter: ReturnType<typeof perWindowLimiter>;
}

/** Queueing of an actor without a tier. */
const NO_TIER = { weight: 1, priority: 'medium' } as const;

/** Keys of per-actor state (quota use, violations) kept at most; the oldest leave first. */
export const MAX_ACTOR_STATE = 100_000;

function tierDef(policy: QosPolicy, tier: string): string {
  return JSON.stringify([policy.algorithm, policy.tiers[tier]!.rate]);
}

function resourceDef(policy: QosPolicy, r: ResourceLimit): string {
  return JSON.stringify([policy.algorithm, r.kind, r.name, r.perActor, r.limits]);
}

function giveBackAll(permits: [CircuitBreaker, number][]): void {
  for (const [b, p] of permits) b.abandon(p);
  permits.length = 0;
}

/** End of the UTC-aligned period of `periodMs` running at `wall`. */
function periodEndAt(wall: number, periodMs: number): number {
  return Math.floor(wall / periodMs) * periodMs + periodMs;
}

/** The quota key of an actor in a tier (tier names have no ':', see config.ts). */
function quotaKey(tier: string, actor: string): string {
  return `q:${tier}:${actor}`;
}

function tierOfQuotaKey(key: string): string {
  const end = key.indexOf(':', 2);
  return end < 0 ? '' : key.slice(2, end);
}

/** Plan of a key whose tier no longer has a quota: its period ended long ago (swept as stale). */
const EXPIRED_PLAN = quotaPlan({ limit: 1, period: { everyMs: 1 } });

/** Each tier's quota as a quota plan: `limit` per `periodMs`, periods at UTC multiples of it. */
function quotaPlansOf(policy: QosPolicy): Map<string, QuotaPlan> {
  const out = new Map<string, QuotaPlan>();
  for (const [name, t] of Object.entries(policy.tiers)) {
    if (t.quota !== null)
      out.set(
        name,
        quotaPlan({ limit: t.quota.limit, period: { everyMs: t.quota.periodMs } }, `tiers.${name}.quota`),
      );
  }
  return out;
}

function windowOf(periodMs: number): string {
  if (periodMs === 1000) return '1s';
  if (periodMs === 60_000) return '1m';
  if (periodMs === 3_600_000) return '1h';
  return `${periodMs}ms`;
}

export class Admission {
  #policy: QosPolicy;
  readonly #clock: Clock;
  readonly #wall: () => number;
  readonly #defaultInFlight: number;
  readonly #defaultQueued: number;
  #tiers = new Map<string, { def: string; limiter: KeyedLimiter }>();
  #resources: ResourceEntry[] = [];
  /** Tier quotas, keyed `q:<tier>:<actor>` (the plan follows the tier's quota in the policy). */
  readonly #quotas: Quotas;
  #quotaPlans = new Map<string, QuotaPlan>();
  /** qos.global: the shared Redis connection and each tier's GCRA in it (empty: local only). */
  #global: { def: string; store: GlobalStore } | null = null;
  #globalTiers = new Map<string, { def: string; limiter: RedisGcraLimiter }>();
  #globalQuotas = new Map<string, { def: string; quota: RedisQuota }>();
  /** Violations, cooldowns and spikes (src/qos/abuse); null when the policy has no abuse section. */
  #abuse: AbuseDetector | null = null;
  #abuseDef = '';
  readonly #abuseListeners: ((e: AdmissionAbuseEvent) => void)[] = [];
  /** Cooldowns started (actor → monotonic end), for `state()` only; bounded. */
  readonly #cooldowns = new Map<string, number>();
  #queue!: PriorityFairQueue<Waiter>;
  #queueDef = '';
  #breakers: CircuitBreakers | null = null;
  #breakersDef = '';
  #adaptive: ConcurrencyLimiter | null = null;
  #adaptiveDef = '';
  #running = 0;
  #closed = false;
  /** Decisions by `${limit}:${allowed|refused}` (monotonic). */
  readonly decisions = new Map<string, number>();
  /** Cooldowns started (monotonic). */
  abuseDetected = 0;
  /** Spikes detected (monotonic). */
  spikesDetected = 0;
  /** Global tier decisions by source: redis, lease, refused-until, local-fallback, unavailable. */
  readonly globalDecisions = new Map<string, number>();

  constructor(policy: QosPolicy, options: AdmissionOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#wall = options.wallClock ?? Date.now;
    this.#defaultInFlight = options.maxInFlight ?? 64;
    this.#defaultQueued = options.maxQueued ?? 1024;
    this.#policy = policy;
    this.#quotaPlans = quotaPlansOf(policy);
    this.#quotas = new Quotas({
      plan: (key) => this.#quotaPlans.get(tierOfQuotaKey(key)) ?? EXPIRED_PLAN,
      ...(options.quotaFile !== undefined && { file: options.quotaFile }),
      durability: options.quotaDurability ?? 'write',
      wallClock: { now: this.#wall },
    });
    this.reload(policy);
  }

  get policy(): QosPolicy {
    return this.#policy;
  }

  /** Executions admitted and not yet released. */
  get running(): number {
    return this.#running;
  }

  /** Executions waiting in the queue. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The concurrency limit now (adaptive or fixed). */
  get concurrencyLimit(): number {
    return this.#adaptive?.limit ?? this.#policy.queue.maxInFlight ?? this.#defaultInFlight;
  }

  get queue(): PriorityFairQueue<unknown> {
    return this.#queue as PriorityFairQueue<unknown>;
  }

  get breakers(): CircuitBreakers | null {
    return this.#breakers;
  }

  /** Apply a new policy, keeping the state of what did not change (see the module comment). */
  reload(policy: QosPolicy): void {
    const clock = this.#clock;
    const tiers = new Map<string, { def: string; limiter: KeyedLimiter }>();
    for (const name of Object.keys(policy.tiers)) {
      const def = tierDef(policy, name);
      const old = this.#tiers.get(name);
      tiers.set(
        name,
        old?.def === def
          ? old
          : {
              def,
              limiter: createLimiter(policy.tiers[name]!.rate, policy.algorithm, clock, {}, `tiers.${name}`),
            },
      );
    }
    const resources = policy.resources.map((spec, i): ResourceEntry => {
      const def = resourceDef(policy, spec);
      const old = this.#resources.find((r) => r.def === def);
      return (
        old ?? {
          def,
          spec,
          limiter: perWindowLimiter(spec.limits, policy.algorithm, clock, {}, `resources[${i}]`),
        }
      );
    });
    this.#policy = policy;
    this.#quotaPlans = quotaPlansOf(policy);
    this.#tiers = tiers;
    this.#resources = resources;
    this.#reloadQueue(policy.queue);
    this.#reloadBreakers(policy.breakers);
    this.#reloadAdaptive(policy.adaptive);
    this.#reloadAbuse(policy.abuse);
    this.#reloadGlobal(policy);
  }

  /** New Redis settings: a new connection (the old one closed); a changed tier: a new GCRA on it. */
  #reloadGlobal(policy: QosPolicy): void {
    const g = policy.global;
    const def = JSON.stringify(g === null ? null : [g.redisUrl, g.failMode, g.commandTimeoutMs, g.keyPrefix]);
    if (def !== (this.#global?.def ?? 'null')) {
      const old = this.#global;
      this.#global = null;
      this.#globalTiers = new Map();
      this.#globalQuotas = new Map();
      if (old !== null) void old.store.close();
      if (g !== null) {
        const store = new GlobalStore(
          {
            url: g.redisUrl,
            failMode: g.failMode,
            ...(g.commandTimeoutMs !== undefined && { commandTimeoutMs: g.commandTimeoutMs }),
            ...(g.keyPrefix !== undefined && { keyPrefix: g.keyPrefix }),
          },
          'global',
        );
        store.connect().catch(() => {}); // until it is ready, checks decide as failMode says
        this.#global = { def, store };
      }
    }
    const global = this.#global;
    if (global === null || g === null) return;
    const tiers = new Map<string, { def: string; limiter: RedisGcraLimiter }>();
    for (const [name, t] of Object.entries(policy.tiers)) {
      const burst = t.rate.burst ?? t.rate.limit;
      const leaseSize = Math.min(burst, g.leaseSize ?? Math.min(10, Math.max(1, Math.floor(burst / 10))));
      const tdef = JSON.stringify([t.rate, leaseSize, g.leaseTtlMs]);
      const old = this.#globalTiers.get(name);
      tiers.set(
        name,
        old?.def === tdef
          ? old
          : {
              def: tdef,
              limiter: new RedisGcraLimiter(
                global.store,
                {
                  limit: t.rate.limit,
                  periodMs: t.rate.periodMs,
                  burst,
                  leaseSize,
                  ...(g.leaseTtlMs !== undefined && { leaseTtlMs: g.leaseTtlMs }),
                  name: `tier.${name}`,
                  clock: this.#clock,
                },
                `global.tiers.${name}`,
              ),
            },
      );
    }
    this.#globalTiers = tiers;
    const quotas = new Map<string, { def: string; quota: RedisQuota }>();
    if (g.quotas !== false) {
      for (const [name, t] of Object.entries(policy.tiers)) {
        if (t.quota === null) continue;
        const qdef = JSON.stringify(t.quota);
        const old = this.#globalQuotas.get(name);
        quotas.set(
          name,
          old?.def === qdef
            ? old
            : {
                def: qdef,
                quota: new RedisQuota(
                  global.store,
                  { limit: t.quota.limit, period: { everyMs: t.quota.periodMs }, name: `quota.${name}` },
                  `global.tiers.${name}.quota`,
                ),
              },
        );
      }
    }
    this.#globalQuotas = quotas;
  }

  /**
   * qos.global: wait (at most `timeoutMs`) until Redis answers a PING; false when it does not
   * (checks then decide as failMode says until it does). True without a global section.
   */
  async connectGlobal(timeoutMs = 2_000): Promise<boolean> {
    const g = this.#global;
    if (g === null) return true;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (g.store.ready) {
        try {
          await g.store.command('PING');
          return true;
        } catch {
          // not yet
        }
      }
      if (performance.now() >= deadline || this.#global !== g) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** qos.global's health for metrics: null without a global section. */
  globalStatus(): {
    up: boolean;
    failMode: 'open' | 'closed';
    roundTrips: number;
    errors: number;
    degradedTransitions: number;
    leaseSizes: Record<string, number>;
  } | null {
    const g = this.#global;
    const p = this.#policy.global;
    if (g === null || p === null) return null;
    const c = g.store.counters;
    const leaseSizes: Record<string, number> = {};
    for (const [name, t] of this.#globalTiers) leaseSizes[name] = t.limiter.leaseSize;
    return {
      up: g.store.ready && c.degraded === 0,
      failMode: p.failMode,
      roundTrips: c.roundTrips,
      errors: c.errors,
      degradedTransitions: c.degradedTransitions,
      leaseSizes,
    };
  }

  /** Follow abuse detection: each cooldown started and each spike (listeners must not throw). */
  onAbuse(listener: (e: AdmissionAbuseEvent) => void): () => void {
    this.#abuseListeners.push(listener);
    return () => {
      const i = this.#abuseListeners.indexOf(listener);
      if (i >= 0) this.#abuseListeners.splice(i, 1);
    };
  }

  /** Same settings: the detector (violations, cooldowns, spike baselines) is kept; changed: fresh. */
  #reloadAbuse(a: AbusePolicy | null): void {
    const def = JSON.stringify(a);
    if (def === this.#abuseDef) return;
    this.#abuseDef = def;
    this.#cooldowns.clear();
    if (a === null) {
      this.#abuse = null;
      return;
    }
    const s = a.spike ?? null;
    const detector = new AbuseDetector(
      {
        clock: this.#clock,
        wallClock: { now: this.#wall },
        violations: { windowMs: a.windowMs, maxViolations: a.violations, cooldownMs: a.cooldownMs },
        spike:
          s === null
            ? false
            : {
                intervalMs: s.intervalMs,
                baselineIntervals: s.baselineIntervals,
                spikeFactor: s.factor,
                minBaseline: s.minBaseline,
              },
      },
      'abuse',
    );
    detector.on(ABUSE_DETECTED, (e) => {
      this.abuseDetected++;
      this.#bounded(this.#cooldowns);
      this.#cooldowns.set(e.actor, e.blockedUntilMs);
      const violations = e.violations.map((v) =>
        v.detail === undefined ? { kind: v.kind, at: v.at } : { kind: v.kind, at: v.at, detail: v.detail },
      );
      const ch = channels.qosAbuseDetected;
      if (ch.hasSubscribers)
        ch.publish({
          actor: e.actor,
          violations: violations.length,
          kinds: violations.map((v) => v.kind),
          windowMs: a.windowMs,
          cooldownMs: a.cooldownMs,
        });
      this.#emitAbuse({
        name: 'qos.abuse_detected',
        actor: e.actor,
        violations,
        windowMs: a.windowMs,
        cooldownMs: a.cooldownMs,
      });
    });
    detector.on(SPIKE_DETECTED, (e) => {
      this.spikesDetected++;
      this.#emitAbuse({
        name: 'qos.spike_detected',
        actor: e.actor,
        count: e.count,
        baseline: e.baseline,
        threshold: e.threshold,
        intervalMs: e.intervalMs,
      });
    });
    this.#abuse = detector;
  }

  #emitAbuse(e: AdmissionAbuseEvent): void {
    for (const l of this.#abuseListeners) {
      try {
        l(e);
      } catch {
        // a listener's failure never changes a decision
      }
    }
  }

  #reloadQueue(q: QueuePolicy): void {
    const def = JSON.stringify([q.classes, q.codel, this.#defaultQueued]);
    if (def === this.#queueDef) return;
    const classes: Record<string, object> = {};
    for (const p of PRIORITIES) {
      const c = q.classes[p] ?? {};
      classes[p] = { maxSize: c.maxSize ?? this.#defaultQueued, ...c, codel: q.codel ?? false };
    }
    const next = new PriorityFairQueue<Waiter>(this.#clock, {
      classes,
      weight: (actor) => this.#weightOf(actor),
      onDrop: (w, err) => {
        this.#count('queue', false);
        this.#publishBackpressure('queue', err.reason, err.actor);
        w.reject(err);
      },
    });
    const old = this.#queue as PriorityFairQueue<Waiter> | undefined;
    this.#queue = next;
    this.#queueDef = def;
    // Items waiting keep waiting, in the order the old queue serves them (moved items restart
    // their sojourn time); those past the new, smaller bounds are refused.
    if (old !== undefined) {
      const moved: Waiter[] = [];
      for (let w = old.dequeue(); w !== undefined; w = old.dequeue()) moved.push(w);
      for (const w of moved) {
        try {
          this.#pending.get(w)?.(next);
        } catch (err) {
          this.#pending.delete(w);
          w.reject(err as Error); // the new bounds are smaller than what waits
        }
      }
    }
  }

  /** Re-enqueue hooks of moved waiters (their actor, class and deadline live in the closure). */
  readonly #pending = new Map<Waiter, (q: PriorityFairQueue<Waiter>) => void>();

  #reloadBreakers(b: BreakerPolicy | null): void {
    const def = JSON.stringify(b);
    if (def === this.#breakersDef) return;
    this.#breakersDef = def;
    if (b === null) {
      this.#breakers = null;
      return;
    }
    const { per: _per, ...options } = b;
    this.#breakers = new CircuitBreakers(this.#clock, options);
    this.#breakers.subscribe((to, from, key) => {
      if (to === 'open') this.#publishBackpressure('breaker', `${from}->open`, key);
    });
  }

  #reloadAdaptive(a: AdaptivePolicy | null): void {
    const def = JSON.stringify(a);
    if (def === this.#adaptiveDef) return;
    this.#adaptiveDef = def;
    if (a === null) {
      this.#adaptive = null;
      return;
    }
    const { algorithm, ...bounds } = a;
    this.#adaptive = new ConcurrencyLimiter(
      algorithm === 'gradient' ? new GradientLimit(bounds) : new AimdLimit(bounds),
    );
  }

  #weightOf(actorId: string): number {
    // The queue asks by actor id; the tier was resolved at admit and remembered for this.
    return this.#weights.get(actorId) ?? 1;
  }
  readonly #weights = new Map<string, number>();

  #count(limit: DecisionLimit, allowed: boolean): void {
    const k = `${limit}:${allowed ? 'allowed' : 'refused'}`;
    this.decisions.set(k, (this.decisions.get(k) ?? 0) + 1);
  }

  #publishBackpressure(kind: string, reason: string, key: string): void {
    const ch = channels.qosBackpressureApplied;
    if (ch.hasSubscribers) ch.publish({ kind, reason, key });
  }

  /**
   * The policy checks without the queue (1–5 of the module comment): throws QosRefusal, or
   * returns the tier and the breaker permits taken (give them back through a Permit).
   */
  check(req: AdmissionRequest): { tier: string | null; breakers: [CircuitBreaker, number][] } {
    const permits = this.#checkFirst(req);
    const tier = tierOf(this.#policy, req.actor);
    this.#checkTierLocal(req.actor.id, tier, permits);
    this.#checkRest(req, tier, permits);
    return { tier, breakers: permits };
  }

  /** Steps 1–2: cooldown, then the breakers' permits (given back by whoever refuses later). */
  #checkFirst(req: AdmissionRequest): [CircuitBreaker, number][] {
    if (this.#closed) throw new QueueDropError('closed', 'medium', req.actor.id, 'admission is closed');
    const policy = this.#policy;
    const actor = req.actor.id;

    const abuse = this.#abuse;
    if (abuse !== null) {
      // Requests of an actor in cooldown are refused before they count toward a spike.
      let left = abuse.blockedForMs(actor);
      if (left <= 0 && abuse.spikes !== null) {
        abuse.request(actor); // a spike is a violation; the one past the threshold starts a cooldown
        left = abuse.blockedForMs(actor);
      }
      if (left > 0) {
        this.#count('cooldown', false);
        throw new QosRefusal(
          'ACTOR_COOLDOWN',
          `${actor} is cooling down after repeated violations`,
          429,
          left,
          {
            actor,
            cooldown_until_ms: Math.ceil(left),
          },
        );
      }
    }

    const permits: [CircuitBreaker, number][] = [];
    const giveBack = () => {
      for (const [b, p] of permits) b.abandon(p);
    };
    if (this.#breakers !== null && policy.breakers !== null) {
      for (const per of policy.breakers.per) {
        const name = per === 'backend' ? req.backend : req.build;
        if (name === undefined) continue;
        const b = this.#breakers.get(`${per}:${name}`);
        const p = b.acquire();
        if (p < 0) {
          giveBack();
          this.#count('breaker', false);
          throw new QosRefusal(
            'CIRCUIT_OPEN',
            `the circuit for ${per} ${name} is ${b.state}`,
            503,
            b.retryAfterMs,
            {
              key: b.key,
              state: b.state,
            },
          );
        }
        permits.push([b, p]);
      }
      this.#count('breaker', true);
    }

    return permits;
  }

  /** Step 3 on this host: the actor's tier limit. */
  #checkTierLocal(actor: string, tier: string | null, permits: [CircuitBreaker, number][]): void {
    if (tier === null) return;
    const key = actorKey(actor);
    const d = this.#tiers.get(tier)!.limiter.check(key);
    this.#tierDecided(actor, tier, key, d, permits);
  }

  /** Step 3 across daemons (qos.global): the tier's limit in Redis, leases as the fast path. */
  async #checkTierGlobal(
    actor: string,
    tier: string | null,
    permits: [CircuitBreaker, number][],
  ): Promise<void> {
    if (tier === null) return;
    const g = this.#globalTiers.get(tier);
    if (g === undefined) return this.#checkTierLocal(actor, tier, permits);
    const key = actorKey(actor);
    let d: GlobalDecision;
    try {
      d = await g.limiter.check(key);
    } catch (err) {
      giveBackAll(permits);
      throw err;
    }
    this.globalDecisions.set(d.source, (this.globalDecisions.get(d.source) ?? 0) + 1);
    if (!d.allowed && d.source === 'unavailable') {
      giveBackAll(permits);
      this.#count('tier', false);
      this.#publishCheck(key, tier, false, 0);
      // Not the actor's fault: no violation.
      throw new QosRefusal(
        'QOS_UNAVAILABLE',
        'the shared rate limit store (Redis) cannot be reached and qos.global.failMode is "closed"',
        503,
        d.retryAfterMs,
        { key, tier, failMode: 'closed' },
      );
    }
    this.#tierDecided(actor, tier, key, d, permits);
  }

  #tierDecided(
    actor: string,
    tier: string,
    key: string,
    d: { allowed: boolean; remaining: number; limit: number; retryAfterMs: number },
    permits: [CircuitBreaker, number][],
  ): void {
    this.#publishCheck(key, tier, d.allowed, d.remaining);
    if (!d.allowed) {
      giveBackAll(permits);
      const periodMs = this.#policy.tiers[tier]!.rate.periodMs;
      this.#refuseRate('tier', key, d.limit, periodMs, d.retryAfterMs, actor, `tier ${tier}`);
    }
    this.#count('tier', true);
  }

  /** Steps 4–5: resource limits, then the quota. */
  #checkRest(
    req: AdmissionRequest,
    tier: string | null,
    permits: [CircuitBreaker, number][],
    quota = true,
  ): void {
    const actor = req.actor.id;
    const key = actorKey(actor);
    const giveBack = () => giveBackAll(permits);
    for (const r of this.#resources) {
      const name = this.#resourceName(r.spec.kind, req);
      if (name === undefined || (r.spec.name !== '*' && r.spec.name !== name)) continue;
      const rk = r.spec.perActor
        ? actorResourceKey(actor, `${r.spec.kind}:${name}`)
        : resourceKey(`${r.spec.kind}:${name}`);
      const rd = r.limiter.check(rk);
      this.#publishCheck(rk, `${r.spec.kind}:${r.spec.name}`, rd.allowed, rd.remaining);
      if (!rd.allowed) {
        giveBack();
        this.#refuseRate(
          'resource',
          rk,
          rd.limit,
          this.#windowOfLimit(r.spec, rd.limit),
          rd.retryAfterMs,
          actor,
          `${r.spec.kind} ${name}`,
        );
      }
      this.#count('resource', true);
    }

    if (quota) this.#consumeQuota(tier, actor, key, giveBack);
  }

  /** Step 5 across daemons (qos.global.quotas): one unit of the tier's quota in Redis. */
  async #consumeQuotaGlobal(
    tier: string | null,
    actor: string,
    permits: [CircuitBreaker, number][],
  ): Promise<void> {
    const q = tier === null ? undefined : this.#globalQuotas.get(tier);
    const quota = tier === null ? null : this.#policy.tiers[tier]!.quota;
    const key = actorKey(actor);
    if (q === undefined || quota === null || tier === null) {
      this.#consumeQuota(tier, actor, key, () => giveBackAll(permits));
      return;
    }
    let d: Awaited<ReturnType<RedisQuota['consume']>>;
    try {
      d = await q.quota.consume(quotaKey(tier, actor), 1);
    } catch (err) {
      giveBackAll(permits);
      throw err;
    }
    this.globalDecisions.set(`quota-${d.source}`, (this.globalDecisions.get(`quota-${d.source}`) ?? 0) + 1);
    const wall = this.#wall();
    const resetsAt = d.resetsAt ?? periodEndAt(wall, quota.periodMs);
    if (!d.allowed) {
      giveBackAll(permits);
      this.#count('quota', false);
      if (d.source === 'unavailable') {
        throw new QosRefusal(
          'QOS_UNAVAILABLE',
          'the shared quota store (Redis) cannot be reached and qos.global.failMode is "closed"',
          503,
          this.#global?.store.retryHintMs ?? 1000,
          { key, tier, failMode: 'closed' },
        );
      }
      this.#violation(actor, 'quota_exceeded', `quota ${d.used}/${d.limit}`);
      throw new QosRefusal(
        'QUOTA_EXCEEDED',
        `${actor} used its quota of ${d.limit} per ${windowOf(quota.periodMs)} (tier ${tier})`,
        429,
        resetsAt - wall,
        {
          key,
          limit: d.limit,
          used: d.used,
          period_ms: quota.periodMs,
          resets_at: new Date(resetsAt).toISOString(),
          global: true,
        },
      );
    }
    this.#count('quota', true);
    const ch = channels.qosQuotaConsumed;
    if (ch.hasSubscribers) ch.publish({ actor, tier, amount: 1, used: d.used, limit: d.limit, resetsAt });
  }

  /** Step 5: one unit of the tier's quota, all or nothing (a refusal spends nothing). */
  #consumeQuota(tier: string | null, actor: string, key: string, giveBack: () => void): void {
    const quota = tier === null ? null : this.#policy.tiers[tier]!.quota;
    if (tier === null || quota === null) return;
    let d: ReturnType<Quotas['tryConsumeSync']>;
    try {
      d = this.#quotas.tryConsumeSync(quotaKey(tier, actor), 1);
    } catch (err) {
      giveBack();
      if (!(err instanceof QuotaKeysFullError)) throw err;
      // Never admitted untracked: refused until keys' periods end.
      this.#count('quota', false);
      throw new QosRefusal('QOS_UNAVAILABLE', err.message, 503, 1000, { key, tier });
    }
    const resetsAt = d.resetsAt ?? this.#wall() + quota.periodMs;
    if (!d.allowed) {
      giveBack();
      this.#count('quota', false);
      this.#violation(actor, 'quota_exceeded', `quota ${d.used}/${d.limit}`);
      throw new QosRefusal(
        'QUOTA_EXCEEDED',
        `${actor} used its quota of ${d.limit} per ${windowOf(quota.periodMs)} (tier ${tier})`,
        429,
        d.retryAfterMs,
        {
          key,
          limit: d.limit,
          used: d.used,
          period_ms: quota.periodMs,
          resets_at: new Date(resetsAt).toISOString(),
        },
      );
    }
    this.#count('quota', true);
    const ch = channels.qosQuotaConsumed;
    if (ch.hasSubscribers) ch.publish({ actor, tier, amount: 1, used: d.used, limit: d.limit, resetsAt });
  }

  #windowOfLimit(spec: ResourceLimit, limit: number): number {
    const l = spec.limits;
    if (l.perSecond === limit) return 1000;
    if (l.perMinute === limit) return 60_000;
    return 3_600_000;
  }

  #resourceName(kind: ResourceKind, req: AdmissionRequest): string | undefined {
    return kind === 'backend' ? req.backend : kind === 'build' ? req.build : req.model;
  }

  #publishCheck(key: string, limit: string, allowed: boolean, remaining: number): void {
    const ch = channels.qosRateLimitCheck;
    if (ch.hasSubscribers) ch.publish({ key, limit, allowed, remaining });
  }

  #refuseRate(
    which: 'tier' | 'resource',
    key: string,
    limit: number,
    windowMs: number,
    retryAfterMs: number,
    actor: string,
    what: string,
  ): never {
    this.#count(which, false);
    const ch = channels.qosRateLimitExceeded;
    if (ch.hasSubscribers) ch.publish({ key, limit, windowMs, retryAfterMs, actor });
    this.#violation(actor, 'rate_limited', `${what}: ${limit} per ${windowOf(windowMs)}`);
    throw new QosRefusal(
      'RATE_LIMITED',
      `rate limit of ${what} reached: ${limit} per ${windowOf(windowMs)}`,
      429,
      retryAfterMs,
      {
        key,
        limit,
        window: windowOf(windowMs),
        window_ms: windowMs,
      },
    );
  }

  /** Counts a violation; past the abuse threshold the actor cools down (qos.abuse_detected). */
  #violation(actor: string, kind: ViolationKind, detail: string): void {
    this.#abuse?.violation(actor, kind, detail);
  }

  #bounded(m: Map<string, unknown>): void {
    if (m.size >= MAX_ACTOR_STATE) {
      const first = m.keys().next();
      if (!first.done) m.delete(first.value);
    }
  }

  /** Policy checks, then a slot now or a place in the queue. */
  async admit(req: AdmissionRequest): Promise<Permit> {
    let tier: string | null;
    let breakers: [CircuitBreaker, number][];
    if (this.#global === null) ({ tier, breakers } = this.check(req));
    else {
      breakers = this.#checkFirst(req);
      tier = tierOf(this.#policy, req.actor);
      await this.#checkTierGlobal(req.actor.id, tier, breakers);
      if (this.#closed) {
        giveBackAll(breakers);
        throw new QueueDropError('closed', 'medium', req.actor.id, 'admission is closed');
      }
      this.#checkRest(req, tier, breakers, false);
      await this.#consumeQuotaGlobal(tier, req.actor.id, breakers);
    }
    const t = tier === null ? NO_TIER : this.#policy.tiers[tier]!;
    const permit = this.#permit(tier, t.priority, breakers);
    if (this.#tryTakeSlot()) return permit;
    this.#weights.set(req.actor.id, t.weight);
    const deadlineMs = this.#policy.queue.deadlineMs;
    const deadline = deadlineMs === null ? undefined : this.#clock.now() + deadlineMs;
    try {
      await new Promise<void>((resolve, reject) => {
        const w: Waiter = { resolve, reject };
        const enqueue = (q: PriorityFairQueue<Waiter>) =>
          q.enqueue(w, {
            actor: req.actor.id,
            priority: t.priority,
            ...(deadline !== undefined && { deadline }),
          });
        try {
          enqueue(this.#queue);
        } catch (err) {
          this.#count('queue', false);
          if (err instanceof QueueDropError) this.#publishBackpressure('queue', err.reason, req.actor.id);
          reject(err);
          return;
        }
        this.#pending.set(w, enqueue);
        const ch = channels.qosQueueEnqueued;
        if (ch.hasSubscribers)
          ch.publish({ actor: req.actor.id, priority: t.priority, depth: this.#queue.length });
      });
    } catch (err) {
      for (const [b, p] of breakers) b.abandon(p);
      throw err;
    }
    this.#count('queue', true);
    return permit;
  }

  #tryTakeSlot(): boolean {
    if (this.#adaptive !== null) {
      if (!this.#adaptive.tryAcquire()) return false;
    } else if (this.#running >= this.concurrencyLimit) return false;
    this.#running++;
    return true;
  }

  #permit(tier: string | null, priority: Priority, breakers: [CircuitBreaker, number][]): Permit {
    let done = false;
    const finish = (sample: [number, boolean] | null) => {
      if (done) return;
      done = true;
      for (const [b, p] of breakers) {
        if (sample) b.release(p, sample[0], sample[1]);
        else b.abandon(p);
      }
      this.#releaseSlot(sample);
    };
    return {
      tier,
      priority,
      release: (durationMs, ok) => finish([durationMs, ok]),
      abandon: () => finish(null),
    };
  }

  /** A slot freed: it passes to the next waiter (if any), else is given back. */
  #releaseSlot(sample: [number, boolean] | null): void {
    if (this.#adaptive !== null) {
      if (sample) this.#adaptive.release(sample[0], sample[1]);
      else this.#adaptive.abandon();
    }
    this.#running--;
    while (this.#queue.length > 0 && this.#tryTakeSlot()) {
      const w = this.#queue.dequeue();
      if (w === undefined) {
        this.#giveBackSlot();
        break;
      }
      this.#pending.delete(w);
      const ch = channels.qosQueueDequeued;
      if (ch.hasSubscribers) ch.publish({ depth: this.#queue.length });
      w.resolve();
    }
  }

  #giveBackSlot(): void {
    this.#running--;
    this.#adaptive?.abandon();
  }

  /** Refuse new admissions and drop every waiter ('closed'). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.close();
    this.#pending.clear();
    this.#quotas.close(); // flushes and releases the journal's lock
    const g = this.#global;
    this.#global = null;
    this.#globalTiers = new Map();
    this.#globalQuotas = new Map();
    if (g !== null) await g.store.close();
  }

  /** Bucket level of the actor's tier limit and its quota use now (for GET /v1/qos). */
  actorState(actor: QosActor): Record<string, unknown> {
    const policy = this.#policy;
    const tier = tierOf(policy, actor);
    const limiter = tier === null ? null : this.#tiers.get(tier)!.limiter;
    const nowUs = Math.round(this.#clock.now() * 1000);
    const slot = limiter === null ? -1 : limiter.slotFor(actorKey(actor.id), nowUs);
    const quota = tier === null ? null : policy.tiers[tier]!.quota;
    const use = tier === null || quota === null ? null : this.#quotas.getSync(quotaKey(tier, actor.id));
    const abuse = this.#abuse;
    const global = tier === null ? undefined : this.#globalTiers.get(tier);
    return {
      actor: actor.id,
      tier,
      bucket:
        global !== undefined
          ? {
              key: actorKey(actor.id),
              limit: global.limiter.limit,
              global: true,
              leaseSize: global.limiter.leaseSize,
              leasedUnits: global.limiter.leasedUnits(actorKey(actor.id)),
            }
          : limiter === null
            ? null
            : {
                key: actorKey(actor.id),
                limit: limiter.limit,
                remaining: slot < 0 ? 0 : limiter.remainingSlot(slot, nowUs),
                resetAfterMs: slot < 0 ? 0 : limiter.resetAfterUsSlot(slot, nowUs) / 1000,
              },
      quota:
        quota === null
          ? null
          : {
              limit: use!.limit,
              used: use!.used,
              remaining: use!.remaining,
              resets_at: new Date(use!.resetsAt ?? this.#wall() + quota.periodMs).toISOString(),
            },
      cooldownMs: abuse === null ? 0 : Math.ceil(abuse.blockedForMs(actor.id)),
      violations: abuse === null ? 0 : abuse.violationTracker.violations(actor.id).length,
    };
  }

  /** actorState, with the quota read from Redis when qos.global keeps it there. */
  async actorStateShared(actor: QosActor): Promise<Record<string, unknown>> {
    const out = this.actorState(actor);
    const tier = out.tier as string | null;
    const q = tier === null ? undefined : this.#globalQuotas.get(tier);
    if (q === undefined || tier === null) return out;
    const d = await q.quota.get(quotaKey(tier, actor.id));
    const periodMs = this.#policy.tiers[tier]?.quota?.periodMs ?? 0;
    return {
      ...out,
      quota: {
        limit: d.limit,
        used: d.used,
        remaining: d.remaining,
        resets_at: new Date(d.resetsAt ?? periodEndAt(this.#wall(), periodMs)).toISOString(),
        global: true,
        source: d.source,
      },
    };
  }

  /** Live state: concurrency, queue classes, breakers not closed (bounded), cooldowns. */
  state(): Record<string, unknown> {
    const queue: Record<string, unknown> = {};
    for (const p of PRIORITIES) queue[p] = { ...this.#queue.counts(p) };
    const breakers: Record<string, string> = {};
    const breakerCounts = { closed: 0, open: 0, 'half-open': 0 };
    for (const [key, state] of this.#breakers?.states() ?? []) {
      breakerCounts[state]++;
      if (state !== 'closed' && Object.keys(breakers).length < 100) breakers[key] = state;
    }
    return {
      running: this.#running,
      concurrencyLimit: this.concurrencyLimit,
      queued: this.#queue.length,
      queue,
      breakers: { counts: breakerCounts, notClosed: breakers },
      cooldowns: [...this.#cooldowns.entries()]
        .filter(([, until]) => until > this.#clock.now())
        .slice(0, 100)
        .map(([actor, until]) => ({ actor, remainingMs: Math.ceil(until - this.#clock.now()) })),
      decisions: Object.fromEntries(this.decisions),
      abuseDetected: this.abuseDetected,
      spikesDetected: this.spikesDetected,
    };
  }

  /** Per tier with a quota: units used in the current period and the sum of its actors' limits. */
  *quotaUtilization(): IterableIterator<{ tier: string; used: number; limit: number }> {
    const by = new Map<string, { used: number; actors: number }>();
    for (const q of this.#quotas.live()) {
      const t = tierOfQuotaKey(q.key);
      const b = by.get(t) ?? { used: 0, actors: 0 };
      b.used += q.used;
      b.actors++;
      by.set(t, b);
    }
    for (const [tierName, t] of Object.entries(this.#policy.tiers)) {
      if (t.quota === null) continue;
      const b = by.get(tierName) ?? { used: 0, actors: 0 };
      yield { tier: tierName, used: b.used, limit: t.quota.limit * Math.max(b.actors, 1) };
    }
  }
}
