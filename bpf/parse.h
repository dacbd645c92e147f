/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing shared by the shipped XDP programs: Ethernet (one optional 802.1Q tag),
 * IPv4 (first fragment only carries ports) and IPv6 (no extension headers: a packet whose
 * next header is not TCP/UDP is classified without ports).
 */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TP_AF_INET 4
#define TP_AF_INET6 6

struct tp_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct tp_packet {
	__u8 family;   /* 0 = not IP */
	__u8 protocol; /* IPPROTO_* */
	__u8 has_ports;
	__u8 pad;
	__u16 sport;   /* host order */
	__u16 dport;
	__u8 src[16];  /* IPv4: first 4 bytes */
	__u8 dst[16];
	__u32 length;  /* frame bytes */
};

static __always_inline int tp_parse(struct xdp_md *ctx, struct tp_packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor;
	__u16 proto;
	__u8 l4 = 0;

	__builtin_memset(pkt, 0, sizeof(*pkt));
	pkt->length = (__u32)(data_end - data);
	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = eth->h_proto;
	cursor = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct tp_vlan_hdr *vlan = cursor;

		if ((void *)(vlan + 1) > data_end)
			return -1;
		proto = vlan->proto;
		cursor = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return -1;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip))
			return -1;
		pkt->family = TP_AF_INET;
		pkt->protocol = ip->protocol;
		__builtin_memcpy(pkt->src, &ip->saddr, 4);
		__builtin_memcpy(pkt->dst, &ip->daddr, 4);
		if (ip->frag_off & bpf_htons(0x1fff))
			return 0;
		cursor = (void *)ip + ihl;
		l4 = ip->protocol;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		pkt->family = TP_AF_INET6;
		pkt->protocol = ip6->nexthdr;
		__builtin_memcpy(pkt->src, &ip6->saddr, 16);
		__builtin_memcpy(pkt->dst, &ip6->daddr, 16);
		cursor = ip6 + 1;
		l4 = ip6->nexthdr;
	} else {
		return 0;
	}

	if (l4 == IPPROTO_UDP) {
		struct udphdr *udp = cursor;

		if ((void *)(udp + 1) > data_end)
			return 0;
		pkt->sport = bpf_ntohs(udp->source);
		pkt->dport = bpf_ntohs(udp->dest);
		pkt->has_ports = 1;
	} else if (l4 == IPPROTO_TCP) {
		struct tcphdr *tcp = cursor;

		if ((void *)(tcp + 1) > data_end)
			return 0;
		pkt->sport = bpf_ntohs(tcp->source);
		pkt->dport = bpf_ntohs(tcp->dest);
		pkt->has_ports = 1;
	}
	return 0;
}
