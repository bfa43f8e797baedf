/*
 * fleet.h - the synthetic fleet of the load harness: customer hostnames and
 * the DNS behaviour of each, decided from the name alone.
 *
 * certfleet-mockdns answers from the name itself (no table) and
 * certfleet-bench generates the names and predicts what certfleet will find,
 * so both link this one module: the two can never disagree.
 *
 * Names: customer domain j is "c<j>.test" (".test" is reserved, RFC 6761 §6.2;
 * libpsl's default rule makes every "c<j>.test" a registered domain of its
 * own), holding 1 to 8 hosts "<word>.c<j>.test" with word www, api, shop,
 * img, m, blog, app, static (4.5 a domain on average, as bench_import), or
 * a fixed number of hosts "h<k>.c<j>.test" per domain.
 *
 * Classes: a host's class comes from a 64-bit hash of its lower-case name,
 * read as a point u in [0, 1) and placed in bands laid out in this order:
 * delegated, notlive, propagating, wrong, missing (the rest). Growing the
 * first share moves the band edges up, so a host that had a CNAME keeps one
 * (migration scenario). A first label that names a class ("missing",
 * "wrong-7", "propagating3") forces that class, for hand-written tests.
 */
#ifndef CF_BENCH_FLEET_H
#define CF_BENCH_FLEET_H

#include <stddef.h>
#include <stdint.h>

enum fleet_class {
    FLEET_DELEGATED = 0, /* CNAME on every NS, live (H CNAME edge.<cdn>) */
    FLEET_NOTLIVE,       /* CNAME on every NS, H has an address outside the CDN */
    FLEET_PROPAGATING,   /* CNAME on the first NS only, live */
    FLEET_WRONG,         /* CNAME to a name outside the validation zone, live */
    FLEET_MISSING,       /* no _acme-challenge name at all, live */
    FLEET__COUNT
};

/* The shares of a mix in parts per million, one per class; they add up to 1,000,000. */
struct fleet_mix {
    uint32_t ppm[FLEET__COUNT];
};

/* fleet_class_name returns "delegated", "notlive", "propagating", "wrong" or "missing". */
const char *fleet_class_name(enum fleet_class c);

/*
 * fleet_mix_parse reads "delegated=90,missing=3,wrong=2,propagating=2,notlive=3"
 * (percentages, fractions allowed; classes left out are 0; whatever the
 * others leave of 100 goes to missing) into *m. Returns 0, or -1 with a
 * message in err (errlen bytes) for an unknown class, a bad number or a sum
 * over 100.
 */
int fleet_mix_parse(struct fleet_mix *m, const char *spec, char *err, size_t errlen);

/* fleet_mix_format writes m as a spec fleet_mix_parse reads back (percentages). */
void fleet_mix_format(char *out, size_t cap, const struct fleet_mix *m);

/*
 * fleet_name_hash returns the 64-bit hash of the len octets of a hostname,
 * ASCII case ignored (FNV-1a finished with the splitmix64 mixer).
 */
uint64_t fleet_name_hash(const char *name, size_t len);

/*
 * fleet_host_class returns the class of the hostname (len octets, no
 * trailing dot, any case) under mix m.
 */
enum fleet_class fleet_host_class(const struct fleet_mix *m, const char *name, size_t len);

/*
 * struct fleet_gen walks the generated fleet in order: host 0, 1, ... of
 * domain 0, then domain 1, and so on. Caller-owned; fleet_gen_init starts it.
 */
struct fleet_gen {
    uint64_t domain;  /* the current domain's index */
    unsigned in_dom;  /* hosts of it already returned */
    unsigned dom_len; /* hosts it has */
    unsigned per_domain;
    uint64_t emitted;
};

/*
 * fleet_gen_init starts the walk. per_domain 0 gives each domain 1 to 8
 * hosts named by words (www, api, ...); another value gives every domain
 * that many hosts named h0, h1, ... (bigger zones, fewer zone-cut walks).
 */
void fleet_gen_init(struct fleet_gen *g, unsigned per_domain);

/*
 * fleet_gen_next writes the next hostname into out (cap octets, 64 always
 * suffice) and returns its length.
 */
size_t fleet_gen_next(struct fleet_gen *g, char *out, size_t cap);

#endif
