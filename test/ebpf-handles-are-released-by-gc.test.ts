import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { packagePath } from '../src/runtime/package-root.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';

// Runs in a child with --expose-gc over the compiled package (the set-up builds dist/): loads
// BPF objects and maps, drops them without close(), and counts this process's open fds.
const script = `
const { readdirSync } = await import('node:fs');
const { BpfObject } = await import(${JSON.stringify(packagePath('dist', 'src', 'backends', 'ebpf', 'object.js'))});
const fds = () => readdirSync('/proc/self/fd').length;
const settle = async () => { for (let i = 0; i < 6; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); } };
await settle();
const before = fds();
(() => { for (let i = 0; i < 100; i++) BpfObject.open(process.argv[1]).load(); })();
const loaded = fds();
await settle();
console.log(JSON.stringify({ before, loaded, after: fds() }));
`;

describe('native handles', () => {
  it('are released by the garbage collector when never closed', () => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', script, bpfObjectPath('xdp_counter.bpf.o')],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    const { before, loaded, after } = JSON.parse(out) as { before: number; loaded: number; after: number };
    expect(loaded - before).toBeGreaterThanOrEqual(100); // each loaded object holds kernel fds
    expect(after - before).toBeLessThan(10);
  });
});
