/**
 * The real daemon for the model-serving tests: `node bin/thunderpac.js daemon` (dist/ built by
 * `npx tsc -p tsconfig.json`) on a socket and store in a fresh temp dir, a node:http client
 * over that socket, and a stop that sends SIGTERM, waits for exit 0 and removes the temp dir.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packagePath } from '../../src/runtime/package-root.js';

export interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: any;
}

export interface ModelDaemon {
  readonly dir: string;
  readonly socket: string;
  readonly store: string;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpReply>;
  /** SIGTERM, then the exit code (the temp dir stays until `cleanup`). */
  stop(): Promise<number | null>;
  /** Stop if running, and remove the temp dir. */
  cleanup(): Promise<void>;
  readonly log: () => string;
}

export function request(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpReply> {
  const payload =
    body === undefined
      ? undefined
      : typeof body === 'string' || Buffer.isBuffer(body)
        ? body
        : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path,
        headers: {
          ...(payload !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function startModelDaemon(extraArgs: readonly string[] = []): Promise<ModelDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'tp-kserve-'));
  const socket = join(dir, 'tp.sock');
  const store = join(dir, 'store');
  let log = '';
  const proc: ChildProcess = spawn(
    process.execPath,
    [
      packagePath('bin', 'thunderpac.js'),
      'daemon',
      '--socket',
      socket,
      '--store',
      store,
      '--log-level',
      'warn',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let child: ChildProcess | null = proc;
  proc.stdout?.on('data', (c: Buffer) => {
    log += c.toString();
  });
  proc.stderr?.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (!child) return exited;
    child.kill('SIGTERM');
    child = null;
    return exited;
  };
  const cleanup = async (): Promise<void> => {
    const c = child;
    if (c) {
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      child = null;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Up when /v2/health/live answers (the socket exists a little before the routes do).
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await cleanup();
      throw new Error(`daemon exited with ${proc.exitCode} before it served: ${log}`);
    }
    try {
      const r = await request(socket, 'GET', '/v2/health/live');
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await cleanup();
      throw new Error(`daemon did not come up in 20 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    dir,
    socket,
    store,
    request: (method, path, body, headers) => request(socket, method, path, body, headers),
    stop,
    cleanup,
    log: () => log,
  };
}
