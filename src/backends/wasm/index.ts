export type { AbiFailure, AbiResult } from './abi.js';
export { COMPONENT_ARTIFACT, COMPONENT_ENTRY, isComponent } from './component.js';
export {
  createComponentBuild,
  createWasmBuild,
  DEFAULT_CALL_DEPTH,
  WASM_ARTIFACT,
  WasmBackend,
  type WasmBackendOptions,
  type WasmBuildOptions,
  type WasmPath,
  WasmPrepared,
} from './backend.js';
export { HOST_FUNCTIONS, type HostFunctionSpec } from './host.js';
export {
  exportedFunctionType,
  type FuncType,
  functionType,
  type Limits,
  type ModuleExport,
  type ModuleImport,
  type ModuleInfo,
  parseModule,
  type ValType,
  WASM_PAGE_BYTES,
} from './module-info.js';
export { checkModule, type PolicyResult } from './policy.js';
