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
  mapBtf(map: string): { key: NativeBtfType | null; value: NativeBtfType } | null;
  programBtf(program: string): {
    name: string;
    params: { name: string; pointer: boolean; type: NativeBtfType }[];
    returns: NativeBtfType;
  } | null;
  setProgramOptions(
    program: string,
    options: { type?: number; expectedAttachType?: number; flags?: number; autoload?: boolean },
  ): void;
  close(): void;
}

export interface NativeLiveMapInfo {
  readonly name: string;
  readonly id: number;
  readonly type: number;
  readonly typeName: string | null;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly mapFlags: number;
  readonly perCpu: boolean;
  /** Bytes per value as userspace reads/writes it (per-CPU: one 8-byte-aligned slot per CPU). */
  readonly userValueSize: number;
  readonly btfId: number;
}

/** A BTF type as native/src/btf_describe.h describes it. */
export type NativeBtfType =
  | {
      readonly kind: 'int';
      readonly name: string;
      readonly size: number;
      readonly signed: boolean;
      readonly bool: boolean;
      readonly bits: number;
      readonly bitOffset: number;
    }
  | { readonly kind: 'enum'; readonly name: string; readonly size: number; readonly signed: boolean }
  | {
      readonly kind: 'struct' | 'union';
      readonly name: string;
      readonly size: number;
      readonly members: readonly NativeBtfMember[];
    }
  | {
      readonly kind: 'array';
      readonly name: string;
      readonly size: number;
      readonly count: number;
      readonly element: NativeBtfType;
    }
  | { readonly kind: 'typedef'; readonly name: string; readonly size: number; readonly type: NativeBtfType }
  | { readonly kind: 'ptr' | 'other'; readonly name: string; readonly size: number };

export interface NativeBtfMember {
  readonly name: string;
  readonly bitOffset: number;
  readonly bitfieldSize: number;
  readonly type: NativeBtfType;
}

export interface NativeBatchResult {
  readonly keys: Buffer;
  readonly values: Buffer;
  readonly count: number;
  readonly token: Buffer;
  readonly done: boolean;
}

export interface NativeMapCreateSpec {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
  readonly name?: string;
  readonly innerMapFd?: number;
}

export interface NativeBpfMap {
  readonly fd: number;
  info(): NativeLiveMapInfo;
  lookup(key: Uint8Array, flags?: number): Buffer | null;
  lookupInto(key: Uint8Array, out: Uint8Array, flags?: number): boolean;
  lookupAndDelete(key: Uint8Array | null): Buffer | null;
  update(key: Uint8Array, value: Uint8Array, flags?: number): void;
  delete(key: Uint8Array): boolean;
  nextKey(key: Uint8Array | null): Buffer | null;
  lookupBatch(options: { token?: Uint8Array; count?: number; delete?: boolean }): NativeBatchResult;
  updateBatch(keys: Uint8Array, values: Uint8Array, count: number, flags?: number): number;
  deleteBatch(keys: Uint8Array, count: number): number;
  freeze(): void;
  pin(path: string): void;
  btf(): { key: NativeBtfType | null; value: NativeBtfType } | null;
  close(): void;
}

export interface NativeXdpTarget {
  readonly ifname: string;
  readonly netns?: string;
}

export interface NativeXdpQuery {
  readonly ifindex: number;
  readonly progId: number;
  readonly drvProgId: number;
  readonly skbProgId: number;
  readonly hwProgId: number;
  readonly attachMode: number;
}

export interface NativeProgInfo {
  readonly id: number;
  readonly name: string;
  readonly type: number;
  readonly typeName: string | null;
  readonly tag: string;
  readonly runCount: number;
  readonly runTimeNs: number;
}

export interface NativeLinkInfo {
  readonly id: number;
  readonly progId: number;
  readonly type: number;
  /** 0 once the link is detached. */
  readonly ifindex: number;
}

export interface NativeBpfLink {
  info(): NativeLinkInfo;
  pin(path: string): void;
  update(progFd: number, expectedProgId?: number): void;
  detach(): void;
  close(): void;
}

export interface NativeRingBuffer {
  stats(): { delivered: number; dropped: number; pending: number; open: boolean };
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NativeAddon {
  BpfMap: new (source: number | { pinned: string } | { create: NativeMapCreateSpec }) => NativeBpfMap;
  BpfLink: new (
    source: { pinned: string } | { xdp: NativeXdpTarget & { progFd: number; flags?: number } },
  ) => NativeBpfLink;
  RingBuffer: new (
    mapFd: number,
    callback: (record: Buffer) => void,
    options?: { maxPending?: number },
  ) => NativeRingBuffer;
  xdpAttach(options: NativeXdpTarget & { progFd: number; flags?: number; expectedProgId?: number }): number;
  xdpDetach(options: NativeXdpTarget & { flags?: number; expectedProgId?: number }): void;
  xdpQuery(options: NativeXdpTarget): NativeXdpQuery;
  progInfo(options: { fd: number } | { id: number } | { pinned: string }): NativeProgInfo;
  progPin(progFd: number, path: string): void;
  /** BPF_ENABLE_STATS(RUN_TIME): an fd; statistics are collected while it is open. */
  enableStats(): number;
  /** "MAJOR.MINOR" of the libbpf the addon links. */
  libbpfVersion(): string;
  numPossibleCpus(): number;
  testRunFd(progFd: number, data: Uint8Array, options?: NativeTestRunOptions): NativeTestRunResult;
  BpfObject: new (
    source: string | Uint8Array,
    options?: { objectName?: string; sourcePath?: string },
  ) => NativeBpfObject;
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
