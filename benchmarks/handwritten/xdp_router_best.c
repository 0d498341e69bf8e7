// SPDX-License-Identifier: GPL-2.0
/* The best hand-written XDP router we know for spec/examples/router.yaml (issue 14): the "best hand-written"
 * column of benchmarks/bench_xdp.py. Same verdicts, output frames, egress ports and per-entry next-hop counters
 * as the spec; built as an expert would, with no kernel map helper on the fast path:
 *
 * - IPv4 and IPv6 LPM in multibit tries in .bss (DIR-16-8-8...: a 65,536-slot root indexed by the top 16 bits,
 *   then 256-slot nodes indexed by the next byte; prefixes pushed down to the leaves, so a lookup stops at the
 *   first slot that is not a link; a link is the node's first slot | bit 30, so a level is an xor and an or).
 *   An IPv4 /24 is 2 dependent loads, an IPv6 /48 is 5. A leaf holds the route's result itself (action and
 *   next-hop id): no second lookup for the entry.
 * - The router-MAC table as a 2-choice cuckoo hash over 256 u64 slots in .bss (multiply-shift hashes): 2 loads.
 * - Next-hop data (port, MACs) and its per-entry counter in one per-CPU array element: one (inlined) lookup.
 * - DEVMAP (an array) for the dense egress ports.
 * - IPv4 checksum verified as five 32-bit words; TTL decrement with the RFC 1624 incremental update of one
 *   16-bit word; the 12 MAC bytes written as one 8-byte and one 4-byte store.
 * - Checks reordered where nothing observes the order (TTL before the router-MAC lookup: both go to the host and
 *   neither counts); no per-packet state record.
 *
 * The loader (benchmarks/bench_xdp.py, install_router_best) builds the tries with targets/xdp/trie.py's
 * algorithm and writes the .bss image in one update.
 *
 * Switches that turn one choice off, to measure it (bench_xdp.py --ablate): BEST_KERNEL_LPM (LPM_TRIE maps),
 * BEST_HASH_MAC (a HASH map for the router MACs), BEST_SPLIT_COUNTER (next hops in an ARRAY, counters in a
 * separate PERCPU_ARRAY: two lookups), BEST_DEVMAP_HASH (DEVMAP_HASH for egress ports); and three that copy
 * what the generated program does with the same structures: BEST_MAP_TRIE (trie slots in ARRAY maps of u64 pairs,
 * one inlined map lookup and null test per level, not .bss), BEST_ENTRY_INDIRECT (a trie leaf or router-MAC hit
 * gives an entry index, whose action and arguments take one more inlined ARRAY lookup), BEST_STATE_RECORD (a
 * per-CPU state record looked up per packet, the egress port and a touched-counter log written to it),
 * BEST_BUCKET_MAC (the router MACs in the generated program's cuckoo: 32 buckets of 4 {key, entry} slots in an
 * ARRAY map, the MAC read big-endian, each slot's entry and key tested); and BEST_LOOP_V6 (the IPv6 walk as a
 * loop, which clang 14 leaves rolled, and slots in u32 variables: this program until 2026-12-07).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define TRIE_LINK 0x40000000u /* a link: the node's first slot | bit 30 (targets/xdp/trie.py) */
#define V4_NODES 8192 /* 8 MiB: the spec's 65,536 routes at up to two nodes per /25../32 beyond a shared root */
#define V6_NODES 2048
#define MAC_SLOTS 256
#define NH_IDS 65536 /* meta.nexthop is 16 bits */

/* A leaf: 0 no route (the table's default: drop), else kind << 16 | next-hop id. */
enum { R_NEXTHOP = 1, R_TO_HOST = 2, R_DROP = 3 };

struct best_tables {
	__u64 mac[MAC_SLOTS];                  /* cuckoo: little-endian MAC | 1 << 48; 0 is free */
	__u32 v4[(256 + V4_NODES) * 256];      /* root (slots 0..65535), then node n at n * 256 */
	__u32 v6[(256 + V6_NODES) * 256];
};

struct best_tables best SEC(".bss");

/* One element per next-hop id (index id + 1; index 0 counts the default action, to_host). */
struct nexthop {
	__u32 valid;
	__u32 port;
	__u8 macs[12]; /* dmac, smac: the frame's first 12 bytes */
	__u32 pad;
	__u64 packets;
	__u64 bytes;
};

struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, NH_IDS + 1);
	 __type(key, __u32); __type(value, struct nexthop); } best_nexthops SEC(".maps");
#ifdef BEST_DEVMAP_HASH
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 1024);
	 __type(key, __u32); __type(value, __u32); } best_tx_ports SEC(".maps");
#else
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, NH_IDS);
	 __type(key, __u32); __type(value, __u32); } best_tx_ports SEC(".maps");
#endif

/* The ablations' kernel maps (filled by the loader in every build, used only when switched on). */
struct v4_key { __u32 prefixlen; __be32 addr; };
struct v6_key { __u32 prefixlen; __u8 addr[16]; };
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 65536); __uint(map_flags, BPF_F_NO_PREALLOC);
	 __type(key, struct v4_key); __type(value, __u32); } best_lpm_v4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16384); __uint(map_flags, BPF_F_NO_PREALLOC);
	 __type(key, struct v6_key); __type(value, __u32); } best_lpm_v6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	 __type(key, __u64); __type(value, __u8); } best_mac_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, NH_IDS + 1);
	 __type(key, __u32); __type(value, struct nexthop); } best_nh_data SEC(".maps");
struct counter { __u64 packets, bytes; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, (256 + V4_NODES) * 128);
	 __type(key, __u32); __type(value, __u64); } best_map_v4 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, (256 + V6_NODES) * 128);
	 __type(key, __u32); __type(value, __u64); } best_map_v6 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4 << 16);
	 __type(key, __u32); __type(value, __u64); } best_entry_values SEC(".maps"); /* leaf -> leaf */
struct state { __u32 egress_port, touch_n; __u64 touch[8]; };
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1);
	 __type(key, __u32); __type(value, struct state); } best_state SEC(".maps");

struct mac_slot { __u64 k0; __u32 entry, pad; };
struct mac_bucket { struct mac_slot s[4]; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 32);
	 __type(key, __u32); __type(value, struct mac_bucket); } best_mac_buckets SEC(".maps");

static __always_inline __u32 bucket_find(__u64 k0, __u64 mul)
{
	__u32 cb = (__u32)((k0 * mul) >> 59);
	struct mac_bucket *b = bpf_map_lookup_elem(&best_mac_buckets, &cb);
	if (!b)
		return 0;
	if (b->s[0].entry && b->s[0].k0 == k0)
		return b->s[0].entry;
	if (b->s[1].entry && b->s[1].k0 == k0)
		return b->s[1].entry;
	if (b->s[2].entry && b->s[2].k0 == k0)
		return b->s[2].entry;
	if (b->s[3].entry && b->s[3].k0 == k0)
		return b->s[3].entry;
	return 0;
}

static __always_inline __u32 entry_value(__u32 leaf)
{
#ifdef BEST_ENTRY_INDIRECT
	if (!leaf)
		return 0;
	__u64 *v = bpf_map_lookup_elem(&best_entry_values, &leaf);
	return v ? (__u32)*v : 0;
#else
	return leaf;
#endif
}
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, NH_IDS + 1);
	 __type(key, __u32); __type(value, struct counter); } best_nh_counters SEC(".maps");

static __always_inline int mac_ok(const __u8 *dst)
{
	__u64 k = (__u64)*(const __u32 *)dst | (__u64)*(const __u16 *)(dst + 4) << 32;
#ifdef BEST_BUCKET_MAC
	__u64 be = (__u64)bpf_ntohl(*(const __u32 *)dst) << 16 | bpf_ntohs(*(const __u16 *)(dst + 4));
	__u32 e = bucket_find(be, 0x9e3779b97f4a7c15ULL);
	if (!e)
		e = bucket_find(be, 0xc2b2ae3d27d4eb4fULL);
	return e != 0;
#elif defined(BEST_HASH_MAC)
	return bpf_map_lookup_elem(&best_mac_hash, &k) != NULL;
#else
	__u64 tag = k | 1ULL << 48;
	int hit = best.mac[(k * 0x9e3779b97f4a7c15ULL) >> 56] == tag ||
		  best.mac[(k * 0xc2b2ae3d27d4eb4fULL) >> 56] == tag;
#ifdef BEST_ENTRY_INDIRECT
	hit = hit && entry_value(1 << 16) != 0;
#endif
	return hit;
#endif
}

/* Slots are read into 64-bit variables: a u32 would be zero-extended again (two shifts) at every level. */
static __always_inline __u64 map_slot(void *map, __u32 i)
{
	__u32 pair = i >> 1;
	__u32 *s = bpf_map_lookup_elem(map, &pair);
	return s ? s[i & 1] : 0;
}

static __always_inline __u64 v4_slot(__u64 i)
{
#ifdef BEST_MAP_TRIE
	return map_slot(&best_map_v4, i);
#endif
	return i < sizeof(best.v4) / 4 ? best.v4[i] : 0;
}

static __always_inline __u64 v6_slot(__u64 i)
{
#ifdef BEST_MAP_TRIE
	return map_slot(&best_map_v6, i);
#endif
	return i < sizeof(best.v6) / 4 ? best.v6[i] : 0;
}

static __always_inline __u32 route_v4(__be32 daddr)
{
#ifdef BEST_KERNEL_LPM
	struct v4_key k = { .prefixlen = 32, .addr = daddr };
	__u32 *r = bpf_map_lookup_elem(&best_lpm_v4, &k);
	return r ? *r : 0;
#else
	__u32 a = bpf_ntohl(daddr);
#ifdef BEST_MAP_TRIE
	__u64 s = v4_slot(a >> 16);
#else
	__u64 s = best.v4[a >> 16];
#endif
	if (s & TRIE_LINK) {
		s = v4_slot((s ^ TRIE_LINK) | ((a >> 8) & 0xff));
		if (s & TRIE_LINK)
			s = v4_slot((s ^ TRIE_LINK) | (a & 0xff));
	}
	return entry_value(s);
#endif
}

static __always_inline __u32 route_v6(const __u8 *daddr)
{
#ifdef BEST_KERNEL_LPM
	struct v6_key k = { .prefixlen = 128 };
	__builtin_memcpy(k.addr, daddr, 16);
	__u32 *r = bpf_map_lookup_elem(&best_lpm_v6, &k);
	return r ? *r : 0;
#else
	__u64 hi = bpf_be64_to_cpu(*(const __u64 *)daddr);
	__u64 lo = bpf_be64_to_cpu(*(const __u64 *)(daddr + 8));
#ifdef BEST_MAP_TRIE
	__u64 s = v6_slot(hi >> 48);
#else
	__u64 s = best.v6[hi >> 48];
#endif
#ifdef BEST_LOOP_V6
	/* clang 14 does not unroll this loop (-Wpass-failed): a counter and a compare per level */
#pragma unroll
	for (int i = 0; i < 14; i++) {
		if (!(s & TRIE_LINK))
			break;
		__u32 b = i < 6 ? (__u32)(hi >> (40 - 8 * i)) & 0xff : (__u32)(lo >> (56 - 8 * (i - 6))) & 0xff;
		s = v6_slot((s ^ TRIE_LINK) | b);
	}
#else
#define V6_LEVEL(bits) do { \
		if (!(s & TRIE_LINK)) \
			return entry_value(s); \
		s = v6_slot((s ^ TRIE_LINK) | ((bits) & 0xff)); \
	} while (0)
	V6_LEVEL(hi >> 40); V6_LEVEL(hi >> 32); V6_LEVEL(hi >> 24); V6_LEVEL(hi >> 16); V6_LEVEL(hi >> 8); V6_LEVEL(hi);
	V6_LEVEL(lo >> 56); V6_LEVEL(lo >> 48); V6_LEVEL(lo >> 40); V6_LEVEL(lo >> 32); V6_LEVEL(lo >> 24);
	V6_LEVEL(lo >> 16); V6_LEVEL(lo >> 8); V6_LEVEL(lo);
#endif
	return entry_value(s);
#endif
}

static __always_inline void touch(struct state *st, __u32 idx)
{
#ifdef BEST_STATE_RECORD
	__u32 n = st->touch_n & 7;
	st->touch[n] = 1ULL << 32 | idx;
	st->touch_n = n + 1;
#endif
}

static __always_inline int forward(struct xdp_md *ctx, struct state *st, __u8 *data, __u8 *ttl_word, int v4,
				   __u32 r)
{
	__u64 len = (__u64)((long)ctx->data_end - (long)ctx->data);
	__u32 id = (r & 0xffff) + 1;
#ifdef BEST_SPLIT_COUNTER
	struct nexthop *nh = bpf_map_lookup_elem(&best_nh_data, &id);
	__u32 slot = (nh && nh->valid) ? id : 0;
	struct counter *c = bpf_map_lookup_elem(&best_nh_counters, &slot);
	if (c) {
		c->packets++;
		c->bytes += len;
	}
	if (!nh || !nh->valid)
		return XDP_PASS;
#else
	struct nexthop *nh = bpf_map_lookup_elem(&best_nexthops, &id);
	if (!nh)
		return XDP_ABORTED;
	if (!nh->valid) { /* unresolved next hop: the default action (to_host), counted at index 0 */
		__u32 zero = 0;
		nh = bpf_map_lookup_elem(&best_nexthops, &zero);
		if (nh) {
			nh->packets++;
			nh->bytes += len;
		}
		touch(st, 0);
		return XDP_PASS;
	}
	nh->packets++;
	nh->bytes += len;
	touch(st, id);
#endif
	*(__u64 *)data = *(__u64 *)nh->macs;
	*(__u32 *)(data + 8) = *(__u32 *)(nh->macs + 8);
	if (v4) { /* TTL is the high byte of the word at offset 8; RFC 1624: HC' = HC + 0x0100 (ones' complement) */
		__u16 *check = (__u16 *)(ttl_word + 2);
		__u32 c = *check + bpf_htons(0x0100);
		*check = (__u16)(c + (c >= 0xffff));
		ttl_word[0]--;
	} else {
		ttl_word[0]--;
	}
#ifdef BEST_STATE_RECORD
	st->egress_port = nh->port;
#endif
	return bpf_redirect_map(&best_tx_ports, nh->port, XDP_DROP);
}

static __always_inline __u32 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/* IPv4 with options or a bad version/IHL: the spec's checks in order (length, truncation, checksum), and every
 * frame that passes them goes to the host (ihl != 5 or version != 4). Rare: a bounded loop. */
static __attribute__((noinline)) int ipv4_slow(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	if (data + 34 > end)
		return XDP_DROP;
	__u32 optlen = ((data[14] & 0xf) * 4 - 20) & 0xffff;
	if (optlen > 40)
		return XDP_DROP;
	if (data + 34 + optlen > end)
		return XDP_DROP;
	__u64 sum = 0;
	__u32 *w = (__u32 *)(data + 14);
	for (int i = 0; i < 15; i++) {
		if ((__u32)i * 4 >= 20 + optlen || (__u8 *)(w + i + 1) > end)
			break;
		sum += w[i];
	}
	return fold(sum) == 0xffff ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int best_router(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	struct state *st = NULL;
#ifdef BEST_STATE_RECORD
	__u32 zero = 0;
	st = bpf_map_lookup_elem(&best_state, &zero);
	if (!st)
		return XDP_ABORTED;
#endif
	if (data + 14 > end)
		return XDP_DROP;
	__u16 proto = *(__u16 *)(data + 12);
	__u32 r;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (data + 34 > end)
			return XDP_DROP;
		__u8 *ip = data + 14;
		if (ip[0] != 0x45)
			return ipv4_slow(ctx);
		const __u32 *w = (const __u32 *)ip;
		if (fold((__u64)w[0] + w[1] + w[2] + w[3] + w[4]) != 0xffff)
			return XDP_DROP;
		if (ip[8] <= 1 || !mac_ok(data))
			return XDP_PASS;
		r = route_v4(*(__be32 *)(ip + 16));
		if (r >> 16 == R_NEXTHOP)
			return forward(ctx, st, data, ip + 8, 1, r);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (data + 54 > end)
			return XDP_DROP;
		__u8 *ip6 = data + 14;
		if ((ip6[0] >> 4) != 6 || ip6[7] <= 1 || !mac_ok(data))
			return XDP_PASS;
		r = route_v6(ip6 + 24);
		if (r >> 16 == R_NEXTHOP)
			return forward(ctx, st, data, ip6 + 7, 0, r);
	} else {
		return XDP_PASS; /* router MAC or not: neither IPv4 nor IPv6 goes to the host */
	}
	return r >> 16 == R_TO_HOST ? XDP_PASS : XDP_DROP; /* no route: the default, drop */
}
