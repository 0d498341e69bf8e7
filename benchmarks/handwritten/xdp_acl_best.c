// SPDX-License-Identifier: GPL-2.0
/* The best hand-written XDP classifier we know for the priority ACL of benchmarks/bench_xdp.py (issue 14):
 * IPv4/UDP, ternary source and destination, destination-port range, highest priority wins, default drop,
 * non-UDP frames to the host; up to 64 rules (the spec's size).
 *
 * A bit-vector classifier (Lakshman and Stiliadis), constant time whatever the rule count: rules are ranked by
 * priority (bit 0 the highest); for each byte of the source and destination addresses a 256-entry table gives
 * the rules whose ternary value/mask accept that byte, and a 65,536-entry table gives the rules whose range holds
 * the port. The matching rules are the AND of nine loads from .bss; the winner is the lowest set bit (m & -m), and
 * one more AND with the permit mask gives the verdict. 528 KiB of .bss, filled by the loader
 * (bench_xdp.py, install_acl_best) from the same rules the generated program gets.
 *
 * BEST_LINEAR (bench_xdp.py --ablate): instead, a fully unrolled linear scan of the rules in priority order, the
 * two addresses compared as one 64-bit masked word and the range as one unsigned subtraction.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_RULES 64

struct rule {
	__u64 mask, value; /* source << 32 | destination, host order */
	__u16 lo, span;    /* port - lo <= span */
	__u32 permit;
};

struct acl_tables {
	__u64 src[4][256];
	__u64 dst[4][256];
	__u64 port[65536];
	__u64 permit; /* rules whose action is to_host */
	__u32 n_rules;
	__u32 pad;
	struct rule rules[MAX_RULES]; /* BEST_LINEAR only */
};

struct acl_tables acl SEC(".bss");

static __always_inline int classify(const __u8 *ip, const __u8 *udp)
{
#ifdef BEST_LINEAR
	__u64 k = (__u64)bpf_ntohl(*(__u32 *)(ip + 12)) << 32 | bpf_ntohl(*(__u32 *)(ip + 16));
	__u16 port = bpf_ntohs(*(__u16 *)(udp + 2));
	__u32 n = acl.n_rules;
#pragma unroll
	for (int i = 0; i < MAX_RULES; i++) {
		if (i >= n)
			break;
		const struct rule *r = &acl.rules[i];
		if ((k & r->mask) == r->value && (__u16)(port - r->lo) <= r->span)
			return r->permit ? XDP_PASS : XDP_DROP;
	}
	return XDP_DROP;
#else
	__u64 m = acl.src[0][ip[12]] & acl.src[1][ip[13]] & acl.src[2][ip[14]] & acl.src[3][ip[15]] &
		  acl.dst[0][ip[16]] & acl.dst[1][ip[17]] & acl.dst[2][ip[18]] & acl.dst[3][ip[19]] &
		  acl.port[bpf_ntohs(*(__u16 *)(udp + 2))];
	return (m & -m & acl.permit) ? XDP_PASS : XDP_DROP; /* no rule: the default, drop */
#endif
}

SEC("xdp")
int best_acl(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_DROP;
	if (*(__u16 *)(data + 12) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u8 *ip = data + 14;
	if (data + 42 <= end && ip[0] == 0x45) { /* no options, room for UDP: the common case */
		if (ip[9] != 17)
			return XDP_PASS;
		return classify(ip, ip + 20);
	}
	if (ip + 20 > end)
		return XDP_DROP;
	__u32 optlen = ((ip[0] & 0xf) * 4 - 20) & 0xffff;
	if (optlen > 40)
		return XDP_DROP;
	__u8 *udp = ip + 20 + optlen;
	if (udp > end)
		return XDP_DROP;
	if (ip[9] != 17)
		return XDP_PASS;
	if (udp + 8 > end)
		return XDP_DROP;
	return classify(ip, udp);
}
