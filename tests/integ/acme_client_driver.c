/*
 * acme_client_driver.c - runs engine/acme/client.c against a CA and prints
 * one JSON line with what happened.
 *
 *   acme_client_driver [--ca FILE] [--email ADDR] [--retries N]
 *                      [--seq N] [--par N] DIRECTORY_URL
 *
 * It makes an EC P-256 account key, starts a client (directory and
 * newAccount), POSTs-as-GET the account URL --seq times one after the other
 * and then --par times at once, and finally starts a second client with the
 * same key and no account URL, which must find the same account (200). The
 * exit status is 0 when the loop closed cleanly, whatever the CA answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "client.h"
#include "crypto.h"
#include "err.h"
#include "http.h"

static uv_loop_t loop;
static struct http_client *http;
static struct crypto_key *key;
static struct acme_client *first, *second;
static struct acme_client_opts copts;
static int n_seq = 10, n_par = 5;
static int seq_done, par_done, gets_ok, gets_failed;
static struct acme_client_stats stats1;
static char start_err[64] = "", start_detail[256] = "", account_url[1024] = "";
static char second_err[64] = "", second_detail[256] = "", second_url[1024] = "";
static char first_error[512] = "";

static void finish(void)
{
    if (first) {
        acme_client_get_stats(first, &stats1);
        acme_client_free(first);
        first = NULL;
    }
    acme_client_free(second);
    second = NULL;
    http_client_free(http);
    http = NULL;
}

static void on_second_start(void *arg, int err, const char *detail)
{
    (void)arg;
    str_copy(second_err, sizeof(second_err), err ? cf_errname(err) : "");
    str_copy(second_detail, sizeof(second_detail), detail ? detail : "");
    if (acme_client_account_url(second))
        str_copy(second_url, sizeof(second_url), acme_client_account_url(second));
    finish();
}

static void start_second(void)
{
    acme_client_get_stats(first, &stats1);
    /* The client's own callback frees it: acme_client_free allows that. */
    acme_client_free(first);
    first = NULL;
    if (acme_client_new(&second, &loop, http, &copts) ||
        acme_client_start(second, on_second_start, NULL)) {
        str_copy(second_err, sizeof(second_err), "start failed");
        finish();
    }
}

static void post_as_get(void);

static void on_get(void *arg, const struct acme_client_reply *r)
{
    int parallel = arg != NULL;
    if (r->error == 0 && r->status == 200 && strstr(r->body, "\"valid\"")) {
        gets_ok++;
    } else {
        gets_failed++;
        if (!first_error[0])
            snprintf(first_error, sizeof(first_error), "HTTP %d %s: %s", r->status,
                     cf_errname(r->error), r->error_text);
    }
    if (!parallel) {
        if (++seq_done < n_seq) {
            post_as_get();
            return;
        }
        if (n_par == 0) {
            start_second();
            return;
        }
        for (int i = 0; i < n_par; i++)
            if (acme_client_post(first, account_url, "", on_get, &loop)) {
                gets_failed++;
                par_done++;
            }
        if (par_done == n_par)
            start_second();
        return;
    }
    if (++par_done == n_par)
        start_second();
}

static void post_as_get(void)
{
    if (acme_client_post(first, account_url, "", on_get, NULL)) {
        gets_failed++;
        finish();
    }
}

static void on_first_start(void *arg, int err, const char *detail)
{
    (void)arg;
    str_copy(start_err, sizeof(start_err), err ? cf_errname(err) : "");
    str_copy(start_detail, sizeof(start_detail), detail ? detail : "");
    if (err) {
        finish();
        return;
    }
    str_copy(account_url, sizeof(account_url), acme_client_account_url(first));
    if (n_seq > 0)
        post_as_get();
    else
        on_get(NULL, &(struct acme_client_reply){.error = CF_EUSAGE, .body = "", .error_text = ""});
}

static void json_kv(struct buf *b, const char *k, const char *v)
{
    buf_printf(b, ",\"%s\":", k);
    buf_json_string(b, v, strlen(v));
}

static int usage(void)
{
    fprintf(stderr, "usage: acme_client_driver [--ca FILE] [--email ADDR] [--retries N] "
                    "[--seq N] [--par N] DIRECTORY_URL\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct http_opts ho;
    int i = 1;
    memset(&ho, 0, sizeof(ho));
    memset(&copts, 0, sizeof(copts));
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--ca") == 0)
            ho.ca_bundle = v;
        else if (strcmp(a, "--email") == 0)
            copts.contact_email = v;
        else if (strcmp(a, "--retries") == 0)
            copts.max_bad_nonce_retries = atoi(v);
        else if (strcmp(a, "--seq") == 0)
            n_seq = atoi(v);
        else if (strcmp(a, "--par") == 0)
            n_par = atoi(v);
        else
            return usage();
    }
    if (i + 1 != argc)
        return usage();
    copts.directory_url = argv[i];

    char libpath[512];
    if (crypto_backend_check(libpath, sizeof(libpath)) != 0) {
        fprintf(stderr, "acme_client_driver: wrong libcrypto won: %s\n", libpath);
        return 1;
    }
    uv_loop_init(&loop);
    http = http_client_new(&loop, &ho);
    if (!http || crypto_key_generate(&key, CRYPTO_KEY_EC_P256)) {
        fprintf(stderr, "acme_client_driver: setup failed\n");
        return 1;
    }
    copts.account_key = key;
    int err = acme_client_new(&first, &loop, http, &copts);
    if (!err)
        err = acme_client_start(first, on_first_start, NULL);
    if (err) {
        fprintf(stderr, "acme_client_driver: %s\n", cf_strerror(err));
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop) == 0;
    crypto_key_free(key);

    struct buf b;
    buf_init(&b);
    buf_printf(&b, "{\"loop_closed\":%s", closed ? "true" : "false");
    json_kv(&b, "start_error", start_err);
    json_kv(&b, "start_detail", start_detail);
    json_kv(&b, "account_url", account_url);
    buf_printf(&b, ",\"gets_ok\":%d,\"gets_failed\":%d", gets_ok, gets_failed);
    json_kv(&b, "first_error", first_error);
    buf_printf(&b,
               ",\"posts\":%llu,\"bad_nonce_retries\":%llu,\"nonce_heads\":%llu,"
               "\"nonces_from_responses\":%llu",
               (unsigned long long)stats1.posts, (unsigned long long)stats1.bad_nonce_retries,
               (unsigned long long)stats1.nonce_heads,
               (unsigned long long)stats1.nonces_from_responses);
    json_kv(&b, "second_error", second_err);
    json_kv(&b, "second_detail", second_detail);
    json_kv(&b, "second_account_url", second_url);
    buf_puts(&b, "}\n");
    fputs(b.data, stdout);
    buf_cleanup(&b);
    return closed ? 0 : 1;
}
