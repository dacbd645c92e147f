export {
  createOnnxBuild,
  type IoContract,
  modelDigest,
  ONNX_ARTIFACT,
  ONNX_ENTRY,
  OnnxBackend,
  type OnnxBackendOptions,
  type OnnxBuildOptions,
  type OnnxPath,
  type OnnxPrepared,
  onnxDeterminismFlags,
  readIoContract,
} from './backend.js';
export { batchKey, batchRows, concatBatch, splitBatch, type Tensors } from './batch.js';
export type { Isolation } from './endpoint.js';
export {
  checkEquivalence,
  EQUIVALENCE_TOLERANCE,
  type EquivalenceReport,
  fixedInputs,
  reportProblems,
} from './equivalence.js';
export { ModelSecurityError, OnnxWorkerCrashedError, ShuttingDownError } from './errors.js';
export { castToFloat32, nchwToNhwc, nhwcToNchw, standardize } from './normalize.js';
export {
  DEFAULT_SESSION_OPTIONS,
  type OnnxSessionOptions,
  ortVersion,
  sessionOptions,
  sessionOptionsRecord,
} from './ort.js';
export {
  type DeadLetter,
  DroppedError,
  CircuitOpenError,
  type Outcome,
  PIPELINE_EVENTS,
  Pipeline,
  type PipelineMetrics,
  type PipelineOptions,
  QueueDelayError,
  QueueFullError,
  type RequestMeta,
} from './pipeline.js';
export {
  createOnnxPipeline,
  type OnnxPipelineOptions,
  type OnnxRequest,
  type OnnxResponse,
} from './pipeline-onnx.js';
export { OnnxWorkerPool, type PoolStats, WORKER_RESTART_CHANNEL } from './pool.js';
export { referenceRun } from './reference.js';
export {
  defaultModelDir,
  type LoadedModel,
  type ModelConfig,
  ModelRegistry,
  parseModelRef,
  type RegistryOptions,
  UNTRUSTED_MODEL_CHANNEL,
} from './registry.js';
export { compareTensors, HEALTH_CHANNEL, OnnxSupervisor, type SupervisorOptions } from './supervisor.js';
export { tensorsFromJson, tensorsToJson } from './tensors-json.js';
