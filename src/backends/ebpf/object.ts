/**
 * BpfObject: a BPF ELF object (programs + maps) opened from a file or bytes, loaded into the
 * kernel, test-run with BPF_PROG_TEST_RUN and inspected. A thin, typed layer over the native
 * addon; every native error surfaces as a BpfError subclass (see errors.ts).
 */
import { basename } from 'node:path';
import { loadAddon } from './addon.js';
import type {
  NativeBpfObject,
  NativeBtfType,
  NativeMapInfo,
  NativeProgramInfo,
  NativeTestRunResult,
} from './addon.js';
import { codecFromBtf, keyCodecFromBtf } from './btf.js';
import { bytes, type Codec } from './codec.js';
import { BpfError, callNative } from './errors.js';
import { readObjectFile } from './object-file.js';
import { vetBpfObject } from './object-vetting.js';

export type BpfObjectState = 'opened' | 'loaded' | 'load-failed' | 'closed';

export type BpfProgramInfo = NativeProgramInfo;
export type BpfMapInfo = NativeMapInfo;

/** XDP verdicts, indexed by their numeric value (enum xdp_action). */
export const XDP_ACTIONS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'] as const;
export type XdpAction = (typeof XDP_ACTIONS)[number];

/** The kernel treats an out-of-range XDP return value as XDP_ABORTED; so do we. */
export function xdpActionOf(retval: number): XdpAction {
  return XDP_ACTIONS[retval] ?? 'XDP_ABORTED';
}

export interface OpenOptions {
  /** Object name (libbpf truncates it to 15 characters). Defaults to the file name, or 'memory' for bytes. */
  readonly objectName?: string;
}

export interface LoadOptions {
  /**
   * Kernel verifier log level for every program (1 = basic, 2 = every instruction,
   * 4 = statistics; may be OR-ed). With a level set, each program's log is kept even when the
   * load succeeds (`program(name).verifierLog`). Rejections always carry the full log.
   */
  readonly logLevel?: number;
}

export interface TestRunOptions {
  /** Run the program this many times in the kernel; durationNs is the per-run average. */
  readonly repeat?: number;
  /**
   * Output capacity in bytes. Default: input length + 8 KiB, and a larger output is re-run at
   * the size the kernel asks for (the program runs twice: map side effects repeat). Given: a
   * hard cap; the program runs once and a larger output comes back cut to the cap with
   * `truncated: true` (use it to enforce an output limit). 0 skips copying the output back.
   */
  readonly dataOutSize?: number;
  /** Program context (for XDP: struct xdp_md) passed in; its final state comes back as ctxOut. */
  readonly ctxIn?: Uint8Array;
}

export interface TestRunResult {
  readonly retval: number;
  /** The verdict, for XDP programs. */
  readonly action?: XdpAction;
  /** The packet as the program left it (may be shorter or longer than the input). */
  readonly data: Uint8Array;
  /** Full length of the output packet, even when `data` was truncated to dataOutSize. */
  readonly dataSize: number;
  /** The output exceeded the dataOutSize cap; `data` holds only its first dataOutSize bytes. */
  readonly truncated: boolean;
  /** Kernel-measured average duration of one run, in nanoseconds. */
  readonly durationNs: number;
  readonly repeat: number;
  readonly ctxOut?: Uint8Array;
}

export class BpfObject {
  readonly #native: NativeBpfObject;
  /** The path it was opened from, or '<memory>' for bytes. */
  readonly source: string;
  #programs: readonly BpfProgramInfo[] | undefined;
  #programsByName: ReadonlyMap<string, BpfProgramInfo> | undefined;
  #programsByFd: ReadonlyMap<number, BpfProgramInfo> | undefined;
  #maps: readonly BpfMapInfo[] | undefined;

  private constructor(native: NativeBpfObject, source: string) {
    this.#native = native;
    this.source = source;
  }

  /**
   * Opens (parses, does not load) a BPF ELF object from a file path or its bytes. The bytes are
   * vetted first (object-vetting.ts): a malformed object throws MalformedObjectError
   * (EBPF_MALFORMED_OBJECT) and never reaches libbpf in this process. A file is read once, and
   * libbpf parses exactly the bytes that were vetted.
   */
  static open(source: string | Uint8Array, options: OpenOptions = {}): BpfObject {
    const addon = loadAddon();
    if (typeof source === 'string') {
      const bytes = readObjectFile(source);
      const objectName = options.objectName ?? libbpfObjectNameOf(source);
      vetBpfObject(bytes, { path: source, objectName });
      const native = callNative(() => new addon.BpfObject(bytes, { objectName, sourcePath: source }));
      return new BpfObject(native, source);
    }
    // Bytes another thread can write must not change between the vetting and libbpf.
    const owned = source.buffer instanceof SharedArrayBuffer ? source.slice() : source;
    vetBpfObject(owned, { objectName: options.objectName });
    const native = callNative(() => new addon.BpfObject(owned, options));
    return new BpfObject(native, '<memory>');
  }

  get name(): string {
    return this.#native.name;
  }

  get state(): BpfObjectState {
    return this.#native.state;
  }

  get closed(): boolean {
    return this.#native.state === 'closed';
  }

  /** A map's key/value types from the object's BTF (before or after load), or null without BTF. */
  mapBtf(name: string): { key: NativeBtfType | null; value: NativeBtfType } | null {
    return callNative(() => this.#native.mapBtf(name));
  }

  /** Key/value codecs derived from the object's BTF (LPM keys as prefixes), or null without BTF. */
  mapCodecs(name: string): { key: Codec<unknown>; value: Codec<unknown> } | null {
    const btf = this.mapBtf(name);
    if (btf === null) return null;
    const info = this.map(name);
    return {
      key: btf.key === null ? bytes(info.keySize) : keyCodecFromBtf(btf.key, info.typeName === 'lpm_trie'),
      value: codecFromBtf(btf.value),
    };
  }

  /** The program's entry function signature from BTF (e.g. `int xdp_acl(struct xdp_md *ctx)`). */
  programBtf(name: string): ReturnType<NativeBpfObject['programBtf']> {
    return callNative(() => this.#native.programBtf(name));
  }

  /**
   * Before load: override a program's type (enum bpf_prog_type), expected attach type, load
   * flags (BPF_F_*), or skip loading it (autoload false). Refused with EBPF_STATE after load.
   */
  setProgramOptions(
    program: string,
    options: {
      readonly type?: number;
      readonly expectedAttachType?: number;
      readonly flags?: number;
      readonly autoload?: boolean;
    },
  ): this {
    this.#forgetInfo();
    callNative(() => this.#native.setProgramOptions(program, options));
    return this;
  }

  /**
   * Loads every program and creates every map in the kernel. A verifier rejection throws
   * VerifierError with the complete log; after a failed load the object must be reopened.
   */
  load(options: LoadOptions = {}): this {
    this.#forgetInfo();
    callNative(() => this.#native.load(options));
    return this;
  }

  get programs(): readonly BpfProgramInfo[] {
    this.#programs ??= Object.freeze(callNative(() => this.#native.programs()));
    return this.#programs;
  }

  get maps(): readonly BpfMapInfo[] {
    this.#maps ??= Object.freeze(callNative(() => this.#native.maps()));
    return this.#maps;
  }

  /** The program of that name; throws BpfError EBPF_NOT_FOUND listing the programs there are. */
  program(name: string): BpfProgramInfo {
    this.#programsByName ??= new Map(this.programs.map((program) => [program.name, program]));
    const program = this.#programsByName.get(name);
    if (program === undefined) {
      throw new BpfError(
        'EBPF_NOT_FOUND',
        `no program '${name}' in BPF object '${this.name}' (${this.#names('programs')})`,
        {
          objectName: this.name,
          program: name,
        },
      );
    }
    return program;
  }

  /** The map of that name; throws BpfError EBPF_NOT_FOUND listing the maps there are. */
  map(name: string): BpfMapInfo {
    const map = this.maps.find((candidate) => candidate.name === name);
    if (map === undefined) {
      throw new BpfError(
        'EBPF_NOT_FOUND',
        `no map '${name}' in BPF object '${this.name}' (${this.#names('maps')})`,
        {
          objectName: this.name,
          map: name,
        },
      );
    }
    return map;
  }

  /**
   * Runs a loaded program on `packet` in the kernel (BPF_PROG_TEST_RUN), by name or by the fd
   * of one of this object's programs. Map side effects are real: counters count.
   */
  testRun(program: string | number, packet: Uint8Array, options: TestRunOptions = {}): TestRunResult {
    const info = typeof program === 'string' ? this.program(program) : this.#programByFd(program);
    const result = callNative(() => this.#native.testRun(program, packet, options));
    return toTestRunResult(result, info?.typeName === 'xdp');
  }

  /**
   * The raw value stored under `key`, or null when there is none. For per-CPU maps the value
   * holds one slot per possible CPU, each padded to 8 bytes (see mapLookupPerCpu).
   */
  mapLookup(mapName: string, key: Uint8Array): Uint8Array | null {
    const value = callNative(() => this.#native.mapLookup(mapName, key));
    return value === null ? null : plainBytes(value);
  }

  /** A per-CPU map's value split into one `valueSize`-byte view per possible CPU. */
  mapLookupPerCpu(mapName: string, key: Uint8Array): Uint8Array[] | null {
    const map = this.map(mapName);
    if (!map.perCpu) {
      throw new BpfError('EBPF_INVALID_ARG', `map '${mapName}' (${map.typeName}) is not a per-CPU map`, {
        objectName: this.name,
        map: mapName,
      });
    }
    const value = this.mapLookup(mapName, key);
    if (value === null) return null;
    const stride = Math.ceil(map.valueSize / 8) * 8;
    const slots: Uint8Array[] = [];
    for (let offset = 0; offset + map.valueSize <= value.length; offset += stride) {
      slots.push(value.subarray(offset, offset + map.valueSize));
    }
    return slots;
  }

  /** Unloads programs, closes maps and frees the object. Idempotent; GC does it too, later. */
  close(): void {
    this.#forgetInfo();
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #programByFd(fd: number): BpfProgramInfo | undefined {
    this.#programsByFd ??= new Map(
      this.programs.flatMap((program) => (program.fd === null ? [] : [[program.fd, program] as const])),
    );
    return this.#programsByFd.get(fd);
  }

  #names(kind: 'programs' | 'maps'): string {
    const names = (kind === 'programs' ? this.programs : this.maps).map((entry) => entry.name);
    return `${kind}: ${names.length === 0 ? 'none' : names.join(', ')}`;
  }

  // Program and map info carries fds, which appear on load and vanish on close.
  #forgetInfo(): void {
    this.#programs = undefined;
    this.#programsByName = undefined;
    this.#programsByFd = undefined;
    this.#maps = undefined;
  }
}

/** The name libbpf gives an object opened by path: the file name up to its first dot, at most 15 characters. */
function libbpfObjectNameOf(path: string): string {
  const name = basename(path).slice(0, 15);
  const dot = name.indexOf('.');
  return dot === -1 ? name : name.slice(0, dot);
}

/**
 * Test-runs a loaded program by fd (e.g. one pinned in bpffs). Pass `xdp: true` to get the
 * verdict as an action name.
 */
export function testRunFd(
  progFd: number,
  packet: Uint8Array,
  options: TestRunOptions & { readonly xdp?: boolean } = {},
): TestRunResult {
  const addon = loadAddon();
  const result = callNative(() => addon.testRunFd(progFd, packet, options));
  return toTestRunResult(result, options.xdp === true);
}

/** The libbpf version the addon links, "MAJOR.MINOR". */
export function libbpfVersion(): string {
  return loadAddon().libbpfVersion();
}

/** Possible CPUs as libbpf counts them: the number of slots in a per-CPU map value. */
export function numPossibleCpus(): number {
  const addon = loadAddon();
  return callNative(() => addon.numPossibleCpus());
}

function toTestRunResult(result: NativeTestRunResult, isXdp: boolean): TestRunResult {
  return {
    retval: result.retval,
    ...(isXdp ? { action: xdpActionOf(result.retval) } : {}),
    data: plainBytes(result.dataOut),
    dataSize: result.dataSizeOut,
    truncated: result.truncated,
    durationNs: result.durationNs,
    repeat: result.repeat,
    ...(result.ctxOut === undefined ? {} : { ctxOut: plainBytes(result.ctxOut) }),
  };
}

/**
 * The addon returns Buffers; callers get plain Uint8Array views of the same memory (no copy)
 * so results compare and serialize like any other byte array.
 */
function plainBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
