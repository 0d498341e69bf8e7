/* c3po nic driver: a batch of table API calls in one foreign call.
 *
 * The driver fills each table to its declared size and empties it again once per program build (contracts.py):
 * up to 65,536 entries, a few hundred thousand calls, which through ctypes one by one take seconds. This file is
 * built once into its own shared object (next to the program's); it calls the host shim's shim_add/_lookup/
 * _modify/_delete through the function pointers the driver passes, so it needs nothing of any program.
 *
 * Call i: op[i] 0 add(table, match, priority = x, action = y, args), 1 lookup(table, match, priority = x),
 * 2 modify(table, handle = x, action = y, args), 3 delete(table, handle = x); match and args are at moff[i] and
 * aoff[i] in blob. rc[i] gets the call's return code.
 */
#include <stdint.h>

typedef int (*c3po_add_fn)(void *, uint32_t, const uint8_t *, int32_t, uint32_t, const uint8_t *);
typedef int (*c3po_lookup_fn)(void *, uint32_t, const uint8_t *, int32_t);
typedef int (*c3po_modify_fn)(void *, uint32_t, uint32_t, uint32_t, const uint8_t *);
typedef int (*c3po_delete_fn)(void *, uint32_t, uint32_t);

void c3po_batch(void *shim, c3po_add_fn add, c3po_lookup_fn lookup, c3po_modify_fn modify, c3po_delete_fn del,
                uint32_t n, const uint8_t *op, const uint32_t *table, const int64_t *x, const uint32_t *y,
                const uint8_t *blob, const uint32_t *moff, const uint32_t *aoff, int32_t *rc) {
    uint32_t i;
    for (i = 0; i < n; i++) {
        switch (op[i]) {
        case 0: rc[i] = add(shim, table[i], blob + moff[i], (int32_t)x[i], y[i], blob + aoff[i]); break;
        case 1: rc[i] = lookup(shim, table[i], blob + moff[i], (int32_t)x[i]); break;
        case 2: rc[i] = modify(shim, table[i], (uint32_t)x[i], y[i], blob + aoff[i]); break;
        case 3: rc[i] = del(shim, table[i], (uint32_t)x[i]); break;
        default: rc[i] = -3; break;
        }
    }
}
