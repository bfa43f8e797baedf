/*
 * cmd_serve_dns.c - `certfleet serve-dns [--listen ADDR:PORT]...`: run the
 * embedded authoritative server of the validation zone alone, until SIGINT
 * or SIGTERM, answering from the TXT records published in the store.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "authserver.h"
#include "cli.h"
#include "err.h"
#include "log.h"

struct serve {
    struct authsrv *srv;
    uv_signal_t sigint, sigterm;
    int signo;
};

static void log_stats(const struct authsrv_stats *s, int signo)
{
    char q[32], ok[32], nx[32], rf[32], dr[32], tc[32], sig[16];
    snprintf(q, sizeof(q), "%llu", (unsigned long long)s->queries);
    snprintf(ok, sizeof(ok), "%llu", (unsigned long long)s->rcode[0]);
    snprintf(nx, sizeof(nx), "%llu", (unsigned long long)s->rcode[3]);
    snprintf(rf, sizeof(rf), "%llu", (unsigned long long)s->rcode[5]);
    snprintf(dr, sizeof(dr), "%llu", (unsigned long long)s->dropped);
    snprintf(tc, sizeof(tc), "%llu", (unsigned long long)s->truncated);
    snprintf(sig, sizeof(sig), "%d", signo);
    log_event(LOG_INFO, "dns_stopped", "signal", sig, "queries", q, "noerror", ok, "nxdomain", nx,
              "refused", rf, "dropped", dr, "truncated", tc, NULL);
}

static void on_signal(uv_signal_t *h, int signo)
{
    struct serve *sv = h->data;
    struct authsrv_stats st;
    if (!sv->srv)
        return;
    sv->signo = signo;
    authsrv_get_stats(sv->srv, &st);
    log_stats(&st, signo);
    /* Closing every handle ends uv_run. */
    authsrv_free(sv->srv);
    sv->srv = NULL;
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
}

int cmd_serve_dns(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {NULL, 0, NULL, 0}};
    const char *listen[AUTHSRV_MAX_LISTEN];
    size_t n_listen = 0;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt != 'l')
            return EXIT_USAGE;
        char host[64];
        int port;
        if (config_parse_addr(optarg, host, sizeof(host), &port, 53) != 0) {
            cli_error("serve-dns: --listen '%s' is not ADDR:PORT", optarg);
            return EXIT_USAGE;
        }
        if (n_listen == AUTHSRV_MAX_LISTEN) {
            cli_error("serve-dns: at most %d --listen", AUTHSRV_MAX_LISTEN);
            return EXIT_USAGE;
        }
        listen[n_listen++] = optarg;
    }
    if (optind < argc) {
        cli_error("serve-dns: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;

    static struct authsrv_conf_space space;
    struct authsrv_opts o;
    int no_glue;
    authsrv_opts_from_config(&o, &space, &c->cfg, &no_glue);
    if (no_glue)
        log_event(LOG_WARN, "dns_no_glue", "ns", space.ns[0].name, "reason",
                  "--dns-listen is a wildcard address; give --validation-ns NAME=ADDR at init",
                  NULL);
    /* --listen replaces the configured address (the glue still comes from the config). */
    if (n_listen > 0) {
        o.listen = listen;
        o.n_listen = n_listen;
    }

    /* A client closing its TCP connection must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    struct serve sv;
    memset(&sv, 0, sizeof(sv));
    uv_loop_init(&loop);
    rc = authsrv_new(&sv.srv, &loop, c->st, &o);
    if (rc) {
        if (rc == CF_ECONFIG)
            cli_error("serve-dns: invalid zone, nameserver or listen address in %s/config.json",
                      c->state_dir);
        else
            cli_error("serve-dns: cannot listen on %s: %s", o.listen[0], cf_strerror(rc));
        uv_run(&loop, UV_RUN_DEFAULT); /* let the closed handles finish */
        uv_loop_close(&loop);
        return rc == CF_ECONFIG ? EXIT_USAGE : EXIT_FATAL;
    }
    uv_signal_init(&loop, &sv.sigint);
    uv_signal_init(&loop, &sv.sigterm);
    sv.sigint.data = sv.sigterm.data = &sv;
    uv_signal_start(&sv.sigint, on_signal, SIGINT);
    uv_signal_start(&sv.sigterm, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);
    if (rc) {
        log_event(LOG_ERROR, "dns_loop_close", "error", uv_strerror(rc), NULL);
        return EXIT_FATAL;
    }
    return EXIT_DONE;
}
