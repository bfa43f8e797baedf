/*
 * authserver.c - the embedded authoritative server of the validation zone.
 *
 * Two halves: authsrv_answer turns one query into one answer (parsing,
 * the zone's logic, the store reads), without sockets, so tests and the
 * fuzzer drive it directly; the rest moves bytes between it and libuv's UDP
 * and TCP handles. The UDP path allocates nothing per query: libuv reads a
 * batch of datagrams with one recvmmsg into one buffer, the answers are
 * built into a fixed array, and the batch's answers leave with one sendmmsg
 * when libuv says the batch is over; only when the socket's buffer is full
 * is an answer copied into a queued uv_udp_send request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authserver.h"
#include "buf.h"
#include "config.h"
#include "dnswire.h"
#include "err.h"
#include "log.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define DEFAULT_TTL 60
#define DEFAULT_ZONE_TTL 300
#define DEFAULT_NEG_TTL 30
#define DEFAULT_MAX_TCP 256
#define DEFAULT_TCP_IDLE_MS 10000
#define DEFAULT_UDP_QUEUED 4096
/* SOA timers. Nothing transfers this zone; the values only have to be sane. */
#define SOA_REFRESH 300
#define SOA_RETRY 60
#define SOA_EXPIRE 86400

/* RFC 6891 §6.1.2: an OPT record without options is 11 octets. */
#define OPT_LEN 11
/* RFC 8945 §4.2: a TSIG record's fixed part, besides its two names. */
#define TSIG_FIXED_LEN (10 + 16)
/*
 * libuv's recvmmsg reads one datagram per 64 KiB of the buffer it is given,
 * at most 20 a call. A batch of 16 keeps the read transaction short.
 */
#define UDP_DGRAM_MAX 65536
#define UDP_BATCH 16
/* RFC 7766 §8: a TCP message is a two-octet length and at most 65535 octets. */
#define TCP_MSG_MAX 65535
#define TCP_RBUF_MAX (2 + TCP_MSG_MAX + 4096)
/* Answers queued on one TCP connection before it is no longer read. */
#define TCP_MAX_PENDING 64
#define TCP_BACKLOG 128

/* Meta and obsolete query types (RFC 6895 §3.1, RFC 5936, RFC 1995, RFC 2845). */
enum {
    TYPE_TKEY = 249,
    TYPE_IXFR = 251,
    TYPE_AXFR = 252,
    TYPE_MAILB = 253,
    TYPE_MAILA = 254,
};

/* A nameserver of the zone: its name and, inside the zone, its glue. */
struct ns_host {
    uint8_t wire[DNSWIRE_NAME_MAX]; /* lower case */
    size_t wire_len;
    int in_zone;
    size_t n_a, n_aaaa;
    uint8_t a[AUTHSRV_MAX_NS][4];
    uint8_t aaaa[AUTHSRV_MAX_NS][16];
};

struct udp_listener {
    uv_udp_t udp;
    struct authsrv *srv;
};

/* One UDP answer of the current batch, sent at the batch's end. */
struct udp_out {
    struct sockaddr_storage to;
    socklen_t tolen;
    size_t len;
    uint8_t data[AUTHSRV_UDP_MAX];
};

struct tcp_listener {
    uv_tcp_t tcp;
    struct authsrv *srv;
};

/* One UDP answer waiting for room in the socket buffer. */
struct udp_send {
    uv_udp_send_t req;
    struct authsrv *srv;
    size_t len;
    uint8_t data[];
};

/* One TCP connection (RFC 7766): queries in, answers out, in order. */
struct tcp_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    struct authsrv *srv;
    struct tcp_conn *prev, *next;
    uint8_t *rbuf; /* received, not yet answered */
    size_t rlen, rcap;
    size_t pending; /* answers written but not yet sent */
    int handles;    /* open handles of the two; freed at 0 */
    int reading;    /* reads started (stopped while pending is high) */
    int eof;        /* the client closed its side: close once pending is 0 */
    int closing;
};

struct tcp_write {
    uv_write_t req;
    struct tcp_conn *c;
    size_t len;
    uint8_t data[];
};

/* The read snapshot: none yet, open for this loop iteration, or reset between. */
enum rd_state { RD_NONE, RD_ACTIVE, RD_RESET };

struct authsrv {
    uv_loop_t *loop;
    struct store *st;
    char zone[DNSWIRE_NAME_MAX + 1];
    size_t zone_text_len;
    uint8_t zone_wire[DNSWIRE_NAME_MAX];
    size_t zone_len;
    struct ns_host ns[AUTHSRV_MAX_NS];
    size_t n_ns;
    struct dnswire_soa soa; /* serial filled in per answer */
    uint32_t ttl, zone_ttl, neg_ttl;
    size_t max_tcp, max_udp_queued;
    uint64_t tcp_idle_ms;

    struct store_read *rd;
    enum rd_state rd_state;
    uv_check_t check; /* resets the snapshot after each batch of reads */

    struct udp_listener udp[AUTHSRV_MAX_LISTEN];
    size_t n_udp;
    struct tcp_listener tcp[AUTHSRV_MAX_LISTEN];
    size_t n_tcp;
    struct tcp_conn *conns;
    size_t n_conns;
    size_t udp_queued;
    size_t handles; /* open handles of every kind; memory is freed at 0 */
    int closing;

    struct authsrv_stats stats;
    uint8_t *rxbuf;      /* UDP_BATCH datagrams */
    struct udp_out *out; /* UDP_BATCH answers of out_l's current batch */
    size_t n_out;
    struct udp_listener *out_l;
    uint8_t txbuf[2 + TCP_MSG_MAX];
};

/* A parsed query: what the answer needs of it. */
struct query {
    struct dnswire_header h;
    uint8_t qname[DNSWIRE_NAME_MAX]; /* as sent (case kept) */
    size_t qname_len;
    uint16_t qtype, qclass;
    int formerr; /* well-formed octets, invalid message: FORMERR */
    int edns;    /* a valid OPT record was present */
    uint16_t udp_size;
    uint8_t version;
    int do_bit;
    int tsig;
    uint8_t tsig_name[DNSWIRE_NAME_MAX], tsig_alg[DNSWIRE_NAME_MAX];
    size_t tsig_name_len, tsig_alg_len;
    uint8_t tsig_time_fudge[8];
};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- Parsing ---- */

/*
 * parse_opt reads the OPT record at the additional section's index (RFC
 * 6891 §6.1): one at most, owned by the root, with well-formed options.
 */
static void parse_opt(struct query *q, const uint8_t *name, size_t name_len, uint16_t rclass,
                      uint32_t ttl, const uint8_t *rdata, size_t rdlen, int in_additional)
{
    size_t off = 0;
    (void)name;
    if (!in_additional || name_len != 1 || q->edns) {
        q->formerr = 1;
        q->edns = 0;
        return;
    }
    while (off < rdlen) {
        if (rdlen - off < 4 || rdlen - off - 4 < get16(rdata + off + 2)) {
            q->formerr = 1;
            return;
        }
        off += 4 + (size_t)get16(rdata + off + 2);
    }
    q->edns = 1;
    q->udp_size = rclass;
    q->version = (uint8_t)(ttl >> 16);
    q->do_bit = (ttl >> 15) & 1;
}

/*
 * parse_tsig keeps what an unsigned BADKEY error needs of a TSIG record
 * (RFC 8945 §4.2): its name, algorithm, time signed and fudge.
 */
static void parse_tsig(struct query *q, const uint8_t *pkt, size_t len, const uint8_t *name,
                       size_t name_len, size_t rdoff, size_t rdlen, int last)
{
    size_t off = rdoff;
    if (!last || dnswire_read_name(pkt, rdoff + rdlen, &off, q->tsig_alg, &q->tsig_alg_len) != 0 ||
        rdoff + rdlen - off < 16) {
        q->formerr = 1;
        return;
    }
    (void)len;
    memcpy(q->tsig_name, name, name_len);
    q->tsig_name_len = name_len;
    memcpy(q->tsig_time_fudge, pkt + off, 8);
    q->tsig = 1;
}

/*
 * parse_query reads pkt (len octets) into q without allocating. Returns 0,
 * or CF_EPARSE when the message is to be dropped: shorter than a header, a
 * response, or malformed anywhere (names, records running past the end,
 * octets after the last record). A message that parses but breaks a rule
 * (several questions, a misplaced OPT or TSIG) gets q->formerr instead.
 */
static int parse_query(struct query *q, const uint8_t *pkt, size_t len)
{
    uint8_t tmp[DNSWIRE_NAME_MAX];
    size_t off = DNSWIRE_HEADER_LEN, tlen;
    q->qname_len = 0;
    q->formerr = q->edns = q->tsig = 0;
    q->do_bit = 0;
    if (dnswire_header_parse(&q->h, pkt, len) != 0 || q->h.qr)
        return CF_EPARSE;
    for (size_t i = 0; i < q->h.qdcount; i++) {
        uint8_t *dst = i == 0 ? q->qname : tmp;
        size_t *dlen = i == 0 ? &q->qname_len : &tlen;
        size_t start = off;
        if (dnswire_read_name(pkt, len, &off, dst, dlen) != 0 || len - off < 4)
            return CF_EPARSE;
        /*
         * The first name of a message has nothing earlier to point at: a
         * compression pointer in the QNAME is bogus, and echoing its
         * expansion would make the answer larger than the query (an
         * amplifier). Such a query is dropped.
         */
        if (i == 0 && off - start != *dlen)
            return CF_EPARSE;
        if (i == 0) {
            q->qtype = get16(pkt + off);
            q->qclass = get16(pkt + off + 2);
        }
        off += 4;
    }
    /* RFC 1035 §4.1.2: a query asks one question (RFC 9619). */
    if (q->h.qdcount != 1)
        q->formerr = 1;
    size_t nrr = (size_t)q->h.ancount + q->h.nscount + q->h.arcount;
    size_t first_ar = (size_t)q->h.ancount + q->h.nscount;
    for (size_t i = 0; i < nrr; i++) {
        if (dnswire_read_name(pkt, len, &off, tmp, &tlen) != 0 || len - off < 10)
            return CF_EPARSE;
        uint16_t type = get16(pkt + off), rclass = get16(pkt + off + 2);
        uint32_t ttl = get32(pkt + off + 4);
        size_t rdlen = get16(pkt + off + 8);
        off += 10;
        if (len - off < rdlen)
            return CF_EPARSE;
        if (type == DNSWIRE_TYPE_OPT)
            parse_opt(q, tmp, tlen, rclass, ttl, pkt + off, rdlen, i >= first_ar);
        else if (type == DNSWIRE_TYPE_TSIG)
            parse_tsig(q, pkt, len, tmp, tlen, off, rdlen, i + 1 == nrr && i >= first_ar);
        off += rdlen;
    }
    return off == len ? 0 : CF_EPARSE;
}

/* ---- The snapshot ---- */

static void on_check(uv_check_t *h);

/*
 * snapshot_get makes srv->rd readable: the snapshot of this loop iteration,
 * taken at its first query. Returns 0 or the store's code.
 */
static int snapshot_get(struct authsrv *srv)
{
    int rc = 0;
    switch (srv->rd_state) {
    case RD_ACTIVE:
        return 0;
    case RD_RESET:
        rc = store_read_renew(srv->rd);
        if (rc) {
            store_read_end(srv->rd);
            srv->rd = NULL;
            srv->rd_state = RD_NONE;
            return rc;
        }
        break;
    case RD_NONE:
        rc = store_read_begin(srv->st, &srv->rd);
        if (rc)
            return rc;
        break;
    }
    srv->rd_state = RD_ACTIVE;
    /* LMDB read transactions must stay short: release it once this batch is answered. */
    if (srv->loop && !srv->closing)
        uv_check_start(&srv->check, on_check);
    return 0;
}

static void snapshot_release(struct authsrv *srv)
{
    if (srv->rd_state == RD_ACTIVE) {
        store_read_reset(srv->rd);
        srv->rd_state = RD_RESET;
    }
}

/* The check phase runs after the loop's I/O callbacks: the batch is answered. */
static void on_check(uv_check_t *h)
{
    struct authsrv *srv = container_of(h, struct authsrv, check);
    snapshot_release(srv);
    uv_check_stop(h);
}

/* ---- Answers ---- */

/*
 * name_key writes the wire name as the store's key (lower-case text, no
 * trailing dot) into out (DNSWIRE_NAME_MAX octets). Returns its length, or 0
 * when a label holds a dot: such a name cannot be in the store, nor
 * anything below it.
 */
static size_t name_key(char *out, const uint8_t *wire, size_t wire_len)
{
    size_t o = 0, off = 0;
    while (off < wire_len && wire[off] != 0) {
        size_t l = wire[off++];
        if (o > 0)
            out[o++] = '.';
        for (size_t i = 0; i < l; i++) {
            uint8_t c = wire[off + i];
            if (c == '.')
                return 0;
            out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        off += l;
    }
    return o;
}

static const struct ns_host *find_ns(const struct authsrv *srv, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < srv->n_ns; i++)
        if (srv->ns[i].in_zone &&
            dnswire_name_equal(srv->ns[i].wire, srv->ns[i].wire_len, name, len))
            return &srv->ns[i];
    return NULL;
}

/* ns_below returns 1 when a nameserver inside the zone is strictly below name. */
static int ns_below(const struct authsrv *srv, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < srv->n_ns; i++)
        if (srv->ns[i].in_zone && srv->ns[i].wire_len > len &&
            dnswire_name_in_zone(srv->ns[i].wire, srv->ns[i].wire_len, name, len))
            return 1;
    return 0;
}

struct txt_ctx {
    struct dnswire_writer *w;
    const struct query *q;
    uint32_t ttl;
};

static int check_txt(void *ctx, const char *value, size_t len)
{
    (void)ctx;
    (void)value;
    (void)len;
    return 0;
}

static int write_txt(void *ctx, const char *value, size_t len)
{
    struct txt_ctx *t = ctx;
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_TXT};
    rd.u.txt.data = (const uint8_t *)value;
    rd.u.txt.len = len;
    return dnswire_write_rr(t->w, DNSWIRE_SECTION_ANSWER, t->q->qname, t->q->qname_len,
                            DNSWIRE_CLASS_IN, t->ttl, &rd);
}

static int write_soa(struct authsrv *srv, struct dnswire_writer *w, enum dnswire_section sec,
                     uint32_t ttl)
{
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_SOA};
    rd.u.soa = &srv->soa;
    return dnswire_write_rr(w, sec, srv->zone_wire, srv->zone_len, DNSWIRE_CLASS_IN, ttl, &rd);
}

/* write_addrs writes ns's A (type A) or AAAA records to sec. */
static int write_addrs(struct authsrv *srv, struct dnswire_writer *w, enum dnswire_section sec,
                       const uint8_t *owner, size_t owner_len, const struct ns_host *ns,
                       uint16_t type)
{
    struct dnswire_rdata rd = {.type = type};
    size_t n = type == DNSWIRE_TYPE_A ? ns->n_a : ns->n_aaaa;
    for (size_t i = 0; i < n; i++) {
        if (type == DNSWIRE_TYPE_A)
            memcpy(rd.u.a, ns->a[i], 4);
        else
            memcpy(rd.u.aaaa, ns->aaaa[i], 16);
        int rc = dnswire_write_rr(w, sec, owner, owner_len, DNSWIRE_CLASS_IN, srv->zone_ttl, &rd);
        if (rc)
            return rc;
    }
    return 0;
}

/* write_ns writes the apex NS set, then glue for the names inside the zone. */
static int write_ns(struct authsrv *srv, struct dnswire_writer *w, const struct query *q)
{
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_NS};
    for (size_t i = 0; i < srv->n_ns; i++) {
        rd.u.name.wire = srv->ns[i].wire;
        rd.u.name.len = srv->ns[i].wire_len;
        int rc = dnswire_write_rr(w, DNSWIRE_SECTION_ANSWER, q->qname, q->qname_len,
                                  DNSWIRE_CLASS_IN, srv->zone_ttl, &rd);
        if (rc)
            return rc;
    }
    /*
     * Glue is optional in an answer (not a referral): what does not fit is
     * left out without setting TC (RFC 2181 §9).
     */
    for (size_t i = 0; i < srv->n_ns; i++) {
        const struct ns_host *ns = &srv->ns[i];
        if (!ns->in_zone)
            continue;
        if (write_addrs(srv, w, DNSWIRE_SECTION_ADDITIONAL, ns->wire, ns->wire_len, ns,
                        DNSWIRE_TYPE_A) ||
            write_addrs(srv, w, DNSWIRE_SECTION_ADDITIONAL, ns->wire, ns->wire_len, ns,
                        DNSWIRE_TYPE_AAAA))
            break;
    }
    return 0;
}

/*
 * answer_zone answers a QUERY for a name inside the zone into w (header and
 * question written). Returns the rcode; *aa says whether the answer is
 * authoritative data, *tc whether it was truncated.
 */
static uint16_t answer_zone(struct authsrv *srv, struct dnswire_writer *w, const struct query *q,
                            int *aa, int *tc)
{
    char key[DNSWIRE_NAME_MAX];
    const void *txt = NULL;
    size_t txt_len = 0, klen;
    int rc, answered = 0;

    switch (q->qtype) {
    case DNSWIRE_TYPE_OPT:
    case DNSWIRE_TYPE_TSIG:
    case TYPE_TKEY:
        return DNSWIRE_RCODE_FORMERR; /* RFC 6895 §3.1: meta-types are not questions */
    case TYPE_AXFR:
    case TYPE_IXFR:
        return DNSWIRE_RCODE_REFUSED; /* no zone transfers */
    case TYPE_MAILA:
    case TYPE_MAILB:
        return DNSWIRE_RCODE_NOTIMP;
    }
    rc = snapshot_get(srv);
    if (rc) {
        srv->stats.store_errors++;
        return DNSWIRE_RCODE_SERVFAIL;
    }
    srv->soa.serial = (uint32_t)store_read_txn_id(srv->rd);

    int apex = q->qname_len == srv->zone_len;
    const struct ns_host *ns = find_ns(srv, q->qname, q->qname_len);
    klen = name_key(key, q->qname, q->qname_len);
    if (klen > 0) {
        rc = store_read_get(srv->rd, STORE_DB_DNS, key, klen, &txt, &txt_len);
        if (rc == CF_ENOTFOUND) {
            txt = NULL;
        } else if (rc || store_txt_decode(txt, txt_len, check_txt, NULL) != 0) {
            srv->stats.store_errors++;
            return DNSWIRE_RCODE_SERVFAIL;
        }
    }

    struct txt_ctx tctx = {w, q, srv->ttl};
    uint16_t qt = q->qtype;
    if (qt == DNSWIRE_TYPE_ANY) {
        /* RFC 8482 §4.1: answer with one RRset the name has, not all of them. */
        qt = txt                ? DNSWIRE_TYPE_TXT
             : apex             ? DNSWIRE_TYPE_SOA
             : ns && ns->n_a    ? DNSWIRE_TYPE_A
             : ns && ns->n_aaaa ? DNSWIRE_TYPE_AAAA
                                : 0;
    }
    rc = 0;
    if (qt == DNSWIRE_TYPE_TXT && txt) {
        rc = store_txt_decode(txt, txt_len, write_txt, &tctx);
        answered = 1;
    } else if (qt == DNSWIRE_TYPE_SOA && apex) {
        rc = write_soa(srv, w, DNSWIRE_SECTION_ANSWER, srv->zone_ttl);
        answered = 1;
    } else if (qt == DNSWIRE_TYPE_NS && apex) {
        rc = write_ns(srv, w, q);
        answered = 1;
    } else if ((qt == DNSWIRE_TYPE_A && ns && ns->n_a) ||
               (qt == DNSWIRE_TYPE_AAAA && ns && ns->n_aaaa)) {
        rc = write_addrs(srv, w, DNSWIRE_SECTION_ANSWER, q->qname, q->qname_len, ns, qt);
        answered = 1;
    }
    *aa = 1;
    if (answered) {
        if (rc == CF_ETOOBIG) {
            dnswire_writer_truncate(w);
            *tc = 1;
        }
        return DNSWIRE_RCODE_NOERROR;
    }

    /*
     * RFC 2308 §2.1-2.2: NODATA when the name exists (the apex, a
     * nameserver, a name with values, or an empty non-terminal: values
     * published below it), NXDOMAIN otherwise; either way the SOA goes to
     * the authority section with the negative TTL (§3: the smaller of the
     * SOA's TTL and its minimum).
     */
    int exists = apex || ns || txt;
    if (!exists && klen > 0) {
        rc = store_read_txt_below(srv->rd, key, klen);
        if (rc < 0) {
            srv->stats.store_errors++;
            *aa = 0;
            return DNSWIRE_RCODE_SERVFAIL;
        }
        exists = rc;
    }
    if (!exists)
        exists = ns_below(srv, q->qname, q->qname_len);
    uint32_t neg = srv->neg_ttl < srv->zone_ttl ? srv->neg_ttl : srv->zone_ttl;
    if (write_soa(srv, w, DNSWIRE_SECTION_AUTHORITY, neg) == CF_ETOOBIG) {
        dnswire_writer_truncate(w);
        *tc = 1;
    }
    return exists ? DNSWIRE_RCODE_NOERROR : DNSWIRE_RCODE_NXDOMAIN;
}

/* tsig_error_len is the size of the unsigned BADKEY record answering q's TSIG. */
static size_t tsig_error_len(const struct query *q)
{
    return q->tsig_name_len + TSIG_FIXED_LEN + q->tsig_alg_len;
}

/*
 * put_tsig_error appends an unsigned TSIG record with error BADKEY to the
 * answer at out (len octets so far): RFC 8945 §5.2.1 and §5.3.2, MAC size 0.
 */
static size_t put_tsig_error(uint8_t *out, size_t len, const struct query *q)
{
    uint8_t *p = out + len;
    memcpy(p, q->tsig_name, q->tsig_name_len);
    p += q->tsig_name_len;
    put16(p, DNSWIRE_TYPE_TSIG);
    put16(p + 2, DNSWIRE_CLASS_ANY);
    memset(p + 4, 0, 4);
    put16(p + 8, (uint16_t)(q->tsig_alg_len + 16));
    p += 10;
    memcpy(p, q->tsig_alg, q->tsig_alg_len);
    p += q->tsig_alg_len;
    memcpy(p, q->tsig_time_fudge, 8); /* time signed, fudge */
    put16(p + 8, 0);                  /* MAC size */
    put16(p + 10, q->h.id);           /* original ID */
    put16(p + 12, DNSWIRE_RCODE_BADKEY);
    put16(p + 14, 0); /* other len */
    p += 16;
    put16(out + 10, (uint16_t)(get16(out + 10) + 1));
    return (size_t)(p - out);
}

int authsrv_answer(struct authsrv *srv, uint8_t *out, size_t cap, size_t *outlen, const uint8_t *qp,
                   size_t qlen, size_t max_udp)
{
    struct query q;
    struct dnswire_writer w;
    uint16_t rcode;
    int aa = 0, tc = 0;

    srv->stats.queries++;
    if (cap < DNSWIRE_UDP_MIN || parse_query(&q, qp, qlen) != 0) {
        srv->stats.dropped++;
        return CF_EPARSE;
    }
    /*
     * RFC 6891 §6.2.5 and §7: the client's payload size, never below 512,
     * capped at ours; 512 without EDNS (RFC 1035 §4.2.1). TCP: 65535.
     */
    size_t limit = cap < TCP_MSG_MAX ? cap : TCP_MSG_MAX;
    if (max_udp) {
        size_t want = q.edns ? q.udp_size : DNSWIRE_UDP_MIN;
        if (want > max_udp)
            want = max_udp;
        if (want < DNSWIRE_UDP_MIN)
            want = DNSWIRE_UDP_MIN;
        if (want < limit)
            limit = want;
    }
    /* Room for the OPT record (and a TSIG error) is kept aside. */
    size_t reserve = q.edns ? OPT_LEN : 0;
    int tsig_fits = q.tsig && reserve + tsig_error_len(&q) + DNSWIRE_HEADER_LEN + 260 <= limit;
    if (tsig_fits)
        reserve += tsig_error_len(&q);
    dnswire_writer_init(&w, out, limit - reserve);

    struct dnswire_header h;
    memset(&h, 0, sizeof(h));
    h.id = q.h.id;
    h.qr = 1;
    h.opcode = q.h.opcode;
    h.rd = q.h.rd; /* RFC 1035 §4.1.1: copied */
    h.cd = q.h.cd; /* RFC 4035 §3.1.6 */
    dnswire_write_header(&w, &h);
    if (q.h.qdcount == 1 &&
        dnswire_write_question(&w, q.qname, q.qname_len, q.qtype, q.qclass) != 0) {
        srv->stats.dropped++; /* cannot happen with 512 octets, but stay safe */
        return CF_EPARSE;
    }

    if (q.formerr) {
        rcode = DNSWIRE_RCODE_FORMERR;
    } else if (q.h.opcode != DNSWIRE_OPCODE_QUERY) {
        rcode = DNSWIRE_RCODE_NOTIMP;
    } else if (q.edns && q.version > 0) {
        rcode = DNSWIRE_RCODE_BADVERS; /* RFC 6891 §6.1.3 */
    } else if (q.tsig) {
        rcode = DNSWIRE_RCODE_NOTAUTH; /* RFC 8945 §5.2.1: no key is known here */
    } else if (q.qclass != DNSWIRE_CLASS_IN ||
               !dnswire_name_in_zone(q.qname, q.qname_len, srv->zone_wire, srv->zone_len)) {
        /* Not our zone: never recurse, never refer (no open resolver, no amplification). */
        rcode = DNSWIRE_RCODE_REFUSED;
    } else {
        rcode = answer_zone(srv, &w, &q, &aa, &tc);
    }
    if (rcode == DNSWIRE_RCODE_SERVFAIL)
        aa = 0;
    h.aa = (uint8_t)aa;
    h.tc = (uint8_t)tc;
    h.rcode = rcode;
    dnswire_write_header(&w, &h);

    size_t len = w.len;
    if (q.edns) {
        /* RFC 6891 §6.1.2-3: root, OPT, our payload size, upper rcode bits, version 0, DO. */
        uint8_t *p = out + len;
        p[0] = 0;
        put16(p + 1, DNSWIRE_TYPE_OPT);
        put16(p + 3, AUTHSRV_UDP_MAX);
        p[5] = (uint8_t)(rcode >> 4);
        p[6] = 0;
        p[7] = q.do_bit ? 0x80 : 0;
        p[8] = 0;
        put16(p + 9, 0);
        len += OPT_LEN;
        put16(out + 10, (uint16_t)(get16(out + 10) + 1));
    }
    if (tsig_fits)
        len = put_tsig_error(out, len, &q);
    *outlen = len;

    srv->stats.rcode[rcode < AUTHSRV_NRCODES ? rcode : DNSWIRE_RCODE_SERVFAIL]++;
    if (tc)
        srv->stats.truncated++;
    if (!srv->loop)
        snapshot_release(srv);
    return 0;
}

/* ---- UDP ---- */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct udp_listener *l = container_of((uv_udp_t *)h, struct udp_listener, udp);
    (void)suggested;
    /* Answers are sent before the next read: one buffer serves every listener. */
    buf->base = (char *)l->srv->rxbuf;
    buf->len = (size_t)UDP_DGRAM_MAX * UDP_BATCH;
}

static void on_udp_sent(uv_udp_send_t *req, int status)
{
    struct udp_send *s = container_of(req, struct udp_send, req);
    s->srv->udp_queued--;
    if (status < 0 && status != UV_ECANCELED)
        s->srv->stats.send_errors++;
    free(s);
}

/*
 * udp_reply sends an answer: directly when the socket takes it, else copied
 * into a queued request, up to max_udp_queued of them (then dropped: the
 * client retries, as it would after a loss).
 */
static void udp_reply(struct udp_listener *l, const struct sockaddr *to, const uint8_t *data,
                      size_t len)
{
    struct authsrv *srv = l->srv;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&l->udp, &b, 1, to);
    if (rc >= 0)
        return;
    if (rc != UV_EAGAIN || srv->udp_queued >= srv->max_udp_queued) {
        srv->stats.send_errors++;
        return;
    }
    struct udp_send *s = xmalloc(sizeof(*s) + len);
    s->srv = srv;
    s->len = len;
    memcpy(s->data, data, len);
    b = uv_buf_init((char *)s->data, (unsigned)len);
    if (uv_udp_send(&s->req, &l->udp, &b, 1, to, on_udp_sent) != 0) {
        srv->stats.send_errors++;
        free(s);
        return;
    }
    srv->udp_queued++;
}

/*
 * udp_flush sends the answers of the batch with sendmmsg (one system call
 * for the batch, as the queries came in). What the socket does not take
 * (EAGAIN) goes through udp_reply's queue; an answer the kernel refuses
 * for another reason is counted and skipped.
 */
static void udp_flush(struct authsrv *srv)
{
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct udp_listener *l = srv->out_l;
    size_t n = srv->n_out, done = 0;
    uv_os_fd_t fd;
    srv->n_out = 0;
    if (n == 0 || uv_fileno((uv_handle_t *)&l->udp, &fd) != 0)
        return;
    memset(msgs, 0, n * sizeof(msgs[0]));
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = srv->out[i].data;
        iov[i].iov_len = srv->out[i].len;
        msgs[i].msg_hdr.msg_name = &srv->out[i].to;
        msgs[i].msg_hdr.msg_namelen = srv->out[i].tolen;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (done < n) {
        int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
        if (r > 0) {
            done += (size_t)r;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            for (; done < n; done++)
                udp_reply(l, (const struct sockaddr *)&srv->out[done].to, srv->out[done].data,
                          srv->out[done].len);
        } else if (errno != EINTR) {
            srv->stats.send_errors++;
            done++;
        }
    }
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct udp_listener *l = container_of(h, struct udp_listener, udp);
    struct authsrv *srv = l->srv;
    if (srv->closing)
        return;
    if (srv->out_l != l || srv->n_out == UDP_BATCH) {
        udp_flush(srv);
        srv->out_l = l;
    }
    if (nread > 0 && addr) {
        struct udp_out *o = &srv->out[srv->n_out];
        srv->stats.udp++;
        if (flags & UV_UDP_PARTIAL) {
            srv->stats.queries++;
            srv->stats.dropped++;
        } else if (authsrv_answer(srv, o->data, sizeof(o->data), &o->len,
                                  (const uint8_t *)buf->base, (size_t)nread,
                                  AUTHSRV_UDP_MAX) == 0) {
            o->tolen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                   : sizeof(struct sockaddr_in);
            memcpy(&o->to, addr, o->tolen);
            srv->n_out++;
        }
    }
    /*
     * libuv marks each datagram of a recvmmsg batch UV_UDP_MMSG_CHUNK and
     * ends the batch with a call without it (UV_UDP_MMSG_FREE); a read
     * without recvmmsg, an error or "nothing more" is not a chunk either.
     */
    if (!(flags & UV_UDP_MMSG_CHUNK))
        udp_flush(srv);
}

/* ---- TCP (RFC 7766) ---- */

static void maybe_free(struct authsrv *srv);

static void on_conn_closed(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;
    struct authsrv *srv = c->srv;
    srv->handles--;
    if (--c->handles == 0) {
        free(c->rbuf);
        free(c);
    }
    maybe_free(srv);
}

static void conn_close(struct tcp_conn *c)
{
    struct authsrv *srv = c->srv;
    if (c->closing)
        return;
    c->closing = 1;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_closed);
}

static void on_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_tcp_written(uv_write_t *req, int status)
{
    struct tcp_write *wr = container_of(req, struct tcp_write, req);
    struct tcp_conn *c = wr->c;
    free(wr);
    c->pending--;
    if (c->closing)
        return;
    if (status < 0 || (c->eof && c->pending == 0)) {
        conn_close(c);
        return;
    }
    if (!c->reading && !c->eof && c->pending <= TCP_MAX_PENDING / 2 &&
        uv_read_start((uv_stream_t *)&c->tcp, NULL, on_tcp_read) == 0)
        c->reading = 1;
}

/* tcp_reply sends one framed answer, directly when the socket takes it all. */
static void tcp_reply(struct tcp_conn *c, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (c->pending == 0) {
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)len)
            return;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
    }
    struct tcp_write *wr = xmalloc(sizeof(*wr) + len);
    wr->c = c;
    wr->len = len;
    memcpy(wr->data, data, len);
    b = uv_buf_init((char *)wr->data, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written) != 0) {
        free(wr);
        conn_close(c);
        return;
    }
    c->pending++;
}

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tcp_conn *c = h->data;
    (void)suggested;
    if (c->rcap - c->rlen < 4096 && c->rcap < TCP_RBUF_MAX) {
        size_t ncap = c->rcap ? c->rcap * 2 : 4096;
        c->rcap = ncap < TCP_RBUF_MAX ? ncap : TCP_RBUF_MAX;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    buf->base = (char *)c->rbuf + c->rlen;
    buf->len = c->rcap - c->rlen;
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_conn *c = s->data;
    struct authsrv *srv = c->srv;
    size_t off = 0;
    (void)buf;
    if (nread == UV_EOF) {
        /* RFC 7766 §6.2.4: the client is done; send what is queued, then close. */
        c->eof = 1;
        uv_read_stop(s);
        c->reading = 0;
        if (c->pending == 0)
            conn_close(c);
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->rlen += (size_t)nread;
    /* Answer every complete message, in order (RFC 7766 §6.2.1.1 allows any order). */
    while (c->rlen - off >= 2) {
        size_t mlen = get16(c->rbuf + off), alen;
        if (c->rlen - off - 2 < mlen)
            break;
        srv->stats.tcp++;
        int rc =
            authsrv_answer(srv, srv->txbuf + 2, TCP_MSG_MAX, &alen, c->rbuf + off + 2, mlen, 0);
        off += 2 + mlen;
        if (rc) {
            /* A malformed message: the stream cannot be trusted any more. */
            conn_close(c);
            return;
        }
        put16(srv->txbuf, (uint16_t)alen);
        tcp_reply(c, srv->txbuf, alen + 2);
        if (c->closing)
            return;
        uv_timer_again(&c->idle);
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    /* A client that does not read its answers is not read either. */
    if (c->pending >= TCP_MAX_PENDING && c->reading) {
        uv_read_stop(s);
        c->reading = 0;
    }
}

static void on_refused_closed(uv_handle_t *h)
{
    struct authsrv *srv = h->data;
    free(h);
    srv->handles--;
    maybe_free(srv);
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    struct tcp_listener *l = container_of((uv_tcp_t *)server, struct tcp_listener, tcp);
    struct authsrv *srv = l->srv;
    if (status < 0 || srv->closing)
        return;
    if (srv->n_conns >= srv->max_tcp) {
        /* Over the cap: accept and close at once, so the backlog does not fill. */
        uv_tcp_t *t = xmalloc(sizeof(*t));
        uv_tcp_init(srv->loop, t);
        t->data = srv;
        srv->handles++;
        uv_accept(server, (uv_stream_t *)t);
        srv->stats.tcp_refused++;
        uv_close((uv_handle_t *)t, on_refused_closed);
        return;
    }
    struct tcp_conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->handles = 2;
    srv->handles += 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    srv->stats.tcp_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_tcp_alloc, on_tcp_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
    /* RFC 7766 §6.2.3: idle connections are closed after some seconds. */
    uv_timer_start(&c->idle, on_idle, srv->tcp_idle_ms, srv->tcp_idle_ms);
}

/* ---- Setup and teardown ---- */

static void maybe_free(struct authsrv *srv)
{
    if (!srv->closing || srv->handles > 0)
        return;
    store_read_end(srv->rd);
    free(srv->rxbuf);
    free(srv->out);
    free(srv);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct authsrv *srv = h->data;
    srv->handles--;
    maybe_free(srv);
}

static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[64];
    int port;
    memset(ss, 0, sizeof(*ss));
    if (config_parse_addr(spec, host, sizeof(host), &port, 53) != 0)
        return CF_ECONFIG;
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0 ? 0 : CF_ECONFIG;
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ? 0 : CF_ECONFIG;
}

static void log_listen_failed(const char *spec, const char *what, int rc)
{
    log_event(LOG_ERROR, "dns_listen_failed", "addr", spec, "socket", what, "error",
              uv_strerror(rc), NULL);
}

/* listen_on opens the UDP and TCP sockets of one address. */
static int listen_on(struct authsrv *srv, const char *spec)
{
    struct sockaddr_storage ss;
    int rc = parse_listen(spec, &ss);
    if (rc) {
        log_event(LOG_ERROR, "dns_listen_invalid", "addr", spec, NULL);
        return rc;
    }
    int v6 = ss.ss_family == AF_INET6;
    const struct sockaddr *sa = (const struct sockaddr *)&ss;

    struct udp_listener *u = &srv->udp[srv->n_udp];
    u->srv = srv;
    /* recvmmsg: one system call reads a batch of queries. */
    rc = uv_udp_init_ex(srv->loop, &u->udp, (unsigned)ss.ss_family | UV_UDP_RECVMMSG);
    if (rc)
        return rc;
    u->udp.data = srv;
    srv->n_udp++;
    srv->handles++;
    rc = uv_udp_bind(&u->udp, sa, v6 ? UV_UDP_IPV6ONLY : 0);
    if (rc) {
        log_listen_failed(spec, "udp", rc);
        return rc;
    }
    int size = 4 << 20; /* ride out bursts; the kernel caps it at rmem_max */
    uv_recv_buffer_size((uv_handle_t *)&u->udp, &size);
    rc = uv_udp_recv_start(&u->udp, on_udp_alloc, on_udp_recv);
    if (rc) {
        log_listen_failed(spec, "udp", rc);
        return rc;
    }

    struct tcp_listener *t = &srv->tcp[srv->n_tcp];
    t->srv = srv;
    rc = uv_tcp_init_ex(srv->loop, &t->tcp, ss.ss_family);
    if (rc)
        return rc;
    t->tcp.data = srv;
    srv->n_tcp++;
    srv->handles++;
    rc = uv_tcp_bind(&t->tcp, sa, v6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->tcp, TCP_BACKLOG, on_tcp_connection);
    if (rc) {
        log_listen_failed(spec, "tcp", rc);
        return rc;
    }
    return 0;
}

/* add_ns adds one nameserver entry (a name, maybe with one address). */
static int add_ns(struct authsrv *srv, const struct authsrv_ns *e)
{
    uint8_t wire[DNSWIRE_NAME_MAX], bin[16];
    size_t len;
    struct ns_host *h = NULL;
    if (!e->name || dnswire_name_from_text(wire, &len, e->name) != 0 || len <= 1)
        return CF_ECONFIG;
    for (size_t i = 0; i < srv->n_ns && !h; i++)
        if (dnswire_name_equal(srv->ns[i].wire, srv->ns[i].wire_len, wire, len))
            h = &srv->ns[i];
    if (!h) {
        if (srv->n_ns == AUTHSRV_MAX_NS)
            return CF_ECONFIG;
        h = &srv->ns[srv->n_ns++];
        memcpy(h->wire, wire, len);
        h->wire_len = len;
        h->in_zone = dnswire_name_in_zone(wire, len, srv->zone_wire, srv->zone_len);
    }
    if (!e->addr || !*e->addr)
        return 0;
    if (inet_pton(AF_INET, e->addr, bin) == 1)
        memcpy(h->a[h->n_a++], bin, 4);
    else if (inet_pton(AF_INET6, e->addr, bin) == 1)
        memcpy(h->aaaa[h->n_aaaa++], bin, 16);
    else
        return CF_ECONFIG;
    return 0;
}

static int setup_zone(struct authsrv *srv, const struct authsrv_opts *o)
{
    static const uint8_t hostmaster[] = "\x0ahostmaster";
    if (!o->zone || strlen(o->zone) >= sizeof(srv->zone) ||
        dnswire_name_from_text(srv->zone_wire, &srv->zone_len, o->zone) != 0 ||
        srv->zone_len <= 1 || o->n_ns == 0 || o->n_ns > AUTHSRV_MAX_NS)
        return CF_ECONFIG;
    srv->zone_text_len = strlen(o->zone);
    memcpy(srv->zone, o->zone, srv->zone_text_len + 1);
    for (size_t i = 0; i < o->n_ns; i++)
        if (add_ns(srv, &o->ns[i]) != 0)
            return CF_ECONFIG;
    /* RFC 1035 §3.3.13: mname the first nameserver, rname hostmaster.<zone>. */
    struct dnswire_soa *soa = &srv->soa;
    memcpy(soa->mname, srv->ns[0].wire, srv->ns[0].wire_len);
    soa->mname_len = srv->ns[0].wire_len;
    if (srv->zone_len + sizeof(hostmaster) - 1 > DNSWIRE_NAME_MAX)
        return CF_ECONFIG;
    memcpy(soa->rname, hostmaster, sizeof(hostmaster) - 1);
    memcpy(soa->rname + sizeof(hostmaster) - 1, srv->zone_wire, srv->zone_len);
    soa->rname_len = sizeof(hostmaster) - 1 + srv->zone_len;
    soa->refresh = SOA_REFRESH;
    soa->retry = SOA_RETRY;
    soa->expire = SOA_EXPIRE;
    soa->minimum = srv->neg_ttl;
    return 0;
}

int authsrv_new(struct authsrv **out, uv_loop_t *loop, struct store *st,
                const struct authsrv_opts *o)
{
    int rc;
    *out = NULL;
    if ((!loop && o->n_listen > 0) || o->n_listen > AUTHSRV_MAX_LISTEN || !st)
        return CF_ECONFIG;
    struct authsrv *srv = xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->st = st;
    srv->ttl = o->ttl ? o->ttl : DEFAULT_TTL;
    srv->zone_ttl = o->zone_ttl ? o->zone_ttl : DEFAULT_ZONE_TTL;
    srv->neg_ttl = o->neg_ttl ? o->neg_ttl : DEFAULT_NEG_TTL;
    srv->max_tcp = o->max_tcp ? o->max_tcp : DEFAULT_MAX_TCP;
    srv->tcp_idle_ms = o->tcp_idle_ms ? o->tcp_idle_ms : DEFAULT_TCP_IDLE_MS;
    srv->max_udp_queued = o->max_udp_queued ? o->max_udp_queued : DEFAULT_UDP_QUEUED;
    rc = setup_zone(srv, o);
    if (rc) {
        free(srv);
        return rc;
    }
    if (!loop) {
        *out = srv;
        return 0;
    }
    srv->rxbuf = xmalloc((size_t)UDP_DGRAM_MAX * UDP_BATCH);
    srv->out = xmalloc(UDP_BATCH * sizeof(*srv->out));
    uv_check_init(loop, &srv->check);
    srv->check.data = srv;
    srv->handles++;
    uv_unref((uv_handle_t *)&srv->check);
    for (size_t i = 0; i < o->n_listen; i++) {
        rc = listen_on(srv, o->listen[i]);
        if (rc) {
            authsrv_free(srv);
            return rc;
        }
    }
    char nl[16];
    snprintf(nl, sizeof(nl), "%zu", o->n_listen);
    log_event(LOG_INFO, "dns_serving", "zone", srv->zone, "listen", o->n_listen ? o->listen[0] : "",
              "addresses", nl, NULL);
    *out = srv;
    return 0;
}

void authsrv_free(struct authsrv *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = 1;
    if (!srv->loop) {
        maybe_free(srv);
        return;
    }
    for (size_t i = 0; i < srv->n_udp; i++)
        uv_close((uv_handle_t *)&srv->udp[i].udp, on_handle_closed);
    for (size_t i = 0; i < srv->n_tcp; i++)
        uv_close((uv_handle_t *)&srv->tcp[i].tcp, on_handle_closed);
    while (srv->conns)
        conn_close(srv->conns);
    uv_close((uv_handle_t *)&srv->check, on_handle_closed);
}

void authsrv_opts_from_config(struct authsrv_opts *o, struct authsrv_conf_space *sp,
                              const struct config *cfg, int *no_glue)
{
    size_t n = 0, tcap = sizeof(sp->text[0][0]);
    char host[64];
    int port;
    memset(o, 0, sizeof(*o));
    if (no_glue)
        *no_glue = 0;
    for (size_t i = 0; i < cfg->n_validation_ns && n < AUTHSRV_MAX_NS; i++) {
        const char *e = cfg->validation_ns[i], *eq = strchr(e, '=');
        size_t nlen = eq ? (size_t)(eq - e) : strlen(e);
        if (nlen >= tcap)
            nlen = tcap - 1;
        memcpy(sp->text[n][0], e, nlen);
        sp->text[n][0][nlen] = '\0';
        snprintf(sp->text[n][1], tcap, "%s", eq ? eq + 1 : "");
        n++;
    }
    if (n == 0) {
        snprintf(sp->text[0][0], tcap, "ns1.%s", cfg->validation_zone);
        sp->text[0][1][0] = '\0';
        if (config_parse_addr(cfg->dns_listen, host, sizeof(host), &port, 53) == 0 &&
            strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
            snprintf(sp->text[0][1], tcap, "%s", host);
        else if (no_glue)
            *no_glue = 1;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        sp->ns[i].name = sp->text[i][0];
        sp->ns[i].addr = sp->text[i][1];
    }
    sp->listen[0] = cfg->dns_listen;
    o->zone = cfg->validation_zone;
    o->listen = sp->listen;
    o->n_listen = 1;
    o->ns = sp->ns;
    o->n_ns = n;
}

void authsrv_get_stats(const struct authsrv *srv, struct authsrv_stats *out)
{
    *out = srv->stats;
}
