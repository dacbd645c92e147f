/**
 * The one place that loads onnxruntime-node, and the session options thunderpac pins.
 *
 * Session options that can change output bits are part of a build (its manifest's toolchain,
 * hence its id) and of every receipt through it:
 *   - graphOptimizationLevel: fusions (Conv+Relu, Gemm+activation...) and constant folding
 *     reorder floating-point operations;
 *   - intraOpNumThreads: how a kernel splits its loops; MLAS keeps reductions in one thread
 *     today, but nothing promises that, so the count is pinned and recorded;
 *   - executionProviders: a different provider is a different implementation of every op;
 *   - the onnxruntime version itself.
 * interOpNumThreads and executionMode only schedule whole nodes; they are recorded too, so a
 * receipt says everything the session was told.
 */

import { createRequire } from 'node:module';
import type * as OrtTypes from 'onnxruntime-node';

const require = createRequire(import.meta.url);

export type Ort = typeof OrtTypes;

let cached: Ort | undefined;

/** onnxruntime-node, loaded on first use so that importing thunderpac never loads the .so. */
export function ort(): Ort {
  cached ??= require('onnxruntime-node') as Ort;
  return cached;
}

/** Path workers `require()` onnxruntime-node from (they cannot see our module graph). */
export function ortModulePath(): string {
  return require.resolve('onnxruntime-node');
}

let version: string | undefined;

/** The onnxruntime-node version, from its package.json: knowing it does not load the library. */
export function ortVersion(): string {
  if (version === undefined) {
    try {
      version = (require('onnxruntime-node/package.json') as { version: string }).version;
    } catch {
      version = 'unavailable';
    }
  }
  return version;
}

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface OnnxSessionOptions {
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly intraOpNumThreads: number;
  readonly interOpNumThreads: number;
  readonly executionMode: 'sequential' | 'parallel';
  readonly executionProviders: readonly ['cpu'];
}

export const DEFAULT_SESSION_OPTIONS: OnnxSessionOptions = Object.freeze({
  graphOptimizationLevel: 'all',
  // One thread per session: parallelism comes from the worker pool, and 1 is the setting
  // whose results do not depend on the machine's core count.
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  executionProviders: Object.freeze(['cpu']) as readonly ['cpu'],
});

export function sessionOptions(partial: Partial<OnnxSessionOptions> = {}): OnnxSessionOptions {
  const o = { ...DEFAULT_SESSION_OPTIONS, ...partial };
  for (const k of ['intraOpNumThreads', 'interOpNumThreads'] as const) {
    if (!Number.isSafeInteger(o[k]) || o[k] < 1) throw new RangeError(`${k} must be an integer >= 1`);
  }
  return Object.freeze(o);
}

/** The options as flat strings, keyed `ort.<option>`: what manifests and receipts carry. */
export function sessionOptionsRecord(o: OnnxSessionOptions): Record<string, string> {
  return {
    'ort.executionMode': o.executionMode,
    'ort.executionProviders': o.executionProviders.join(','),
    'ort.graphOptimizationLevel': o.graphOptimizationLevel,
    'ort.interOpNumThreads': String(o.interOpNumThreads),
    'ort.intraOpNumThreads': String(o.intraOpNumThreads),
  };
}

/** Inverse of sessionOptionsRecord, for a build read back from a manifest. */
export function sessionOptionsFromRecord(r: Readonly<Record<string, string>>): OnnxSessionOptions {
  return sessionOptions({
    graphOptimizationLevel: (r['ort.graphOptimizationLevel'] ?? 'all') as GraphOptimizationLevel,
    intraOpNumThreads: Number(r['ort.intraOpNumThreads'] ?? 1),
    interOpNumThreads: Number(r['ort.interOpNumThreads'] ?? 1),
    executionMode: (r['ort.executionMode'] ?? 'sequential') as 'sequential' | 'parallel',
  });
}

/** The plain object onnxruntime's InferenceSession.create takes (and that workers receive). */
export function ortSessionOptions(o: OnnxSessionOptions): OrtTypes.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: o.graphOptimizationLevel,
    intraOpNumThreads: o.intraOpNumThreads,
    interOpNumThreads: o.interOpNumThreads,
    executionMode: o.executionMode,
    executionProviders: [...o.executionProviders],
    logSeverityLevel: 3,
  };
}
