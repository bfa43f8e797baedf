/*
 * cmd_report.c - `certfleet report KIND [--format csv|json] [--within DURATION]`:
 * the lists an account manager works from, with the facts they need: the
 * host, the customer, its state and since when, and what DNS showed at the
 * last check.
 *
 *   leftover    stopped hosts whose _acme-challenge CNAME still points at us
 *               (ask the customer to delete it)
 *   offboarded  hosts stopped because they no longer point at the CDN
 *   never-live  hosts that got a certificate but were never seen live
 *   failing     hosts stopped after days of failures, and hosts failing now
 *   expiring    certificates that expire within --within (default 30d)
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "timeutil.h"

enum report_kind { REP_LEFTOVER, REP_OFFBOARDED, REP_NEVER_LIVE, REP_FAILING, REP_EXPIRING };

struct report {
    enum report_kind kind;
    int json;
    int64_t now, within;
    size_t n;
    struct buf out;
};

static int report_wants(const struct report *r, const struct host_record *rec)
{
    switch (r->kind) {
    case REP_LEFTOVER:
        return rec->state == HOST_STOPPED && rec->leftover;
    case REP_OFFBOARDED:
        return rec->state == HOST_STOPPED && rec->reason == STOP_OFFBOARDED;
    case REP_NEVER_LIVE:
        return (rec->state == HOST_STOPPED && rec->reason == STOP_NEVER_LIVE) ||
               (rec->certs_issued > 0 && rec->live_first_seen == 0 && rec->state != HOST_STOPPED);
    case REP_FAILING:
        return (rec->state == HOST_STOPPED && rec->reason == STOP_FAILING) ||
               (rec->state != HOST_STOPPED && rec->failures > 0);
    case REP_EXPIRING:
        return rec->not_after > 0 && rec->not_after <= r->now + r->within;
    }
    return 0;
}

static void field(struct report *r, const char *key, const char *val, int first)
{
    struct buf *b = &r->out;
    if (r->json) {
        buf_puts(b, first ? "" : ", ");
        buf_json_string(b, key, strlen(key));
        buf_puts(b, ": ");
        buf_json_string(b, val, strlen(val));
        return;
    }
    if (!first)
        buf_putc(b, ',');
    /* RFC 4180: quote a field holding a comma, a quote or a line break. */
    if (strpbrk(val, ",\"\r\n")) {
        buf_putc(b, '"');
        for (const char *p = val; *p; p++) {
            if (*p == '"')
                buf_putc(b, '"');
            buf_putc(b, *p);
        }
        buf_putc(b, '"');
    } else {
        buf_puts(b, val);
    }
}

static const char *tfmt(char *out, size_t n, int64_t t)
{
    if (t <= 0) {
        out[0] = '\0';
        return out;
    }
    return cf_time_format(out, n, t);
}

static const char *const report_columns[] = {
    "host",     "customer",     "state",           "reason",
    "since",    "delegation",   "delegation_seen", "delegation_checked",
    "live",     "live_checked", "last_live",       "not_after",
    "failures", "last_error",   "target"};

static int report_cb(void *ctx, const struct host_record *rec)
{
    struct report *r = ctx;
    char since[32], dchk[32], lchk[32], llive[32], na[32], fails[16];
    if (!report_wants(r, rec))
        return 0;
    str_fmt(fails, sizeof(fails), "%u", rec->failures);
    const char *vals[] = {
        rec->name,
        rec->customer,
        host_state_name(rec->state),
        rec->state == HOST_STOPPED ? stop_reason_name(rec->reason) : "",
        tfmt(since, sizeof(since), rec->state_since),
        deleg_result_name(rec->deleg_result),
        rec->deleg_seen,
        tfmt(dchk, sizeof(dchk), rec->deleg_checked_at),
        live_result_name(rec->live_result),
        tfmt(lchk, sizeof(lchk), rec->live_checked_at),
        tfmt(llive, sizeof(llive), rec->live_last_seen),
        tfmt(na, sizeof(na), rec->not_after),
        fails,
        rec->last_error,
        rec->target,
    };
    if (r->json)
        buf_puts(&r->out, r->n ? ",\n  {" : "\n  {");
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        field(r, report_columns[i], vals[i], i == 0);
    buf_puts(&r->out, r->json ? "}" : "\n");
    r->n++;
    if (r->out.len > (1 << 16)) {
        fwrite(r->out.data, 1, r->out.len, stdout);
        buf_reset(&r->out);
    }
    return 0;
}

int cmd_report(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"within", required_argument, NULL, 'w'},
                                         {NULL, 0, NULL, 0}};
    static const char *const kinds[] = {"leftover", "offboarded", "never-live", "failing",
                                        "expiring"};
    struct report r;
    int opt, rc;
    memset(&r, 0, sizeof(r));
    r.within = 30 * 86400;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'f') {
            if (strcmp(optarg, "json") == 0) {
                r.json = 1;
            } else if (strcmp(optarg, "csv") != 0) {
                cli_error("report: --format '%s': use csv or json", optarg);
                return EXIT_USAGE;
            }
        } else if (opt == 'w') {
            if (cf_duration_parse(&r.within, optarg) != 0 || r.within <= 0) {
                cli_error("report: --within '%s' is not a duration (like 30d)", optarg);
                return EXIT_USAGE;
            }
        } else {
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_error("report: name one KIND: leftover, offboarded, never-live, failing, expiring");
        return EXIT_USAGE;
    }
    size_t k;
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (strcmp(argv[optind], kinds[k]) == 0)
            break;
    if (k == sizeof(kinds) / sizeof(kinds[0])) {
        cli_error("report: unknown KIND '%s': use leftover, offboarded, never-live, failing or "
                  "expiring",
                  argv[optind]);
        return EXIT_USAGE;
    }
    r.kind = (enum report_kind)k;
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    r.now = cf_wall_ms() / 1000;
    buf_init(&r.out);
    if (r.json) {
        buf_puts(&r.out, "[");
    } else {
        for (size_t i = 0; i < sizeof(report_columns) / sizeof(report_columns[0]); i++)
            buf_printf(&r.out, "%s%s", i ? "," : "", report_columns[i]);
        buf_putc(&r.out, '\n');
    }
    rc = store_host_iter(c->st, NULL, report_cb, &r);
    if (r.json)
        buf_puts(&r.out, r.n ? "\n]\n" : "]\n");
    if (rc) {
        buf_cleanup(&r.out);
        cli_error("report: reading the store: %s", cf_strerror(rc));
        return EXIT_FATAL;
    }
    fwrite(r.out.data, 1, r.out.len, stdout);
    buf_cleanup(&r.out);
    return EXIT_DONE;
}
