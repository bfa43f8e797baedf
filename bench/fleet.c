/*
 * fleet.c - the synthetic fleet: names, the mix and the class of each host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

#define PPM 1000000u

static const char *const class_names[FLEET__COUNT] = {
    [FLEET_DELEGATED] = "delegated",     [FLEET_NOTLIVE] = "notlive",
    [FLEET_PROPAGATING] = "propagating", [FLEET_WRONG] = "wrong",
    [FLEET_MISSING] = "missing",
};

static const char *const words[8] = {"www", "api", "shop", "img", "m", "blog", "app", "static"};

const char *fleet_class_name(enum fleet_class c)
{
    return (unsigned)c < FLEET__COUNT ? class_names[c] : "?";
}

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finalizer: every input bit reaches every output bit. */
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

uint64_t fleet_name_hash(const char *name, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h = (h ^ c) * UINT64_C(0x100000001b3);
    }
    return mix64(h);
}

int fleet_mix_parse(struct fleet_mix *m, const char *spec, char *err, size_t errlen)
{
    struct fleet_mix tmp;
    uint64_t sum = 0;
    const char *p = spec;
    memset(&tmp, 0, sizeof(tmp));
    while (*p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end) {
            snprintf(err, errlen, "mix item '%.*s' is not CLASS=PERCENT", (int)(end - p), p);
            return -1;
        }
        int c = -1;
        for (int i = 0; i < FLEET__COUNT; i++)
            if (strlen(class_names[i]) == (size_t)(eq - p) &&
                memcmp(class_names[i], p, (size_t)(eq - p)) == 0)
                c = i;
        char *num_end;
        double pct = strtod(eq + 1, &num_end);
        if (c < 0) {
            snprintf(err, errlen,
                     "unknown class '%.*s' (delegated, notlive, propagating, wrong, "
                     "missing)",
                     (int)(eq - p), p);
            return -1;
        }
        if (num_end != end || eq + 1 == end || !(pct >= 0 && pct <= 100)) {
            snprintf(err, errlen, "mix item '%.*s': the share is a percentage from 0 to 100",
                     (int)(end - p), p);
            return -1;
        }
        tmp.ppm[c] = (uint32_t)(pct * 10000.0 + 0.5);
        p = *end ? end + 1 : end;
    }
    for (int i = 0; i < FLEET__COUNT; i++)
        if (i != FLEET_MISSING)
            sum += tmp.ppm[i];
    if (sum > PPM) {
        snprintf(err, errlen, "the mix '%s' adds up to more than 100%%", spec);
        return -1;
    }
    /* missing takes the rest, so the shares always cover every host. */
    tmp.ppm[FLEET_MISSING] = (uint32_t)(PPM - sum);
    *m = tmp;
    return 0;
}

void fleet_mix_format(char *out, size_t cap, const struct fleet_mix *m)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < FLEET__COUNT && o < cap; i++) {
        int n = snprintf(out + o, cap - o, "%s%s=%g", i ? "," : "", class_names[i],
                         (double)m->ppm[i] / 10000.0);
        if (n < 0)
            return;
        o += (size_t)n;
    }
}

/* forced_class returns the class a first label names ("missing", "wrong-3"), or -1. */
static int forced_class(const char *name, size_t len)
{
    for (int i = 0; i < FLEET__COUNT; i++) {
        size_t n = strlen(class_names[i]);
        if (len >= n && strncasecmp(name, class_names[i], n) == 0 &&
            (len == n || name[n] == '.' || name[n] == '-' || (name[n] >= '0' && name[n] <= '9')))
            return i;
    }
    return -1;
}

enum fleet_class fleet_host_class(const struct fleet_mix *m, const char *name, size_t len)
{
    int forced = forced_class(name, len);
    if (forced >= 0)
        return (enum fleet_class)forced;
    /* The top bits are the best mixed; scale them to [0, PPM). */
    uint32_t u = (uint32_t)((fleet_name_hash(name, len) >> 32) * PPM >> 32);
    uint32_t edge = 0;
    for (int i = 0; i < FLEET__COUNT; i++) {
        edge += m->ppm[i];
        if (u < edge)
            return (enum fleet_class)i;
    }
    return FLEET_MISSING;
}

static unsigned domain_len(const struct fleet_gen *g)
{
    return g->per_domain ? g->per_domain : 1 + (unsigned)(mix64(g->domain) % 8);
}

void fleet_gen_init(struct fleet_gen *g, unsigned per_domain)
{
    memset(g, 0, sizeof(*g));
    g->per_domain = per_domain;
    g->dom_len = domain_len(g);
}

size_t fleet_gen_next(struct fleet_gen *g, char *out, size_t cap)
{
    int n;
    if (g->in_dom == g->dom_len) {
        g->domain++;
        g->in_dom = 0;
        g->dom_len = domain_len(g);
    }
    if (g->per_domain)
        n = snprintf(out, cap, "h%u.c%llu.test", g->in_dom, (unsigned long long)g->domain);
    else
        n = snprintf(out, cap, "%s.c%llu.test", words[g->in_dom], (unsigned long long)g->domain);
    g->in_dom++;
    g->emitted++;
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
