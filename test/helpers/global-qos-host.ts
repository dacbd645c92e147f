/**
 * Runs test/helpers/global-qos-child.ts as separate node processes ("hosts"): the child and its
 * imports (src/qos/global, ioredis) are bundled once by esbuild into a temp .mjs, then each host
 * is `node <bundle> <job JSON>`; resolves with each host's JSON line.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface HostResult {
  readonly admittedAtUs: number[];
  readonly refused: number;
  readonly degraded: number;
  readonly consumed: number;
  readonly roundTrips: number;
  readonly checks: number;
}

export interface Hosts {
  run(jobs: readonly object[]): Promise<HostResult[]>;
  dispose(): void;
}

export async function bundleHosts(): Promise<Hosts> {
  const dir = mkdtempSync(join(tmpdir(), 'tp-qos-hosts-'));
  const outfile = join(dir, 'host.mjs');
  await build({
    entryPoints: [join(dirname(fileURLToPath(import.meta.url)), 'global-qos-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'error',
    // ioredis's CommonJS requires node built-ins: give the ESM bundle a require.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
  const runOne = (job: object): Promise<HostResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [outfile, JSON.stringify(job)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      child.once('exit', (code) => {
        if (code !== 0) reject(new Error(`host exited ${code}: ${err}`));
        else resolve(JSON.parse(out.trim()) as HostResult);
      });
    });
  return {
    run: (jobs) => Promise.all(jobs.map(runOne)),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
