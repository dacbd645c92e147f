/**
 * The real `thunderpac` command as a child process (`node bin/thunderpac.js …`, from dist/, built
 * by ensureDistBuilt): exit code, stdout and stderr. Spawned asynchronously so a daemon started
 * by the same test keeps being served; killed after `timeoutMs`.
 *
 * THUNDERPAC_SOCKET and THUNDERPAC_STORE are removed from the inherited environment, so a test
 * chooses in-process or client mode explicitly (`env` puts them back).
 */

import { spawn } from 'node:child_process';
import { BIN, ensureDistBuilt, REPO_ROOT } from './daemon.js';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(
  args: readonly string[],
  options: { env?: Readonly<Record<string, string>>; timeoutMs?: number } = {},
): Promise<CliResult> {
  await ensureDistBuilt();
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.THUNDERPAC_SOCKET;
  delete env.THUNDERPAC_STORE;
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
