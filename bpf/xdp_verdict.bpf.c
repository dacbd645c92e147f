// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Small XDP programs whose verdict or output bytes depend on the packet, used to check
 * that test-runs report the right action and the right output frame:
 *
 *   xdp_drop_udp   drop IPv4 UDP datagrams to port `drop_udp_port` (default 9), pass the rest
 *   xdp_swap_mac   swap Ethernet source and destination and bounce the frame (XDP_TX)
 *   xdp_pad_tail   grow the frame by PAD_TAIL_BYTES at the tail (output longer than input)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define IP_FRAGMENT_OFFSET_MASK 0x1fff
#define PAD_TAIL_BYTES 32

/* Read-only configuration: a loader may set it before load; the verifier then treats it as
 * a constant. Host byte order. */
const volatile __u16 drop_udp_port = 9;

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u32 ip_header_bytes;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	/* Only the first fragment carries the UDP header. */
	if (ip->frag_off & bpf_htons(IP_FRAGMENT_OFFSET_MASK))
		return XDP_PASS;

	ip_header_bytes = ip->ihl * 4;
	if (ip_header_bytes < sizeof(*ip))
		return XDP_PASS;

	udp = (void *)ip + ip_header_bytes;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;

	return udp->dest == bpf_htons(drop_udp_port) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_swap_mac(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int xdp_pad_tail(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_tail(ctx, PAD_TAIL_BYTES))
		return XDP_ABORTED;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
