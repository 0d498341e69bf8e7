/* Hand-written baseline for benchmarks/bench_nic.py: the behaviour of spec/examples/acl_firewall.yaml written by
 * hand — a goto-based parser over the packet in place (VLAN/QinQ, IPv4 options walked for Router Alert, the
 * IPv6 extension chain with Hop-by-Hop options walked), and the two rule tables as priority-sorted arrays
 * scanned first-match (the same algorithm class as the generated code). Permit = to_host, deny = drop; the
 * frame is never rewritten, so nothing is copied back. Host C (not freestanding). */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

typedef unsigned __int128 u128;
enum { DROP = 0, TO_HOST = 1 };
#define RULES 4096u

struct rule {
    u128 src, src_m, dst, dst_m; /* IPv4 rules use the low 32 bits */
    uint64_t pk, by;
    int32_t prio;
    uint16_t vid, vid_m, sp_lo, sp_hi, dp_lo, dp_hi;
    uint8_t proto, proto_m, ack, ack_m, permit;
};
struct table { struct rule r[RULES]; uint32_t n; uint64_t def_pk, def_by; };
struct hw_state { struct table v4, v6; };

void *hw_new(void) { return calloc(1, sizeof(struct hw_state)); }
void hw_free(void *p) { free(p); }
size_t hw_state_size(void) { return sizeof(struct hw_state); }

/* insert keeping priority order (ties: install order) */
void hw_add_rule(struct hw_state *s, int v6, int32_t prio, uint32_t vid, uint32_t vid_m, uint64_t src_hi,
                 uint64_t src_lo, uint64_t srcm_hi, uint64_t srcm_lo, uint64_t dst_hi, uint64_t dst_lo,
                 uint64_t dstm_hi, uint64_t dstm_lo, uint32_t proto, uint32_t proto_m, uint32_t ack, uint32_t ack_m,
                 uint32_t sp_lo, uint32_t sp_hi, uint32_t dp_lo, uint32_t dp_hi, uint32_t permit) {
    struct table *t = v6 ? &s->v6 : &s->v4;
    struct rule r;
    uint32_t pos = 0, i;
    memset(&r, 0, sizeof r);
    r.prio = prio; r.vid_m = (uint16_t)vid_m; r.vid = (uint16_t)(vid & vid_m);
    r.src_m = (u128)srcm_hi << 64 | srcm_lo; r.src = ((u128)src_hi << 64 | src_lo) & r.src_m;
    r.dst_m = (u128)dstm_hi << 64 | dstm_lo; r.dst = ((u128)dst_hi << 64 | dst_lo) & r.dst_m;
    r.proto_m = (uint8_t)proto_m; r.proto = (uint8_t)(proto & proto_m); r.ack_m = (uint8_t)ack_m;
    r.ack = (uint8_t)(ack & ack_m);
    r.sp_lo = (uint16_t)sp_lo; r.sp_hi = (uint16_t)sp_hi; r.dp_lo = (uint16_t)dp_lo; r.dp_hi = (uint16_t)dp_hi;
    r.permit = (uint8_t)permit;
    while (pos < t->n && t->r[pos].prio >= prio) pos++;
    for (i = t->n; i > pos; i--) t->r[i] = t->r[i - 1];
    t->r[pos] = r;
    t->n++;
}

#define RD16(p) ((uint32_t)((p)[0] << 8 | (p)[1]))

/* Walks an options area; returns -1 if malformed, else whether option `want` (with `data` bytes) was seen. */
static int walk(const uint8_t *a, uint32_t n, uint32_t want, uint32_t data, int has_end, uint32_t adjust,
                uint32_t max_opts) {
    uint32_t q = 0, k = 0;
    int seen = 0;
    while (q < n) {
        uint32_t t, sz;
        if (k++ >= max_opts) return -1;
        t = a[q];
        if (t == 0) { q++; if (has_end) break; continue; }
        if (has_end && t == 1) { q++; continue; }
        if (2 > n - q) return -1;
        sz = a[q + 1] + adjust;
        if (sz < 2 || sz > n - q) return -1;
        if (t == want) { if (sz - 2 < data) return -1; seen = 1; }
        if (!has_end && t == 194 && sz - 2 < 4) return -1; /* jumbo payload is also a named option */
        q += sz;
    }
    return seen;
}

static int acl(struct table *t, uint32_t len, uint32_t vid, u128 src, u128 dst, uint32_t proto, uint32_t ack,
               uint32_t sp, uint32_t dp) {
    uint32_t i;
    for (i = 0; i < t->n; i++) {
        struct rule *r = &t->r[i];
        if ((vid & r->vid_m) == r->vid && (src & r->src_m) == r->src && (dst & r->dst_m) == r->dst &&
            (proto & r->proto_m) == r->proto && (ack & r->ack_m) == r->ack && sp >= r->sp_lo && sp <= r->sp_hi &&
            dp >= r->dp_lo && dp <= r->dp_hi) {
            r->pk++; r->by += len;
            return r->permit ? TO_HOST : DROP;
        }
    }
    t->def_pk++; t->def_by += len;
    return DROP;
}

int hw_process(struct hw_state *s, uint8_t *p, uint32_t *lenp, uint32_t in_port, uint32_t *out_port) {
    uint32_t n = *lenp, cur = 14, et, nvlan = 0, vid0 = 0, nh, proto = 0, sp = 0, dp = 0, ack = 0;
    int v4 = 0, v6 = 0, tcp = 0, udp = 0, icmp6 = 0, frag6 = 0, ra = 0, rt0 = 0, rt = 0, r;
    u128 src = 0, dst = 0;
    uint32_t ip_proto = 0;
    (void)in_port;
    *out_port = 0;
    if (n < 14) return DROP;
    et = RD16(p + 12);
    if (et == 0x88a8 || et == 0x8100) {
        do {
            if (nvlan == 2) return DROP;
            if (4 > n - cur) return DROP;
            if (nvlan == 0) vid0 = RD16(p + cur) & 0xfff;
            et = RD16(p + cur + 2);
            cur += 4; nvlan++;
        } while (et == 0x8100);
    }
    if (et == 0x0800) {
        uint32_t ol;
        if (20 > n - cur) return DROP;
        ol = ((p[cur] & 15u) * 4 - 20) & 0xffff;
        if (ol > 40 || ol > n - cur - 20) return DROP;
        r = walk(p + cur + 20, ol, 148, 2, 1, 0, 40);
        if (r < 0) return DROP;
        ra = r; v4 = 1;
        ip_proto = p[cur + 9];
        src = (uint32_t)p[cur + 12] << 24 | (uint32_t)p[cur + 13] << 16 | (uint32_t)p[cur + 14] << 8 | p[cur + 15];
        dst = (uint32_t)p[cur + 16] << 24 | (uint32_t)p[cur + 17] << 16 | (uint32_t)p[cur + 18] << 8 | p[cur + 19];
        nh = (RD16(p + cur + 6) & 0x1fff) ? 256 : ip_proto;  /* non-first fragment: no transport header */
        cur += 20 + ol;
        if (nh == 1) { if (4 > n - cur) return DROP; cur += 4; nh = 256; }
    } else if (et == 0x86dd) {
        int k;
        if (40 > n - cur) return DROP;
        for (k = 0; k < 16; k++) { src = src << 8 | p[cur + 8 + k]; dst = dst << 8 | p[cur + 24 + k]; }
        ip_proto = nh = p[cur + 6];
        cur += 40; v6 = 1;
        if (nh == 0) {
            uint32_t l;
            if (2 > n - cur) return DROP;
            l = p[cur + 1] * 8u + 6;
            if (l > 254) return DROP;
            if (l > n - cur - 2) return DROP;
            r = walk(p + cur + 2, l, 5, 2, 0, 2, 32);
            if (r < 0) return DROP;
            ra = r;
            nh = p[cur]; cur += 2 + l;
            if (nh == 0) nh = 256;
        }
        if (nh == 60) {
            uint32_t l;
            if (2 > n - cur) return DROP;
            l = p[cur + 1] * 8u + 6;
            if (l > 254) return DROP;
            if (l > n - cur - 2) return DROP;
            nh = p[cur]; cur += 2 + l;
            if (nh == 60 || nh == 0) nh = 256;
        }
        if (nh == 43) {
            uint32_t l;
            if (4 > n - cur) return DROP;
            l = p[cur + 1] * 8u + 4;
            if (l > 252) return DROP;
            if (l > n - cur - 4) return DROP;
            rt = 1; rt0 = p[cur + 2] == 0;
            nh = p[cur]; cur += 4 + l;
            if (nh == 43 || nh == 0) nh = 256;
        }
        if (nh == 44) {
            if (8 > n - cur) return DROP;
            frag6 = 1;
            nh = (RD16(p + cur + 2) >> 3) ? 256 : p[cur];
            cur += 8;
            if (nh != 60 && nh != 6 && nh != 17 && nh != 58) nh = 256;
        } else if (rt && nh == 60) {
            /* final destination options after a routing header */
        } else if (nh == 60 || nh == 43 || nh == 44) {
            nh = 256;
        }
        if (nh == 60) {
            uint32_t l;
            if (2 > n - cur) return DROP;
            l = p[cur + 1] * 8u + 6;
            if (l > 254) return DROP;
            if (l > n - cur - 2) return DROP;
            nh = p[cur]; cur += 2 + l;
            if (nh != 6 && nh != 17 && nh != 58) nh = 256;
        }
        if (nh == 58) { if (4 > n - cur) return DROP; icmp6 = 1; nh = 256; }
    } else {
        return TO_HOST;
    }
    if (nh == 6) {
        uint32_t ol;
        if (20 > n - cur) return DROP;
        ol = ((p[cur + 12] >> 4) * 4u - 20) & 0xffff;
        if (ol > 40 || ol > n - cur - 20) return DROP;
        tcp = 1; sp = RD16(p + cur); dp = RD16(p + cur + 2); ack = (p[cur + 13] >> 4) & 1;
    } else if (nh == 17) {
        if (8 > n - cur) return DROP;
        udp = 1; sp = RD16(p + cur); dp = RD16(p + cur + 2);
    }
    proto = tcp ? 6 : udp ? 17 : icmp6 ? 58 : frag6 ? 44 : ip_proto;
    if (v4) return ra ? TO_HOST : acl(&s->v4, n, vid0, src, dst, proto, ack, sp, dp);
    if (rt && rt0) return DROP;
    if (ra) return TO_HOST;
    return acl(&s->v6, n, vid0, src, dst, proto, ack, sp, dp);
    (void)v6;
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
