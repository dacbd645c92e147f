/**
 * thunderpac — the package entry. The embedding API (`Thunderpac`), the runtime's nouns, the
 * store, telemetry, and each backend's public surface.
 */

export * as ebpf from './backends/ebpf/index.js';
export * as onnx from './backends/onnx/index.js';
export * as p4 from './backends/p4/index.js';
export * as wasm from './backends/wasm/index.js';
export { type ArtifactRef, type Build, type BuildManifest, createBuild, openBuild } from './runtime/build.js';
export { canonicalDigest, decodeCanonical, encodeCanonical, sha256Hex } from './runtime/canonical.js';
export {
  GuestError,
  GuestExitError,
  IntegrityError,
  type LimitName,
  LimitExceededError,
  NotFoundError,
  ProgramRejectedError,
  type ReceiptError,
  SandboxStateError,
  ThunderpacError,
  ValidationError,
  type ValidationErrorKind,
} from './runtime/errors.js';
export { EVENT_NAMES } from './runtime/events.js';
export {
  type ExecuteRequest,
  type ExecutionResult,
  Executor,
  type ExecutorOptions,
  type Mismatch,
  type VerifyReport,
} from './runtime/executor.js';
export * as p4c from './p4c/index.js';
export * as packets from './runtime/packets.js';
export { checkReceiptId, type PayloadRef, type Receipt, type ReceiptBody } from './runtime/receipt.js';
export type { RecordStore } from './runtime/record-store.js';
export {
  DEFAULT_LIMITS,
  Sandbox,
  type SandboxOptions,
  type SandboxState,
  sandboxSpec,
} from './runtime/sandbox.js';
export { assertSchema, validateInput, validateOutput } from './runtime/schema.js';
export type * from './runtime/types.js';
export {
  LogIntegrityError,
  StoreLockedError,
  StoreLockUnavailableError,
  StoreReadOnlyError,
} from './store/errors.js';
export { Store, type StoreOptions } from './store/store.js';
export { ExecutionMetrics, LatencyHistogram, type LatencySummary } from './telemetry/latency.js';
export { Thunderpac, type ThunderpacOptions } from './thunderpac.js';
