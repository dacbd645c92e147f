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
export {
  BehavioralSwitch,
  DROP_PORT,
  type MeterConfig,
  type SwitchOptions,
  type SwitchOutput,
} from './switch.js';
