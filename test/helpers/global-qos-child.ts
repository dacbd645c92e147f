/**
 * One "host" of the cross-process global QoS tests, run as a separate node process (bundled by
 * test/helpers/global-qos-host.ts): it connects to the shared Redis, waits for the common start
 * time, then for `durationMs` either checks a global GCRA limit (recording when each admitted
 * check was answered, epoch µs) or consumes a global quota with many concurrent callers. Prints
 * one JSON line with what it saw.
 */

import { GlobalStore } from '../../src/qos/global/global-store.js';
import { RedisGcraLimiter } from '../../src/qos/global/redis-gcra.js';
import { RedisQuota } from '../../src/qos/global/redis-quota.js';

interface Job {
  readonly kind: 'gcra' | 'quota';
  readonly url: string;
  readonly startAtMs: number;
  readonly durationMs: number;
  readonly key: string;
  readonly limit: number;
  readonly periodMs: number;
  readonly burst?: number;
  readonly leaseSize?: number;
  /** Concurrent callers in this process. */
  readonly concurrency: number;
  /** Quota: units per consume. */
  readonly units?: number;
}

const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const store = new GlobalStore({ url: job.url, commandTimeoutMs: 2_000, failMode: 'closed' });
  await store.connect();
  const admittedAtUs: number[] = [];
  let refused = 0;
  let degraded = 0;
  let consumed = 0;
  let limiter: RedisGcraLimiter | undefined;
  let quota: RedisQuota | undefined;
  if (job.kind === 'gcra') {
    limiter = new RedisGcraLimiter(store, {
      limit: job.limit,
      periodMs: job.periodMs,
      burst: job.burst,
      leaseSize: job.leaseSize,
      name: 'xproc',
    });
  } else {
    quota = new RedisQuota(store, { limit: job.limit, period: 'never', name: 'xproc' });
  }
  await new Promise((r) => setTimeout(r, Math.max(0, job.startAtMs - Date.now())));
  const endAt = Date.now() + job.durationMs;
  const caller = async (): Promise<void> => {
    while (Date.now() < endAt) {
      if (limiter) {
        const d = await limiter.check(job.key);
        if (d.degraded) degraded++;
        if (d.allowed) admittedAtUs.push(nowUs());
        else refused++;
      } else if (quota) {
        const q = await quota.consume(job.key, job.units ?? 1);
        if (q.degraded) degraded++;
        if (q.allowed) consumed += job.units ?? 1;
        else refused++;
        // Past the limit every consume is refused: stop hammering once it is spent.
        if (!q.allowed && q.remaining < (job.units ?? 1)) break;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, caller));
  const out = {
    admittedAtUs,
    refused,
    degraded,
    consumed,
    roundTrips: store.counters.roundTrips,
    checks: limiter?.counters.checks ?? 0,
  };
  await store.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
