// SPDX-License-Identifier: GPL-2.0
/* Hand-written, tuned XDP router with the behaviour of spec/examples/router.yaml: the baseline that
 * benchmarks/bench_xdp.py compares c3po's generated program against.
 *
 * Idiomatic XDP (xdp-tutorial style): struct overlays for headers, ETH_ALEN keys, an ARRAY for next hops,
 * the kernel's ip_decrease_ttl() incremental checksum update.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

struct mac_key { __u8 addr[ETH_ALEN]; };
struct v4_key { __u32 prefixlen; __be32 addr; };
struct v6_key { __u32 prefixlen; __u8 addr[16]; };
struct route { __u32 action; __u32 nexthop; }; /* action: 1 set_nexthop, 2 to_host, 3 drop */
struct nexthop { __u32 valid; __u32 port; __u8 smac[ETH_ALEN]; __u8 dmac[ETH_ALEN]; };
struct counter { __u64 packets, bytes; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	 __type(key, struct mac_key); __type(value, __u8); } hw_router_mac SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 65536); __uint(map_flags, BPF_F_NO_PREALLOC);
	 __type(key, struct v4_key); __type(value, struct route); } hw_routes_v4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16384); __uint(map_flags, BPF_F_NO_PREALLOC);
	 __type(key, struct v6_key); __type(value, struct route); } hw_routes_v6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4096);
	 __type(key, __u32); __type(value, struct nexthop); } hw_nexthops SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 4097);
	 __type(key, __u32); __type(value, struct counter); } hw_nh_counters SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 1024);
	 __type(key, __u32); __type(value, __u32); } hw_tx_ports SEC(".maps");

static __always_inline int ipv4_csum_ok(struct iphdr *iph, void *end)
{
	__u32 sum = 0;
	__u16 *w = (__u16 *)iph;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	if (iph->ihl > 5) { /* options: rare, bounded loop */
		__u8 *o = (__u8 *)(iph + 1);
		__u32 optlen = iph->ihl * 4 - 20;
		for (__u32 i = 0; i < 40; i += 2) {
			if (i >= optlen || o + i + 2 > (__u8 *)end)
				break;
			sum += *(__u16 *)(o + i);
		}
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static __always_inline void ip_decrease_ttl(struct iphdr *iph)
{
	__u32 check = iph->check;
	check += bpf_htons(0x0100);
	iph->check = (__u16)(check + (check >= 0xFFFF));
	--iph->ttl;
}

static __always_inline int nexthop(struct xdp_md *ctx, struct ethhdr *eth, __u32 id, struct iphdr *iph,
				   struct ipv6hdr *ip6h)
{
	__u64 len = ctx->data_end - ctx->data;
	struct nexthop *nh = bpf_map_lookup_elem(&hw_nexthops, &id);
	__u32 slot = (nh && nh->valid) ? id + 1 : 0;
	struct counter *c = bpf_map_lookup_elem(&hw_nh_counters, &slot);
	if (c) {
		c->packets++;
		c->bytes += len;
	}
	if (!nh || !nh->valid)
		return XDP_PASS;
	__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
	if (iph)
		ip_decrease_ttl(iph);
	else if (ip6h)
		ip6h->hop_limit--;
	return bpf_redirect_map(&hw_tx_ports, nh->port, XDP_DROP);
}

SEC("xdp")
int hw_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__u16 proto = eth->h_proto;
	struct iphdr *iph = NULL;
	struct ipv6hdr *ip6h = NULL;
	if (proto == bpf_htons(ETH_P_IP)) {
		iph = (void *)(eth + 1);
		if ((void *)(iph + 1) > end)
			return XDP_DROP;
		__u16 optlen = (__u16)(iph->ihl * 4 - 20);
		if (optlen > 40 || (void *)(iph + 1) + optlen > end)
			return XDP_DROP;
		if (!ipv4_csum_ok(iph, end))
			return XDP_DROP;
		if (iph->version != 4)
			return XDP_PASS;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		ip6h = (void *)(eth + 1);
		if ((void *)(ip6h + 1) > end)
			return XDP_DROP;
		if (ip6h->version != 6)
			return XDP_PASS;
	}
	struct mac_key mk;
	__builtin_memcpy(mk.addr, eth->h_dest, ETH_ALEN);
	if (!bpf_map_lookup_elem(&hw_router_mac, &mk))
		return XDP_PASS;
	struct route *r;
	if (iph) {
		if (iph->ttl <= 1 || iph->ihl != 5)
			return XDP_PASS;
		struct v4_key k = { .prefixlen = 32, .addr = iph->daddr };
		r = bpf_map_lookup_elem(&hw_routes_v4, &k);
	} else if (ip6h) {
		if (ip6h->hop_limit <= 1)
			return XDP_PASS;
		struct v6_key k = { .prefixlen = 128 };
		__builtin_memcpy(k.addr, &ip6h->daddr, 16);
		r = bpf_map_lookup_elem(&hw_routes_v6, &k);
	} else {
		return XDP_PASS;
	}
	if (!r || r->action == 3)
		return XDP_DROP;
	if (r->action == 2)
		return XDP_PASS;
	return nexthop(ctx, eth, r->nexthop, iph, ip6h);
}
