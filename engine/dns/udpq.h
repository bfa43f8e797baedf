/*
 * udpq.h - the fast path for questions to one authoritative address.
 *
 * A fleet-wide delegation check asks every authoritative address of every
 * customer zone one CNAME question per host, recursion off. c-ares 1.18
 * walks all of a channel's outstanding queries on every socket event, which
 * caps a channel at a few dozen queries in flight (measured: 2,800 checks/s
 * with 1,000 in flight). This is a plain UDP client on libuv for exactly
 * that job: one connected socket per address, a slot table, one timer,
 * bounded retransmission. Answers are handed over raw after the ID, the
 * source (the socket is connected) and the question are matched; the
 * caller classifies them with dnswire. The recursive resolver stays on
 * c-ares (dnschan.h), which knows resolv.conf, search rules and TCP.
 */
#ifndef CF_ENGINE_DNS_UDPQ_H
#define CF_ENGINE_DNS_UDPQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "dnschan.h"

struct udpq;

/*
 * udpq_new opens a client for addr (a numeric IPv4 or IPv6 address) and
 * port on loop: at most max_inflight questions outstanding (the rest wait
 * in line), each tried `tries` times timeout_ms apart. Returns 0 or a
 * negative code.
 */
int udpq_new(struct udpq **out, uv_loop_t *loop, const char *addr, int port, int timeout_ms,
             int tries, size_t max_inflight);

/*
 * udpq_query asks name (text) / qtype, class IN, with RD clear and an EDNS0
 * OPT advertising 1232 octets. cb runs once from the loop with status 0 and
 * the answer, CF_ETIMEOUT, CF_EDNS (a truncated answer: these questions
 * never need TCP, so a TC answer is an error), CF_ETOOBIG (an answer over
 * the 1232 octets offered), or CF_ECANCELED on free.
 * Returns 0 or CF_EPARSE for a bad name (cb not called).
 */
int udpq_query(struct udpq *q, const char *name, uint16_t qtype, dns_answer_cb cb, void *arg);

/* udpq_inflight returns the questions whose callback has not run. */
size_t udpq_inflight(const struct udpq *q);

/* udpq_free cancels what is pending and frees q after its handles close. Accepts NULL. */
void udpq_free(struct udpq *q);

#endif
