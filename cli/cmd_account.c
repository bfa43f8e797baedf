/*
 * cmd_account.c - `certfleet rotate-account-key`: roll the ACME account over
 * to a new key of the same type (RFC 8555 §7.3.5).
 *
 * The account key is STORE_DB_ACCOUNT "key" (PKCS#8 PEM) and its URL "url".
 * Without "url" the client finds (or registers) the account of the stored
 * key first. Without "key" there is no account yet: nothing is created here.
 * On success the new key and the account URL are written in one batch; on
 * any failure the stored key is left as it was. Key material is never
 * printed or logged. The validation targets (the customers' CNAMEs) do not
 * depend on the key and are untouched.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "cli.h"
#include "client.h"
#include "crypto.h"
#include "err.h"
#include "http.h"

struct rotate {
    struct http_client *http;
    struct acme_client *client;
    const struct crypto_key *new_key;
    const char *directory;
    int err;            /* 0 once the key change succeeded */
    char what[64];      /* the step that failed */
    char problem[1024]; /* the CA's problem or the transport's text */
    char account_url[2048];
};

static void rotate_finish(struct rotate *r)
{
    const char *url = acme_client_account_url(r->client);
    if (url)
        str_copy(r->account_url, sizeof(r->account_url), url);
    acme_client_free(r->client);
    r->client = NULL;
    http_client_free(r->http);
    r->http = NULL;
}

static void on_key_change(void *arg, const struct acme_client_reply *rep)
{
    struct rotate *r = arg;
    r->err = rep->error;
    if (rep->error) {
        str_copy(r->what, sizeof(r->what), "keyChange");
        if (rep->problem)
            str_fmt(r->problem, sizeof(r->problem), "%s (HTTP %d): %s", rep->problem->type,
                    rep->status, rep->problem->detail);
        else if (rep->status)
            str_fmt(r->problem, sizeof(r->problem), "HTTP %d: %s", rep->status,
                    rep->error_text[0] ? rep->error_text : cf_strerror(rep->error));
        else
            str_copy(r->problem, sizeof(r->problem),
                     rep->error_text[0] ? rep->error_text : cf_strerror(rep->error));
    }
    rotate_finish(r);
}

static void on_start(void *arg, int err, const char *detail)
{
    struct rotate *r = arg;
    if (!err) {
        err = acme_client_key_change(r->client, r->new_key, on_key_change, r);
        if (!err)
            return;
        detail = "the directory has no keyChange URL";
    }
    r->err = err;
    str_copy(r->what, sizeof(r->what), "starting the ACME session");
    str_copy(r->problem, sizeof(r->problem), detail && detail[0] ? detail : cf_strerror(err));
    rotate_finish(r);
}

/* ca_unreachable: the errors that mean no usable answer came from the CA. */
static int ca_unreachable(int err)
{
    return err == CF_ETIMEOUT || err == CF_EHTTP || err == CF_ECONNREFUSED || err == CF_ECANCELED ||
           err == CF_ETOOBIG;
}

/* wipe_buf zeroes and frees b (it may hold key material). */
static void wipe_buf(struct buf *b)
{
    if (b->data)
        memset(b->data, 0, b->len);
    buf_cleanup(b);
}

int cmd_rotate_account_key(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{NULL, 0, NULL, 0}};
    struct buf pem, url, new_pem;
    struct crypto_key *old_key = NULL, *new_key = NULL;
    struct rotate r;
    int opt, rc, status;
    if ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
        return EXIT_USAGE;
    if (optind < argc) {
        cli_error("rotate-account-key takes no arguments");
        return EXIT_USAGE;
    }
    if ((rc = cli_load_config(c)) || (rc = cli_open_store(c)))
        return rc;
    if (!c->cfg.directory[0]) {
        cli_error("rotate-account-key: no ACME directory is configured (init --directory)");
        return EXIT_USAGE;
    }
    buf_init(&pem);
    buf_init(&url);
    buf_init(&new_pem);
    memset(&r, 0, sizeof(r));
    rc = store_get(c->st, STORE_DB_ACCOUNT, "key", 3, &pem);
    if (rc == CF_ENOTFOUND) {
        cli_error("rotate-account-key: there is no ACME account yet in %s (no account key "
                  "stored): nothing to rotate",
                  c->state_dir);
        status = EXIT_USAGE;
        goto out;
    }
    if (rc) {
        cli_error("rotate-account-key: reading the account key: %s", cf_strerror(rc));
        status = EXIT_FATAL;
        goto out;
    }
    rc = crypto_key_from_pem(&old_key, pem.data, pem.len);
    if (rc) {
        cli_error("rotate-account-key: the stored account key does not load: %s", cf_strerror(rc));
        status = EXIT_FATAL;
        goto out;
    }
    rc = store_get(c->st, STORE_DB_ACCOUNT, "url", 3, &url);
    if (rc && rc != CF_ENOTFOUND) {
        cli_error("rotate-account-key: reading the account URL: %s", cf_strerror(rc));
        status = EXIT_FATAL;
        goto out;
    }
    buf_putc(&url, '\0'); /* NUL-terminated; "" when absent */
    rc = crypto_key_generate(&new_key, crypto_key_type_of(old_key));
    if (rc == 0)
        rc = crypto_key_to_pem(new_key, &new_pem);
    if (rc) {
        cli_error("rotate-account-key: cannot make a new %s key: %s",
                  crypto_key_type_name(crypto_key_type_of(old_key)), cf_strerror(rc));
        status = EXIT_FATAL;
        goto out;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct http_opts ho;
    memset(&ho, 0, sizeof(ho));
    ho.ca_bundle = c->cfg.ca_bundle[0] ? c->cfg.ca_bundle : NULL;
    struct acme_client_opts co;
    memset(&co, 0, sizeof(co));
    co.directory_url = c->cfg.directory;
    co.contact_email = c->cfg.email;
    co.account_key = old_key;
    co.account_url = url.data;
    r.new_key = new_key;
    r.directory = c->cfg.directory;
    r.err = CF_ECANCELED;
    r.http = http_client_new(&loop, &ho);
    if (!r.http) {
        rc = CF_EHTTP;
    } else if ((rc = acme_client_new(&r.client, &loop, r.http, &co)) == 0 &&
               (rc = acme_client_start(r.client, on_start, &r)) != 0) {
        acme_client_free(r.client);
        r.client = NULL;
    }
    if (rc) {
        http_client_free(r.http);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        cli_error("rotate-account-key: cannot set up the ACME client: %s", cf_strerror(rc));
        status = EXIT_FATAL;
        goto out;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    if (r.err) {
        cli_error("rotate-account-key: %s at %s failed: %s; the account key is unchanged",
                  r.what[0] ? r.what : "the key change", r.directory,
                  r.problem[0] ? r.problem : cf_strerror(r.err));
        status = ca_unreachable(r.err) ? EXIT_FATAL : EXIT_SOME_FAILED;
        goto out;
    }
    /* The CA has the new key now: store it with the account URL, all or nothing. */
    struct store_batch *b = store_batch_new(c->st);
    store_batch_put(b, STORE_DB_ACCOUNT, "key", 3, new_pem.data, new_pem.len);
    store_batch_put(b, STORE_DB_ACCOUNT, "url", 3, r.account_url, strlen(r.account_url));
    rc = store_batch_commit(b);
    store_batch_free(b);
    if (rc) {
        /* The CA switched but the new key could not be saved: say so loudly. */
        cli_error("rotate-account-key: the CA at %s accepted the new key for %s, but it could "
                  "not be stored (%s): the stored key no longer works for this account",
                  r.directory, r.account_url, cf_strerror(rc));
        status = EXIT_FATAL;
        goto out;
    }
    printf("rotated the account key of %s\n", r.account_url);
    status = EXIT_DONE;
out:
    crypto_key_free(new_key);
    crypto_key_free(old_key);
    wipe_buf(&pem);
    wipe_buf(&new_pem);
    buf_cleanup(&url);
    return status;
}
