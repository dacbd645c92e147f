/**
 * The real daemon for tests: `node bin/thunderpac.js daemon` as a child process on a temporary
 * socket and store, a node:http client over the unix socket, and cleanup that always runs.
 *
 *   const daemon = useDaemon({ config: { limits: { maxInFlight: 4 } } });   // per describe/file
 *   it('…', async () => {
 *     const res = await daemon().request({ method: 'GET', path: '/v1/health' });
 *     expect(res.status).toBe(200);
 *   });
 *
 * Or by hand: `const d = await startTestDaemon({...}); try { … } finally { await d.stop(); }`.
 * `runDaemon(args)` runs one that is expected to refuse to start (exit code + stderr).
 *
 * The daemon runs from dist/ (bin/thunderpac.js imports dist/src/cli/main.js):
 * `await ensureDistBuilt()` (called by the starters; call it in a beforeAll with a long timeout
 * when a test spawns the CLI itself) rebuilds it with tsc when any src/ file is newer than the
 * last build, under a lock so test files running at once do not build over each other.
 *
 * API (stable: other tests depend on it):
 *   startTestDaemon(options) → TestDaemon     useDaemon(options) → () => TestDaemon
 *   runDaemon(args, options) → { code, stdout, stderr }
 *   request(socketPath, req) → HttpResult      stopAllTestDaemons()    ensureDistBuilt() → Promise
 *   TestDaemon: socket, store, dir, configFile, pid, request(req), logs(), stdout(), stderr(),
 *               stop(signal?) → { code, signal }, kill()
 */

import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(REPO_ROOT, 'bin', 'thunderpac.js');

export interface HttpRequest {
  readonly method?: string;
  readonly path: string;
  /** An object is sent as JSON; a Buffer/Uint8Array or string as it is (set content-type). */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Give up after this long (ms, default 30 s): rejects. */
  readonly timeoutMs?: number;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body's bytes as they came (binary answers: bundles). */
  readonly raw: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read many body shapes; a wrong read fails the test
  readonly body: any;
}

/** One HTTP/1.1 request over a unix socket with node:http (a fresh connection each time). */
export function request(socketPath: string, req: HttpRequest): Promise<HttpResult> {
  return new Promise((resolvePromise, reject) => {
    let payload: Buffer | undefined;
    const headers: Record<string, string> = { ...req.headers };
    if (req.body !== undefined) {
      if (typeof req.body === 'string') payload = Buffer.from(req.body);
      else if (req.body instanceof Uint8Array) payload = Buffer.from(req.body);
      else {
        payload = Buffer.from(JSON.stringify(req.body));
        headers['content-type'] ??= 'application/json';
      }
      headers['content-length'] = String(payload.byteLength);
    }
    const r = httpRequest(
      { socketPath, method: req.method ?? (payload ? 'POST' : 'GET'), path: req.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const text = raw.toString('utf8');
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, text, raw, body });
        });
      },
    );
    r.setTimeout(req.timeoutMs ?? 30_000, () => r.destroy(new Error(`request ${req.path} timed out`)));
    r.on('error', reject);
    r.end(payload);
  });
}

export interface TestDaemonOptions {
  /** The config file's content (an object is written as JSON, a string as it is); none by default. */
  readonly config?: object | string;
  /** Extra command-line arguments (after --socket/--store/--config). */
  readonly args?: readonly string[];
  /** Extra environment for the daemon process. */
  readonly env?: Readonly<Record<string, string>>;
  /** Use this store / socket instead of fresh temporary ones (e.g. to share a store). */
  readonly store?: string;
  readonly socket?: string;
  /** Log level (default 'info'; logs are captured, see logs()). */
  readonly logLevel?: string;
  /** How long to wait for the daemon to answer /v1/health (default 30 s). */
  readonly readyTimeoutMs?: number;
}

export interface TestDaemon {
  readonly socket: string;
  readonly store: string;
  /** The temporary directory holding socket, store and config (removed on stop). */
  readonly dir: string;
  readonly configFile: string | null;
  readonly pid: number;
  readonly process: ChildProcess;
  request(req: HttpRequest): Promise<HttpResult>;
  /** The daemon's JSON log lines so far, parsed (non-JSON lines skipped). */
  logs(): Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  /** Send `signal` (default SIGTERM), wait for exit (killed after 20 s), remove temp files. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL without cleanup of the socket (for stale-socket tests); temp dir removed by stop(). */
  kill(): Promise<void>;
}

const running = new Set<TestDaemon>();

process.once('exit', () => {
  for (const d of running) d.process.kill('SIGKILL');
});

// ------------------------------------------------------------------------ dist build

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let built: Promise<void> | null = null;

/**
 * Rebuild dist/ with tsc when a src/ file is newer than the last build. Across processes (test
 * files of several people run at once) one builds at a time under a lock directory, and a build
 * that started after this call began counts as fresh (it saw every source this call did), so
 * waiters do not queue up one rebuild each. Never blocks the event loop (vitest's worker RPC
 * must keep answering). Once per process.
 */
export function ensureDistBuilt(): Promise<void> {
  built ??= buildDist().catch((err: unknown) => {
    built = null;
    throw err;
  });
  return built;
}

async function buildDist(): Promise<void> {
  const asked = Date.now();
  const stamp = join(REPO_ROOT, 'dist', '.test-daemon-build');
  const lock = join(REPO_ROOT, 'dist', '.test-daemon-build.lock');
  const fresh = () => {
    if (!existsSync(stamp) || !existsSync(join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'))) return false;
    const builtAt = statSync(stamp).mtimeMs; // when that build started
    return builtAt >= asked || builtAt >= newestMtime(join(REPO_ROOT, 'src'));
  };
  if (fresh()) return;
  mkdirSync(join(REPO_ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test process is building; a lock older than 5 minutes is a dead builder's.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 300_000) rmdirSync(lock);
      } catch {}
      if (fresh()) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (fresh()) return;
    const started = Date.now();
    // tsc emits despite type errors (someone's file in progress); the daemon's start says if it works.
    await new Promise<void>((resolvePromise) => {
      const tsc = spawn(
        process.execPath,
        [
          join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          '-p',
          'tsconfig.json',
          '--incremental',
          '--tsBuildInfoFile',
          join(REPO_ROOT, 'dist', '.test-daemon.tsbuildinfo'),
        ],
        { cwd: REPO_ROOT, stdio: 'ignore' },
      );
      tsc.once('exit', () => resolvePromise());
      tsc.once('error', () => resolvePromise());
    });
    writeFileSync(stamp, String(started));
    // The stamp says when the build started: a source edited during it is newer.
    utimesSync(stamp, new Date(started), new Date(started));
  } finally {
    rmdirSync(lock);
  }
}

// ------------------------------------------------------------------------ processes

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tp-daemon-'));
}

export async function startTestDaemon(options: TestDaemonOptions = {}): Promise<TestDaemon> {
  await ensureDistBuilt();
  const dir = tempDir();
  const socket = options.socket ?? join(dir, 'run', 'thunderpac.sock');
  const store = options.store ?? join(dir, 'store');
  let configFile: string | null = null;
  if (options.config !== undefined) {
    configFile = join(dir, 'config.json');
    writeFileSync(
      configFile,
      typeof options.config === 'string' ? options.config : JSON.stringify(options.config, null, 2),
    );
  }
  const args = [
    BIN,
    'daemon',
    '--socket',
    socket,
    '--store',
    store,
    '--log-level',
    options.logLevel ?? 'info',
    ...(configFile ? ['--config', configFile] : []),
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const cleanup = () => {
    running.delete(daemon);
    rmSync(dir, { recursive: true, force: true });
  };
  const daemon: TestDaemon = {
    socket,
    store,
    dir,
    configFile,
    get pid() {
      return child.pid ?? -1;
    },
    process: child,
    request: (req) => request(socket, req),
    logs: () =>
      out.split('\n').flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const result = await exited;
      clearTimeout(timer);
      cleanup();
      return result;
    },
    async kill() {
      if (!done) child.kill('SIGKILL');
      await exited;
    },
  };
  running.add(daemon);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (done) {
      cleanup();
      throw new Error(
        `the daemon exited before it answered (${child.exitCode}): ${err.trim() || out.slice(-2000)}`,
      );
    }
    try {
      await request(socket, { path: '/v1/health', timeoutMs: 2_000 });
      return daemon;
    } catch {
      if (Date.now() > deadline) {
        await daemon.stop('SIGKILL');
        throw new Error(`the daemon did not answer on ${socket} in time: ${err.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Start one daemon before the enclosing block's tests and stop it after them. */
export function useDaemon(options: TestDaemonOptions = {}): () => TestDaemon {
  let daemon: TestDaemon | undefined;
  beforeAll(async () => {
    daemon = await startTestDaemon(options);
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
  }, 30_000);
  return () => {
    if (!daemon) throw new Error('useDaemon: used outside the tests of its block');
    return daemon;
  };
}

/**
 * Run `thunderpac daemon ARGS` to completion (for starts that must fail): exit code and output.
 * Killed after `timeoutMs` (default 20 s).
 */
export function runDaemon(
  args: readonly string[],
  options: { env?: Readonly<Record<string, string>>; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return ensureDistBuilt().then(
    () =>
      new Promise((resolvePromise) => {
        const child = spawn(process.execPath, [BIN, 'daemon', ...args], {
          cwd: REPO_ROOT,
          env: { ...process.env, ...options.env },
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
        const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolvePromise({ code, stdout, stderr });
        });
      }),
  );
}

/** Stop every daemon this process started (an afterAll of last resort). */
export async function stopAllTestDaemons(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop('SIGKILL')));
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDirectory(prefix = 'tp-daemon-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
