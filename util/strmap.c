/*
 * strmap.c - a string-keyed hash map.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "strmap.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

void strmap_init(struct strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void strmap_cleanup(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    strmap_init(m);
}

static struct strmap_entry *find(const struct strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->slots[i].key) {
        if (strcmp(m->slots[i].key, key) == 0)
            return &m->slots[i];
        i = (i + 1) & (m->cap - 1);
    }
    return &m->slots[i];
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct strmap_entry *e = find(m, key);
    return e && e->key ? e->val : NULL;
}

static void grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    struct strmap_entry *old = m->slots;
    size_t ocap = m->cap;
    m->slots = xcalloc(ncap, sizeof(*m->slots));
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key)
            continue;
        struct strmap_entry *e = find(m, old[i].key);
        *e = old[i];
    }
    free(old);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    struct strmap_entry *e = find(m, key);
    if (e->key) {
        void *prev = e->val;
        e->val = val;
        return prev;
    }
    e->key = xstrdup(key);
    e->val = val;
    m->count++;
    return NULL;
}
