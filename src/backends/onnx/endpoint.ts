/**
 * One onnx worker, as a thread or as a child process, behind one small interface.
 *
 * Why both: onnxruntime-node cannot be interrupted inside a thread — terminating a worker
 * thread while session.run() is in flight aborts the WHOLE process ("terminate called after
 * throwing an instance of 'Napi::Error'"; reproduced with onnxruntime-node 1.30.0). So:
 *   - thread: cheapest hop, shared address space; never killed while busy (timeouts fail the
 *     request and the pool waits for the run to end before it reuses or retires the thread);
 *   - process: `node -e` with an IPC channel (advanced serialization: typed arrays cross as
 *     bytes); a crash or SIGKILL takes only the child, so timeouts kill it and a crash is
 *     contained — the isolation level to choose for untrusted models or hard deadlines.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { workerSource } from './worker-source.js';

export type Isolation = 'thread' | 'process';

export interface Endpoint {
  readonly isolation: Isolation;
  /** Whether kill() is safe while a request runs (false for threads, see above). */
  readonly killableWhileBusy: boolean;
  send(message: unknown, transfer: ArrayBuffer[]): void;
  /** Stop it; resolves when it is gone. */
  kill(): Promise<void>;
  ref(): void;
  unref(): void;
}

export interface EndpointEvents {
  message(m: unknown): void;
  error(message: string): void;
  exit(detail: string): void;
}

let threadSource: string | undefined;
let processSource: string | undefined;

export function spawnEndpoint(
  isolation: Isolation,
  ortPath: string,
  on: EndpointEvents,
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number },
): Endpoint {
  if (isolation === 'thread') {
    threadSource ??= workerSource('thread');
    const worker = new Worker(threadSource, {
      eval: true,
      workerData: { ortPath },
      ...(resourceLimits && { resourceLimits }),
    });
    worker.on('message', on.message);
    worker.on('error', (err) => on.error(err.message));
    worker.on('exit', (code) => on.exit(`exit code ${code}`));
    worker.unref();
    return {
      isolation,
      killableWhileBusy: false,
      send: (m, transfer) => worker.postMessage(m, transfer),
      kill: async () => {
        worker.ref(); // an unref'd worker would let the process exit before termination completes
        await worker.terminate();
      },
      ref: () => worker.ref(),
      unref: () => worker.unref(),
    };
  }
  processSource ??= workerSource('process');
  const heap = resourceLimits?.maxOldGenerationSizeMb;
  const child: ChildProcess = spawn(
    process.execPath,
    [...(heap ? [`--max-old-space-size=${heap}`] : []), '-e', processSource],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, THUNDERPAC_ORT_PATH: ortPath },
    },
  );
  child.on('message', on.message);
  child.on('error', (err) => on.error(err.message));
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      on.exit(signal ? `killed by ${signal}` : `exit code ${code}`);
      resolve();
    });
  });
  const channel = () => (child as unknown as { channel?: { ref(): void; unref(): void } }).channel;
  child.unref();
  channel()?.unref();
  return {
    isolation,
    killableWhileBusy: true,
    send: (m) => child.send(m as never),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // Ref'd while we wait: otherwise the loop may empty and exit before 'exit' arrives.
        child.ref();
        child.kill('SIGKILL');
      }
      await exited;
    },
    ref: () => {
      child.ref();
      channel()?.ref();
    },
    unref: () => {
      child.unref();
      channel()?.unref();
    },
  };
}
