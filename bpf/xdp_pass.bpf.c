// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdp_pass: passes every packet. The baseline for benchmarks and a harmless program to attach. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
