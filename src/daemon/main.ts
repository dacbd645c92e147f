/**
 * `thunderpac daemon [--config FILE] [--socket PATH] [--listen HOST:PORT] [--store DIR]
 * [--models-dir DIR] [--log-level LEVEL]`: runs in the foreground (systemd style) until SIGTERM
 * or SIGINT, then stops accepting, drains in-flight executions (bounded by
 * limits.drainTimeoutMs), flushes the receipt log and exits 0.
 *
 * A daemon that cannot start says why in one line on stderr and exits 2 when the operator's
 * input is at fault (bad config or flag, store or socket in use, unusable path) or 70 for
 * anything unexpected.
 */

import { parseArgs } from 'node:util';
import { DEFAULT_BPFFS_ROOT } from '../backends/ebpf/xdp.js';
import { defaultModelDir } from '../backends/onnx/registry.js';
import { storeDir, UsageError } from '../cli/io.js';
import { ThunderpacError } from '../runtime/errors.js';
import { ConfigError, DEFAULT_SOCKET, loadConfig } from './config.js';
import { DaemonStartError, startDaemon } from './server.js';

export const EXIT_USAGE = 2;
export const EXIT_SOFTWARE = 70;

function fail(message: string, code: number): number {
  process.stderr.write(`thunderpac daemon: ${message}\n`);
  return code;
}

export async function daemonCommand(argv: string[]): Promise<number> {
  // Listen for the signals before starting: a SIGTERM during start stops the daemon once up.
  const signal = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        socket: { type: 'string' },
        listen: { type: 'string' },
        store: { type: 'string' },
        'models-dir': { type: 'string' },
        'log-level': { type: 'string' },
      },
    });
    if (positionals.length > 0) return fail(`unexpected argument '${positionals[0]}'`, EXIT_USAGE);
    const config = loadConfig(
      {
        config: values.config,
        socket: values.socket,
        listen: values.listen,
        store: values.store,
        modelsDir: values['models-dir'],
        logLevel: values['log-level'],
      },
      {
        socket: process.env.THUNDERPAC_SOCKET ?? DEFAULT_SOCKET,
        store: () => storeDir(undefined),
        modelsDir: defaultModelDir(),
        bpffsRoot: process.env.THUNDERPAC_BPFFS ?? DEFAULT_BPFFS_ROOT,
      },
    );
    daemon = await startDaemon(config);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, EXIT_USAGE);
    if (err instanceof DaemonStartError) return fail(err.message, err.exitCode);
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
      return fail((err as Error).message, EXIT_USAGE);
    // A path the operator named that cannot be used (the CLI's UsageError: store dir) is theirs.
    if (err instanceof UsageError) return fail((err as Error).message, EXIT_USAGE);
    if (process.env.THUNDERPAC_DEBUG === '1') process.stderr.write(`${(err as Error).stack}\n`);
    const what = err instanceof ThunderpacError ? `${err.code}: ${err.message}` : (err as Error).message;
    return fail(`cannot start: ${what}`, EXIT_SOFTWARE);
  }
  daemon.app.log.info({ signal: await signal }, 'signal received');
  try {
    await daemon.stop();
  } catch (err) {
    return fail(`stopping: ${(err as Error).message}`, EXIT_SOFTWARE);
  }
  return 0;
}
