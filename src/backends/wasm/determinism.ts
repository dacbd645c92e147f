/**
 * The policies a WASM result depends on, named as default determinism flags of every wasm
 * sandbox so each receipt records them:
 *   - `nan-canonical`: NaNs are canonicalized (the default float policy; `nan-native` opts out);
 *   - `wasi-virtual-clock`: WASI clocks are virtual (see wasi.ts, preview2.ts), whenever WASI
 *     (preview 1 functions or preview 2 interfaces) may be imported.
 */

import { registerDefaultFlags, type SandboxOptions } from '../../runtime/sandbox.js';

export function wasmDefaultFlags(options: SandboxOptions, given: readonly string[]): string[] {
  const flags: string[] = [];
  if (!given.includes('nan-native')) flags.push('nan-canonical');
  // WASI preview 1 imports, or preview 2 interfaces (components: 'wasi:*', 'wasi:clocks/*'...).
  if (
    (options.allowedImports ?? []).some(
      (i) => i.startsWith('wasi_snapshot_preview1.') || i.startsWith('wasi:'),
    )
  ) {
    flags.push('wasi-virtual-clock');
  }
  return flags;
}

registerDefaultFlags('wasm', wasmDefaultFlags);
