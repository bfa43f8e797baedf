/*
 * bench_import.c - import N generated hostnames into a fresh store and print
 * hosts/s, store bytes per host and peak RSS. A benchmark, not a test: it
 * prints numbers and asserts only that every host arrived.
 *
 *   bench_import [--hosts N] [--dir DIR] [--keep]
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "importer.h"
#include "log.h"
#include "timeutil.h"

static const char *const tlds[] = {"com", "net", "org", "de", "co.uk", "com.au", "fr", "io"};
static const char *const subs[] = {"www", "shop", "api", "cdn", "m", "static", "img", "blog"};

/* gen_names writes n hostnames, 1 to 8 per customer domain, in a scrambled order. */
static void gen_names(struct buf *out, size_t n)
{
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t dom = i / 4;
        buf_printf(out, "%s%zu.customer%zx-%u.%s\n", subs[x % 8], i % 4, dom * 2654435761u % n,
                   (unsigned)(x >> 40) % 1000, tlds[(dom >> 3) % 8]);
    }
}

static double run(struct store *st, const struct buf *in, struct import_stats *stats)
{
    int64_t t0 = cf_mono_ns();
    struct importer *imp = importer_new(st, "acme.cdn.example.net", cf_wall_ms() / 1000, 0);
    size_t chunk = 1 << 16;
    for (size_t off = 0; off < in->len; off += chunk)
        if (importer_feed(imp, in->data + off, off + chunk > in->len ? in->len - off : chunk)) {
            fprintf(stderr, "bench_import: store error\n");
            exit(1);
        }
    if (importer_finish(imp)) {
        fprintf(stderr, "bench_import: store error at finish\n");
        exit(1);
    }
    *stats = *importer_stats(imp);
    importer_free(imp);
    return (double)(cf_mono_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"hosts", required_argument, NULL, 'n'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    size_t n = 1000000;
    char dir[256] = "";
    int keep = 0, opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (opt == 'd')
            snprintf(dir, sizeof(dir), "%s", optarg);
        else if (opt == 'k')
            keep = 1;
        else
            return 2;
    }
    log_setup(LOG_WARN, 1, stderr);
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/cf-bench-import-XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    struct buf in;
    buf_init(&in);
    gen_names(&in, n);

    struct store *st;
    if (store_open(&st, dir, NULL) != 0) {
        fprintf(stderr, "bench_import: cannot open store in %s\n", dir);
        return 1;
    }
    struct import_stats s1, s2;
    double t1 = run(st, &in, &s1);
    double t2 = run(st, &in, &s2);
    struct store_stats ss;
    store_stats(st, &ss);
    struct stat sb;
    stat(store_path(st), &sb);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("import benchmark: %zu generated hostnames (%zu input bytes)\n", n, in.len);
    printf("  first import    %10.0f hosts/s  (%.2f s, %zu added, %zu rejected, %zu dup)\n",
           (double)n / t1, t1, s1.added, s1.rejected, s1.duplicates);
    printf("  re-import       %10.0f hosts/s  (%.2f s, %zu unchanged)\n", (double)n / t2, t2,
           s2.unchanged);
    printf("  store           %10.1f bytes/host in use (%zu pages' bytes), file %.1f MiB on disk\n",
           (double)ss.used_bytes / (double)ss.hosts, ss.used_bytes,
           (double)sb.st_blocks * 512 / (1 << 20));
    printf("  peak RSS        %10.1f MiB (includes the %.1f MiB input buffer and the map pages "
           "touched)\n",
           (double)ru.ru_maxrss / 1024, (double)in.len / (1 << 20));
    printf("  cpu             %10.2f s user, %.2f s sys\n",
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    int ok = ss.hosts == n && s1.added == n && s2.unchanged == n;
    store_close(st);
    buf_cleanup(&in);
    hostname_psl_cleanup();
    if (!keep) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    if (!ok) {
        fprintf(stderr, "bench_import: expected %zu hosts, store has %zu\n", n, ss.hosts);
        return 1;
    }
    return 0;
}
