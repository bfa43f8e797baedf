/*
 * fuzz_import.c - libFuzzer target for the import parser (cli/importer.c):
 * arbitrary bytes imported as a hosts file, plain or CSV.
 *
 * Each input is imported twice into a store in a temporary directory (under
 * /dev/shm when there is one, where a commit waits for no disk): once in one
 * piece, once in chunks of 1, 2, ... 17 octets, as read() on a pipe may hand
 * them over, and with another batch size. The importer is a stream parser,
 * so both runs must give the same counts, the same rejected lines with the
 * same reasons and the same hosts. Every rejected line has a number within
 * the input and a reason; every stored host has a name that normalizes to
 * itself, its challenge target, and a customer label of printable UTF-8
 * (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF; no
 * C0 or C1 controls) of at most HOST_CUSTOMER_MAX octets, since the label
 * goes to terminals, CSV reports and JSON (jansson refuses invalid UTF-8).
 * The hosts are removed after each run, so every run starts from an empty
 * store.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "hostname.h"
#include "importer.h"
#include "store.h"

#define ZONE "acme.cdn.example.net"
#define NOW 1795834800

static char dir[64];
static struct store *st;

/* check fails the run loudly: a broken invariant is a bug libFuzzer must report. */
static void check(int ok)
{
    if (!ok)
        abort();
}

static void cleanup(void)
{
    char cmd[128];
    store_close(st);
    hostname_psl_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_import: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct stat sb;
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "%s/cf-fuzz-import-XXXXXX",
             stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp");
    check(mkdtemp(dir) != NULL);
    check(store_open(&st, dir, NULL) == 0);
    atexit(cleanup);
    return 0;
}

/* One run's observations: rejects and duplicates as text lines, hosts as "name\tcustomer\n". */
struct run {
    struct buf rejects, dups, hosts;
    size_t nrej;
    struct import_stats stats;
};

static void on_reject(void *ctx, size_t line, const char *text, size_t len, const char *reason)
{
    struct run *r = ctx;
    (void)text;
    check(reason != NULL && reason[0] != '\0');
    check(len <= IMPORT_LINE_MAX);
    buf_printf(&r->rejects, "%zu %s\n", line, reason);
    r->nrej++;
}

static void on_dup(void *ctx, size_t line, const char *host, size_t first_line)
{
    struct run *r = ctx;
    check(first_line >= 1 && first_line < line);
    buf_printf(&r->dups, "%zu %zu %s\n", line, first_line, host);
}

/* printable_utf8 is the rule of the customer label, written out afresh (RFC 3629 §4). */
static int printable_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], cp, min;
        size_t k;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
            return 0;
        i += k + 1;
    }
    return 1;
}

static int on_host(void *ctx, const struct host_record *rec)
{
    struct run *r = ctx;
    char norm[HOSTNAME_MAX + 1], target[HOSTNAME_MAX + 1];
    const char *reason = NULL;
    size_t n = strlen(rec->name);
    check(hostname_normalize(norm, rec->name, n, &reason) == 0 && strcmp(norm, rec->name) == 0);
    check(hostname_challenge_target(target, rec->name, ZONE) == 0);
    check(strcmp(target, rec->target) == 0);
    check(rec->regdom[0] != '\0');
    check(rec->state == HOST_AWAITING_DELEGATION && rec->next_action == NOW);
    check(strlen(rec->customer) <= HOST_CUSTOMER_MAX && printable_utf8(rec->customer));
    buf_printf(&r->hosts, "%s\t%s\n", rec->name, rec->customer);
    return 0;
}

static int on_name(void *ctx, const char *name)
{
    store_batch_del_host(ctx, name);
    return 0;
}

/* import runs one import of data in chunks of 1, 2, ... max_chunk octets (0: in one piece). */
static void import(struct run *r, const uint8_t *data, size_t size, size_t max_chunk,
                   size_t batch_size)
{
    struct importer *imp = importer_new(st, ZONE, NOW, batch_size);
    importer_set_callbacks(imp, on_reject, on_dup, r);
    for (size_t off = 0, chunk = 1; off < size;) {
        size_t n = max_chunk ? chunk : size;
        if (n > size - off)
            n = size - off;
        check(importer_feed(imp, (const char *)data + off, n) == 0);
        off += n;
        chunk = chunk % (max_chunk ? max_chunk : 1) + 1;
    }
    check(importer_finish(imp) == 0);
    r->stats = *importer_stats(imp);
    importer_free(imp);

    /* The store was empty: what it holds now is what was added. */
    check(store_host_iter(st, NULL, on_host, r) == 0);
    size_t hosts = 0;
    for (size_t i = 0; i < r->hosts.len; i++)
        hosts += r->hosts.data[i] == '\n';
    check(hosts == r->stats.added);
    check(r->stats.unchanged == 0 && r->stats.updated == 0);
    check(r->nrej == r->stats.rejected);

    struct store_batch *b = store_batch_new(st);
    check(store_host_names_iter(st, on_name, b) == 0);
    check(store_batch_commit(b) == 0);
    store_batch_free(b);
}

/* expected_lines counts the lines of the input: a UTF-8 byte order mark first is no line. */
static size_t expected_lines(const uint8_t *data, size_t size)
{
    size_t lines = 0, i = 0;
    if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    size_t start = i;
    for (; i < size; i++) {
        if (data[i] == '\n') {
            lines++;
            start = i + 1;
        }
    }
    return lines + (start < size);
}

static void check_rejects(const struct run *r)
{
    /* Each rejected line is a line of the input, reported once, in input order. */
    size_t prev = 0;
    if (r->rejects.len == 0)
        return; /* data may be NULL */
    const char *p = r->rejects.data, *end = p + r->rejects.len;
    while (p < end) {
        size_t line = strtoul(p, NULL, 10);
        check(line > prev && line <= r->stats.lines);
        prev = line;
        p = memchr(p, '\n', (size_t)(end - p));
        check(p != NULL);
        p++;
    }
}

static int buf_equal(const struct buf *a, const struct buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole = {0}, chunked = {0};
    struct run *runs[] = {&whole, &chunked};

    for (int i = 0; i < 2; i++) {
        buf_init(&runs[i]->rejects);
        buf_init(&runs[i]->dups);
        buf_init(&runs[i]->hosts);
    }
    import(&whole, data, size, 0, 1000);
    import(&chunked, data, size, 17, 3);

    const struct import_stats *s = &whole.stats;
    check(s->lines == expected_lines(data, size));
    check(s->added + s->duplicates + s->rejected <= s->lines);
    check_rejects(&whole);
    check(memcmp(&whole.stats, &chunked.stats, sizeof(whole.stats)) == 0);
    check(buf_equal(&whole.rejects, &chunked.rejects));
    check(buf_equal(&whole.dups, &chunked.dups));
    check(buf_equal(&whole.hosts, &chunked.hosts));

    for (int i = 0; i < 2; i++) {
        buf_cleanup(&runs[i]->rejects);
        buf_cleanup(&runs[i]->dups);
        buf_cleanup(&runs[i]->hosts);
    }
    return 0;
}
