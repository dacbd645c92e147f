/**
 * Loads the thunderpac native addon (build/Release/thunderpac_native.node, built by
 * `npm run build:native`) and declares its interface. The addon is thin: everything here is
 * a direct libbpf call; policy lives in object.ts and above.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/package-root.js';
import { AddonUnavailableError } from './errors.js';

export interface NativeProgramInfo {
  readonly name: string;
  readonly sectionName: string;
  /** enum bpf_prog_type and libbpf's name for it (e.g. 6, 'xdp'). */
  readonly type: number;
  readonly typeName: string | null;
  /** enum bpf_attach_type (expected attach type) and its name. */
  readonly attachType: number;
  readonly attachTypeName: string | null;
  /** Program fd once loaded, else null. */
  readonly fd: number | null;
  readonly insnCount: number;
  readonly autoload: boolean;
  /** Verifier log of a successful load, present when load({ logLevel }) asked for it. */
  readonly verifierLog?: string;
}

export interface NativeMapInfo {
  readonly name: string;
  readonly type: number;
  readonly typeName: string | null;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly mapFlags: number;
  readonly perCpu: boolean;
  readonly fd: number | null;
}

export interface NativeTestRunOptions {
  readonly repeat?: number;
  /**
   * Output capacity. Default: input length + 8 KiB, and a larger output is retried at the size
   * the kernel asks for. Given: a hard cap; a larger output is truncated (truncated: true).
   * 0 skips copying the output back.
   */
  readonly dataOutSize?: number;
  readonly ctxIn?: Uint8Array;
}

export interface NativeTestRunResult {
  readonly retval: number;
  readonly dataOut: Buffer;
  /** Length of the program's output packet as the kernel reports it. */
  readonly dataSizeOut: number;
  /** The output was longer than the dataOutSize cap; dataOut holds its first dataOutSize bytes. */
  readonly truncated: boolean;
  /** Kernel-measured average duration of one run, in ns. */
  readonly durationNs: number;
  readonly repeat: number;
  readonly ctxOut?: Buffer;
}

export type NativeObjectState = 'opened' | 'loaded' | 'load-failed' | 'closed';

export interface NativeBpfObject {
  readonly name: string;
  readonly state: NativeObjectState;
  load(options?: { logLevel?: number }): NativeBpfObject;
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  testRun(program: string | number, data: Uint8Array, options?: NativeTestRunOptions): NativeTestRunResult;
  mapLookup(mapName: string, key: Uint8Array): Buffer | null;
  close(): void;
}

export interface NativeAddon {
  /** "MAJOR.MINOR" of the libbpf the addon links. */
  libbpfVersion(): string;
  numPossibleCpus(): number;
  testRunFd(progFd: number, data: Uint8Array, options?: NativeTestRunOptions): NativeTestRunResult;
  BpfObject: new (source: string | Uint8Array, options?: { objectName?: string }) => NativeBpfObject;
}

const ADDON_RELATIVE_PATH = join('build', 'Release', 'thunderpac_native.node');
/** Overrides where the addon is loaded from (e.g. a node-gyp build elsewhere). */
const ADDON_PATH_ENV = 'THUNDERPAC_NATIVE_ADDON';

/** The package root (shared with the rest of the runtime). */
export function packageRoot(): string {
  return PACKAGE_ROOT;
}

export function addonPath(): string {
  return process.env[ADDON_PATH_ENV] ?? join(packageRoot(), ADDON_RELATIVE_PATH);
}

let cachedAddon: NativeAddon | undefined;

/** The native addon, loaded once. Throws AddonUnavailableError with build instructions. */
export function loadAddon(): NativeAddon {
  if (cachedAddon !== undefined) return cachedAddon;
  const path = addonPath();
  const howToBuild =
    'build it with `npm run build:native` (needs cmake, a C++17 compiler and libbpf-dev), ' +
    `or point ${ADDON_PATH_ENV} at a built thunderpac_native.node`;
  if (!existsSync(path)) {
    throw new AddonUnavailableError(path, `thunderpac native addon not found at ${path}: ${howToBuild}`);
  }
  try {
    cachedAddon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new AddonUnavailableError(
      path,
      `cannot load thunderpac native addon ${path}: ${reason}; ${howToBuild}`,
      err,
    );
  }
  return cachedAddon;
}
