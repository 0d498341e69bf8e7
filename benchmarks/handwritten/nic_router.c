/* Hand-written baseline for benchmarks/bench_nic.py: the behaviour of spec/examples/router.yaml written the way
 * a C programmer would, with the same table algorithms as the generated code (open-addressing hash for exact
 * keys, one hash probe per prefix length in use for LPM) but hand-specialised: fixed-offset parsing, packed
 * entries, in-place rewrites and an RFC 1624 incremental IPv4 checksum update. Host C (not freestanding). */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

typedef unsigned __int128 u128;

#define MAC_CAP 128u
#define V4_CAP 131072u
#define V6_CAP 32768u
#define NH_CAP 8192u

enum { DROP = 0, TO_HOST = 1, FORWARD = 3 };
enum { A_DROP, A_TO_HOST, A_NEXTHOP };

struct v4_ent { uint32_t pfx; uint16_t nh; uint8_t plen, used, action; };
struct v6_ent { u128 pfx; uint16_t nh; uint8_t plen, used, action; };
struct nh_ent { uint64_t pk, by; uint16_t id, port; uint8_t smac[6], dmac[6], used; };

struct hw_state {
    uint64_t mac[MAC_CAP]; uint8_t mac_used[MAC_CAP];
    struct v4_ent v4[V4_CAP]; uint32_t v4_n[33]; uint8_t v4_lens[33]; uint32_t v4_nl;
    struct v6_ent v6[V6_CAP]; uint32_t v6_n[129]; uint8_t v6_lens[129]; uint32_t v6_nl;
    struct nh_ent nh[NH_CAP];
    uint64_t nh_def_pk, nh_def_by;
};

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ull; h ^= h >> 27; h *= 0x94d049bb133111ebull; return h ^ (h >> 31);
}

void *hw_new(void) { return calloc(1, sizeof(struct hw_state)); }
void hw_free(void *p) { free(p); }
size_t hw_state_size(void) { return sizeof(struct hw_state); }

void hw_add_mac(struct hw_state *s, uint64_t mac) {
    uint32_t i = (uint32_t)mix(mac) & (MAC_CAP - 1);
    while (s->mac_used[i]) i = (i + 1) & (MAC_CAP - 1);
    s->mac[i] = mac; s->mac_used[i] = 1;
}

void hw_add_v4(struct hw_state *s, uint32_t pfx, uint32_t plen, uint32_t action, uint32_t nh) {
    uint32_t m = plen ? ~0u << (32 - plen) : 0, i, l;
    pfx &= m;
    i = (uint32_t)mix(((uint64_t)plen << 32) | pfx) & (V4_CAP - 1);
    while (s->v4[i].used) i = (i + 1) & (V4_CAP - 1);
    s->v4[i] = (struct v4_ent){pfx, (uint16_t)nh, (uint8_t)plen, 1, (uint8_t)action};
    s->v4_n[plen]++;
    s->v4_nl = 0;
    for (l = 33; l > 0; l--) if (s->v4_n[l - 1]) s->v4_lens[s->v4_nl++] = (uint8_t)(l - 1);
}

void hw_add_v6(struct hw_state *s, uint64_t hi, uint64_t lo, uint32_t plen, uint32_t action, uint32_t nh) {
    u128 pfx = ((u128)hi << 64) | lo, m = plen ? (~(u128)0) << (128 - plen) : 0;
    uint32_t i, l;
    pfx &= m;
    i = (uint32_t)mix(mix((uint64_t)(pfx >> 64) ^ plen) ^ (uint64_t)pfx) & (V6_CAP - 1);
    while (s->v6[i].used) i = (i + 1) & (V6_CAP - 1);
    s->v6[i] = (struct v6_ent){pfx, (uint16_t)nh, (uint8_t)plen, 1, (uint8_t)action};
    s->v6_n[plen]++;
    s->v6_nl = 0;
    for (l = 129; l > 0; l--) if (s->v6_n[l - 1]) s->v6_lens[s->v6_nl++] = (uint8_t)(l - 1);
}

void hw_add_nh(struct hw_state *s, uint32_t id, uint32_t port, uint64_t smac, uint64_t dmac) {
    uint32_t i = (uint32_t)mix(id) & (NH_CAP - 1), k;
    while (s->nh[i].used) i = (i + 1) & (NH_CAP - 1);
    s->nh[i].id = (uint16_t)id; s->nh[i].port = (uint16_t)port; s->nh[i].used = 1;
    for (k = 0; k < 6; k++) { s->nh[i].smac[k] = (uint8_t)(smac >> (40 - 8 * k)); s->nh[i].dmac[k] = (uint8_t)(dmac >> (40 - 8 * k)); }
}

static inline int mac_hit(const struct hw_state *s, uint64_t mac) {
    uint32_t i = (uint32_t)mix(mac) & (MAC_CAP - 1);
    while (s->mac_used[i]) { if (s->mac[i] == mac) return 1; i = (i + 1) & (MAC_CAP - 1); }
    return 0;
}

static inline const struct v4_ent *v4_lookup(const struct hw_state *s, uint32_t dst) {
    uint32_t k;
    for (k = 0; k < s->v4_nl; k++) {
        uint32_t plen = s->v4_lens[k], m = plen ? ~0u << (32 - plen) : 0, key = dst & m;
        uint32_t i = (uint32_t)mix(((uint64_t)plen << 32) | key) & (V4_CAP - 1);
        while (s->v4[i].used) {
            if (s->v4[i].plen == plen && s->v4[i].pfx == key) return &s->v4[i];
            i = (i + 1) & (V4_CAP - 1);
        }
    }
    return NULL;
}

static inline const struct v6_ent *v6_lookup(const struct hw_state *s, u128 dst) {
    uint32_t k;
    for (k = 0; k < s->v6_nl; k++) {
        uint32_t plen = s->v6_lens[k];
        u128 m = plen ? (~(u128)0) << (128 - plen) : 0, key = dst & m;
        uint32_t i = (uint32_t)mix(mix((uint64_t)(key >> 64) ^ plen) ^ (uint64_t)key) & (V6_CAP - 1);
        while (s->v6[i].used) {
            if (s->v6[i].plen == plen && s->v6[i].pfx == key) return &s->v6[i];
            i = (i + 1) & (V6_CAP - 1);
        }
    }
    return NULL;
}

static inline struct nh_ent *nh_lookup(struct hw_state *s, uint32_t id) {
    uint32_t i = (uint32_t)mix(id) & (NH_CAP - 1);
    while (s->nh[i].used) { if (s->nh[i].id == id) return &s->nh[i]; i = (i + 1) & (NH_CAP - 1); }
    return NULL;
}

static inline uint32_t csum(const uint8_t *p, uint32_t n) {
    uint32_t s = 0, i;
    for (i = 0; i + 1 < n; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
    s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16);
    return s;
}

/* the next hop: counters, MAC rewrite, TTL/hop limit, forward */
static int next_hop(struct hw_state *s, uint8_t *p, uint32_t len, uint32_t id, int v4, uint32_t *out_port) {
    struct nh_ent *e = nh_lookup(s, id);
    if (!e) { s->nh_def_pk++; s->nh_def_by += len; return TO_HOST; }
    e->pk++; e->by += len;
    memcpy(p, e->dmac, 6); memcpy(p + 6, e->smac, 6);
    if (v4) {
        /* RFC 1624: TTL is the high byte of the word at offset 8 */
        uint32_t old = (uint32_t)(p[22] << 8 | p[23]), hc = (uint32_t)(p[24] << 8 | p[25]), sum;
        p[22]--;
        sum = (~hc & 0xffff) + (~old & 0xffff) + (uint32_t)(p[22] << 8 | p[23]);
        sum = (sum & 0xffff) + (sum >> 16); sum = (sum & 0xffff) + (sum >> 16);
        hc = ~sum & 0xffff;
        p[24] = (uint8_t)(hc >> 8); p[25] = (uint8_t)hc;
    } else {
        p[21]--;
    }
    *out_port = e->port;
    return FORWARD;
}

int hw_process(struct hw_state *s, uint8_t *p, uint32_t *lenp, uint32_t in_port, uint32_t *out_port) {
    uint32_t len = *lenp, et;
    uint64_t dmac;
    (void)in_port;
    *out_port = 0;
    if (len < 14) return DROP;
    et = (uint32_t)(p[12] << 8 | p[13]);
    if (et == 0x0800) {
        uint32_t ihl, hl;
        if (len < 34) return DROP;
        ihl = p[14] & 15u;
        hl = (ihl * 4 - 20) & 0xffff;
        if (hl > 40) return DROP;
        if (34 + hl > len) return DROP;
        if (csum(p + 14, 20 + hl) != 0xffff) return DROP;
        if ((p[14] >> 4) != 4) return TO_HOST;
    } else if (et == 0x86dd) {
        if (len < 54) return DROP;
        if ((p[14] >> 4) != 6) return TO_HOST;
    }
    dmac = (uint64_t)p[0] << 40 | (uint64_t)p[1] << 32 | (uint64_t)p[2] << 24 | (uint64_t)p[3] << 16 |
           (uint64_t)p[4] << 8 | p[5];
    if (!mac_hit(s, dmac)) return TO_HOST;
    if (et == 0x0800) {
        const struct v4_ent *r;
        if (p[22] <= 1 || (p[14] & 15) != 5) return TO_HOST;
        r = v4_lookup(s, (uint32_t)p[30] << 24 | (uint32_t)p[31] << 16 | (uint32_t)p[32] << 8 | p[33]);
        if (!r || r->action == A_DROP) return DROP;
        if (r->action == A_TO_HOST) return TO_HOST;
        return next_hop(s, p, len, r->nh, 1, out_port);
    }
    if (et == 0x86dd) {
        const struct v6_ent *r;
        u128 dst = 0;
        int k;
        if (p[21] <= 1) return TO_HOST;
        for (k = 0; k < 16; k++) dst = dst << 8 | p[38 + k];
        r = v6_lookup(s, dst);
        if (!r || r->action == A_DROP) return DROP;
        if (r->action == A_TO_HOST) return TO_HOST;
        return next_hop(s, p, len, r->nh, 0, out_port);
    }
    return TO_HOST;
}

uint64_t hw_bench(void *sp, uint32_t n, const uint8_t *in, const uint32_t *in_off, const uint32_t *in_len,
                  const uint32_t *ports, uint32_t rounds) {
    struct hw_state *s = sp;
    uint8_t buf[2048];
    struct timespec a, b;
    uint32_t r, i, op;
    volatile int sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < n; i++) {
            uint32_t len = in_len[i] < 1536u ? in_len[i] : 1536u;
            memcpy(buf, in + in_off[i], len);
            sink += hw_process(s, buf, &len, ports[i], &op);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)sink;
    return (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)(b.tv_nsec - a.tv_nsec);
}
