/*
 * checks.c - delegation and liveness checks on the event loop.
 *
 * A delegation check goes: zone cut of _acme-challenge.<base> (a cached
 * ancestor apex, else a walk up the name through the resolver) -> the zone's NS
 * names and their addresses (both cached) -> one CNAME query per address,
 * recursion off -> CNAME
 * chains that leave the answer are followed through the resolver ->
 * classification. A referral from a cached parent zone's servers means a
 * deeper zone cut: the check then walks SOA records from the name itself.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "checks.h"
#include "dnschan.h"
#include "dnswire.h"
#include "err.h"
#include "record.h"
#include "resq.h"
#include "store.h"
#include "strmap.h"
#include "udpq.h"

#define MAX_WALK 12
/* Internal per-server state: the CNAME target left the answer and must be followed. */
#define SERVER_CHAIN 100
#define SERVER_REFERRAL 101

struct cidr {
    int family;
    uint8_t addr[16];
    int bits;
};

enum zone_state { Z_RESOLVING, Z_READY, Z_FAILED };

struct zone_info {
    struct dns_checker *dc;
    char apex[HOSTNAME_MAX + 1];
    enum zone_state state;
    int64_t expires_ms;
    uint32_t ttl;
    size_t naddrs;
    char addrs[DNS_CHECK_MAX_SERVERS][48];
    struct udpq *uq[DNS_CHECK_MAX_SERVERS]; /* each address's client, once looked up */
    size_t pending; /* the NS question, then the nameserver names being resolved */
    char err[128];
    struct check *waiters;
};

/*
 * struct ns_entry: the addresses of one nameserver name, cached for the run
 * (bounded by TTL like the zones). Customer zones cluster on a few hundred
 * DNS providers, so most zones name nameservers whose addresses are known
 * already: one NS question per zone, not one plus an A and an AAAA per
 * nameserver. Zones waiting for a lookup under way join it.
 */
enum ns_state { NS_RESOLVING, NS_DONE };

struct ns_zwait {
    struct zone_info *z;
    struct ns_zwait *next;
};

struct ns_entry {
    struct dns_checker *dc;
    char name[HOSTNAME_MAX + 1];
    enum ns_state state;
    int complete;       /* A and AAAA both answered: reusable until expires_ms */
    int64_t expires_ms; /* 0: not reusable (a lookup failed; the next zone asks again) */
    uint32_t ttl;
    size_t pending; /* of the A and AAAA questions */
    size_t naddrs;
    char addrs[DNS_CHECK_MAX_SERVERS][48];
    struct ns_zwait *waiters;
    struct nsq {
        struct ns_entry *e;
        uint16_t qtype;
    } q[2];
};

enum check_kind { K_DELEG, K_LIVE, K_TXT };

struct check;

/* What a question's callback gets: its check and which server (or A/AAAA) it was for. */
struct qctx {
    struct check *c;
    size_t idx;
};

struct check {
    /* Scalars first: new_check clears up to qname, and only the first octet of each string. */
    struct dns_checker *dc;
    enum check_kind kind;
    struct check *next; /* in the queue or a zone's waiters */
    size_t qwire_len, ewire_len;
    int walk_steps;
    int full_walk;
    uint16_t walk_qtype; /* the walk step's question: CNAME, or NS at the registered domain */
    int walk_ns_failed;  /* that NS question failed: ask CNAME there instead */
    size_t pending;
    dns_deleg_cb dcb;
    dns_live_cb lcb;
    dns_txt_cb tcb;
    void *arg;
    int chain_hops;
    int live_hit, live_err; /* liveness */
    char qname[HOSTNAME_MAX + 1];
    char cut[HOSTNAME_MAX + 1];
    char expected[HOSTNAME_MAX + 1];
    uint8_t qwire[DNSWIRE_NAME_MAX], ewire[DNSWIRE_NAME_MAX]; /* qname, expected in wire form */
    /*
     * The callbacks' contexts, one per index: at most one question per index
     * is outstanding (one per server, A and AAAA, or one walk or chain step),
     * so a question costs no allocation.
     */
    struct qctx qx[DNS_CHECK_MAX_SERVERS];
    char txt_value[STORE_TXT_MAX + 1];
    char walk_key[HOSTNAME_MAX + 1]; /* this check leads the walk for this domain */
    /* Following a chain that left the authoritative answer. */
    char chain_start[HOSTNAME_MAX + 1];
    char chain_cur[HOSTNAME_MAX + 1];
    char live_seen[HOSTNAME_MAX + 64];
    /*
     * The report of this check's kind. Last, and not cleared whole: the
     * server arrays are large and only the entries in use are written.
     */
    union {
        struct deleg_report dr;
        struct live_report lr;
        struct txt_report tr;
    };
};

/*
 * struct zindex: the zone cache, by a 64-bit hash of the apex (open
 * addressing, 0 = empty; equal hashes are told apart by the apex). Every check looks for a cached
 * zone at each ancestor of its name, and most of those names are no zone: a miss here costs one
 * probe into an array instead of a string map's probes, each a string compare.
 */
struct zindex {
    uint64_t *h;
    struct zone_info **z;
    size_t cap, n;
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    h ^= h >> 32;
    return h ? h : 1;
}

/* zindex_get returns the zone whose apex is name (hash h), or NULL. */
static struct zone_info *zindex_get(const struct zindex *zi, uint64_t h, const char *name)
{
    if (!zi->cap)
        return NULL;
    for (size_t i = h & (zi->cap - 1); zi->h[i]; i = (i + 1) & (zi->cap - 1))
        if (zi->h[i] == h && strcmp(zi->z[i]->apex, name) == 0)
            return zi->z[i];
    return NULL;
}

/* zindex_add adds z (apex hashing to h); the apex must not be in the index yet. */
static void zindex_add(struct zindex *zi, uint64_t h, struct zone_info *z)
{
    if ((zi->n + 1) * 2 > zi->cap) {
        size_t ncap = zi->cap ? zi->cap * 2 : 1024;
        uint64_t *nh = xcalloc(ncap, sizeof(*nh));
        struct zone_info **nz = xcalloc(ncap, sizeof(*nz));
        for (size_t i = 0; i < zi->cap; i++) {
            if (!zi->h[i])
                continue;
            size_t k = zi->h[i] & (ncap - 1);
            while (nh[k])
                k = (k + 1) & (ncap - 1);
            nh[k] = zi->h[i];
            nz[k] = zi->z[i];
        }
        free(zi->h);
        free(zi->z);
        zi->h = nh;
        zi->z = nz;
        zi->cap = ncap;
    }
    size_t i = h & (zi->cap - 1);
    while (zi->h[i])
        i = (i + 1) & (zi->cap - 1);
    zi->h[i] = h;
    zi->z[i] = z;
    zi->n++;
}

struct dns_checker {
    uv_loop_t *loop;
    struct resq *resolver;
    struct strmap auth;    /* "addr" -> struct udpq */
    struct strmap nsnames; /* nameserver name -> struct ns_entry (its addresses) */
    struct zindex zindex;  /* apex -> struct zone_info, by hash: most lookups miss */
    struct strmap walks;   /* registered domain -> struct walk (a zone-cut walk under way) */
    char **suffixes;
    size_t nsuffixes;
    struct cidr *cidrs;
    size_t ncidrs;
    int auth_timeout_ms, auth_tries;
    int auth_port;
    int cache_ttl_max;
    size_t max_checks, active, queued;
    struct check *queue_head, *queue_tail;
    struct waiting *wait_head, *wait_tail; /* delegation/liveness checks not started yet */
    size_t nwaiting;
    int closing;
    struct dns_checker_stats stats;
    struct check *spare; /* finished checks kept for reuse */
    size_t nspare;
};

#define CHECK_SPARES 4096

/*
 * struct waiting: a delegation or liveness check asked for while max_checks
 * are under way. A run asks for every host of the fleet at once; holding
 * each as a full struct check (about 10 KB) until it can start was most of
 * a run's memory per pipeline. This is what starting it later needs.
 */
struct waiting {
    struct waiting *next;
    enum check_kind kind;
    dns_deleg_cb dcb;
    dns_live_cb lcb;
    void *arg;
    char *host, *expected;
};
static void launch(struct dns_checker *dc, enum check_kind kind, const char *host,
                   const char *expected, dns_deleg_cb dcb, dns_live_cb lcb, void *arg);

/* launch_waiting takes the first waiting check off the line and launches it. */
static void launch_waiting(struct dns_checker *dc)
{
    struct waiting *w = dc->wait_head;
    dc->wait_head = w->next;
    if (!dc->wait_head)
        dc->wait_tail = NULL;
    dc->nwaiting--;
    launch(dc, w->kind, w->host, w->expected, w->dcb, w->lcb, w->arg);
    free(w->host);
    free(w->expected);
    free(w);
}

/*
 * struct walk: one zone-cut walk at a time per registered domain. Hosts of a
 * customer usually share a zone; when a thousand of them start together,
 * one walks and the others wait for its result instead of asking the
 * resolver the same questions a thousand times.
 */
struct walk {
    int active; /* a check is walking */
    struct check *waiters;
};

static void start_check(struct check *c);
static void soa_walk(struct check *c);
static void zone_ready(struct check *c, struct zone_info *z);
static void follow_next_chain(struct check *c);
static void walk_release(struct check *c);
static size_t ns_names(const struct dnswire_msg *m, const char *apex,
                       char (*names)[DNSWIRE_NAME_TEXT_MAX], uint32_t *ttl);
static void zone_set_ns(struct zone_info *z, char (*names)[DNSWIRE_NAME_TEXT_MAX], size_t nn);

/* ---- small helpers ---- */

/* lower lower-cases ASCII letters in place (names are ASCII: A-labels). */
static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + ('a' - 'A'));
}

/* name_text converts a wire name to lower-case text without the trailing dot. */
static int name_text(char *out, size_t cap, const uint8_t *wire, size_t len)
{
    if (dnswire_name_to_text(out, cap, wire, len) != 0)
        return -1;
    lower(out);
    return 0;
}

static int rr_owner_is(const struct dnswire_rr *rr, const char *name)
{
    char t[DNSWIRE_NAME_TEXT_MAX];
    return name_text(t, sizeof(t), rr->name, rr->name_len) == 0 && strcmp(t, name) == 0;
}

/*
 * parse_answer parses an answer and checks that it answers (name, qtype):
 * c-ares matches only the ID (NOCHECKRESP), and a hostile or confused
 * server must not get its answer for another name taken for ours.
 */
static int parse_answer(struct dnswire_msg *m, struct dnswire_msg_buf *mb, const uint8_t *ans,
                        size_t len, const char *name, uint16_t qtype)
{
    char q[DNSWIRE_NAME_TEXT_MAX];
    if (dnswire_msg_parse_buf(m, ans, len, mb) != 0)
        return CF_EPARSE;
    if (m->qdcount != 1 || m->qd[0].qtype != qtype || !m->hdr.qr ||
        name_text(q, sizeof(q), m->qd[0].name, m->qd[0].name_len) != 0 || strcmp(q, name) != 0) {
        dnswire_msg_cleanup(m);
        return CF_EPROTO;
    }
    return 0;
}

static const char *parse_error_text(int rc)
{
    return rc == CF_EPROTO ? "answer for another question" : "malformed answer";
}

/* parent returns the name one label up, or NULL at a single label. */
static const char *parent(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? dot + 1 : NULL;
}

/* is_ancestor_or_self: zone == name, or name ends with "." zone. */
static int is_ancestor_or_self(const char *zone, const char *name)
{
    size_t zl = strlen(zone), nl = strlen(name);
    if (zl == 0)
        return 1;
    if (zl > nl)
        return 0;
    if (strcmp(name + nl - zl, zone) != 0)
        return 0;
    return zl == nl || name[nl - zl - 1] == '.';
}

static int parse_cidr(struct cidr *c, const char *s)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= sizeof(addr))
        return -1;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    c->bits = atoi(slash + 1);
    if (inet_pton(AF_INET, addr, c->addr) == 1) {
        c->family = AF_INET;
        return c->bits >= 0 && c->bits <= 32 ? 0 : -1;
    }
    if (inet_pton(AF_INET6, addr, c->addr) == 1) {
        c->family = AF_INET6;
        return c->bits >= 0 && c->bits <= 128 ? 0 : -1;
    }
    return -1;
}

static int cidr_match(const struct cidr *c, int family, const uint8_t *a)
{
    if (c->family != family)
        return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

static const char *suffix_match(const struct dns_checker *dc, const char *name)
{
    for (size_t i = 0; i < dc->nsuffixes; i++)
        if (is_ancestor_or_self(dc->suffixes[i], name))
            return dc->suffixes[i];
    return NULL;
}

/* now_ms is the loop's time (updated once per iteration: the caches' TTLs need no better). */
static int64_t now_ms(const struct dns_checker *dc)
{
    return (int64_t)uv_now(dc->loop);
}

/*
 * send_query asks name/type for c, through the resolver (uq NULL) or an
 * authoritative address's udpq client, where the name is c's own (qwire).
 * The answer goes to cb with &c->qx[idx], and counts in c->pending until
 * then. Returns 0, or the client's error (nothing pending).
 */
static int send_query(struct check *c, struct udpq *uq, const char *name, uint16_t type,
                      dns_answer_cb cb, size_t idx)
{
    struct qctx *q = &c->qx[idx];
    q->c = c;
    q->idx = idx;
    c->pending++;
    c->dc->stats.queries++;
    int rc = uq ? udpq_query_wire(uq, c->qwire, c->qwire_len, type, cb, q)
                : resq_query(c->dc->resolver, name, type, cb, q);
    if (rc)
        c->pending--;
    return rc;
}

/* ---- finishing and admission ---- */

static void finish(struct check *c)
{
    struct dns_checker *dc = c->dc;
    if (c->kind == K_DELEG)
        c->dcb(c->arg, &c->dr);
    else if (c->kind == K_LIVE)
        c->lcb(c->arg, &c->lr);
    else
        c->tcb(c->arg, &c->tr);
    /* Kept for reuse: a check is ~10 KB, past malloc's fast caches. */
    if (dc->nspare < CHECK_SPARES) {
        c->next = dc->spare;
        dc->spare = c;
        dc->nspare++;
    } else {
        free(c);
    }
    dc->active--;
    while (!dc->closing && dc->queue_head && dc->active < dc->max_checks) {
        struct check *n = dc->queue_head;
        dc->queue_head = n->next;
        if (!dc->queue_head)
            dc->queue_tail = NULL;
        dc->queued--;
        dc->active++;
        n->next = NULL;
        start_check(n);
    }
    while (!dc->closing && dc->wait_head && dc->active < dc->max_checks)
        launch_waiting(dc);
}

static void fail_check(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fail_check ends c with an error result and a message. */
static void fail_check(struct check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->kind == K_DELEG) {
        c->dr.result = DELEG_ERROR;
        str_vfmt(c->dr.error, sizeof(c->dr.error), fmt, ap);
    } else if (c->kind == K_TXT) {
        c->tr.ready = 0;
        str_vfmt(c->tr.error, sizeof(c->tr.error), fmt, ap);
    } else {
        c->lr.result = LIVE_ERROR;
        str_vfmt(c->lr.detail, sizeof(c->lr.detail), fmt, ap);
    }
    va_end(ap);
    walk_release(c);
    finish(c);
}

static void admit(struct dns_checker *dc, struct check *c)
{
    if (dc->closing) {
        dc->active++;
        fail_check(c, "checker closed");
        return;
    }
    if (dc->active >= dc->max_checks) {
        if (dc->queue_tail)
            dc->queue_tail->next = c;
        else
            dc->queue_head = c;
        dc->queue_tail = c;
        dc->queued++;
        return;
    }
    dc->active++;
    start_check(c);
}

/* ---- zone cuts ---- */

static const char *status_text(int status)
{
    if (status == CF_EDNS)
        return "truncated answer (TC)"; /* authoritative answers never need TCP */
    if (status == CF_ETOOBIG)
        return "answer larger than the EDNS size offered";
    return status == CF_ETIMEOUT ? "timed out" : cf_strerror(status);
}

static void wake_waiters(struct zone_info *z)
{
    struct check *w = z->waiters;
    z->waiters = NULL;
    while (w) {
        struct check *next = w->next;
        w->next = NULL;
        zone_ready(w, z);
        w = next;
    }
}

static void zone_done(struct dns_checker *dc, struct zone_info *z)
{
    if (z->state == Z_RESOLVING) {
        if (z->naddrs) {
            z->state = Z_READY;
            dc->stats.zones++;
        } else {
            z->state = Z_FAILED;
            if (!z->err[0])
                str_fmt(z->err, sizeof(z->err), "no address for any nameserver of %s", z->apex);
        }
    }
    uint32_t ttl = z->ttl < 30 ? 30 : z->ttl;
    if (ttl > (uint32_t)dc->cache_ttl_max)
        ttl = (uint32_t)dc->cache_ttl_max;
    /* A failure is cached briefly: the next hosts of the zone do not hammer a broken zone. */
    z->expires_ms = now_ms(dc) + (z->state == Z_READY ? (int64_t)ttl * 1000 : 30000);
    wake_waiters(z);
}

/* zone_add_addrs merges addrs into z's set (duplicates once, at most DNS_CHECK_MAX_SERVERS). */
static void zone_add_addrs(struct zone_info *z, const char (*addrs)[48], size_t n, uint32_t ttl)
{
    if (ttl < z->ttl)
        z->ttl = ttl;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t k = 0; k < z->naddrs && !dup; k++)
            dup = strcmp(z->addrs[k], addrs[i]) == 0;
        if (!dup && z->naddrs < DNS_CHECK_MAX_SERVERS)
            str_copy(z->addrs[z->naddrs++], sizeof(z->addrs[0]), addrs[i]);
    }
}

/* ns_done hands a finished lookup's addresses to the zones that waited for it. */
static void ns_done(struct ns_entry *e)
{
    struct dns_checker *dc = e->dc;
    uint32_t ttl = e->ttl < 30 ? 30 : e->ttl;
    if (ttl > (uint32_t)dc->cache_ttl_max)
        ttl = (uint32_t)dc->cache_ttl_max;
    e->state = NS_DONE;
    /*
     * Only a whole answer is reused: a lost AAAA answer must not hide a
     * server from every zone that names it for an hour. Every zone waiting
     * now gets what there is, as each zone did on its own before.
     */
    e->expires_ms = e->complete && e->naddrs ? now_ms(dc) + (int64_t)ttl * 1000 : 0;
    struct ns_zwait *w = e->waiters;
    e->waiters = NULL;
    while (w) {
        struct ns_zwait *next = w->next;
        struct zone_info *z = w->z;
        free(w);
        zone_add_addrs(z, (const char(*)[48])e->addrs, e->naddrs, e->ttl);
        if (--z->pending == 0)
            zone_done(dc, z);
        w = next;
    }
}

static void on_ns_addr(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct nsq *q = arg;
    struct ns_entry *e = q->e;
    struct dnswire_msg m;
    struct dnswire_msg_buf mb;
    int ok = status == 0 && parse_answer(&m, &mb, ans, len, e->name, q->qtype) == 0;
    if (ok) {
        if (m.hdr.rcode != DNSWIRE_RCODE_NOERROR && m.hdr.rcode != DNSWIRE_RCODE_NXDOMAIN)
            e->complete = 0;
        for (size_t i = 0; i < m.ancount; i++) {
            struct dnswire_rr *rr = &m.rr[i];
            char txt[48];
            uint8_t a[16];
            if (rr->type == DNSWIRE_TYPE_A && dnswire_rdata_a(rr, a) == 0)
                inet_ntop(AF_INET, a, txt, sizeof(txt));
            else if (rr->type == DNSWIRE_TYPE_AAAA && dnswire_rdata_aaaa(rr, a) == 0)
                inet_ntop(AF_INET6, a, txt, sizeof(txt));
            else
                continue;
            if (rr->ttl < e->ttl)
                e->ttl = rr->ttl;
            int dup = 0;
            for (size_t k = 0; k < e->naddrs && !dup; k++)
                dup = strcmp(e->addrs[k], txt) == 0;
            if (!dup && e->naddrs < DNS_CHECK_MAX_SERVERS)
                str_copy(e->addrs[e->naddrs++], sizeof(e->addrs[0]), txt);
        }
        dnswire_msg_cleanup(&m);
    } else {
        e->complete = 0;
    }
    if (--e->pending == 0)
        ns_done(e);
}

/*
 * ns_need gives z the addresses of nameserver name: from the cache, by
 * joining a lookup under way, or by starting one (z->pending counts it).
 */
static void ns_need(struct zone_info *z, const char *name)
{
    struct dns_checker *dc = z->dc;
    struct ns_entry *e = strmap_get(&dc->nsnames, name);
    if (e && e->state == NS_DONE && e->expires_ms && now_ms(dc) < e->expires_ms) {
        int64_t left = (e->expires_ms - now_ms(dc)) / 1000;
        dc->stats.ns_cached++;
        zone_add_addrs(z, (const char(*)[48])e->addrs, e->naddrs,
                       left < (int64_t)e->ttl ? (uint32_t)left : e->ttl);
        return;
    }
    struct ns_zwait *w = xmalloc(sizeof(*w));
    w->z = z;
    z->pending++;
    if (e && e->state == NS_RESOLVING) {
        w->next = e->waiters;
        e->waiters = w;
        return;
    }
    if (!e) {
        e = xmalloc(sizeof(*e));
        strmap_put(&dc->nsnames, name, e);
    }
    memset(e, 0, offsetof(struct ns_entry, addrs));
    e->dc = dc;
    str_copy(e->name, sizeof(e->name), name);
    e->state = NS_RESOLVING;
    e->complete = 1;
    e->ttl = UINT32_MAX;
    w->next = NULL;
    e->waiters = w;
    e->pending = 1; /* hold: an answer from inside resq_query must not end the lookup early */
    static const uint16_t types[2] = {DNSWIRE_TYPE_A, DNSWIRE_TYPE_AAAA};
    for (int t = 0; t < 2; t++) {
        e->q[t].e = e;
        e->q[t].qtype = types[t];
        e->pending++;
        dc->stats.queries++;
        if (resq_query(dc->resolver, name, types[t], on_ns_addr, &e->q[t]) != 0) {
            e->pending--;
            e->complete = 0;
        }
    }
    if (--e->pending == 0)
        ns_done(e);
}

static void on_ns(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct zone_info *z = arg;
    struct dns_checker *dc = z->dc;
    struct dnswire_msg m;
    struct dnswire_msg_buf mb;
    int prc;
    z->pending--;
    if (status != 0) {
        str_fmt(z->err, sizeof(z->err), "NS %s: %s", z->apex, status_text(status));
        zone_done(dc, z);
        return;
    }
    if ((prc = parse_answer(&m, &mb, ans, len, z->apex, DNSWIRE_TYPE_NS)) != 0) {
        str_fmt(z->err, sizeof(z->err), "NS %s: %s", z->apex, parse_error_text(prc));
        zone_done(dc, z);
        return;
    }
    if (m.hdr.rcode != DNSWIRE_RCODE_NOERROR) {
        str_fmt(z->err, sizeof(z->err), "NS %s: %s", z->apex, dnswire_rcode_str(m.hdr.rcode));
        dnswire_msg_cleanup(&m);
        zone_done(dc, z);
        return;
    }
    char names[DNS_CHECK_MAX_SERVERS][DNSWIRE_NAME_TEXT_MAX];
    size_t nn = ns_names(&m, z->apex, names, &z->ttl);
    dnswire_msg_cleanup(&m);
    zone_set_ns(z, names, nn);
}

static void start_deleg(struct check *c);

/*
 * walk_release_key ends the walk for registered domain key: the checks that
 * waited for it start over, and find the zone it found in the cache (or
 * walk themselves).
 */
static void walk_release_key(struct dns_checker *dc, const char *key)
{
    struct walk *w = strmap_get(&dc->walks, key);
    if (!w)
        return;
    struct check *list = w->waiters;
    w->waiters = NULL;
    w->active = 0;
    /* The entry stays (empty) for reuse; a NULL value would read as absent. */
    while (list) {
        struct check *n = list->next;
        list->next = NULL;
        start_deleg(list);
        list = n;
    }
}

/* walk_release ends the walk c led, if any. */
static void walk_release(struct check *c)
{
    char key[HOSTNAME_MAX + 1];
    if (!c->walk_key[0])
        return;
    str_copy(key, sizeof(key), c->walk_key);
    c->walk_key[0] = '\0';
    walk_release_key(c->dc, key);
}

/*
 * ns_names collects the nameserver names of apex from an NS answer (the NS
 * records owned by apex in the answer section), lowering *ttl to theirs.
 * Returns how many, at most DNS_CHECK_MAX_SERVERS.
 */
static size_t ns_names(const struct dnswire_msg *m, const char *apex,
                       char (*names)[DNSWIRE_NAME_TEXT_MAX], uint32_t *ttl)
{
    size_t nn = 0;
    for (size_t i = 0; i < m->ancount && nn < DNS_CHECK_MAX_SERVERS; i++) {
        const struct dnswire_rr *rr = &m->rr[i];
        uint8_t w[DNSWIRE_NAME_MAX];
        size_t wl;
        if (rr->type != DNSWIRE_TYPE_NS || !rr_owner_is(rr, apex) ||
            dnswire_rdata_name(m, rr, w, &wl) != 0 ||
            name_text(names[nn], sizeof(names[0]), w, wl) || strlen(names[nn]) > HOSTNAME_MAX)
            continue;
        if (rr->ttl < *ttl)
            *ttl = rr->ttl;
        nn++;
    }
    return nn;
}

/* zone_set_ns resolves the addresses of z's nameservers (names, nn of them). */
static void zone_set_ns(struct zone_info *z, char (*names)[DNSWIRE_NAME_TEXT_MAX], size_t nn)
{
    if (nn == 0) {
        str_fmt(z->err, sizeof(z->err), "no NS records for %s", z->apex);
        zone_done(z->dc, z);
        return;
    }
    z->pending++; /* hold: cached names add their addresses at once */
    for (size_t i = 0; i < nn; i++)
        ns_need(z, names[i]);
    if (--z->pending == 0)
        zone_done(z->dc, z);
}

/*
 * zone_get returns apex's entry for c: NULL when c joined it (resolving) or
 * was handed it (fresh: zone_ready ran), else the entry reset for a new
 * resolution with c as its first waiter.
 */
static struct zone_info *zone_get(struct check *c, const char *apex)
{
    struct dns_checker *dc = c->dc;
    struct zone_info *z = zindex_get(&dc->zindex, name_hash(apex), apex);
    if (z && z->state == Z_RESOLVING) {
        c->next = z->waiters;
        z->waiters = c;
        return NULL;
    }
    if (z && now_ms(dc) < z->expires_ms) {
        zone_ready(c, z);
        return NULL;
    }
    if (!z) {
        z = xmalloc(sizeof(*z));
        zindex_add(&dc->zindex, name_hash(apex), z);
    }
    memset(z, 0, sizeof(*z));
    str_copy(z->apex, sizeof(z->apex), apex);
    z->state = Z_RESOLVING;
    z->ttl = UINT32_MAX;
    c->next = NULL;
    z->waiters = c;
    z->dc = dc;
    return z;
}

/* zone_lookup starts or joins the resolution of apex's nameservers for c. */
static void zone_lookup(struct check *c, const char *apex)
{
    struct dns_checker *dc = c->dc;
    struct zone_info *z = zone_get(c, apex);
    if (!z)
        return;
    z->pending = 1;
    dc->stats.queries++;
    if (resq_query(dc->resolver, apex, DNSWIRE_TYPE_NS, on_ns, z) != 0) {
        z->pending = 0;
        str_fmt(z->err, sizeof(z->err), "cannot query NS for %s", apex);
        zone_done(dc, z);
    }
}

/*
 * on_soa handles one step of the zone-cut walk. The question is CNAME, not
 * SOA: a resolver does not chase a CNAME asked for by type (RFC 1034
 * §3.6.2), so a delegated name answers with its CNAME (never an apex: go one
 * label up) and any other name answers NODATA or NXDOMAIN with the SOA of
 * its zone in the authority section (RFC 2308 §2), which is the cut.
 * Asking for SOA instead would make the resolver follow the customer's CNAME
 * into our own zone, or fail on a dangling one.
 */
static void on_soa(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct qctx *q = arg;
    struct check *c = q->c;
    struct dnswire_msg m;
    struct dnswire_msg_buf mb;
    int ns_step = c->walk_qtype == DNSWIRE_TYPE_NS;
    c->pending--;
    if (status != 0) {
        fail_check(c, "zone cut of %s: resolver %s", c->cut, status_text(status));
        return;
    }
    int prc = parse_answer(&m, &mb, ans, len, c->cut, c->walk_qtype);
    if (prc != 0) {
        fail_check(c, "zone cut of %s: %s from the resolver", c->cut, parse_error_text(prc));
        return;
    }
    if (m.hdr.rcode != DNSWIRE_RCODE_NOERROR && m.hdr.rcode != DNSWIRE_RCODE_NXDOMAIN) {
        dnswire_msg_cleanup(&m);
        if (ns_step) {
            /* The resolver may have failed chasing something: ask the old way. */
            c->walk_ns_failed = 1;
            soa_walk(c);
            return;
        }
        fail_check(c, "zone cut of %s: resolver answered %s", c->cut,
                   dnswire_rcode_str(m.hdr.rcode));
        return;
    }
    char apex[DNSWIRE_NAME_TEXT_MAX] = "";
    int aliased = 0, has_ns = 0;
    for (size_t i = 0; i < m.ancount + m.nscount; i++) {
        struct dnswire_rr *rr = &m.rr[i];
        char owner[DNSWIRE_NAME_TEXT_MAX];
        if (name_text(owner, sizeof(owner), rr->name, rr->name_len) != 0)
            continue;
        if (i < m.ancount && (rr->type == DNSWIRE_TYPE_CNAME || rr->type == DNSWIRE_TYPE_DNAME) &&
            (strcmp(owner, c->cut) == 0 || rr->type == DNSWIRE_TYPE_DNAME)) {
            aliased = 1; /* an alias is never a zone apex: look one label up */
            break;
        }
        if (i < m.ancount && rr->type == DNSWIRE_TYPE_NS && strcmp(owner, c->cut) == 0)
            has_ns = 1; /* NS records at the name: an apex, unless an alias shows up */
        if (rr->type == DNSWIRE_TYPE_SOA && is_ancestor_or_self(owner, c->cut) &&
            (i >= m.ancount ? 1 : strcmp(owner, c->cut) == 0)) {
            str_copy(apex, sizeof(apex), owner);
            break;
        }
    }
    char names[DNS_CHECK_MAX_SERVERS][DNSWIRE_NAME_TEXT_MAX];
    size_t nn = 0;
    uint32_t ns_ttl = UINT32_MAX;
    if (ns_step && has_ns && !aliased) {
        /* RFC 1034 §4.2.1: the NS RRset at a name marks a zone apex; its names come with it. */
        nn = ns_names(&m, c->cut, names, &ns_ttl);
        if (nn)
            str_copy(apex, sizeof(apex), c->cut);
    }
    dnswire_msg_cleanup(&m);
    if (apex[0] && !aliased) {
        /*
         * The zone goes into the cache first, so the released waiters find
         * it; c itself may be finished meanwhile, so the walk's key is
         * taken from it before.
         */
        struct dns_checker *dc = c->dc;
        char key[HOSTNAME_MAX + 1];
        str_copy(key, sizeof(key), c->walk_key);
        c->walk_key[0] = '\0';
        if (nn) {
            struct zone_info *z = zone_get(c, apex);
            if (z) {
                z->ttl = ns_ttl;
                zone_set_ns(z, names, nn);
            }
        } else {
            zone_lookup(c, apex);
        }
        if (key[0])
            walk_release_key(dc, key);
        return;
    }
    /* An alias, or an answer without SOA: try the parent. */
    const char *p = parent(c->cut);
    if (!p || !strchr(p, '.') || ++c->walk_steps > MAX_WALK) {
        fail_check(c, "no zone cut found above %s", c->qname);
        return;
    }
    memmove(c->cut, p, strlen(p) + 1);
    soa_walk(c);
}

/*
 * soa_walk asks the resolver about c->cut. At the registered domain, which
 * is most often the zone apex, the question is NS: an apex answers with its
 * nameservers, which saves the zone's NS question; another name answers as
 * the CNAME question would (an alias, or NODATA/NXDOMAIN with the SOA). A
 * resolver chases a CNAME for NS, so a name with a broken alias may fail
 * there; that step is then asked again with CNAME.
 */
static void soa_walk(struct check *c)
{
    c->walk_qtype = c->walk_key[0] && !c->walk_ns_failed && strcmp(c->cut, c->walk_key) == 0
                        ? DNSWIRE_TYPE_NS
                        : DNSWIRE_TYPE_CNAME;
    if (send_query(c, NULL, c->cut, c->walk_qtype, on_soa, 0) != 0)
        fail_check(c, "zone cut of %s: %s", c->cut, "cannot query the resolver");
}

/* ---- delegation ---- */

/*
 * One udpq client per authoritative address (udpq.h says why not c-ares),
 * with at most AUTH_INFLIGHT questions outstanding at that address: enough
 * to keep a nearby server busy, and polite to customers' DNS providers.
 */
#define AUTH_INFLIGHT 256

static struct udpq *auth_chan(struct dns_checker *dc, const char *addr)
{
    struct udpq *uq = strmap_get(&dc->auth, addr);
    if (uq)
        return uq;
    struct udpq_opts uo = {
        .port = dc->auth_port,
        .timeout_ms = dc->auth_timeout_ms,
        .tries = dc->auth_tries,
        .max_inflight = AUTH_INFLIGHT,
        .rd = 0, /* RFC 1035 §4.1.1: an authoritative server is asked with recursion off */
    };
    if (udpq_new(&uq, dc->loop, addr, &uo) != 0)
        return NULL;
    strmap_put(&dc->auth, addr, uq);
    dc->stats.auth_channels++;
    return uq;
}

static void aggregate(struct check *c)
{
    struct deleg_report *r = &c->dr;
    size_t ok = 0, miss = 0, wrong = 0, err = 0;
    for (size_t i = 0; i < r->nservers; i++) {
        struct deleg_server *s = &r->servers[i];
        switch (s->result) {
        case DELEG_CONFIRMED:
            ok++;
            break;
        case DELEG_MISSING:
            miss++;
            break;
        case DELEG_WRONG_TARGET:
            wrong++;
            if (!r->seen_target[0])
                str_copy(r->seen_target, sizeof(r->seen_target), s->target);
            break;
        default:
            err++;
            if (!r->error[0])
                str_fmt(r->error, sizeof(r->error), "%s: %s", s->addr, s->error);
            break;
        }
    }
    (void)miss;
    if (r->nservers == 0) {
        r->result = DELEG_ERROR;
        str_fmt(r->error, sizeof(r->error), "no authoritative address for %s", r->zone);
    } else if (err) {
        r->result = DELEG_ERROR;
    } else if (ok == r->nservers) {
        r->result = DELEG_CONFIRMED;
    } else if (ok) {
        r->result = DELEG_PROPAGATING;
    } else if (wrong) {
        r->result = DELEG_WRONG_TARGET;
    } else {
        r->result = DELEG_MISSING;
    }
    finish(c);
}

static void server_error(struct deleg_server *s, const char *msg)
{
    s->result = DELEG_ERROR;
    str_copy(s->error, sizeof(s->error), msg);
}

/*
 * classify_auth reads one authoritative server's answer to the CNAME query
 * for c->qname (RFC 1034 §4.3.2 from the server's side).
 */
static void classify_auth(struct check *c, struct deleg_server *s, const struct dnswire_msg *m)
{
    char owner[DNSWIRE_NAME_TEXT_MAX];
    /* The hot path of a fleet-wide check: names compared in wire form, no text. */
    if (m->qdcount != 1 || m->qd[0].qtype != DNSWIRE_TYPE_CNAME || !m->hdr.qr ||
        !dnswire_name_equal(m->qd[0].name, m->qd[0].name_len, c->qwire, c->qwire_len)) {
        server_error(s, "answer for another question");
        return;
    }
    if (m->hdr.rcode != DNSWIRE_RCODE_NOERROR && m->hdr.rcode != DNSWIRE_RCODE_NXDOMAIN) {
        server_error(s, dnswire_rcode_str(m->hdr.rcode));
        return;
    }
    if (!m->hdr.aa) {
        /* A referral to a deeper zone, or a lame server. */
        for (size_t i = m->ancount; i < m->ancount + m->nscount; i++) {
            const struct dnswire_rr *rr = &m->rr[i];
            if (rr->type == DNSWIRE_TYPE_NS &&
                name_text(owner, sizeof(owner), rr->name, rr->name_len) == 0 &&
                is_ancestor_or_self(owner, c->qname) && strcmp(owner, c->dr.zone) != 0 &&
                is_ancestor_or_self(c->dr.zone, owner)) {
                s->result = SERVER_REFERRAL;
                return;
            }
        }
        server_error(s, "not authoritative (lame delegation)");
        return;
    }
    /* Follow the chain inside the answer: CNAMEs (and DNAME-synthesized ones). */
    uint8_t cur[DNSWIRE_NAME_MAX];
    size_t cur_len = c->qwire_len;
    memcpy(cur, c->qwire, cur_len);
    int hops = 0, found = 0, done = 0;
    while (!done) {
        int step = 0;
        for (size_t i = 0; i < m->ancount; i++) {
            const struct dnswire_rr *rr = &m->rr[i];
            /* A record of another class (CH, HS) is no IN alias: skipped like another owner's. */
            if (rr->type != DNSWIRE_TYPE_CNAME || rr->class != DNSWIRE_CLASS_IN ||
                !dnswire_name_equal(rr->name, rr->name_len, cur, cur_len))
                continue;
            if (dnswire_rdata_name(m, rr, cur, &cur_len) != 0) {
                server_error(s, "malformed CNAME");
                return;
            }
            if (++hops > DNS_CHECK_MAX_CHAIN) {
                server_error(s, "CNAME chain too long or looping");
                return;
            }
            step = found = 1;
            break;
        }
        done = !step || dnswire_name_equal(cur, cur_len, c->ewire, c->ewire_len);
    }
    if (!found) {
        s->result = DELEG_MISSING; /* NXDOMAIN, or no CNAME at the name */
        return;
    }
    if (dnswire_name_equal(cur, cur_len, c->ewire, c->ewire_len)) {
        s->result = DELEG_CONFIRMED;
        return;
    }
    name_text(s->target, sizeof(s->target), cur, cur_len);
    s->result = SERVER_CHAIN; /* maybe more links outside this zone */
}

static void after_auth(struct check *c)
{
    for (size_t i = 0; i < c->dr.nservers; i++) {
        if (c->dr.servers[i].result != SERVER_REFERRAL)
            continue;
        if (c->full_walk) {
            server_error(&c->dr.servers[i], "referral below the zone cut");
            continue;
        }
        /* A deeper zone cut: find it from the name itself. */
        c->full_walk = 1;
        memset(&c->dr.servers, 0, sizeof(c->dr.servers));
        c->dr.nservers = 0;
        c->dr.zone[0] = '\0';
        str_copy(c->cut, sizeof(c->cut), c->qname);
        c->walk_steps = 0;
        soa_walk(c);
        return;
    }
    follow_next_chain(c);
}

static void on_auth(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct qctx *q = arg;
    struct check *c = q->c;
    struct deleg_server *s = &c->dr.servers[q->idx];
    c->pending--;
    if (status != 0) {
        server_error(s, status_text(status));
    } else {
        struct dnswire_msg m;
        struct dnswire_msg_buf mb;
        if (dnswire_msg_parse_buf(&m, ans, len, &mb) != 0) {
            server_error(s, "malformed answer");
        } else {
            classify_auth(c, s, &m);
            dnswire_msg_cleanup(&m);
        }
    }
    if (c->pending == 0)
        after_auth(c);
}

static void txt_ready(struct check *c, struct zone_info *z);

static void zone_ready(struct check *c, struct zone_info *z)
{
    struct dns_checker *dc = c->dc;
    if (z->state != Z_READY) {
        fail_check(c, "%s", z->err);
        return;
    }
    if (c->kind == K_TXT) {
        txt_ready(c, z);
        return;
    }
    str_copy(c->dr.zone, sizeof(c->dr.zone), z->apex);
    c->dr.nservers = z->naddrs;
    for (size_t i = 0; i < z->naddrs; i++) {
        struct deleg_server *s = &c->dr.servers[i];
        s->result = 0;
        s->target[0] = s->error[0] = '\0';
        str_copy(s->addr, sizeof(s->addr), z->addrs[i]);
    }
    c->pending++; /* hold: answers arriving from inside this loop must not finish c */
    for (size_t i = 0; i < z->naddrs; i++) {
        if (!z->uq[i])
            z->uq[i] = auth_chan(dc, z->addrs[i]);
        struct udpq *uq = z->uq[i];
        if (!uq || send_query(c, uq, c->qname, DNSWIRE_TYPE_CNAME, on_auth, i) != 0)
            server_error(&c->dr.servers[i], "cannot query this address");
    }
    if (--c->pending == 0)
        after_auth(c);
}

static void on_chain(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct qctx *q = arg;
    struct check *c = q->c;
    c->pending--;
    const char *err = NULL;
    char next[DNSWIRE_NAME_TEXT_MAX] = "";
    struct dnswire_msg m;
    struct dnswire_msg_buf mb;
    if (status != 0) {
        err = status_text(status);
    } else if (parse_answer(&m, &mb, ans, len, c->chain_cur, DNSWIRE_TYPE_CNAME) != 0) {
        err = "bad answer while following the CNAME chain";
    } else {
        if (m.hdr.rcode != DNSWIRE_RCODE_NOERROR && m.hdr.rcode != DNSWIRE_RCODE_NXDOMAIN)
            err = dnswire_rcode_str(m.hdr.rcode);
        for (size_t i = 0; !err && i < m.ancount; i++) {
            struct dnswire_rr *rr = &m.rr[i];
            uint8_t w[DNSWIRE_NAME_MAX];
            size_t wl;
            if (rr->type == DNSWIRE_TYPE_CNAME && rr->class == DNSWIRE_CLASS_IN &&
                rr_owner_is(rr, c->chain_cur) && dnswire_rdata_name(&m, rr, w, &wl) == 0)
                name_text(next, sizeof(next), w, wl);
        }
        dnswire_msg_cleanup(&m);
    }
    uint8_t result;
    if (err) {
        result = DELEG_ERROR;
    } else if (next[0] && strcmp(next, c->expected) == 0) {
        result = DELEG_CONFIRMED;
    } else if (next[0]) {
        if (++c->chain_hops > DNS_CHECK_MAX_CHAIN || strcmp(next, c->chain_start) == 0) {
            result = DELEG_ERROR;
            err = "CNAME chain too long or looping";
        } else {
            str_copy(c->chain_cur, sizeof(c->chain_cur), next);
            if (send_query(c, NULL, c->chain_cur, DNSWIRE_TYPE_CNAME, on_chain, 0) == 0)
                return;
            result = DELEG_ERROR;
            err = "cannot query the resolver";
        }
    } else {
        result = DELEG_WRONG_TARGET; /* the chain ends elsewhere */
    }
    for (size_t i = 0; i < c->dr.nservers; i++) {
        struct deleg_server *s = &c->dr.servers[i];
        if (s->result != SERVER_CHAIN || strcmp(s->target, c->chain_start) != 0)
            continue;
        s->result = result;
        if (result == DELEG_ERROR)
            str_fmt(s->error, sizeof(s->error), "following %s: %s", c->chain_start, err);
        else if (result == DELEG_WRONG_TARGET)
            str_copy(s->target, sizeof(s->target), c->chain_cur);
    }
    follow_next_chain(c);
}

/* follow_next_chain follows one pending chain, or aggregates when none is left. */
static void follow_next_chain(struct check *c)
{
    for (size_t i = 0; i < c->dr.nservers; i++) {
        struct deleg_server *s = &c->dr.servers[i];
        if (s->result != SERVER_CHAIN)
            continue;
        str_copy(c->chain_start, sizeof(c->chain_start), s->target);
        str_copy(c->chain_cur, sizeof(c->chain_cur), s->target);
        c->chain_hops = 0;
        if (send_query(c, NULL, c->chain_cur, DNSWIRE_TYPE_CNAME, on_chain, i) == 0)
            return;
        server_error(s, "cannot query the resolver");
    }
    aggregate(c);
}

static void start_deleg(struct check *c)
{
    struct dns_checker *dc = c->dc;
    /* The nearest cached zone above the name; its servers refer us down if there is a cut. */
    for (const char *p = c->qname; p && strchr(p, '.'); p = parent(p)) {
        struct zone_info *z = zindex_get(&dc->zindex, name_hash(p), p);
        if (z && z->state == Z_RESOLVING) {
            c->next = z->waiters;
            z->waiters = c;
            return;
        }
        if (z && now_ms(dc) < z->expires_ms) {
            zone_ready(c, z);
            return;
        }
    }
    str_copy(c->cut, sizeof(c->cut), c->qname);
    char key[HOSTNAME_MAX + 1];
    const char *host = c->qname + strlen(HOSTNAME_CHALLENGE_PREFIX);
    if (!c->full_walk && hostname_registered_domain(key, host) == 0) {
        struct walk *w = strmap_get(&dc->walks, key);
        if (!w) {
            w = xcalloc(1, sizeof(*w));
            strmap_put(&dc->walks, key, w);
        }
        if (w->active) {
            c->next = w->waiters;
            w->waiters = c;
            return;
        }
        w->active = 1;
        str_copy(c->walk_key, sizeof(c->walk_key), key);
    }
    soa_walk(c);
}

/* ---- propagation of published TXT records ---- */

static void txt_done(struct check *c)
{
    struct txt_report *r = &c->tr;
    r->nready = 0;
    for (size_t i = 0; i < r->nservers; i++) {
        r->nready += r->servers[i].has;
        if (r->servers[i].error[0] && !r->error[0])
            str_fmt(r->error, sizeof(r->error), "%s: %s", r->servers[i].addr, r->servers[i].error);
    }
    r->ready = r->nservers > 0 && r->nready == r->nservers;
    finish(c);
}

static void on_txt(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct qctx *q = arg;
    struct check *c = q->c;
    size_t idx = q->idx;
    c->pending--;
    struct dnswire_msg m;
    struct dnswire_msg_buf mb;
    int prc;
    if (status != 0) {
        str_copy(c->tr.servers[idx].error, sizeof(c->tr.servers[0].error), status_text(status));
    } else if ((prc = parse_answer(&m, &mb, ans, len, c->qname, DNSWIRE_TYPE_TXT)) != 0) {
        str_copy(c->tr.servers[idx].error, sizeof(c->tr.servers[0].error), parse_error_text(prc));
    } else {
        if (m.hdr.rcode != DNSWIRE_RCODE_NOERROR && m.hdr.rcode != DNSWIRE_RCODE_NXDOMAIN)
            str_copy(c->tr.servers[idx].error, sizeof(c->tr.servers[0].error),
                     dnswire_rcode_str(m.hdr.rcode));
        else if (!m.hdr.aa)
            str_fmt(c->tr.servers[idx].error, sizeof(c->tr.servers[0].error),
                    "not authoritative for %s", c->tr.zone);
        for (size_t i = 0; i < m.ancount && m.hdr.aa; i++) {
            struct dnswire_rr *rr = &m.rr[i];
            uint8_t v[1024];
            size_t vl;
            if (rr->type == DNSWIRE_TYPE_TXT && rr_owner_is(rr, c->qname) &&
                dnswire_rdata_txt(rr, v, sizeof(v), &vl) == 0 && vl == strlen(c->txt_value) &&
                memcmp(v, c->txt_value, vl) == 0)
                c->tr.servers[idx].has = 1;
        }
        dnswire_msg_cleanup(&m);
    }
    if (c->pending == 0)
        txt_done(c);
}

static void txt_ready(struct check *c, struct zone_info *z)
{
    str_copy(c->tr.zone, sizeof(c->tr.zone), z->apex);
    c->tr.nservers = z->naddrs;
    for (size_t i = 0; i < z->naddrs; i++) {
        memset(&c->tr.servers[i], 0, sizeof(c->tr.servers[i]));
        str_copy(c->tr.servers[i].addr, sizeof(c->tr.servers[0].addr), z->addrs[i]);
    }
    c->pending++; /* hold */
    for (size_t i = 0; i < z->naddrs; i++) {
        struct udpq *uq = auth_chan(c->dc, z->addrs[i]);
        if (!uq || send_query(c, uq, c->qname, DNSWIRE_TYPE_TXT, on_txt, i) != 0)
            str_fmt(c->tr.servers[i].error, sizeof(c->tr.servers[0].error),
                    "cannot query this address");
    }
    if (--c->pending == 0)
        txt_done(c);
}

/* ---- liveness ---- */

static void live_done(struct check *c)
{
    struct live_report *r = &c->lr;
    if (c->live_hit) {
        r->result = LIVE_LIVE;
    } else if (c->live_err) {
        r->result = LIVE_ERROR;
    } else {
        r->result = LIVE_NOT_LIVE;
        str_copy(r->detail, sizeof(r->detail),
                 c->live_seen[0] ? c->live_seen : "no address and no CNAME");
    }
    finish(c);
}

static void on_live(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct qctx *q = arg;
    struct check *c = q->c;
    struct dns_checker *dc = c->dc;
    struct dnswire_msg m;
    struct dnswire_msg_buf mb;
    uint16_t q_type = q->idx == 0 ? DNSWIRE_TYPE_A : DNSWIRE_TYPE_AAAA;
    c->pending--;
    int prc = status == 0 ? parse_answer(&m, &mb, ans, len, c->qname, q_type) : 0;
    if (status != 0 || prc != 0) {
        if (!c->live_hit)
            str_fmt(c->lr.detail, sizeof(c->lr.detail), "resolving %s: %s", c->qname,
                    status ? status_text(status) : parse_error_text(prc));
        c->live_err = 1;
        goto out;
    }
    if (m.hdr.rcode != DNSWIRE_RCODE_NOERROR && m.hdr.rcode != DNSWIRE_RCODE_NXDOMAIN) {
        if (!c->live_hit)
            str_fmt(c->lr.detail, sizeof(c->lr.detail), "resolving %s: %s", c->qname,
                    dnswire_rcode_str(m.hdr.rcode));
        c->live_err = 1;
    } else if (m.hdr.rcode == DNSWIRE_RCODE_NXDOMAIN && !c->live_seen[0]) {
        str_fmt(c->live_seen, sizeof(c->live_seen), "%s does not exist (NXDOMAIN)", c->qname);
    }
    for (size_t i = 0; i < m.ancount && !c->live_hit; i++) {
        struct dnswire_rr *rr = &m.rr[i];
        uint8_t w[DNSWIRE_NAME_MAX], a[16];
        size_t wl;
        char txt[DNSWIRE_NAME_TEXT_MAX];
        const char *suf;
        if (rr->type == DNSWIRE_TYPE_CNAME && dnswire_rdata_name(&m, rr, w, &wl) == 0 &&
            name_text(txt, sizeof(txt), w, wl) == 0) {
            if ((suf = suffix_match(dc, txt))) {
                c->live_hit = 1;
                str_fmt(c->lr.detail, sizeof(c->lr.detail), "CNAME %s is in %s", txt, suf);
            } else {
                str_fmt(c->live_seen, sizeof(c->live_seen), "CNAME %s", txt);
            }
        } else if ((rr->type == DNSWIRE_TYPE_A && dnswire_rdata_a(rr, a) == 0) ||
                   (rr->type == DNSWIRE_TYPE_AAAA && dnswire_rdata_aaaa(rr, a) == 0)) {
            int fam = rr->type == DNSWIRE_TYPE_A ? AF_INET : AF_INET6;
            inet_ntop(fam, a, txt, sizeof(txt));
            for (size_t k = 0; k < dc->ncidrs; k++) {
                if (cidr_match(&dc->cidrs[k], fam, a)) {
                    c->live_hit = 1;
                    str_fmt(c->lr.detail, sizeof(c->lr.detail), "%s %s is in a CDN range",
                            fam == AF_INET ? "A" : "AAAA", txt);
                    break;
                }
            }
            if (!c->live_hit && (!c->live_seen[0] || strncmp(c->live_seen, "CNAME", 5) == 0))
                str_fmt(c->live_seen, sizeof(c->live_seen), "%s %s", fam == AF_INET ? "A" : "AAAA",
                        txt);
        }
    }
    dnswire_msg_cleanup(&m);
out:
    if (c->pending == 0)
        live_done(c);
}

static void start_live(struct check *c)
{
    const char *suf = suffix_match(c->dc, c->qname);
    if (suf) {
        c->live_hit = 1;
        str_fmt(c->lr.detail, sizeof(c->lr.detail), "%s is in %s", c->qname, suf);
        live_done(c);
        return;
    }
    c->pending++; /* hold */
    if (send_query(c, NULL, c->qname, DNSWIRE_TYPE_A, on_live, 0) != 0 ||
        send_query(c, NULL, c->qname, DNSWIRE_TYPE_AAAA, on_live, 1) != 0) {
        c->live_err = 1;
        str_fmt(c->lr.detail, sizeof(c->lr.detail), "cannot query the resolver");
    }
    if (--c->pending == 0)
        live_done(c);
}

static void start_check(struct check *c)
{
    if (c->dc->closing) {
        fail_check(c, "checker closed");
        return;
    }
    if (c->kind == K_DELEG)
        start_deleg(c);
    else if (c->kind == K_LIVE)
        start_live(c);
    else
        zone_lookup(c, c->cut); /* the validation zone: its apex is known */
}

/* ---- public API ---- */

/*
 * resolver_client_env reads CERTFLEET_RESOLVER_CLIENT: "udp" (the default),
 * or "cares" or "cares:N" for every resolver question through c-ares, N (64)
 * at a time (the path before udpq took the resolver's questions; kept to
 * compare, and to fall back on should a resolver not get along with ours).
 */
static void resolver_client_env(struct resq_opts *ro)
{
    const char *e = getenv("CERTFLEET_RESOLVER_CLIENT");
    if (!e || strncmp(e, "cares", 5) != 0)
        return;
    ro->client = RESQ_CARES;
    /* c-ares 1.18 is quick only with few queries outstanding (resq.h): 64 unless told. */
    ro->max_inflight = 64;
    if (e[5] == ':') {
        long n = strtol(e + 6, NULL, 10);
        if (n > 0 && n <= 100000)
            ro->max_inflight = (size_t)n;
    }
}

int dns_checker_new(struct dns_checker **out, uv_loop_t *loop, const struct dns_checker_opts *o)
{
    struct dns_checker *dc = xcalloc(1, sizeof(*dc));
    struct resq_opts ro = {
        .timeout_ms = o->timeout_ms ? o->timeout_ms : 1500,
        .tries = o->tries ? o->tries : 3,
        /* unbound answers 1024 queries a thread at once by default and drops the rest. */
        .max_inflight = o->resolver_inflight ? o->resolver_inflight : 500,
        .client = o->resolver_cares ? RESQ_CARES : RESQ_UDP,
    };
    resolver_client_env(&ro);
    int rc;
    dc->loop = loop;
    dc->auth_timeout_ms = ro.timeout_ms;
    dc->auth_tries = ro.tries;
    dc->auth_port = o->auth_port ? o->auth_port : 53;
    dc->cache_ttl_max = o->cache_ttl_max ? o->cache_ttl_max : 3600;
    dc->max_checks = o->max_checks ? o->max_checks : 2000;
    if (dc->max_checks > DNS_CHECKS_ACTIVE_MAX)
        dc->max_checks = DNS_CHECKS_ACTIVE_MAX;
    strmap_init(&dc->auth);
    strmap_init(&dc->walks);
    strmap_init(&dc->nsnames);
    dc->suffixes = xcalloc(o->n_cdn_targets + 1, sizeof(char *));
    dc->cidrs = xcalloc(o->n_cdn_targets + 1, sizeof(struct cidr));
    for (size_t i = 0; i < o->n_cdn_targets; i++) {
        const char *t = o->cdn_targets[i];
        if (strchr(t, '/')) {
            if (parse_cidr(&dc->cidrs[dc->ncidrs], t) != 0) {
                rc = CF_ECONFIG;
                goto out_free;
            }
            dc->ncidrs++;
        } else {
            dc->suffixes[dc->nsuffixes] = xstrdup(t);
            lower(dc->suffixes[dc->nsuffixes++]);
        }
    }
    rc = resq_new(&dc->resolver, loop, o->resolver, &ro);
    if (rc)
        goto out_free;
    *out = dc;
    return 0;
out_free:
    for (size_t i = 0; i < dc->nsuffixes; i++)
        free(dc->suffixes[i]);
    free(dc->suffixes);
    free(dc->cidrs);
    free(dc);
    return rc;
}

static struct check *new_check(struct dns_checker *dc, enum check_kind kind, const char *host)
{
    struct check *c = dc->spare;
    if (c) {
        dc->spare = c->next;
        dc->nspare--;
    } else {
        c = xmalloc(sizeof(*c));
    }
    /*
     * Only the scalars and the first octet of each string: a check is
     * started for every host of the fleet, and clearing its 3 KB of names
     * cost more than the rest of starting it.
     */
    memset(c, 0, offsetof(struct check, qname));
    /* cut, the chain's names and txt_value are written before they are read. */
    c->expected[0] = c->walk_key[0] = '\0';
    if (kind == K_DELEG) {
        c->dr.result = 0;
        c->dr.host[0] = c->dr.zone[0] = c->dr.seen_target[0] = c->dr.error[0] = '\0';
        c->dr.nservers = 0;
    } else {
        c->live_seen[0] = '\0';
        c->lr.result = 0;
        c->lr.host[0] = c->lr.detail[0] = '\0';
    }
    c->dc = dc;
    c->kind = kind;
    const char *base = hostname_base(host);
    if (kind == K_DELEG) {
        /* A plain copy, not str_fmt: this runs once per host of the fleet. */
        size_t pl = sizeof(HOSTNAME_CHALLENGE_PREFIX) - 1, bl = strlen(base);
        if (pl + bl >= sizeof(c->qname))
            bl = sizeof(c->qname) - 1 - pl;
        memcpy(c->qname, HOSTNAME_CHALLENGE_PREFIX, pl);
        memcpy(c->qname + pl, base, bl);
        c->qname[pl + bl] = '\0';
        str_copy(c->dr.host, sizeof(c->dr.host), host);
    } else {
        str_copy(c->qname, sizeof(c->qname), base);
        str_copy(c->lr.host, sizeof(c->lr.host), host);
    }
    lower(c->qname);
    return c;
}

/* launch makes a delegation or liveness check and starts it (or queues it, or fails it). */
static void launch(struct dns_checker *dc, enum check_kind kind, const char *host,
                   const char *expected, dns_deleg_cb dcb, dns_live_cb lcb, void *arg)
{
    struct check *c = new_check(dc, kind, host);
    c->dcb = dcb;
    c->lcb = lcb;
    c->arg = arg;
    if (kind == K_DELEG) {
        str_copy(c->expected, sizeof(c->expected), expected);
        lower(c->expected);
        if (dnswire_name_from_text(c->qwire, &c->qwire_len, c->qname) != 0 ||
            dnswire_name_from_text(c->ewire, &c->ewire_len, c->expected) != 0) {
            dc->active++;
            fail_check(c, "invalid name %s or target %s", c->qname, c->expected);
            return;
        }
    }
    admit(dc, c);
}

/* ask launches a check now, or keeps what it needs until a slot is free. */
static void ask(struct dns_checker *dc, enum check_kind kind, const char *host,
                const char *expected, dns_deleg_cb dcb, dns_live_cb lcb, void *arg)
{
    if (dc->closing || dc->active < dc->max_checks) {
        launch(dc, kind, host, expected, dcb, lcb, arg);
        return;
    }
    struct waiting *w = xmalloc(sizeof(*w));
    w->next = NULL;
    w->kind = kind;
    w->dcb = dcb;
    w->lcb = lcb;
    w->arg = arg;
    w->host = xstrdup(host);
    w->expected = expected ? xstrdup(expected) : NULL;
    if (dc->wait_tail)
        dc->wait_tail->next = w;
    else
        dc->wait_head = w;
    dc->wait_tail = w;
    dc->nwaiting++;
}

void dns_check_delegation(struct dns_checker *dc, const char *host, const char *expected_target,
                          dns_deleg_cb cb, void *arg)
{
    ask(dc, K_DELEG, host, expected_target ? expected_target : "", cb, NULL, arg);
}

void dns_check_liveness(struct dns_checker *dc, const char *host, dns_live_cb cb, void *arg)
{
    ask(dc, K_LIVE, host, NULL, NULL, cb, arg);
}

void dns_check_txt(struct dns_checker *dc, const char *zone, const char *name, const char *value,
                   dns_txt_cb cb, void *arg)
{
    struct check *c = xcalloc(1, sizeof(*c));
    c->dc = dc;
    c->kind = K_TXT;
    str_copy(c->qname, sizeof(c->qname), name);
    lower(c->qname);
    str_copy(c->cut, sizeof(c->cut), zone);
    lower(c->cut);
    str_copy(c->txt_value, sizeof(c->txt_value), value);
    str_copy(c->tr.name, sizeof(c->tr.name), c->qname);
    c->tcb = cb;
    c->arg = arg;
    if (dnswire_name_from_text(c->qwire, &c->qwire_len, c->qname) != 0) {
        dc->active++;
        fail_check(c, "invalid name %s", c->qname);
        return;
    }
    admit(dc, c);
}

size_t dns_checker_inflight(const struct dns_checker *dc)
{
    return dc->active + dc->queued + dc->nwaiting;
}

void dns_checker_stats(const struct dns_checker *dc, struct dns_checker_stats *out)
{
    struct resq_stats rs;
    *out = dc->stats;
    if (dc->resolver) {
        resq_get_stats(dc->resolver, &rs);
        out->coalesced = rs.coalesced;
        out->resolver_udp = rs.udp;
        out->resolver_cares = rs.cares;
    }
}

void dns_checker_free(struct dns_checker *dc)
{
    if (!dc)
        return;
    dc->closing = 1;
    /* Queued checks never started: they end now, with an error. */
    while (dc->queue_head) {
        struct check *c = dc->queue_head;
        dc->queue_head = c->next;
        dc->queued--;
        dc->active++;
        fail_check(c, "checker closed");
    }
    dc->queue_tail = NULL;
    while (dc->wait_head) /* admit fails them: the checker is closing */
        launch_waiting(dc);
    /* Destroying channels runs the pending callbacks, which end their checks. */
    resq_free(dc->resolver);
    for (size_t i = 0; i < dc->auth.cap; i++)
        if (dc->auth.slots[i].key)
            udpq_free(dc->auth.slots[i].val);
    strmap_cleanup(&dc->auth);
    for (size_t i = 0; i < dc->zindex.cap; i++)
        free(dc->zindex.z[i]);
    for (size_t i = 0; i < dc->walks.cap; i++)
        if (dc->walks.slots[i].key)
            free(dc->walks.slots[i].val);
    strmap_cleanup(&dc->walks);
    for (size_t i = 0; i < dc->nsnames.cap; i++)
        if (dc->nsnames.slots[i].key)
            free(dc->nsnames.slots[i].val);
    strmap_cleanup(&dc->nsnames);
    free(dc->zindex.h);
    free(dc->zindex.z);
    for (size_t i = 0; i < dc->nsuffixes; i++)
        free(dc->suffixes[i]);
    free(dc->suffixes);
    free(dc->cidrs);
    while (dc->spare) {
        struct check *c = dc->spare;
        dc->spare = c->next;
        free(c);
    }
    free(dc);
}
