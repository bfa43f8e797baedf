/*
 * resq.h - questions to the recursive resolver.
 *
 * The checks ask the resolver for zone cuts (CNAME questions walking up a
 * name), NS sets, nameserver addresses, CNAME chains and liveness. At fleet
 * scale that is tens of thousands of questions a second, which c-ares 1.18
 * serves badly (it walks every outstanding query on each socket event;
 * perf: 54% of a fleet check's CPU), so they go over UDP with our own
 * client (udpq.h, RD set). c-ares stays for what it does and udpq does not:
 * a truncated answer (TC) is asked again through c-ares, which retries over
 * TCP (RFC 7766); and without a configured resolver, c-ares reads
 * resolv.conf, the first server gets the UDP questions and a question that
 * times out there is asked again through c-ares, which fails over to the
 * others.
 *
 * Identical questions in flight (name ignoring case, type) are sent once and
 * the answer handed to every asker: zone walks, NS-name lookups and CNAME
 * chains of hosts that share a zone or a provider meet here.
 */
#ifndef CF_ENGINE_DNS_RESQ_H
#define CF_ENGINE_DNS_RESQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dnschan.h"

struct resq;

enum resq_client {
    RESQ_UDP = 0, /* our UDP client, c-ares for TC and failover (the default) */
    RESQ_CARES,   /* every question through c-ares, max_inflight at once (the old path) */
};

struct resq_opts {
    int timeout_ms;      /* per try; 0 = 1500 */
    int tries;           /* 0 = 3 */
    size_t max_inflight; /* questions outstanding at the resolver; 0 = 500 */
    enum resq_client client;
};

struct resq_stats {
    uint64_t asked;     /* resq_query calls */
    uint64_t coalesced; /* of which joined an identical question in flight */
    uint64_t udp;       /* questions sent with udpq */
    uint64_t cares;     /* questions sent (or sent again) through c-ares */
    uint64_t tc_retries;
};

/*
 * resq_new creates a client on loop for server ("ADDR", "ADDR:PORT",
 * "[V6]:PORT"; NULL = the system's resolvers). Returns 0, CF_ECONFIG or
 * another negative code.
 */
int resq_new(struct resq **out, uv_loop_t *loop, const char *server, const struct resq_opts *o);

/*
 * resq_query asks name (text) / qtype, class IN, recursion desired. cb runs
 * once, from the loop, with what dns_answer_cb describes (dnschan.h): status
 * 0 and the raw answer, valid during the call only, whose question the
 * caller must still check; or a negative code. The same answer may go to
 * several askers in turn. Returns 0 or a negative code (cb not called).
 */
int resq_query(struct resq *r, const char *name, uint16_t qtype, dns_answer_cb cb, void *arg);

/* resq_inflight returns the distinct questions whose answers are awaited. */
size_t resq_inflight(const struct resq *r);

void resq_get_stats(const struct resq *r, struct resq_stats *out);

/*
 * resq_free cancels what is pending (callbacks run with CF_ECANCELED) and
 * frees r once its handles have closed. Accepts NULL.
 */
void resq_free(struct resq *r);

#endif
