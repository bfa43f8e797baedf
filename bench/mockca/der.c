/*
 * der.c - a DER writer and reader (ITU-T X.690) for the certificates the
 * mock issues and the requests it reads.
 *
 * The writer is why issuance is cheap: a certificate is a few hundred
 * octets written straight into a buffer, instead of an X509 object built
 * through the library's ASN.1 machinery and serialized again. A
 * constructed value reserves four length octets when it is opened and is
 * moved down to its minimal length form when it is closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "mockca.h"

/* The room mc_der_begin reserves: 0x83 and three length octets (values < 16 MiB). */
#define LEN_RESERVED 4

void mc_der_init(struct mc_der *w, struct buf *b)
{
    w->b = b;
    w->depth = 0;
}

/* put_len appends a definite length in minimal form (X.690 §10.1). */
static void put_len(struct buf *b, size_t n)
{
    uint8_t l[5];
    size_t k = 0;

    if (n < 0x80) {
        l[k++] = (uint8_t)n;
    } else if (n < 0x100) {
        l[k++] = 0x81;
        l[k++] = (uint8_t)n;
    } else if (n < 0x10000) {
        l[k++] = 0x82;
        l[k++] = (uint8_t)(n >> 8);
        l[k++] = (uint8_t)n;
    } else {
        l[k++] = 0x83;
        l[k++] = (uint8_t)(n >> 16);
        l[k++] = (uint8_t)(n >> 8);
        l[k++] = (uint8_t)n;
    }
    buf_append(b, l, k);
}

void mc_der_begin(struct mc_der *w, unsigned tag)
{
    static const uint8_t reserved[LEN_RESERVED] = {0};

    /* Nesting is fixed by the code that writes, never by input: overflow is a bug. */
    if (w->depth == (int)(sizeof(w->open) / sizeof(w->open[0])))
        abort();
    buf_putc(w->b, (char)tag);
    w->open[w->depth++] = w->b->len;
    buf_append(w->b, reserved, LEN_RESERVED);
}

void mc_der_end(struct mc_der *w)
{
    size_t at = w->open[--w->depth];
    size_t content = w->b->len - at - LEN_RESERVED;
    uint8_t l[LEN_RESERVED];
    size_t k = 0;

    if (content < 0x80) {
        l[k++] = (uint8_t)content;
    } else if (content < 0x100) {
        l[k++] = 0x81;
        l[k++] = (uint8_t)content;
    } else if (content < 0x10000) {
        l[k++] = 0x82;
        l[k++] = (uint8_t)(content >> 8);
        l[k++] = (uint8_t)content;
    } else {
        l[k++] = 0x83;
        l[k++] = (uint8_t)(content >> 16);
        l[k++] = (uint8_t)(content >> 8);
        l[k++] = (uint8_t)content;
    }
    memcpy(w->b->data + at, l, k);
    if (k < LEN_RESERVED) {
        memmove(w->b->data + at + k, w->b->data + at + LEN_RESERVED, content);
        w->b->len -= LEN_RESERVED - k;
        w->b->data[w->b->len] = '\0';
    }
}

void mc_der_put(struct mc_der *w, unsigned tag, const void *p, size_t n)
{
    buf_putc(w->b, (char)tag);
    put_len(w->b, n);
    buf_append(w->b, p, n);
}

void mc_der_raw(struct mc_der *w, const void *p, size_t n)
{
    buf_append(w->b, p, n);
}

void mc_der_uint(struct mc_der *w, const uint8_t *be, size_t n)
{
    /* X.690 §8.3.2: no redundant leading zeros; a zero first when the high bit is set. */
    while (n > 1 && be[0] == 0) {
        be++;
        n--;
    }
    buf_putc(w->b, MC_DER_INT);
    if (n == 0) {
        put_len(w->b, 1);
        buf_putc(w->b, 0);
        return;
    }
    put_len(w->b, n + (be[0] & 0x80 ? 1 : 0));
    if (be[0] & 0x80)
        buf_putc(w->b, 0);
    buf_append(w->b, be, n);
}

void mc_der_time(struct mc_der *w, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char s[24];
    size_t n;

    gmtime_r(&tt, &tm);
    /* RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always Z. */
    if (tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050) {
        n = (size_t)snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        mc_der_put(w, 0x17, s, n);
    } else {
        n = (size_t)snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        mc_der_put(w, 0x18, s, n);
    }
}

int mc_der_next(struct mc_der_r *r, unsigned *tag, struct mc_der_r *content, const uint8_t **tlv,
                size_t *tlv_len)
{
    const uint8_t *p = r->p, *start = r->p;
    size_t len, left;

    if (r->end - p < 2)
        return CF_EPARSE;
    *tag = *p++;
    /* High-tag-number form (X.690 §8.1.2.4) never occurs in what the mock reads. */
    if ((*tag & 0x1f) == 0x1f)
        return CF_EPARSE;
    len = *p++;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        /* Indefinite (0x80) is BER, and more than four octets is beyond any bound here. */
        if (k == 0 || k > 4 || (size_t)(r->end - p) < k || p[0] == 0)
            return CF_EPARSE;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | *p++;
        if (len < 0x80)
            return CF_EPARSE; /* not minimal */
    }
    left = (size_t)(r->end - p);
    if (len > left)
        return CF_EPARSE;
    content->p = p;
    content->end = p + len;
    if (tlv) {
        *tlv = start;
        *tlv_len = (size_t)(p + len - start);
    }
    r->p = p + len;
    return 0;
}

int mc_der_expect(struct mc_der_r *r, unsigned tag, struct mc_der_r *content, const uint8_t **tlv,
                  size_t *tlv_len)
{
    struct mc_der_r save = *r;
    unsigned t;

    if (mc_der_next(r, &t, content, tlv, tlv_len) != 0 || t != tag) {
        *r = save;
        return CF_EPARSE;
    }
    return 0;
}
