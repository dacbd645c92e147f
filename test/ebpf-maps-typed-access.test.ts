import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  array,
  cstruct,
  decode,
  encode,
  ipAddress,
  ipPrefix,
  u16,
  be16,
  u32,
  u64,
} from '../src/backends/ebpf/codec.js';
import { BpfError, ClosedHandleError, CodecError, MapError } from '../src/backends/ebpf/errors.js';
import { BPF_F_NO_PREALLOC, BpfMap, sumPerCpu } from '../src/backends/ebpf/map.js';
import { BpfObject, numPossibleCpus } from '../src/backends/ebpf/object.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';

const PIN_DIR = `/sys/fs/bpf/thunderpac-test-maps-${process.pid}`;
const handles: { close(): void }[] = [];
function keep<T extends { close(): void }>(handle: T): T {
  handles.push(handle);
  return handle;
}
afterEach(() => {
  for (const handle of handles.splice(0)) handle.close();
});
afterAll(() => rmSync(PIN_DIR, { recursive: true, force: true }));

function u32Key(n: number): Uint8Array {
  return encode(u32, n);
}

function thrown(action: () => unknown): BpfError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(BpfError);
    return err as BpfError;
  }
  throw new Error('expected a BpfError');
}

describe('codecs', () => {
  it('lays out C structs with alignment, big-endian network fields and bigints', () => {
    const codec = cstruct<{ a: number; port: number; count: bigint; addr: string }>([
      ['a', u16],
      ['port', be16],
      ['count', u64],
      ['addr', ipAddress(6)],
    ]);
    expect(codec.size).toBe(32);
    const bytes = encode(codec, { a: 1, port: 0x1234, count: 5n, addr: '2001:db8::1' });
    expect(Array.from(bytes.subarray(0, 4))).toEqual([1, 0, 0x12, 0x34]);
    expect(decode(codec, bytes)).toEqual({ a: 1, port: 0x1234, count: 5n, addr: '2001:db8::1' });
  });

  it('encodes LPM prefixes with host bits cleared, and refuses malformed ones', () => {
    const v4 = ipPrefix(4);
    expect(Array.from(encode(v4, '10.1.2.3/8'))).toEqual([8, 0, 0, 0, 10, 0, 0, 0]);
    expect(decode(v4, encode(v4, '10.1.2.3'))).toBe('10.1.2.3/32');
    expect(decode(ipPrefix(6), encode(ipPrefix(6), 'fd00:1:2::ff/48'))).toBe('fd00:1:2::/48');
    for (const bad of ['10.0.0.0/33', '300.1.1.1/8', 'fd00::/8', 'x/1']) {
      expect(() => encode(v4, bad, 'key')).toThrow(CodecError);
    }
  });

  it('refuses values of the wrong shape with the field path', () => {
    const codec = cstruct<{ rate: bigint; list: number[] }>([
      ['rate', u64],
      ['list', array(u16, 2)],
    ]);
    const error = thrown(() => encode(codec, { rate: -1n, list: [1, 2] }, 'value')) as CodecError;
    expect(error.code).toBe('EBPF_CODEC');
    expect(error.field).toBe('value.rate');
    expect((thrown(() => encode(codec, { rate: 1n, list: [1, 70000] })) as CodecError).field).toBe(
      'value.list[1]',
    );
    expect((thrown(() => encode(codec, { rate: 1n } as never)) as CodecError).field).toBe('value.list');
    expect(thrown(() => encode(codec, { rate: 1n, list: [1, 2], extra: 1 } as never)).code).toBe(
      'EBPF_CODEC',
    );
  });
});

describe('BpfMap on real kernel maps', () => {
  it('hash: update modes, lookup, delete, iteration', () => {
    const map = keep(
      BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 16, name: 'tp_hash' }),
    );
    const typed = map.withCodecs(u32, u64);
    typed.set(1, 10n, 'noexist');
    const exists = thrown(() => typed.set(1, 11n, 'noexist')) as MapError;
    expect(exists).toBeInstanceOf(MapError);
    expect(exists.errno).toBe(constants.errno.EEXIST);
    expect(exists.errnoName).toBe('EEXIST');
    expect(exists.operation).toBe('update');
    expect((thrown(() => typed.set(2, 1n, 'exist')) as MapError).errno).toBe(constants.errno.ENOENT);
    typed.set(1, 12n, 'exist');
    typed.set(2, 20n);
    typed.set(3, 30n);
    expect(typed.get(1)).toBe(12n);
    expect(typed.get(99)).toBeUndefined();
    expect([...typed.keys()].sort()).toEqual([1, 2, 3]);
    expect(typed.delete(2)).toBe(true);
    expect(typed.delete(2)).toBe(false);
    expect(new Map(typed.entries())).toEqual(
      new Map([
        [1, 12n],
        [3, 30n],
      ]),
    );
    expect(typed.take(3)).toBe(30n);
    expect(typed.get(3)).toBeUndefined();
  });

  it('batch update / lookup / delete / lookup-and-delete across chunks', () => {
    const map = keep(BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1000 })).withCodecs(
      u32,
      u32,
    );
    const entries = Array.from({ length: 700 }, (_, i) => [i, i * 3] as const);
    expect(map.setBatch(entries, 'any', { chunk: 128 })).toBe(700);
    const read = map.getBatch({ chunk: 100 });
    expect(read.length).toBe(700);
    expect(new Map(read)).toEqual(new Map(entries));
    expect(map.deleteBatch(Array.from({ length: 200 }, (_, i) => i))).toBe(200);
    const taken = map.getBatch({ chunk: 64, deleteAfter: true });
    expect(taken.length).toBe(500);
    expect([...map.keys()]).toEqual([]);
  });

  it('array and per-CPU array/hash: one value per possible CPU', () => {
    const cpus = numPossibleCpus();
    const arr = keep(BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 4 })).withCodecs(
      u32,
      u64,
    );
    arr.set(2, 7n);
    expect(arr.get(2)).toBe(7n);
    expect(arr.get(0)).toBe(0n);
    // Array elements always exist: deleting is refused by the kernel.
    expect((thrown(() => arr.delete(1)) as MapError).errno).toBe(constants.errno.EINVAL);

    const percpu = keep(
      BpfMap.create({ type: 'percpu_array', keySize: 4, valueSize: 4, maxEntries: 2 }),
    ).withCodecs(u32, u32);
    percpu.setPerCpu(
      1,
      Array.from({ length: cpus }, (_, cpu) => cpu + 1),
    );
    expect(percpu.getPerCpu(1)).toEqual(Array.from({ length: cpus }, (_, cpu) => cpu + 1));
    expect(sumPerCpu(percpu.getPerCpu(1)!)).toBe((cpus * (cpus + 1)) / 2);
    expect(thrown(() => percpu.get(1)).code).toBe('EBPF_INVALID_ARG');
    expect(thrown(() => percpu.setPerCpu(1, [1])).code).toBe('EBPF_INVALID_ARG');

    const phash = keep(
      BpfMap.create({ type: 'percpu_hash', keySize: 4, valueSize: 8, maxEntries: 8 }),
    ).withCodecs(u32, u64);
    phash.setPerCpu(
      5,
      Array.from({ length: cpus }, () => 2n),
    );
    expect(phash.getBatch()).toEqual([[5, Array.from({ length: cpus }, () => 2n)]]);
  });

  it('LRU hash evicts instead of failing when full', () => {
    const lru = keep(
      BpfMap.create({ type: 'lru_hash', keySize: 4, valueSize: 4, maxEntries: 64 }),
    ).withCodecs(u32, u32);
    for (let i = 0; i < 1000; i++) lru.set(i, i);
    const count = [...lru.keys()].length;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThanOrEqual(64 + 2 * numPossibleCpus() * 64);
    expect(lru.get(999)).toBe(999);
  });

  it('LPM trie: longest prefix wins', () => {
    const trie = keep(
      BpfMap.create({ type: 'lpm_trie', keySize: 8, valueSize: 4, maxEntries: 16, flags: BPF_F_NO_PREALLOC }),
    ).withCodecs(ipPrefix(4), u32);
    trie.set('10.0.0.0/8', 8);
    trie.set('10.1.0.0/16', 16);
    expect(trie.get('10.1.2.3/32')).toBe(16);
    expect(trie.get('10.2.2.3/32')).toBe(8);
    expect(trie.get('11.0.0.1/32')).toBeUndefined();
    expect([...trie.keys()].sort()).toEqual(['10.0.0.0/8', '10.1.0.0/16']);
  });

  it('array of maps holds inner map fds', () => {
    const inner = keep(BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 }));
    const outer = keep(
      BpfMap.create({ type: 'array_of_maps', keySize: 4, valueSize: 4, maxEntries: 2, innerMap: inner }),
    );
    outer.updateRaw(u32Key(0), u32Key(inner.fd));
    // Reading an array of maps returns the inner map's id, not an fd.
    expect(decode(u32, outer.lookupRaw(u32Key(0))!)).toBe(inner.info.id);
    expect(outer.info.typeName).toBe('array_of_maps');
  });

  it('hash of maps: inner maps by fd in, by id out', () => {
    const inner = keep(BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 }));
    const outer = keep(
      BpfMap.create({ type: 'hash_of_maps', keySize: 4, valueSize: 4, maxEntries: 4, innerMap: inner }),
    ).withCodecs(u32, u32);
    outer.set(7, inner.fd);
    expect(outer.get(7)).toBe(inner.info.id);
    expect([...outer.keys()]).toEqual([7]);
    // A map of another shape is refused by the kernel.
    const other = keep(BpfMap.create({ type: 'hash', keySize: 8, valueSize: 4, maxEntries: 4 }));
    expect((thrown(() => outer.set(8, other.fd)) as MapError).errno).toBe(constants.errno.EINVAL);
  });

  it('freeze, pin, open pinned, unpin', () => {
    mkdirSync(PIN_DIR, { recursive: true });
    const map = keep(BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 })).withCodecs(
      u32,
      u32,
    );
    map.set(0, 42);
    const path = `${PIN_DIR}/frozen`;
    map.pin(path);
    map.freeze();
    expect((thrown(() => map.set(0, 1)) as MapError).errno).toBe(constants.errno.EPERM);
    const reopened = keep(BpfMap.openPinned(path)).withCodecs(u32, u32);
    expect(reopened.get(0)).toBe(42);
    expect(reopened.info.id).toBe(map.info.id);
    BpfMap.unpin(path);
    expect(existsSync(path)).toBe(false);
    expect(thrown(() => BpfMap.openPinned(path)).code).toBe('EBPF_NOT_FOUND');
  });

  it('ring buffer maps can be created (records are tested with a program)', () => {
    const ring = keep(BpfMap.create({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 }));
    expect(ring.info.typeName).toBe('ringbuf');
  });

  it('bad keys and values are refused with typed errors before the kernel sees them', () => {
    const map = keep(BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4 }));
    expect(thrown(() => map.set(new Uint8Array(3), new Uint8Array(8))).code).toBe('EBPF_CODEC');
    expect(thrown(() => map.lookupRaw(new Uint8Array(5))).code).toBe('EBPF_INVALID_ARG');
    expect(thrown(() => map.updateRaw(new Uint8Array(4), new Uint8Array(2))).code).toBe('EBPF_INVALID_ARG');
    const typed = map.withCodecs(u32, u64);
    expect(thrown(() => typed.set(-1, 0n)).code).toBe('EBPF_CODEC');
    expect(thrown(() => typed.set(1, 'lots' as never)).code).toBe('EBPF_CODEC');
    expect(thrown(() => map.withCodecs(u16, u64)).code).toBe('EBPF_INVALID_ARG');
  });

  it('a closed map throws ClosedHandleError on every use', () => {
    const map = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 }).withCodecs(u32, u32);
    map.close();
    for (const use of [
      () => map.get(1),
      () => map.set(1, 1),
      () => [...map.keys()],
      () => map.fd,
      () => map.freeze(),
    ]) {
      expect(thrown(use)).toBeInstanceOf(ClosedHandleError);
    }
  });

  it('derives codecs from BTF: structs, per-CPU values, LPM prefix keys', () => {
    const object = keep(BpfObject.open(bpfObjectPath('xdp_ratelimit.bpf.o')).load());
    const rules = keep(BpfMap.fromObject(object, 'rl_rules_v6')).typed();
    expect(rules.keyCodec.describe).toBe('ipv6 prefix');
    rules.set('2001:db8::/32', { rate_pps: 100n, burst: 10n });
    expect(rules.get('2001:db8::42/128')).toEqual({ rate_pps: 100n, burst: 10n });

    const buckets = keep(BpfMap.fromObject(object, 'rl_buckets')).typed();
    const key = { family: 4, addr: new Uint8Array(16) };
    buckets.set(key, { tokens: 1n, last_ns: 2n, passed: 3n, dropped: 4n });
    expect(buckets.get(key)).toEqual({ tokens: 1n, last_ns: 2n, passed: 3n, dropped: 4n });
    expect(thrown(() => buckets.set(key, { tokens: 1n } as never)).code).toBe('EBPF_CODEC');

    const stats = keep(BpfMap.fromObject(object, 'rl_stats')).typed();
    expect(stats.getPerCpu(0)).toEqual(Array.from({ length: numPossibleCpus() }, () => 0n));
  });

  it('introspects map and program types from the BTF of an unloaded object', () => {
    const object = keep(BpfObject.open(bpfObjectPath('xdp_acl.bpf.o')));
    const rules = object.mapBtf('acl_rules');
    expect(rules?.value).toMatchObject({ kind: 'struct', name: 'acl_rule', size: 12 });
    const codecs = object.mapCodecs('acl_src_v4');
    expect(codecs?.key.describe).toBe('ipv4 prefix');
    expect(codecs?.value.describe).toBe('u64');
    expect(object.programBtf('xdp_acl')).toMatchObject({
      name: 'xdp_acl',
      params: [{ name: 'ctx', pointer: true, type: { kind: 'struct', name: 'xdp_md' } }],
      returns: { kind: 'int' },
    });
  });
});
