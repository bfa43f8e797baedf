/*
 * cmd_status.c - `certfleet instructions`, `status` and `remove`: commands
 * that read or mark host records without touching the network.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "hostname.h"
#include "policy.h"
#include "timeutil.h"

enum out_format { FMT_TEXT, FMT_CSV, FMT_JSON };

struct instr_ctx {
    enum out_format fmt;
    size_t n;
    struct buf out;
};

/* emit_instruction writes one host's CNAME instruction row. */
static void emit_instruction(struct instr_ctx *x, const struct host_record *rec)
{
    struct buf *b = &x->out;
    const char *base = hostname_base(rec->name);
    if (x->fmt == FMT_JSON) {
        buf_puts(b, x->n ? ",\n  {\"host\": " : "\n  {\"host\": ");
        buf_json_string(b, rec->name, strlen(rec->name));
        buf_puts(b, ", \"name\": \"" HOSTNAME_CHALLENGE_PREFIX);
        buf_puts(b, base);
        buf_puts(b, "\", \"type\": \"CNAME\", \"target\": ");
        buf_json_string(b, rec->target, strlen(rec->target));
        buf_putc(b, '}');
    } else {
        /* Normalized names and targets are LDH plus '*': nothing to quote in CSV. */
        buf_printf(b, "%s," HOSTNAME_CHALLENGE_PREFIX "%s,CNAME,%s\n", rec->name, base,
                   rec->target);
    }
    x->n++;
    if (b->len > (1 << 16)) {
        fwrite(b->data, 1, b->len, stdout);
        buf_reset(b);
    }
}

static int instr_cb(void *ctx, const struct host_record *rec)
{
    emit_instruction(ctx, rec);
    return 0;
}

static int parse_format(const char *s, enum out_format *out)
{
    if (strcmp(s, "csv") == 0)
        *out = FMT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = FMT_JSON;
    else
        return -1;
    return 0;
}

/*
 * lookup_host normalizes a HOST argument and reads its record. Prints the
 * reason and returns nonzero when it is not a valid or known hostname.
 */
static int lookup_host(struct cli *c, const char *cmd, const char *arg, struct host_record *rec)
{
    char name[HOSTNAME_MAX + 1];
    const char *reason;
    if (hostname_normalize(name, arg, strlen(arg), &reason) != 0) {
        cli_error("%s: '%s' is not a valid hostname: %s", cmd, arg, reason);
        return EXIT_USAGE;
    }
    int rc = store_host_get(c->st, rec, name);
    if (rc == CF_ENOTFOUND) {
        cli_error("%s: %s is not in the store", cmd, name);
        return EXIT_SOME_FAILED;
    }
    if (rc) {
        cli_error("%s: %s: %s", cmd, name, cf_strerror(rc));
        return EXIT_FATAL;
    }
    return 0;
}

int cmd_instructions(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    struct instr_ctx x = {FMT_CSV, 0, {0}};
    int opt, rc;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 'f' || parse_format(optarg, &x.fmt) != 0) {
            cli_error("instructions: --format takes csv or json");
            return EXIT_USAGE;
        }
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    buf_init(&x.out);
    if (x.fmt == FMT_JSON)
        buf_putc(&x.out, '[');
    else
        buf_puts(&x.out, "host,name,type,target\n");
    int status = EXIT_DONE;
    if (optind == argc) {
        rc = store_host_iter(c->st, NULL, instr_cb, &x);
        if (rc) {
            cli_error("instructions: reading the store: %s", cf_strerror(rc));
            status = EXIT_FATAL;
        }
    } else {
        struct host_record *rec = xmalloc(sizeof(*rec));
        for (int i = optind; i < argc; i++) {
            rc = lookup_host(c, "instructions", argv[i], rec);
            if (rc)
                status = rc > status ? rc : status;
            else
                emit_instruction(&x, rec);
        }
        free(rec);
    }
    if (x.fmt == FMT_JSON)
        buf_puts(&x.out, x.n ? "\n]\n" : "]\n");
    fwrite(x.out.data, 1, x.out.len, stdout);
    buf_cleanup(&x.out);
    return status;
}

struct count_ctx {
    size_t hosts;
    size_t states[HOST_STATE__COUNT];
    size_t reasons[STOP_REASON__COUNT];
    size_t leftover;
};

static int count_cb(void *ctx, const struct host_record *rec)
{
    struct count_ctx *x = ctx;
    x->hosts++;
    x->states[rec->state]++;
    if (rec->state == HOST_STOPPED)
        x->reasons[rec->reason]++;
    x->leftover += rec->leftover != 0;
    return 0;
}

static json_t *time_or_null(int64_t t)
{
    char ts[32];
    return t ? json_string(cf_time_format(ts, sizeof(ts), t)) : json_null();
}

/* host_json builds the record view of `status --json HOST` (DESIGN.md §5). */
static json_t *host_json(const struct host_record *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "host", json_string(r->name));
    json_object_set_new(o, "customer", r->customer[0] ? json_string(r->customer) : json_null());
    json_object_set_new(o, "registered_domain", json_string(r->regdom));
    json_object_set_new(o, "challenge_name",
                        json_sprintf(HOSTNAME_CHALLENGE_PREFIX "%s", hostname_base(r->name)));
    json_object_set_new(o, "target", json_string(r->target));
    json_object_set_new(o, "state", json_string(host_state_name(r->state)));
    json_object_set_new(o, "reason",
                        r->state == HOST_STOPPED ? json_string(stop_reason_name(r->reason))
                                                 : json_null());
    json_object_set_new(o, "leftover", json_boolean(r->leftover));
    json_object_set_new(o, "created_at", time_or_null(r->created_at));
    json_object_set_new(o, "state_since", time_or_null(r->state_since));
    json_object_set_new(o, "next_action", time_or_null(r->next_action));
    json_object_set_new(o, "failures", json_integer(r->failures));
    json_object_set_new(o, "last_error",
                        r->last_error[0] ? json_string(r->last_error) : json_null());
    json_object_set_new(o, "not_before", time_or_null(r->not_before));
    json_object_set_new(o, "not_after", time_or_null(r->not_after));
    json_object_set_new(o, "serial", r->cert_serial[0] ? json_string(r->cert_serial) : json_null());
    json_object_set_new(o, "renew_at", time_or_null(r->renew_at));
    json_object_set_new(o, "ari_cert_id",
                        r->ari_cert_id[0] ? json_string(r->ari_cert_id) : json_null());
    json_object_set_new(o, "order_url", r->order_url[0] ? json_string(r->order_url) : json_null());
    json_t *d = json_object();
    json_object_set_new(d, "result", json_string(deleg_result_name(r->deleg_result)));
    json_object_set_new(d, "checked_at", time_or_null(r->deleg_checked_at));
    json_object_set_new(d, "first_ok", time_or_null(r->deleg_first_ok));
    json_object_set_new(d, "last_ok", time_or_null(r->deleg_last_ok));
    json_object_set_new(d, "seen_target",
                        r->deleg_seen[0] ? json_string(r->deleg_seen) : json_null());
    json_object_set_new(o, "delegation", d);
    json_t *l = json_object();
    json_object_set_new(l, "result", json_string(live_result_name(r->live_result)));
    json_object_set_new(l, "checked_at", time_or_null(r->live_checked_at));
    json_object_set_new(l, "first_seen", time_or_null(r->live_first_seen));
    json_object_set_new(l, "last_seen", time_or_null(r->live_last_seen));
    json_object_set_new(o, "liveness", l);
    return o;
}

static void print_host_text(const struct host_record *r)
{
    json_t *o = host_json(r);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                char *s = json_is_string(v2) ? NULL : json_dumps(v2, JSON_ENCODE_ANY);
                printf("%s.%s: %s\n", key, k2, s ? s : json_string_value(v2));
                free(s);
            }
            continue;
        }
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
        printf("%s: %s\n", key, s ? s : json_string_value(v));
        free(s);
    }
    json_decref(o);
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    int json = 0, opt, rc;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 'j')
            return EXIT_USAGE;
        json = 1;
    }
    if (argc - optind > 1) {
        cli_error("status: at most one HOST");
        return EXIT_USAGE;
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    if (optind < argc) {
        struct host_record *rec = xmalloc(sizeof(*rec));
        rc = lookup_host(c, "status", argv[optind], rec);
        if (rc == 0) {
            if (json) {
                json_t *o = host_json(rec);
                json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fputc('\n', stdout);
                json_decref(o);
            } else {
                print_host_text(rec);
            }
        }
        free(rec);
        return rc;
    }
    struct count_ctx x;
    memset(&x, 0, sizeof(x));
    rc = store_host_iter(c->st, NULL, count_cb, &x);
    if (rc) {
        cli_error("status: reading the store: %s", cf_strerror(rc));
        return EXIT_FATAL;
    }
    /* "renewing" hosts hold a valid certificate: counted as active here (DESIGN.md §5). */
    size_t active = x.states[HOST_ACTIVE] + x.states[HOST_RENEWING];
    if (json) {
        json_t *o = json_object(), *st = json_object(), *sp = json_object();
        json_object_set_new(o, "hosts", json_integer((json_int_t)x.hosts));
        json_object_set_new(st, "awaiting_delegation",
                            json_integer((json_int_t)x.states[HOST_AWAITING_DELEGATION]));
        json_object_set_new(st, "delegated", json_integer((json_int_t)x.states[HOST_DELEGATED]));
        json_object_set_new(st, "issuing", json_integer((json_int_t)x.states[HOST_ISSUING]));
        json_object_set_new(st, "active", json_integer((json_int_t)active));
        json_object_set_new(st, "stopped", json_integer((json_int_t)x.states[HOST_STOPPED]));
        json_object_set_new(o, "states", st);
        for (int i = 1; i < STOP_REASON__COUNT; i++)
            json_object_set_new(sp, stop_reason_name(i), json_integer((json_int_t)x.reasons[i]));
        json_object_set_new(o, "stopped", sp);
        json_object_set_new(o, "leftover", json_integer((json_int_t)x.leftover));
        json_dumpf(o, stdout, JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
        return EXIT_DONE;
    }
    printf("hosts                %zu\n", x.hosts);
    printf("  awaiting_delegation %zu\n", x.states[HOST_AWAITING_DELEGATION]);
    printf("  delegated           %zu\n", x.states[HOST_DELEGATED]);
    printf("  issuing             %zu\n", x.states[HOST_ISSUING]);
    printf("  active              %zu\n", active);
    printf("  stopped             %zu\n", x.states[HOST_STOPPED]);
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        if (x.reasons[i])
            printf("    %-18s %zu\n", stop_reason_name(i), x.reasons[i]);
    printf("leftover delegations %zu\n", x.leftover);
    return EXIT_DONE;
}

/*
 * mark_hosts runs mark on the record of each HOST argument and stores the
 * ones it changed (mark returns 1) in one batch: `remove` and `rearm`.
 */
static int mark_hosts(struct cli *c, const char *cmd, int argc, char **argv,
                      int (*mark)(struct host_record *rec, int64_t now))
{
    int rc;
    if (argc < 2) {
        cli_error("%s: name at least one HOST", cmd);
        return EXIT_USAGE;
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    struct host_record *rec = xmalloc(sizeof(*rec));
    struct store_batch *b = store_batch_new(c->st);
    int64_t now = cf_wall_ms() / 1000;
    int status = EXIT_DONE;
    for (int i = 1; i < argc; i++) {
        rc = lookup_host(c, cmd, argv[i], rec);
        if (rc) {
            status = rc > status ? rc : status;
            continue;
        }
        if (mark(rec, now))
            store_batch_put_host(b, rec);
    }
    rc = store_batch_commit(b);
    if (rc) {
        cli_error("%s: %s", cmd, cf_strerror(rc));
        status = EXIT_FATAL;
    }
    store_batch_free(b);
    free(rec);
    return status;
}

static int mark_removed(struct host_record *rec, int64_t now)
{
    if (rec->state == HOST_STOPPED && rec->reason == STOP_REMOVED)
        return 0;
    /*
     * The record stays, stopped: its certificate is kept until it
     * expires, and a daily check can still tell whether the customer
     * left the delegation behind (a leftover to report).
     */
    host_set_state(rec, HOST_STOPPED, STOP_REMOVED, now, "removed by an operator");
    rec->order_url[0] = '\0';
    rec->next_action = now;
    printf("removed %s\n", rec->name);
    return 1;
}

int cmd_remove(struct cli *c, int argc, char **argv)
{
    return mark_hosts(c, "remove", argc, argv, mark_removed);
}

/*
 * `certfleet rearm HOST...` is the operator's "try again" for a stopped
 * host (failing, paused by the CA, never live, removed...): it goes back to
 * active when it holds a valid certificate, else to awaiting its
 * delegation, with its failure history cleared, due at once.
 */
static int mark_rearmed(struct host_record *rec, int64_t now)
{
    if (rec->state != HOST_STOPPED && rec->failures == 0) {
        printf("%s is %s: nothing to re-arm\n", rec->name, host_state_name(rec->state));
        return 0;
    }
    sched_rearm(rec, now);
    printf("re-armed %s: %s\n", rec->name, host_state_name(rec->state));
    return 1;
}

int cmd_rearm(struct cli *c, int argc, char **argv)
{
    return mark_hosts(c, "rearm", argc, argv, mark_rearmed);
}
