/*
 * main.c - certfleet's entry point: global options and command dispatch.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "hostname.h"
#include "log.h"

static const char usage_text[] =
    "usage: certfleet [--state DIR] <command> [options]\n"
    "  state dir: --state, else $CERTFLEET_STATE, else ./certfleet-state\n"
    "commands:\n"
    "  init --validation-zone ZONE --directory URL [--ca-bundle FILE] [--email ADDR]\n"
    "       [--cdn-target SUFFIX|CIDR]... [--eab-kid ID --eab-hmac-file FILE]\n"
    "       [--resolver ADDR[:PORT]] [--dns-listen ADDR:PORT]\n"
    "       [--rfc2136 ADDR[:PORT] --tsig-key-file FILE] [--key-type ec256|ec384|rsa2048|...]\n"
    "       [--validation-ns NAME[=ADDR]]...   nameservers of the validation zone (glue)\n"
    "       [--rate-limits SPEC]        the CA's limits: letsencrypt, none, or with overrides\n"
    "  import [FILE|-]                 one hostname a line, or CSV with a header\n"
    "  instructions [--format csv|json] [HOST...]\n"
    "  run [--concurrency N] [--order-concurrency N] [--new-order-concurrency N]\n"
    "      [--limit N] [--deadline DURATION]\n"
    "      [--order-deadline DURATION] [--dry-run] [--rate-limits SPEC] [--stats-json FILE]\n"
    "      [--now TIME]                test clock (RFC 3339); needs CERTFLEET_TEST_CLOCK=1\n"
    "  status [--json] [HOST]\n"
    "  report leftover|offboarded|never-live|failing|expiring [--format csv|json] [--within D]\n"
    "  export HOST [--out DIR]         certificate chain and key (0600) as PEM files\n"
    "  remove HOST...\n"
    "  rearm HOST...                   retry a stopped (failing, paused, never-live) host\n"
    "  check [--json|--quiet] [--only delegation|liveness] [--concurrency N] [HOST...]\n"
    "  rotate-account-key              roll the ACME account over to a new key\n"
    "  serve-dns [--listen ADDR:PORT]...   the validation zone's authoritative server\n"
    "  version\n";

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("certfleet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_load_config(struct cli *c)
{
    char err[512];
    int rc = config_load(&c->cfg, c->state_dir, err, sizeof(err));
    if (rc) {
        cli_error("%s", err);
        return EXIT_USAGE;
    }
    return 0;
}

int cli_open_store(struct cli *c)
{
    int rc = store_open(&c->st, c->state_dir, NULL);
    if (rc == CF_ENEWER_SCHEMA) {
        cli_error("%s/store.mdb was written by a newer certfleet (schema above %d); "
                  "refusing to read it",
                  c->state_dir, STORE_SCHEMA_VERSION);
        return EXIT_FATAL;
    }
    if (rc) {
        cli_error("cannot open the store in %s: %s", c->state_dir, cf_strerror(rc));
        return EXIT_FATAL;
    }
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(struct cli *, int, char **);
    int needs_backends;
} commands[] = {
    /* name, function, needs the run-time backend check */
    {"init", cmd_init, 1},
    {"import", cmd_import, 1},
    {"instructions", cmd_instructions, 1},
    {"status", cmd_status, 1},
    {"remove", cmd_remove, 1},
    {"check", cmd_check, 1},
    {"version", cmd_version, 0},
    {"serve-dns", cmd_serve_dns, 1},
    {"rotate-account-key", cmd_rotate_account_key, 1},
    {"run", cmd_run, 1},
    {"report", cmd_report, 1},
    {"export", cmd_export, 1},
    {"rearm", cmd_rearm, 1},
};

int main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof(c));
    c.state_dir = getenv("CERTFLEET_STATE");
    if (!c.state_dir || !*c.state_dir)
        c.state_dir = "./certfleet-state";

    int level = LOG_INFO;
    const char *lv = getenv("CERTFLEET_LOG");
    if (lv && log_level_parse(lv) >= 0)
        level = log_level_parse(lv);
    /* JSON lines unless a person is watching (DESIGN.md §5). */
    log_setup(level, !isatty(STDERR_FILENO), stderr);

    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            c.state_dir = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--state=", 8) == 0) {
            c.state_dir = argv[i] + 8;
            i++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return EXIT_DONE;
        } else {
            cli_error("unknown option '%s'", argv[i]);
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[i];
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(cmd, commands[k].name) != 0)
            continue;
        if (commands[k].needs_backends && cli_check_backends() != 0)
            return EXIT_FATAL;
        /* Commands parse their own options with getopt_long from argv[0] = command. */
        optind = 1;
        int rc = commands[k].fn(&c, argc - i, argv + i);
        store_close(c.st);
        hostname_psl_cleanup();
        return rc;
    }
    cli_error("unknown command '%s'", cmd);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}
