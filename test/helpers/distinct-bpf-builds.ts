/**
 * A process that runs COUNT distinct eBPF builds (the shipped xdp_pass object under COUNT
 * names: distinct build ids) once each, for the prepared-program cache tests (run with
 * vite-node, typically under `ulimit -n`):
 *
 *   vite-node test/helpers/distinct-bpf-builds.ts -- COUNT STORE_DIR [MAX_FDS]
 *
 * Prints `done <completed> <failed> <failure codes, comma-separated, or -> <most fds seen>`;
 * a process that dies on EMFILE prints nothing of the kind.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { createBpfBuild } from '../../src/backends/ebpf/backend.js';
import { buildUdpFrame } from '../../src/runtime/packets.js';
import { Thunderpac } from '../../src/thunderpac.js';
import { bpfObjectPath } from './bpf-fixtures.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const [countText, store, maxFdsText] = args as [string, string, string | undefined];
const count = Number(countText);
const object = readFileSync(bpfObjectPath('xdp_pass.bpf.o'));
const packet = buildUdpFrame({ srcPort: 1, dstPort: 2, payload: new Uint8Array(8) });
/** Open fds now; at the ulimit itself reading the directory needs one more (EMFILE): count it as -1. */
const openFds = (): number => {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
};

const tp = await Thunderpac.open({
  store,
  ...(maxFdsText === undefined ? {} : { preparedCache: { maxFds: Number(maxFdsText) } }),
});
const sandbox = tp.sandbox({ backend: 'ebpf' });
let completed = 0;
let failed = 0;
const failures = new Set<string>();
let mostFds = 0;
for (let i = 0; i < count; i++) {
  const build = createBpfBuild(object, { name: `pass-${i}` });
  const r = await tp.execute(sandbox, { build, entry: 'xdp_pass', input: { kind: 'packet', bytes: packet } });
  if (r.status === 'completed') completed++;
  else {
    failed++;
    failures.add(String(r.error?.code));
  }
  if (i % 25 === 0) mostFds = Math.max(mostFds, openFds());
}
mostFds = Math.max(mostFds, openFds());
await tp.close();
process.stdout.write(`done ${completed} ${failed} ${[...failures].join(',') || '-'} ${mostFds}\n`);
