/**
 * Latency histograms (HdrHistogram: constant memory, 3 significant digits, no sampling), and a
 * recorder that fills them from the runtime's diagnostics_channel events, keyed by backend and
 * status. The runtime knows nothing of this module; subscribing is opt-in.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as hdr from 'hdr-histogram-js';
import { EVENT_NAMES, type ExecutionExceptionEvent, type ExecutionStopEvent } from '../runtime/events.js';

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** A histogram of durations in nanoseconds (1 ns .. 1 hour). */
export class LatencyHistogram {
  readonly #h = hdr.build({
    bitBucketSize: 64,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });

  record(ns: number): void {
    this.#h.recordValue(Math.max(1, Math.round(ns)));
  }

  reset(): void {
    this.#h.reset();
  }

  summary(): LatencySummary {
    const h = this.#h;
    return {
      count: h.totalCount,
      p50: h.getValueAtPercentile(50),
      p95: h.getValueAtPercentile(95),
      p99: h.getValueAtPercentile(99),
      max: h.maxValue,
      mean: h.mean,
    };
  }
}

/** Collects execution latencies per `${backend}:${status}` from the telemetry events. */
export class ExecutionMetrics {
  readonly #histograms = new Map<string, LatencyHistogram>();
  readonly #onStop = (msg: unknown) => this.#record((msg as ExecutionStopEvent).receipt);
  readonly #onException = (msg: unknown) => this.#record((msg as ExecutionExceptionEvent).receipt);
  #attached = false;

  attach(): this {
    if (!this.#attached) {
      subscribe(EVENT_NAMES.executionStop, this.#onStop);
      subscribe(EVENT_NAMES.executionException, this.#onException);
      this.#attached = true;
    }
    return this;
  }

  detach(): void {
    if (!this.#attached) return;
    unsubscribe(EVENT_NAMES.executionStop, this.#onStop);
    unsubscribe(EVENT_NAMES.executionException, this.#onException);
    this.#attached = false;
  }

  #record(receipt: { backend: string; status: string; durationNs: number }): void {
    const key = `${receipt.backend}:${receipt.status}`;
    let h = this.#histograms.get(key);
    if (!h) {
      h = new LatencyHistogram();
      this.#histograms.set(key, h);
    }
    h.record(receipt.durationNs);
  }

  snapshot(): Record<string, LatencySummary> {
    const out: Record<string, LatencySummary> = {};
    for (const [k, h] of this.#histograms) out[k] = h.summary();
    return out;
  }
}
