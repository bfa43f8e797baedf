/*
 * dnschan.h - c-ares channels driven by the libuv loop.
 *
 * A struct dns_chan is one c-ares channel bound to one server (a recursive
 * resolver, or one authoritative address queried with recursion off). Its
 * sockets are watched with uv_poll and its timeouts with one uv_timer, so
 * thousands of queries share the loop with everything else (DESIGN.md §3).
 * Answers are handed over raw; callers parse them with dnswire.
 */
#ifndef CF_ENGINE_DNS_DNSCHAN_H
#define CF_ENGINE_DNS_DNSCHAN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct dns_chan;

/* Channel options. */
struct dns_chan_opts {
    int norecurse;       /* send queries with RD clear (authoritative servers) */
    int timeout_ms;      /* per try; 0 = 2000 */
    int tries;           /* 0 = 2 */
    int edns;            /* advertise EDNS0 with a 1232-octet payload */
    size_t max_inflight; /* queries outstanding at the server at once; 0 = 1000 */
};

/*
 * dns_answer_cb receives the result of one query: status 0 with the raw
 * answer (valid during the call only), or a negative CF code (CF_ETIMEOUT,
 * CF_EDNS for a failed exchange, CF_ECANCELED when the channel closes).
 * Whatever the answer's RCODE, status is 0 when a response arrived: the
 * caller classifies NXDOMAIN, SERVFAIL and REFUSED itself, and must check
 * that the answer's question is its own (c-ares matches only the ID).
 */
typedef void (*dns_answer_cb)(void *arg, int status, const uint8_t *answer, size_t len);

/*
 * dns_chan_new creates a channel on loop for server ("ADDR", "ADDR:PORT",
 * "[V6]:PORT"; NULL = the system's resolvers). Returns 0 or a negative code.
 */
int dns_chan_new(struct dns_chan **out, uv_loop_t *loop, const char *server,
                 const struct dns_chan_opts *opts);

/*
 * dns_chan_query sends a query for name/qtype (class IN). cb runs exactly
 * once: from the loop, or from inside this call when c-ares fails at once
 * (no usable server). Returns 0, or a negative code (CF_EPARSE for a bad
 * name) without calling cb.
 */
int dns_chan_query(struct dns_chan *ch, const char *name, uint16_t qtype, dns_answer_cb cb,
                   void *arg);

/*
 * dns_chan_servers writes the channel's servers, in c-ares's order, as
 * numeric addresses (addrs[i], 48 octets each) and UDP ports (ports[i]; 53
 * when c-ares says 0), at most cap of them. Returns how many there are
 * (possibly more than cap), or a negative code.
 */
int dns_chan_servers(struct dns_chan *ch, char (*addrs)[48], int *ports, size_t cap);

/*
 * dns_chan_inflight returns the number of queries waiting for their callback
 * (sent, or queued behind max_inflight).
 */
size_t dns_chan_inflight(const struct dns_chan *ch);

/*
 * dns_chan_free cancels pending queries (their callbacks run with
 * CF_ECANCELED) and frees the channel once its handles are closed. Accepts
 * NULL.
 */
void dns_chan_free(struct dns_chan *ch);

#endif
