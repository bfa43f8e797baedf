/*
 * strmap.h - a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied; values are opaque pointers owned by the caller. Used for
 * the per-run caches (zone cuts, authoritative channels), which hold a few
 * thousand entries at most.
 */
#ifndef CF_UTIL_STRMAP_H
#define CF_UTIL_STRMAP_H

#include <stddef.h>

struct strmap_entry {
    char *key; /* NULL = empty slot */
    void *val;
};

struct strmap {
    struct strmap_entry *slots;
    size_t cap, count;
};

void strmap_init(struct strmap *m);
/* strmap_cleanup frees the keys and the table (not the values). */
void strmap_cleanup(struct strmap *m);
/* strmap_get returns the value for key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);
/* strmap_put sets key's value, replacing any; returns the old value or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *val);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ... */

#endif
