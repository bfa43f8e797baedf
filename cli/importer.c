/*
 * importer.c - bulk import of hostnames into the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "err.h"
#include "hostname.h"
#include "importer.h"

#define DEFAULT_BATCH 50000
/*
 * Names are held back and sorted in runs of up to RUN_MAX before they are
 * committed: sorted keys append to LMDB's B-trees instead of splitting
 * pages all over them (half the time, and full pages). About 100 MB at most.
 */
#define RUN_MAX (1u << 20)
#define MAX_FIELDS 32

struct pending {
    char *name; /* "name\0regdom\0customer\0", one allocation, owned */
    size_t line;
};

/* An open-addressing set of name hashes with the line they first appeared on. */
struct seen_set {
    uint64_t *hash; /* 0 = empty */
    size_t *line;
    size_t cap, count;
};

struct importer {
    struct store *st;
    char zone[HOSTNAME_MAX + 1];
    int64_t now;
    size_t batch_size;

    import_reject_cb on_reject;
    import_dup_cb on_dup;
    void *cb_ctx;

    /* The current line being accumulated. */
    char line[IMPORT_LINE_MAX + 1];
    size_t line_len;
    int line_too_long;
    size_t bom_len; /* octets of a UTF-8 byte order mark matched at the start, held back */
    int bom_done;   /* the start of the input is past: no byte order mark from here on */
    int saw_first;  /* the first non-blank line decided the format */
    int csv;
    int col_host, col_customer;

    struct pending *pend;
    size_t npend, cappend;
    struct seen_set seen;
    struct import_stats stats;
    struct store_batch *batch;
    enum store_import_result *results;
};

static uint64_t hash_name(const char *s)
{
    /* FNV-1a 64, then a mixer: cheap and well spread for a duplicate check. */
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

/*
 * seen_add returns 0 and records h, or the first line that had the same
 * name hash. A 64-bit hash over a million names collides with odds of about
 * 3e-8; the cost of a collision is one host reported as a duplicate.
 */
static size_t seen_add(struct seen_set *s, uint64_t h, size_t line)
{
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *nh = xcalloc(ncap, sizeof(*nh));
        size_t *nl = xcalloc(ncap, sizeof(*nl));
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->hash[i])
                continue;
            size_t j = s->hash[i] & (ncap - 1);
            while (nh[j])
                j = (j + 1) & (ncap - 1);
            nh[j] = s->hash[i];
            nl[j] = s->line[i];
        }
        free(s->hash);
        free(s->line);
        s->hash = nh;
        s->line = nl;
        s->cap = ncap;
    }
    size_t j = h & (s->cap - 1);
    while (s->hash[j]) {
        if (s->hash[j] == h)
            return s->line[j];
        j = (j + 1) & (s->cap - 1);
    }
    s->hash[j] = h;
    s->line[j] = line;
    s->count++;
    return 0;
}

struct importer *importer_new(struct store *st, const char *zone, int64_t now, size_t batch_size)
{
    struct importer *imp = xcalloc(1, sizeof(*imp));
    imp->st = st;
    snprintf(imp->zone, sizeof(imp->zone), "%s", zone);
    imp->now = now;
    imp->batch_size = batch_size ? batch_size : DEFAULT_BATCH;
    imp->results = xcalloc(imp->batch_size, sizeof(*imp->results));
    imp->batch = store_batch_new(st);
    imp->col_host = 0;
    imp->col_customer = -1;
    return imp;
}

void importer_set_callbacks(struct importer *imp, import_reject_cb on_reject, import_dup_cb on_dup,
                            void *ctx)
{
    imp->on_reject = on_reject;
    imp->on_dup = on_dup;
    imp->cb_ctx = ctx;
}

void importer_free(struct importer *imp)
{
    if (!imp)
        return;
    for (size_t i = 0; i < imp->npend; i++)
        free(imp->pend[i].name);
    free(imp->pend);
    free(imp->results);
    free(imp->seen.hash);
    free(imp->seen.line);
    store_batch_free(imp->batch);
    free(imp);
}

const struct import_stats *importer_stats(const struct importer *imp)
{
    return &imp->stats;
}

static void reject(struct importer *imp, const char *text, size_t len, const char *reason)
{
    imp->stats.rejected++;
    if (imp->on_reject)
        imp->on_reject(imp->cb_ctx, imp->stats.lines, text, len, reason);
}

int import_csv_split(char *out, const char *line, size_t len, char **fields, int max)
{
    size_t i = 0, o = 0;
    int n = 0;
    for (;;) {
        if (n == max)
            return -1;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        fields[n++] = out + o;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len)
                    return -1; /* unterminated quote */
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        out[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                out[o++] = line[i++];
            }
            while (i < len && (line[i] == ' ' || line[i] == '\t'))
                i++;
            if (i < len && line[i] != ',')
                return -1; /* text after a closing quote */
        } else {
            size_t start = o;
            while (i < len && line[i] != ',') {
                if (line[i] == '"')
                    return -1; /* a quote inside an unquoted field */
                out[o++] = line[i++];
            }
            while (o > start && (out[o - 1] == ' ' || out[o - 1] == '\t'))
                o--;
        }
        out[o++] = '\0';
        if (i >= len)
            return n;
        i++; /* the comma */
    }
}

static int flush(struct importer *imp);

static int cmp_pending(const void *a, const void *b)
{
    return strcmp(((const struct pending *)a)->name, ((const struct pending *)b)->name);
}

/*
 * valid_customer: printable UTF-8 without control characters, bounded. RFC
 * 3629 §3-4: no overlong forms, no surrogates, nothing past U+10FFFF (JSON
 * output refuses them); and no C1 controls (U+0080-U+009F), which some
 * terminals obey like escape sequences.
 */
static int valid_customer(const char *s)
{
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    size_t n = strlen(s);
    if (n > HOST_CUSTOMER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80)
            continue;
        size_t k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        uint32_t cp = c & (0x3fu >> k);
        if (c < 0xc2 || c > 0xf4 || i + k >= n + 1)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || ((unsigned char)s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | ((unsigned char)s[i + j] & 0x3f);
        }
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
            return 0;
        i += k;
    }
    return 1;
}

static int process_line(struct importer *imp, const char *text, size_t len)
{
    char buf[IMPORT_LINE_MAX + 1];
    char *fields[MAX_FIELDS];
    const char *reason;

    if (memchr(text, '\0', len)) {
        reject(imp, text, len, "NUL byte in line");
        return 0;
    }
    /* Trim spaces; skip blanks and comments. */
    while (len && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0 || text[0] == '#')
        return 0;

    int nf = 1;
    if (!imp->saw_first) {
        imp->saw_first = 1;
        nf = import_csv_split(buf, text, len, fields, MAX_FIELDS);
        if (nf > 0 && (strcasecmp(fields[0], "host") == 0 ||
                       strcasecmp(fields[0], "hostname") == 0 || nf > 1)) {
            int host_col = -1;
            for (int i = 0; i < nf; i++) {
                if (strcasecmp(fields[i], "host") == 0 || strcasecmp(fields[i], "hostname") == 0)
                    host_col = host_col < 0 ? i : host_col;
                else if (strcasecmp(fields[i], "customer") == 0)
                    imp->col_customer = i;
            }
            if (host_col >= 0) {
                imp->csv = 1;
                imp->col_host = host_col;
                return 0; /* the header */
            }
        }
    }
    const char *host = text;
    size_t hlen = len;
    const char *customer = "";
    if (imp->csv) {
        nf = import_csv_split(buf, text, len, fields, MAX_FIELDS);
        if (nf < 0) {
            reject(imp, text, len, "malformed CSV quoting");
            return 0;
        }
        if (nf <= imp->col_host) {
            reject(imp, text, len, "missing host column");
            return 0;
        }
        host = fields[imp->col_host];
        hlen = strlen(host);
        if (imp->col_customer >= 0 && imp->col_customer < nf)
            customer = fields[imp->col_customer];
        if (!valid_customer(customer)) {
            reject(imp, text, len, "customer is not printable UTF-8 of at most 127 octets");
            return 0;
        }
    }
    char name[HOSTNAME_MAX + 1], regdom[HOSTNAME_MAX + 1];
    if (hostname_normalize_ex(name, regdom, host, hlen, &reason) != 0) {
        reject(imp, text, len, reason);
        return 0;
    }
    size_t first = seen_add(&imp->seen, hash_name(name), imp->stats.lines);
    if (first) {
        imp->stats.duplicates++;
        if (imp->on_dup)
            imp->on_dup(imp->cb_ctx, imp->stats.lines, name, first);
        return 0;
    }
    if (imp->npend == imp->cappend) {
        imp->cappend = imp->cappend ? imp->cappend * 2 : 1024;
        imp->pend = xrealloc(imp->pend, imp->cappend * sizeof(*imp->pend));
    }
    struct pending *p = &imp->pend[imp->npend++];
    size_t nl = strlen(name), rl = strlen(regdom), cl = strlen(customer);
    p->name = xmalloc(nl + rl + cl + 3);
    memcpy(p->name, name, nl + 1);
    memcpy(p->name + nl + 1, regdom, rl + 1);
    memcpy(p->name + nl + rl + 2, customer, cl + 1);
    p->line = imp->stats.lines;
    if (imp->npend == RUN_MAX)
        return flush(imp);
    return 0;
}

/* commit_chunk builds records for pend[0..n) and commits them in one transaction. */
static int commit_chunk(struct importer *imp, struct host_record *rec, struct pending *pend,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = pend[i].name;
        size_t nl = strlen(name);
        const char *regdom = name + nl + 1;
        const char *customer = regdom + strlen(regdom) + 1;
        /* Only the fields a new record has: cheaper than clearing 3 KB each time. */
        memcpy(rec->name, name, nl + 1);
        memcpy(rec->regdom, regdom, strlen(regdom) + 1);
        memcpy(rec->customer, customer, strlen(customer) + 1);
        imp->results[i] = 0;
        if (hostname_challenge_target(rec->target, name, imp->zone) != 0) {
            /* Cannot happen for a normalized name in a normalized zone; never store half a host. */
            imp->stats.rejected++;
            if (imp->on_reject)
                imp->on_reject(imp->cb_ctx, pend[i].line, name, nl, "no delegation target");
            continue;
        }
        store_batch_import_host(imp->batch, rec, &imp->results[i]);
    }
    int rc = store_batch_commit(imp->batch);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        switch (imp->results[i]) {
        case STORE_IMPORT_ADDED:
            imp->stats.added++;
            break;
        case STORE_IMPORT_UNCHANGED:
            imp->stats.unchanged++;
            break;
        case STORE_IMPORT_UPDATED:
            imp->stats.updated++;
            break;
        }
    }
    return 0;
}

/* flush sorts the pending run and commits it in chunks of batch_size. */
static int flush(struct importer *imp)
{
    int rc = 0;
    if (imp->npend == 0)
        return 0;
    qsort(imp->pend, imp->npend, sizeof(*imp->pend), cmp_pending);
    struct host_record *rec = xmalloc(sizeof(*rec));
    host_record_init(rec);
    rec->state = HOST_AWAITING_DELEGATION;
    rec->created_at = rec->state_since = rec->next_action = imp->now;
    for (size_t off = 0; off < imp->npend && rc == 0; off += imp->batch_size) {
        size_t n = imp->npend - off < imp->batch_size ? imp->npend - off : imp->batch_size;
        rc = commit_chunk(imp, rec, imp->pend + off, n);
    }
    free(rec);
    for (size_t i = 0; i < imp->npend; i++)
        free(imp->pend[i].name);
    imp->npend = 0;
    return rc;
}

/* UTF-8's byte order mark, which some spreadsheets put first in a CSV file. */
static const char utf8_bom[3] = "\xef\xbb\xbf";

/* bom_not_matched ends the byte order mark check: what was held back is text. */
static void bom_not_matched(struct importer *imp)
{
    imp->bom_done = 1;
    /* Nothing else is in the line yet, and bom_len < 3 fits. */
    memcpy(imp->line, utf8_bom, imp->bom_len);
    imp->line_len = imp->bom_len;
}

int importer_feed(struct importer *imp, const char *data, size_t len)
{
    size_t i = 0;
    /*
     * A UTF-8 byte order mark at the very start is not part of the first
     * name. It may arrive split across calls (read() on a pipe returns what
     * it has), so the octets that match it are held back until it is
     * complete or cannot be.
     */
    while (!imp->bom_done && i < len) {
        if (data[i] != utf8_bom[imp->bom_len]) {
            bom_not_matched(imp);
            break;
        }
        i++;
        imp->bom_done = ++imp->bom_len == sizeof(utf8_bom);
    }
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t chunk = end - i;
        if (!imp->line_too_long) {
            if (imp->line_len + chunk > IMPORT_LINE_MAX) {
                imp->line_too_long = 1;
            } else {
                memcpy(imp->line + imp->line_len, data + i, chunk);
                imp->line_len += chunk;
            }
        }
        if (!nl)
            break;
        i = end + 1;
        imp->stats.lines++;
        size_t ll = imp->line_len;
        if (ll && imp->line[ll - 1] == '\r')
            ll--;
        int rc = 0;
        if (imp->line_too_long)
            reject(imp, imp->line, 40 < ll ? 40 : ll, "line longer than 4096 octets");
        else
            rc = process_line(imp, imp->line, ll);
        imp->line_len = 0;
        imp->line_too_long = 0;
        if (rc)
            return rc;
    }
    return 0;
}

int importer_finish(struct importer *imp)
{
    if (!imp->bom_done)
        bom_not_matched(imp); /* the input ended inside what began like one */
    if (imp->line_len || imp->line_too_long) {
        int rc = importer_feed(imp, "\n", 1);
        if (rc)
            return rc;
    }
    return flush(imp);
}
