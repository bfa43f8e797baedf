/*
 * cmd_import.c - `certfleet import [FILE|-]`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "importer.h"
#include "timeutil.h"

struct report_ctx {
    const char *input;
    size_t shown;
};

#define MAX_SHOWN 1000

/* Bad lines go to stderr, quoted and escaped so junk cannot mangle the terminal. */
static void on_reject(void *ctx, size_t line, const char *text, size_t len, const char *reason)
{
    struct report_ctx *r = ctx;
    if (r->shown++ == MAX_SHOWN)
        fprintf(stderr, "%s: more rejected lines; only the first %d are shown\n", r->input,
                MAX_SHOWN);
    if (r->shown > MAX_SHOWN)
        return;
    struct buf b;
    buf_init(&b);
    buf_json_string(&b, text, len > 200 ? 200 : len);
    fprintf(stderr, "%s: line %zu: rejected %s%s: %s\n", r->input, line, b.data,
            len > 200 ? "..." : "", reason);
    buf_cleanup(&b);
}

static void on_dup(void *ctx, size_t line, const char *host, size_t first_line)
{
    struct report_ctx *r = ctx;
    fprintf(stderr, "%s: line %zu: duplicate of line %zu (%s), skipped\n", r->input, line,
            first_line, host);
}

int cmd_import(struct cli *c, int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "-";
    if (argc > 2) {
        cli_error("import: one input at a time ('%s' is extra)", argv[2]);
        return EXIT_USAGE;
    }
    int rc = cli_load_config(c);
    if (rc)
        return rc;
    int fd = STDIN_FILENO;
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_error("import: %s: %s", path, strerror(errno));
            return EXIT_USAGE;
        }
    }
    rc = cli_open_store(c);
    if (rc)
        goto out_close;

    struct report_ctx rep = {strcmp(path, "-") ? path : "stdin", 0};
    struct importer *imp = importer_new(c->st, c->cfg.validation_zone, cf_wall_ms() / 1000, 0);
    importer_set_callbacks(imp, on_reject, on_dup, &rep);
    char buf[1 << 16];
    int err = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_error("import: %s: %s", rep.input, strerror(errno));
            rc = EXIT_FATAL;
            goto out_free;
        }
        if (n == 0)
            break;
        err = importer_feed(imp, buf, (size_t)n);
        if (err)
            break;
    }
    if (!err)
        err = importer_finish(imp);
    const struct import_stats *s = importer_stats(imp);
    if (err) {
        cli_error("import: store error after %zu lines: %s (hosts committed before this are kept)",
                  s->lines, cf_strerror(err));
        rc = EXIT_FATAL;
        goto out_free;
    }
    printf("import %s: %zu lines, %zu added, %zu unchanged, %zu updated, %zu duplicates, "
           "%zu rejected\n",
           rep.input, s->lines, s->added, s->unchanged, s->updated, s->duplicates, s->rejected);
    rc = s->rejected ? EXIT_SOME_FAILED : EXIT_DONE;
out_free:
    importer_free(imp);
out_close:
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}
