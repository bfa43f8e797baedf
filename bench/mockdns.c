/*
 * mockdns.c - certfleet-mockdns: the load harness's DNS, answering from the
 * name itself (no table, no zone files).
 *
 * One process is both the recursive resolver certfleet is pointed at
 * (`init --resolver`) and every authoritative server of the synthetic
 * customer zones (their NS names resolve to its own addresses, and
 * certfleet's dns_auth_port is its port). What each host looks like in DNS
 * is decided by bench/fleet.h from a hash of the name and the --mix, so the
 * harness, which links the same code, knows what certfleet should find.
 *
 * The namespace (the defaults; README "Mock DNS"):
 *
 *   c<j>.test                 a customer zone (the last --zone-labels labels)
 *     NS ns1.dns.bench.test, ns2.dns.bench.test; SOA
 *   _acme-challenge.H         CNAME H.<validation zone> (delegated, notlive),
 *                             only on ns1 (propagating), CNAME H.wrong.bench.test
 *                             (wrong), NXDOMAIN (missing)
 *   H                         CNAME edge.cdn.bench.test, or A 198.51.100.x (notlive)
 *   bench.test                the harness's own zone:
 *     ns1/ns2.dns.bench.test  A: the first and second --listen address
 *     edge.cdn.bench.test     A 192.0.2.1
 *     acme.cdn.bench.test     the validation zone, delegated to certfleet's own
 *                             server: NS ns1.acme.cdn.bench.test, glue the
 *                             --validation-ns address (certfleet's --dns-listen)
 *
 * Questions with RD set are the resolver's: answers chase the CNAME of a
 * live host to the edge address, as a resolver would. Questions with RD
 * clear are the authoritative servers': the answer stops at the CNAME, and
 * the second address (ns2) leaves out the CNAME of propagating hosts.
 * The answer's AA bit is set either way; certfleet's resolver client does not
 * look at it and its authoritative client requires it.
 *
 * Speed: each UDP socket is read with recvmmsg in batches of 64 through a
 * uv_poll handle, and a batch's answers leave with one sendmmsg; nothing is
 * allocated per query unless --latency-ms holds the answer back. --threads N
 * runs N loops, each with its own SO_REUSEPORT sockets. TCP (RFC 7766) is
 * minimal: one message after another, on the first loop.
 *
 * Faults, per question and at random: --timeout P percent are dropped,
 * --servfail P percent get SERVFAIL, and --latency-ms/--jitter-ms delay every
 * UDP answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "config.h"
#include "dnswire.h"
#include "err.h"
#include "fleet.h"
#include "hostname.h"
#include "timeutil.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define MAX_LISTEN 8
#define MAX_THREADS 16
/* Datagrams read by one recvmmsg, and the room for each query and answer. */
#define BATCH 64
#define RX_SLOT 2048
#define TX_SLOT 1232
/* recvmmsg rounds per readable event before yielding to the other sockets. */
#define ROUNDS 8
/* RFC 6891 §6.2.5 and the DNS flag day 2020: answer at most 1232 octets over UDP. */
#define EDNS_MAX 1232
#define TCP_MSG_MAX 65535
#define PPM 1000000u

enum fault_scope { SCOPE_ALL, SCOPE_AUTH, SCOPE_RESOLVER };

/* A wire name, lower case. */
struct wname {
    uint8_t w[DNSWIRE_NAME_MAX];
    size_t len;
};

/* The read-only configuration, shared by every thread. */
struct conf {
    struct fleet_mix mix;
    struct wname infra, cdn, edge, vzone, vns, wrong, hostmaster;
    struct wname ns[2];
    struct sockaddr_storage ns_addr[2]; /* what ns1 and ns2 resolve to */
    struct sockaddr_storage vns_addr;   /* certfleet's own server */
    uint8_t edge_a[4];
    int zone_labels;
    uint32_t ttl, neg_ttl;
    uint32_t p_timeout, p_servfail; /* parts per million */
    enum fault_scope scope;
    uint32_t latency_ms, jitter_ms;
    size_t n_listen;
    char listen_text[MAX_LISTEN][64];
    struct sockaddr_storage listen[MAX_LISTEN];
    int threads;
    uint64_t seed;
    const char *stats_path;
};

/* Counters, written by one thread each, read by the stats writer. */
struct stats {
    _Atomic uint64_t queries, udp, tcp, resolver, auth, answered, dropped, servfail_injected,
        delayed, malformed, send_errors, delay_overflow;
    _Atomic uint64_t rcode[16];
};

#define ST_ADD(st, field, n) atomic_fetch_add_explicit(&(st)->field, (n), memory_order_relaxed)
#define ST_GET(st, field) atomic_load_explicit(&(st)->field, memory_order_relaxed)

struct worker;

struct udp_sock {
    uv_poll_t poll;
    struct worker *w;
    int fd;
    int idx; /* which --listen address: 0 is ns1 and the resolver, 1 is ns2 */
};

/* An answer held back by --latency-ms, in a min-heap by due time. */
struct delayed {
    uint64_t due_ns;
    struct udp_sock *s;
    struct sockaddr_storage to;
    socklen_t tolen;
    uint16_t len;
    uint8_t data[];
};

struct tcp_conn {
    uv_tcp_t tcp;
    struct worker *w;
    int idx;
    uint8_t *rbuf;
    size_t rlen, rcap;
    int closing;
};

struct tcp_write {
    uv_write_t req;
    uint8_t data[];
};

struct tcp_listener {
    uv_tcp_t tcp;
    struct worker *w;
    int idx;
};

struct worker {
    uv_loop_t loop;
    uv_thread_t thread;
    int id;
    const struct conf *c;
    struct stats st;
    uint64_t rng;
    struct udp_sock udp[MAX_LISTEN];
    size_t n_udp;
    struct tcp_listener tcpl[MAX_LISTEN];
    size_t n_tcp;
    /* recvmmsg and sendmmsg arrays: one batch at a time per thread. */
    struct mmsghdr rmsg[BATCH], smsg[BATCH];
    struct iovec riov[BATCH], siov[BATCH];
    struct sockaddr_storage raddr[BATCH];
    uint8_t rx[BATCH][RX_SLOT];
    uint8_t tx[BATCH][TX_SLOT];
    uint8_t tcpbuf[2 + TCP_MSG_MAX];
    /* --latency-ms */
    uv_timer_t delay_timer;
    struct delayed **heap;
    size_t nheap, capheap;
};

static struct conf g_conf;
static struct worker *g_workers[MAX_THREADS];
static uint64_t g_started_ns;

/* ---- small helpers ---- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* rnd returns a uniform number below PPM (xorshift64*, one generator per thread). */
static uint32_t rnd_ppm(struct worker *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (uint32_t)(((w->rng * UINT64_C(0x2545F4914F6CDD1D)) >> 32) * PPM >> 32);
}

static int wname_set(struct wname *n, const char *text)
{
    return dnswire_name_from_text(n->w, &n->len, text);
}

static int name_eq(const uint8_t *a, size_t alen, const struct wname *b)
{
    return alen == b->len && memcmp(a, b->w, alen) == 0;
}

/* in_zone: a lower-case name at or below a lower-case zone. */
static int in_zone(const uint8_t *name, size_t len, const struct wname *zone)
{
    return dnswire_name_in_zone(name, len, zone->w, zone->len);
}

/*
 * concat writes the labels of a (without its root label) followed by b into
 * out. Returns the length, or 0 when the result would exceed 255 octets.
 */
static size_t concat(uint8_t *out, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen - 1 + blen > DNSWIRE_NAME_MAX)
        return 0;
    memcpy(out, a, alen - 1);
    memcpy(out + alen - 1, b, blen);
    return alen - 1 + blen;
}

/* wire_text writes a wire name of LDH labels as text without escaping: the fleet's form. */
static size_t wire_text(char *out, const uint8_t *w, size_t len)
{
    size_t o = 0, off = 0;
    while (off < len && w[off]) {
        size_t l = w[off++];
        if (o)
            out[o++] = '.';
        memcpy(out + o, w + off, l);
        o += l;
        off += l;
    }
    out[o] = '\0';
    return o;
}

/* ---- answers ---- */

/* A parsed query: what the answer needs. */
struct query {
    struct dnswire_header h;
    uint8_t qname[DNSWIRE_NAME_MAX]; /* as sent */
    uint8_t lname[DNSWIRE_NAME_MAX]; /* lower case */
    size_t qlen;
    uint16_t qtype, qclass;
    int edns;
    uint16_t udp_size;
    size_t lab[DNSWIRE_NAME_MAX / 2 + 1]; /* offsets of the labels in lname */
    size_t nlab;
};

/*
 * parse_query reads pkt without allocating. Returns 0, -1 to drop the
 * message (a response, or too mangled to answer), or 1 for FORMERR.
 */
static int parse_query(struct query *q, const uint8_t *pkt, size_t len)
{
    uint8_t tmp[DNSWIRE_NAME_MAX];
    size_t off = DNSWIRE_HEADER_LEN, tlen;
    q->edns = 0;
    q->qlen = 0;
    if (dnswire_header_parse(&q->h, pkt, len) != 0 || q->h.qr)
        return -1;
    if (q->h.qdcount != 1)
        return 1;
    if (dnswire_read_name(pkt, len, &off, q->qname, &q->qlen) != 0 || len - off < 4)
        return -1;
    q->qtype = get16(pkt + off);
    q->qclass = get16(pkt + off + 2);
    off += 4;
    size_t nrr = (size_t)q->h.ancount + q->h.nscount + q->h.arcount;
    for (size_t i = 0; i < nrr; i++) {
        if (dnswire_read_name(pkt, len, &off, tmp, &tlen) != 0 || len - off < 10)
            return 1;
        uint16_t type = get16(pkt + off), rclass = get16(pkt + off + 2);
        size_t rdlen = get16(pkt + off + 8);
        off += 10;
        if (len - off < rdlen)
            return 1;
        if (type == DNSWIRE_TYPE_OPT && tlen == 1) {
            q->edns = 1;
            q->udp_size = rclass;
        }
        off += rdlen;
    }
    /* Lower case and label offsets, for the comparisons that follow. */
    size_t o = 0;
    q->nlab = 0;
    while (o < q->qlen && q->qname[o]) {
        size_t l = q->qname[o];
        q->lab[q->nlab++] = o;
        q->lname[o] = (uint8_t)l;
        for (size_t i = 1; i <= l; i++) {
            uint8_t ch = q->qname[o + i];
            q->lname[o + i] = (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + 32) : ch;
        }
        o += l + 1;
    }
    q->lname[o] = 0;
    return 0;
}

/* struct reply collects an answer's records before the message is written. */
#define REPLY_MAX_RR 8
struct rr_out {
    enum dnswire_section sec;
    const uint8_t *name;
    size_t name_len;
    uint32_t ttl;
    struct dnswire_rdata rd;
};

struct reply {
    uint16_t rcode;
    int aa;
    size_t n;
    struct rr_out rr[REPLY_MAX_RR];
    /* Names and addresses the records point to, alive until the message is written. */
    uint8_t target[DNSWIRE_NAME_MAX];
    size_t target_len;
    struct dnswire_soa soa;
};

static void add_rr(struct reply *r, enum dnswire_section sec, const uint8_t *name, size_t len,
                   uint32_t ttl, const struct dnswire_rdata *rd)
{
    if (r->n == REPLY_MAX_RR)
        return;
    struct rr_out *o = &r->rr[r->n++];
    o->sec = sec;
    o->name = name;
    o->name_len = len;
    o->ttl = ttl;
    o->rd = *rd;
}

static void add_name_rr(struct reply *r, enum dnswire_section sec, const uint8_t *owner,
                        size_t olen, uint16_t type, const uint8_t *target, size_t tlen)
{
    struct dnswire_rdata rd = {.type = type};
    rd.u.name.wire = target;
    rd.u.name.len = tlen;
    add_rr(r, sec, owner, olen, g_conf.ttl, &rd);
}

static void add_addr_rr(struct reply *r, enum dnswire_section sec, const uint8_t *owner,
                        size_t olen, const struct sockaddr_storage *ss)
{
    struct dnswire_rdata rd;
    memset(&rd, 0, sizeof(rd));
    if (ss->ss_family == AF_INET) {
        rd.type = DNSWIRE_TYPE_A;
        memcpy(rd.u.a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else {
        rd.type = DNSWIRE_TYPE_AAAA;
        memcpy(rd.u.aaaa, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
    add_rr(r, sec, owner, olen, g_conf.ttl, &rd);
}

static int addr_type(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? DNSWIRE_TYPE_A : DNSWIRE_TYPE_AAAA;
}

/* add_soa puts zone's SOA in the authority section: RFC 2308 §3, negative answers. */
static void add_soa(struct reply *r, const uint8_t *zone, size_t zlen)
{
    struct dnswire_soa *s = &r->soa;
    memcpy(s->mname, g_conf.ns[0].w, g_conf.ns[0].len);
    s->mname_len = g_conf.ns[0].len;
    memcpy(s->rname, g_conf.hostmaster.w, g_conf.hostmaster.len);
    s->rname_len = g_conf.hostmaster.len;
    s->serial = 2024010101;
    s->refresh = 3600;
    s->retry = 600;
    s->expire = 86400;
    s->minimum = g_conf.neg_ttl;
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_SOA};
    rd.u.soa = s;
    add_rr(r, DNSWIRE_SECTION_AUTHORITY, zone, zlen, g_conf.neg_ttl, &rd);
}

static void add_ns_pair(struct reply *r, enum dnswire_section sec, const uint8_t *zone, size_t zlen)
{
    add_name_rr(r, sec, zone, zlen, DNSWIRE_TYPE_NS, g_conf.ns[0].w, g_conf.ns[0].len);
    add_name_rr(r, sec, zone, zlen, DNSWIRE_TYPE_NS, g_conf.ns[1].w, g_conf.ns[1].len);
}

/* challenge_target writes certfleet's CNAME target for host H (README "The CNAME target rule"). */
static int challenge_target(struct reply *r, const uint8_t *h, size_t hlen)
{
    r->target_len = concat(r->target, h, hlen, g_conf.vzone.w, g_conf.vzone.len);
    if (r->target_len)
        return 0;
    /* Over 253 octets: the hash form, computed by certfleet's own rule. */
    char host[DNSWIRE_NAME_MAX + 1], zone[DNSWIRE_NAME_MAX + 1], t[HOSTNAME_MAX + 1];
    wire_text(host, h, hlen);
    wire_text(zone, g_conf.vzone.w, g_conf.vzone.len);
    if (hostname_challenge_target(t, host, zone) != 0 ||
        dnswire_name_from_text(r->target, &r->target_len, t) != 0)
        return -1;
    return 0;
}

/* wrong_target writes H.wrong.<infra>, or w<hash>.wrong.<infra> when that is too long. */
static void wrong_target(struct reply *r, const uint8_t *h, size_t hlen, uint64_t hash)
{
    r->target_len = concat(r->target, h, hlen, g_conf.wrong.w, g_conf.wrong.len);
    if (r->target_len)
        return;
    uint8_t lab[18];
    lab[0] = 17;
    lab[1] = 'w';
    for (int i = 0; i < 16; i++)
        lab[2 + i] = (uint8_t) "0123456789abcdef"[(hash >> (60 - 4 * i)) & 15];
    memcpy(r->target, lab, sizeof(lab));
    memcpy(r->target + sizeof(lab), g_conf.wrong.w, g_conf.wrong.len);
    r->target_len = sizeof(lab) + g_conf.wrong.len;
}

/*
 * answer_customer answers for a name in a customer zone (everything outside
 * the harness's own zone): the zone is the last zone_labels labels.
 */
static void answer_customer(struct reply *r, const struct query *q, int idx)
{
    const uint8_t *name = q->lname;
    size_t len = q->qlen;
    int rd = q->h.rd;
    size_t zl = (size_t)g_conf.zone_labels;
    r->aa = 1;
    if (q->nlab <= zl) {
        /* The zone apex (or above it, which answers as a zone of its own). */
        if (q->qtype == DNSWIRE_TYPE_SOA || q->qtype == DNSWIRE_TYPE_ANY) {
            add_soa(r, name, len);
            r->rr[r->n - 1].sec = DNSWIRE_SECTION_ANSWER;
        }
        if (q->qtype == DNSWIRE_TYPE_NS || q->qtype == DNSWIRE_TYPE_ANY)
            add_ns_pair(r, DNSWIRE_SECTION_ANSWER, name, len);
        if (r->n == 0)
            add_soa(r, name, len);
        return;
    }
    const uint8_t *zone = name + q->lab[q->nlab - zl];
    size_t zlen = len - q->lab[q->nlab - zl];
    static const uint8_t chal[] = "\x0f_acme-challenge";
    char text[DNSWIRE_NAME_MAX + 1];
    if (memcmp(name, chal, sizeof(chal) - 1) == 0) {
        const uint8_t *h = name + q->lab[1];
        size_t hlen = len - q->lab[1];
        size_t tl = wire_text(text, h, hlen);
        enum fleet_class cls = fleet_host_class(&g_conf.mix, text, tl);
        int has = cls == FLEET_DELEGATED || cls == FLEET_NOTLIVE || cls == FLEET_WRONG ||
                  (cls == FLEET_PROPAGATING && idx == 0);
        if (!has) {
            r->rcode = DNSWIRE_RCODE_NXDOMAIN;
            add_soa(r, zone, zlen);
            return;
        }
        if (cls == FLEET_WRONG)
            wrong_target(r, h, hlen, fleet_name_hash(text, tl));
        else if (challenge_target(r, h, hlen) != 0) {
            r->rcode = DNSWIRE_RCODE_SERVFAIL;
            return;
        }
        /* RFC 1034 §3.6.2: the CNAME answers every type; its target is not ours to chase. */
        add_name_rr(r, DNSWIRE_SECTION_ANSWER, q->qname, q->qlen, DNSWIRE_TYPE_CNAME, r->target,
                    r->target_len);
        return;
    }
    if (name[1] == '_') {
        r->rcode = DNSWIRE_RCODE_NXDOMAIN;
        add_soa(r, zone, zlen);
        return;
    }
    size_t tl = wire_text(text, name, len);
    enum fleet_class cls = fleet_host_class(&g_conf.mix, text, tl);
    if (cls == FLEET_NOTLIVE) {
        if (q->qtype == DNSWIRE_TYPE_A || q->qtype == DNSWIRE_TYPE_ANY) {
            /* Served elsewhere: an address in TEST-NET-2 (RFC 5737), outside every CDN target. */
            struct dnswire_rdata rdv = {.type = DNSWIRE_TYPE_A};
            uint64_t hv = fleet_name_hash(text, tl);
            rdv.u.a[0] = 198;
            rdv.u.a[1] = 51;
            rdv.u.a[2] = 100;
            rdv.u.a[3] = (uint8_t)(1 + hv % 254);
            add_rr(r, DNSWIRE_SECTION_ANSWER, q->qname, q->qlen, g_conf.ttl, &rdv);
        } else {
            add_soa(r, zone, zlen);
        }
        return;
    }
    add_name_rr(r, DNSWIRE_SECTION_ANSWER, q->qname, q->qlen, DNSWIRE_TYPE_CNAME, g_conf.edge.w,
                g_conf.edge.len);
    if (!rd || q->qtype == DNSWIRE_TYPE_CNAME || q->qtype == DNSWIRE_TYPE_ANY)
        return;
    /* A resolver follows the CNAME (RFC 1034 §4.3.2 step 3a) and answers with the chain. */
    if (q->qtype == DNSWIRE_TYPE_A) {
        struct dnswire_rdata rdv = {.type = DNSWIRE_TYPE_A};
        memcpy(rdv.u.a, g_conf.edge_a, 4);
        add_rr(r, DNSWIRE_SECTION_ANSWER, g_conf.edge.w, g_conf.edge.len, g_conf.ttl, &rdv);
    } else {
        add_soa(r, g_conf.infra.w, g_conf.infra.len);
    }
}

/* answer_addr answers an address question for a name that has one address. */
static void answer_addr(struct reply *r, const struct query *q, const struct sockaddr_storage *a,
                        const uint8_t *zone, size_t zlen)
{
    if (q->qtype == addr_type(a) || q->qtype == DNSWIRE_TYPE_ANY)
        add_addr_rr(r, DNSWIRE_SECTION_ANSWER, q->qname, q->qlen, a);
    else
        add_soa(r, zone, zlen);
}

/* answer_infra answers for the harness's own zone (bench.test), which holds the validation zone. */
static void answer_infra(struct reply *r, const struct query *q)
{
    const uint8_t *name = q->lname;
    size_t len = q->qlen;
    const struct conf *c = &g_conf;
    r->aa = 1;
    if (name_eq(name, len, &c->vns)) {
        /* The validation zone's server: certfleet's own, at its --dns-listen address. */
        r->aa = !in_zone(name, len, &c->vzone);
        answer_addr(r, q, &c->vns_addr, c->infra.w, c->infra.len);
        return;
    }
    if (in_zone(name, len, &c->vzone)) {
        /*
         * Delegated to certfleet (RFC 1034 §4.2.1): the resolver answers the
         * NS question as if it had asked the child; anything else gets the
         * referral, which the propagation check does not need.
         */
        r->aa = 0;
        if (name_eq(name, len, &c->vzone) && q->qtype == DNSWIRE_TYPE_NS && q->h.rd) {
            add_name_rr(r, DNSWIRE_SECTION_ANSWER, c->vzone.w, c->vzone.len, DNSWIRE_TYPE_NS,
                        c->vns.w, c->vns.len);
        } else {
            add_name_rr(r, DNSWIRE_SECTION_AUTHORITY, c->vzone.w, c->vzone.len, DNSWIRE_TYPE_NS,
                        c->vns.w, c->vns.len);
        }
        if (in_zone(c->vns.w, c->vns.len, &c->vzone))
            add_addr_rr(r, DNSWIRE_SECTION_ADDITIONAL, c->vns.w, c->vns.len, &c->vns_addr);
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (name_eq(name, len, &c->ns[i])) {
            answer_addr(r, q, &c->ns_addr[i], c->infra.w, c->infra.len);
            return;
        }
    }
    if (name_eq(name, len, &c->edge)) {
        if (q->qtype == DNSWIRE_TYPE_A || q->qtype == DNSWIRE_TYPE_ANY) {
            struct dnswire_rdata rdv = {.type = DNSWIRE_TYPE_A};
            memcpy(rdv.u.a, c->edge_a, 4);
            add_rr(r, DNSWIRE_SECTION_ANSWER, q->qname, q->qlen, c->ttl, &rdv);
        } else {
            add_soa(r, c->infra.w, c->infra.len);
        }
        return;
    }
    if (name_eq(name, len, &c->infra)) {
        if (q->qtype == DNSWIRE_TYPE_SOA || q->qtype == DNSWIRE_TYPE_ANY) {
            add_soa(r, c->infra.w, c->infra.len);
            r->rr[r->n - 1].sec = DNSWIRE_SECTION_ANSWER;
        }
        if (q->qtype == DNSWIRE_TYPE_NS || q->qtype == DNSWIRE_TYPE_ANY)
            add_ns_pair(r, DNSWIRE_SECTION_ANSWER, c->infra.w, c->infra.len);
        if (r->n == 0)
            add_soa(r, c->infra.w, c->infra.len);
        return;
    }
    /* Empty non-terminals above the names that exist answer NODATA, the rest NXDOMAIN. */
    const struct wname *known[] = {&c->edge, &c->vzone, &c->ns[0], &c->ns[1], &c->vns};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (dnswire_name_in_zone(known[i]->w, known[i]->len, name, len)) {
            add_soa(r, c->infra.w, c->infra.len);
            return;
        }
    }
    r->rcode = DNSWIRE_RCODE_NXDOMAIN;
    add_soa(r, c->infra.w, c->infra.len);
}

/*
 * write_reply composes the message for q into out (cap octets, at most
 * limit used). Returns its length.
 */
static size_t write_reply(const struct query *q, const struct reply *r, uint8_t *out, size_t cap,
                          size_t limit)
{
    struct dnswire_writer wr;
    struct dnswire_header h;
    memset(&h, 0, sizeof(h));
    h.id = q->h.id;
    h.qr = 1;
    h.opcode = q->h.opcode;
    h.rd = q->h.rd;
    h.ra = 1;
    h.aa = (uint8_t)r->aa;
    h.rcode = r->rcode;
    if (limit > cap)
        limit = cap;
    dnswire_writer_init(&wr, out, limit);
    if (dnswire_write_header(&wr, &h) != 0)
        return 0;
    if (q->qlen && dnswire_write_question(&wr, q->qname, q->qlen, q->qtype, q->qclass) != 0)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < r->n && rc == 0; i++)
        rc = dnswire_write_rr(&wr, r->rr[i].sec, r->rr[i].name, r->rr[i].name_len, DNSWIRE_CLASS_IN,
                              r->rr[i].ttl, &r->rr[i].rd);
    if (rc == CF_ETOOBIG)
        dnswire_writer_truncate(&wr);
    if (q->edns)
        dnswire_write_opt(&wr, EDNS_MAX, 0);
    return wr.len;
}

enum act { ACT_SEND, ACT_DROP };

/*
 * answer turns one query (len octets) arriving on listen address idx into
 * an answer in out (cap octets), its length in *outlen; udp says whether the
 * size limits of UDP apply. Returns ACT_DROP when nothing is to be sent.
 */
static enum act answer(struct worker *w, int idx, const uint8_t *pkt, size_t len, uint8_t *out,
                       size_t cap, size_t *outlen, int udp)
{
    struct query q;
    struct reply r;
    const struct conf *c = w->c;
    int prc = parse_query(&q, pkt, len);
    ST_ADD(&w->st, queries, 1);
    if (prc < 0) {
        ST_ADD(&w->st, malformed, 1);
        return ACT_DROP;
    }
    r.rcode = DNSWIRE_RCODE_NOERROR;
    r.aa = 0;
    r.n = 0;
    if (prc > 0) {
        r.rcode = DNSWIRE_RCODE_FORMERR;
        q.qlen = 0;
        goto out_write;
    }
    if (q.h.rd)
        ST_ADD(&w->st, resolver, 1);
    else
        ST_ADD(&w->st, auth, 1);
    if (q.h.opcode != DNSWIRE_OPCODE_QUERY) {
        r.rcode = DNSWIRE_RCODE_NOTIMP;
        goto out_write;
    }
    if (q.qclass != DNSWIRE_CLASS_IN && q.qclass != DNSWIRE_CLASS_ANY) {
        r.rcode = DNSWIRE_RCODE_REFUSED;
        goto out_write;
    }
    if ((c->p_timeout || c->p_servfail) &&
        (c->scope == SCOPE_ALL || (c->scope == SCOPE_AUTH) == !q.h.rd)) {
        if (c->p_timeout && rnd_ppm(w) < c->p_timeout) {
            ST_ADD(&w->st, dropped, 1);
            return ACT_DROP;
        }
        if (c->p_servfail && rnd_ppm(w) < c->p_servfail) {
            ST_ADD(&w->st, servfail_injected, 1);
            r.rcode = DNSWIRE_RCODE_SERVFAIL;
            goto out_write;
        }
    }
    if (in_zone(q.lname, q.qlen, &c->infra))
        answer_infra(&r, &q);
    else
        answer_customer(&r, &q, idx);
out_write:;
    size_t limit = cap;
    if (udp) {
        limit = DNSWIRE_UDP_MIN;
        if (q.edns && q.udp_size > limit)
            limit = q.udp_size < EDNS_MAX ? q.udp_size : EDNS_MAX;
    }
    *outlen = write_reply(&q, &r, out, cap, limit);
    if (*outlen == 0)
        return ACT_DROP;
    ST_ADD(&w->st, rcode[r.rcode & 15], 1);
    ST_ADD(&w->st, answered, 1);
    return ACT_SEND;
}

/* ---- delayed answers (--latency-ms) ---- */

static void heap_push(struct worker *w, struct delayed *d)
{
    if (w->nheap == w->capheap) {
        w->capheap = w->capheap ? w->capheap * 2 : 1024;
        w->heap = xrealloc(w->heap, w->capheap * sizeof(*w->heap));
    }
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p]->due_ns <= d->due_ns)
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = d;
}

static struct delayed *heap_pop(struct worker *w)
{
    struct delayed *top = w->heap[0], *last = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct delayed *best = last;
        if (l < w->nheap && w->heap[l]->due_ns < best->due_ns) {
            m = l;
            best = w->heap[l];
        }
        if (l + 1 < w->nheap && w->heap[l + 1]->due_ns < best->due_ns)
            m = l + 1;
        if (m == i)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->nheap)
        w->heap[i] = last;
    return top;
}

static void on_delay_timer(uv_timer_t *t);

static void arm_delay_timer(struct worker *w)
{
    if (!w->nheap)
        return;
    uint64_t now = cf_mono_ns(), due = w->heap[0]->due_ns;
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    uv_timer_start(&w->delay_timer, on_delay_timer, ms, 0);
}

/* send_batch sends n prepared messages of w->smsg on fd; what the socket refuses is dropped. */
static void send_batch(struct worker *w, int fd, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int k = sendmmsg(fd, w->smsg + done, (unsigned)(n - done), MSG_DONTWAIT);
        if (k > 0) {
            done += (size_t)k;
        } else if (errno != EINTR) {
            /* EAGAIN: the socket buffer is full; the client retries as after a loss. */
            ST_ADD(&w->st, send_errors, n - done);
            return;
        }
    }
}

static void on_delay_timer(uv_timer_t *t)
{
    struct worker *w = container_of(t, struct worker, delay_timer);
    uint64_t now = cf_mono_ns() + 500000; /* within half a millisecond: due */
    while (w->nheap && w->heap[0]->due_ns <= now) {
        struct delayed *batch[BATCH];
        size_t n = 0;
        struct udp_sock *s = w->heap[0]->s;
        while (n < BATCH && w->nheap && w->heap[0]->due_ns <= now && w->heap[0]->s == s)
            batch[n++] = heap_pop(w);
        memset(w->smsg, 0, n * sizeof(w->smsg[0]));
        for (size_t i = 0; i < n; i++) {
            w->siov[i].iov_base = batch[i]->data;
            w->siov[i].iov_len = batch[i]->len;
            w->smsg[i].msg_hdr.msg_name = &batch[i]->to;
            w->smsg[i].msg_hdr.msg_namelen = batch[i]->tolen;
            w->smsg[i].msg_hdr.msg_iov = &w->siov[i];
            w->smsg[i].msg_hdr.msg_iovlen = 1;
        }
        send_batch(w, s->fd, n);
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
    }
    arm_delay_timer(w);
}

/* hold queues an answer for --latency-ms (plus up to --jitter-ms). */
static void hold(struct worker *w, struct udp_sock *s, const struct sockaddr_storage *to,
                 socklen_t tolen, const uint8_t *data, size_t len)
{
    const struct conf *c = w->c;
    /* Bounded: a flood at high latency must not take all memory. */
    if (w->nheap >= 4u << 20) {
        ST_ADD(&w->st, delay_overflow, 1);
        return;
    }
    struct delayed *d = xmalloc(sizeof(*d) + len);
    uint64_t delay_ms = c->latency_ms;
    if (c->jitter_ms)
        delay_ms += (uint64_t)rnd_ppm(w) * (c->jitter_ms + 1) / PPM;
    d->due_ns = cf_mono_ns() + delay_ms * 1000000;
    d->s = s;
    memcpy(&d->to, to, tolen);
    d->tolen = tolen;
    d->len = (uint16_t)len;
    memcpy(d->data, data, len);
    int first = w->nheap == 0 || d->due_ns < w->heap[0]->due_ns;
    heap_push(w, d);
    ST_ADD(&w->st, delayed, 1);
    if (first)
        arm_delay_timer(w);
}

/* ---- UDP ---- */

/*
 * on_udp_readable reads batches of queries with recvmmsg and answers each
 * batch with one sendmmsg, up to ROUNDS batches, then lets the loop serve
 * the other sockets (the poll handle fires again while data is waiting).
 */
static void on_udp_readable(uv_poll_t *p, int status, int events)
{
    struct udp_sock *s = container_of(p, struct udp_sock, poll);
    struct worker *w = s->w;
    int delay = w->c->latency_ms || w->c->jitter_ms;
    (void)events;
    if (status < 0)
        return;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t i = 0; i < BATCH; i++) {
            w->riov[i].iov_base = w->rx[i];
            w->riov[i].iov_len = RX_SLOT;
            memset(&w->rmsg[i].msg_hdr, 0, sizeof(w->rmsg[i].msg_hdr));
            w->rmsg[i].msg_hdr.msg_name = &w->raddr[i];
            w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->raddr[i]);
            w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
            w->rmsg[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(s->fd, w->rmsg, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return; /* EAGAIN: drained */
        ST_ADD(&w->st, udp, (uint64_t)n);
        size_t nout = 0;
        for (int i = 0; i < n; i++) {
            size_t alen;
            if (w->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
                ST_ADD(&w->st, malformed, 1);
                continue;
            }
            if (answer(w, s->idx, w->rx[i], w->rmsg[i].msg_len, w->tx[nout], TX_SLOT, &alen, 1) !=
                ACT_SEND)
                continue;
            if (delay) {
                hold(w, s, &w->raddr[i], w->rmsg[i].msg_hdr.msg_namelen, w->tx[nout], alen);
                continue;
            }
            w->siov[nout].iov_base = w->tx[nout];
            w->siov[nout].iov_len = alen;
            memset(&w->smsg[nout], 0, sizeof(w->smsg[nout]));
            w->smsg[nout].msg_hdr.msg_name = &w->raddr[i];
            w->smsg[nout].msg_hdr.msg_namelen = w->rmsg[i].msg_hdr.msg_namelen;
            w->smsg[nout].msg_hdr.msg_iov = &w->siov[nout];
            w->smsg[nout].msg_hdr.msg_iovlen = 1;
            nout++;
        }
        if (nout)
            send_batch(w, s->fd, nout);
        if (n < BATCH)
            return;
    }
}

/* open_udp makes one UDP socket bound to ss (SO_REUSEPORT when several threads share it). */
static int open_udp(const struct sockaddr_storage *ss, int reuseport, int *out_fd)
{
    int one = 1, size = 8 << 20;
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto out_close;
    /* Ride out bursts: the kernel caps these at rmem_max and wmem_max. */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    if (bind(fd, (const struct sockaddr *)ss,
             ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) !=
        0)
        goto out_close;
    *out_fd = fd;
    return 0;
out_close:;
    int e = -errno;
    close(fd);
    return e;
}

/* ---- TCP (RFC 7766, minimal) ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct tcp_conn *t = container_of((uv_tcp_t *)h, struct tcp_conn, tcp);
    free(t->rbuf);
    free(t);
}

static void conn_close(struct tcp_conn *t)
{
    if (t->closing)
        return;
    t->closing = 1;
    uv_close((uv_handle_t *)&t->tcp, on_conn_closed);
}

static void on_tcp_written(uv_write_t *req, int status)
{
    (void)status;
    free(container_of(req, struct tcp_write, req));
}

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tcp_conn *t = container_of((uv_tcp_t *)h, struct tcp_conn, tcp);
    (void)suggested;
    if (t->rcap - t->rlen < 4096) {
        t->rcap = t->rcap ? t->rcap * 2 : 8192;
        if (t->rcap > 4 * (2 + TCP_MSG_MAX))
            t->rcap = 4 * (2 + TCP_MSG_MAX);
        t->rbuf = xrealloc(t->rbuf, t->rcap);
    }
    buf->base = (char *)t->rbuf + t->rlen;
    buf->len = t->rcap - t->rlen;
}

static void on_tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_conn *t = container_of((uv_tcp_t *)st, struct tcp_conn, tcp);
    struct worker *w = t->w;
    size_t off = 0;
    (void)buf;
    if (nread < 0) {
        conn_close(t);
        return;
    }
    t->rlen += (size_t)nread;
    while (t->rlen - off >= 2) {
        size_t mlen = get16(t->rbuf + off), alen;
        if (t->rlen - off - 2 < mlen)
            break;
        ST_ADD(&w->st, tcp, 1);
        enum act a =
            answer(w, t->idx, t->rbuf + off + 2, mlen, w->tcpbuf + 2, TCP_MSG_MAX, &alen, 0);
        off += 2 + mlen;
        if (a != ACT_SEND)
            continue;
        put16(w->tcpbuf, (uint16_t)alen);
        struct tcp_write *wr = xmalloc(sizeof(*wr) + alen + 2);
        memcpy(wr->data, w->tcpbuf, alen + 2);
        uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)(alen + 2));
        if (uv_write(&wr->req, st, &b, 1, on_tcp_written) != 0) {
            free(wr);
            conn_close(t);
            return;
        }
    }
    memmove(t->rbuf, t->rbuf + off, t->rlen - off);
    t->rlen -= off;
    if (t->rlen == t->rcap) /* a message larger than the buffer: not DNS */
        conn_close(t);
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    struct tcp_listener *l = container_of((uv_tcp_t *)server, struct tcp_listener, tcp);
    if (status < 0)
        return;
    struct tcp_conn *t = xcalloc(1, sizeof(*t));
    t->w = l->w;
    t->idx = l->idx;
    uv_tcp_init(&l->w->loop, &t->tcp);
    if (uv_accept(server, (uv_stream_t *)&t->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&t->tcp, on_tcp_alloc, on_tcp_read) != 0)
        conn_close(t);
}

/* ---- stats ---- */

static void stats_json(struct buf *b)
{
    static const char *const rcodes[16] = {
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",  "11",       "12",     "13",      "14",       "15"};
    uint64_t sum[12] = {0}, rc[16] = {0};
    for (int t = 0; t < g_conf.threads; t++) {
        struct stats *s = &g_workers[t]->st;
        sum[0] += ST_GET(s, queries);
        sum[1] += ST_GET(s, udp);
        sum[2] += ST_GET(s, tcp);
        sum[3] += ST_GET(s, resolver);
        sum[4] += ST_GET(s, auth);
        sum[5] += ST_GET(s, answered);
        sum[6] += ST_GET(s, dropped);
        sum[7] += ST_GET(s, servfail_injected);
        sum[8] += ST_GET(s, delayed);
        sum[9] += ST_GET(s, malformed);
        sum[10] += ST_GET(s, send_errors);
        sum[11] += ST_GET(s, delay_overflow);
        for (int i = 0; i < 16; i++)
            rc[i] += ST_GET(s, rcode[i]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double up = (double)(cf_mono_ns() - g_started_ns) / 1e9;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    char mix[256];
    fleet_mix_format(mix, sizeof(mix), &g_conf.mix);
    buf_printf(b,
               "{\"uptime_s\":%.3f,\"cpu_s\":%.3f,\"peak_rss_bytes\":%lld,\"threads\":%d,"
               "\"mix\":\"%s\",\"queries\":%llu,\"udp\":%llu,\"tcp\":%llu,\"resolver\":%llu,"
               "\"authoritative\":%llu,\"answered\":%llu,\"dropped_injected\":%llu,"
               "\"servfail_injected\":%llu,\"delayed\":%llu,\"malformed\":%llu,"
               "\"send_errors\":%llu,\"delay_overflow\":%llu,\"rcodes\":{",
               up, cpu, (long long)ru.ru_maxrss * 1024, g_conf.threads, mix,
               (unsigned long long)sum[0], (unsigned long long)sum[1], (unsigned long long)sum[2],
               (unsigned long long)sum[3], (unsigned long long)sum[4], (unsigned long long)sum[5],
               (unsigned long long)sum[6], (unsigned long long)sum[7], (unsigned long long)sum[8],
               (unsigned long long)sum[9], (unsigned long long)sum[10],
               (unsigned long long)sum[11]);
    int first = 1;
    for (int i = 0; i < 16; i++) {
        if (!rc[i])
            continue;
        buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", rcodes[i], (unsigned long long)rc[i]);
        first = 0;
    }
    buf_puts(b, "}}\n");
}

/* write_stats writes the stats file atomically (a temporary file renamed). */
static void write_stats(void)
{
    struct buf b;
    char tmp[4200];
    if (!g_conf.stats_path)
        return;
    buf_init(&b);
    stats_json(&b);
    str_fmt(tmp, sizeof(tmp), "%s.tmp", g_conf.stats_path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    ok = f && fclose(f) == 0 && ok;
    if (!ok || rename(tmp, g_conf.stats_path) != 0)
        fprintf(stderr, "certfleet-mockdns: cannot write %s: %s\n", g_conf.stats_path,
                strerror(errno));
    buf_cleanup(&b);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    write_stats();
    if (signum == SIGUSR1)
        return;
    /* The other threads' loops never end by themselves: the process ends here. */
    fflush(stdout);
    _exit(0);
}

/* ---- setup ---- */

static int worker_start_sockets(struct worker *w, char *err, size_t errlen)
{
    const struct conf *c = w->c;
    for (size_t i = 0; i < c->n_listen; i++) {
        struct udp_sock *s = &w->udp[w->n_udp];
        int rc = open_udp(&c->listen[i], c->threads > 1, &s->fd);
        if (rc) {
            str_fmt(err, errlen, "udp %s: %s", c->listen_text[i], strerror(-rc));
            return -1;
        }
        s->w = w;
        s->idx = (int)i;
        w->n_udp++;
        uv_poll_init(&w->loop, &s->poll, s->fd);
        uv_poll_start(&s->poll, UV_READABLE, on_udp_readable);
        if (w->id != 0)
            continue;
        struct tcp_listener *l = &w->tcpl[w->n_tcp];
        l->w = w;
        l->idx = (int)i;
        uv_tcp_init(&w->loop, &l->tcp);
        w->n_tcp++;
        rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&c->listen[i], 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_tcp_connection);
        if (rc) {
            str_fmt(err, errlen, "tcp %s: %s", c->listen_text[i], uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static const char usage_text[] =
    "usage: certfleet-mockdns --listen ADDR:PORT [--listen ADDR:PORT] [options]\n"
    "  --listen ADDR:PORT       UDP and TCP; the first address is the resolver and ns1 of\n"
    "                           every customer zone, the second (if any) ns2 (repeatable, 8)\n"
    "  --mix SPEC               host classes in percent (default delegated=100):\n"
    "                           delegated=90,notlive=3,propagating=2,wrong=2,missing=3\n"
    "  --validation-zone ZONE   certfleet's validation zone (default acme.cdn.bench.test)\n"
    "  --validation-ns NAME=ADDR  its server: certfleet's --dns-listen address\n"
    "                           (default ns1.<validation zone>=127.0.0.1)\n"
    "  --infra-zone ZONE        the harness's own zone (default bench.test)\n"
    "  --cdn-zone ZONE          live hosts CNAME to edge.<ZONE> (default cdn.<infra zone>)\n"
    "  --edge-addr ADDR         edge.<cdn zone>'s A record (default 192.0.2.1)\n"
    "  --zone-labels N          customer zones are the last N labels of a name (default 2)\n"
    "  --ttl S                  TTL of answers (default 300; negative answers 60)\n"
    "  --timeout P              drop P percent of the questions (0..100, fractions allowed)\n"
    "  --servfail P             answer P percent of the questions with SERVFAIL\n"
    "  --fault-scope all|auth|resolver   which questions the faults hit (default all)\n"
    "  --latency-ms N           hold every UDP answer back N ms ...\n"
    "  --jitter-ms N            ... plus a uniform 0..N ms\n"
    "  --threads N              loops with SO_REUSEPORT sockets (default 1)\n"
    "  --seed N                 seed of the fault injection (default: the time)\n"
    "  --stats-json FILE        written on SIGUSR1, SIGTERM and SIGINT\n"
    "Prints one JSON line on stdout once it listens. Stops on SIGTERM or SIGINT.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "certfleet-mockdns: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage_text);
    va_end(ap);
    return 2;
}

static int parse_pct(const char *s, uint32_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v <= 100))
        return -1;
    *out = (uint32_t)(v * 10000.0 + 0.5);
    return 0;
}

static int parse_uint(const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_sockaddr(const char *spec, struct sockaddr_storage *ss, int dflt_port)
{
    char host[64];
    int port;
    memset(ss, 0, sizeof(*ss));
    if (config_parse_addr(spec, host, sizeof(host), &port, dflt_port) != 0)
        return -1;
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

enum {
    OPT_LISTEN = 256,
    OPT_MIX,
    OPT_VZONE,
    OPT_VNS,
    OPT_INFRA,
    OPT_CDN,
    OPT_EDGE,
    OPT_ZONE_LABELS,
    OPT_TTL,
    OPT_TIMEOUT,
    OPT_SERVFAIL,
    OPT_SCOPE,
    OPT_LATENCY,
    OPT_JITTER,
    OPT_THREADS,
    OPT_SEED,
    OPT_STATS,
    OPT_HELP,
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"mix", required_argument, NULL, OPT_MIX},
        {"validation-zone", required_argument, NULL, OPT_VZONE},
        {"validation-ns", required_argument, NULL, OPT_VNS},
        {"infra-zone", required_argument, NULL, OPT_INFRA},
        {"cdn-zone", required_argument, NULL, OPT_CDN},
        {"edge-addr", required_argument, NULL, OPT_EDGE},
        {"zone-labels", required_argument, NULL, OPT_ZONE_LABELS},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"servfail", required_argument, NULL, OPT_SERVFAIL},
        {"fault-scope", required_argument, NULL, OPT_SCOPE},
        {"latency-ms", required_argument, NULL, OPT_LATENCY},
        {"jitter-ms", required_argument, NULL, OPT_JITTER},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"stats-json", required_argument, NULL, OPT_STATS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct conf *c = &g_conf;
    const char *vzone = "acme.cdn.bench.test", *vns = NULL, *infra = "bench.test", *cdn = NULL;
    const char *edge_addr = "192.0.2.1";
    char err[512], text[DNSWIRE_NAME_MAX + 64];
    uint32_t v;
    int opt;
    c->ttl = 300;
    c->neg_ttl = 60;
    c->zone_labels = 2;
    c->threads = 1;
    c->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    fleet_mix_parse(&c->mix, "delegated=100", err, sizeof(err));
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            if (c->n_listen == MAX_LISTEN)
                return usage_error("at most %d --listen", MAX_LISTEN);
            if (parse_sockaddr(optarg, &c->listen[c->n_listen], 53) != 0)
                return usage_error("--listen '%s' is not ADDR:PORT", optarg);
            str_copy(c->listen_text[c->n_listen], sizeof(c->listen_text[0]), optarg);
            c->n_listen++;
            break;
        case OPT_MIX:
            if (fleet_mix_parse(&c->mix, optarg, err, sizeof(err)) != 0)
                return usage_error("--mix: %s", err);
            break;
        case OPT_VZONE:
            vzone = optarg;
            break;
        case OPT_VNS:
            vns = optarg;
            break;
        case OPT_INFRA:
            infra = optarg;
            break;
        case OPT_CDN:
            cdn = optarg;
            break;
        case OPT_EDGE:
            edge_addr = optarg;
            break;
        case OPT_ZONE_LABELS:
            if (parse_uint(optarg, 10, &v) != 0 || v < 1)
                return usage_error("--zone-labels '%s' must be 1 to 10", optarg);
            c->zone_labels = (int)v;
            break;
        case OPT_TTL:
            if (parse_uint(optarg, 86400, &c->ttl) != 0)
                return usage_error("--ttl '%s' must be 0 to 86400", optarg);
            break;
        case OPT_TIMEOUT:
            if (parse_pct(optarg, &c->p_timeout) != 0)
                return usage_error("--timeout '%s' is a percentage (0..100)", optarg);
            break;
        case OPT_SERVFAIL:
            if (parse_pct(optarg, &c->p_servfail) != 0)
                return usage_error("--servfail '%s' is a percentage (0..100)", optarg);
            break;
        case OPT_SCOPE:
            if (strcmp(optarg, "all") == 0)
                c->scope = SCOPE_ALL;
            else if (strcmp(optarg, "auth") == 0)
                c->scope = SCOPE_AUTH;
            else if (strcmp(optarg, "resolver") == 0)
                c->scope = SCOPE_RESOLVER;
            else
                return usage_error("--fault-scope '%s': all, auth or resolver", optarg);
            break;
        case OPT_LATENCY:
            if (parse_uint(optarg, 60000, &c->latency_ms) != 0)
                return usage_error("--latency-ms '%s' must be 0 to 60000", optarg);
            break;
        case OPT_JITTER:
            if (parse_uint(optarg, 60000, &c->jitter_ms) != 0)
                return usage_error("--jitter-ms '%s' must be 0 to 60000", optarg);
            break;
        case OPT_THREADS:
            if (parse_uint(optarg, MAX_THREADS, &v) != 0 || v < 1)
                return usage_error("--threads '%s' must be 1 to 16", optarg);
            c->threads = (int)v;
            break;
        case OPT_SEED:
            c->seed = strtoull(optarg, NULL, 10);
            break;
        case OPT_STATS:
            c->stats_path = optarg;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (c->n_listen == 0)
        return usage_error("%s is required", "--listen");

    /* The names of the namespace (header comment). */
    str_fmt(text, sizeof(text), "%s", cdn ? cdn : "");
    if (!cdn)
        str_fmt(text, sizeof(text), "cdn.%s", infra);
    if (wname_set(&c->infra, infra) || wname_set(&c->cdn, text) || wname_set(&c->vzone, vzone))
        return usage_error("bad zone name in %s", "--infra-zone, --cdn-zone or --validation-zone");
    str_fmt(text, sizeof(text), "edge.%s", cdn ? cdn : "");
    if (!cdn)
        str_fmt(text, sizeof(text), "edge.cdn.%s", infra);
    if (wname_set(&c->edge, text))
        return usage_error("bad --cdn-zone %s", cdn ? cdn : infra);
    if (!in_zone(c->vzone.w, c->vzone.len, &c->infra) ||
        !in_zone(c->edge.w, c->edge.len, &c->infra))
        return usage_error("the validation and CDN zones must be below --infra-zone %s", infra);
    for (int i = 0; i < 2; i++) {
        str_fmt(text, sizeof(text), "ns%d.dns.%s", i + 1, infra);
        wname_set(&c->ns[i], text);
        c->ns_addr[i] = c->listen[(size_t)i < c->n_listen ? i : 0];
    }
    str_fmt(text, sizeof(text), "wrong.%s", infra);
    wname_set(&c->wrong, text);
    str_fmt(text, sizeof(text), "hostmaster.%s", infra);
    wname_set(&c->hostmaster, text);
    {
        char nsname[DNSWIRE_NAME_MAX + 1], nsaddr[64] = "127.0.0.1";
        const char *eq = vns ? strchr(vns, '=') : NULL;
        if (vns && (!eq || (size_t)(eq - vns) >= sizeof(nsname) || strlen(eq + 1) >= 64))
            return usage_error("--validation-ns '%s' is not NAME=ADDR", vns);
        if (vns) {
            memcpy(nsname, vns, (size_t)(eq - vns));
            nsname[eq - vns] = '\0';
            str_copy(nsaddr, sizeof(nsaddr), eq + 1);
        } else {
            str_fmt(nsname, sizeof(nsname), "ns1.%s", vzone);
        }
        if (wname_set(&c->vns, nsname) || parse_sockaddr(nsaddr, &c->vns_addr, 53) != 0)
            return usage_error("--validation-ns '%s' is not NAME=ADDR", vns ? vns : nsname);
    }
    if (inet_pton(AF_INET, edge_addr, c->edge_a) != 1)
        return usage_error("--edge-addr '%s' is not an IPv4 address", edge_addr);
    /* Names were lower-cased by dnswire_name_from_text: comparisons are memcmp. */

    signal(SIGPIPE, SIG_IGN);
    g_started_ns = cf_mono_ns();
    for (int t = 0; t < c->threads; t++) {
        struct worker *w = xcalloc(1, sizeof(*w));
        w->id = t;
        w->c = c;
        w->rng = (c->seed + (uint64_t)t * UINT64_C(0x9E3779B97F4A7C15)) | 1;
        uv_loop_init(&w->loop);
        uv_timer_init(&w->loop, &w->delay_timer);
        g_workers[t] = w;
        if (worker_start_sockets(w, err, sizeof(err)) != 0) {
            fprintf(stderr, "certfleet-mockdns: %s\n", err);
            return 1;
        }
    }
    uv_signal_t sig[3];
    int signums[3] = {SIGTERM, SIGINT, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&g_workers[0]->loop, &sig[i]);
        uv_signal_start(&sig[i], on_signal, signums[i]);
    }
    for (int t = 1; t < c->threads; t++)
        uv_thread_create(&g_workers[t]->thread, worker_main, g_workers[t]);
    char mix[256];
    fleet_mix_format(mix, sizeof(mix), &c->mix);
    printf("{\"listening\":[");
    for (size_t i = 0; i < c->n_listen; i++)
        printf("%s\"%s\"", i ? "," : "", c->listen_text[i]);
    printf("],\"threads\":%d,\"mix\":\"%s\"}\n", c->threads, mix);
    fflush(stdout);
    uv_run(&g_workers[0]->loop, UV_RUN_DEFAULT);
    return 0;
}
