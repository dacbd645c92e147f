/** The P4 compiler: P4_16 (v1model subset) → IR → BMv2 JSON, p4info and a TNA stage report. */
export {
  type Bmv2Json,
  type CompileOptions,
  type CompileResult,
  compileP4,
  compileToIr,
  P4C_VERSION,
  type P4Info,
} from './compile.js';
export { P4CompileError, type P4ErrorKind, type SourcePos } from './errors.js';
export { allocateStages, type ResourceModel, type StageReport, TnaFitError, TOFINO_LIKE } from './stages.js';
