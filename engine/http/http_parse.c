/*
 * http_parse.c - the response header parsers: pure functions of their
 * input, no curl, no loop. Everything here reads what a possibly hostile
 * server sent, so every length is bounded and nothing is trusted to be
 * NUL-terminated.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http.h"
#include "timeutil.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 §5.6.2: tchar. */
static int is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ieq compares s (n bytes) with the lower-case C string lit, ignoring case. */
static int ieq(const char *s, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (lit[i] == '\0' || lower(s[i]) != lit[i])
            return 0;
    return lit[i] == '\0';
}

/* trim narrows [*v, *v + *len) to drop leading and trailing OWS. */
static void trim(const char **v, size_t *len)
{
    while (*len && is_ows(**v)) {
        (*v)++;
        (*len)--;
    }
    while (*len && is_ows((*v)[*len - 1]))
        (*len)--;
}

/* --- Retry-After (RFC 9110 §10.2.3) --- */

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* struct scan reads a NUL-terminated copy of the value, left to right. */
struct scan {
    const char *p;
};

static int scan_lit(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* scan_num reads exactly ndig digits (or 1..ndig when flexible). */
static int scan_num(struct scan *s, int ndig, int flexible, int *out)
{
    int v = 0, i;
    for (i = 0; i < ndig && is_digit(s->p[i]); i++)
        v = v * 10 + (s->p[i] - '0');
    if (i == 0 || (!flexible && i != ndig))
        return -1;
    s->p += i;
    *out = v;
    return 0;
}

static int scan_month(struct scan *s, int *m)
{
    static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(s->p, names[i], 3) == 0) {
            s->p += 3;
            *m = i + 1;
            return 0;
        }
    return -1;
}

/* scan_day_name accepts a day name, short ("Sun") or long ("Sunday"). */
static int scan_day_name(struct scan *s, int long_form)
{
    static const char *const l[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                    "Friday", "Saturday", "Sunday"};
    for (int i = 0; i < 7; i++) {
        size_t n = long_form ? strlen(l[i]) : 3;
        if (strncmp(s->p, l[i], n) == 0) {
            s->p += n;
            return 0;
        }
    }
    return -1;
}

static int scan_time(struct scan *s, int *hh, int *mm, int *ss)
{
    if (scan_num(s, 2, 0, hh) || scan_lit(s, ":") || scan_num(s, 2, 0, mm) || scan_lit(s, ":") ||
        scan_num(s, 2, 0, ss))
        return -1;
    return 0;
}

/*
 * parse_http_date reads the three formats of RFC 9110 §5.6.7 into Unix
 * seconds: IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", the obsolete RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
 */
static int parse_http_date(int64_t *out, const char *str, int64_t now)
{
    struct scan s = {str};
    int y = 0, m = 0, d = 0, hh = 0, mm = 0, ss = 0;
    if (str[0] != '\0' && str[1] != '\0' && str[2] != '\0' && str[3] == ',') {
        /* IMF-fixdate */
        if (scan_day_name(&s, 0) || scan_lit(&s, ", ") || scan_num(&s, 2, 0, &d) ||
            scan_lit(&s, " ") || scan_month(&s, &m) || scan_lit(&s, " ") ||
            scan_num(&s, 4, 0, &y) || scan_lit(&s, " ") || scan_time(&s, &hh, &mm, &ss) ||
            scan_lit(&s, " GMT"))
            return CF_EPARSE;
    } else if (strchr(str, ',')) {
        /* rfc850-date */
        if (scan_day_name(&s, 1) || scan_lit(&s, ", ") || scan_num(&s, 2, 0, &d) ||
            scan_lit(&s, "-") || scan_month(&s, &m) || scan_lit(&s, "-") ||
            scan_num(&s, 2, 0, &y) || scan_lit(&s, " ") || scan_time(&s, &hh, &mm, &ss) ||
            scan_lit(&s, " GMT"))
            return CF_EPARSE;
        /*
         * RFC 9110 §5.6.7: a two-digit year more than 50 years in the future
         * is the most recent past year with the same last two digits.
         */
        int64_t cur = 1970 + now / (365 * 86400 + 86400 / 4);
        int64_t yy = cur - cur % 100 + y;
        if (yy > cur + 50)
            yy -= 100;
        y = (int)yy;
    } else {
        /* asctime-date: the day is "DD" or " D" */
        if (scan_day_name(&s, 0) || scan_lit(&s, " ") || scan_month(&s, &m) || scan_lit(&s, " "))
            return CF_EPARSE;
        if (s.p[0] == ' ')
            s.p++;
        if (scan_num(&s, 2, 1, &d) || scan_lit(&s, " ") || scan_time(&s, &hh, &mm, &ss) ||
            scan_lit(&s, " ") || scan_num(&s, 4, 0, &y))
            return CF_EPARSE;
    }
    if (*s.p != '\0' || y < 1900 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m) ||
        hh > 23 || mm > 59 || ss > 60)
        return CF_EPARSE;
    *out = cf_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

int http_parse_retry_after(int64_t *out, const char *v, size_t len, int64_t now)
{
    int64_t t;
    trim(&v, &len);
    if (len == 0)
        return CF_EPARSE;
    if (is_digit(v[0])) {
        /* delay-seconds = 1*DIGIT; a huge number saturates at the cap. */
        int64_t secs = 0;
        for (size_t i = 0; i < len; i++) {
            if (!is_digit(v[i]))
                return CF_EPARSE;
            if (secs <= HTTP_RETRY_AFTER_MAX)
                secs = secs * 10 + (v[i] - '0');
        }
        t = now + (secs > HTTP_RETRY_AFTER_MAX ? HTTP_RETRY_AFTER_MAX : secs);
    } else {
        char tmp[40]; /* the longest valid form, rfc850 with "Wednesday", is 34 */
        if (len >= sizeof(tmp) || memchr(v, '\0', len))
            return CF_EPARSE;
        memcpy(tmp, v, len);
        tmp[len] = '\0';
        int rc = parse_http_date(&t, tmp, now);
        if (rc)
            return rc;
    }
    if (t < now)
        t = now; /* a date in the past: retry now */
    if (t > now + HTTP_RETRY_AFTER_MAX)
        t = now + HTTP_RETRY_AFTER_MAX;
    *out = t;
    return 0;
}

/* --- Link (RFC 8288 §3) --- */

const char *http_rel_name(enum http_rel r)
{
    switch (r) {
    case HTTP_REL_UP:
        return "up";
    case HTTP_REL_ALTERNATE:
        return "alternate";
    case HTTP_REL_INDEX:
        return "index";
    }
    return "?";
}

void http_links_free(struct http_link *links, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(links[i].url);
        links[i].url = NULL;
    }
}

/* url_ok refuses targets with spaces or control characters: no valid URI has them. */
static int url_ok(const char *u, size_t n)
{
    if (n == 0 || n > HTTP_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
            return 0;
    return 1;
}

/*
 * rel_mask maps a rel value (a space-separated list of relation types,
 * RFC 8288 §3.3) to a bit per relation of enum http_rel. Relation types
 * compare case-insensitively.
 */
static unsigned rel_mask(const char *v, size_t len)
{
    unsigned mask = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == '\n' || v[i] == '\r'))
            i++;
        size_t s = i;
        while (i < len && !is_ows(v[i]) && v[i] != '\n' && v[i] != '\r')
            i++;
        if (ieq(v + s, i - s, "up"))
            mask |= 1u << HTTP_REL_UP;
        else if (ieq(v + s, i - s, "alternate"))
            mask |= 1u << HTTP_REL_ALTERNATE;
        else if (ieq(v + s, i - s, "index"))
            mask |= 1u << HTTP_REL_INDEX;
    }
    return mask;
}

int http_parse_link(struct http_link *links, size_t max, size_t *n, const char *v, size_t len)
{
    size_t p = 0;
    for (;;) {
        /* #list: empty elements and OWS around commas are allowed (RFC 9110 §5.6.1). */
        while (p < len && (is_ows(v[p]) || v[p] == ','))
            p++;
        if (p == len)
            return 0;
        if (v[p] != '<')
            return CF_EPARSE;
        const char *gt = memchr(v + p + 1, '>', len - p - 1);
        if (!gt)
            return CF_EPARSE;
        const char *url = v + p + 1;
        size_t url_len = (size_t)(gt - url);
        p = (size_t)(gt - v) + 1;
        unsigned mask = 0;
        int seen_rel = 0;
        for (;;) {
            while (p < len && is_ows(v[p]))
                p++;
            if (p == len || v[p] != ';')
                break;
            p++;
            while (p < len && is_ows(v[p]))
                p++;
            size_t ns = p;
            while (p < len && is_tchar(v[p]))
                p++;
            if (p == ns)
                return CF_EPARSE;
            int is_rel = ieq(v + ns, p - ns, "rel");
            while (p < len && is_ows(v[p]))
                p++;
            if (p == len || v[p] != '=')
                continue; /* a parameter without a value */
            p++;
            while (p < len && is_ows(v[p]))
                p++;
            char val[512];
            size_t vl = 0;
            int too_long = 0;
            if (p < len && v[p] == '"') {
                /* quoted-string with quoted-pair escapes (RFC 9110 §5.6.4) */
                p++;
                for (;;) {
                    if (p == len)
                        return CF_EPARSE;
                    char c = v[p++];
                    if (c == '"')
                        break;
                    if (c == '\\') {
                        if (p == len)
                            return CF_EPARSE;
                        c = v[p++];
                    }
                    if (vl < sizeof(val))
                        val[vl++] = c;
                    else
                        too_long = 1;
                }
            } else {
                size_t vs = p;
                while (p < len && is_tchar(v[p]))
                    p++;
                if (p == vs)
                    return CF_EPARSE;
                too_long = p - vs > sizeof(val);
                vl = too_long ? 0 : p - vs;
                memcpy(val, v + vs, vl);
            }
            /* RFC 8288 §3.3: only the first rel parameter counts. */
            if (is_rel && !seen_rel) {
                seen_rel = 1;
                if (!too_long)
                    mask = rel_mask(val, vl);
            }
        }
        if (p < len && v[p] != ',')
            return CF_EPARSE;
        if (!url_ok(url, url_len))
            continue;
        for (unsigned r = HTTP_REL_UP; r <= HTTP_REL_INDEX; r++) {
            if (!(mask & (1u << r)) || *n >= max)
                continue;
            links[*n].rel = (enum http_rel)r;
            links[*n].url = xstrndup(url, url_len);
            (*n)++;
        }
    }
}

/* --- header lines --- */

int http_parse_header_line(struct http_line *out, const char *line, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return HTTP_LINE_END;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* status-line: HTTP-version SP 3DIGIT [SP reason] (RFC 9112 §4; curl writes "HTTP/2 200")
         */
        size_t i = 5;
        while (i < len && (is_digit(line[i]) || line[i] == '.'))
            i++;
        if (i == 5 || i + 4 > len || line[i] != ' ' || !is_digit(line[i + 1]) ||
            !is_digit(line[i + 2]) || !is_digit(line[i + 3]) || (i + 4 < len && line[i + 4] != ' '))
            return CF_EPARSE;
        out->status = (line[i + 1] - '0') * 100 + (line[i + 2] - '0') * 10 + (line[i + 3] - '0');
        if (out->status < 100)
            return CF_EPARSE;
        return HTTP_LINE_STATUS;
    }
    /* RFC 9112 §5.2: obs-fold is not ours to unfold; such lines are dropped. */
    size_t i = 0;
    while (i < len && is_tchar(line[i]))
        i++;
    if (i == 0 || i == len || line[i] != ':')
        return CF_EPARSE;
    out->name = line;
    out->name_len = i;
    out->value = line + i + 1;
    out->value_len = len - i - 1;
    trim(&out->value, &out->value_len);
    return HTTP_LINE_FIELD;
}

void http_hdrs_init(struct http_hdrs *h)
{
    memset(h, 0, sizeof(*h));
}

/* hdrs_reset forgets the fields of an earlier (interim) response. */
static void hdrs_reset(struct http_hdrs *h)
{
    free(h->content_type);
    free(h->replay_nonce);
    free(h->location);
    http_links_free(h->links, h->nlinks);
    size_t bytes = h->bytes;
    http_hdrs_init(h);
    h->bytes = bytes;
}

void http_hdrs_cleanup(struct http_hdrs *h)
{
    hdrs_reset(h);
    h->bytes = 0;
}

/* RFC 8555 §6.5.1: a nonce is base64url without padding. */
static int nonce_ok(const char *v, size_t n)
{
    if (n == 0 || n > HTTP_NONCE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* text_ok accepts visible ASCII, spaces and tabs (field-content, RFC 9110 §5.5, without obs-text).
 */
static int text_ok(const char *v, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            return 0;
    }
    return 1;
}

int http_hdrs_add(struct http_hdrs *h, const char *line, size_t len, int64_t now)
{
    struct http_line l;
    if (len > HTTP_HEADERS_MAX || h->bytes + len > HTTP_HEADERS_MAX)
        return CF_ETOOBIG;
    h->bytes += len;
    int kind = http_parse_header_line(&l, line, len);
    if (kind == HTTP_LINE_STATUS) {
        hdrs_reset(h);
        h->status = l.status;
        return 0;
    }
    if (kind != HTTP_LINE_FIELD)
        return 0;
    /* The first valid instance of each field wins; later ones are ignored. */
    if (ieq(l.name, l.name_len, "replay-nonce")) {
        if (!h->replay_nonce && nonce_ok(l.value, l.value_len))
            h->replay_nonce = xstrndup(l.value, l.value_len);
    } else if (ieq(l.name, l.name_len, "location")) {
        if (!h->location && url_ok(l.value, l.value_len))
            h->location = xstrndup(l.value, l.value_len);
    } else if (ieq(l.name, l.name_len, "content-type")) {
        if (!h->content_type && text_ok(l.value, l.value_len, HTTP_CTYPE_MAX))
            h->content_type = xstrndup(l.value, l.value_len);
    } else if (ieq(l.name, l.name_len, "retry-after")) {
        if (!h->retry_after)
            (void)http_parse_retry_after(&h->retry_after, l.value, l.value_len, now);
    } else if (ieq(l.name, l.name_len, "link")) {
        (void)http_parse_link(h->links, HTTP_LINKS_MAX, &h->nlinks, l.value, l.value_len);
    }
    return 0;
}
