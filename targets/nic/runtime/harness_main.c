/* c3po nic sanitizer harness, version 1 — a standalone executable around the host shim.
 *
 * Why a process and not the ctypes-loaded .so: AddressSanitizer must be the first DSO loaded, which inside a
 * Python interpreter needs LD_PRELOAD of libasan and breaks on any other instrumented extension. A small
 * executable built with -fsanitize=address,undefined -fno-sanitize-recover=all has none of that: any finding
 * aborts it with a report on stderr, which the driver turns into an error.
 *
 * Text protocol on stdin/stdout, one command per line, hex for bytes ("-" for none):
 *   init | add T PRIO A MATCH ARGS | def T A ARGS | watch N (KIND ID IDX)*N | reset N (ID IDX VAL16)*N
 *   look T PRIO MATCH | mod T HANDLE A ARGS | del T HANDLE (the table API's lookup, modify, delete: each replies
 *   with the C return code, a handle for look)
 *   pkt PORT DATA -> "VERDICT OUT_PORT DATA NCHG (TAG V1 V2)*" (TAG: a watch index, or a touched counter or
 *   register element as the host shim encodes it)
 *   fuzz SEED COUNT NTABLES NSEEDS, then NSEEDS lines of DATA -> "fuzzed COUNT"
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *shim_new(void);
void shim_free(void *p);
void shim_reinit(void *p);
int shim_add(void *p, uint32_t table, const uint8_t *match, int32_t priority, uint32_t action, const uint8_t *args);
int shim_delete(void *p, uint32_t table, uint32_t handle);
int shim_lookup(void *p, uint32_t table, const uint8_t *match, int32_t priority);
int shim_modify(void *p, uint32_t table, uint32_t handle, uint32_t action, const uint8_t *args);
int shim_set_default(void *p, uint32_t table, uint32_t action, const uint8_t *args);
int shim_watch(void *p, uint32_t n, const uint32_t *kind, const uint32_t *id, const uint32_t *idx);
int shim_reset(void *p, uint32_t n_regs, const uint32_t *reg_id, const uint32_t *reg_idx, const uint8_t *reg_val);
int shim_process(void *p, uint8_t *pkt, uint32_t *len, uint32_t cap, uint32_t port, uint32_t *out_port);
uint32_t shim_run(void *p, uint32_t n, const uint8_t *in, const uint32_t *in_off, const uint32_t *in_len,
                  const uint32_t *ports, uint8_t *out, uint32_t stride, uint32_t *out_len, int32_t *verdict,
                  uint32_t *out_port, uint32_t *n_chg);
const uint64_t *shim_changes(void *p);

#define STRIDE 16384u

static size_t unhex(const char *h, uint8_t *out, size_t cap) {
    size_t n = 0;
    if (!h || h[0] == '-') return 0;
    while (h[0] && h[1] && n < cap) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1) break;
        out[n++] = (uint8_t)v;
        h += 2;
    }
    return n;
}

static uint64_t rng_state;
static uint64_t verdicts[5];
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random table churn, then COUNT packets: seeds mutated (bit flips, byte writes, truncation, extension) or
 * plain random bytes. The point is that no input makes the generated code read or write out of bounds. */
static void fuzz(void *s, uint64_t seed, uint64_t count, uint32_t ntables, uint8_t **seeds, size_t *seed_len,
                 uint32_t nseeds) {
    static uint8_t pkt[STRIDE];
    uint8_t m[512], a[512];
    uint64_t i;
    uint32_t t, k;
    rng_state = seed;
    for (t = 0; t < ntables; t++) {
        for (k = 0; k < 64; k++) {
            size_t j;
            int h;
            for (j = 0; j < sizeof m; j++) { m[j] = (uint8_t)rnd(); a[j] = (uint8_t)rnd(); }
            h = shim_add(s, t, m, (int32_t)(rnd() % 100), (uint32_t)(rnd() % 16), a);
            if (h >= 0 && rnd() % 4 == 0) shim_delete(s, t, (uint32_t)h);
        }
        shim_set_default(s, t, (uint32_t)(rnd() % 16), a);
    }
    for (i = 0; i < count; i++) {
        uint32_t len, cap, port = (uint32_t)(rnd() % 8), in_off = 0, out_len, out_port, n_chg;
        int32_t verdict;
        uint64_t chg[3];
        static uint8_t out[1];
        uint32_t r = (uint32_t)(rnd() % 16);
        if (nseeds == 0 || r == 0) {
            len = (uint32_t)(rnd() % 200);
            for (k = 0; k < len; k++) pkt[k] = (uint8_t)rnd();
        } else {
            uint32_t sidx = (uint32_t)(rnd() % nseeds), muts = (uint32_t)(rnd() % 4);
            len = (uint32_t)seed_len[sidx];
            memcpy(pkt, seeds[sidx], len);
            for (k = 0; k < muts && len > 0; k++) {
                uint32_t pos = (uint32_t)(rnd() % len);
                switch (rnd() % 3) {
                case 0: pkt[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
                case 1: pkt[pos] = (uint8_t)rnd(); break;
                default: pkt[pos] = (uint8_t)(rnd() % 2 ? 0xff : 0x00); break;
                }
            }
            if (r < 5) len = len ? (uint32_t)(rnd() % len) : 0;           /* truncated */
            else if (r < 7) {                                               /* extended */
                uint32_t extra = (uint32_t)(rnd() % 64);
                for (k = 0; k < extra && len < 1500; k++) pkt[len++] = (uint8_t)rnd();
            }
        }
        /* the frame in a heap block of exactly `cap` bytes, often exactly its length: any access past the
         * capacity (a missed bounds check, an encapsulation that does not notice it cannot grow) is an ASan
         * report */
        r = (uint32_t)(rnd() % 4);
        cap = r == 0 ? len : (r == 1 ? len + (uint32_t)(rnd() % 64) : 2048u);
        {
            uint8_t *b = malloc(cap ? cap : 1);
            out_len = len;
            memcpy(b, pkt, len);
            verdict = shim_process(s, b, &out_len, cap, port, &out_port);
            verdicts[verdict >= 0 && verdict < 4 ? verdict : 4]++;
            free(b);
        }
        (void)in_off; (void)chg; (void)n_chg; (void)out;
    }
}

int main(int argc, char **argv) {
    char *line = NULL;
    size_t lcap = 0;
    void *s = shim_new();
    static uint8_t buf[STRIDE], out[STRIDE];
    (void)argc; (void)argv;
    if (!s) return 2;
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    while (getline(&line, &lcap, stdin) > 0) {
        char *save = NULL, *cmd = strtok_r(line, " \n", &save);
        if (!cmd) continue;
        if (!strcmp(cmd, "init")) {
            shim_reinit(s);
            printf("ok\n");
        } else if (!strcmp(cmd, "add") || !strcmp(cmd, "def")) {
            uint8_t m[4096], a[4096];
            uint32_t t = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            int rc;
            if (!strcmp(cmd, "add")) {
                int32_t prio = (int32_t)strtol(strtok_r(NULL, " \n", &save), NULL, 10);
                uint32_t act = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                memset(m, 0, sizeof m); memset(a, 0, sizeof a);
                unhex(strtok_r(NULL, " \n", &save), m, sizeof m);
                unhex(strtok_r(NULL, " \n", &save), a, sizeof a);
                rc = shim_add(s, t, m, prio, act, a);
            } else {
                uint32_t act = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                memset(a, 0, sizeof a);
                unhex(strtok_r(NULL, " \n", &save), a, sizeof a);
                rc = shim_set_default(s, t, act, a);
            }
            printf("%d\n", rc);
        } else if (!strcmp(cmd, "look") || !strcmp(cmd, "mod") || !strcmp(cmd, "del")) {
            static uint8_t m[4096], a[4096];
            uint32_t t = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            int rc;
            memset(m, 0, sizeof m); memset(a, 0, sizeof a);
            if (!strcmp(cmd, "look")) {
                int32_t prio = (int32_t)strtol(strtok_r(NULL, " \n", &save), NULL, 10);
                unhex(strtok_r(NULL, " \n", &save), m, sizeof m);
                rc = shim_lookup(s, t, m, prio);
            } else {
                uint32_t h = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                if (!strcmp(cmd, "mod")) {
                    uint32_t act = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                    unhex(strtok_r(NULL, " \n", &save), a, sizeof a);
                    rc = shim_modify(s, t, h, act, a);
                } else {
                    rc = shim_delete(s, t, h);
                }
            }
            printf("%d\n", rc);
        } else if (!strcmp(cmd, "watch") || !strcmp(cmd, "reset")) {
            uint32_t n = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10), i;
            uint32_t *x = calloc(n + 1, 4), *y = calloc(n + 1, 4), *z = calloc(n + 1, 4);
            uint8_t *val = calloc(n + 1, 16);
            for (i = 0; i < n; i++) {
                x[i] = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                y[i] = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                if (!strcmp(cmd, "watch")) z[i] = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
                else unhex(strtok_r(NULL, " \n", &save), val + 16u * i, 16);
            }
            if (!strcmp(cmd, "watch")) shim_watch(s, n, x, y, z);
            else shim_reset(s, n, x, y, val);
            free(x); free(y); free(z); free(val);
            printf("ok\n");
        } else if (!strcmp(cmd, "pkt")) {
            uint32_t port = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10), off = 0, i;
            uint32_t len = (uint32_t)unhex(strtok_r(NULL, " \n", &save), buf, sizeof buf), out_len, out_port, n_chg;
            int32_t verdict;
            const uint64_t *chg;
            if (shim_run(s, 1, buf, &off, &len, &port, out, STRIDE, &out_len, &verdict, &out_port, &n_chg) != 1) {
                fprintf(stderr, "harness: out of memory for the change log\n");
                return 3;
            }
            chg = shim_changes(s);
            printf("%d %u ", verdict, out_port);
            if (out_len == 0) printf("-");
            for (i = 0; i < out_len; i++) printf("%02x", out[i]);
            printf(" %u", n_chg);
            for (i = 0; i < n_chg; i++)
                printf(" %llu %llu %llu", (unsigned long long)chg[3 * i], (unsigned long long)chg[3 * i + 1],
                       (unsigned long long)chg[3 * i + 2]);
            printf("\n");
        } else if (!strcmp(cmd, "fuzz")) {
            uint64_t seed = strtoull(strtok_r(NULL, " \n", &save), NULL, 10);
            uint64_t count = strtoull(strtok_r(NULL, " \n", &save), NULL, 10);
            uint32_t ntables = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            uint32_t nseeds = (uint32_t)strtoul(strtok_r(NULL, " \n", &save), NULL, 10), i;
            uint8_t **seeds = calloc(nseeds + 1, sizeof *seeds);
            size_t *lens = calloc(nseeds + 1, sizeof *lens);
            for (i = 0; i < nseeds; i++) {
                if (getline(&line, &lcap, stdin) <= 0) break;
                seeds[i] = malloc(STRIDE);
                lens[i] = unhex(line, seeds[i], 1500);
            }
            fuzz(s, seed, count, ntables, seeds, lens, nseeds);
            for (i = 0; i < nseeds; i++) free(seeds[i]);
            free(seeds); free(lens);
            printf("fuzzed %llu drop %llu to_host %llu reflect %llu forward %llu\n", (unsigned long long)count,
                   (unsigned long long)verdicts[0], (unsigned long long)verdicts[1], (unsigned long long)verdicts[2],
                   (unsigned long long)verdicts[3]);
        } else if (!strcmp(cmd, "quit")) {
            break;
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    free(line);
    shim_free(s);
    return 0;
}
