/*
 * authserver.h - the embedded authoritative DNS server of the validation
 * zone (DESIGN.md §3, provisioners).
 *
 * It answers for one zone only, from the TXT sets published in the store
 * (STORE_DB_DNS), over UDP and TCP on a libuv loop: SOA and NS at the apex
 * (glue A/AAAA for nameservers inside the zone), TXT at any name, several
 * values per name, AA set; NXDOMAIN for names with nothing at or below them,
 * NODATA (NOERROR, SOA in the authority section) for names that exist
 * without the type asked for and for empty non-terminals; REFUSED for every
 * other zone (never an open resolver), NOTIMP for opcodes other than QUERY,
 * and nothing at all for malformed packets and responses. EDNS0: the
 * client's UDP size is honoured up to AUTHSRV_UDP_MAX, larger answers are
 * truncated to the question with TC set, and TCP (RFC 7766, two-octet
 * length framing, several queries a connection) carries the full answer.
 *
 * Names are matched ignoring case; answers carry the question's case (0x20
 * clients). Wildcards are not synthesized: the names published are the
 * CNAME targets, never wildcards (a wildcard host and its apex share one
 * target, which then holds two values).
 *
 * The store is read in one short read transaction per loop iteration: the
 * queries of one batch of socket reads share a snapshot, and the next batch
 * sees what was committed meanwhile (by this process or another: `run` and
 * `serve-dns` share the store). The SOA serial is the low 32 bits of that
 * snapshot's LMDB transaction id, which grows with every commit and
 * survives restarts, so it increases whenever records change.
 */
#ifndef CF_ENGINE_DNS_AUTHSERVER_H
#define CF_ENGINE_DNS_AUTHSERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "store.h"

/* RFC 9715 / DNS flag day 2020: the largest UDP answer sent. */
#define AUTHSRV_UDP_MAX 1232
#define AUTHSRV_MAX_LISTEN 8
/* Nameserver entries (one per address) of the zone. */
#define AUTHSRV_MAX_NS 16
/* Answers by rcode: 0-15 are header rcodes, AUTHSRV_RCODE_BADVERS is 16. */
#define AUTHSRV_RCODE_BADVERS 16
#define AUTHSRV_NRCODES 17

/*
 * One nameserver of the zone: its name (text) and, when the name is inside
 * the zone, one of its addresses (numeric IPv4 or IPv6 text) served as glue.
 * A name with several addresses is given once per address.
 */
struct authsrv_ns {
    const char *name;
    const char *addr; /* NULL or "" = no address */
};

struct authsrv_opts {
    const char *zone;          /* normalized text: lower case, no trailing dot */
    const char *const *listen; /* "ADDR:PORT" or "[V6ADDR]:PORT" each; UDP and TCP */
    size_t n_listen;           /* 0: no sockets (authsrv_answer only) */
    const struct authsrv_ns *ns;
    size_t n_ns;           /* at least one */
    uint32_t ttl;          /* TXT records; 0 = 60 */
    uint32_t zone_ttl;     /* SOA, NS and glue; 0 = 300 */
    uint32_t neg_ttl;      /* SOA minimum, the TTL of negative answers (RFC 2308); 0 = 30 */
    size_t max_tcp;        /* concurrent TCP connections; 0 = 256 */
    uint64_t tcp_idle_ms;  /* a TCP connection idle this long is closed; 0 = 10000 */
    size_t max_udp_queued; /* UDP answers waiting for the socket; 0 = 4096 */
};

struct authsrv_stats {
    uint64_t queries;                   /* messages received (answered or not) */
    uint64_t udp, tcp;                  /* of which by transport */
    uint64_t rcode[AUTHSRV_NRCODES];    /* answers sent, by rcode */
    uint64_t truncated;                 /* answers sent with TC set */
    uint64_t dropped;                   /* malformed messages and responses: no answer */
    uint64_t send_errors;               /* answers the socket refused or that could not queue */
    uint64_t tcp_accepted, tcp_refused; /* connections (refused: over max_tcp) */
    uint64_t store_errors;              /* answered SERVFAIL because the store failed */
};

struct authsrv;
struct config;

/* Room for the strings of options built from the configuration. */
struct authsrv_conf_space {
    char text[AUTHSRV_MAX_NS][2][320];
    struct authsrv_ns ns[AUTHSRV_MAX_NS];
    const char *listen[1];
};

/*
 * authsrv_opts_from_config fills o for cfg's validation zone: listening on
 * cfg->dns_listen, nameservers from cfg->validation_ns ("NAME=ADDR" or
 * "NAME"), or without any ns1.<zone> with dns_listen's address as glue (no
 * glue when that is a wildcard address: then *no_glue is set, when not
 * NULL, so the caller can warn). o points into sp and cfg, which must stay
 * as long as o is used. `serve-dns` and `run` build their server this way.
 */
void authsrv_opts_from_config(struct authsrv_opts *o, struct authsrv_conf_space *sp,
                              const struct config *cfg, int *no_glue);

/*
 * authsrv_new creates the server for o->zone and starts listening on every
 * o->listen address (UDP and TCP) on loop. loop may be NULL when n_listen is
 * 0: the server then only builds answers (authsrv_answer), each in a read
 * transaction of its own (tests, fuzzing). st must outlive the server.
 * Nothing of o is kept. A nameserver inside the zone without an address
 * is served without glue (resolvers cannot reach it through this zone).
 * Returns 0, CF_ECONFIG for invalid options (zone, names, addresses, listen
 * addresses), or a libuv (negated errno) code when a socket cannot be bound,
 * logged with its address. After a failure some handles may still be
 * closing: run the loop before closing it.
 */
int authsrv_new(struct authsrv **out, uv_loop_t *loop, struct store *st,
                const struct authsrv_opts *o);

/*
 * authsrv_free stops serving: every handle is closed, and the memory freed
 * after their close callbacks (on the loop's next run), or at once without a
 * loop. Accepts NULL.
 */
void authsrv_free(struct authsrv *srv);

/* authsrv_get_stats copies the counters. */
void authsrv_get_stats(const struct authsrv *srv, struct authsrv_stats *out);

/*
 * authsrv_answer builds the answer to the query q (qlen octets) into out
 * (cap octets, at least AUTHSRV_UDP_MAX; 65535 suffices for anything), its
 * length in *outlen. max_udp is the largest UDP answer this transport may
 * send (AUTHSRV_UDP_MAX), or 0 for TCP, where only cap limits it. Pure as
 * far as the network goes: no socket is touched, only the store is read and
 * the counters updated. Returns 0 with an answer, or CF_EPARSE when the
 * message must be dropped (too short, a response, malformed).
 */
int authsrv_answer(struct authsrv *srv, uint8_t *out, size_t cap, size_t *outlen, const uint8_t *q,
                   size_t qlen, size_t max_udp);

#endif
