/* c3po nic differential libFuzzer entry, version 1: the original program against one mutant of it.
 *
 * Two copies of the same generated program (and its host shim) are linked into one binary. Each copy is
 * compiled with -D renames of every global symbol its objects define (`-Dshim_run=c3po_o_shim_run`, ...,
 * `-D<p>_process=c3po_m_<p>_process`: see conformance/mutate_hunt.py), so the copies share no symbol; the
 * harness reaches them through the two prefixes below.
 *
 * States: the file named by $C3PO_DIFF_STATES lists the control states (and register values) to fuzz under,
 * as the nic driver installed them through the shim (recorded calls; see mutate_hunt.py):
 *   growth G | ports N P... | state | add T PRIO A MATCH ARGS | def T A ARGS | look T PRIO MATCH |
 *   mod T H A ARGS | del T H | watch N (KIND ID IDX)*N | regs N (ID IDX VAL16 HI LO)*N
 * (hex for bytes, "-" for none). Every state is installed once into a shim of each copy at start; a table API
 * call whose return code differs between the copies marks the state as distinguishing by itself.
 *
 * Input: byte 0 picks the state, byte 1 the ingress port (from the list), the rest is the frame. Each copy
 * runs it through shim_run from a reset (counters 0, the state's registers), as the driver runs a vector's
 * packet. What a vector observes is compared: the verdict, the egress port of a forward, the frame (unless
 * dropped), and the counter and register elements that changed (per-entry counters, watched, and every element
 * the packet wrote whose value now differs from the one it started with). A difference prints C3PO-DIFF lines
 * to stderr and aborts: libFuzzer keeps the input as a crash artifact. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECLARE_COPY(P)                                                                                        \
    void *c3po_##P##_shim_new(void);                                                                           \
    int c3po_##P##_shim_add(void *, uint32_t, const uint8_t *, int32_t, uint32_t, const uint8_t *);            \
    int c3po_##P##_shim_delete(void *, uint32_t, uint32_t);                                                    \
    int c3po_##P##_shim_lookup(void *, uint32_t, const uint8_t *, int32_t);                                    \
    int c3po_##P##_shim_modify(void *, uint32_t, uint32_t, uint32_t, const uint8_t *);                         \
    int c3po_##P##_shim_set_default(void *, uint32_t, uint32_t, const uint8_t *);                              \
    int c3po_##P##_shim_watch(void *, uint32_t, const uint32_t *, const uint32_t *, const uint32_t *);         \
    int c3po_##P##_shim_reset(void *, uint32_t, const uint32_t *, const uint32_t *, const uint8_t *);          \
    uint32_t c3po_##P##_shim_run(void *, uint32_t, const uint8_t *, const uint32_t *, const uint32_t *,        \
                                 const uint32_t *, uint8_t *, uint32_t, uint32_t *, int32_t *, uint32_t *,     \
                                 uint32_t *);                                                                  \
    const uint64_t *c3po_##P##_shim_changes(void *);
DECLARE_COPY(o)
DECLARE_COPY(m)

struct copy {
    void *(*new_)(void);
    int (*add)(void *, uint32_t, const uint8_t *, int32_t, uint32_t, const uint8_t *);
    int (*del)(void *, uint32_t, uint32_t);
    int (*look)(void *, uint32_t, const uint8_t *, int32_t);
    int (*mod)(void *, uint32_t, uint32_t, uint32_t, const uint8_t *);
    int (*def)(void *, uint32_t, uint32_t, const uint8_t *);
    int (*watch)(void *, uint32_t, const uint32_t *, const uint32_t *, const uint32_t *);
    int (*reset)(void *, uint32_t, const uint32_t *, const uint32_t *, const uint8_t *);
    uint32_t (*run)(void *, uint32_t, const uint8_t *, const uint32_t *, const uint32_t *, const uint32_t *,
                    uint8_t *, uint32_t, uint32_t *, int32_t *, uint32_t *, uint32_t *);
    const uint64_t *(*changes)(void *);
};
#define COPY(P)                                                                                                \
    { c3po_##P##_shim_new, c3po_##P##_shim_add, c3po_##P##_shim_delete, c3po_##P##_shim_lookup,                \
      c3po_##P##_shim_modify, c3po_##P##_shim_set_default, c3po_##P##_shim_watch, c3po_##P##_shim_reset,       \
      c3po_##P##_shim_run, c3po_##P##_shim_changes }
static const struct copy copies[2] = {COPY(o), COPY(m)};

#define MAX_STATES 256
#define MAX_PORTS 256
#define MAX_CHG 4096

struct state {
    void *s[2];
    uint32_t nregs;
    uint32_t *reg_id, *reg_idx;
    uint8_t *reg_val;
    uint64_t *reg_hi, *reg_lo;
    int calls, bad_call; /* the first table API call whose return codes differ (1-based), or 0 */
    int rc[2];
    /* handles are the copies' own business (a vector sees entries by their install order): the mutant's handle
     * of each entry the original added as handle `orig`, per table, so later calls name the same entry */
    uint32_t n_map, cap_map;
    uint32_t (*map)[3]; /* table, original's handle, mutant's handle */
};

static struct state states[MAX_STATES];
static uint32_t n_states, ports[MAX_PORTS], n_ports = 1, growth = 1024;
static uint8_t *outbuf[2];
static uint32_t out_cap;

static int nibble(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Hex into `out` (at most `cap` bytes; "-" is none); stops at the first character that is not a hex pair. */
static size_t unhex(const char *h, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (; h && n < cap && nibble(h[0]) >= 0 && nibble(h[1]) >= 0; h += 2)
        out[n++] = (uint8_t)(nibble(h[0]) << 4 | nibble(h[1]));
    return n;
}

static void fail(const char *why) {
    fprintf(stderr, "differential harness: %s\n", why);
    exit(2);
}

/* The mutant's handle of the entry the original calls `h` in table `t` (h itself when no add returned it). */
static uint32_t mapped(const struct state *st, uint32_t t, uint32_t h) {
    uint32_t i;
    for (i = st->n_map; i > 0; i--)
        if (st->map[i - 1][0] == t && st->map[i - 1][1] == h) return st->map[i - 1][2];
    return h;
}

static void remember(struct state *st, uint32_t t, int orig, int mut) {
    if (orig < 0 || mut < 0) return;
    if (st->n_map == st->cap_map) {
        uint32_t cap = st->cap_map ? 2u * st->cap_map : 64u;
        void *n = realloc(st->map, (size_t)cap * sizeof *st->map);
        if (!n) fail("out of memory");
        st->map = n;
        st->cap_map = cap;
    }
    st->map[st->n_map][0] = t;
    st->map[st->n_map][1] = (uint32_t)orig;
    st->map[st->n_map++][2] = (uint32_t)mut;
}

static const char *tok(char **save) {
    const char *t = strtok_r(NULL, " \n", save);
    return t ? t : "0";
}

/* One recorded call, replayed on both copies' shims of the current state. */
static void replay(struct state *st, const char *cmd, char **save) {
    static uint8_t m[4096], a[4096];
    int rc[2], k;
    memset(m, 0, sizeof m);
    memset(a, 0, sizeof a);
    if (!strcmp(cmd, "watch") || !strcmp(cmd, "regs")) {
        uint32_t n = (uint32_t)strtoul(tok(save), NULL, 10), i;
        uint32_t *x = calloc(n + 1, 4), *y = calloc(n + 1, 4), *z = calloc(n + 1, 4);
        uint8_t *val = calloc(n + 1, 16);
        uint64_t *hi = calloc(n + 1, 8), *lo = calloc(n + 1, 8);
        if (!x || !y || !z || !val || !hi || !lo) fail("out of memory");
        for (i = 0; i < n; i++) {
            x[i] = (uint32_t)strtoul(tok(save), NULL, 10);
            y[i] = (uint32_t)strtoul(tok(save), NULL, 10);
            if (!strcmp(cmd, "watch")) {
                z[i] = (uint32_t)strtoul(tok(save), NULL, 10);
            } else {
                unhex(tok(save), val + 16u * i, 16);
                hi[i] = strtoull(tok(save), NULL, 10);
                lo[i] = strtoull(tok(save), NULL, 10);
            }
        }
        if (!strcmp(cmd, "watch")) {
            copies[0].watch(st->s[0], n, x, y, z);
            for (i = 0; i < n; i++)
                if (x[i] == 0) z[i] = mapped(st, y[i], z[i]); /* a table entry counter: table, handle */
            copies[1].watch(st->s[1], n, x, y, z);
            free(val); free(hi); free(lo);
        } else {
            st->nregs = n; st->reg_id = x; st->reg_idx = y; st->reg_val = val; st->reg_hi = hi; st->reg_lo = lo;
            x = y = NULL;
        }
        free(x); free(y); free(z);
        return;
    }
    {
        uint32_t t = (uint32_t)strtoul(tok(save), NULL, 10);
        if (!strcmp(cmd, "add")) {
            int32_t prio = (int32_t)strtol(tok(save), NULL, 10);
            uint32_t act = (uint32_t)strtoul(tok(save), NULL, 10);
            unhex(tok(save), m, sizeof m);
            unhex(tok(save), a, sizeof a);
            for (k = 0; k < 2; k++) rc[k] = copies[k].add(st->s[k], t, m, prio, act, a);
            remember(st, t, rc[0], rc[1]);
            if (rc[0] >= 0 && rc[1] >= 0) rc[1] = rc[0];
        } else if (!strcmp(cmd, "def")) {
            uint32_t act = (uint32_t)strtoul(tok(save), NULL, 10);
            unhex(tok(save), a, sizeof a);
            for (k = 0; k < 2; k++) rc[k] = copies[k].def(st->s[k], t, act, a);
        } else if (!strcmp(cmd, "look")) {
            int32_t prio = (int32_t)strtol(tok(save), NULL, 10);
            unhex(tok(save), m, sizeof m);
            for (k = 0; k < 2; k++) rc[k] = copies[k].look(st->s[k], t, m, prio);
            if (rc[0] >= 0 && rc[1] >= 0 && (uint32_t)rc[1] == mapped(st, t, (uint32_t)rc[0])) rc[1] = rc[0];
        } else if (!strcmp(cmd, "mod")) {
            uint32_t h = (uint32_t)strtoul(tok(save), NULL, 10), act = (uint32_t)strtoul(tok(save), NULL, 10);
            unhex(tok(save), a, sizeof a);
            rc[0] = copies[0].mod(st->s[0], t, h, act, a);
            rc[1] = copies[1].mod(st->s[1], t, mapped(st, t, h), act, a);
        } else if (!strcmp(cmd, "del")) {
            uint32_t h = (uint32_t)strtoul(tok(save), NULL, 10);
            rc[0] = copies[0].del(st->s[0], t, h);
            rc[1] = copies[1].del(st->s[1], t, mapped(st, t, h));
        } else {
            fail("unknown command in the states file");
            return;
        }
    }
    st->calls++;
    if (!st->bad_call && rc[0] != rc[1]) {
        st->bad_call = st->calls;
        st->rc[0] = rc[0];
        st->rc[1] = rc[1];
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *path = getenv("C3PO_DIFF_STATES");
    FILE *f;
    char *line = NULL;
    size_t lcap = 0;
    uint32_t i;
    (void)argc; (void)argv;
    if (!path) fail("C3PO_DIFF_STATES names no file");
    f = fopen(path, "r");
    if (!f) fail("cannot open the states file");
    ports[0] = 0;
    while (getline(&line, &lcap, f) > 0) {
        char *save = NULL, *cmd = strtok_r(line, " \n", &save);
        if (!cmd) continue;
        if (!strcmp(cmd, "growth")) {
            growth = (uint32_t)strtoul(tok(&save), NULL, 10);
        } else if (!strcmp(cmd, "ports")) {
            n_ports = (uint32_t)strtoul(tok(&save), NULL, 10);
            if (n_ports < 1 || n_ports > MAX_PORTS) fail("bad port count");
            for (i = 0; i < n_ports; i++) ports[i] = (uint32_t)strtoul(tok(&save), NULL, 10);
        } else if (!strcmp(cmd, "state")) {
            struct state *st;
            if (n_states == MAX_STATES) fail("too many states");
            st = &states[n_states++];
            st->s[0] = copies[0].new_();
            st->s[1] = copies[1].new_();
            if (!st->s[0] || !st->s[1]) fail("out of memory");
        } else {
            if (!n_states) fail("a call before the first state");
            replay(&states[n_states - 1], cmd, &save);
        }
    }
    free(line);
    fclose(f);
    if (!n_states) fail("no state");
    return 0;
}

struct seen {
    int32_t verdict;
    uint32_t port, len, n;
    uint8_t *data;
    uint64_t chg[3 * MAX_CHG];
};

static int cmp_chg(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The changes a vector would see: the last value of each tag, without the touched elements that hold what
 * they held before the packet (a register written with its own value, a counter left at 0). */
static void normalize(struct seen *r, const struct state *st, const uint64_t *chg, uint32_t n) {
    uint32_t i, j, out = 0;
    if (n > MAX_CHG) n = MAX_CHG;
    memcpy(r->chg, chg, (size_t)n * 3u * sizeof *chg);
    /* stable: insertion sort keeps the order of equal tags, so the last write wins below */
    for (i = 1; i < n; i++) {
        uint64_t t[3];
        memcpy(t, r->chg + 3u * i, sizeof t);
        for (j = i; j > 0 && cmp_chg(r->chg + 3u * (j - 1), t) > 0; j--) memcpy(r->chg + 3u * j, r->chg + 3u * (j - 1), sizeof t);
        memcpy(r->chg + 3u * j, t, sizeof t);
    }
    for (i = 0; i < n; i++) {
        uint64_t *c = r->chg + 3u * i, hi = 0, lo = 0;
        if (i + 1 < n && r->chg[3u * (i + 1)] == c[0]) continue;
        if (c[0] >> 63) {
            uint32_t kind = (uint32_t)(c[0] >> 56) & 0x7fu, id = (uint32_t)(c[0] >> 32) & 0xffffffu, idx = (uint32_t)c[0];
            if (kind == 2)
                for (j = 0; j < st->nregs; j++)
                    if (st->reg_id[j] == id && st->reg_idx[j] == idx) { hi = st->reg_hi[j]; lo = st->reg_lo[j]; }
            if (c[1] == hi && c[2] == lo) continue;
        }
        memmove(r->chg + 3u * out++, c, 3u * sizeof *c);
    }
    r->n = out;
}

static void show(const char *who, const struct seen *r) {
    uint32_t i;
    fprintf(stderr, "C3PO-%s %d %u ", who, r->verdict, r->port);
    if (!r->len) fprintf(stderr, "-");
    for (i = 0; i < r->len; i++) fprintf(stderr, "%02x", r->data[i]);
    fprintf(stderr, " %u", r->n);
    for (i = 0; i < 3u * r->n; i++) fprintf(stderr, " %llu", (unsigned long long)r->chg[i]);
    fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct seen seen[2];
    struct state *st;
    uint32_t port, len, k, off = 0, stride;
    if (size < 2 || size > 9002) return 0;
    st = &states[data[0] % n_states];
    port = ports[data[1] % n_ports];
    len = (uint32_t)(size - 2);
    stride = len + growth;
    if (stride > out_cap) {
        for (k = 0; k < 2; k++) {
            free(outbuf[k]);
            outbuf[k] = malloc(stride);
            if (!outbuf[k]) fail("out of memory");
        }
        out_cap = stride;
    }
    if (st->bad_call) {
        fprintf(stderr, "C3PO-DIFF state=%u port=%u api_call=%d rc=%d,%d\n", data[0] % n_states, port,
                st->bad_call, st->rc[0], st->rc[1]);
        abort();
    }
    for (k = 0; k < 2; k++) {
        struct seen *r = &seen[k];
        uint32_t out_len = 0, out_port = 0, n_chg = 0;
        int32_t verdict = 0;
        copies[k].reset(st->s[k], st->nregs, st->reg_id, st->reg_idx, st->reg_val);
        if (copies[k].run(st->s[k], 1, data + 2, &off, &len, &port, outbuf[k], stride, &out_len, &verdict,
                          &out_port, &n_chg) != 1)
            fail("out of memory for the change log");
        r->verdict = verdict >= 0 && verdict <= 3 ? verdict : 0;
        r->port = r->verdict == 3 ? out_port : 0;               /* forward: the egress port */
        r->len = r->verdict == 0 ? 0 : out_len;                /* a dropped frame is not observed */
        r->data = outbuf[k];
        normalize(r, st, copies[k].changes(st->s[k]), n_chg);
    }
    if (seen[0].verdict != seen[1].verdict || seen[0].port != seen[1].port || seen[0].len != seen[1].len ||
        memcmp(seen[0].data, seen[1].data, seen[0].len) != 0 || seen[0].n != seen[1].n ||
        memcmp(seen[0].chg, seen[1].chg, 3u * seen[0].n * sizeof(uint64_t)) != 0) {
        fprintf(stderr, "C3PO-DIFF state=%u port=%u\n", data[0] % n_states, port);
        show("ORIG", &seen[0]);
        show("MUT", &seen[1]);
        abort();
    }
    return 0;
}
