/**
 * V8's own validator over the guest's ORIGINAL bytes, before anything the sandbox adds runs.
 *
 * Why: the instrumenter (instrument.ts) appends globals (the fuel and depth counters), types
 * and locals. A module that names an index just past its own — `global.set 0` in a module with
 * no globals, a branch one label too far, a call_indirect type one past the last — is invalid
 * as written, but would become valid after the rewrite and then write the counters: refill its
 * fuel, reset its depth. Only V8 decides exactly what V8 accepts, so V8 checks the bytes as the
 * author wrote them; the instrumenter also refuses such indices itself (defence in depth).
 *
 * Cost: once per build and metering config (the backend caches the result with the compiled
 * module), a validation pass with no code generation.
 */

import { ProgramRejectedError } from '../../runtime/errors.js';
import { WA } from './wasm-api.js';

/**
 * Resolves when V8 accepts `bytes` as a module; otherwise rejects with ProgramRejectedError
 * 'WASM_MALFORMED' carrying V8's reason. `where` names the module inside a component.
 */
export async function assertEngineValid(bytes: Uint8Array, where = ''): Promise<void> {
  if (WA.validate(bytes)) return;
  // validate() says only no; an async compile (off the event loop) says why.
  let reason = 'the engine rejects the module';
  try {
    await WA.compile(bytes);
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  throw new ProgramRejectedError(
    'WASM_MALFORMED',
    'malformed',
    `invalid wasm${where === '' ? '' : ` (${where})`}: ${reason}`,
  );
}
