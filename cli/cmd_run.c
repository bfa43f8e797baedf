/*
 * cmd_run.c - `certfleet run`: the nightly fleet-wide run (engine/run/run.h),
 * its options, the summary table, the metrics file and the exit status
 * (DESIGN.md §5).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "log.h"
#include "run.h"
#include "timeutil.h"

static int parse_count(const char *what, const char *s, size_t max, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v == 0 || v > max) {
        cli_error("run: %s '%s' must be a whole number from 1 to %zu", what, s, max);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"concurrency", required_argument, NULL, 'c'},
                                         {"order-concurrency", required_argument, NULL, 'o'},
                                         {"new-order-concurrency", required_argument, NULL, 'N'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"deadline", required_argument, NULL, 'd'},
                                         {"order-deadline", required_argument, NULL, 'D'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"now", required_argument, NULL, 't'},
                                         {"rate-limits", required_argument, NULL, 'r'},
                                         {"stats-json", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    struct run_opts o;
    struct run_summary sum;
    int opt, rc;
    int64_t secs;
    memset(&o, 0, sizeof(o));
    sched_policy_defaults(&o.policy);
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (parse_count("--concurrency", optarg, 100000, &o.concurrency))
                return EXIT_USAGE;
            break;
        case 'o':
            if (parse_count("--order-concurrency", optarg, 10000, &o.order_concurrency))
                return EXIT_USAGE;
            break;
        case 'N':
            if (parse_count("--new-order-concurrency", optarg, 1000, &o.new_order_concurrency))
                return EXIT_USAGE;
            break;
        case 'l':
            if (parse_count("--limit", optarg, (size_t)1 << 40, &o.limit))
                return EXIT_USAGE;
            break;
        case 'd':
        case 'D':
            if (cf_duration_parse(&secs, optarg) != 0 || secs <= 0) {
                cli_error("run: %s '%s' is not a duration (like 90s, 30m, 6h)",
                          opt == 'd' ? "--deadline" : "--order-deadline", optarg);
                return EXIT_USAGE;
            }
            if (opt == 'd')
                o.deadline_ms = secs * 1000;
            else
                o.order_deadline_ms = secs * 1000;
            break;
        case 'n':
            o.dry_run = 1;
            break;
        case 't': {
            const char *tc = getenv("CERTFLEET_TEST_CLOCK");
            if (!tc || strcmp(tc, "1") != 0) {
                cli_error("run: --now is a test clock; it is refused unless "
                          "CERTFLEET_TEST_CLOCK=1 is set in the environment");
                return EXIT_USAGE;
            }
            if (cf_time_parse(&o.now, optarg) != 0 || o.now <= 0) {
                cli_error("run: --now '%s' is not an RFC 3339 time (like 2027-01-31T02:00:00Z)",
                          optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'r':
            o.rate_limits = optarg;
            break;
        case 's':
            o.stats_json = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("run: unexpected argument '%s' (run takes no hostnames; see check)",
                  argv[optind]);
        return EXIT_USAGE;
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    /* A TLS peer closing its connection must not kill the run. */
    signal(SIGPIPE, SIG_IGN);
    o.cfg = &c->cfg;
    o.st = c->st;
    o.state_dir = c->state_dir;
    o.plan = o.dry_run ? stdout : NULL;
    if (!o.rate_limits && c->cfg.rate_limits[0])
        o.rate_limits = c->cfg.rate_limits;
    if (isatty(STDERR_FILENO)) {
        /* A person is watching: one progress line; only warnings interrupt it. */
        o.progress = stderr;
        if (!getenv("CERTFLEET_LOG"))
            log_setup(LOG_WARN, 0, stderr);
    }
    rc = run_fleet(&o, &sum);
    run_summary_print(stdout, &sum, o.dry_run);
    if (!o.dry_run && run_metrics_write(c->state_dir, c->st, &sum) != 0)
        cli_error("run: cannot write %s/metrics.prom", c->state_dir);
    if (rc) {
        cli_error("run: %s", sum.fatal_text[0] ? sum.fatal_text : cf_strerror(rc));
        return rc == CF_ECONFIG ? EXIT_USAGE : EXIT_FATAL;
    }
    /* Hosts cut off by the deadline are not done either: the next run takes them. */
    return sum.failed || sum.deferred ? EXIT_SOME_FAILED : EXIT_DONE;
}
