/**
 * `npm run build:models` [-- --check]: regenerate models/ (see build-models-lib.ts).
 *
 * `--check` writes nothing: it regenerates in memory and exits 1 when a committed file differs
 * or a committed VAL_REPORT.json is stale or failing.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reportProblems } from '../src/backends/onnx/equivalence.js';
import { MODEL_FILE, REPORT_FILE } from '../src/backends/onnx/registry.js';
import { sha256Hex } from '../src/runtime/canonical.js';
import { packagePath } from '../src/runtime/package-root.js';
import { equivalenceReport, generateModel, json } from './build-models-lib.js';
import { ZOO } from './build-models-zoo.js';

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const root = packagePath('models');
  let failed = false;
  for (const z of ZOO) {
    const g = generateModel(z);
    const dir = join(root, g.name, g.version);
    const report = await equivalenceReport(z, g.files[MODEL_FILE]!);
    const line = `${g.name}@${g.version}: ${report.status} max abs diff ${report.maxAbsDiff.toExponential(2)}`;
    if (report.status !== 'PASS') failed = true;
    if (check) {
      for (const [file, bytes] of Object.entries(g.files)) {
        const path = join(dir, file);
        if (!existsSync(path) || sha256Hex(readFileSync(path)) !== sha256Hex(bytes)) {
          process.stderr.write(`${g.name}@${g.version}: ${file} differs from what the generator writes\n`);
          failed = true;
        }
      }
      const committed = existsSync(join(dir, REPORT_FILE))
        ? JSON.parse(readFileSync(join(dir, REPORT_FILE), 'utf8'))
        : null;
      for (const p of reportProblems(committed, sha256Hex(g.files[MODEL_FILE]!))) {
        process.stderr.write(`${g.name}@${g.version}: ${REPORT_FILE}: ${p}\n`);
        failed = true;
      }
      process.stdout.write(`${line} (checked)\n`);
      continue;
    }
    mkdirSync(dir, { recursive: true });
    for (const [file, bytes] of Object.entries(g.files)) writeFileSync(join(dir, file), bytes);
    writeFileSync(join(dir, REPORT_FILE), json(report));
    process.stdout.write(`${line} → ${dir}\n`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
