/* c3po nic libFuzzer entry, version 1: coverage-guided fuzzing of one generated program.
 *
 *   clang -fsanitize=fuzzer,address,undefined -I OUT OUT/<p>.c OUT/<p>_shim.c libfuzzer_main.c -o fuzz_<p>
 *   ./fuzz_<p> -runs=1000000
 *
 * The first input byte picks the ingress port and the buffer slack; the rest is the frame, copied into a heap
 * block of exactly its capacity so ASan sees any access past it. Tables hold their constant entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *shim_new(void);
int shim_process(void *p, uint8_t *pkt, uint32_t *len, uint32_t cap, uint32_t port, uint32_t *out_port);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static void *s;
    uint32_t len, cap, out_port = 0;
    uint8_t *buf;
    if (!s) s = shim_new();
    if (size < 1 || size > 9000) return 0;
    len = (uint32_t)(size - 1);
    cap = len + (uint32_t)(data[0] & 0x3fu);
    buf = malloc(cap ? cap : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, len);
    (void)shim_process(s, buf, &len, cap, data[0] >> 6, &out_port);
    free(buf);
    return 0;
}
