/**
 * A deny-by-default, deterministic WASI preview 2 host: the import object a component
 * transpiled by jco (component.ts) is instantiated with. Ours, not
 * @bytecodealliance/preview2-shim's: the shim's defaults are the host's environment, real
 * clocks and a writable host filesystem, and each would have to be configured away; here every
 * capability is decided in this file, with the same policy as the preview 1 host (wasi.ts):
 *
 *   wasi:cli/environment   sandbox.wasi args (default [build name]) and env (default empty);
 *                          no initial cwd.
 *   wasi:cli/std{in,out,err}  stdin reads the execution's input; stdout is the output (past
 *                          maxOutputBytes the guest is stopped: OUTPUT_LIMIT); stderr is kept up
 *                          to WASI_MAX_STDERR_BYTES (guest-stdio.ts, shared with wasi.ts). No
 *                          terminals.
 *   wasi:cli/exit          exit(ok) ends the run successfully, exit(err) is exit code 1 (the
 *                          preview 1 adapter reports any non-zero proc_exit code as err).
 *   wasi:clocks/*          virtual, as in wasi.ts: monotonic from 0, wall from 2000-01-01, +1 µs
 *                          per read; waiting on a clock pollable advances time, never sleeps.
 *   wasi:random/*          the seeded stream of seeded-random.ts (determinism.seed).
 *   wasi:io/*              every pollable is ready at once (nothing here blocks).
 *   wasi:filesystem/*      none, the read-only host directory (wasi-fs.ts) or the memory tree
 *                          (memfs.ts) preopened as "/": writes on a read-only one fail with
 *                          'read-only'; paths leaving it with 'not-permitted'; times are absent
 *                          (read as 0), link counts 1, metadata hashes derived from the path.
 *   wasi:sockets/*         present so that components importing them link, and every call
 *                          fails with 'access-denied': no network.
 * Anything else a component imports is refused at prepare (component.ts), never stubbed.
 *
 * Value shapes follow jco's bindings: results are returned or thrown (a thrown non-Error value
 * is the `err` payload), variants are `{ tag, val }`, enums strings, flags objects, options
 * `undefined`, u64 `bigint`. An Error thrown from here traps the guest: the exit and output
 * limit markers are such Errors (the same `thunderpacExit` / `thunderpacOutputLimit` marks as
 * wasi.ts, read by abi.ts).
 */

import { createGuestStdio } from './guest-stdio.js';
import type { SeededRandom } from './seeded-random.js';
import { WASI_EPOCH_NS } from './wasi.js';
import type { WasiFs } from './wasi-fs.js';

export interface Preview2Config {
  readonly args: readonly string[];
  /** `NAME=value` strings, as WasiConfig holds them. */
  readonly env: readonly string[];
}

export interface Preview2Host {
  /** Import object for jco's `instantiate(getCoreModule, imports)`, keyed by interface name. */
  readonly imports: Record<string, Record<string, unknown>>;
  begin(input: Uint8Array, maxOutputBytes: number): void;
  end(): { stdout: Uint8Array; stderr: Uint8Array };
}

/** The interfaces this host implements (by `wasi:package/interface`, version dropped). */
export const PREVIEW2_INTERFACES: readonly string[] = Object.freeze([
  'wasi:cli/environment',
  'wasi:cli/exit',
  'wasi:cli/stdin',
  'wasi:cli/stdout',
  'wasi:cli/stderr',
  'wasi:cli/terminal-input',
  'wasi:cli/terminal-output',
  'wasi:cli/terminal-stdin',
  'wasi:cli/terminal-stdout',
  'wasi:cli/terminal-stderr',
  'wasi:clocks/monotonic-clock',
  'wasi:clocks/wall-clock',
  'wasi:filesystem/preopens',
  'wasi:filesystem/types',
  'wasi:io/error',
  'wasi:io/poll',
  'wasi:io/streams',
  'wasi:random/random',
  'wasi:random/insecure',
  'wasi:random/insecure-seed',
]);

/** Interfaces that link but refuse every call (no network). */
export const PREVIEW2_DENIED_PREFIX = 'wasi:sockets/';

const TICK = 1000n;
/** How much a guest may hand to one stream write; the adapter splits larger writes. */
const WRITE_BUDGET = 1n << 20n;

/** WASI preview 1 errno (what WasiFs answers) → preview 2 filesystem error-code. */
const ERROR_CODES: Readonly<Record<number, string>> = {
  2: 'access',
  8: 'bad-descriptor',
  20: 'exist',
  22: 'file-too-large',
  28: 'invalid',
  29: 'io',
  31: 'is-directory',
  32: 'loop',
  37: 'name-too-long',
  44: 'no-entry',
  51: 'insufficient-space',
  54: 'not-directory',
  55: 'not-empty',
  58: 'unsupported',
  63: 'not-permitted',
  69: 'read-only',
  76: 'not-permitted', // ENOTCAPABLE: a path leaving the preopen
};
const code = (errno: number): string => ERROR_CODES[errno] ?? 'io';
/** What jco calls on a host resource when the guest drops its handle (jco's own fallback). */
const DISPOSE: symbol = (Symbol as { dispose?: symbol }).dispose ?? Symbol.for('dispose');

export function createPreview2Host(
  config: Preview2Config,
  fs: WasiFs | undefined,
  random: SeededRandom,
): Preview2Host {
  const environment = config.env.map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)] as [string, string];
  });
  const stdio = createGuestStdio(); // the same streams as the preview 1 host's
  let clock = 0n;

  class IoError {
    constructor(readonly message: string) {}
    toDebugString(): string {
      return this.message;
    }
  }
  class Pollable {
    /** A virtual monotonic instant this pollable waits for; undefined = ready now. */
    constructor(readonly deadline?: bigint) {}
    ready(): boolean {
      return this.deadline === undefined || clock >= this.deadline;
    }
    block(): void {
      if (this.deadline !== undefined && this.deadline > clock) clock = this.deadline; // no sleep
    }
  }
  const closed = (): never => {
    throw { tag: 'closed' };
  };

  class InputStream {
    constructor(
      /** Reads up to n bytes at the stream's position; an empty result is the end. */
      readonly pull: (n: number) => Uint8Array | number,
    ) {}
    read(len: bigint): Uint8Array {
      const r = this.pull(Number(len > 1n << 30n ? 1n << 30n : len));
      if (typeof r === 'number') throw { tag: 'last-operation-failed', val: new IoError(code(r)) };
      if (r.byteLength === 0 && len > 0n) closed();
      return r;
    }
    blockingRead(len: bigint): Uint8Array {
      return this.read(len);
    }
    skip(len: bigint): bigint {
      return BigInt(this.read(len).byteLength);
    }
    blockingSkip(len: bigint): bigint {
      return this.skip(len);
    }
    subscribe(): Pollable {
      return new Pollable();
    }
  }
  class OutputStream {
    constructor(readonly push: (bytes: Uint8Array) => number) {}
    checkWrite(): bigint {
      return WRITE_BUDGET;
    }
    write(contents: Uint8Array): void {
      const e = this.push(contents);
      if (e !== 0) throw { tag: 'last-operation-failed', val: new IoError(code(e)) };
    }
    blockingWriteAndFlush(contents: Uint8Array): void {
      this.write(contents);
    }
    flush(): void {}
    blockingFlush(): void {}
    writeZeroes(len: bigint): void {
      this.write(new Uint8Array(Number(len)));
    }
    blockingWriteZeroesAndFlush(len: bigint): void {
      this.writeZeroes(len);
    }
    splice(): bigint {
      throw { tag: 'last-operation-failed', val: new IoError('unsupported') };
    }
    blockingSplice(): bigint {
      return this.splice();
    }
    subscribe(): Pollable {
      return new Pollable();
    }
  }

  const stdout = new OutputStream((b) => {
    stdio.writeStdout(b);
    return 0;
  });
  const stderr = new OutputStream((b) => {
    stdio.writeStderr(b);
    return 0;
  });
  const stdinStream = new InputStream((n) => {
    const r = new Uint8Array(Math.min(n, stdio.stdinLeft()));
    stdio.readStdin(r);
    return r;
  });

  // ---- filesystem
  const wfs = fs?.writable;
  const fail = (errno: number): never => {
    throw code(errno);
  };
  const fnv = (s: string): bigint => {
    let h = 0xcbf29ce484222325n;
    for (const c of new TextEncoder().encode(s)) h = BigInt.asUintN(64, (h ^ BigInt(c)) * 0x100000001b3n);
    return h;
  };
  const typeName = (filetype: number): string =>
    filetype === 3 ? 'directory' : filetype === 4 ? 'regular-file' : 'unknown';

  /**
   * The descriptors opened by path and not dropped yet, this execution: a rename moves them with
   * the file, as the preview 1 host moves its fds (a descriptor names its file by path). Dropping
   * a handle takes it out; every execution starts with none.
   */
  const opened = new Set<Descriptor>();

  class DirectoryEntryStream {
    #i = 0;
    constructor(readonly entries: readonly (readonly [string, number])[]) {}
    readDirectoryEntry(): { type: string; name: string } | undefined {
      const e = this.entries[this.#i++];
      return e === undefined ? undefined : { type: typeName(e[1]), name: e[0] };
    }
  }
  class Descriptor {
    constructor(
      /** Path relative to the preopen; renames move it (writable memory fs). */
      public rel: string,
      readonly dir: boolean,
      readonly writable: boolean,
    ) {}
    #files(): WasiFs {
      if (fs === undefined) return fail(8);
      return fs;
    }
    #at(path: string): string {
      if (!this.dir) fail(54);
      const r = this.#files().resolve(this.rel, path);
      return typeof r === 'number' ? fail(r) : r;
    }
    #w(): NonNullable<typeof wfs> {
      if (wfs === undefined) return fail(69);
      return wfs;
    }
    #stat(rel: string) {
      const s = this.#files().stat(rel);
      if (typeof s === 'number') return fail(s);
      return {
        type: typeName(s.filetype),
        linkCount: 1n,
        size: BigInt(s.size),
        dataAccessTimestamp: undefined,
        dataModificationTimestamp: undefined,
        statusChangeTimestamp: undefined,
      };
    }
    getType(): string {
      return this.dir ? 'directory' : 'regular-file';
    }
    getFlags(): Record<string, boolean> {
      return {
        read: true,
        write: this.writable && !this.dir,
        mutateDirectory: this.dir && wfs !== undefined,
      };
    }
    stat() {
      return this.#stat(this.rel);
    }
    statAt(_pathFlags: unknown, path: string) {
      return this.#stat(this.#at(path));
    }
    metadataHash(): { lower: bigint; upper: bigint } {
      return { lower: fnv(this.rel), upper: 0n };
    }
    metadataHashAt(_pathFlags: unknown, path: string): { lower: bigint; upper: bigint } {
      const rel = this.#at(path);
      this.#stat(rel);
      return { lower: fnv(rel), upper: 0n };
    }
    isSameObject(other: Descriptor): boolean {
      return other instanceof Descriptor && other.rel === this.rel;
    }
    openAt(
      _pathFlags: unknown,
      path: string,
      open: { create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean },
      flags: { write?: boolean; mutateDirectory?: boolean },
    ): Descriptor {
      const files = this.#files();
      const rel = this.#at(path);
      const write = flags.write === true || open.create === true || open.truncate === true;
      if ((write || flags.mutateDirectory === true) && wfs === undefined) fail(69);
      let s = files.stat(rel);
      if (open.create === true && wfs !== undefined) {
        if (typeof s !== 'number' && open.exclusive === true) fail(20);
        if (typeof s === 'number') {
          const e = wfs.create(rel);
          if (e !== 0) fail(e);
          s = files.stat(rel);
        }
      }
      if (typeof s === 'number') return fail(s);
      const isDir = s.filetype === 3;
      if (open.directory === true && !isDir) fail(54);
      if (isDir && flags.write === true) fail(31);
      if (!isDir) {
        const denied = files.check(rel);
        if (denied !== 0) fail(denied);
      }
      if (open.truncate === true && !isDir) {
        const e = this.#w().truncate(rel, 0);
        if (e !== 0) fail(e);
      }
      const d = new Descriptor(rel, isDir, flags.write === true);
      opened.add(d);
      return d;
    }
    [DISPOSE](): void {
      opened.delete(this);
    }
    read(len: bigint, offset: bigint): [Uint8Array, boolean] {
      if (this.dir) fail(31);
      const buf = new Uint8Array(Number(len > 1n << 30n ? 1n << 30n : len));
      const n = this.#files().read(this.rel, buf, Number(offset));
      if (n < 0) fail(-n);
      return [buf.subarray(0, n), n < buf.byteLength];
    }
    write(buffer: Uint8Array, offset: bigint): bigint {
      if (!this.writable) fail(8);
      const n = this.#w().write(this.rel, buffer, Number(offset));
      if (n < 0) fail(-n);
      return BigInt(n);
    }
    readViaStream(offset: bigint): InputStream {
      if (this.dir) fail(31);
      let pos = Number(offset);
      return new InputStream((n) => {
        const buf = new Uint8Array(n);
        const k = this.#files().read(this.rel, buf, pos);
        if (k < 0) return -k;
        pos += k;
        return buf.subarray(0, k);
      });
    }
    writeViaStream(offset: bigint): OutputStream {
      if (!this.writable) fail(8);
      let pos = Number(offset);
      return new OutputStream((b) => {
        const k = this.#w().write(this.rel, b, pos);
        if (k < 0) return -k;
        pos += k;
        return 0;
      });
    }
    appendViaStream(): OutputStream {
      if (!this.writable) fail(8);
      return new OutputStream((b) => {
        const s = this.#files().stat(this.rel);
        if (typeof s === 'number') return s;
        const k = this.#w().write(this.rel, b, s.size);
        return k < 0 ? -k : 0;
      });
    }
    readDirectory(): DirectoryEntryStream {
      const list = this.#files().list(this.rel);
      return typeof list === 'number' ? fail(list) : new DirectoryEntryStream(list);
    }
    setSize(size: bigint): void {
      if (!this.writable) fail(wfs === undefined ? 69 : 8);
      const e = this.#w().truncate(this.rel, Number(size));
      if (e !== 0) fail(e);
    }
    setTimes(): void {
      this.#w(); // times are fixed: accepted on a writable tree, changing nothing
    }
    setTimesAt(_pathFlags: unknown, path: string): void {
      this.#stat(this.#at(path));
      this.#w();
    }
    createDirectoryAt(path: string): void {
      const e = this.#w().mkdir(this.#at(path));
      if (e !== 0) fail(e);
    }
    removeDirectoryAt(path: string): void {
      const e = this.#w().rmdir(this.#at(path));
      if (e !== 0) fail(e);
    }
    unlinkFileAt(path: string): void {
      const e = this.#w().unlink(this.#at(path));
      if (e !== 0) fail(e);
    }
    renameAt(oldPath: string, newDescriptor: Descriptor, newPath: string): void {
      const from = this.#at(oldPath);
      const to = newDescriptor.#at(newPath);
      const w = this.#w();
      const e = w.rename(from, to);
      if (e !== 0) fail(e);
      for (const d of opened) d.rel = w.renamed(d.rel, from, to);
    }
    linkAt(): void {
      this.#w();
      fail(58);
    }
    symlinkAt(): void {
      this.#w();
      fail(58);
    }
    readlinkAt(): string {
      return fail(28); // no links are shown: they would reveal host paths
    }
    advise(): void {}
    sync(): void {}
    syncData(): void {}
  }

  const randomBytes = (len: bigint): Uint8Array => {
    const b = new Uint8Array(Number(len));
    random.fill(b);
    return b;
  };
  const randomU64 = (): bigint => new DataView(randomBytes(8n).buffer).getBigUint64(0, true);
  const exit = (code: number): never => {
    const e = new Error(`exit ${code}`);
    Object.defineProperty(e, 'thunderpacExit', { value: code });
    throw e;
  };
  const wallNow = () => {
    clock += TICK;
    const ns = WASI_EPOCH_NS + clock;
    return { seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) };
  };
  class TerminalInput {}
  class TerminalOutput {}

  const imports: Record<string, Record<string, unknown>> = {
    'wasi:cli/environment': {
      getEnvironment: () => environment.map(([k, v]) => [k, v]),
      getArguments: () => [...config.args],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status: { tag: string }) => exit(status.tag === 'ok' ? 0 : 1),
      exitWithCode: (c: number) => exit(c & 0xff),
    },
    'wasi:cli/stdin': { getStdin: () => stdinStream },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:clocks/monotonic-clock': {
      now: () => {
        clock += TICK;
        return clock;
      },
      resolution: () => TICK,
      subscribeInstant: (when: bigint) => new Pollable(when),
      subscribeDuration: (d: bigint) => new Pollable(clock + d),
    },
    'wasi:clocks/wall-clock': {
      now: wallNow,
      resolution: () => ({ seconds: 0n, nanoseconds: Number(TICK) }),
    },
    'wasi:filesystem/preopens': {
      getDirectories: () => (fs === undefined ? [] : [[new Descriptor('', true, false), '/']]),
    },
    'wasi:filesystem/types': {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined,
    },
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': {
      Pollable,
      poll: (list: Pollable[]) => {
        // Advance to the earliest deadline when nothing is ready yet; then report the ready ones.
        if (!list.some((p) => p.ready())) {
          const next = list.reduce<bigint | undefined>(
            (m, p) => (p.deadline !== undefined && (m === undefined || p.deadline < m) ? p.deadline : m),
            undefined,
          );
          if (next !== undefined && next > clock) clock = next;
        }
        return new Uint32Array(list.flatMap((p, i) => (p.ready() ? [i] : [])));
      },
    },
    'wasi:io/streams': { InputStream, OutputStream },
    'wasi:random/random': { getRandomBytes: randomBytes, getRandomU64: randomU64 },
    'wasi:random/insecure': { getInsecureRandomBytes: randomBytes, getInsecureRandomU64: randomU64 },
    'wasi:random/insecure-seed': { insecureSeed: () => [randomU64(), randomU64()] },
  };

  return {
    imports,
    begin(input, maxOutputBytes) {
      fs?.reset?.();
      opened.clear();
      stdio.begin(input, maxOutputBytes);
      clock = 0n;
      random.reset();
    },
    end() {
      fs?.reset?.();
      opened.clear();
      return stdio.end();
    },
  };
}

/**
 * The import namespace of a denied interface (wasi:sockets/*): whatever the glue asks for is a
 * function failing with 'access-denied', or, for a resource (a capitalized name), a class whose
 * instances the host never hands out.
 */
export function deniedInterface(): Record<string, unknown> {
  const cache = new Map<string, unknown>();
  return new Proxy(
    {},
    {
      get(_t, name) {
        if (typeof name !== 'string') return undefined;
        let v = cache.get(name);
        if (v === undefined) {
          v = /^[A-Z]/.test(name)
            ? class Denied {}
            : () => {
                throw 'access-denied';
              };
          cache.set(name, v);
        }
        return v;
      },
    },
  );
}
