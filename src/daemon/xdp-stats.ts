/**
 * Named statistics of an XDP attachment, read from its pinned maps.
 *
 * The convention (the shipped bpf/ programs follow it; bpf/xdp_port_filter.bpf.c is the
 * example): a program's statistics live in array maps (plain or per-CPU) whose name ends in
 * `stats`. Each entry is read, summed over CPUs, and named
 *   - from BTF when the value is a struct: one statistic per integer member, named by the
 *     member (`passed`, `dropped`, …), suffixed `[i]` for entries after the first;
 *   - by position otherwise: `<map>[i]` (an integer array, e.g. rl_stats indexed by an enum
 *     whose names BTF does not carry for the map).
 * A name two maps both define is kept as `<map>.<name>` for the second. Counters that do not
 * fit a double exactly (past 2^53) come as decimal strings.
 *
 * Counters named after XDP actions are also exported to Prometheus as packets by action
 * (`ACTION_OF_STAT`); every statistic is exported as a counter by name.
 */

import { join } from 'node:path';
import { type Codec, decode } from '../backends/ebpf/codec.js';
import { BpfMap, sumPerCpu } from '../backends/ebpf/map.js';

/** Entries read per stats map, at most: stats maps are small; a huge array is not a stats map. */
export const MAX_STATS_ENTRIES = 64;

/** Statistic names that count packets by XDP verdict, and the action each stands for. */
export const ACTION_OF_STAT: Readonly<Record<string, string>> = Object.freeze({
  aborted: 'aborted',
  dropped: 'drop',
  drop: 'drop',
  passed: 'pass',
  pass: 'pass',
  tx: 'tx',
  redirected: 'redirect',
  redirect: 'redirect',
});

export type StatValue = number | string;

export interface NamedStats {
  /** Statistic name -> value summed over CPUs. */
  readonly stats: Readonly<Record<string, StatValue>>;
  /** The maps they came from. */
  readonly maps: readonly string[];
}

/** Whether a pinned map of that name holds statistics by the convention. */
export function isStatsMapName(name: string): boolean {
  return /stats$/i.test(name);
}

/** Reads the named statistics from the stats maps pinned in `<pinDir>/maps`. */
export function readNamedStats(pinDir: string, mapNames: readonly string[]): NamedStats {
  const stats: Record<string, StatValue> = {};
  const maps: string[] = [];
  for (const name of mapNames.filter(isStatsMapName)) {
    const map = openTypedPinned(join(pinDir, 'maps', name));
    try {
      const type = map.info.typeName;
      if (type !== 'array' && type !== 'percpu_array') continue;
      maps.push(name);
      const entries = Math.min(map.info.maxEntries, MAX_STATS_ENTRIES);
      for (let index = 0; index < entries; index++) {
        const key = decode(map.keyCodec, encodeIndex(index, map.info.keySize));
        const value = map.info.perCpu ? sumOrUndefined(map.getPerCpu(key)) : map.get(key);
        if (value === undefined) continue;
        for (const [stat, counter] of flatten(name, index, value)) {
          stats[Object.hasOwn(stats, stat) ? `${name}.${stat}` : stat] = counterValue(counter);
        }
      }
    } finally {
      map.close();
    }
  }
  return { stats, maps };
}

/** Codecs derived from BTF, by kernel map id (a map's BTF never changes): oldest first. */
const codecsByMapId = new Map<number, { key: Codec<unknown>; value: Codec<unknown> } | null>();
const MAX_CACHED_CODECS = 256;

/**
 * A pinned map typed by its BTF, like `BpfMap.openPinned(path).typed()` but without reading
 * and decoding the BTF again for a map already seen (that is most of the cost of a stats read
 * or a map request). Keyed by map id, so a pin that now names another map is typed afresh.
 */
export function openTypedPinned(path: string): BpfMap<unknown, unknown> {
  const raw = BpfMap.openPinned(path);
  try {
    const id = raw.info.id;
    let codecs = codecsByMapId.get(id);
    if (codecs === undefined) {
      const typed = raw.typed();
      codecs =
        typed === (raw as BpfMap<unknown, unknown>) ? null : { key: typed.keyCodec, value: typed.valueCodec };
      if (codecsByMapId.size >= MAX_CACHED_CODECS) {
        const oldest = codecsByMapId.keys().next().value;
        if (oldest !== undefined) codecsByMapId.delete(oldest);
      }
      codecsByMapId.set(id, codecs);
    }
    return codecs === null ? (raw as BpfMap<unknown, unknown>) : raw.withCodecs(codecs.key, codecs.value);
  } catch (err) {
    raw.close();
    throw err;
  }
}

function sumOrUndefined(values: unknown[] | undefined): unknown {
  return values === undefined ? undefined : sumPerCpu(values);
}

/** The array index as the map's key bytes (little-endian u32, the only array key there is). */
function encodeIndex(index: number, keySize: number): Uint8Array {
  const key = new Uint8Array(keySize);
  if (keySize >= 4) new DataView(key.buffer).setUint32(0, index, true);
  return key;
}

/** [name, counter] pairs of one entry: struct members by name, a bare integer by position. */
function flatten(map: string, index: number, value: unknown): [string, number | bigint][] {
  if (typeof value === 'number' || typeof value === 'bigint') return [[`${map}[${index}]`, value]];
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return [];
  const suffix = index === 0 ? '' : `[${index}]`;
  return Object.entries(value).flatMap(([member, item]): [string, number | bigint][] =>
    typeof item === 'number' || typeof item === 'bigint' ? [[`${member}${suffix}`, item]] : [],
  );
}

function counterValue(counter: number | bigint): StatValue {
  if (typeof counter === 'number') return counter;
  return counter <= BigInt(Number.MAX_SAFE_INTEGER) && counter >= 0n ? Number(counter) : counter.toString();
}
