// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_port_filter: drops UDP and TCP packets to the destination ports listed in
 * `blocked_ports`, passes everything else, and counts what it did in `xdp_stats`.
 *
 *   blocked_ports   hash: destination port (host order) -> 1. Empty = pass everything.
 *   xdp_stats       per-CPU array of one `struct xdp_stats`: one counter per XDP action.
 *
 * `xdp_stats` follows the stats convention of the shipped programs (the daemon and the
 * Prometheus exporter read it by name, see src/daemon/xdp-stats.ts): an array map whose
 * name ends in `stats`, one entry, a struct of integer counters. The daemon sums each member
 * over CPUs and reports it under the member's name (passed, dropped, ...).
 */
#include "parse.h"

struct xdp_stats {
	__u64 aborted;
	__u64 dropped;
	__u64 passed;
	__u64 tx;
	__u64 redirected;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} blocked_ports SEC(".maps");

/* Per-CPU so the hot path needs no atomics; readers sum the per-CPU slots. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdp_stats);
} xdp_stats SEC(".maps");

SEC("xdp")
int xdp_port_filter(struct xdp_md *ctx)
{
	struct tp_packet pkt;
	__u32 zero = 0;
	struct xdp_stats *stats = bpf_map_lookup_elem(&xdp_stats, &zero);
	int verdict = XDP_PASS;

	if (tp_parse(ctx, &pkt) == 0 && pkt.has_ports &&
	    (pkt.protocol == IPPROTO_UDP || pkt.protocol == IPPROTO_TCP)) {
		__u16 port = pkt.dport;

		if (bpf_map_lookup_elem(&blocked_ports, &port))
			verdict = XDP_DROP;
	}
	if (stats) {
		if (verdict == XDP_DROP)
			stats->dropped += 1;
		else
			stats->passed += 1;
	}
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
