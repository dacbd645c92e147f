/**
 * Acl: the typed control plane of bpf/xdp_acl.bpf.c, an ordered ACL (first match wins) of up
 * to 64 rules over source/destination prefixes, protocol and port ranges.
 *
 * The kernel side classifies with two LPM lookups and a bitmap (see the program's header).
 * This module compiles the rule list into that form: for every prefix appearing in a rule it
 * stores the mask of all rules whose prefix contains it (so the longest match carries every
 * rule that applies), plus a 0.0.0.0/0 (::/0) entry for rules that match any address.
 */
import { cstruct, ipPrefix, parseIp, skip, u8, u16, u32, u64 } from './codec.js';
import { BpfError } from './errors.js';
import { BpfMap, sumPerCpu } from './map.js';
import type { BpfObject } from './object.js';

export const ACL_PROGRAM = 'xdp_acl';
export const ACL_MAX_RULES = 64;

export type AclAction = 'pass' | 'drop' | 'count';
const ACTION_CODES: Record<AclAction, number> = { pass: 0, drop: 1, count: 2 };
const PROTOCOLS: Record<string, number> = { any: 0, icmp: 1, tcp: 6, udp: 17, icmpv6: 58 };

export interface AclRule {
  /** Source prefix; default any (both families unless the other prefix fixes one). */
  readonly src?: string;
  readonly dst?: string;
  /** 'tcp', 'udp', 'icmp', 'icmpv6', 'any' or an IP protocol number. */
  readonly protocol?: string | number;
  /** A port or [min, max] (inclusive). Needs a TCP/UDP packet when given. */
  readonly srcPort?: number | readonly [number, number];
  readonly dstPort?: number | readonly [number, number];
  readonly action: AclAction;
}

export interface AclCounter {
  readonly packets: bigint;
  readonly bytes: bigint;
}

interface RuleValue {
  protocol: number;
  action: number;
  sport_min: number;
  sport_max: number;
  dport_min: number;
  dport_max: number;
}

const RULE = cstruct<RuleValue>([
  ['protocol', u8],
  ['action', u8],
  ['pad', skip(2)],
  ['sport_min', u16],
  ['sport_max', u16],
  ['dport_min', u16],
  ['dport_max', u16],
]);
const COUNTER = cstruct<{ packets: bigint; bytes: bigint }>([
  ['packets', u64],
  ['bytes', u64],
]);

interface Prefix {
  readonly family: 4 | 6;
  readonly bits: Uint8Array;
  readonly length: number;
  readonly text: string;
}

export class Acl {
  readonly #maps: {
    readonly src4: BpfMap<string, bigint>;
    readonly dst4: BpfMap<string, bigint>;
    readonly src6: BpfMap<string, bigint>;
    readonly dst6: BpfMap<string, bigint>;
  };
  readonly #rules: BpfMap<number, RuleValue>;
  readonly #hits: BpfMap<number, { packets: bigint; bytes: bigint }>;
  readonly #config: BpfMap<number, number>;
  #installed: AclRule[] = [];

  constructor(object: BpfObject) {
    this.#maps = {
      src4: BpfMap.fromObject(object, 'acl_src_v4').withCodecs(ipPrefix(4), u64),
      dst4: BpfMap.fromObject(object, 'acl_dst_v4').withCodecs(ipPrefix(4), u64),
      src6: BpfMap.fromObject(object, 'acl_src_v6').withCodecs(ipPrefix(6), u64),
      dst6: BpfMap.fromObject(object, 'acl_dst_v6').withCodecs(ipPrefix(6), u64),
    };
    this.#rules = BpfMap.fromObject(object, 'acl_rules').withCodecs(u32, RULE);
    this.#hits = BpfMap.fromObject(object, 'acl_hits').withCodecs(u32, COUNTER);
    this.#config = BpfMap.fromObject(object, 'acl_config').withCodecs(u32, u32);
  }

  /**
   * Replaces the rule list (order = priority) and the default action for unmatched IP packets.
   * Not atomic against traffic: during the update a packet may see old or new masks.
   */
  setRules(rules: readonly AclRule[], defaultAction: AclAction = 'pass'): void {
    if (rules.length > ACL_MAX_RULES) {
      throw new BpfError('EBPF_INVALID_ARG', `at most ${ACL_MAX_RULES} ACL rules, got ${rules.length}`);
    }
    const compiled = rules.map((rule, index) => compileRule(rule, index));
    for (const map of Object.values(this.#maps)) {
      for (const key of [...map.keys()]) map.delete(key);
    }
    for (const side of ['src', 'dst'] as const) {
      for (const family of [4, 6] as const) {
        const map = this.#maps[`${side}${family}`];
        const prefixes = new Map<string, Prefix>();
        for (const rule of compiled) {
          for (const prefix of rule[side]) if (prefix.family === family) prefixes.set(prefix.text, prefix);
        }
        for (const prefix of prefixes.values()) {
          let mask = 0n;
          compiled.forEach((rule, index) => {
            if (rule[side].some((candidate) => contains(candidate, prefix))) mask |= 1n << BigInt(index);
          });
          map.set(prefix.text, mask);
        }
      }
    }
    compiled.forEach((rule, index) => {
      this.#rules.set(index, rule.value);
    });
    this.#config.set(0, ACTION_CODES[defaultAction]);
    this.#installed = [...rules];
  }

  get installed(): readonly AclRule[] {
    return this.#installed;
  }

  /** Hits per rule index, and 'default' for packets no rule matched. */
  counters(): { rules: AclCounter[]; default: AclCounter } {
    const read = (index: number): AclCounter => sumPerCpu(this.#hits.getPerCpu(index) ?? []);
    return {
      rules: this.#installed.map((_, index) => read(index)),
      default: read(ACL_MAX_RULES),
    };
  }

  close(): void {
    for (const map of [...Object.values(this.#maps), this.#rules, this.#hits, this.#config]) map.close();
  }
}

function compileRule(rule: AclRule, index: number): { src: Prefix[]; dst: Prefix[]; value: RuleValue } {
  const where = `rules[${index}]`;
  const src = rule.src === undefined ? undefined : parsePrefix(rule.src, `${where}.src`);
  const dst = rule.dst === undefined ? undefined : parsePrefix(rule.dst, `${where}.dst`);
  if (src && dst && src.family !== dst.family) {
    throw new BpfError('EBPF_INVALID_ARG', `${where}: src and dst are of different IP families`);
  }
  const families: (4 | 6)[] = src ? [src.family] : dst ? [dst.family] : [4, 6];
  const any = (family: 4 | 6): Prefix => parsePrefix(family === 4 ? '0.0.0.0/0' : '::/0', where);
  const [sportMin, sportMax] = portRange(rule.srcPort, `${where}.srcPort`);
  const [dportMin, dportMax] = portRange(rule.dstPort, `${where}.dstPort`);
  if (!(rule.action in ACTION_CODES)) {
    throw new BpfError('EBPF_INVALID_ARG', `${where}.action must be pass, drop or count`);
  }
  return {
    src: src ? [src] : families.map(any),
    dst: dst ? [dst] : families.map(any),
    value: {
      protocol: protocolNumber(rule.protocol, `${where}.protocol`),
      action: ACTION_CODES[rule.action],
      sport_min: sportMin,
      sport_max: sportMax,
      dport_min: dportMin,
      dport_max: dportMax,
    },
  };
}

function parsePrefix(text: string, where: string): Prefix {
  const family: 4 | 6 = text.includes(':') ? 6 : 4;
  const [address = '', lengthText] = text.split('/');
  const max = family === 4 ? 32 : 128;
  const length = lengthText === undefined ? max : Number(lengthText);
  if (!Number.isInteger(length) || length < 0 || length > max) {
    throw new BpfError('EBPF_INVALID_ARG', `${where}: bad prefix '${text}'`);
  }
  const bits = parseIp(address, family, where);
  for (let bit = length; bit < max; bit++) bits[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family, bits, length, text: `${address}/${length}` };
}

/** True when `outer` covers every address of `inner`. */
function contains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.length > inner.length) return false;
  for (let bit = 0; bit < outer.length; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((outer.bits[bit >> 3]! & mask) !== (inner.bits[bit >> 3]! & mask)) return false;
  }
  return true;
}

function portRange(value: AclRule['srcPort'], where: string): [number, number] {
  if (value === undefined) return [0, 0xffff];
  const [min, max] = typeof value === 'number' ? [value, value] : value;
  for (const port of [min, max]) {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
      throw new BpfError('EBPF_INVALID_ARG', `${where}: bad port ${port}`);
    }
  }
  if (min > max) throw new BpfError('EBPF_INVALID_ARG', `${where}: empty range [${min}, ${max}]`);
  return [min, max];
}

function protocolNumber(value: AclRule['protocol'], where: string): number {
  if (value === undefined) return 0;
  const number = typeof value === 'number' ? value : PROTOCOLS[value];
  if (number === undefined || !Number.isInteger(number) || number < 0 || number > 255) {
    throw new BpfError('EBPF_INVALID_ARG', `${where}: unknown protocol ${String(value)}`);
  }
  return number;
}
