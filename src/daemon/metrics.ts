/**
 * Daemon metrics on prom-client: one registry per daemon (tests run several in one process).
 * Names follow Prometheus conventions (`thunderpac_…_total` for counters, base units in the
 * name: `_seconds`, `_bytes`). Process metrics keep their standard unprefixed names
 * (`process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`) so stock dashboards and
 * alerts work unchanged.
 *
 * Counters and histograms are pushed by whoever sees the event (the execution service, the
 * authorizer, the HTTP hook). Levels that already live somewhere (queue depth, in-flight, the
 * ONNX worker pool and batchers) are read at scrape time by `collect()` callbacks, so the
 * scrape can never disagree with the thing it describes. Other parts register their own
 * collectors on `registry` (the XDP attachment manager does, per attachment).
 */

import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from 'prom-client';
import { PACKAGE_VERSION } from '../runtime/package-root.js';

/** What the level gauges read at scrape time (the execution service). */
export interface ExecutionLevels {
  readonly inFlight: number;
  readonly queued: number;
}

/** The ONNX worker pool's counters, as `OnnxBackend.poolStats()` returns them. */
export interface OnnxPoolLevels {
  readonly size: number;
  readonly alive: number;
  readonly busy: number;
  readonly queued: number;
  readonly crashes: number;
  readonly restarts: number;
  readonly retried: number;
  readonly timeouts: number;
}

/** What a batcher (`Pipeline.metrics()`) reports; only these fields are read. */
export interface BatcherLevels {
  readonly submitted: number;
  readonly completed: number;
  readonly failed: number;
  readonly rejected: number;
  readonly dropped: number;
  readonly deadLettered: number;
  readonly queueDepth: number;
  readonly inFlightBatches: number;
  readonly batches: number;
  readonly meanBatchSize: number;
  /** Accepted requests shed by CoDel (queue delay); absent: 0. */
  readonly shedByDelay?: number;
  /** Refused or shed because the batcher's circuit breaker was open; absent: 0. */
  readonly shedByBreaker?: number;
  /** The adaptive limit on batches in flight; absent: not reported. */
  readonly batchLimit?: number;
}

/** A batcher the model service registers under its model's name (`watchBatcher`). */
export interface WatchedBatcher {
  metrics(): BatcherLevels;
}

/** Seconds; spans 10 µs (an in-process WASM echo) to 10 s (a long model or a slow client). */
const LATENCY_BUCKETS = [
  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
  10,
];

/** The route label of a request that matched no route: one value, whatever the URL was. */
export const UNMATCHED_ROUTE = 'unmatched';

export class DaemonMetrics {
  readonly registry = new Registry();
  #executionLevels: ExecutionLevels | null = null;
  #onnxPool: (() => OnnxPoolLevels | null) | null = null;
  readonly #batchers = new Map<string, WatchedBatcher>();

  readonly executions = new Counter({
    name: 'thunderpac_executions_total',
    help: 'Executions finished, by backend and status (completed / failed).',
    labelNames: ['backend', 'status'] as const,
    registers: [this.registry],
  });
  readonly executionSeconds = new Histogram({
    name: 'thunderpac_execution_duration_seconds',
    help: 'Execution latency through the daemon (admission to receipt), by backend.',
    labelNames: ['backend'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'thunderpac_executions_in_flight',
    help: 'Executions running now.',
    registers: [this.registry],
    collect: () => {
      const levels = this.#executionLevels;
      if (levels) this.inFlight.set(levels.inFlight);
    },
  });
  readonly queued = new Gauge({
    name: 'thunderpac_execution_queue_depth',
    help: 'Executions waiting for a slot.',
    registers: [this.registry],
    collect: () => {
      const levels = this.#executionLevels;
      if (levels) this.queued.set(levels.queued);
    },
  });
  readonly denials = new Counter({
    name: 'thunderpac_authz_denials_total',
    help: 'Requests the policy denied, by action and (when the caller has one) role.',
    labelNames: ['action', 'role'] as const,
    registers: [this.registry],
  });
  /** By route pattern (`/v1/receipts/:id`), never the raw URL: the label set stays bounded. */
  readonly httpRequests = new Counter({
    name: 'thunderpac_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry],
  });
  readonly httpSeconds = new Histogram({
    name: 'thunderpac_http_request_duration_seconds',
    help: 'HTTP request latency (request received to response sent), by method and route pattern.',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // prom-client's sums of the per-type gauges end in `_total`, which Prometheus reserves for
    // counters (promtool flags them); the per-type gauges carry the same information.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(name);
    }
    const registers = [this.registry];
    new Gauge({
      name: 'thunderpac_build_info',
      help: 'Always 1; the labels say which thunderpac and Node.js are running.',
      labelNames: ['version', 'node_version'] as const,
      registers,
    }).set({ version: PACKAGE_VERSION, node_version: process.versions.node }, 1);
    this.#onnxPoolMetrics();
    this.#batcherMetrics();
  }

  /** The execution service whose levels the in-flight and queue gauges read at scrape time. */
  watchExecutions(levels: ExecutionLevels): void {
    this.#executionLevels = levels;
  }

  /** Where the ONNX worker pool's stats come from (null while in-thread or not yet created). */
  watchOnnxPool(read: () => OnnxPoolLevels | null): void {
    this.#onnxPool = read;
  }

  /**
   * A batcher (ONNX pipeline) to report under `model`; returns the function that stops
   * reporting it (call it when the pipeline closes, so its series disappear).
   */
  watchBatcher(model: string, batcher: WatchedBatcher): () => void {
    this.#batchers.set(model, batcher);
    return () => {
      if (this.#batchers.get(model) === batcher) this.#batchers.delete(model);
    };
  }

  /** The ONNX worker pool: levels as gauges, its monotonic counts as counters. */
  #onnxPoolMetrics(): void {
    const registers = [this.registry];
    const read = (): OnnxPoolLevels | null => {
      try {
        return this.#onnxPool?.() ?? null;
      } catch {
        return null; // a scrape never fails because a backend is closing
      }
    };
    const levels: [keyof OnnxPoolLevels, string, string][] = [
      ['size', 'thunderpac_onnx_pool_workers', 'ONNX worker pool size (configured workers).'],
      ['alive', 'thunderpac_onnx_pool_workers_alive', 'ONNX workers started and ready.'],
      ['busy', 'thunderpac_onnx_pool_workers_busy', 'ONNX workers running a request now.'],
      ['queued', 'thunderpac_onnx_pool_queue_depth', 'Requests waiting for an ONNX worker.'],
    ];
    for (const [field, name, help] of levels) {
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: () => {
          const stats = read();
          if (stats) gauge.set(stats[field]);
        },
      });
    }
    const counts: [keyof OnnxPoolLevels, string, string][] = [
      ['crashes', 'thunderpac_onnx_worker_crashes_total', 'ONNX workers that crashed.'],
      ['restarts', 'thunderpac_onnx_worker_restarts_total', 'ONNX workers restarted after a crash.'],
      ['retried', 'thunderpac_onnx_requests_retried_total', 'ONNX requests retried on another worker.'],
      ['timeouts', 'thunderpac_onnx_request_timeouts_total', 'ONNX requests failed at their deadline.'],
    ];
    for (const [field, name, help] of counts) {
      const counter: Counter = new Counter({
        name,
        help,
        registers,
        collect: () => {
          const stats = read();
          if (stats) {
            counter.reset();
            counter.inc(stats[field]);
          }
        },
      });
    }
  }

  /** Each watched batcher, labelled by model: queue depth, batches, outcomes. */
  #batcherMetrics(): void {
    const registers = [this.registry];
    const each = (metric: Metric<'model'>, value: (m: BatcherLevels) => number): void => {
      (metric as Gauge<'model'>).reset();
      for (const [model, batcher] of this.#batchers) {
        let levels: BatcherLevels;
        try {
          levels = batcher.metrics();
        } catch {
          continue;
        }
        const v = value(levels);
        if (Number.isNaN(v)) continue; // not reported by this batcher
        if (metric instanceof Counter) metric.inc({ model }, v);
        else (metric as Gauge<'model'>).set({ model }, v);
      }
    };
    const gauges: [string, string, (m: BatcherLevels) => number][] = [
      [
        'thunderpac_onnx_batcher_queue_depth',
        'Requests waiting in the ONNX batcher, by model.',
        (m) => m.queueDepth,
      ],
      [
        'thunderpac_onnx_batcher_batches_in_flight',
        'ONNX batches running now, by model.',
        (m) => m.inFlightBatches,
      ],
      [
        'thunderpac_onnx_batcher_mean_batch_size',
        'Mean requests per ONNX batch, by model.',
        (m) => m.meanBatchSize,
      ],
      [
        'thunderpac_onnx_batcher_batch_limit',
        'Batches the ONNX batcher may have in flight now (its adaptive limit), by model.',
        (m) => m.batchLimit ?? Number.NaN,
      ],
    ];
    for (const [name, help, value] of gauges) {
      const gauge: Gauge<'model'> = new Gauge({
        name,
        help,
        labelNames: ['model'] as const,
        registers,
        collect: () => each(gauge, value),
      });
    }
    const counters: [string, string, (m: BatcherLevels) => number][] = [
      ['thunderpac_onnx_batcher_batches_total', 'ONNX batches run, by model.', (m) => m.batches],
      [
        'thunderpac_onnx_batcher_requests_submitted_total',
        'Requests submitted to the ONNX batcher.',
        (m) => m.submitted,
      ],
      [
        'thunderpac_onnx_batcher_requests_completed_total',
        'Batcher requests that completed.',
        (m) => m.completed,
      ],
      ['thunderpac_onnx_batcher_requests_failed_total', 'Batcher requests that failed.', (m) => m.failed],
      [
        'thunderpac_onnx_batcher_requests_rejected_total',
        'Batcher requests refused at submit (queue full, or circuit breaker open).',
        (m) => m.rejected,
      ],
      [
        'thunderpac_onnx_batcher_requests_dropped_total',
        'Accepted batcher requests dropped (drop-oldest, CoDel queue delay, or breaker opened).',
        (m) => m.dropped,
      ],
      [
        'thunderpac_onnx_batcher_requests_shed_by_delay_total',
        'Batcher requests shed by CoDel: queue delay above target for an interval.',
        (m) => m.shedByDelay ?? 0,
      ],
      [
        'thunderpac_onnx_batcher_requests_shed_by_breaker_total',
        "Batcher requests refused or shed because the model's circuit breaker was open.",
        (m) => m.shedByBreaker ?? 0,
      ],
      [
        'thunderpac_onnx_batcher_requests_dead_lettered_total',
        'Batcher requests sent to the dead-letter queue.',
        (m) => m.deadLettered,
      ],
    ];
    for (const [name, help, value] of counters) {
      const counter: Counter<'model'> = new Counter({
        name,
        help,
        labelNames: ['model'] as const,
        registers,
        collect: () => each(counter, value),
      });
    }
  }
}
