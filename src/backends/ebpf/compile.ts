/**
 * Compiles BPF C source into a BTF-carrying BPF ELF object with clang, with the same flags as
 * bpf/Makefile (so the shipped headers in bpf/, e.g. parse.h, are includable).
 *
 * Reproducible: the source is compiled under a fixed file name and the temporary directory is
 * mapped away from debug info, so the same source and clang give the same bytes, and thus the
 * same build id.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { packagePath } from '../../runtime/package-root.js';
import { BpfError } from './errors.js';

export interface CompileOptions {
  readonly clang?: string;
  /** Extra -I directories (bpf/ of this package is always included). */
  readonly includeDirs?: readonly string[];
  readonly defines?: Readonly<Record<string, string>>;
}

export interface CompiledObject {
  readonly object: Uint8Array;
  readonly toolchain: Readonly<Record<string, string>>;
}

let multiarch: string | undefined;

function hostMultiarch(): string {
  multiarch ??= (() => {
    try {
      return execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
    } catch {
      return arch() === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
    }
  })();
  return multiarch;
}

export function clangVersion(clang = 'clang'): string {
  const text = execFileSync(clang, ['--version'], { encoding: 'utf8' });
  return /version (\S+)/.exec(text)?.[1] ?? text.split('\n')[0] ?? 'unknown';
}

export function compileBpfC(source: string, options: CompileOptions = {}): CompiledObject {
  const clang = options.clang ?? 'clang';
  const dir = mkdtempSync(join(tmpdir(), 'tp-bpfc-'));
  try {
    writeFileSync(join(dir, 'program.bpf.c'), source);
    const target = arch() === 'arm64' ? 'arm64' : 'x86';
    const args = [
      '-O2',
      '-g',
      '-target',
      'bpf',
      `-D__TARGET_ARCH_${target}`,
      `-I/usr/include/${hostMultiarch()}`,
      `-I${packagePath('bpf')}`,
      ...(options.includeDirs ?? []).map((d) => `-I${d}`),
      ...Object.entries(options.defines ?? {}).map(([k, v]) => `-D${k}=${v}`),
      `-fdebug-prefix-map=${dir}=/thunderpac`,
      '-Wall',
      '-c',
      'program.bpf.c',
      '-o',
      'program.bpf.o',
    ];
    try {
      execFileSync(clang, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message);
      throw new BpfError('EBPF_OPEN', `clang could not compile the BPF C source:\n${stderr.trim()}`, {
        cause: err,
      });
    }
    return {
      object: new Uint8Array(readFileSync(join(dir, 'program.bpf.o'))),
      toolchain: { clang: clangVersion(clang) },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
