/**
 * BpfMap: a live kernel map held by its own fd, with typed keys and values.
 *
 * Open one from a loaded BpfObject (`BpfMap.fromObject`), from a bpffs pin (`openPinned`) or
 * create one (`create`). Keys and values go through codecs (codec.ts): derived from the map's
 * BTF when it has some, raw bytes otherwise, or whatever `withCodecs` sets. Bad keys/values
 * throw CodecError (or EBPF_INVALID_ARG for wrong raw sizes) before any syscall; kernel
 * failures throw MapError with errno. A closed map throws ClosedHandleError.
 */
import { unlinkSync } from 'node:fs';
import { loadAddon } from './addon.js';
import type { NativeBpfMap, NativeBtfType, NativeLiveMapInfo, NativeMapCreateSpec } from './addon.js';
import { codecFromBtf, keyCodecFromBtf } from './btf.js';
import { bytes, type Codec, decode, encode } from './codec.js';
import { BpfError, callNative, fromNativeError } from './errors.js';
import type { BpfObject } from './object.js';

/** enum bpf_map_type values of the map types thunderpac creates or recognises. */
export const MAP_TYPES = {
  hash: 1,
  array: 2,
  percpu_hash: 5,
  percpu_array: 6,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  queue: 22,
  ringbuf: 27,
} as const;
export type MapTypeName = keyof typeof MAP_TYPES;

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST. */
export type UpdateMode = 'any' | 'noexist' | 'exist';
const UPDATE_FLAGS: Record<UpdateMode, number> = { any: 0, noexist: 1, exist: 2 };
/** BPF_F_NO_PREALLOC: required for LPM tries. */
export const BPF_F_NO_PREALLOC = 1;

export type MapInfo = NativeLiveMapInfo;

export interface CreateMapSpec {
  readonly type: MapTypeName | number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
  readonly name?: string;
  /** For array/hash of maps: a map whose shape the inner maps must have. */
  readonly innerMap?: BpfMap<unknown, unknown>;
}

export interface BatchOptions {
  /** Elements per syscall (default 256). */
  readonly chunk?: number;
}

const DEFAULT_BATCH = 256;

export class BpfMap<K = Uint8Array, V = Uint8Array> {
  readonly #native: NativeBpfMap;
  readonly info: MapInfo;
  readonly keyCodec: Codec<K>;
  readonly valueCodec: Codec<V>;
  /** Slot stride of per-CPU values (value size rounded up to 8). */
  readonly #stride: number;

  private constructor(native: NativeBpfMap, info: MapInfo, keyCodec: Codec<K>, valueCodec: Codec<V>) {
    this.#native = native;
    this.info = info;
    this.keyCodec = keyCodec;
    this.valueCodec = valueCodec;
    this.#stride = Math.ceil(info.valueSize / 8) * 8;
  }

  /** A raw-bytes view of a native map handle (takes ownership of `native`). */
  static #wrap(native: NativeBpfMap): BpfMap {
    const info = callNative(() => native.info());
    return new BpfMap(native, info, bytes(info.keySize), bytes(info.valueSize));
  }

  /** The map `name` of a loaded object, as its own handle (dup of the fd): outlives the object. */
  static fromObject(object: BpfObject, name: string): BpfMap {
    const fd = object.map(name).fd;
    if (fd === null) {
      throw new BpfError('EBPF_STATE', `map '${name}' has no fd: load BPF object '${object.name}' first`, {
        objectName: object.name,
        map: name,
      });
    }
    const addon = loadAddon();
    return BpfMap.#wrap(callNative(() => new addon.BpfMap(fd)));
  }

  static openPinned(path: string): BpfMap {
    const addon = loadAddon();
    return BpfMap.#wrap(callNative(() => new addon.BpfMap({ pinned: path })));
  }

  static create(spec: CreateMapSpec): BpfMap {
    const addon = loadAddon();
    const type = typeof spec.type === 'number' ? spec.type : MAP_TYPES[spec.type];
    const native: NativeMapCreateSpec = {
      type,
      keySize: spec.keySize,
      valueSize: spec.valueSize,
      maxEntries: spec.maxEntries,
      ...(spec.flags === undefined ? {} : { flags: spec.flags }),
      ...(spec.name === undefined ? {} : { name: spec.name }),
      ...(spec.innerMap === undefined ? {} : { innerMapFd: spec.innerMap.fd }),
    };
    return BpfMap.#wrap(callNative(() => new addon.BpfMap({ create: native })));
  }

  /** Removes a pin from bpffs (the map lives on while anything else holds it). */
  static unpin(path: string): void {
    try {
      unlinkSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new BpfError('EBPF_SYSTEM', `cannot unpin ${path}: ${(err as Error).message}`, {
        path,
        cause: err,
        ...(code === 'ENOENT' ? { errno: 2 } : {}),
      });
    }
  }

  get name(): string {
    return this.info.name;
  }

  get fd(): number {
    return callNative(() => this.#native.fd);
  }

  /** The kernel's BTF description of key and value, or null when the map was made without. */
  btf(): { key: NativeBtfType | null; value: NativeBtfType } | null {
    return callNative(() => this.#native.btf());
  }

  /**
   * The same map with codecs derived from its BTF (LPM-trie keys as 'ADDRESS/LEN'). Without
   * BTF, keys and values stay raw bytes. Shares the handle: closing either closes both.
   */
  typed(): BpfMap<unknown, unknown> {
    const btf = this.btf();
    if (btf === null) return this as BpfMap<unknown, unknown>;
    const key =
      btf.key === null
        ? bytes(this.info.keySize)
        : keyCodecFromBtf(btf.key, this.info.typeName === 'lpm_trie');
    return this.withCodecs(key as Codec<unknown>, codecFromBtf(btf.value));
  }

  /** The same map with the given codecs (sizes must match the map's). Shares the handle. */
  withCodecs<K2, V2>(keyCodec: Codec<K2>, valueCodec: Codec<V2>): BpfMap<K2, V2> {
    if (keyCodec.size !== this.info.keySize || valueCodec.size !== this.info.valueSize) {
      throw new BpfError(
        'EBPF_INVALID_ARG',
        `codecs of ${keyCodec.size}/${valueCodec.size} bytes do not fit map '${this.name}' ` +
          `(${this.info.keySize}-byte keys, ${this.info.valueSize}-byte values)`,
        { map: this.name },
      );
    }
    return new BpfMap(this.#native, this.info, keyCodec, valueCodec);
  }

  encodeKey(key: K): Uint8Array {
    return encode(this.keyCodec, key, 'key');
  }

  encodeValue(value: V): Uint8Array {
    return encode(this.valueCodec, value, 'value');
  }

  /** The value under `key`, or undefined. Per-CPU maps: use getPerCpu. */
  get(key: K): V | undefined {
    this.#requireShared('get');
    const raw = callNative(() => this.#native.lookup(this.encodeKey(key)));
    return raw === null ? undefined : decode(this.valueCodec, raw);
  }

  /** One value per possible CPU. */
  getPerCpu(key: K): V[] | undefined {
    this.#requirePerCpu('getPerCpu');
    const raw = callNative(() => this.#native.lookup(this.encodeKey(key)));
    return raw === null ? undefined : this.#splitPerCpu(raw);
  }

  /** Sets `key`. mode 'noexist' fails with MapError EEXIST when present; 'exist' with ENOENT when absent. */
  set(key: K, value: V, mode: UpdateMode = 'any'): void {
    this.#requireShared('set');
    const k = this.encodeKey(key);
    const v = this.encodeValue(value);
    callNative(() => this.#native.update(k, v, UPDATE_FLAGS[mode]));
  }

  /** Sets a per-CPU value: one value per possible CPU. */
  setPerCpu(key: K, values: readonly V[], mode: UpdateMode = 'any'): void {
    this.#requirePerCpu('setPerCpu');
    const cpus = this.info.userValueSize / this.#stride;
    if (values.length !== cpus) {
      throw new BpfError(
        'EBPF_INVALID_ARG',
        `map '${this.name}' needs ${cpus} per-CPU values, got ${values.length}`,
        {
          map: this.name,
        },
      );
    }
    const raw = new Uint8Array(this.info.userValueSize);
    values.forEach((value, cpu) => {
      raw.set(this.encodeValue(value), cpu * this.#stride);
    });
    const k = this.encodeKey(key);
    callNative(() => this.#native.update(k, raw, UPDATE_FLAGS[mode]));
  }

  /** True when the key was there. */
  delete(key: K): boolean {
    const k = this.encodeKey(key);
    return callNative(() => this.#native.delete(k));
  }

  /** Removes and returns the value (hash maps; queues/stacks pop with key null). */
  take(key: K | null): V | undefined {
    const k = key === null ? null : this.encodeKey(key);
    const raw = callNative(() => this.#native.lookupAndDelete(k));
    return raw === null ? undefined : decode(this.valueCodec, raw);
  }

  /** Iterates keys with BPF_MAP_GET_NEXT_KEY (a concurrent delete may restart the walk: kernel semantics). */
  *keys(): Generator<K> {
    let current: Uint8Array | null = null;
    for (;;) {
      const previous: Uint8Array | null = current;
      const next: Buffer | null = callNative(() => this.#native.nextKey(previous));
      if (next === null) return;
      current = next;
      yield decode(this.keyCodec, next);
    }
  }

  /** Key/value pairs via get-next-key + lookup (per-CPU maps: values are per-CPU arrays). */
  *entries(): Generator<[K, V | V[]]> {
    for (const key of this.keys()) {
      const value = this.info.perCpu ? this.getPerCpu(key) : this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  /**
   * Every entry via BPF_MAP_LOOKUP_BATCH, `chunk` per syscall. With `deleteAfter`, uses
   * LOOKUP_AND_DELETE_BATCH (hash maps only). Per-CPU values come back as arrays.
   */
  getBatch(options: BatchOptions & { readonly deleteAfter?: boolean } = {}): [K, V | V[]][] {
    const out: [K, V | V[]][] = [];
    this.#scanBatch(options, (keys, values, count) => {
      for (let i = 0; i < count; i++) {
        const key = decode(this.keyCodec, keys, i * this.info.keySize);
        const raw = values.subarray(i * this.info.userValueSize, (i + 1) * this.info.userValueSize);
        out.push([key, this.info.perCpu ? this.#splitPerCpu(raw) : decode(this.valueCodec, raw)]);
      }
    });
    return out;
  }

  /** Raw batch lookup: calls `sink` with packed keys/values per chunk; returns the count. */
  scanBatchRaw(
    sink: (keys: Uint8Array, values: Uint8Array, count: number) => void,
    options: BatchOptions = {},
  ): number {
    return this.#scanBatch(options, sink);
  }

  /** Sets many entries with BPF_MAP_UPDATE_BATCH, `chunk` per syscall. Returns how many. */
  setBatch(
    entries: readonly (readonly [K, V])[],
    mode: UpdateMode = 'any',
    options: BatchOptions = {},
  ): number {
    this.#requireShared('setBatch');
    const chunk = options.chunk ?? DEFAULT_BATCH;
    let done = 0;
    for (let start = 0; start < entries.length; start += chunk) {
      const slice = entries.slice(start, start + chunk);
      const keys = new Uint8Array(slice.length * this.info.keySize);
      const values = new Uint8Array(slice.length * this.info.valueSize);
      slice.forEach(([key, value], i) => {
        keys.set(encode(this.keyCodec, key, `entries[${start + i}].key`), i * this.info.keySize);
        values.set(encode(this.valueCodec, value, `entries[${start + i}].value`), i * this.info.valueSize);
      });
      done += this.setBatchRaw(keys, values, slice.length, mode);
    }
    return done;
  }

  /** Packed keys and values, `count` of each. */
  setBatchRaw(keys: Uint8Array, values: Uint8Array, count: number, mode: UpdateMode = 'any'): number {
    return callNative(() => this.#native.updateBatch(keys, values, count, UPDATE_FLAGS[mode]));
  }

  /** Deletes many keys with BPF_MAP_DELETE_BATCH. Returns how many. */
  deleteBatch(keys: readonly K[], options: BatchOptions = {}): number {
    const chunk = options.chunk ?? DEFAULT_BATCH;
    let done = 0;
    for (let start = 0; start < keys.length; start += chunk) {
      const slice = keys.slice(start, start + chunk);
      const packed = new Uint8Array(slice.length * this.info.keySize);
      slice.forEach((key, i) => {
        packed.set(encode(this.keyCodec, key, `keys[${start + i}]`), i * this.info.keySize);
      });
      done += callNative(() => this.#native.deleteBatch(packed, slice.length));
    }
    return done;
  }

  /** Raw single lookup (no codec): the hot path for benchmarks and tight loops. */
  lookupRaw(key: Uint8Array): Uint8Array | null {
    // No closure on the hot path: a direct call, errors converted the same way as callNative.
    try {
      return this.#native.lookup(key);
    } catch (err) {
      throw fromNativeError(err);
    }
  }

  /** Allocation-free lookup into `out` (userValueSize bytes): true when the key exists. */
  lookupInto(key: Uint8Array, out: Uint8Array): boolean {
    try {
      return this.#native.lookupInto(key, out);
    } catch (err) {
      throw fromNativeError(err);
    }
  }

  updateRaw(key: Uint8Array, value: Uint8Array, mode: UpdateMode = 'any'): void {
    try {
      this.#native.update(key, value, UPDATE_FLAGS[mode]);
    } catch (err) {
      throw fromNativeError(err);
    }
  }

  /** Makes the map read-only for userspace (BPF_MAP_FREEZE); programs can still write. */
  freeze(): void {
    callNative(() => this.#native.freeze());
  }

  pin(path: string): void {
    callNative(() => this.#native.pin(path));
  }

  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #scanBatch(
    options: BatchOptions & { readonly deleteAfter?: boolean },
    sink: (keys: Uint8Array, values: Uint8Array, count: number) => void,
  ): number {
    const count = options.chunk ?? DEFAULT_BATCH;
    let token: Uint8Array | undefined;
    let total = 0;
    for (;;) {
      const request = { count, delete: options.deleteAfter === true, ...(token ? { token } : {}) };
      const result = callNative(() => this.#native.lookupBatch(request));
      if (result.count > 0) sink(result.keys, result.values, result.count);
      total += result.count;
      if (result.done) return total;
      token = result.token;
    }
  }

  #splitPerCpu(raw: Uint8Array): V[] {
    const values: V[] = [];
    for (let offset = 0; offset + this.info.valueSize <= raw.byteLength; offset += this.#stride) {
      values.push(decode(this.valueCodec, raw, offset));
    }
    return values;
  }

  #requireShared(operation: string): void {
    if (this.info.perCpu) {
      throw new BpfError(
        'EBPF_INVALID_ARG',
        `map '${this.name}' is per-CPU (${this.info.typeName}): use ${operation}PerCpu`,
        { map: this.name },
      );
    }
  }

  #requirePerCpu(operation: string): void {
    if (!this.info.perCpu) {
      throw new BpfError(
        'EBPF_INVALID_ARG',
        `${operation}: map '${this.name}' (${this.info.typeName}) is not per-CPU`,
        {
          map: this.name,
        },
      );
    }
  }
}

/** Sums per-CPU numeric or bigint counters field by field. */
export function sumPerCpu<T>(values: readonly T[]): T {
  const [first, ...rest] = values;
  if (first === undefined) throw new BpfError('EBPF_INVALID_ARG', 'no per-CPU values to sum');
  return rest.reduce<T>((total, value) => addCounters(total, value) as T, first);
}

function addCounters(a: unknown, b: unknown): unknown {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a + b;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (
    typeof a === 'object' &&
    a !== null &&
    typeof b === 'object' &&
    b !== null &&
    !(a instanceof Uint8Array)
  ) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(a))
      out[key] = addCounters(value, (b as Record<string, unknown>)[key]);
    return out;
  }
  return a;
}
