/*
 * acme_client_driver.c - runs engine/acme/client.c against a CA and prints
 * one JSON line with what happened.
 *
 *   acme_client_driver [--ca FILE] [--email ADDR] [--retries N]
 *                      [--seq N] [--par N] [--rollover] DIRECTORY_URL
 *
 * It makes an EC P-256 account key, starts a client (directory and
 * newAccount), POSTs-as-GET the account URL --seq times one after the other
 * and then --par times at once, and finally starts a second client with the
 * same key and no account URL, which must find the same account (200). The
 * exit status is 0 when the loop closed cleanly, whatever the CA answered.
 *
 * With --rollover, before the second client, the first one rolls the
 * account over to a fresh EC P-256 key (RFC 8555 §7.3.5) and POSTs-as-GET
 * the account URL with it; then a client with the old key and the known
 * account URL POSTs-as-GET it too (the CA must refuse that); the second
 * client then uses the new key. Before the real rollover it tries one to a
 * copy of the current key, which the CA must refuse (old key kept).
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
static struct crypto_key *key, *new_key, *key_copy;
static char conflict_err[64] = "", conflict_problem[128] = "", conflict_detail[256] = "";
static int conflict_status;
static struct acme_client *first, *second, *oldc;
static int rollover, rollover_started;
static char kc_err[64] = "", kc_detail[256] = "", kc_problem[128] = "";
static int kc_status, kc_retries;
static char newkey_err[64] = "", newkey_url[1024] = "";
static int newkey_status, newkey_valid;
static char oldkey_err[64] = "", oldkey_start[64] = "", oldkey_problem[128] = "";
static int oldkey_status;
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
    acme_client_free(oldc);
    oldc = NULL;
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

static void start_rollover(void);

static void start_second(void)
{
    if (rollover && !rollover_started) {
        start_rollover();
        return;
    }
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

/* The old key with the known account URL: the CA must refuse it now. */
static void on_old_get(void *arg, const struct acme_client_reply *r)
{
    (void)arg;
    oldkey_status = r->status;
    str_copy(oldkey_err, sizeof(oldkey_err), r->error ? cf_errname(r->error) : "");
    str_copy(oldkey_problem, sizeof(oldkey_problem), r->problem ? r->problem->type : "");
    acme_client_free(oldc);
    oldc = NULL;
    start_second();
}

static void on_old_start(void *arg, int err, const char *detail)
{
    (void)arg;
    str_copy(oldkey_start, sizeof(oldkey_start), err ? cf_errname(err) : detail);
    if (err || acme_client_post(oldc, account_url, "", on_old_get, NULL)) {
        str_copy(oldkey_err, sizeof(oldkey_err), "post failed");
        acme_client_free(oldc);
        oldc = NULL;
        start_second();
    }
}

static void start_old_client(void)
{
    struct acme_client_opts o = copts;
    o.account_key = key;
    o.account_url = account_url;
    if (acme_client_new(&oldc, &loop, http, &o) || acme_client_start(oldc, on_old_start, NULL)) {
        str_copy(oldkey_start, sizeof(oldkey_start), "start failed");
        acme_client_free(oldc);
        oldc = NULL;
        start_second();
    }
}

static void on_newkey_get(void *arg, const struct acme_client_reply *r)
{
    (void)arg;
    newkey_status = r->status;
    newkey_valid = r->error == 0 && strstr(r->body, "\"valid\"") != NULL;
    str_copy(newkey_err, sizeof(newkey_err), r->error ? cf_errname(r->error) : "");
    if (acme_client_account_url(first))
        str_copy(newkey_url, sizeof(newkey_url), acme_client_account_url(first));
    start_old_client();
}

static void on_key_change(void *arg, const struct acme_client_reply *r)
{
    (void)arg;
    kc_status = r->status;
    kc_retries = r->bad_nonce_retries;
    str_copy(kc_err, sizeof(kc_err), r->error ? cf_errname(r->error) : "");
    str_copy(kc_detail, sizeof(kc_detail), r->error ? r->error_text : "");
    str_copy(kc_problem, sizeof(kc_problem), r->problem ? r->problem->type : "");
    if (r->error) {
        start_old_client();
        return;
    }
    if (acme_client_post(first, account_url, "", on_newkey_get, NULL)) {
        str_copy(newkey_err, sizeof(newkey_err), "post failed");
        start_old_client();
    }
}

static void start_real_rollover(void)
{
    /* The second client then registers with the new key: same account. */
    copts.account_key = new_key;
    int err = acme_client_key_change(first, new_key, on_key_change, NULL);
    if (err) {
        str_copy(kc_err, sizeof(kc_err), cf_errname(err));
        start_old_client();
    }
}

/* A copy of the account's own key: the CA refuses it, the old key stays. */
static void on_conflict(void *arg, const struct acme_client_reply *r)
{
    (void)arg;
    conflict_status = r->status;
    str_copy(conflict_err, sizeof(conflict_err), r->error ? cf_errname(r->error) : "");
    str_copy(conflict_problem, sizeof(conflict_problem), r->problem ? r->problem->type : "");
    str_copy(conflict_detail, sizeof(conflict_detail), r->error ? r->error_text : "");
    start_real_rollover();
}

static void start_rollover(void)
{
    struct buf pem;
    int err;
    rollover_started = 1;
    buf_init(&pem);
    err = crypto_key_to_pem(key, &pem);
    if (!err)
        err = crypto_key_from_pem(&key_copy, pem.data, pem.len);
    buf_cleanup(&pem);
    if (!err)
        err = acme_client_key_change(first, key_copy, on_conflict, NULL);
    if (err) {
        str_copy(conflict_err, sizeof(conflict_err), cf_errname(err));
        start_real_rollover();
    }
}

static void json_kv(struct buf *b, const char *k, const char *v)
{
    buf_printf(b, ",\"%s\":", k);
    buf_json_string(b, v, strlen(v));
}

static int usage(void)
{
    fprintf(stderr, "usage: acme_client_driver [--ca FILE] [--email ADDR] [--retries N] "
                    "[--seq N] [--par N] [--rollover] DIRECTORY_URL\n");
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
        if (strcmp(a, "--rollover") == 0) {
            rollover = 1;
            i--; /* no value */
            continue;
        }
        if (i + 2 >= argc)
            return usage();
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
    if (!http || crypto_key_generate(&key, CRYPTO_KEY_EC_P256) ||
        crypto_key_generate(&new_key, CRYPTO_KEY_EC_P256)) {
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
    crypto_key_free(new_key);
    crypto_key_free(key_copy);

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
    if (rollover) {
        buf_printf(&b, ",\"conflict_status\":%d", conflict_status);
        json_kv(&b, "conflict_error", conflict_err);
        json_kv(&b, "conflict_problem", conflict_problem);
        json_kv(&b, "conflict_detail", conflict_detail);
        buf_printf(&b, ",\"kc_status\":%d,\"kc_bad_nonce_retries\":%d", kc_status, kc_retries);
        json_kv(&b, "kc_error", kc_err);
        json_kv(&b, "kc_detail", kc_detail);
        json_kv(&b, "kc_problem", kc_problem);
        buf_printf(&b, ",\"newkey_status\":%d,\"newkey_valid\":%s", newkey_status,
                   newkey_valid ? "true" : "false");
        json_kv(&b, "newkey_error", newkey_err);
        json_kv(&b, "newkey_account_url", newkey_url);
        json_kv(&b, "oldkey_start", oldkey_start);
        buf_printf(&b, ",\"oldkey_status\":%d", oldkey_status);
        json_kv(&b, "oldkey_error", oldkey_err);
        json_kv(&b, "oldkey_problem", oldkey_problem);
    }
    buf_puts(&b, "}\n");
    fputs(b.data, stdout);
    buf_cleanup(&b);
    return closed ? 0 : 1;
}
