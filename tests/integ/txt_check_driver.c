/*
 * txt_check_driver.c - runs one propagation check (dns_check_txt) and prints
 * its report as JSON, for the integration tests.
 *
 *   txt_check_driver RESOLVER ZONE NAME VALUE
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "checks.h"

static int done_rc = 2;

static void on_txt(void *arg, const struct txt_report *r)
{
    (void)arg;
    printf(
        "{\"ready\": %s, \"zone\": \"%s\", \"nservers\": %zu, \"nready\": %zu, \"error\": \"%s\", "
        "\"servers\": [",
        r->ready ? "true" : "false", r->zone, r->nservers, r->nready, r->error);
    for (size_t i = 0; i < r->nservers; i++)
        printf("%s{\"addr\": \"%s\", \"has\": %s}", i ? ", " : "", r->servers[i].addr,
               r->servers[i].has ? "true" : "false");
    printf("]}\n");
    done_rc = r->ready ? 0 : 1;
    uv_stop(uv_default_loop());
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: txt_check_driver RESOLVER ZONE NAME VALUE\n");
        return 2;
    }
    struct dns_checker_opts o;
    memset(&o, 0, sizeof(o));
    o.resolver = argv[1];
    struct dns_checker *dc;
    if (dns_checker_new(&dc, uv_default_loop(), &o) != 0)
        return 2;
    dns_check_txt(dc, argv[2], argv[3], argv[4], on_txt, NULL);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    dns_checker_free(dc);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    return done_rc;
}
