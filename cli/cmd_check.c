/*
 * cmd_check.c - `certfleet check [--json] [--concurrency N] [HOST...]`: run
 * the delegation and liveness checks now, print what every authoritative
 * server said, and record the results (no state changes: that is `run`'s).
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "checks.h"
#include "cli.h"
#include "err.h"
#include "hostname.h"
#include "observe.h"
#include "timeutil.h"

struct check_host {
    struct check_run *run;
    struct check_host *next_spare;
    struct host_record rec;
    int pending;
    struct deleg_report dr;
    struct live_report lr;
};

struct check_run {
    struct dns_checker *dc;
    struct store_batch *batch;
    char **names;
    size_t nnames, next, done, active, concurrency;
    int json, quiet, skip_live, skip_deleg;
    size_t errors, store_errors;
    size_t by_deleg[DELEG_RESULT__COUNT], by_live[LIVE_RESULT__COUNT];
    int64_t now;
    struct store *st;
    uv_loop_t *loop;
    struct check_host *spare;
};

static void start_more(struct check_run *r);

static void print_host(struct check_run *r, const struct check_host *h,
                       const struct deleg_report *d, const struct live_report *l)
{
    struct buf b;
    buf_init(&b);
    if (!r->json) {
        buf_printf(&b, "%-40s delegation %-12s liveness %-8s", h->rec.name,
                   deleg_result_name(d->result), live_result_name(l->result));
        if (d->result == DELEG_WRONG_TARGET)
            buf_printf(&b, "  points at %s", d->seen_target);
        if (d->result == DELEG_ERROR)
            buf_printf(&b, "  %s", d->error);
        buf_printf(&b, "  (%s)\n", l->detail);
        fputs(b.data, stdout);
        buf_cleanup(&b);
        return;
    }
    buf_puts(&b, "{\"host\":");
    buf_json_string(&b, h->rec.name, strlen(h->rec.name));
    buf_printf(&b,
               ",\"delegation\":{\"result\":\"%s\",\"name\":\"" HOSTNAME_CHALLENGE_PREFIX "%s\"",
               deleg_result_name(d->result), hostname_base(h->rec.name));
    buf_puts(&b, ",\"expected\":");
    buf_json_string(&b, h->rec.target, strlen(h->rec.target));
    buf_puts(&b, ",\"zone\":");
    buf_json_string(&b, d->zone, strlen(d->zone));
    if (d->seen_target[0]) {
        buf_puts(&b, ",\"seen_target\":");
        buf_json_string(&b, d->seen_target, strlen(d->seen_target));
    }
    if (d->error[0]) {
        buf_puts(&b, ",\"error\":");
        buf_json_string(&b, d->error, strlen(d->error));
    }
    buf_puts(&b, ",\"servers\":[");
    for (size_t i = 0; i < d->nservers; i++) {
        const struct deleg_server *s = &d->servers[i];
        buf_printf(&b, "%s{\"addr\":\"%s\",\"result\":\"%s\"", i ? "," : "", s->addr,
                   deleg_result_name(s->result));
        if (s->target[0]) {
            buf_puts(&b, ",\"target\":");
            buf_json_string(&b, s->target, strlen(s->target));
        }
        if (s->error[0]) {
            buf_puts(&b, ",\"error\":");
            buf_json_string(&b, s->error, strlen(s->error));
        }
        buf_putc(&b, '}');
    }
    buf_printf(&b, "]},\"liveness\":{\"result\":\"%s\",\"detail\":", live_result_name(l->result));
    buf_json_string(&b, l->detail, strlen(l->detail));
    buf_puts(&b, "}}\n");
    fputs(b.data, stdout);
    buf_cleanup(&b);
}

/*
 * host_done records h's results: d and l are h's own copies, or the
 * checker's report of the check that finished last (valid during its
 * callback only), which is then not copied.
 */
static void host_done(struct check_host *h, const struct deleg_report *d,
                      const struct live_report *l)
{
    struct check_run *r = h->run;
    if (!r->quiet)
        print_host(r, h, d, l);
    r->by_deleg[d->result]++;
    r->by_live[l->result]++;
    if (d->result == DELEG_ERROR || l->result == LIVE_ERROR) {
        /* In quiet mode the first few errors still say what went wrong. */
        if (r->quiet && r->errors < 5)
            fprintf(stderr, "check: %s: %s\n", h->rec.name,
                    d->result == DELEG_ERROR ? d->error : l->detail);
        r->errors++;
    }
    /*
     * The record as read when the check started: `check` changes only the
     * observation fields, and a run that changed the host meanwhile is
     * serialized by LMDB's single writer, not by this read.
     */
    if (!r->skip_deleg)
        sched_note_delegation(&h->rec, d->result, d->seen_target, r->now);
    if (!r->skip_live)
        sched_note_liveness(&h->rec, l->result, r->now);
    store_batch_put_host(r->batch, &h->rec);
    if (store_batch_count(r->batch) >= 10000 && store_batch_commit(r->batch) != 0)
        r->store_errors++;
    h->next_spare = r->spare; /* ~10 KB: reused rather than freed */
    r->spare = h;
    r->active--;
    r->done++;
    start_more(r);
    /* The channels keep their sockets open (and the loop alive): stop it when all are done. */
    if (r->done == r->nnames)
        uv_stop(r->loop);
}

static void on_deleg(void *arg, const struct deleg_report *rep)
{
    struct check_host *h = arg;
    if (--h->pending == 0) {
        host_done(h, rep, &h->lr); /* the last one: no copy */
        return;
    }
    /* Only the servers that answered: the array is large. */
    memcpy(&h->dr, rep,
           offsetof(struct deleg_report, servers) + rep->nservers * sizeof(rep->servers[0]));
}

static void on_live(void *arg, const struct live_report *rep)
{
    struct check_host *h = arg;
    if (--h->pending == 0) {
        host_done(h, &h->dr, rep);
        return;
    }
    h->lr = *rep;
}

/*
 * start_more tops the checks in flight up to the concurrency, reading the
 * records of a whole refill in one read transaction (a refill waits until
 * an eighth of the slots are free, so transactions are few and short).
 */
static void start_more(struct check_run *r)
{
    struct store_read *rd;
    if (r->next >= r->nnames || r->active + r->concurrency / 8 > r->concurrency)
        return;
    if (store_read_begin(r->st, &rd) != 0)
        return; /* the loop ends with the hosts not started reported as not done */
    while (r->active < r->concurrency && r->next < r->nnames) {
        const char *name = r->names[r->next++];
        struct check_host *h = r->spare;
        if (h)
            r->spare = h->next_spare;
        else
            h = xmalloc(sizeof(*h));
        h->dr.result = DELEG_UNKNOWN;
        h->dr.nservers = 0;
        h->dr.zone[0] = h->dr.seen_target[0] = h->dr.error[0] = '\0';
        h->lr.result = LIVE_UNKNOWN;
        h->lr.detail[0] = '\0';
        h->run = r;
        if (store_read_host(rd, &h->rec, name) != 0) {
            h->next_spare = r->spare;
            r->spare = h;
            r->done++; /* removed meanwhile: nothing to check */
            continue;
        }
        h->pending = 2 - r->skip_live - r->skip_deleg;
        r->active++;
        /* A skipped check reports "unknown" (0) and is not recorded. */
        if (!r->skip_deleg)
            dns_check_delegation(r->dc, h->rec.name, h->rec.target, on_deleg, h);
        if (!r->skip_live)
            dns_check_liveness(r->dc, h->rec.name, on_live, h);
    }
    store_read_end(rd);
    if (r->done == r->nnames)
        uv_stop(r->loop);
}

struct collect {
    char **names;
    size_t n, cap;
};

static int collect_cb(void *ctx, const char *name)
{
    struct collect *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->names = xrealloc(c->names, c->cap * sizeof(char *));
    }
    c->names[c->n++] = xstrdup(name);
    return 0;
}

int cmd_check(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {NULL, 0, NULL, 0}};
    struct check_run r;
    struct collect names = {NULL, 0, 0};
    int opt, rc, status = EXIT_DONE;
    memset(&r, 0, sizeof(r));
    r.concurrency = 1000;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'j') {
            r.json = 1;
        } else if (opt == 'o') {
            if (strcmp(optarg, "delegation") == 0) {
                r.skip_live = 1;
            } else if (strcmp(optarg, "liveness") == 0) {
                r.skip_deleg = 1;
            } else {
                cli_error("check: --only takes delegation or liveness");
                return EXIT_USAGE;
            }
        } else if (opt == 'q') {
            r.quiet = 1;
        } else if (opt == 'c') {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 100000) {
                cli_error("check: --concurrency '%s' must be 1 to 100000", optarg);
                return EXIT_USAGE;
            }
            r.concurrency = v;
        } else {
            return EXIT_USAGE;
        }
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            char name[HOSTNAME_MAX + 1];
            const char *reason;
            struct host_record rec;
            if (hostname_normalize(name, argv[i], strlen(argv[i]), &reason) != 0) {
                cli_error("check: '%s' is not a valid hostname: %s", argv[i], reason);
                status = EXIT_USAGE;
                goto out_free;
            }
            if (store_host_get(c->st, &rec, name) != 0) {
                cli_error("check: %s is not in the store", name);
                status = EXIT_SOME_FAILED;
                goto out_free;
            }
            collect_cb(&names, rec.name);
        }
    } else if ((rc = store_host_names_iter(c->st, collect_cb, &names)) != 0) {
        cli_error("check: reading the store: %s", cf_strerror(rc));
        status = EXIT_FATAL;
        goto out_free;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *targets[CONFIG_MAX_CDN_TARGETS];
    for (size_t i = 0; i < c->cfg.n_cdn_targets; i++)
        targets[i] = c->cfg.cdn_targets[i];
    struct dns_checker_opts o = {
        .resolver = c->cfg.resolver[0] ? c->cfg.resolver : NULL,
        .cdn_targets = targets,
        .n_cdn_targets = c->cfg.n_cdn_targets,
        .auth_port = c->cfg.dns_auth_port,
        .max_checks = r.concurrency * 2,
    };
    rc = dns_checker_new(&r.dc, &loop, &o);
    if (rc) {
        cli_error("check: cannot set up DNS (resolver '%s'): %s", c->cfg.resolver, cf_strerror(rc));
        status = EXIT_FATAL;
        uv_loop_close(&loop);
        goto out_free;
    }
    r.st = c->st;
    r.loop = &loop;
    r.batch = store_batch_new(c->st);
    r.names = names.names;
    r.nnames = names.n;
    r.now = cf_wall_ms() / 1000;
    int64_t t0 = cf_mono_ns();
    start_more(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    dns_checker_free(r.dc);
    uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks */
    uv_loop_close(&loop);
    if (store_batch_commit(r.batch) != 0)
        r.store_errors++;
    store_batch_free(r.batch);
    while (r.spare) {
        struct check_host *h = r.spare;
        r.spare = h->next_spare;
        free(h);
    }
    int64_t elapsed_ns = cf_mono_ns() - t0;
    if (!r.json)
        printf("checked %zu hosts in %.3f s (%.0f hosts/s): %zu confirmed, %zu propagating, "
               "%zu missing, %zu wrong target, %zu errors; %zu live\n",
               r.done, (double)elapsed_ns / 1e9,
               (double)r.done * 1e9 / (double)(elapsed_ns ? elapsed_ns : 1),
               r.by_deleg[DELEG_CONFIRMED], r.by_deleg[DELEG_PROPAGATING],
               r.by_deleg[DELEG_MISSING], r.by_deleg[DELEG_WRONG_TARGET], r.errors,
               r.by_live[LIVE_LIVE]);
    if (r.store_errors) {
        cli_error("check: results could not be stored");
        status = EXIT_FATAL;
    } else if (r.errors) {
        status = EXIT_SOME_FAILED;
    }
out_free:
    for (size_t i = 0; i < names.n; i++)
        free(names.names[i]);
    free(names.names);
    return status;
}
