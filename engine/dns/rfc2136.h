/*
 * rfc2136.h - publishing DNS-01 TXT records to a primary with RFC 2136
 * UPDATE, signed with TSIG (RFC 8945, HMAC-SHA256).
 *
 * DESIGN.md §4: shards publish their TXT records to one shared DNS primary.
 * A struct rfc2136 is the provisioner for one validation zone on one loop.
 * Thousands of pipelines call rfc2136_add_txt and rfc2136_del_txt; their
 * changes are queued and flushed once per loop iteration into as few UPDATE
 * messages as fit (max_changes changes, 65535 octets): one zone change at the
 * primary (one new serial, one NOTIFY and IXFR to the secondaries) for a
 * whole batch instead of one per hostname. A message of up to 1232 octets
 * (the DNS flag day 2020 size: no fragmentation) goes over UDP, a larger one
 * over TCP (RFC 1035 §4.2.2 framing), and a truncated UDP answer is retried
 * over TCP. Every message is TSIG-signed and its answer must verify against
 * the request's MAC: an unsigned or badly signed NOERROR is a failure. Over
 * UDP such an answer is held until the try's deadline (it may be forged, or
 * a late answer to an earlier message with the same ID), so that the signed
 * answer can still win; error rcodes are taken at once (RFC 8945 §5.3.2:
 * BADSIG and BADKEY answers cannot be signed).
 *
 * Every callback of the changes carried by one message gets that message's
 * outcome. Changes of the same name and value never travel in two messages
 * at once (the second waits for the first's answer), so a delete queued
 * while its add is in flight cannot overtake it.
 */
#ifndef CF_ENGINE_DNS_RFC2136_H
#define CF_ENGINE_DNS_RFC2136_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* The largest UPDATE sent over UDP; larger ones go over TCP. */
#define RFC2136_UDP_MAX 1232
/* The longest TXT value accepted, in octets. */
#define RFC2136_VALUE_MAX 4096

struct rfc2136;

/* Options of rfc2136_new; a zero field takes its default. */
struct rfc2136_opts {
    const char *server;        /* primary: "ADDR[:PORT]", "[V6]:PORT"; port 53 by default */
    const char *zone;          /* the validation zone, text */
    const char *tsig_key_file; /* one HMAC-SHA256 key (see dnswire_tsig_key_parse) */
    int timeout_ms;            /* per try; default 3000 */
    int tries;                 /* sends of one message before giving up; default 3 */
    uint32_t ttl;              /* TTL of the TXT records added; default 60 */
    size_t max_changes;        /* changes per message; default 200 */
    size_t max_inflight;       /* messages awaiting an answer at once; default 8 */
};

/* Counters since rfc2136_new, for logs, tests and the bench harness. */
struct rfc2136_stats {
    uint64_t messages;        /* UPDATE messages built (each counted once) */
    uint64_t udp_sends;       /* datagrams sent, retransmissions included */
    uint64_t tcp_exchanges;   /* TCP connections opened */
    uint64_t retransmits;     /* sends after the first of a message */
    uint64_t changes_ok;      /* changes whose message got a verified NOERROR */
    uint64_t changes_failed;  /* changes that failed or were canceled */
    uint64_t ignored_answers; /* datagrams matching no message, or malformed */
};

/*
 * rfc2136_cb receives the outcome of one change: status 0 when the primary
 * answered NOERROR with a valid signature, or a negative CF code:
 * CF_EDNS_REFUSED, CF_EDNS_SERVFAIL, CF_EDNS_FORMERR (FORMERR, NOTIMP),
 * CF_EDNS_UPDATE (NOTAUTH, also for TSIG errors; NOTZONE; any other rcode),
 * CF_EPROTO (a NOERROR answer that is unsigned or fails TSIG verification,
 * a malformed answer over TCP), CF_ETIMEOUT (no answer after every try),
 * CF_ECONNREFUSED (TCP refused at the last try), CF_EHOSTNAME (a name that
 * is invalid or outside the zone), CF_ETOOBIG (a value over
 * RFC2136_VALUE_MAX), CF_ECANCELED (rfc2136_free). detail is a sentence for
 * logs and reports naming the rcode or TSIG error, the server and the zone
 * (never the secret); it is never NULL and lives during the call only.
 */
typedef void (*rfc2136_cb)(void *arg, int status, const char *detail);

/*
 * rfc2136_new creates the provisioner on loop: reads the TSIG key file,
 * parses the server address and the zone, and opens a UDP socket connected
 * to the server. Returns 0 and *out, or CF_ECONFIG, CF_ETOOBIG or a negated
 * errno with *reason set to a static sentence (reason may be NULL).
 */
int rfc2136_new(struct rfc2136 **out, uv_loop_t *loop, const struct rfc2136_opts *o,
                const char **reason);

/*
 * rfc2136_add_txt queues the addition of TXT "value" at the text name (in
 * the zone) with RFC 2136 §2.5.1 semantics: adding a record that exists is
 * not an error. cb (may be NULL) runs exactly once, from the loop, never
 * from inside this call. name and value are copied.
 */
void rfc2136_add_txt(struct rfc2136 *u, const char *name, const char *value, rfc2136_cb cb,
                     void *arg);

/*
 * rfc2136_del_txt queues the deletion of exactly the record TXT "value" at
 * name (RFC 2136 §2.5.4, class NONE): other values at the same name (the
 * apex and the wildcard of one hostname share it) stay. Deleting a record
 * that does not exist is not an error. As rfc2136_add_txt otherwise.
 */
void rfc2136_del_txt(struct rfc2136 *u, const char *name, const char *value, rfc2136_cb cb,
                     void *arg);

/* rfc2136_stats copies the counters into *out. */
void rfc2136_stats(const struct rfc2136 *u, struct rfc2136_stats *out);

/* rfc2136_pending returns the number of changes whose callback has not run yet. */
size_t rfc2136_pending(const struct rfc2136 *u);

/*
 * rfc2136_free cancels everything: the callbacks of queued and in-flight
 * changes run inside this call with CF_ECANCELED (a change that was already
 * sent may still be applied by the primary). The memory is freed after the
 * loop has run the close callbacks of its handles; u must not be used once
 * this returns. Accepts NULL.
 */
void rfc2136_free(struct rfc2136 *u);

#endif
