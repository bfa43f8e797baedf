/*
 * acme_order_driver.c - runs engine/acme/order.c for some hosts at once
 * against a CA and prints one JSON line per host.
 *
 *   acme_order_driver DIRECTORY_URL CA_BUNDLE STATE_DIR RESOLVER ZONE HOST...
 *
 * It opens the store of STATE_DIR (TXT records go there, for `certfleet
 * serve-dns`), loads the account key from it or makes and saves one, starts
 * an http client, an acme client and a dns checker on one loop, and starts
 * one order per HOST. Each chain is written to STATE_DIR/<host>.pem ("*"
 * written as "_wildcard") and a line {"host", "status", "error", "state",
 * "order_url", "chain_file"} is printed per host, after {"account_url"} once
 * the account is known; then {"loop_closed"}.
 * Exit status 0 when the loop closed cleanly, whatever the CA answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "checks.h"
#include "client.h"
#include "crypto.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "commit.h"
#include "order.h"
#include "store.h"

static uv_loop_t loop;
static struct http_client *http;
static struct acme_client *client;
static struct dns_checker *dns;
static struct store *st;
static struct committer *commit;
static struct committer_stats commit_stats;
static struct crypto_key *account_key;
static const char *state_dir, *zone;
static char **hosts;
static int nhosts, ndone;

static void json_kv(struct buf *b, const char *k, const char *v, int first)
{
    buf_printf(b, "%s\"%s\":", first ? "" : ",", k);
    buf_json_string(b, v, strlen(v));
}

static void finish(void)
{
    acme_client_free(client);
    client = NULL;
    dns_checker_free(dns);
    dns = NULL;
    http_client_free(http);
    http = NULL;
    /* The last withdrawals are committed here. */
    if (commit) {
        committer_flush(commit);
        committer_get_stats(commit, &commit_stats);
    }
    committer_free(commit);
    commit = NULL;
}

static void on_order(void *arg, const struct acme_order_result *r)
{
    (void)arg;
    char path[1024] = "", fname[300];
    struct buf b;
    if (r->error == 0) {
        str_copy(fname, sizeof(fname), r->host);
        if (fname[0] == '*')
            str_fmt(fname, sizeof(fname), "_wildcard%s", r->host + 1);
        str_fmt(path, sizeof(path), "%s/%s.pem", state_dir, fname);
        FILE *f = fopen(path, "w");
        if (!f || fwrite(r->chain_pem, 1, r->chain_len, f) != r->chain_len) {
            fprintf(stderr, "acme_order_driver: cannot write %s\n", path);
            path[0] = '\0';
        }
        if (f)
            fclose(f);
        /* A real caller stores the key next to the chain; the test only needs its size. */
    }
    buf_init(&b);
    buf_putc(&b, '{');
    json_kv(&b, "host", r->host, 1);
    json_kv(&b, "status", r->error ? "failed" : "done", 0);
    json_kv(&b, "error", r->error ? cf_errname(r->error) : "", 0);
    json_kv(&b, "error_text", r->error_text, 0);
    json_kv(&b, "state", acme_order_state_name(r->failed_in), 0);
    json_kv(&b, "order_url", r->order_url, 0);
    json_kv(&b, "chain_file", path, 0);
    buf_printf(&b, ",\"key_pem_bytes\":%zu}\n", r->key_len);
    fputs(b.data, stdout);
    fflush(stdout);
    buf_cleanup(&b);
    if (++ndone == nhosts)
        finish();
}

static void on_start(void *arg, int err, const char *detail)
{
    (void)arg;
    if (err) {
        fprintf(stderr, "acme_order_driver: account: %s: %s\n", cf_errname(err), detail);
        finish();
        return;
    }
    {
        struct buf b;
        buf_init(&b);
        buf_puts(&b, "{\"account_url\":");
        const char *url = acme_client_account_url(client);
        buf_json_string(&b, url, strlen(url));
        buf_puts(&b, "}\n");
        fputs(b.data, stdout);
        fflush(stdout);
        buf_cleanup(&b);
    }
    for (int i = 0; i < nhosts; i++) {
        struct acme_order_opts o;
        memset(&o, 0, sizeof(o));
        o.loop = &loop;
        o.client = client;
        o.account_key = account_key;
        o.commit = commit;
        o.dns = dns;
        o.validation_zone = zone;
        o.host = hosts[i];
        o.poll_max_ms = 60000;
        int rc = acme_order_start(NULL, &o, on_order, NULL);
        if (rc) {
            struct acme_order_result r = {
                .host = hosts[i], .error = rc, .error_text = cf_strerror(rc), .order_url = ""};
            on_order(NULL, &r);
        }
    }
}

/* load_account_key reads the key from STORE_DB_ACCOUNT "key", or makes and saves one. */
static int load_account_key(void)
{
    struct buf pem;
    int rc;
    buf_init(&pem);
    rc = store_get(st, STORE_DB_ACCOUNT, "key", 3, &pem);
    if (rc == 0) {
        rc = crypto_key_from_pem(&account_key, pem.data, pem.len);
        goto out_free_pem;
    }
    if (rc != CF_ENOTFOUND)
        goto out_free_pem;
    rc = crypto_key_generate(&account_key, CRYPTO_KEY_EC_P256);
    if (rc == 0)
        rc = crypto_key_to_pem(account_key, &pem);
    if (rc == 0) {
        struct store_batch *b = store_batch_new(st);
        store_batch_put(b, STORE_DB_ACCOUNT, "key", 3, pem.data, pem.len);
        rc = store_batch_commit(b);
        store_batch_free(b);
    }
out_free_pem:
    if (pem.data)
        memset(pem.data, 0, pem.len);
    buf_cleanup(&pem);
    return rc;
}

int main(int argc, char **argv)
{
    struct http_opts ho;
    struct acme_client_opts co;
    struct dns_checker_opts dopts;
    char libpath[512];
    int rc;
    if (argc < 7) {
        fprintf(stderr, "usage: acme_order_driver DIRECTORY_URL CA_BUNDLE STATE_DIR RESOLVER "
                        "ZONE HOST...\n");
        return 2;
    }
    if (crypto_backend_check(libpath, sizeof(libpath)) != 0) {
        fprintf(stderr, "acme_order_driver: wrong libcrypto won: %s\n", libpath);
        return 1;
    }
    log_setup(getenv("CF_LOG_DEBUG") ? LOG_DEBUG : LOG_INFO, 1, stderr);
    state_dir = argv[3];
    zone = argv[5];
    hosts = argv + 6;
    nhosts = argc - 6;
    rc = store_open(&st, state_dir, NULL);
    if (rc) {
        fprintf(stderr, "acme_order_driver: %s: %s\n", state_dir, cf_strerror(rc));
        return 1;
    }
    rc = load_account_key();
    if (rc) {
        fprintf(stderr, "acme_order_driver: account key: %s\n", cf_strerror(rc));
        return 1;
    }
    uv_loop_init(&loop);
    memset(&ho, 0, sizeof(ho));
    ho.ca_bundle = argv[2];
    http = http_client_new(&loop, &ho);
    memset(&dopts, 0, sizeof(dopts));
    dopts.resolver = argv[4];
    memset(&co, 0, sizeof(co));
    co.directory_url = argv[1];
    co.account_key = account_key;
    if (!http || (rc = committer_new(&commit, &loop, st)) != 0 ||
        (rc = dns_checker_new(&dns, &loop, &dopts)) != 0 ||
        (rc = acme_client_new(&client, &loop, http, &co)) != 0 ||
        (rc = acme_client_start(client, on_start, NULL)) != 0) {
        fprintf(stderr, "acme_order_driver: setup: %s\n", cf_strerror(rc));
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop) == 0;
    crypto_key_free(account_key);
    store_close(st);
    printf("{\"loop_closed\":%s,\"done\":%d,\"commits\":%llu,\"committed_changes\":%llu}\n",
           closed ? "true" : "false", ndone, (unsigned long long)commit_stats.commits,
           (unsigned long long)commit_stats.changes);
    return closed ? 0 : 1;
}
