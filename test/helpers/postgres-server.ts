/**
 * A real PostgreSQL cluster for the store's fleet index tests: Debian's PostgreSQL 15 binaries
 * (`/usr/lib/postgresql/15/bin`, or `POSTGRES_BIN`; `scripts/setup.sh` installs them), a fresh
 * cluster made by `initdb` in a temp dir, the postmaster on a free loopback port (TCP only: no
 * Unix socket), trust authentication for the `postgres` superuser, fsync off (a test cluster).
 *
 * PostgreSQL refuses to run as root, so when the tests run as root the cluster's dir is given to
 * `nobody` and initdb and the postmaster run as that user (spawn's uid/gid, which also drops the
 * supplementary groups). `kill` is an immediate shutdown (SIGQUIT, as `pg_ctl stop -m immediate`:
 * the server and its backends go at once, no checkpoint; the next start recovers from the WAL),
 * `restart` starts it again on the same port and data, `pause`/`resume` SIGSTOP/SIGCONT the
 * postmaster and its backends (a hung database: connections stay open, nothing answers), and
 * `stop` always shuts it down and removes the dir.
 *
 *   const pg = await startPostgresServer();
 *   try { … pg.url … } finally { await pg.stop(); }
 *
 * `postgresMissing()` says why no cluster can be started here (binaries absent), for skipIf.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const POSTGRES_BIN = process.env.POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';
const INITDB = join(POSTGRES_BIN, 'initdb');
const POSTGRES = join(POSTGRES_BIN, 'postgres');
const PG_ISREADY = join(POSTGRES_BIN, 'pg_isready');

/** Why a cluster cannot be started here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  for (const bin of [INITDB, POSTGRES, PG_ISREADY]) {
    if (!existsSync(bin)) return `${bin} is missing (run scripts/setup.sh, or set POSTGRES_BIN)`;
  }
  return undefined;
}

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Pid of the running postmaster (changes at restart). */
  pid(): number;
  /** What the server printed, for failure messages. */
  log(): string;
  /** Immediate shutdown (SIGQUIT); resolves when the postmaster has exited. */
  kill(): Promise<void>;
  /** Start it again on the same port and data; resolves when it accepts connections. */
  restart(): Promise<void>;
  /** SIGSTOP the postmaster and its backends: connections stay open and nothing answers. */
  pause(): void;
  resume(): void;
  /** Fast shutdown (SIGINT, then SIGKILL), wait for exit, remove the dir. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGQUIT');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Run as `nobody` when we are root (PostgreSQL refuses root). */
function identity(): { uid?: number; gid?: number } {
  return process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
}

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { ...identity(), timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** The pids of a postmaster's children (its backends and helpers), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

interface Running {
  child: ChildProcess;
  exited: boolean;
  exit: Promise<void>;
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const missing = postgresMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'tp-postgres-'));
  const data = join(dir, 'data');
  const who = identity();
  if (who.uid !== undefined) chownSync(dir, who.uid, who.gid ?? who.uid);
  let log = '';
  try {
    const init = await run(INITDB, [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ]);
    if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code}): ${init.out}`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const launch = (port: number): Running => {
    const args = [
      '-D',
      data,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-k',
      '',
      '-F',
      '-c',
      'max_connections=50',
      '-c',
      'shared_buffers=16MB',
    ];
    const child = spawn(POSTGRES, args, { ...who, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.stdout?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    const r: Running = { child, exited: false, exit: Promise.resolve() };
    r.exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        r.exited = true;
        running.delete(child);
        resolve();
      }),
    );
    return r;
  };
  const waitReady = async (r: Running, port: number): Promise<boolean> => {
    const deadline = Date.now() + 30_000;
    while (!r.exited && Date.now() < deadline) {
      const ready = await run(PG_ISREADY, [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        '-t',
        '2',
      ]);
      if (ready.code === 0) return true;
      await new Promise((res) => setTimeout(res, 50));
    }
    return false;
  };
  const shutdown = async (r: Running, signal: NodeJS.Signals): Promise<void> => {
    if (!r.exited) {
      const pid = r.child.pid;
      if (pid !== undefined) {
        for (const c of childrenOf(pid)) {
          try {
            process.kill(c, 'SIGCONT');
          } catch {}
        }
      }
      r.child.kill('SIGCONT');
      r.child.kill(signal);
    }
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
    await r.exit;
    clearTimeout(timer);
  };
  const signalAll = (r: Running, signal: NodeJS.Signals): void => {
    const pid = r.child.pid;
    if (pid === undefined || r.exited) return;
    const pids = signal === 'SIGSTOP' ? [...childrenOf(pid), pid] : [pid, ...childrenOf(pid)];
    for (const p of pids) {
      try {
        process.kill(p, signal);
      } catch {}
    }
  };

  // A port taken between the probe and the bind is retried with another.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let current = launch(port);
    if (await waitReady(current, port)) {
      return {
        url: `postgres://postgres@127.0.0.1:${port}/postgres`,
        port,
        dir,
        pid: () => current.child.pid ?? -1,
        log: () => log,
        kill: () => shutdown(current, 'SIGQUIT'),
        restart: async () => {
          await shutdown(current, 'SIGQUIT');
          current = launch(port);
          if (!(await waitReady(current, port))) throw new Error(`postgres did not restart: ${log}`);
        },
        pause: () => signalAll(current, 'SIGSTOP'),
        resume: () => signalAll(current, 'SIGCONT'),
        stop: async () => {
          await shutdown(current, 'SIGINT');
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await shutdown(current, 'SIGQUIT');
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`postgres did not start: ${log}`);
    }
  }
}
