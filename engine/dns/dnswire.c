/*
 * dnswire.c - the DNS message codec: names, parser, writer, builders, TSIG.
 *
 * Every read from a message goes through a length check against the bytes
 * that remain; nothing here trusts a count, length or pointer from the
 * network before comparing it with what is actually there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "err.h"
#include "dnswire.h"

/* The wire form of the only TSIG algorithm name supported (RFC 8945 §6). */
static const uint8_t alg_hmac_sha256[] = {11,  'h', 'm', 'a', 'c', '-', 's',
                                          'h', 'a', '2', '5', '6', 0};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* RFC 8945 §4.2: Time Signed is an unsigned 48-bit number of seconds. */
static void put48(uint8_t *p, uint64_t v)
{
    put16(p, (uint16_t)(v >> 32));
    put32(p + 2, (uint32_t)v);
}

static uint64_t get48(const uint8_t *p)
{
    return ((uint64_t)get16(p) << 32) | get32(p + 2);
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* ---- Names ---- */

int dnswire_name_check(const uint8_t *wire, size_t len)
{
    size_t off = 0;
    if (len == 0 || len > DNSWIRE_NAME_MAX)
        return CF_EPARSE;
    while (off < len) {
        uint8_t l = wire[off];
        if (l == 0)
            return off + 1 == len ? 0 : CF_EPARSE;
        if (l > DNSWIRE_LABEL_MAX)
            return CF_EPARSE;
        off += 1 + (size_t)l;
    }
    return CF_EPARSE;
}

int dnswire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    /*
     * RFC 4343 §3: ASCII case is ignored. Label lengths are at most 63, below
     * 'A', so lower-casing every octet leaves them alone.
     */
    if (alen != blen)
        return 0;
    if (memcmp(a, b, alen) == 0)
        return 1; /* the usual case: the same spelling */
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

int dnswire_name_in_zone(const uint8_t *name, size_t name_len, const uint8_t *zone, size_t zone_len)
{
    size_t off = 0;
    while (off < name_len) {
        if (name_len - off == zone_len && dnswire_name_equal(name + off, zone_len, zone, zone_len))
            return 1;
        if (name[off] == 0)
            break;
        off += 1 + (size_t)name[off];
    }
    return 0;
}

int dnswire_name_from_text(uint8_t *out, size_t *out_len, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, n = 0;

    /* RFC 1035 §5.1: a lone "." is the root. */
    if (s[0] == '.' && s[1] == '\0') {
        out[0] = 0;
        *out_len = 1;
        return 0;
    }
    for (;;) {
        size_t lab = n, ll = 0;
        /* A label needs its length octet, one octet, and the root after it. */
        if (n + 3 > DNSWIRE_NAME_MAX)
            return CF_EPARSE;
        n++;
        while (s[i] != '\0' && s[i] != '.') {
            unsigned v;
            if (s[i] == '\\') {
                /* RFC 1035 §5.1: "\DDD" is an octet in decimal, "\X" is X. */
                if (s[i + 1] >= '0' && s[i + 1] <= '9') {
                    if (s[i + 2] < '0' || s[i + 2] > '9' || s[i + 3] < '0' || s[i + 3] > '9')
                        return CF_EPARSE;
                    v = (unsigned)(s[i + 1] - '0') * 100 + (unsigned)(s[i + 2] - '0') * 10 +
                        (unsigned)(s[i + 3] - '0');
                    if (v > 255)
                        return CF_EPARSE;
                    i += 4;
                } else if (s[i + 1] >= 0x20 && s[i + 1] < 0x7f) {
                    v = s[i + 1];
                    i += 2;
                } else {
                    return CF_EPARSE;
                }
            } else if (s[i] > 0x20 && s[i] < 0x7f) {
                v = s[i++];
            } else {
                return CF_EPARSE;
            }
            /* The octet, then at least the root label, must fit in 255. */
            if (ll == DNSWIRE_LABEL_MAX || n + 2 > DNSWIRE_NAME_MAX)
                return CF_EPARSE;
            out[n++] = lower((uint8_t)v);
            ll++;
        }
        if (ll == 0)
            return CF_EPARSE; /* empty text, empty label, or a leading dot */
        out[lab] = (uint8_t)ll;
        if (s[i] == '\0')
            break;
        i++;
        if (s[i] == '\0')
            break; /* one trailing dot */
    }
    out[n++] = 0;
    *out_len = n;
    return 0;
}

/* Octets escaped with a backslash in presentation format (RFC 1035 §5.1). */
static int is_special(uint8_t c)
{
    return c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
           c == '$';
}

int dnswire_name_to_text(char *out, size_t cap, const uint8_t *wire, size_t wire_len)
{
    size_t off = 0, n = 0;
    int rc = dnswire_name_check(wire, wire_len);
    if (rc != 0)
        return rc;
    if (wire_len == 1) {
        if (cap < 2)
            return CF_ETOOBIG;
        memcpy(out, ".", 2);
        return 0;
    }
    while (wire[off] != 0) {
        size_t ll = wire[off];
        if (off > 0) {
            if (n + 2 > cap)
                return CF_ETOOBIG;
            out[n++] = '.';
        }
        for (size_t k = 1; k <= ll; k++) {
            uint8_t c = wire[off + k];
            size_t need = is_special(c) ? 2 : (c > 0x20 && c < 0x7f) ? 1 : 4;
            if (n + need + 1 > cap)
                return CF_ETOOBIG;
            if (is_special(c)) {
                out[n++] = '\\';
                out[n++] = (char)c;
            } else if (c > 0x20 && c < 0x7f) {
                out[n++] = (char)c;
            } else {
                out[n++] = '\\';
                out[n++] = (char)('0' + c / 100);
                out[n++] = (char)('0' + c / 10 % 10);
                out[n++] = (char)('0' + c % 10);
            }
        }
        off += 1 + ll;
    }
    out[n] = '\0';
    return 0;
}

int dnswire_read_name(const uint8_t *msg, size_t msglen, size_t *off, uint8_t *out_wire,
                      size_t *out_len)
{
    size_t pos = *off;
    size_t run = *off; /* start of the label run being read */
    size_t end = 0;    /* where the name ends at *off, once known */
    size_t n = 0;
    int hops = 0;

    for (;;) {
        if (pos >= msglen)
            return CF_EPARSE;
        uint8_t c = msg[pos];
        if (c == 0) {
            out_wire[n++] = 0;
            if (hops == 0)
                end = pos + 1;
            break;
        }
        if ((c & 0xc0) == 0xc0) {
            /* RFC 1035 §4.1.4: a pointer is two octets, an offset from the start. */
            if (msglen - pos < 2)
                return CF_EPARSE;
            size_t target = (size_t)get16(msg + pos) & 0x3fff;
            /*
             * Only to before the run that holds the pointer: each hop then
             * lands strictly earlier than the last, so no loop is possible.
             * The hop limit bounds the work all the same.
             */
            if (target >= run || ++hops > DNSWIRE_MAX_HOPS)
                return CF_EPARSE;
            if (hops == 1)
                end = pos + 2;
            pos = run = target;
            continue;
        }
        /* RFC 6891 §5: the 01 and 10 label types are not in use. */
        if (c & 0xc0)
            return CF_EPARSE;
        if (msglen - pos - 1 < c)
            return CF_EPARSE;
        /* The label, then at least the root label, must fit in 255. */
        if (n + 1 + c + 1 > DNSWIRE_NAME_MAX)
            return CF_EPARSE;
        memcpy(out_wire + n, msg + pos, 1 + (size_t)c);
        n += 1 + (size_t)c;
        pos += 1 + (size_t)c;
    }
    *out_len = n;
    *off = end;
    return 0;
}

/* ---- Parser ---- */

int dnswire_header_parse(struct dnswire_header *h, const uint8_t *pkt, size_t len)
{
    if (len < DNSWIRE_HEADER_LEN)
        return CF_EPARSE;
    /* RFC 1035 §4.1.1; AD and CD are RFC 4035 §3.2's. */
    h->id = get16(pkt);
    h->qr = pkt[2] >> 7;
    h->opcode = (pkt[2] >> 3) & 0xf;
    h->aa = (pkt[2] >> 2) & 1;
    h->tc = (pkt[2] >> 1) & 1;
    h->rd = pkt[2] & 1;
    h->ra = pkt[3] >> 7;
    h->ad = (pkt[3] >> 5) & 1;
    h->cd = (pkt[3] >> 4) & 1;
    h->rcode = pkt[3] & 0xf;
    h->qdcount = get16(pkt + 4);
    h->ancount = get16(pkt + 6);
    h->nscount = get16(pkt + 8);
    h->arcount = get16(pkt + 10);
    return 0;
}

/* parse_opt fills m->edns from the OPT record r (RFC 6891 §6.1). */
static int parse_opt(struct dnswire_msg *m, const struct dnswire_rr *r)
{
    size_t off = 0;
    /*
     * RFC 6891 §6.1.1: one OPT record at most, in the additional section,
     * owned by the root; anything else is a FORMERR.
     */
    if (m->edns.present || r->section != DNSWIRE_SECTION_ADDITIONAL || r->name_len != 1)
        return CF_EPARSE;
    /* §6.1.2: each option is a code, a length and that many octets. */
    while (off < r->rdlen) {
        if (r->rdlen - off < 4)
            return CF_EPARSE;
        size_t olen = get16(r->rdata + off + 2);
        if (r->rdlen - off - 4 < olen)
            return CF_EPARSE;
        off += 4 + olen;
    }
    m->edns.present = 1;
    /* §6.1.3: the TTL holds the extended rcode, version, DO and Z. */
    m->edns.udp_size = r->class;
    m->edns.version = (uint8_t)(r->ttl >> 16);
    m->edns.do_bit = (r->ttl >> 15) & 1;
    m->edns.options = r->rdata;
    m->edns.options_len = r->rdlen;
    m->hdr.rcode = (uint16_t)(((r->ttl >> 24) << 4) | (m->hdr.rcode & 0xf));
    return 0;
}

int dnswire_msg_parse(struct dnswire_msg *m, const uint8_t *pkt, size_t len)
{
    return dnswire_msg_parse_buf(m, pkt, len, NULL);
}

int dnswire_msg_parse_buf(struct dnswire_msg *m, const uint8_t *pkt, size_t len,
                          struct dnswire_msg_buf *buf)
{
    size_t off = DNSWIRE_HEADER_LEN, nrr;
    int rc;

    memset(m, 0, sizeof(*m));
    m->pkt = pkt;
    m->len = len;
    rc = dnswire_header_parse(&m->hdr, pkt, len);
    if (rc != 0)
        goto out_free_msg;
    m->qdcount = m->hdr.qdcount;
    m->ancount = m->hdr.ancount;
    m->nscount = m->hdr.nscount;
    m->arcount = m->hdr.arcount;
    nrr = m->ancount + m->nscount + m->arcount;
    /*
     * RFC 1035 §4.1.2-3: a question takes at least 5 octets (root name, type,
     * class) and a record at least 11, so counts the message cannot hold
     * are refused before anything is allocated for them.
     */
    if (m->qdcount * 5 + nrr * 11 > len - DNSWIRE_HEADER_LEN) {
        rc = CF_EPARSE;
        goto out_free_msg;
    }
    if (buf && m->qdcount <= 1 && nrr <= DNSWIRE_MSG_BUF_RR) {
        /* Every field of every entry in use is written below: nothing to clear. */
        m->qd = m->qdcount ? buf->qd : NULL;
        m->rr = nrr ? buf->rr : NULL;
        m->borrowed = 1;
    } else {
        if (m->qdcount > 0)
            m->qd = xcalloc(m->qdcount, sizeof(*m->qd));
        if (nrr > 0)
            m->rr = xcalloc(nrr, sizeof(*m->rr));
    }

    for (size_t i = 0; i < m->qdcount; i++) {
        struct dnswire_question *q = &m->qd[i];
        rc = dnswire_read_name(pkt, len, &off, q->name, &q->name_len);
        if (rc != 0)
            goto out_free_msg;
        if (len - off < 4) {
            rc = CF_EPARSE;
            goto out_free_msg;
        }
        q->qtype = get16(pkt + off);
        q->qclass = get16(pkt + off + 2);
        off += 4;
    }

    for (size_t i = 0; i < nrr; i++) {
        struct dnswire_rr *r = &m->rr[i];
        size_t start = off;
        rc = dnswire_read_name(pkt, len, &off, r->name, &r->name_len);
        if (rc != 0)
            goto out_free_msg;
        /* RFC 1035 §4.1.3: type, class, TTL and RDLENGTH, then the RDATA. */
        if (len - off < 10) {
            rc = CF_EPARSE;
            goto out_free_msg;
        }
        r->type = get16(pkt + off);
        r->class = get16(pkt + off + 2);
        r->ttl = get32(pkt + off + 4);
        r->rdlen = get16(pkt + off + 8);
        off += 10;
        if (len - off < r->rdlen) {
            rc = CF_EPARSE;
            goto out_free_msg;
        }
        r->rdata = pkt + off;
        r->rdata_off = off;
        off += r->rdlen;
        if (i < m->ancount)
            r->section = DNSWIRE_SECTION_ANSWER;
        else if (i < m->ancount + m->nscount)
            r->section = DNSWIRE_SECTION_AUTHORITY;
        else
            r->section = DNSWIRE_SECTION_ADDITIONAL;

        if (r->type == DNSWIRE_TYPE_OPT) {
            rc = parse_opt(m, r);
            if (rc != 0)
                goto out_free_msg;
        } else if (r->ttl & 0x80000000u) {
            r->ttl = 0; /* RFC 2181 §8 */
        }
        if (r->type == DNSWIRE_TYPE_TSIG) {
            /* RFC 8945 §5.1, §4.2: the last record, class ANY, only one. */
            if (i != nrr - 1 || r->section != DNSWIRE_SECTION_ADDITIONAL ||
                r->class != DNSWIRE_CLASS_ANY) {
                rc = CF_EPARSE;
                goto out_free_msg;
            }
            m->has_tsig = 1;
            m->tsig_rr_off = start;
        }
    }
    /* Octets after the last record are refused: nothing could vouch for them. */
    if (off != len) {
        rc = CF_EPARSE;
        goto out_free_msg;
    }
    return 0;

out_free_msg:
    dnswire_msg_cleanup(m);
    return rc;
}

void dnswire_msg_cleanup(struct dnswire_msg *m)
{
    if (!m->borrowed) {
        free(m->qd);
        free(m->rr);
    }
    memset(m, 0, sizeof(*m));
}

int dnswire_rdata_a(const struct dnswire_rr *rr, uint8_t out[4])
{
    if (rr->type != DNSWIRE_TYPE_A)
        return -EINVAL;
    if (rr->rdlen != 4)
        return CF_EPARSE;
    memcpy(out, rr->rdata, 4);
    return 0;
}

int dnswire_rdata_aaaa(const struct dnswire_rr *rr, uint8_t out[16])
{
    if (rr->type != DNSWIRE_TYPE_AAAA)
        return -EINVAL;
    if (rr->rdlen != 16)
        return CF_EPARSE;
    memcpy(out, rr->rdata, 16);
    return 0;
}

/*
 * rdata_bounds returns the end of rr's RDATA in m, or 0 when rr does not lie
 * inside m (a caller's mistake: the parser never makes such a record).
 */
static size_t rdata_bounds(const struct dnswire_msg *m, const struct dnswire_rr *rr)
{
    if (rr->rdata_off > m->len || rr->rdlen > m->len - rr->rdata_off)
        return 0;
    return rr->rdata_off + rr->rdlen;
}

int dnswire_rdata_name(const struct dnswire_msg *m, const struct dnswire_rr *rr, uint8_t *out,
                       size_t *out_len)
{
    size_t off = rr->rdata_off, end = rdata_bounds(m, rr);
    int rc;
    if (rr->type != DNSWIRE_TYPE_NS && rr->type != DNSWIRE_TYPE_CNAME &&
        rr->type != DNSWIRE_TYPE_DNAME && rr->type != DNSWIRE_TYPE_PTR)
        return -EINVAL;
    if (end == 0)
        return -EINVAL;
    /*
     * Reading with the RDATA's end as the message's end keeps the name inside
     * the record, while pointers may still reach back into the message.
     */
    rc = dnswire_read_name(m->pkt, end, &off, out, out_len);
    if (rc != 0)
        return rc;
    return off == end ? 0 : CF_EPARSE;
}

int dnswire_rdata_txt(const struct dnswire_rr *rr, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t off = 0, n = 0;
    if (rr->type != DNSWIRE_TYPE_TXT)
        return -EINVAL;
    /* RFC 1035 §3.3.14: one or more character-strings. */
    if (rr->rdlen == 0)
        return CF_EPARSE;
    while (off < rr->rdlen) {
        size_t l = rr->rdata[off];
        if (rr->rdlen - off - 1 < l)
            return CF_EPARSE;
        if (cap - n < l)
            return CF_ETOOBIG;
        memcpy(out + n, rr->rdata + off + 1, l);
        n += l;
        off += 1 + l;
    }
    *out_len = n;
    return 0;
}

int dnswire_rdata_soa(const struct dnswire_msg *m, const struct dnswire_rr *rr,
                      struct dnswire_soa *out)
{
    size_t off = rr->rdata_off, end = rdata_bounds(m, rr);
    int rc;
    if (rr->type != DNSWIRE_TYPE_SOA || end == 0)
        return -EINVAL;
    /* RFC 1035 §3.3.13: MNAME, RNAME, then five 32-bit numbers. */
    rc = dnswire_read_name(m->pkt, end, &off, out->mname, &out->mname_len);
    if (rc != 0)
        return rc;
    rc = dnswire_read_name(m->pkt, end, &off, out->rname, &out->rname_len);
    if (rc != 0)
        return rc;
    if (end - off != 20)
        return CF_EPARSE;
    out->serial = get32(m->pkt + off);
    out->refresh = get32(m->pkt + off + 4);
    out->retry = get32(m->pkt + off + 8);
    out->expire = get32(m->pkt + off + 12);
    out->minimum = get32(m->pkt + off + 16);
    return 0;
}

const char *dnswire_rcode_str(uint16_t rcode)
{
    switch (rcode) {
    case DNSWIRE_RCODE_NOERROR:
        return "NOERROR";
    case DNSWIRE_RCODE_FORMERR:
        return "FORMERR";
    case DNSWIRE_RCODE_SERVFAIL:
        return "SERVFAIL";
    case DNSWIRE_RCODE_NXDOMAIN:
        return "NXDOMAIN";
    case DNSWIRE_RCODE_NOTIMP:
        return "NOTIMP";
    case DNSWIRE_RCODE_REFUSED:
        return "REFUSED";
    case DNSWIRE_RCODE_YXDOMAIN:
        return "YXDOMAIN";
    case DNSWIRE_RCODE_YXRRSET:
        return "YXRRSET";
    case DNSWIRE_RCODE_NXRRSET:
        return "NXRRSET";
    case DNSWIRE_RCODE_NOTAUTH:
        return "NOTAUTH";
    case DNSWIRE_RCODE_NOTZONE:
        return "NOTZONE";
    case DNSWIRE_RCODE_BADVERS:
        return "BADVERS";
    case DNSWIRE_RCODE_BADKEY:
        return "BADKEY";
    case DNSWIRE_RCODE_BADTIME:
        return "BADTIME";
    case DNSWIRE_RCODE_BADTRUNC:
        return "BADTRUNC";
    default:
        return "UNKNOWN";
    }
}

/* ---- Writer ---- */

void dnswire_writer_init(struct dnswire_writer *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
}

static void put_counts(struct dnswire_writer *w)
{
    for (int i = 0; i < 4; i++)
        put16(w->buf + 4 + 2 * (size_t)i, w->count[i]);
}

int dnswire_write_header(struct dnswire_writer *w, const struct dnswire_header *h)
{
    if (w->cap < DNSWIRE_HEADER_LEN)
        return CF_ETOOBIG;
    if (w->len == 0) {
        w->len = DNSWIRE_HEADER_LEN;
        w->qd_end = DNSWIRE_HEADER_LEN;
    }
    /* RFC 1035 §4.1.1; the upper rcode bits go into the OPT record. */
    put16(w->buf, h->id);
    w->buf[2] = (uint8_t)((!!h->qr << 7) | ((h->opcode & 0xf) << 3) | (!!h->aa << 2) |
                          (!!h->tc << 1) | !!h->rd);
    w->buf[3] = (uint8_t)((!!h->ra << 7) | (!!h->ad << 5) | (!!h->cd << 4) | (h->rcode & 0xf));
    w->rcode = h->rcode & 0xfff;
    put_counts(w);
    return 0;
}

/*
 * find_name returns 1 and the offset of a name already written that equals
 * the wire name (len octets), ignoring case, or 0.
 */
static int find_name(const struct dnswire_writer *w, const uint8_t *name, size_t len,
                     uint16_t *found)
{
    uint8_t tmp[DNSWIRE_NAME_MAX];
    size_t tlen;
    for (size_t i = 0; i < w->nptrs; i++) {
        size_t off = w->ptr_off[i];
        if (w->ptr_len[i] != len)
            continue;
        if (dnswire_read_name(w->buf, w->len, &off, tmp, &tlen) == 0 &&
            dnswire_name_equal(tmp, tlen, name, len)) {
            *found = w->ptr_off[i];
            return 1;
        }
    }
    return 0;
}

/*
 * put_name appends the valid wire name (len octets): when compress is set,
 * its longest suffix already in the message becomes a pointer (RFC 1035
 * §4.1.4). The suffixes it writes out are remembered for later names. On
 * CF_ETOOBIG nothing was written; the caller restores w->nptrs.
 */
static int put_name(struct dnswire_writer *w, const uint8_t *name, size_t len, int compress)
{
    size_t prefix = len, off;
    uint16_t target = 0;
    int found = 0;
    if (compress) {
        for (off = 0; name[off] != 0; off += 1 + (size_t)name[off]) {
            if (find_name(w, name + off, len - off, &target)) {
                found = 1;
                prefix = off;
                break;
            }
        }
    }
    if (prefix + (found ? 2 : 0) > w->cap - w->len)
        return CF_ETOOBIG;
    memcpy(w->buf + w->len, name, prefix);
    /* Pointers hold 14 bits, so only suffixes starting below 0x4000 count. */
    for (off = 0; off < prefix && name[off] != 0; off += 1 + (size_t)name[off]) {
        if (w->nptrs == DNSWIRE_WRITER_PTRS || w->len + off > 0x3fff)
            break;
        w->ptr_off[w->nptrs] = (uint16_t)(w->len + off);
        w->ptr_len[w->nptrs] = (uint8_t)(len - off);
        w->nptrs++;
    }
    w->len += prefix;
    if (found) {
        put16(w->buf + w->len, (uint16_t)(0xc000 | target));
        w->len += 2;
    }
    return 0;
}

static int put_bytes(struct dnswire_writer *w, const void *data, size_t len)
{
    if (len > w->cap - w->len)
        return CF_ETOOBIG;
    if (len > 0)
        memcpy(w->buf + w->len, data, len);
    w->len += len;
    return 0;
}

int dnswire_write_question(struct dnswire_writer *w, const uint8_t *name, size_t name_len,
                           uint16_t qtype, uint16_t qclass)
{
    size_t saved_len = w->len, saved_ptrs = w->nptrs;
    uint8_t tail[4];
    int rc;
    if (w->len < DNSWIRE_HEADER_LEN || w->section != DNSWIRE_SECTION_QUESTION ||
        dnswire_name_check(name, name_len) != 0)
        return -EINVAL;
    if (w->count[0] == UINT16_MAX)
        return CF_ETOOBIG;
    /* RFC 1035 §4.1.2: QNAME, QTYPE, QCLASS. */
    put16(tail, qtype);
    put16(tail + 2, qclass);
    rc = put_name(w, name, name_len, 1);
    if (rc == 0)
        rc = put_bytes(w, tail, sizeof(tail));
    if (rc != 0) {
        w->len = saved_len;
        w->nptrs = saved_ptrs;
        return rc;
    }
    w->count[0]++;
    w->qd_end = w->len;
    put_counts(w);
    return 0;
}

/* put_txt writes a TXT value as 255-octet character-strings (RFC 1035 §3.3.14). */
static int put_txt(struct dnswire_writer *w, const uint8_t *data, size_t len)
{
    size_t off = 0;
    do {
        size_t chunk = len - off > 255 ? 255 : len - off;
        uint8_t l = (uint8_t)chunk;
        int rc = put_bytes(w, &l, 1);
        if (rc == 0)
            rc = put_bytes(w, data + off, chunk);
        if (rc != 0)
            return rc;
        off += chunk;
    } while (off < len);
    return 0;
}

/* put_rdata writes the RDATA of rd for its type; the caller restores w on failure. */
static int put_rdata(struct dnswire_writer *w, const struct dnswire_rdata *rd)
{
    uint8_t nums[20];
    int rc;
    switch (rd->type) {
    case DNSWIRE_TYPE_A:
        return put_bytes(w, rd->u.a, 4);
    case DNSWIRE_TYPE_AAAA:
        return put_bytes(w, rd->u.aaaa, 16);
    case DNSWIRE_TYPE_NS:
    case DNSWIRE_TYPE_CNAME:
    case DNSWIRE_TYPE_PTR:
    case DNSWIRE_TYPE_DNAME:
        if (dnswire_name_check(rd->u.name.wire, rd->u.name.len) != 0)
            return -EINVAL;
        /* RFC 6672 §2.5: a DNAME target is never compressed. */
        return put_name(w, rd->u.name.wire, rd->u.name.len, rd->type != DNSWIRE_TYPE_DNAME);
    case DNSWIRE_TYPE_SOA:
        if (dnswire_name_check(rd->u.soa->mname, rd->u.soa->mname_len) != 0 ||
            dnswire_name_check(rd->u.soa->rname, rd->u.soa->rname_len) != 0)
            return -EINVAL;
        put32(nums, rd->u.soa->serial);
        put32(nums + 4, rd->u.soa->refresh);
        put32(nums + 8, rd->u.soa->retry);
        put32(nums + 12, rd->u.soa->expire);
        put32(nums + 16, rd->u.soa->minimum);
        rc = put_name(w, rd->u.soa->mname, rd->u.soa->mname_len, 1);
        if (rc == 0)
            rc = put_name(w, rd->u.soa->rname, rd->u.soa->rname_len, 1);
        if (rc == 0)
            rc = put_bytes(w, nums, sizeof(nums));
        return rc;
    case DNSWIRE_TYPE_TXT:
        return put_txt(w, rd->u.txt.data, rd->u.txt.len);
    default:
        return put_bytes(w, rd->u.raw.data, rd->u.raw.len);
    }
}

/*
 * put_rr appends one record with the RDATA of rd, or an empty RDATA when rd
 * is NULL (RFC 2136 §2.5.2-3 deletions), and counts it in section sec.
 */
static int put_rr(struct dnswire_writer *w, enum dnswire_section sec, const uint8_t *name,
                  size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl,
                  const struct dnswire_rdata *rd)
{
    size_t saved_len = w->len, saved_ptrs = w->nptrs, rdstart;
    uint8_t fixed[10];
    int rc;
    if (w->len < DNSWIRE_HEADER_LEN || sec < DNSWIRE_SECTION_ANSWER ||
        sec > DNSWIRE_SECTION_ADDITIONAL || sec < w->section ||
        dnswire_name_check(name, name_len) != 0)
        return -EINVAL;
    if (w->count[sec] == UINT16_MAX)
        return CF_ETOOBIG;
    /* RFC 1035 §4.1.3: NAME, TYPE, CLASS, TTL, RDLENGTH, RDATA. */
    put16(fixed, type);
    put16(fixed + 2, rclass);
    put32(fixed + 4, ttl);
    put16(fixed + 8, 0);
    rc = put_name(w, name, name_len, 1);
    if (rc == 0)
        rc = put_bytes(w, fixed, sizeof(fixed));
    rdstart = w->len;
    if (rc == 0 && rd)
        rc = put_rdata(w, rd);
    if (rc == 0 && w->len - rdstart > UINT16_MAX)
        rc = -EINVAL;
    if (rc != 0) {
        w->len = saved_len;
        w->nptrs = saved_ptrs;
        return rc;
    }
    put16(w->buf + rdstart - 2, (uint16_t)(w->len - rdstart));
    w->count[sec]++;
    w->section = sec;
    put_counts(w);
    return 0;
}

int dnswire_write_rr(struct dnswire_writer *w, enum dnswire_section sec, const uint8_t *name,
                     size_t name_len, uint16_t rclass, uint32_t ttl, const struct dnswire_rdata *rd)
{
    return put_rr(w, sec, name, name_len, rd->type, rclass, ttl, rd);
}

int dnswire_write_opt(struct dnswire_writer *w, uint16_t udp_size, int do_bit)
{
    static const uint8_t root[1] = {0};
    /*
     * RFC 6891 §6.1.2-3: owner root, CLASS the payload size, TTL the upper
     * rcode bits, version 0 and the DO bit.
     */
    uint32_t ttl = ((uint32_t)(w->rcode >> 4) << 24) | (do_bit ? 0x8000u : 0);
    return put_rr(w, DNSWIRE_SECTION_ADDITIONAL, root, 1, DNSWIRE_TYPE_OPT, udp_size, ttl, NULL);
}

int dnswire_writer_truncate(struct dnswire_writer *w)
{
    if (w->len < DNSWIRE_HEADER_LEN)
        return -EINVAL;
    w->len = w->qd_end;
    w->count[1] = w->count[2] = w->count[3] = 0;
    w->section = DNSWIRE_SECTION_QUESTION;
    /* Names are remembered in the order written: keep those of the questions. */
    while (w->nptrs > 0 && w->ptr_off[w->nptrs - 1] >= w->qd_end)
        w->nptrs--;
    w->buf[2] |= 0x02; /* TC, RFC 1035 §4.1.1 */
    put_counts(w);
    return 0;
}

size_t dnswire_udp_limit(const struct dnswire_msg *q, size_t server_max)
{
    size_t limit;
    if (!q->edns.present)
        return DNSWIRE_UDP_MIN;
    limit = q->edns.udp_size < server_max ? q->edns.udp_size : server_max;
    return limit < DNSWIRE_UDP_MIN ? DNSWIRE_UDP_MIN : limit;
}

/* ---- Builders ---- */

int dnswire_build_query(uint8_t *out, size_t cap, size_t *len, uint16_t id, const char *name,
                        uint16_t qtype, int rd, uint16_t edns_udp_size)
{
    struct dnswire_writer w;
    struct dnswire_header h = {.id = id, .opcode = DNSWIRE_OPCODE_QUERY, .rd = !!rd};
    uint8_t wire[DNSWIRE_NAME_MAX];
    size_t wire_len;
    int rc = dnswire_name_from_text(wire, &wire_len, name);
    if (rc != 0)
        return rc;
    dnswire_writer_init(&w, out, cap);
    rc = dnswire_write_header(&w, &h);
    if (rc == 0)
        rc = dnswire_write_question(&w, wire, wire_len, qtype, DNSWIRE_CLASS_IN);
    if (rc == 0 && edns_udp_size != 0)
        rc = dnswire_write_opt(&w, edns_udp_size, 0);
    if (rc == 0)
        *len = w.len;
    return rc;
}

int dnswire_build_update(uint8_t *out, size_t cap, size_t *len, uint16_t id, const uint8_t *zone,
                         size_t zone_len, const struct dnswire_update *changes, size_t n)
{
    struct dnswire_writer w;
    struct dnswire_header h = {.id = id, .opcode = DNSWIRE_OPCODE_UPDATE};
    int rc;
    if (dnswire_name_check(zone, zone_len) != 0)
        return -EINVAL;
    dnswire_writer_init(&w, out, cap);
    rc = dnswire_write_header(&w, &h);
    /* RFC 2136 §2.3: the zone section names the zone, type SOA, class IN. */
    if (rc == 0)
        rc = dnswire_write_question(&w, zone, zone_len, DNSWIRE_TYPE_SOA, DNSWIRE_CLASS_IN);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct dnswire_update *c = &changes[i];
        if (dnswire_name_check(c->name, c->name_len) != 0 ||
            !dnswire_name_in_zone(c->name, c->name_len, zone, zone_len))
            return -EINVAL;
        switch (c->op) {
        case DNSWIRE_UPDATE_ADD:
            /* §2.5.1: CLASS the zone's, the RR's TTL and RDATA. */
            rc = put_rr(&w, DNSWIRE_SECTION_AUTHORITY, c->name, c->name_len, c->rdata.type,
                        DNSWIRE_CLASS_IN, c->ttl, &c->rdata);
            break;
        case DNSWIRE_UPDATE_DELETE_RRSET:
            /* §2.5.2: CLASS ANY, TTL 0, empty RDATA. */
            rc = put_rr(&w, DNSWIRE_SECTION_AUTHORITY, c->name, c->name_len, c->rdata.type,
                        DNSWIRE_CLASS_ANY, 0, NULL);
            break;
        case DNSWIRE_UPDATE_DELETE_NAME:
            /* §2.5.3: TYPE ANY, CLASS ANY, TTL 0, empty RDATA. */
            rc = put_rr(&w, DNSWIRE_SECTION_AUTHORITY, c->name, c->name_len, DNSWIRE_TYPE_ANY,
                        DNSWIRE_CLASS_ANY, 0, NULL);
            break;
        case DNSWIRE_UPDATE_DELETE_RR:
            /* §2.5.4: CLASS NONE, TTL 0, the RDATA of the RR to delete. */
            rc = put_rr(&w, DNSWIRE_SECTION_AUTHORITY, c->name, c->name_len, c->rdata.type,
                        DNSWIRE_CLASS_NONE, 0, &c->rdata);
            break;
        default:
            return -EINVAL;
        }
    }
    if (rc == 0)
        *len = w.len;
    return rc;
}

/* ---- TSIG ---- */

/* tsig_rr_len is the size of the TSIG record this code writes for key. */
static size_t tsig_rr_len(const struct dnswire_tsig_key *key)
{
    /* Owner, fixed part, algorithm, time, fudge, MAC size, MAC, ID, error, other len. */
    return key->name_len + 10 + sizeof(alg_hmac_sha256) + 6 + 2 + 2 + DNSWIRE_TSIG_MAC_MAX + 2 + 2 +
           2;
}

/* append_lower appends a wire name in canonical (lower-case) form, RFC 8945 §4.3.3. */
static void append_lower(struct buf *d, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf_putc(d, (char)lower(name[i]));
}

static int hmac_sha256(const struct dnswire_tsig_key *key, const struct buf *d,
                       uint8_t out[DNSWIRE_TSIG_MAC_MAX])
{
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha256(), key->secret, (int)key->secret_len, (const uint8_t *)d->data, d->len,
              out, &mlen) ||
        mlen != DNSWIRE_TSIG_MAC_MAX)
        return CF_ECRYPTO;
    return 0;
}

int dnswire_tsig_sign(const struct dnswire_tsig_key *key, uint8_t *msg, size_t cap, size_t *len,
                      uint64_t now, const struct dnswire_tsig_mac *request,
                      struct dnswire_tsig_mac *mac)
{
    struct dnswire_header h;
    struct buf d;
    uint8_t md[DNSWIRE_TSIG_MAC_MAX], vars[16], *p;
    size_t rrlen = tsig_rr_len(key);
    int rc;

    buf_init(&d);
    rc = dnswire_header_parse(&h, msg, *len);
    if (rc != 0)
        goto out_free_digest;
    if (dnswire_name_check(key->name, key->name_len) != 0 || key->secret_len == 0 ||
        (request && request->len > DNSWIRE_TSIG_MAC_MAX)) {
        rc = -EINVAL;
        goto out_free_digest;
    }
    if (h.arcount == UINT16_MAX || *len > cap || rrlen > cap - *len) {
        rc = CF_ETOOBIG;
        goto out_free_digest;
    }
    now &= 0xffffffffffffull;

    /*
     * RFC 8945 §4.3.1 and §4.3.3: the MAC covers the request's MAC (for a
     * response), the message as it is before the TSIG record is added, and
     * the TSIG variables: key name, class ANY, TTL 0, algorithm, time signed,
     * fudge, error and other data, names in canonical form.
     */
    if (request) {
        uint8_t l[2];
        put16(l, (uint16_t)request->len);
        buf_append(&d, l, 2);
        buf_append(&d, request->mac, request->len);
    }
    buf_append(&d, msg, *len);
    append_lower(&d, key->name, key->name_len);
    put16(vars, DNSWIRE_CLASS_ANY);
    put32(vars + 2, 0);
    buf_append(&d, vars, 6);
    buf_append(&d, alg_hmac_sha256, sizeof(alg_hmac_sha256));
    put48(vars, now);
    put16(vars + 6, DNSWIRE_TSIG_FUDGE);
    put16(vars + 8, 0);  /* error */
    put16(vars + 10, 0); /* other len */
    buf_append(&d, vars, 12);
    rc = hmac_sha256(key, &d, md);
    if (rc != 0)
        goto out_free_digest;

    /* RFC 8945 §4.2: the TSIG record, appended as the last additional record. */
    p = msg + *len;
    for (size_t i = 0; i < key->name_len; i++)
        *p++ = lower(key->name[i]);
    put16(p, DNSWIRE_TYPE_TSIG);
    put16(p + 2, DNSWIRE_CLASS_ANY);
    put32(p + 4, 0);
    put16(p + 8, (uint16_t)(rrlen - key->name_len - 10));
    p += 10;
    memcpy(p, alg_hmac_sha256, sizeof(alg_hmac_sha256));
    p += sizeof(alg_hmac_sha256);
    put48(p, now);
    put16(p + 6, DNSWIRE_TSIG_FUDGE);
    put16(p + 8, DNSWIRE_TSIG_MAC_MAX);
    p += 10;
    memcpy(p, md, sizeof(md));
    p += sizeof(md);
    put16(p, h.id); /* original ID */
    put16(p + 2, 0);
    put16(p + 4, 0);
    put16(msg + 10, (uint16_t)(h.arcount + 1));
    *len += rrlen;
    if (mac) {
        memcpy(mac->mac, md, sizeof(md));
        mac->len = sizeof(md);
        mac->time_signed = now;
    }

out_free_digest:
    buf_cleanup(&d);
    return rc;
}

int dnswire_tsig_verify(const struct dnswire_tsig_key *key, uint16_t *tsig_error,
                        const uint8_t *msg, size_t len, const struct dnswire_tsig_mac *request,
                        uint64_t now)
{
    struct dnswire_msg m;
    struct buf d;
    const struct dnswire_rr *t;
    uint8_t alg[DNSWIRE_NAME_MAX], md[DNSWIRE_TSIG_MAC_MAX];
    size_t alg_len, off, end, time_off, mac_off, mac_len, err_off, base;
    uint16_t orig_id, error, other_len;
    uint64_t signed_at, skew;
    int rc;

    buf_init(&d);
    if (tsig_error)
        *tsig_error = 0;
    /* A failed parse leaves m empty, so the one cleanup below is safe. */
    rc = dnswire_msg_parse(&m, msg, len);
    if (rc != 0)
        goto out_free_msg;
    if (!m.has_tsig) {
        rc = CF_EPROTO;
        goto out_free_msg;
    }
    t = &m.rr[m.ancount + m.nscount + m.arcount - 1];

    /* RFC 8945 §4.2: the TSIG RDATA, every field inside the record. */
    off = t->rdata_off;
    end = t->rdata_off + t->rdlen;
    rc = dnswire_read_name(msg, end, &off, alg, &alg_len);
    if (rc != 0)
        goto out_free_msg;
    rc = CF_EPARSE;
    if (end - off < 10)
        goto out_free_msg;
    time_off = off;
    signed_at = get48(msg + off);
    mac_len = get16(msg + off + 8);
    mac_off = off + 10;
    if (end - mac_off < mac_len || end - mac_off - mac_len < 6)
        goto out_free_msg;
    err_off = mac_off + mac_len;
    orig_id = get16(msg + err_off);
    error = get16(msg + err_off + 2);
    other_len = get16(msg + err_off + 4);
    if (end - err_off - 6 != other_len)
        goto out_free_msg;
    if (tsig_error)
        *tsig_error = error;

    /*
     * §5.2.1: another key or algorithm is BADKEY. §5.3.2: a BADKEY or BADSIG
     * answer is unsigned (empty MAC). §5.2.2.1 allows truncated MACs; they
     * are refused here, as the signer never truncates.
     */
    rc = CF_EPROTO;
    if (!dnswire_name_equal(t->name, t->name_len, key->name, key->name_len) ||
        !dnswire_name_equal(alg, alg_len, alg_hmac_sha256, sizeof(alg_hmac_sha256)) ||
        mac_len != DNSWIRE_TSIG_MAC_MAX || (request && request->len > DNSWIRE_TSIG_MAC_MAX))
        goto out_free_msg;

    /*
     * §4.3.3 and §5.3.2: the request MAC, the message without its TSIG record
     * with the original ID and ARCOUNT one less, then the TSIG variables as
     * received, names in canonical form.
     */
    if (request) {
        uint8_t l[2];
        put16(l, (uint16_t)request->len);
        buf_append(&d, l, 2);
        buf_append(&d, request->mac, request->len);
    }
    base = d.len;
    buf_append(&d, msg, m.tsig_rr_off);
    put16((uint8_t *)d.data + base, orig_id);
    put16((uint8_t *)d.data + base + 10, (uint16_t)(m.hdr.arcount - 1));
    append_lower(&d, key->name, key->name_len);
    buf_append(&d, msg + t->rdata_off - 8, 6); /* class and TTL */
    buf_append(&d, alg_hmac_sha256, sizeof(alg_hmac_sha256));
    buf_append(&d, msg + time_off, 8);                    /* time signed and fudge */
    buf_append(&d, msg + err_off + 2, end - err_off - 2); /* error and other data */
    rc = hmac_sha256(key, &d, md);
    if (rc != 0)
        goto out_free_msg;
    if (CRYPTO_memcmp(md, msg + mac_off, DNSWIRE_TSIG_MAC_MAX) != 0) {
        rc = CF_EPROTO;
        goto out_free_msg;
    }
    /* §5.2.3: the time is checked after the MAC, against the signer's fudge. */
    skew = now > signed_at ? now - signed_at : signed_at - now;
    if (skew > get16(msg + time_off + 6) || error != 0) {
        rc = CF_EPROTO;
        goto out_free_msg;
    }
    rc = 0;

out_free_msg:
    dnswire_msg_cleanup(&m);
    buf_cleanup(&d);
    return rc;
}

/* ---- TSIG key files ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * b64_decode decodes standard base64 (RFC 4648 §4, padding optional) of n
 * characters into out (cap octets). Returns 0, CF_EPARSE or CF_ETOOBIG.
 */
static int b64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *s, size_t n)
{
    size_t pad = 0, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if ((pad > 0 && (n + pad) % 4 != 0) || n % 4 == 1)
        return CF_EPARSE;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return CF_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return CF_ETOOBIG;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = o;
    return 0;
}

/* A piece of the key file text. */
struct span {
    const char *p;
    size_t n;
};

/*
 * key_finish fills key from the pieces found in a key file: a text name, an
 * algorithm (n == 0 when the form has none) and a base64 secret.
 */
static int key_finish(struct dnswire_tsig_key *key, struct span name, struct span alg,
                      struct span secret, const char **reason)
{
    char text[DNSWIRE_NAME_TEXT_MAX];
    int rc;
    if (name.n == 0) {
        *reason = "the key has no name";
        return CF_ECONFIG;
    }
    if (secret.n == 0) {
        *reason = "the key has no secret";
        return CF_ECONFIG;
    }
    if (alg.p && (alg.n < 11 || alg.n > 12 || strncasecmp(alg.p, "hmac-sha256", 11) != 0 ||
                  (alg.n == 12 && alg.p[11] != '.'))) {
        *reason = "unsupported TSIG algorithm (only hmac-sha256 is supported)";
        return CF_ECONFIG;
    }
    if (name.n >= sizeof(text)) {
        *reason = "invalid key name";
        return CF_ECONFIG;
    }
    memcpy(text, name.p, name.n);
    text[name.n] = '\0';
    if (dnswire_name_from_text(key->name, &key->name_len, text) != 0) {
        *reason = "invalid key name";
        return CF_ECONFIG;
    }
    rc = b64_decode(key->secret, sizeof(key->secret), &key->secret_len, secret.p, secret.n);
    if (rc == CF_ETOOBIG) {
        *reason = "the secret is longer than 128 octets";
        return CF_ECONFIG;
    }
    if (rc != 0) {
        *reason = "the secret is not valid base64";
        return CF_ECONFIG;
    }
    if (key->secret_len == 0) {
        *reason = "the secret is empty";
        return CF_ECONFIG;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Tokens of BIND's configuration syntax. */
enum tok_kind { TOK_EOF, TOK_WORD, TOK_STRING, TOK_PUNCT, TOK_BAD };

/*
 * next_token reads the next token of BIND syntax from *p (before end),
 * skipping white space and #, // and C-style comments.
 */
static enum tok_kind next_token(const char **p, const char *end, struct span *tok)
{
    const char *s = *p;
    for (;;) {
        while (s < end && is_space(*s))
            s++;
        if (s < end && (*s == '#' || (*s == '/' && end - s > 1 && s[1] == '/'))) {
            while (s < end && *s != '\n')
                s++;
            continue;
        }
        if (s < end && *s == '/' && end - s > 1 && s[1] == '*') {
            s += 2;
            while (s < end && !(*s == '*' && end - s > 1 && s[1] == '/'))
                s++;
            if (s == end) {
                *p = s;
                return TOK_BAD;
            }
            s += 2;
            continue;
        }
        break;
    }
    if (s == end) {
        *p = s;
        return TOK_EOF;
    }
    if (*s == '{' || *s == '}' || *s == ';') {
        tok->p = s;
        tok->n = 1;
        *p = s + 1;
        return TOK_PUNCT;
    }
    if (*s == '"') {
        const char *q = ++s;
        while (q < end && *q != '"' && *q != '\n')
            q++;
        if (q == end || *q != '"') {
            *p = q;
            return TOK_BAD;
        }
        tok->p = s;
        tok->n = (size_t)(q - s);
        *p = q + 1;
        return TOK_STRING;
    }
    tok->p = s;
    while (s < end && !is_space(*s) && *s != '{' && *s != '}' && *s != ';' && *s != '"')
        s++;
    tok->n = (size_t)(s - tok->p);
    *p = s;
    return TOK_WORD;
}

static int tok_is(enum tok_kind k, struct span t, enum tok_kind want, const char *text)
{
    return k == want && t.n == strlen(text) && strncmp(t.p, text, t.n) == 0;
}

/* parse_bind reads `key "name" { algorithm A; secret "S"; };` (BIND's named.conf). */
static int parse_bind(struct dnswire_tsig_key *key, const char *p, const char *end,
                      const char **reason)
{
    struct span name = {0}, alg = {0}, secret = {0}, t = {0}, v = {0};
    enum tok_kind k;

    /* Unterminated comments and strings first, so later errors can be specific. */
    for (const char *q = p; (k = next_token(&q, end, &t)) != TOK_EOF;) {
        if (k == TOK_BAD) {
            *reason = "unterminated comment or quoted string";
            return CF_ECONFIG;
        }
    }
    (void)next_token(&p, end, &t); /* "key", checked by the caller */
    k = next_token(&p, end, &name);
    if (k != TOK_STRING && k != TOK_WORD) {
        *reason = "expected the key name after 'key'";
        return CF_ECONFIG;
    }
    k = next_token(&p, end, &t);
    if (!tok_is(k, t, TOK_PUNCT, "{")) {
        *reason = "expected '{' after the key name";
        return CF_ECONFIG;
    }
    for (;;) {
        k = next_token(&p, end, &t);
        if (tok_is(k, t, TOK_PUNCT, "}"))
            break;
        if (k != TOK_WORD) {
            *reason = k == TOK_EOF ? "unterminated key block (missing '}')"
                                   : "unexpected text in the key block";
            return CF_ECONFIG;
        }
        enum tok_kind vk = next_token(&p, end, &v);
        if (vk != TOK_WORD && vk != TOK_STRING) {
            *reason = "expected a value in the key block";
            return CF_ECONFIG;
        }
        if (tok_is(k, t, TOK_WORD, "algorithm")) {
            alg = v;
        } else if (tok_is(k, t, TOK_WORD, "secret")) {
            secret = v;
        } else {
            *reason = "unknown statement in the key block (expected algorithm or secret)";
            return CF_ECONFIG;
        }
        k = next_token(&p, end, &t);
        if (!tok_is(k, t, TOK_PUNCT, ";")) {
            *reason = "expected ';' after a statement in the key block";
            return CF_ECONFIG;
        }
    }
    k = next_token(&p, end, &t);
    if (!tok_is(k, t, TOK_PUNCT, ";")) {
        *reason = "expected ';' after the key block";
        return CF_ECONFIG;
    }
    k = next_token(&p, end, &t);
    if (k != TOK_EOF) {
        *reason = tok_is(k, t, TOK_WORD, "key") ? "more than one key in the file"
                                                : "unexpected text after the key block";
        return CF_ECONFIG;
    }
    if (!alg.p) {
        *reason = "the key block has no algorithm";
        return CF_ECONFIG;
    }
    return key_finish(key, name, alg, secret, reason);
}

/* next_line returns the next line of [*p, end) without its newline. */
static int next_line(const char **p, const char *end, struct span *line)
{
    const char *s = *p, *e;
    if (s >= end)
        return 0;
    e = memchr(s, '\n', (size_t)(end - s));
    if (!e)
        e = end;
    line->p = s;
    line->n = (size_t)(e - s);
    *p = e < end ? e + 1 : end;
    return 1;
}

/* trim removes white space at both ends and a comment starting with " #" or at the start. */
static struct span trim(struct span s)
{
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '#' && (i == 0 || is_space(s.p[i - 1]))) {
            s.n = i;
            break;
        }
    }
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static struct span unquote(struct span s)
{
    if (s.n >= 2 && (s.p[0] == '"' || s.p[0] == '\'') && s.p[s.n - 1] == s.p[0]) {
        s.p++;
        s.n -= 2;
    }
    return s;
}

/*
 * parse_knot reads knot's YAML key section as keymgr -t prints it:
 * "key:" then "- id: NAME", "algorithm: ALG", "secret: BASE64".
 */
static int parse_knot(struct dnswire_tsig_key *key, const char *p, const char *end,
                      const char **reason)
{
    struct span name = {0}, alg = {0}, secret = {0}, line;
    int in_key = 0, ids = 0;
    while (next_line(&p, end, &line)) {
        int indented = line.n > 0 && is_space(line.p[0]);
        struct span s = trim(line);
        if (s.n == 0)
            continue;
        if (!indented) {
            in_key = s.n == 4 && memcmp(s.p, "key:", 4) == 0;
            continue;
        }
        if (!in_key)
            continue;
        if (s.n >= 2 && s.p[0] == '-' && is_space(s.p[1])) {
            s.p += 2;
            s.n -= 2;
            s = trim(s);
        }
        const char *colon = memchr(s.p, ':', s.n);
        if (!colon) {
            *reason = "expected 'attribute: value' in the key section";
            return CF_ECONFIG;
        }
        struct span k = {s.p, (size_t)(colon - s.p)};
        struct span v = {colon + 1, s.n - k.n - 1};
        v = unquote(trim(v));
        if (k.n == 2 && memcmp(k.p, "id", 2) == 0) {
            name = v;
            ids++;
        } else if (k.n == 9 && memcmp(k.p, "algorithm", 9) == 0) {
            alg = v;
        } else if (k.n == 6 && memcmp(k.p, "secret", 6) == 0) {
            secret = v;
        }
    }
    if (ids > 1) {
        *reason = "more than one key in the file";
        return CF_ECONFIG;
    }
    if (!alg.p) {
        *reason = "the key section has no algorithm";
        return CF_ECONFIG;
    }
    return key_finish(key, name, alg, secret, reason);
}

/* has_knot_key_section returns 1 when a line of [p, end) is "key:" at its start. */
static int has_knot_key_section(const char *p, const char *end)
{
    struct span line;
    while (next_line(&p, end, &line)) {
        struct span s = trim(line);
        if (line.n > 0 && !is_space(line.p[0]) && s.n == 4 && memcmp(s.p, "key:", 4) == 0)
            return 1;
    }
    return 0;
}

/* parse_line reads the one-line forms "name:secret" and "alg:name:secret". */
static int parse_line(struct dnswire_tsig_key *key, const char *p, const char *end,
                      const char **reason)
{
    struct span name = {0}, alg = {0}, secret = {0}, line, s, found = {0};
    const char *c1, *c2;
    while (next_line(&p, end, &line)) {
        s = trim(line);
        if (s.n == 0)
            continue;
        if (found.p) {
            *reason = "more than one line in a key file of the form name:secret";
            return CF_ECONFIG;
        }
        found = s;
    }
    if (!found.p) {
        *reason = "the key file is empty";
        return CF_ECONFIG;
    }
    c1 = memchr(found.p, ':', found.n);
    if (!c1) {
        *reason = "unknown key file format (expected BIND's key block, knot's key "
                  "section, or name:secret)";
        return CF_ECONFIG;
    }
    c2 = memchr(c1 + 1, ':', found.n - (size_t)(c1 + 1 - found.p));
    if (c2 && memchr(c2 + 1, ':', found.n - (size_t)(c2 + 1 - found.p))) {
        *reason = "too many ':' (expected name:secret or hmac-sha256:name:secret)";
        return CF_ECONFIG;
    }
    if (c2) {
        alg = (struct span){found.p, (size_t)(c1 - found.p)};
        name = (struct span){c1 + 1, (size_t)(c2 - c1 - 1)};
        secret = (struct span){c2 + 1, found.n - (size_t)(c2 + 1 - found.p)};
    } else {
        name = (struct span){found.p, (size_t)(c1 - found.p)};
        secret = (struct span){c1 + 1, found.n - (size_t)(c1 + 1 - found.p)};
    }
    return key_finish(key, trim(name), alg.p ? trim(alg) : alg, trim(secret), reason);
}

int dnswire_tsig_key_parse(struct dnswire_tsig_key *key, const char *text, size_t len,
                           const char **reason)
{
    const char *p = text, *end = text + len;
    struct span t = {0};
    enum tok_kind k;
    int rc;

    memset(key, 0, sizeof(*key));
    *reason = NULL;
    if (memchr(text, '\0', len)) {
        *reason = "the key file contains a NUL octet";
        rc = CF_ECONFIG;
        goto out_wipe_key;
    }
    /*
     * The form: knot's when a line reads "key:" (a whole knot.conf may hold
     * other sections), BIND's when the first word is "key", else one line.
     */
    k = next_token(&p, end, &t);
    if (has_knot_key_section(text, end))
        rc = parse_knot(key, text, end, reason);
    else if (tok_is(k, t, TOK_WORD, "key"))
        rc = parse_bind(key, text, end, reason);
    else
        rc = parse_line(key, text, end, reason);

out_wipe_key:
    if (rc != 0)
        dnswire_tsig_key_cleanup(key);
    return rc;
}

int dnswire_tsig_key_load(struct dnswire_tsig_key *key, const char *path, const char **reason)
{
    const size_t max = (size_t)64 * 1024;
    char *text = xmalloc(max + 1);
    size_t n = 0;
    int rc = 0;
    FILE *f = fopen(path, "r");

    memset(key, 0, sizeof(*key));
    if (!f) {
        rc = -errno;
        *reason = "cannot read the key file";
        goto out_free_text;
    }
    n = fread(text, 1, max + 1, f);
    if (ferror(f)) {
        rc = -EIO;
        *reason = "cannot read the key file";
        goto out_free_text;
    }
    if (n > max) {
        rc = CF_ETOOBIG;
        *reason = "the key file is larger than 64 KiB";
        goto out_free_text;
    }
    rc = dnswire_tsig_key_parse(key, text, n, reason);

out_free_text:
    if (f)
        fclose(f);
    OPENSSL_cleanse(text, max + 1);
    free(text);
    return rc;
}

void dnswire_tsig_key_cleanup(struct dnswire_tsig_key *key)
{
    OPENSSL_cleanse(key, sizeof(*key));
}
