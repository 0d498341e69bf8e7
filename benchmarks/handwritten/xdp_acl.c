// SPDX-License-Identifier: GPL-2.0
/* Hand-written XDP 5-tuple-style ACL with the behaviour of the ACL spec in benchmarks/bench_xdp.py: IPv4/UDP,
 * ternary source and destination, destination-port range, highest priority wins, default drop; non-UDP frames go
 * to the host. Idiomatic: rules in an ARRAY sorted by priority, scanned by a bounded loop with early exit. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_RULES 64

struct rule {
	__u32 src, src_mask, dst, dst_mask; /* host order */
	__u16 port_lo, port_hi;
	__u32 action; /* 0: end of rules, 1: permit (to host), 2: deny */
};

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, MAX_RULES);
	 __type(key, __u32); __type(value, struct rule); } hw_acl SEC(".maps");

SEC("xdp")
int hw_acl_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > end)
		return XDP_DROP;
	__u16 optlen = (__u16)(iph->ihl * 4 - 20);
	if (optlen > 40)
		return XDP_DROP;
	struct udphdr *udp = (void *)(iph + 1) + optlen;
	if ((void *)udp > end)
		return XDP_DROP;
	if (iph->protocol != 17)
		return XDP_PASS;
	if ((void *)(udp + 1) > end)
		return XDP_DROP;
	__u32 src = bpf_ntohl(iph->saddr), dst = bpf_ntohl(iph->daddr);
	__u16 port = bpf_ntohs(udp->dest);
	for (__u32 i = 0; i < MAX_RULES; i++) {
		__u32 k = i;
		struct rule *r = bpf_map_lookup_elem(&hw_acl, &k);
		if (!r || !r->action)
			break;
		if ((src & r->src_mask) == r->src && (dst & r->dst_mask) == r->dst && port >= r->port_lo &&
		    port <= r->port_hi)
			return r->action == 1 ? XDP_PASS : XDP_DROP;
	}
	return XDP_DROP;
}
