// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Deliberately broken after a long straight-line prologue: thousands of instructions the
 * verifier accepts (each printed in its log) and then an unchecked packet read at the very
 * end. The resulting verifier log is hundreds of KiB, so a test can check that the whole log,
 * first instruction to final error, reaches JavaScript without truncation.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PROLOGUE_ROUNDS 3000

SEC("xdp")
int xdp_bad_after_long_prologue(struct xdp_md *ctx)
{
	__u64 acc = ctx->ingress_ifindex;

#pragma clang loop unroll(full)
	for (int i = 0; i < PROLOGUE_ROUNDS; i++) {
		acc = acc * 31 + i;
		/* Opaque to the optimizer, so the rounds are neither folded nor reordered past the
		 * packet read below. */
		asm volatile("" : "+r"(acc) : : "memory");
	}

	/* BUG (on purpose): packet read without a data_end check. */
	return *(__u8 *)(long)ctx->data + (__u32)acc;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
