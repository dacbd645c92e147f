/**
 * bench:qos groups for the execution queue and backpressure (joined into `npm run bench:qos`
 * by bench/qos.ts; run alone with `node dist/bench/qos.js --only queue` / `--only backpressure`).
 *
 * Fair queue, with 10, 1k and 100k actors each holding 2 items (so every actor stays in the
 * DRR ring: a dequeue walks the ring, the worst case for a round robin):
 *   enqueue        push of one item for an actor drawn from a precomputed random order;
 *   dequeue        pop of the next item by DRR.
 * Each round runs its enqueues, then as many dequeues, so over a round the backlog returns to
 * where it was filled (2 items per actor on average; up to 2 + checks/actors mid-round). Measured twice: the bare FairQueue (push/pop with the
 * time given), and the daemon's PriorityFairQueue (4 classes, bounds checked, the Clock read
 * per operation, CoDel's control law run at each dequeue with a target it never reaches, so
 * nothing is shed and the backlog stays put). A last case pairs one enqueue with one dequeue per
 * check, as a daemon's admission does under steady load: item nodes come from the queue's pool.
 *
 * Backpressure: a closed breaker's acquire + release (window of 100); an open breaker's refusal;
 * CircuitBreakers.get(key) + acquire + release over 10k keys; ConcurrencyLimiter tryAcquire +
 * release with AIMD and with the gradient algorithm.
 */

import {
  AimdLimit,
  CircuitBreaker,
  CircuitBreakers,
  ConcurrencyLimiter,
  GradientLimit,
} from '../src/qos/backpressure/index.js';
import { ManualClock, systemClock } from '../src/qos/clock.js';
import { FairQueue, PriorityFairQueue } from '../src/qos/queues/index.js';
import type { QosBenchGroup, QosBenchOptions } from './qos-harness.js';

const ORDER_LENGTH = 1 << 20;

function randomOrder(n: number): Uint32Array {
  const order = new Uint32Array(ORDER_LENGTH);
  let x = 0x9e3779b9;
  for (let i = 0; i < ORDER_LENGTH; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    order[i] = (x >>> 0) % n;
  }
  return order;
}

const NEVER = () => {};

function fairQueueGroup(actors: number, checks: number): QosBenchGroup {
  let names: string[] = [];
  let order: Uint32Array = new Uint32Array(0);
  let bare: FairQueue<number> | null = null;
  let daemon: PriorityFairQueue<number> | null = null;
  const prio = ['critical', 'high', 'medium', 'low'] as const;
  return {
    name: `queue: fair queue, ${actors.toLocaleString('en')} actors`,
    checks,
    note: `${actors} actors × 2 items backlogged; weights 1–4; each check is one enqueue or one dequeue.`,
    prepare() {
      names = Array.from({ length: actors }, (_, i) => `actor-${i}`);
      order = randomOrder(actors);
      const weight = (a: string) => 1 + (a.length % 4);
      bare = new FairQueue<number>({ quantum: 1, maxItemCost: 1, weight });
      daemon = new PriorityFairQueue<number>(systemClock, {
        weight,
        classes: Object.fromEntries(
          prio.map((p) => [p, { maxSize: 4_000_000, codel: { targetMs: 1e12, intervalMs: 100 } }]),
        ),
      });
      for (let k = 0; k < 2; k++)
        for (const a of names) {
          bare.push(k, a, 1, Number.POSITIVE_INFINITY, 0);
          daemon.enqueue(k, { actor: a, priority: 'medium' });
        }
    },
    cases: [
      {
        name: 'FairQueue enqueue',
        run(n, start) {
          const q = bare!;
          for (let i = 0; i < n; i++)
            q.push(i, names[order[(start + i) & (ORDER_LENGTH - 1)]!]!, 1, Number.POSITIVE_INFINITY, 0);
          return n;
        },
      },
      {
        name: 'FairQueue dequeue',
        run(n) {
          const q = bare!;
          let got = 0;
          for (let i = 0; i < n; i++) if (q.pop(0, NEVER) !== undefined) got++;
          return got;
        },
      },
      {
        name: 'PriorityFairQueue enqueue (clock, bounds)',
        run(n, start) {
          const q = daemon!;
          for (let i = 0; i < n; i++)
            q.enqueue(i, { actor: names[order[(start + i) & (ORDER_LENGTH - 1)]!]!, priority: 'medium' });
          return n;
        },
      },
      {
        name: 'PriorityFairQueue dequeue (clock, CoDel)',
        run(n) {
          const q = daemon!;
          let got = 0;
          for (let i = 0; i < n; i++) if (q.dequeue() !== undefined) got++;
          return got;
        },
      },
      {
        name: 'PriorityFairQueue enqueue+dequeue pair (steady)',
        run(n, start) {
          const q = daemon!;
          let got = 0;
          for (let i = 0; i < n; i++) {
            q.enqueue(i, { actor: names[order[(start + i) & (ORDER_LENGTH - 1)]!]!, priority: 'medium' });
            if (q.dequeue() !== undefined) got++;
          }
          return got;
        },
      },
    ],
    release() {
      names = [];
      order = new Uint32Array(0);
      bare = null;
      daemon = null;
    },
  };
}

function backpressureGroup(checks: number): QosBenchGroup {
  const clock = new ManualClock(0);
  const closed = new CircuitBreaker('backend:wasm', clock, { windowSize: 100 });
  const open = new CircuitBreaker('backend:onnx', clock, {
    windowSize: 2,
    minimumCalls: 2,
    openDurationMs: 1e15,
  });
  const keyed = new CircuitBreakers(clock, { windowSize: 100 });
  const keys = Array.from({ length: 10_000 }, (_, i) => `build:${i.toString(16).padStart(64, '0')}`);
  const order = randomOrder(keys.length);
  const aimd = new ConcurrencyLimiter(new AimdLimit({ initialLimit: 100, maxLimit: 1000 }));
  const gradient = new ConcurrencyLimiter(new GradientLimit({ initialLimit: 100, maxLimit: 1000 }));
  return {
    name: 'backpressure: breakers and adaptive limits',
    checks,
    note: 'Breaker results: 1 in 50 calls failed (below the 50 % threshold: stays closed); latencies 1–8 ms.',
    prepare() {
      for (let i = 0; i < 2; i++) open.release(open.acquire(), 1, false);
    },
    cases: [
      {
        name: 'breaker acquire+release (closed)',
        run(n, start) {
          let ok = 0;
          for (let i = 0; i < n; i++) {
            const p = closed.acquire();
            if (p >= 0) ok++;
            closed.release(p, (start + i) & 7, (start + i) % 50 !== 0);
          }
          return ok;
        },
        single: (i) => closed.release(closed.acquire(), i & 7, i % 50 !== 0),
      },
      {
        name: 'breaker acquire (open: refused)',
        run(n) {
          let ok = 0;
          for (let i = 0; i < n; i++) if (open.acquire() >= 0) ok++;
          return ok;
        },
        single: () => open.acquire(),
      },
      {
        name: 'breakers.get(key)+acquire+release, 10k keys',
        run(n, start) {
          let ok = 0;
          for (let i = 0; i < n; i++) {
            const b = keyed.get(keys[order[(start + i) & (ORDER_LENGTH - 1)]!]!);
            const p = b.acquire();
            if (p >= 0) ok++;
            b.release(p, (start + i) & 7, (start + i) % 50 !== 0);
          }
          return ok;
        },
      },
      {
        name: 'ConcurrencyLimiter AIMD tryAcquire+release',
        run(n, start) {
          let ok = 0;
          for (let i = 0; i < n; i++) {
            if (aimd.tryAcquire()) {
              ok++;
              aimd.release(1 + ((start + i) & 7), true);
            }
          }
          return ok;
        },
      },
      {
        name: 'ConcurrencyLimiter gradient tryAcquire+release',
        run(n, start) {
          let ok = 0;
          for (let i = 0; i < n; i++) {
            if (gradient.tryAcquire()) {
              ok++;
              gradient.release(1 + ((start + i) & 7), true);
            }
          }
          return ok;
        },
      },
    ],
  };
}

export async function qosBenchGroups(opts: QosBenchOptions): Promise<QosBenchGroup[]> {
  const checks = opts.quick ? 100_000 : 1_000_000;
  return [
    fairQueueGroup(10, checks),
    fairQueueGroup(1_000, checks),
    fairQueueGroup(100_000, checks),
    backpressureGroup(checks),
  ];
}
