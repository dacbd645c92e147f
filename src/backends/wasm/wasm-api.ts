/**
 * The slice of the WebAssembly JS API this backend uses, typed locally.
 *
 * The project compiles against lib ES2022 + @types/node 20, neither of which declares the
 * `WebAssembly` global (it lives in lib.dom). Declaring it globally here would clash the day
 * the project adds lib.dom or a newer @types/node, so the backend reaches the engine through
 * `globalThis` with these private types instead.
 */

export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}

export type WasmImports = Record<string, Record<string, unknown>>;

export interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly compile: (bytes: Uint8Array) => Promise<WasmModule>;
  readonly validate: (bytes: Uint8Array) => boolean;
  readonly Instance: new (module: WasmModule, imports?: WasmImports) => WasmInstance;
  readonly Memory: abstract new (...args: never[]) => WasmMemory;
  readonly CompileError: new (...args: never[]) => Error;
  readonly LinkError: new (...args: never[]) => Error;
  readonly RuntimeError: new (...args: never[]) => Error;
}

export interface WasmGlobal {
  readonly WebAssembly: WasmApi;
}

export const WA: WasmApi = (globalThis as unknown as WasmGlobal).WebAssembly;
