/*
 * rfc2136_driver.c - runs RFC 2136 changes through the provisioner on one
 * loop, for the integration test against knot (there is no CLI command
 * that only publishes).
 *
 *   rfc2136_driver [--timeout MS] [--tries N] [--max-changes N] SERVER ZONE KEYFILE OP...
 *
 * OP is "add:NAME:VALUE" or "del:NAME:VALUE", or "-" to read lines
 * "add NAME VALUE" / "del NAME VALUE" from stdin. Every change is queued
 * before the loop runs, so they are batched as one loop iteration's worth.
 * Prints one line per change, in input order:
 *
 *   <n> ok <op> <name> <value>
 *   <n> fail <op> <name> <value> <CF code> <detail>
 *
 * then "stats messages=N udp_sends=N tcp_exchanges=N retransmits=N ok=N
 * failed=N ms=N". Exit status: 0 all ok, 1 some failed, 2 usage or setup.
 * Logs go to stderr at $CERTFLEET_LOG (default warn).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "rfc2136.h"

struct op {
    int del;
    char *name;
    char *value;
    int done;
    int status;
    char *detail;
};

static struct op *ops;
static size_t nops, capops;

static void add_op(int del, const char *name, const char *value)
{
    if (nops == capops) {
        capops = capops ? capops * 2 : 64;
        ops = xrealloc(ops, capops * sizeof(*ops));
    }
    memset(&ops[nops], 0, sizeof(ops[nops]));
    ops[nops].del = del;
    ops[nops].name = xstrdup(name);
    ops[nops].value = xstrdup(value);
    nops++;
}

/* parse_op reads "add:NAME:VALUE" or, with sep ' ', "add NAME VALUE". */
static int parse_op(char *s, char sep)
{
    char *a = strchr(s, sep), *b;
    if (!a)
        return -1;
    *a++ = '\0';
    b = strchr(a, sep);
    if (!b)
        return -1;
    *b++ = '\0';
    if (strcmp(s, "add") != 0 && strcmp(s, "del") != 0)
        return -1;
    add_op(strcmp(s, "del") == 0, a, b);
    return 0;
}

static void on_done(void *arg, int status, const char *detail)
{
    struct op *o = arg;
    o->done = 1;
    o->status = status;
    o->detail = xstrdup(detail);
}

static void usage(void)
{
    fprintf(stderr, "usage: rfc2136_driver [--timeout MS] [--tries N] [--max-changes N] "
                    "SERVER ZONE KEYFILE OP...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct rfc2136_opts o;
    struct rfc2136 *u = NULL;
    struct rfc2136_stats st;
    const char *reason = NULL, *lv = getenv("CERTFLEET_LOG");
    uv_loop_t loop;
    int i = 1, rc, failed = 0;

    memset(&o, 0, sizeof(o));
    log_setup(lv && log_level_parse(lv) >= 0 ? (enum log_level)log_level_parse(lv) : LOG_WARN, 1,
              stderr);
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--timeout") == 0)
            o.timeout_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--tries") == 0)
            o.tries = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--max-changes") == 0)
            o.max_changes = (size_t)atoi(argv[i + 1]);
        else
            usage();
    }
    if (argc - i < 4)
        usage();
    o.server = argv[i];
    o.zone = argv[i + 1];
    o.tsig_key_file = argv[i + 2];
    for (int k = i + 3; k < argc; k++) {
        if (strcmp(argv[k], "-") == 0) {
            char line[8192];
            while (fgets(line, sizeof(line), stdin)) {
                line[strcspn(line, "\r\n")] = '\0';
                if (!line[0])
                    continue;
                if (parse_op(line, ' ') != 0) {
                    fprintf(stderr, "rfc2136_driver: bad line: %s\n", line);
                    return 2;
                }
            }
        } else if (parse_op(argv[k], ':') != 0) {
            fprintf(stderr, "rfc2136_driver: bad op: %s\n", argv[k]);
            return 2;
        }
    }

    uv_loop_init(&loop);
    rc = rfc2136_new(&u, &loop, &o, &reason);
    if (rc != 0) {
        fprintf(stderr, "rfc2136_driver: %s: %s\n", cf_strerror(rc), reason ? reason : "");
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 2;
    }
    uint64_t t0 = uv_now(&loop);
    for (size_t k = 0; k < nops; k++) {
        if (ops[k].del)
            rfc2136_del_txt(u, ops[k].name, ops[k].value, on_done, &ops[k]);
        else
            rfc2136_add_txt(u, ops[k].name, ops[k].value, on_done, &ops[k]);
    }
    /* The loop runs until every callback ran: the timers and the socket stay only while needed. */
    while (rfc2136_pending(u) > 0)
        uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    uint64_t ms = uv_now(&loop) - t0;
    rfc2136_stats(u, &st);
    rfc2136_free(u);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    for (size_t k = 0; k < nops; k++) {
        const struct op *p = &ops[k];
        const char *opn = p->del ? "del" : "add";
        if (p->done && p->status == 0) {
            printf("%zu ok %s %s %s\n", k, opn, p->name, p->value);
        } else {
            failed++;
            printf("%zu fail %s %s %s %s %s\n", k, opn, p->name, p->value,
                   p->done ? cf_errname(p->status) : "NOT_DONE", p->detail ? p->detail : "");
        }
    }
    printf("stats messages=%llu udp_sends=%llu tcp_exchanges=%llu retransmits=%llu ok=%llu "
           "failed=%llu ms=%llu\n",
           (unsigned long long)st.messages, (unsigned long long)st.udp_sends,
           (unsigned long long)st.tcp_exchanges, (unsigned long long)st.retransmits,
           (unsigned long long)st.changes_ok, (unsigned long long)st.changes_failed,
           (unsigned long long)ms);
    for (size_t k = 0; k < nops; k++) {
        free(ops[k].name);
        free(ops[k].value);
        free(ops[k].detail);
    }
    free(ops);
    return failed ? 1 : 0;
}
