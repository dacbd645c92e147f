/**
 * Daemon metrics on prom-client: one registry per daemon (tests run several in one process).
 * Names follow Prometheus conventions (`thunderpac_…_total`, `_seconds`).
 */

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly executions = new Counter({
    name: 'thunderpac_executions_total',
    help: 'Executions finished, by backend and status.',
    labelNames: ['backend', 'status'] as const,
    registers: [this.registry],
  });
  readonly executionSeconds = new Histogram({
    name: 'thunderpac_execution_duration_seconds',
    help: 'Execution latency through the daemon (admission to receipt), by backend.',
    labelNames: ['backend'] as const,
    buckets: [
      1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
      5, 10,
    ],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'thunderpac_executions_in_flight',
    help: 'Executions running now.',
    registers: [this.registry],
  });
  readonly queued = new Gauge({
    name: 'thunderpac_execution_queue_depth',
    help: 'Executions waiting for a slot.',
    registers: [this.registry],
  });
  readonly denials = new Counter({
    name: 'thunderpac_authz_denials_total',
    help: 'Requests the policy denied, by action.',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'thunderpac_' });
  }
}
