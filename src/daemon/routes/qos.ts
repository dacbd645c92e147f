/**
 * QoS over HTTP: `GET /v1/qos` (admin, operator: `qos.read`) shows the policy in force and its
 * live state — concurrency, queue depth and counts per class, breakers not closed, cooldowns,
 * decisions — and, with `?actor=uid:1000`, that actor's bucket level, quota and cooldown.
 * `POST /v1/qos/reload` (admin: `qos.reload`) and SIGHUP re-read the config file's `qos`
 * section and apply it without a restart (Admission.reload keeps the state of every limit
 * whose definition did not change); a bad section is refused (422 naming file:line:col and the
 * field) and the policy in force stays.
 *
 * Metrics (on the daemon's registry, read at scrape time): thunderpac_qos_decisions_total
 * {limit,result}, thunderpac_qos_quota_utilization{tier}, thunderpac_qos_queue_depth
 * {priority}, thunderpac_qos_shed_total{priority,reason}, thunderpac_qos_breakers{state},
 * thunderpac_qos_breaker_state{key} (non-closed breakers only, at most 100 keys: 1 open,
 * 0.5 half-open), thunderpac_qos_concurrency_limit, thunderpac_qos_cooldowns_total,
 * thunderpac_qos_spikes_total; with qos.global: thunderpac_qos_global_redis_up,
 * thunderpac_qos_global_decisions_total{source}, thunderpac_qos_global_fallbacks_total{mode}.
 * thunderpac_qos_reloads_total{result}.
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import type { Admission } from '../../qos/admission.js';
import { KERNEL_RULE_MAPS, syncKernelRules } from '../../qos/kernel-sync.js';
import type { QosPolicy } from '../../qos/policy.js';
import { PRIORITIES } from '../../qos/queues/index.js';
import { ThunderpacError } from '../../runtime/errors.js';
import { ConfigError, ConfigSource, readQos } from '../config.js';
import type { DaemonContext, RoutePlugin } from '../context.js';
import { DaemonExecutions } from '../executions.js';

/** The reload was refused: the file's `qos` section is invalid or unreadable. */
export class QosReloadError extends ThunderpacError {
  readonly statusCode = 422;
  readonly path: string;
  constructor(message: string, path: string) {
    super('QOS_RELOAD', message);
    this.path = path;
  }
}

/** Something that follows the policy on reload (the kernel sync registers here). */
export type QosReloadListener = (policy: QosPolicy) => void | Promise<void>;

const reloadListeners = new WeakMap<Admission, QosReloadListener[]>();

/** Call `listener(policy)` after each successful reload of `admission`'s policy. */
export function onQosReload(admission: Admission, listener: QosReloadListener): void {
  const list = reloadListeners.get(admission) ?? [];
  list.push(listener);
  reloadListeners.set(admission, list);
}

export function admissionOf(ctx: DaemonContext): Admission | null {
  return ctx.executions instanceof DaemonExecutions ? ctx.executions.admission : null;
}

/** Re-read the config file and apply its `qos` section; throws QosReloadError. */
export async function reloadQos(ctx: DaemonContext, admission: Admission): Promise<QosPolicy> {
  const file = ctx.config.source.file;
  if (file === null) return admission.policy; // no file: the defaults, nothing to re-read
  let policy: QosPolicy;
  try {
    policy = readQos(ConfigSource.parse(file, readFileSync(file, 'utf8')));
  } catch (err) {
    if (err instanceof ConfigError) throw new QosReloadError(err.message, err.path);
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new QosReloadError(`cannot read ${file}: ${reason}`, '');
  }
  admission.reload(policy);
  await admission.connectGlobal(); // a new qos.global connects now (false: decides by failMode)
  for (const l of reloadListeners.get(admission) ?? []) await l(policy);
  return policy;
}

/** The policy as JSON (tiers, subjects, limits; the Redis URL without credentials). */
function policyJson(p: QosPolicy): unknown {
  let global: unknown = p.global;
  if (p.global !== null) {
    const u = new URL(p.global.redisUrl);
    u.username = '';
    u.password = '';
    global = { ...p.global, redisUrl: u.toString() };
  }
  return { ...p, global };
}

export const qosRoutes: RoutePlugin = async (app, ctx) => {
  const admission = admissionOf(ctx);
  if (admission === null) return;
  registerQosMetrics(ctx, admission);
  const g = admission.policy.global;
  if (g !== null) {
    const up = await admission.connectGlobal();
    const where = policyJson(admission.policy) as { global: { redisUrl: string } };
    if (up)
      ctx.log.info({ redis: where.global.redisUrl, failMode: g.failMode }, 'qos: global limits in Redis');
    else
      ctx.log.warn(
        { redis: where.global.redisUrl, failMode: g.failMode },
        'qos: Redis unreachable at start: deciding locally until it answers (failMode)',
      );
  }
  const reloads = new Counter({
    name: 'thunderpac_qos_reloads_total',
    help: 'Reloads of the qos section (SIGHUP or POST /v1/qos/reload), by result.',
    labelNames: ['result'] as const,
    registers: [ctx.metrics.registry],
  });

  const reload = async (): Promise<QosPolicy> => {
    try {
      const p = await reloadQos(ctx, admission);
      reloads.inc({ result: 'ok' });
      ctx.log.info({ tiers: Object.keys(p.tiers) }, 'qos policy reloaded');
      return p;
    } catch (err) {
      reloads.inc({ result: 'refused' });
      ctx.log.warn({ err }, 'qos reload refused: the policy in force stays');
      throw err;
    }
  };

  // The kernel section follows the policy into every xdp_ratelimit attachment the daemon made:
  // now (the XDP routes re-adopted them already), after each reload, after each new attachment.
  const kernelSync = (): void => syncKernel(ctx, admission.policy);
  kernelSync();
  onQosReload(admission, kernelSync);
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'POST' && req.routeOptions.url === '/v1/xdp/attachments' && reply.statusCode < 300)
      kernelSync();
  });

  // qos.abuse_detected / qos.spike_detected: a log line each (the event, with the actor and its
  // violations), counted in thunderpac_qos_cooldowns_total / thunderpac_qos_spikes_total, and on
  // diagnostics_channel `thunderpac:qos:abuse_detected`. (Not on the event bus: its NATS stream
  // captures only inference.* subjects.)
  const offAbuse = admission.onAbuse((e) => {
    ctx.log.warn(
      { event: e.name, ...e },
      e.name === 'qos.abuse_detected' ? 'qos: abuse detected, actor cooling down' : 'qos: request spike',
    );
  });
  ctx.shutdown.addEventListener('abort', offAbuse, { once: true });

  const onHup = (): void => {
    reload().catch(() => {}); // logged and counted above
  };
  process.on('SIGHUP', onHup);
  ctx.shutdown.addEventListener('abort', () => process.off('SIGHUP', onHup), { once: true });

  app.get('/v1/qos', async (req) => {
    ctx.auth.authorize(req, 'qos.read');
    const actorId = (req.query as { actor?: unknown }).actor;
    const caller = ctx.auth.identify(req);
    let actor = null;
    if (typeof actorId === 'string' && actorId.length > 0 && actorId.length <= 200) {
      // The caller itself resolves with its roles and groups; another id by its own name.
      actor = await admission.actorStateShared(caller?.id === actorId ? caller : { id: actorId, roles: [] });
    }
    return { policy: policyJson(admission.policy), state: admission.state(), actor };
  });

  app.post('/v1/qos/reload', async (req) => {
    ctx.auth.authorize(req, 'qos.reload');
    const p = await reload();
    return { reloaded: true, policy: policyJson(p) };
  });
};

function registerQosMetrics(ctx: DaemonContext, admission: Admission): void {
  const registers = [ctx.metrics.registry];
  const decisions: Counter<'limit' | 'result'> = new Counter({
    name: 'thunderpac_qos_decisions_total',
    help: 'QoS admission decisions by the limit that decided (tier, resource, quota, cooldown, breaker, queue) and result.',
    labelNames: ['limit', 'result'] as const,
    registers,
    collect: () => {
      decisions.reset();
      for (const [k, n] of admission.decisions) {
        const [limit, result] = k.split(':') as [string, string];
        decisions.inc({ limit, result }, n);
      }
    },
  });
  const quota: Gauge<'tier'> = new Gauge({
    name: 'thunderpac_qos_quota_utilization',
    help: 'Quota used in the current period over the sum of its actors’ limits, by tier (0–1).',
    labelNames: ['tier'] as const,
    registers,
    collect: () => {
      quota.reset();
      for (const q of admission.quotaUtilization())
        quota.set({ tier: q.tier }, q.limit > 0 ? q.used / q.limit : 0);
    },
  });
  const depth: Gauge<'priority'> = new Gauge({
    name: 'thunderpac_qos_queue_depth',
    help: 'Executions waiting in the QoS queue, by priority class.',
    labelNames: ['priority'] as const,
    registers,
    collect: () => {
      for (const p of PRIORITIES) depth.set({ priority: p }, admission.queue.counts(p).depth);
    },
  });
  const shed: Counter<'priority' | 'reason'> = new Counter({
    name: 'thunderpac_qos_shed_total',
    help: 'Executions refused or dropped by the QoS queue, by priority class and reason (class-full, actor-full, deadline, queue-delay, closed).',
    labelNames: ['priority', 'reason'] as const,
    registers,
    collect: () => {
      shed.reset();
      for (const p of PRIORITIES) {
        const c = admission.queue.counts(p);
        const by: [string, number][] = [
          ['class-full', c.refusedClassFull],
          ['actor-full', c.refusedActorFull],
          ['deadline', c.expired],
          ['queue-delay', c.shed],
          ['closed', c.closed],
        ];
        for (const [reason, n] of by) if (n > 0) shed.inc({ priority: p, reason }, n);
      }
    },
  });
  const breakers: Gauge<'state'> = new Gauge({
    name: 'thunderpac_qos_breakers',
    help: 'Circuit breakers by state.',
    labelNames: ['state'] as const,
    registers,
    collect: () => {
      const counts = { closed: 0, open: 0, 'half-open': 0 };
      for (const [, s] of admission.breakers?.states() ?? []) counts[s]++;
      for (const [s, n] of Object.entries(counts)) breakers.set({ state: s }, n);
    },
  });
  const breakerState: Gauge<'key'> = new Gauge({
    name: 'thunderpac_qos_breaker_state',
    help: 'Breakers not closed (at most 100 keys): 1 open, 0.5 half-open.',
    labelNames: ['key'] as const,
    registers,
    collect: () => {
      breakerState.reset();
      let n = 0;
      for (const [key, s] of admission.breakers?.states() ?? []) {
        if (s === 'closed') continue;
        if (++n > 100) break;
        breakerState.set({ key }, s === 'open' ? 1 : 0.5);
      }
    },
  });
  const limit: Gauge = new Gauge({
    name: 'thunderpac_qos_concurrency_limit',
    help: 'Executions admitted to run at once (the adaptive limit when configured).',
    registers,
    collect: () => limit.set(admission.concurrencyLimit),
  });
  const spikes: Counter = new Counter({
    name: 'thunderpac_qos_spikes_total',
    help: 'Request spikes detected per actor (qos.spike_detected; each one is a violation).',
    registers,
    collect: () => {
      spikes.reset();
      spikes.inc(admission.spikesDetected);
    },
  });
  const redisUp: Gauge = new Gauge({
    name: 'thunderpac_qos_global_redis_up',
    help: 'qos.global: 1 while Redis answers, 0 while the daemon decides without it (absent without qos.global).',
    registers,
    collect: () => {
      redisUp.reset();
      const s = admission.globalStatus();
      if (s !== null) redisUp.set(s.up ? 1 : 0);
    },
  });
  const globalDecisions: Counter<'source'> = new Counter({
    name: 'thunderpac_qos_global_decisions_total',
    help: 'qos.global tier decisions by source: redis (a round trip), lease (local fast path), refused-until (remembered refusal), local-fallback (Redis down, failMode open), unavailable (Redis down, failMode closed: 503); quota-redis, quota-local-fallback, quota-unavailable for tier quotas.',
    labelNames: ['source'] as const,
    registers,
    collect: () => {
      globalDecisions.reset();
      for (const [source, n] of admission.globalDecisions) globalDecisions.inc({ source }, n);
    },
  });
  const fallbacks: Counter<'mode'> = new Counter({
    name: 'thunderpac_qos_global_fallbacks_total',
    help: 'qos.global checks decided without Redis, by failMode: open (a local GCRA of the same definition decided), closed (refused with 503).',
    labelNames: ['mode'] as const,
    registers,
    collect: () => {
      fallbacks.reset();
      if (admission.globalStatus() === null && admission.globalDecisions.size === 0) return;
      const n = (source: string) =>
        (admission.globalDecisions.get(source) ?? 0) +
        (admission.globalDecisions.get(`quota-${source}`) ?? 0);
      fallbacks.inc({ mode: 'open' }, n('local-fallback'));
      fallbacks.inc({ mode: 'closed' }, n('unavailable'));
    },
  });
  const cooldowns: Counter = new Counter({
    name: 'thunderpac_qos_cooldowns_total',
    help: 'Actors put in cooldown by abuse detection (qos.abuse_detected).',
    registers,
    collect: () => {
      cooldowns.reset();
      cooldowns.inc(admission.abuseDetected);
    },
  });
}

/**
 * Apply the policy's kernel rules to the rule maps of each attachment the daemon recorded
 * (`<store>/daemon/xdp-attachments/*.json`, see xdp-attachments.ts) whose pinned maps are the
 * rate limiter's. Failures are logged: the in-process policy is in force regardless.
 */
function syncKernel(ctx: DaemonContext, policy: QosPolicy): void {
  if (policy.kernel === null) return;
  const dir = join(ctx.config.store, 'daemon', 'xdp-attachments');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return; // no attachment was ever made
  }
  for (const file of files) {
    try {
      const record = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { id?: unknown; pinDir?: unknown };
      if (typeof record.pinDir !== 'string') continue;
      const maps = join(record.pinDir, 'maps');
      if (!existsSync(join(maps, KERNEL_RULE_MAPS.v4)) || !existsSync(join(maps, KERNEL_RULE_MAPS.v6)))
        continue;
      const report = syncKernelRules(maps, policy.kernel);
      ctx.log.info({ attachment: record.id, ...report }, 'qos: kernel rate rules applied');
    } catch (err) {
      ctx.log.warn({ err, file }, 'qos: applying kernel rate rules failed');
    }
  }
}
