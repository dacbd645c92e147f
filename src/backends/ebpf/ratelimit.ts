/**
 * RateLimiter: the typed control plane of bpf/xdp_ratelimit.bpf.c, a per-source token bucket
 * for IPv4 and IPv6. Rules map a source prefix to { ratePps, burst }; state (one bucket per
 * source, in an LRU hash) and counters are read back from the maps.
 */
import { bytes, type Codec, cstruct, formatIp, ipPrefix, u32, u64 } from './codec.js';
import { BpfError } from './errors.js';
import { BpfMap, sumPerCpu } from './map.js';
import type { BpfObject } from './object.js';

export const RATELIMIT_PROGRAM = 'xdp_ratelimit';
export const RL_FLAG_DROP_EVENTS = 1;

export interface RateRule {
  readonly ratePps: number;
  readonly burst: number;
}

export interface RateLimiterStats {
  readonly passed: bigint;
  readonly dropped: bigint;
  readonly unlimited: bigint;
  readonly notIp: bigint;
  readonly eventsLost: bigint;
}

export interface SourceState {
  readonly source: string;
  readonly passed: bigint;
  readonly dropped: bigint;
  /** Whole tokens left at the last packet. */
  readonly tokens: number;
}

export interface DropEvent {
  readonly timestampNs: bigint;
  readonly source: string;
  readonly length: number;
}

interface RuleValue {
  rate_pps: bigint;
  burst: bigint;
}

interface BucketKey {
  family: number;
  addr: Uint8Array;
}

interface BucketValue {
  tokens: bigint;
  last_ns: bigint;
  passed: bigint;
  dropped: bigint;
}

const RULE = cstruct<RuleValue>([
  ['rate_pps', u64],
  ['burst', u64],
]);

/** struct rl_drop_event. */
export const DROP_EVENT: Codec<{ timestamp_ns: bigint; family: number; addr: Uint8Array; length: number }> =
  cstruct([
    ['timestamp_ns', u64],
    ['family', u32],
    ['addr', bytes(16)],
    ['length', u32],
  ]);

const NANO = 1_000_000_000n;
const MAX_RATE_OR_BURST = 1_000_000_000;

export class RateLimiter {
  readonly #v4: BpfMap<string, RuleValue>;
  readonly #v6: BpfMap<string, RuleValue>;
  readonly #buckets: BpfMap<unknown, unknown>;
  readonly #stats: BpfMap<number, bigint>;
  readonly #config: BpfMap<number, number>;
  readonly events: BpfMap<unknown, unknown>;

  /** `object` must be a loaded xdp_ratelimit.bpf.o. The maps are held independently of it. */
  constructor(object: BpfObject) {
    this.#v4 = BpfMap.fromObject(object, 'rl_rules_v4').withCodecs(ipPrefix(4), RULE);
    this.#v6 = BpfMap.fromObject(object, 'rl_rules_v6').withCodecs(ipPrefix(6), RULE);
    this.#buckets = BpfMap.fromObject(object, 'rl_buckets').typed();
    this.#stats = BpfMap.fromObject(object, 'rl_stats').withCodecs(u32, u64);
    this.#config = BpfMap.fromObject(object, 'rl_config').withCodecs(u32, u32);
    this.events = BpfMap.fromObject(object, 'rl_events');
  }

  /** Limits every source inside `prefix` ('10.0.0.0/8', '2001:db8::/32') to ratePps with burst. */
  setRule(prefix: string, rule: RateRule): void {
    // Tokens are nano-packets in a u64: burst × 1e9 must fit, so both stay ≤ 1e9.
    const valid = (n: number) => Number.isInteger(n) && n > 0 && n <= MAX_RATE_OR_BURST;
    if (!valid(rule.ratePps) || !valid(rule.burst)) {
      throw new BpfError(
        'EBPF_INVALID_ARG',
        `rate and burst must be integers in [1, ${MAX_RATE_OR_BURST}], got ${JSON.stringify(rule)}`,
      );
    }
    this.#rules(prefix).set(prefix, { rate_pps: BigInt(rule.ratePps), burst: BigInt(rule.burst) });
  }

  deleteRule(prefix: string): boolean {
    return this.#rules(prefix).delete(prefix);
  }

  rules(): [string, RateRule][] {
    return [...this.#v4.entries(), ...this.#v6.entries()].map(([prefix, value]) => {
      const rule = value as RuleValue;
      return [prefix, { ratePps: Number(rule.rate_pps), burst: Number(rule.burst) }];
    });
  }

  /** Emit an rl_drop_event into `events` for every dropped packet. */
  setDropEvents(enabled: boolean): void {
    this.#config.set(0, enabled ? RL_FLAG_DROP_EVENTS : 0);
  }

  stats(): RateLimiterStats {
    const read = (index: number): bigint => sumPerCpu(this.#stats.getPerCpu(index) ?? [0n]);
    return { passed: read(0), dropped: read(1), unlimited: read(2), notIp: read(3), eventsLost: read(4) };
  }

  /** Per-source buckets (batch read of the LRU hash). */
  sources(): SourceState[] {
    return this.#buckets.getBatch().map(([key, value]) => {
      const k = key as BucketKey;
      const v = value as BucketValue;
      return {
        source: formatSource(k.family, k.addr),
        passed: v.passed,
        dropped: v.dropped,
        tokens: Number(v.tokens / NANO),
      };
    });
  }

  /** Forget every source's bucket (they restart full). */
  resetSources(): void {
    this.#buckets.getBatch({ deleteAfter: true });
  }

  close(): void {
    for (const map of [this.#v4, this.#v6, this.#buckets, this.#stats, this.#config, this.events])
      map.close();
  }

  #rules(prefix: string): BpfMap<string, RuleValue> {
    return prefix.includes(':') ? this.#v6 : this.#v4;
  }
}

export function decodeDropEvent(record: {
  timestamp_ns: bigint;
  family: number;
  addr: Uint8Array;
  length: number;
}): DropEvent {
  return {
    timestampNs: record.timestamp_ns,
    source: formatSource(record.family, record.addr),
    length: record.length,
  };
}

function formatSource(family: number, addr: Uint8Array): string {
  return formatIp(addr, family === 4 ? 4 : 6);
}
