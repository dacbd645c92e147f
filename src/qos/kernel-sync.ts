/**
 * The `kernel` section of the QoS policy, compiled into the maps of bpf/xdp_ratelimit.bpf.c:
 * each rule `{ prefix, ratePps, burst }` is one entry of the LPM trie `rl_rules_v4` or
 * `rl_rules_v6` (key `{ prefixlen, addr }`, value `struct rl_rule { u64 rate_pps; u64 burst }`),
 * which the program matches against each packet's source address.
 *
 * When the policy has a `kernel` section it is authoritative for the maps it is applied to:
 * rules it names are set (a changed rate or burst takes effect at the next packet; the
 * per-source buckets in `rl_buckets` keep their tokens), rules it does not name are deleted.
 * Without a `kernel` section the maps are left as they are (rules set through the map API stay).
 */

import { cstruct, ipPrefix, u64 } from '../backends/ebpf/codec.js';
import { BpfMap } from '../backends/ebpf/map.js';
import type { KernelPolicy } from './policy.js';

export const KERNEL_RULE_MAPS = { v4: 'rl_rules_v4', v6: 'rl_rules_v6' } as const;

interface RuleValue {
  rate_pps: bigint;
  burst: bigint;
}

const RULE = cstruct<RuleValue>([
  ['rate_pps', u64],
  ['burst', u64],
]);

export interface KernelSyncReport {
  /** Rules written (new or changed). */
  readonly set: number;
  /** Rules removed because the policy no longer names them. */
  readonly deleted: number;
  /** Rules already as the policy says. */
  readonly unchanged: number;
}

/**
 * Apply `policy` to the rule maps pinned at `<mapsDir>/rl_rules_v4` and `<mapsDir>/rl_rules_v6`.
 * Returns null when the policy has no kernel section (nothing touched).
 */
export function syncKernelRules(mapsDir: string, policy: KernelPolicy | null): KernelSyncReport | null {
  if (policy === null) return null;
  let set = 0;
  let deleted = 0;
  let unchanged = 0;
  for (const family of [4, 6] as const) {
    const map = BpfMap.openPinned(
      `${mapsDir}/${family === 4 ? KERNEL_RULE_MAPS.v4 : KERNEL_RULE_MAPS.v6}`,
    ).withCodecs(ipPrefix(family), RULE);
    try {
      // Keys compared by their encoded bytes: '10.0.0.7' and '10.0.0.7/32' are one rule.
      const id = (prefix: string) => Buffer.from(map.encodeKey(prefix)).toString('hex');
      const wanted = new Map<string, [string, RuleValue]>();
      for (const r of policy.rules) {
        if (r.prefix.includes(':') !== (family === 6)) continue;
        wanted.set(id(r.prefix), [r.prefix, { rate_pps: BigInt(r.ratePps), burst: BigInt(r.burst) }]);
      }
      const present = new Map<string, [string, RuleValue]>();
      for (const [prefix, value] of map.entries()) present.set(id(prefix), [prefix, value as RuleValue]);
      // Set first, then delete: a source covered before and after is never briefly unlimited.
      for (const [key, [prefix, value]] of wanted) {
        const old = present.get(key)?.[1];
        if (old !== undefined && old.rate_pps === value.rate_pps && old.burst === value.burst) {
          unchanged++;
          continue;
        }
        map.set(prefix, value);
        set++;
      }
      for (const [key, [prefix]] of present) {
        if (!wanted.has(key)) {
          map.delete(prefix);
          deleted++;
        }
      }
    } finally {
      map.close();
    }
  }
  return { set, deleted, unchanged };
}
