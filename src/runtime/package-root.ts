/**
 * Where the package lives on disk. Code runs from `src/` (vitest, tsx) and from `dist/src/`
 * (the compiled package), so paths to shipped files (the addon, bpf/ and wasm/ objects, p4/
 * includes) are resolved from the package root rather than from the calling module.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'thunderpac') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`thunderpac package root not found above ${start}`);
    dir = parent;
  }
}

export const PACKAGE_ROOT: string = findRoot(dirname(fileURLToPath(import.meta.url)));

export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}
