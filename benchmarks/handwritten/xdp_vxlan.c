// SPDX-License-Identifier: GPL-2.0
/* Hand-written, tuned XDP VXLAN gateway (VTEP) with the behaviour of spec/examples/vxlan_gateway.yaml: the
 * baseline that benchmarks/bench_xdp.py compares c3po's generated program against.
 *
 * Idiomatic XDP: struct overlays for headers, one FDB hash map keyed by (VNI, MAC) whose value holds everything an
 * action needs, encapsulation by bpf_xdp_adjust_head(-50) and writing the outer headers straight into the packet,
 * decapsulation by bpf_xdp_adjust_head(+50) alone (the inner frame is already in place), a table-driven
 * CRC-16/ARC for the outer UDP source port, and the outer IPv4 checksum summed over the header just written.
 *
 * Same observable behaviour as the spec on every frame: parse errors in the spec's order (truncated -> drop,
 * checksum -> drop, fragment or VXLAN I flag clear -> host), local VTEP check, split horizon, per-entry FDB
 * counters (index 0: miss), and the ingress port from the c3po test-harness metadata (as the generated program).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define VXLAN_PORT 4789
#define ENCAP_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct vxlanhdr))

struct vxlanhdr {
	__be32 flags; /* 0x08000000: I flag */
	__be32 vni;   /* VNI << 8 */
};

enum { FDB_TO_LOCAL = 1, FDB_TO_REMOTE = 2, FDB_TO_HOST = 3, FDB_DROP = 4 };

struct fdb_key {
	__u32 vni;
	__u8 mac[ETH_ALEN];
	__u16 pad;
};

struct fdb_entry {
	__u32 action;
	__u32 counter; /* index in hw_fdb_counters (entry + 1) */
	__u32 port;
	__be32 vtep_src, vtep_dst;
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
};

struct port_vni { __u32 valid; __u32 vni; };
struct counter { __u64 packets, bytes; };
struct harness_meta { __u32 magic; __u32 port; }; /* the c3po driver's XDP metadata */

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
	 __type(key, __be32); __type(value, __u8); } hw_local_vtep SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 256);
	 __type(key, __u32); __type(value, struct port_vni); } hw_port_vni SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536);
	 __type(key, struct fdb_key); __type(value, struct fdb_entry); } hw_fdb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 65537);
	 __type(key, __u32); __type(value, struct counter); } hw_fdb_counters SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 1024);
	 __type(key, __u32); __type(value, __u32); } hw_tx_ports SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
	 __type(key, __u32); __type(value, __u32); } hw_ifports SEC(".maps");

/* CRC-16/ARC (reflected 0x8005), byte at a time. */
static const __u16 crc16_tab[256] = {
	0x0000, 0xC0C1, 0xC181, 0x0140, 0xC301, 0x03C0, 0x0280, 0xC241, 0xC601, 0x06C0, 0x0780, 0xC741, 0x0500,
	0xC5C1, 0xC481, 0x0440, 0xCC01, 0x0CC0, 0x0D80, 0xCD41, 0x0F00, 0xCFC1, 0xCE81, 0x0E40, 0x0A00, 0xCAC1,
	0xCB81, 0x0B40, 0xC901, 0x09C0, 0x0880, 0xC841, 0xD801, 0x18C0, 0x1980, 0xD941, 0x1B00, 0xDBC1, 0xDA81,
	0x1A40, 0x1E00, 0xDEC1, 0xDF81, 0x1F40, 0xDD01, 0x1DC0, 0x1C80, 0xDC41, 0x1400, 0xD4C1, 0xD581, 0x1540,
	0xD701, 0x17C0, 0x1680, 0xD641, 0xD201, 0x12C0, 0x1380, 0xD341, 0x1100, 0xD1C1, 0xD081, 0x1040, 0xF001,
	0x30C0, 0x3180, 0xF141, 0x3300, 0xF3C1, 0xF281, 0x3240, 0x3600, 0xF6C1, 0xF781, 0x3740, 0xF501, 0x35C0,
	0x3480, 0xF441, 0x3C00, 0xFCC1, 0xFD81, 0x3D40, 0xFF01, 0x3FC0, 0x3E80, 0xFE41, 0xFA01, 0x3AC0, 0x3B80,
	0xFB41, 0x3900, 0xF9C1, 0xF881, 0x3840, 0x2800, 0xE8C1, 0xE981, 0x2940, 0xEB01, 0x2BC0, 0x2A80, 0xEA41,
	0xEE01, 0x2EC0, 0x2F80, 0xEF41, 0x2D00, 0xEDC1, 0xEC81, 0x2C40, 0xE401, 0x24C0, 0x2580, 0xE541, 0x2700,
	0xE7C1, 0xE681, 0x2640, 0x2200, 0xE2C1, 0xE381, 0x2340, 0xE101, 0x21C0, 0x2080, 0xE041, 0xA001, 0x60C0,
	0x6180, 0xA141, 0x6300, 0xA3C1, 0xA281, 0x6240, 0x6600, 0xA6C1, 0xA781, 0x6740, 0xA501, 0x65C0, 0x6480,
	0xA441, 0x6C00, 0xACC1, 0xAD81, 0x6D40, 0xAF01, 0x6FC0, 0x6E80, 0xAE41, 0xAA01, 0x6AC0, 0x6B80, 0xAB41,
	0x6900, 0xA9C1, 0xA881, 0x6840, 0x7800, 0xB8C1, 0xB981, 0x7940, 0xBB01, 0x7BC0, 0x7A80, 0xBA41, 0xBE01,
	0x7EC0, 0x7F80, 0xBF41, 0x7D00, 0xBDC1, 0xBC81, 0x7C40, 0xB401, 0x74C0, 0x7580, 0xB541, 0x7700, 0xB7C1,
	0xB681, 0x7640, 0x7200, 0xB2C1, 0xB381, 0x7340, 0xB101, 0x71C0, 0x7080, 0xB041, 0x5000, 0x90C1, 0x9181,
	0x5140, 0x9301, 0x53C0, 0x5280, 0x9241, 0x9601, 0x56C0, 0x5780, 0x9741, 0x5500, 0x95C1, 0x9481, 0x5440,
	0x9C01, 0x5CC0, 0x5D80, 0x9D41, 0x5F00, 0x9FC1, 0x9E81, 0x5E40, 0x5A00, 0x9AC1, 0x9B81, 0x5B40, 0x9901,
	0x59C0, 0x5880, 0x9841, 0x8801, 0x48C0, 0x4980, 0x8941, 0x4B00, 0x8BC1, 0x8A81, 0x4A40, 0x4E00, 0x8EC1,
	0x8F81, 0x4F40, 0x8D01, 0x4DC0, 0x4C80, 0x8C41, 0x4400, 0x84C1, 0x8581, 0x4540, 0x8701, 0x47C0, 0x4680,
	0x8641, 0x8201, 0x42C0, 0x4380, 0x8341, 0x4100, 0x81C1, 0x8081, 0x4040,
};

static __always_inline __u16 crc16_eth(const __u8 *p) /* over dst, src, EtherType: 14 bytes */
{
	__u32 crc = 0;
#pragma unroll
	for (int i = 0; i < ETH_HLEN; i++)
		crc = (crc >> 8) ^ crc16_tab[(crc ^ p[i]) & 0xff];
	return crc;
}

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

static __always_inline __u64 sum_iphdr(const struct iphdr *iph)
{
	const __u32 *w = (const __u32 *)iph;
	return (__u64)w[0] + w[1] + w[2] + w[3] + w[4];
}

static __always_inline void count(__u32 idx, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(&hw_fdb_counters, &idx);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline __u32 ingress_port(struct xdp_md *ctx, void *data)
{
	struct harness_meta *md = (void *)(long)ctx->data_meta;
	if ((void *)(md + 1) <= data && md->magic == 0x63337030)
		return md->port & 0xffff;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *port = bpf_map_lookup_elem(&hw_ifports, &ifindex);
	return (port ? *port : ifindex) & 0xffff;
}

static __always_inline int decap(struct xdp_md *ctx, void *data, void *end)
{
	struct ethhdr *oeth = data;
	struct iphdr *oip = (void *)(oeth + 1);
	if (csum_fold(sum_iphdr(oip)) != 0xffff)
		return XDP_DROP;
	if (oip->frag_off & bpf_htons(0x2000 | 0x1fff)) /* fragment: the host reassembles */
		return XDP_PASS;
	struct udphdr *udp = (void *)(oip + 1);
	struct vxlanhdr *vxh = (void *)(udp + 1);
	if ((void *)(vxh + 1) > end)
		return XDP_DROP;
	if (!(vxh->flags & bpf_htonl(0x08000000)))
		return XDP_PASS;
	struct ethhdr *eth = (void *)(vxh + 1);
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__be32 daddr = oip->daddr;
	if (!bpf_map_lookup_elem(&hw_local_vtep, &daddr))
		return XDP_PASS;
	struct fdb_key k = { .vni = bpf_ntohl(vxh->vni) >> 8 };
	__builtin_memcpy(k.mac, eth->h_dest, ETH_ALEN);
	struct fdb_entry *e = bpf_map_lookup_elem(&hw_fdb, &k);
	count(e ? e->counter : 0, end - data);
	if (!e || e->action == FDB_TO_HOST)
		return XDP_PASS;
	if (e->action != FDB_TO_LOCAL) /* drop, and to_remote: split horizon */
		return XDP_DROP;
	__u32 port = e->port;
	if (bpf_xdp_adjust_head(ctx, (int)ENCAP_LEN))
		return XDP_ABORTED;
	return bpf_redirect_map(&hw_tx_ports, port, XDP_DROP);
}

static __always_inline int encap(struct xdp_md *ctx, void *data, void *end)
{
	struct ethhdr *eth = data;
	struct port_vni *pv;
	__u32 port = ingress_port(ctx, data);
	pv = bpf_map_lookup_elem(&hw_port_vni, &port);
	if (!pv || !pv->valid)
		return XDP_DROP;
	struct fdb_key k = { .vni = pv->vni };
	__builtin_memcpy(k.mac, eth->h_dest, ETH_ALEN);
	struct fdb_entry *e = bpf_map_lookup_elem(&hw_fdb, &k);
	__u32 len = end - data;
	count(e ? e->counter : 0, len);
	if (!e || e->action == FDB_TO_HOST)
		return XDP_PASS;
	if (e->action == FDB_DROP)
		return XDP_DROP;
	if (e->action == FDB_TO_LOCAL)
		return bpf_redirect_map(&hw_tx_ports, e->port, XDP_DROP);
	__u16 sport = crc16_eth(data) | 0xc000;
	if (bpf_xdp_adjust_head(ctx, -(int)ENCAP_LEN))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *oeth = data;
	struct iphdr *oip = (void *)(oeth + 1);
	struct udphdr *udp = (void *)(oip + 1);
	struct vxlanhdr *vxh = (void *)(udp + 1);
	if ((void *)(vxh + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(oeth->h_dest, e->dmac, ETH_ALEN);
	__builtin_memcpy(oeth->h_source, e->smac, ETH_ALEN);
	oeth->h_proto = bpf_htons(ETH_P_IP);
	oip->version = 4;
	oip->ihl = 5;
	oip->tos = 0;
	oip->tot_len = bpf_htons((__u16)(len + 36));
	oip->id = 0;
	oip->frag_off = bpf_htons(0x4000); /* DF */
	oip->ttl = 64;
	oip->protocol = IPPROTO_UDP;
	oip->check = 0;
	oip->saddr = e->vtep_src;
	oip->daddr = e->vtep_dst;
	oip->check = ~csum_fold(sum_iphdr(oip));
	udp->source = bpf_htons(sport);
	udp->dest = bpf_htons(VXLAN_PORT);
	udp->len = bpf_htons((__u16)(len + 16));
	udp->check = 0;
	vxh->flags = bpf_htonl(0x08000000);
	vxh->vni = bpf_htonl(k.vni << 8);
	return bpf_redirect_map(&hw_tx_ports, e->port, XDP_DROP);
}

SEC("xdp")
int hw_vxlan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct udphdr *udp = (void *)(iph + 1);
	if ((void *)udp + 4 > end) /* the classifying lookahead needs 38 bytes */
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP) && *(__u8 *)iph == 0x45 && iph->protocol == IPPROTO_UDP &&
	    udp->dest == bpf_htons(VXLAN_PORT))
		return decap(ctx, data, end);
	return encap(ctx, data, end);
}
