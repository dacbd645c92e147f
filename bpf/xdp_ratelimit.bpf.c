// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_ratelimit: a per-source token bucket for IPv4 and IPv6.
 *
 *   rl_rules_v4 / rl_rules_v6   LPM tries: source prefix -> { rate_pps, burst }. A source that
 *                               matches no prefix is not limited.
 *   rl_buckets                  LRU hash: source address -> its bucket (tokens, last refill,
 *                               passed, dropped); the least recently seen sources are evicted.
 *   rl_stats                    per-CPU counters (enum rl_stat), summed by the reader.
 *   rl_config                   [0].flags: RL_FLAG_DROP_EVENTS emits an rl_drop_event per drop
 *                               into rl_events (ring buffer); a full ring counts RL_EVENTS_LOST.
 *
 * Tokens are kept in nano-packets (1e9 per packet) so integer refill is exact at any rate:
 * elapsed_ns * rate_pps nano-packets accrue, capped at burst * 1e9.
 *
 * No lock: LRU hashes cannot hold a bpf_spin_lock. One source's packets normally arrive on
 * one CPU (RSS hashes a flow to one queue; veth uses one NAPI context), so updates do not
 * race; when they do, two CPUs may both spend the same token, so a source can exceed its
 * budget by at most one packet per concurrently racing CPU. Counters use atomic adds.
 */
#include "parse.h"

#define NANO 1000000000ULL
#define RL_FLAG_DROP_EVENTS 1U

enum rl_stat {
	RL_PASSED = 0,
	RL_DROPPED = 1,
	RL_UNLIMITED = 2, /* IP, but no prefix matched */
	RL_NOT_IP = 3,
	RL_EVENTS_LOST = 4,
	RL_STAT_COUNT = 5,
};

struct rl_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct rl_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct rl_rule {
	__u64 rate_pps;
	__u64 burst;
};

struct rl_source {
	__u32 family;
	__u8 addr[16];
};

struct rl_bucket {
	__u64 tokens; /* nano-packets */
	__u64 last_ns;
	__u64 passed;
	__u64 dropped;
};

struct rl_config {
	__u32 flags;
};

struct rl_drop_event {
	__u64 timestamp_ns;
	__u32 family;
	__u8 addr[16];
	__u32 length;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rl_lpm_v4);
	__type(value, struct rl_rule);
} rl_rules_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rl_lpm_v6);
	__type(value, struct rl_rule);
} rl_rules_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rl_source);
	__type(value, struct rl_bucket);
} rl_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} rl_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_config);
} rl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} rl_events SEC(".maps");

static __always_inline void rl_count(__u32 stat)
{
	__u64 *counter = bpf_map_lookup_elem(&rl_stats, &stat);

	if (counter)
		*counter += 1;
}

static __always_inline struct rl_rule *rl_match(const struct tp_packet *pkt)
{
	if (pkt->family == TP_AF_INET) {
		struct rl_lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, pkt->src, 4);
		return bpf_map_lookup_elem(&rl_rules_v4, &key);
	} else {
		struct rl_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, pkt->src, 16);
		return bpf_map_lookup_elem(&rl_rules_v6, &key);
	}
}

static __always_inline void rl_emit_drop(const struct tp_packet *pkt, __u64 now)
{
	__u32 zero = 0;
	struct rl_config *config = bpf_map_lookup_elem(&rl_config, &zero);
	struct rl_drop_event *event;

	if (!config || !(config->flags & RL_FLAG_DROP_EVENTS))
		return;
	event = bpf_ringbuf_reserve(&rl_events, sizeof(*event), 0);
	if (!event) {
		rl_count(RL_EVENTS_LOST);
		return;
	}
	event->timestamp_ns = now;
	event->family = pkt->family;
	__builtin_memcpy(event->addr, pkt->src, 16);
	event->length = pkt->length;
	bpf_ringbuf_submit(event, 0);
}

SEC("xdp")
int xdp_ratelimit(struct xdp_md *ctx)
{
	struct tp_packet pkt;
	struct rl_source source = {};
	struct rl_bucket *bucket;
	struct rl_rule *rule;
	__u64 now, burst, rate, elapsed, fill_ns;
	int pass;

	if (tp_parse(ctx, &pkt) < 0 || pkt.family == 0) {
		rl_count(RL_NOT_IP);
		return XDP_PASS;
	}
	rule = rl_match(&pkt);
	if (!rule || rule->rate_pps == 0) {
		rl_count(RL_UNLIMITED);
		return XDP_PASS;
	}
	rate = rule->rate_pps;
	burst = rule->burst * NANO;
	now = bpf_ktime_get_ns();

	source.family = pkt.family;
	__builtin_memcpy(source.addr, pkt.src, 16);
	bucket = bpf_map_lookup_elem(&rl_buckets, &source);
	if (!bucket) {
		/* A new source starts with a full bucket. */
		struct rl_bucket fresh = { .tokens = burst, .last_ns = now };

		bpf_map_update_elem(&rl_buckets, &source, &fresh, BPF_NOEXIST);
		bucket = bpf_map_lookup_elem(&rl_buckets, &source);
		if (!bucket) {
			rl_count(RL_PASSED);
			return XDP_PASS;
		}
	}

	elapsed = now > bucket->last_ns ? now - bucket->last_ns : 0;
	fill_ns = burst / rate; /* time to fill an empty bucket: elapsed * rate below cannot overflow */
	if (elapsed >= fill_ns)
		bucket->tokens = burst;
	else
		bucket->tokens += elapsed * rate;
	if (bucket->tokens > burst)
		bucket->tokens = burst;
	bucket->last_ns = now;
	pass = bucket->tokens >= NANO;
	if (pass) {
		bucket->tokens -= NANO;
		__sync_fetch_and_add(&bucket->passed, 1);
	} else {
		__sync_fetch_and_add(&bucket->dropped, 1);
	}

	if (pass) {
		rl_count(RL_PASSED);
		return XDP_PASS;
	}
	rl_count(RL_DROPPED);
	rl_emit_drop(&pkt, now);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
