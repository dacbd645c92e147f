/** Paths of the BPF objects built by `npm run build:bpf`, with a clear failure when missing. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `name` relative to bpf/, e.g. 'xdp_counter.bpf.o' or 'testdata/bad_unbounded_read.bpf.o'. */
export function bpfObjectPath(name: string): string {
  const path = fileURLToPath(new URL(`../../bpf/${name}`, import.meta.url));
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build:bpf\` first`);
  return path;
}
