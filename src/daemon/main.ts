/**
 * `thunderpac daemon [--config FILE] [--socket PATH] [--listen HOST:PORT] [--store DIR]`:
 * runs in the foreground (systemd style) until SIGTERM or SIGINT, then drains and exits 0.
 */

import { parseArgs } from 'node:util';
import { defaultModelDir } from '../backends/onnx/registry.js';
import { DEFAULT_BPFFS_ROOT } from '../backends/ebpf/xdp.js';
import { storeDir } from '../cli/io.js';
import { DEFAULT_LIMITS, DEFAULT_SOCKET, type DaemonConfig } from './config.js';
import { startDaemon } from './server.js';

export async function daemonCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      socket: { type: 'string' },
      listen: { type: 'string' },
      store: { type: 'string' },
      'models-dir': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  const config: DaemonConfig = {
    socket: values.socket ?? process.env.THUNDERPAC_SOCKET ?? DEFAULT_SOCKET,
    socketMode: 0o660,
    listen: null,
    store: storeDir(values.store),
    modelsDir: values['models-dir'] ?? defaultModelDir(),
    bpffsRoot: process.env.THUNDERPAC_BPFFS ?? DEFAULT_BPFFS_ROOT,
    limits: DEFAULT_LIMITS,
    policy: null,
    nats: null,
    logLevel: (values['log-level'] as DaemonConfig['logLevel'] | undefined) ?? 'info',
  };
  const daemon = await startDaemon(config);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await daemon.stop();
  return 0;
}
