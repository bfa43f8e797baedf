/*
 * udpq.h - the fast path for questions to one DNS server over UDP.
 *
 * A fleet-wide delegation check asks every authoritative address of every
 * customer zone one CNAME question per host, recursion off, and walks zone
 * cuts through the recursive resolver. c-ares 1.18 walks all of a channel's
 * outstanding queries on every socket event, which caps a channel at a few
 * dozen queries in flight (measured: 2,800 checks/s with 1,000 in flight).
 * This is a plain UDP client on libuv for exactly that job: one connected
 * socket per address, a slot table with a free list and an ID index (no
 * scan per question or answer), one timer, bounded retransmission, and the
 * questions of one loop iteration sent together (UDP GSO trains of equal
 * sizes where the kernel has them, sendmmsg for the rest). Answers are
 * handed over raw after the ID, the source (the socket is connected) and the
 * question are matched; the caller classifies them with dnswire. It speaks
 * UDP only: a truncated answer is reported as such (CF_EDNS), and whoever
 * needs TCP then asks c-ares (dnschan.h), which knows TCP and resolv.conf.
 */
#ifndef CF_ENGINE_DNS_UDPQ_H
#define CF_ENGINE_DNS_UDPQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dnschan.h"

struct udpq;

struct udpq_opts {
    int port;            /* 0 = 53 */
    int timeout_ms;      /* longest wait for one try; 0 = 1500 */
    int tries;           /* 0 = 3 */
    size_t max_inflight; /* questions outstanding at once, the rest wait in line; 0 = 256 */
    int rd;              /* set RD: questions for a recursive resolver */
};

struct udpq_stats {
    uint64_t sent;      /* datagrams, retransmissions included */
    uint64_t answers;   /* answers handed over (status 0) */
    uint64_t timeouts;  /* questions that ran out of tries */
    uint64_t truncated; /* TC answers */
    uint64_t ignored;   /* datagrams matching no outstanding question */
    uint64_t batches;   /* sendmmsg and sendmsg calls */
    uint64_t trains;    /* of which UDP GSO trains (several questions in one send) */
};

/*
 * udpq_new opens a client for addr (a numeric IPv4 or IPv6 address) on
 * loop. Returns 0, CF_ECONFIG for a bad address, or a negative libuv code.
 */
int udpq_new(struct udpq **out, uv_loop_t *loop, const char *addr, const struct udpq_opts *o);

/*
 * udpq_query asks name (text) / qtype, class IN, with RD as configured and
 * an EDNS0 OPT advertising 1232 octets. cb runs once from the loop (never
 * from inside this call) with status 0 and the answer (valid during the
 * call only), CF_ETIMEOUT, CF_EDNS for a truncated answer (TC), CF_ETOOBIG
 * for an answer over the 1232 octets offered, or CF_ECANCELED on free.
 * Returns 0, CF_EPARSE for a bad name or CF_ECANCELED after udpq_free (cb
 * not called).
 */
int udpq_query(struct udpq *q, const char *name, uint16_t qtype, dns_answer_cb cb, void *arg);

/*
 * udpq_query_wire is udpq_query for a name already in wire form (wire_len
 * octets, as dnswire_name_from_text makes it).
 */
int udpq_query_wire(struct udpq *q, const uint8_t *wire, size_t wire_len, uint16_t qtype,
                    dns_answer_cb cb, void *arg);

/* udpq_inflight returns the questions whose callback has not run. */
size_t udpq_inflight(const struct udpq *q);

/* udpq_get_stats copies the client's counters. */
void udpq_get_stats(const struct udpq *q, struct udpq_stats *out);

/* udpq_free cancels what is pending and frees q after its handles close. Accepts NULL. */
void udpq_free(struct udpq *q);

#endif
