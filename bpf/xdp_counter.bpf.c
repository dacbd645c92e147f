// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_count: counts packets and bytes seen on an interface and lets every packet pass.
 * It is the smallest program that proves the whole chain (clang -> ELF -> libbpf load ->
 * attach or test-run -> map read-back) end to end.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct packet_counts {
	__u64 packets;
	__u64 bytes;
};

/* Per-CPU so the hot path needs no atomics; readers sum the per-CPU slots. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packet_counts);
} pkt_count SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = 0;
	struct packet_counts *counts = bpf_map_lookup_elem(&pkt_count, &key);

	if (counts) {
		counts->packets += 1;
		counts->bytes += (__u64)(data_end - data);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
