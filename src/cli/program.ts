/** Turning a program file named on the command line into a Build. */

import { basename, dirname, extname } from 'node:path';
import { createBpfBuild } from '../backends/ebpf/backend.js';
import { createP4Build } from '../backends/p4/backend.js';
import { createWasmBuild } from '../backends/wasm/backend.js';
import type { Build } from '../runtime/build.js';
import { UsageError } from './io.js';
import { readUserFile } from './paths.js';

export function buildFromFile(path: string): Build {
  const bytes = readUserFile(path, 'program');
  const name = basename(path);
  switch (extname(path)) {
    case '.wasm':
      return createWasmBuild(bytes, { name });
    case '.o':
      return createBpfBuild(bytes, { name });
    case '.p4':
      return createP4Build(Buffer.from(bytes).toString('utf8'), {
        name,
        file: path,
        includeDirs: [dirname(path)],
      });
    default:
      throw new UsageError(
        `${path}: unknown program type '${extname(path)}' (expected .wasm, a BPF .o or .p4)`,
      );
  }
}
