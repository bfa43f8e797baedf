/*
 * checks.h - delegation and liveness checks on the event loop.
 *
 * A struct dns_checker lives for one run. It owns a client of the
 * recursive resolver (resq.h: UDP, identical questions coalesced, c-ares
 * for TCP), one UDP client per authoritative address (udpq.h, recursion
 * off, created on demand, cached for the run), a cache of zone cuts (apex,
 * NS addresses) and one of nameserver names' addresses, both bounded by
 * TTL, because many hosts share a zone and many zones share a provider.
 *
 * Delegation check (issue: "DNS engine"): _acme-challenge.<host> is asked for
 * CNAME at every authoritative address of its zone, directly, and the
 * answers are classified confirmed / propagating / missing / wrong_target /
 * error (enum deleg_result, store/record.h). Liveness check: <host> is
 * resolved (CNAME chain, A, AAAA) and is live when the chain enters a CDN
 * suffix or an address falls in a CDN CIDR.
 */
#ifndef CF_ENGINE_DNS_CHECKS_H
#define CF_ENGINE_DNS_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hostname.h"

#define DNS_CHECK_MAX_SERVERS 16
#define DNS_CHECK_MAX_CHAIN 8

/*
 * Checks under way at once, whatever max_checks asks for: the others wait
 * as a few dozen bytes each (a check under way holds about 10 KB of names
 * and per-server reports), and a few thousand keep the checker at its
 * fastest (the checks scenario: the same speed at 1,024, 4,096 and 20,000).
 */
#define DNS_CHECKS_ACTIVE_MAX 1024

struct dns_checker_opts {
    const char *resolver;           /* ADDR[:PORT]; NULL = system */
    const char *const *cdn_targets; /* hostname suffixes and CIDRs */
    size_t n_cdn_targets;
    int auth_port;     /* port of authoritative servers; 0 = 53 */
    int timeout_ms;    /* per try; 0 = 1500 */
    int tries;         /* 0 = 3 */
    size_t max_checks; /* checks under way at once; 0 = 2000; at most DNS_CHECKS_ACTIVE_MAX */
    int cache_ttl_max; /* zone cache bound in seconds; 0 = 3600 */
    size_t resolver_inflight; /* questions outstanding at the resolver; 0 = 500 */
    int resolver_cares;       /* every resolver question through c-ares (resq.h: RESQ_CARES) */
};

/* One authoritative address's answer to a delegation check. */
struct deleg_server {
    char addr[48];
    uint8_t result; /* enum deleg_result: confirmed, missing, wrong_target or error */
    char target[HOSTNAME_MAX + 1]; /* the CNAME target seen (end of the chain) */
    char error[96];
};

struct deleg_report {
    uint8_t result; /* enum deleg_result */
    char host[HOSTNAME_MAX + 1];
    char zone[HOSTNAME_MAX + 1];        /* the zone holding _acme-challenge.<host> */
    char seen_target[HOSTNAME_MAX + 1]; /* a wrong target seen, for reports */
    char error[160];
    size_t nservers;
    struct deleg_server servers[DNS_CHECK_MAX_SERVERS];
};

struct live_report {
    uint8_t result; /* enum live_result */
    char host[HOSTNAME_MAX + 1];
    char detail[300]; /* what matched, or what the name resolves to */
};

/* Propagation of one published TXT value to the validation zone's servers. */
struct txt_report {
    int ready; /* every authoritative address serves the value */
    char name[HOSTNAME_MAX + 1];
    char zone[HOSTNAME_MAX + 1];
    size_t nservers, nready;
    struct {
        char addr[48];
        int has;        /* the value is in this server's answer */
        char error[96]; /* a failed exchange ("" otherwise) */
    } servers[DNS_CHECK_MAX_SERVERS];
    char error[160];
};

typedef void (*dns_deleg_cb)(void *arg, const struct deleg_report *r);
typedef void (*dns_txt_cb)(void *arg, const struct txt_report *r);
typedef void (*dns_live_cb)(void *arg, const struct live_report *r);

struct dns_checker;

/* dns_checker_new creates a checker on loop. Returns 0, CF_ECONFIG or another code. */
int dns_checker_new(struct dns_checker **out, uv_loop_t *loop, const struct dns_checker_opts *o);

/*
 * dns_check_delegation checks that _acme-challenge.<base of host> points at
 * expected_target on every authoritative address. cb runs once, from the
 * loop; the report is valid during the call only. host and target are
 * normalized names.
 */
void dns_check_delegation(struct dns_checker *dc, const char *host, const char *expected_target,
                          dns_deleg_cb cb, void *arg);

/* dns_check_liveness checks whether host (its apex for a wildcard) is served by the CDN. */
void dns_check_liveness(struct dns_checker *dc, const char *host, dns_live_cb cb, void *arg);

/*
 * dns_check_txt asks every authoritative address of zone (the validation
 * zone, normalized) for TXT at name, with recursion off, and reports whether
 * all of them serve value: a published record counts as ready only then.
 */
void dns_check_txt(struct dns_checker *dc, const char *zone, const char *name, const char *value,
                   dns_txt_cb cb, void *arg);

/* dns_checker_inflight returns checks started or queued and not yet reported. */
size_t dns_checker_inflight(const struct dns_checker *dc);

struct dns_checker_stats {
    uint64_t queries;        /* asked (questions joined to an identical one included) */
    uint64_t auth_channels;  /* authoritative addresses seen */
    uint64_t zones;          /* zone cuts resolved */
    uint64_t ns_cached;      /* nameserver names whose addresses came from the cache */
    uint64_t coalesced;      /* resolver questions that joined an identical one in flight */
    uint64_t resolver_udp;   /* resolver questions sent over our UDP client */
    uint64_t resolver_cares; /* resolver questions sent through c-ares (TC, failover) */
};
void dns_checker_stats(const struct dns_checker *dc, struct dns_checker_stats *out);

/*
 * dns_checker_free cancels what is pending (callbacks run with result
 * error) and frees the checker once its handles have closed. Accepts NULL.
 */
void dns_checker_free(struct dns_checker *dc);

#endif
