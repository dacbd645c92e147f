// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_acl: an ordered access-control list (up to ACL_MAX_RULES rules, first match wins).
 *
 * Classification is the bitmap scheme: each LPM trie maps a prefix to the set of rules (a
 * 64-bit mask, bit i = rule i) whose source (or destination) prefix covers it. Userspace
 * (src/backends/ebpf/acl.ts) stores for every prefix the OR of all rules whose prefix contains
 * it, so one longest-prefix lookup per address yields every candidate. The lowest set bit of
 * src_mask & dst_mask whose protocol and port ranges also match is the verdict.
 *
 *   acl_src_v4 / acl_dst_v4 / acl_src_v6 / acl_dst_v6   LPM: prefix -> __u64 rule mask
 *   acl_rules     array [ACL_MAX_RULES]: protocol (0 = any), port ranges, action
 *   acl_hits      per-CPU { packets, bytes } per rule; index ACL_MAX_RULES = default action
 *   acl_config    [0].default_action, used when no rule matches (non-IP always passes)
 *
 * Actions: ACL_PASS, ACL_DROP, ACL_COUNT (count and pass). Every verdict is counted.
 */
#include "parse.h"

#define ACL_MAX_RULES 64

enum acl_action {
	ACL_PASS = 0,
	ACL_DROP = 1,
	ACL_COUNT = 2,
};

struct acl_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct acl_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct acl_rule {
	__u8 protocol; /* 0 = any */
	__u8 action;
	__u16 pad;
	__u16 sport_min; /* host order; [0, 65535] = any */
	__u16 sport_max;
	__u16 dport_min;
	__u16 dport_max;
};

struct acl_counter {
	__u64 packets;
	__u64 bytes;
};

struct acl_config {
	__u32 default_action;
};

#define ACL_LPM(name, key_type)                        \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);   \
		__uint(max_entries, 1024);             \
		__uint(map_flags, BPF_F_NO_PREALLOC);  \
		__type(key, key_type);                 \
		__type(value, __u64);                  \
	} name SEC(".maps")

ACL_LPM(acl_src_v4, struct acl_lpm_v4);
ACL_LPM(acl_dst_v4, struct acl_lpm_v4);
ACL_LPM(acl_src_v6, struct acl_lpm_v6);
ACL_LPM(acl_dst_v6, struct acl_lpm_v6);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACL_MAX_RULES);
	__type(key, __u32);
	__type(value, struct acl_rule);
} acl_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ACL_MAX_RULES + 1);
	__type(key, __u32);
	__type(value, struct acl_counter);
} acl_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct acl_config);
} acl_config SEC(".maps");

static __always_inline __u64 acl_mask(const struct tp_packet *pkt, int dst)
{
	const __u8 *addr = dst ? pkt->dst : pkt->src;
	__u64 *mask;

	if (pkt->family == TP_AF_INET) {
		struct acl_lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, addr, 4);
		mask = bpf_map_lookup_elem(dst ? (void *)&acl_dst_v4 : (void *)&acl_src_v4, &key);
	} else {
		struct acl_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, addr, 16);
		mask = bpf_map_lookup_elem(dst ? (void *)&acl_dst_v6 : (void *)&acl_src_v6, &key);
	}
	return mask ? *mask : 0;
}

static __always_inline int acl_verdict(__u32 index, __u32 action, __u32 length)
{
	struct acl_counter *hit = bpf_map_lookup_elem(&acl_hits, &index);

	if (hit) {
		hit->packets += 1;
		hit->bytes += length;
	}
	return action == ACL_DROP ? XDP_DROP : XDP_PASS;
}

struct acl_search {
	__u64 candidates;
	const struct tp_packet *pkt;
	__u32 match;  /* rule index, or ACL_MAX_RULES when none matched */
	__u32 action;
};

/* One rule per bpf_loop iteration: the verifier checks this body once instead of exploring
 * every path through 64 unrolled (or bounded-loop) iterations. */
static long acl_try_rule(__u32 index, void *data)
{
	struct acl_search *search = data;
	const struct tp_packet *pkt = search->pkt;
	struct acl_rule *rule;
	__u32 key = index;

	if (!search->candidates)
		return 1;
	if (index >= 64 || !(search->candidates & (1ULL << index)))
		return 0;
	search->candidates &= ~(1ULL << index);
	rule = bpf_map_lookup_elem(&acl_rules, &key);
	if (!rule)
		return 0;
	if (rule->protocol && rule->protocol != pkt->protocol)
		return 0;
	if (rule->sport_min != 0 || rule->sport_max != 0xffff) {
		if (!pkt->has_ports || pkt->sport < rule->sport_min || pkt->sport > rule->sport_max)
			return 0;
	}
	if (rule->dport_min != 0 || rule->dport_max != 0xffff) {
		if (!pkt->has_ports || pkt->dport < rule->dport_min || pkt->dport > rule->dport_max)
			return 0;
	}
	search->match = index;
	search->action = rule->action;
	return 1;
}

SEC("xdp")
int xdp_acl(struct xdp_md *ctx)
{
	struct tp_packet pkt;
	struct acl_config *config;
	struct acl_search search = { .match = ACL_MAX_RULES };
	__u32 zero = 0;

	if (tp_parse(ctx, &pkt) < 0 || pkt.family == 0)
		return XDP_PASS;

	search.pkt = &pkt;
	search.candidates = acl_mask(&pkt, 0);
	if (search.candidates)
		search.candidates &= acl_mask(&pkt, 1);
	if (search.candidates)
		bpf_loop(ACL_MAX_RULES, acl_try_rule, &search, 0);
	if (search.match < ACL_MAX_RULES)
		return acl_verdict(search.match, search.action, pkt.length);

	config = bpf_map_lookup_elem(&acl_config, &zero);
	return acl_verdict(ACL_MAX_RULES, config ? config->default_action : ACL_PASS, pkt.length);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
