/** The public P4 surface of thunderpac: the backend, the behavioral switch and the STF runner. */
export {
  BMV2_JSON_ARTIFACT,
  CONTROL_PLANE_ARTIFACT,
  createP4Build,
  createP4BuildFromJson,
  installControlPlane,
  P4Backend,
  type P4BuildOptions,
  type P4ControlPlane,
  P4INFO_ARTIFACT,
} from './backend.js';
export { P4RuntimeError, type P4RuntimeErrorCode } from './errors.js';
export { runStf, type StfResult, StfSyntaxError } from './stf.js';
export type { CloneTarget, Digest } from './field-lists.js';
export {
  BehavioralSwitch,
  DROP_PORT,
  MAX_EGRESS_PASSES,
  MAX_REENTRIES,
  type MeterConfig,
  type SwitchOptions,
  type SwitchOutput,
} from './switch.js';
