/*
 * acme_order_driver.c - runs engine/acme/order.c for some hosts at once
 * against a CA and prints one JSON line per host.
 *
 *   acme_order_driver [OPTIONS] DIRECTORY_URL CA_BUNDLE STATE_DIR RESOLVER ZONE HOST...
 *
 * It opens the store of STATE_DIR (TXT records go there, for `certfleet
 * serve-dns`), loads the account key from it or makes and saves one, starts
 * an http client, an acme client and a dns checker on one loop, and starts
 * one order per HOST. Each chain is written to STATE_DIR/<host>.pem ("*"
 * written as "_wildcard") and a line {"host", "status", "error", "state",
 * "order_url", "chain_file", ...} is printed per host, after {"account_url"}
 * once the account is known and {"started": HOST} as each job starts; then
 * {"loop_closed"}.
 *
 * Options:
 *   --resume               go on with stored pending orders (opts.resume)
 *   --deadline-ms N        every job ends N ms after the driver started
 *   --key-type T           ec256, ec384, rsa2048, rsa3072, rsa4096
 *   --replaces ID          newOrder "replaces" (RFC 9773) for every host
 *   --max-jobs N           at most N jobs at once (pebble 2.4 stalls under
 *                          a few hundred concurrent orders)
 *   --store-certs          store chain and key (store_batch_put_cert) in the
 *                          callback, in the commit that drops the pending
 *                          order; at the end read them back and print
 *                          {"stored_ok", "stored_bad", "pending_left"}
 *   --ari                  after each certificate, GET its renewalInfo and
 *                          print {"ari": HOST, ...}
 *   --crash-after N        _exit(9) in the Nth callback, before its commit
 *                          (a crash between issuance and storage)
 *   --seed-pending HOST=URL  store a pending order for HOST first
 *   --poll-max-ms N        per poll phase (default 60000)
 *   --http-timeout-ms N    per request (http client default otherwise)
 *   --hosts-file FILE      more hosts, one per line
 * Exit status 0 when the loop closed cleanly, whatever the CA answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "checks.h"
#include "client.h"
#include "commit.h"
#include "crypto.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "order.h"
#include "store.h"
#include "timeutil.h"

static uv_loop_t loop;
static struct http_client *http;
static struct acme_client *client;
static struct dns_checker *dns;
static struct store *st;
static struct committer *commit;
static struct committer_stats commit_stats;
static struct acme_client_stats client_stats;
static struct crypto_key *account_key;
static const char *state_dir, *zone;
static char **hosts;
static int nhosts, ndone, nstarted, nactive, nari;
static int64_t t0_ms;

/* Options. */
static int opt_resume, opt_store, opt_ari, opt_crash_after, opt_max_jobs, opt_poll_max_ms = 60000;
static int64_t opt_deadline_ms;
static enum crypto_key_type opt_key_type = CRYPTO_KEY_EC_P256;
static const char *opt_replaces;
static char *done_ok; /* per host: 1 when it got a certificate */

static void json_kv(struct buf *b, const char *k, const char *v, int first)
{
    buf_printf(b, "%s\"%s\":", first ? "" : ",", k);
    buf_json_string(b, v, strlen(v));
}

static void print_line(struct buf *b)
{
    fputs(b->data, stdout);
    fflush(stdout);
}

static void finish(void)
{
    if (client)
        acme_client_get_stats(client, &client_stats);
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

static void maybe_finish(void)
{
    if (ndone == nhosts && nari == 0 && client)
        finish();
}

static void start_next(void);

static void on_ari(void *arg, const struct acme_renewal_reply *r)
{
    char *host = arg;
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    json_kv(&b, "ari", host, 1);
    json_kv(&b, "error", r->error ? cf_errname(r->error) : "", 0);
    json_kv(&b, "error_text", r->error_text, 0);
    buf_printf(&b, ",\"status\":%d,\"start\":%lld,\"end\":%lld,\"retry_after\":%lld", r->status,
               (long long)(r->info ? r->info->start : 0), (long long)(r->info ? r->info->end : 0),
               (long long)r->retry_after);
    json_kv(&b, "explanation_url", r->info ? r->info->explanation_url : "", 0);
    buf_puts(&b, "}\n");
    print_line(&b);
    buf_cleanup(&b);
    free(host);
    nari--;
    maybe_finish();
}

/* ask_ari GETs the renewalInfo of the certificate just issued (RFC 9773 §4.1-4.2). */
static void ask_ari(const struct acme_order_result *r)
{
    struct crypto_cert_info *leaf = malloc(sizeof(*leaf));
    struct buf id;
    buf_init(&id);
    int rc = crypto_cert_parse_chain(r->chain_pem, r->chain_len, leaf, NULL);
    if (rc == 0)
        rc = crypto_ari_cert_id(leaf, &id);
    if (rc == 0) {
        char *host = xstrdup(r->host);
        rc = acme_client_renewal_info(client, id.data, on_ari, host);
        if (rc)
            free(host);
        else
            nari++;
    }
    if (rc) {
        struct buf b;
        buf_init(&b);
        buf_putc(&b, '{');
        json_kv(&b, "ari", r->host, 1);
        json_kv(&b, "error", cf_errname(rc), 0);
        buf_puts(&b, "}\n");
        print_line(&b);
        buf_cleanup(&b);
    }
    buf_cleanup(&id);
    free(leaf);
}

static int host_index(const char *host)
{
    for (int i = 0; i < nhosts; i++)
        if (strcmp(hosts[i], host) == 0)
            return i;
    return -1;
}

static void on_order(void *arg, const struct acme_order_result *r)
{
    (void)arg;
    char path[1024] = "", fname[300];
    struct buf b;
    nactive--;
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
        int i = host_index(r->host);
        if (i >= 0)
            done_ok[i] = 1;
        /* The caller's store changes join the commit that drops the pending order. */
        if (opt_store)
            store_batch_put_cert(committer_batch(commit), r->host, r->chain_pem, r->chain_len,
                                 r->key_pem, r->key_len);
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
    json_kv(&b, "problem_type", r->problem_type ? r->problem_type : "", 0);
    buf_printf(&b,
               ",\"key_pem_bytes\":%zu,\"retry_after\":%lld,\"ca_paused\":%s,\"terminal\":%s,"
               "\"resumed\":%s,\"elapsed_ms\":%lld}\n",
               r->key_len, (long long)r->retry_after, r->ca_paused ? "true" : "false",
               r->terminal ? "true" : "false", r->resumed ? "true" : "false",
               (long long)(cf_wall_ms() - t0_ms));
    print_line(&b);
    buf_cleanup(&b);
    ndone++;
    if (opt_crash_after && ndone == opt_crash_after) {
        /* A crash after the callback, before the loop commits what it queued. */
        _exit(9);
    }
    if (r->error == 0 && opt_ari && client)
        ask_ari(r);
    start_next();
    maybe_finish();
}

static void start_one(int i)
{
    struct acme_order_opts o;
    struct buf b;
    memset(&o, 0, sizeof(o));
    o.loop = &loop;
    o.client = client;
    o.account_key = account_key;
    o.commit = commit;
    o.dns = dns;
    o.validation_zone = zone;
    o.host = hosts[i];
    o.poll_max_ms = opt_poll_max_ms;
    o.resume = opt_resume;
    o.deadline_ms = opt_deadline_ms ? t0_ms + opt_deadline_ms : 0;
    o.key_type = opt_key_type;
    o.replaces = opt_replaces;
    buf_init(&b);
    buf_putc(&b, '{');
    json_kv(&b, "started", hosts[i], 1);
    buf_puts(&b, "}\n");
    print_line(&b);
    buf_cleanup(&b);
    nactive++;
    int rc = acme_order_start(NULL, &o, on_order, NULL);
    if (rc) {
        struct acme_order_result r = {.host = hosts[i],
                                      .error = rc,
                                      .error_text = cf_strerror(rc),
                                      .order_url = "",
                                      .problem_type = ""};
        on_order(NULL, &r);
    }
}

static void start_next(void)
{
    while (client && nstarted < nhosts && (opt_max_jobs == 0 || nactive < opt_max_jobs))
        start_one(nstarted++);
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
        print_line(&b);
        buf_cleanup(&b);
    }
    if (nhosts == 0)
        finish();
    else
        start_next();
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

/* check_store reads back what the callbacks stored: every certificate, no pending order left. */
static void check_store(void)
{
    int ok = 0, bad = 0, pending = 0;
    struct buf chain, key, url;
    buf_init(&chain);
    buf_init(&key);
    buf_init(&url);
    for (int i = 0; i < nhosts; i++) {
        buf_reset(&url);
        if (store_get_pending(st, hosts[i], &url, NULL) == 0)
            pending++;
        if (!done_ok[i])
            continue;
        buf_reset(&chain);
        buf_reset(&key);
        struct crypto_key *k = NULL;
        if (store_get_cert(st, hosts[i], &chain, &key) == 0 &&
            crypto_key_from_pem(&k, key.data, key.len) == 0 &&
            crypto_cert_matches_key(chain.data, chain.len, k) == 0)
            ok++;
        else
            bad++;
        crypto_key_free(k);
    }
    if (key.data)
        memset(key.data, 0, key.len);
    printf("{\"stored_ok\":%d,\"stored_bad\":%d,\"pending_left\":%d}\n", ok, bad, pending);
    buf_cleanup(&chain);
    buf_cleanup(&key);
    buf_cleanup(&url);
}

static void usage(void)
{
    fprintf(stderr, "usage: acme_order_driver [--resume] [--deadline-ms N] [--key-type T] "
                    "[--replaces ID] [--max-jobs N] [--store-certs] [--ari] [--crash-after N] "
                    "[--seed-pending HOST=URL] [--poll-max-ms N] [--http-timeout-ms N] "
                    "[--hosts-file FILE] DIRECTORY_URL CA_BUNDLE STATE_DIR RESOLVER ZONE "
                    "HOST...\n");
    exit(2);
}

/* read_hosts_file appends the names in path (one per line) to *list. */
static void read_hosts_file(const char *path, char ***list, int *n, int *cap)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "acme_order_driver: %s: cannot open\n", path);
        exit(2);
    }
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *list = xrealloc(*list, (size_t)*cap * sizeof(**list));
        }
        (*list)[(*n)++] = xstrdup(line);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    struct http_opts ho;
    struct acme_client_opts co;
    struct dns_checker_opts dopts;
    char libpath[512];
    int rc, i, http_timeout_ms = 0, cap = 0;
    char **list = NULL;
    const char *seeds[64];
    int nseeds = 0;

    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--resume") == 0) {
            opt_resume = 1;
        } else if (strcmp(a, "--store-certs") == 0) {
            opt_store = 1;
        } else if (strcmp(a, "--ari") == 0) {
            opt_ari = 1;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "--deadline-ms") == 0) {
            opt_deadline_ms = atoll(v), i++;
        } else if (strcmp(a, "--key-type") == 0) {
            if (crypto_key_type_parse(&opt_key_type, v) != 0)
                usage();
            i++;
        } else if (strcmp(a, "--replaces") == 0) {
            opt_replaces = v, i++;
        } else if (strcmp(a, "--max-jobs") == 0) {
            opt_max_jobs = atoi(v), i++;
        } else if (strcmp(a, "--crash-after") == 0) {
            opt_crash_after = atoi(v), i++;
        } else if (strcmp(a, "--poll-max-ms") == 0) {
            opt_poll_max_ms = atoi(v), i++;
        } else if (strcmp(a, "--http-timeout-ms") == 0) {
            http_timeout_ms = atoi(v), i++;
        } else if (strcmp(a, "--seed-pending") == 0) {
            if (nseeds == 64 || !strchr(v, '='))
                usage();
            seeds[nseeds++] = v, i++;
        } else if (strcmp(a, "--hosts-file") == 0) {
            read_hosts_file(v, &list, &nhosts, &cap);
            i++;
        } else {
            usage();
        }
    }
    if (argc - i < 5)
        usage();
    if (crypto_backend_check(libpath, sizeof(libpath)) != 0) {
        fprintf(stderr, "acme_order_driver: wrong libcrypto won: %s\n", libpath);
        return 1;
    }
    log_setup(getenv("CF_LOG_DEBUG") ? LOG_DEBUG : LOG_INFO, 1, stderr);
    const char *directory = argv[i], *ca_bundle = argv[i + 1], *resolver = argv[i + 3];
    state_dir = argv[i + 2];
    zone = argv[i + 4];
    for (int k = i + 5; k < argc; k++) {
        if (nhosts == cap) {
            cap = cap ? cap * 2 : 256;
            list = xrealloc(list, (size_t)cap * sizeof(*list));
        }
        list[nhosts++] = xstrdup(argv[k]);
    }
    hosts = list;
    done_ok = xcalloc((size_t)nhosts + 1, 1);
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
    if (nseeds) {
        struct store_batch *b = store_batch_new(st);
        for (int k = 0; k < nseeds; k++) {
            char host[300];
            const char *eq = strchr(seeds[k], '=');
            str_fmt(host, sizeof(host), "%.*s", (int)(eq - seeds[k]), seeds[k]);
            store_batch_put_pending(b, host, eq + 1, NULL, 0);
        }
        rc = store_batch_commit(b);
        store_batch_free(b);
        if (rc) {
            fprintf(stderr, "acme_order_driver: seeding: %s\n", cf_strerror(rc));
            return 1;
        }
    }
    t0_ms = cf_wall_ms();
    uv_loop_init(&loop);
    memset(&ho, 0, sizeof(ho));
    ho.ca_bundle = ca_bundle;
    ho.timeout_ms = http_timeout_ms;
    http = http_client_new(&loop, &ho);
    memset(&dopts, 0, sizeof(dopts));
    dopts.resolver = resolver;
    memset(&co, 0, sizeof(co));
    co.directory_url = directory;
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
    if (opt_store)
        check_store();
    crypto_key_free(account_key);
    store_close(st);
    printf("{\"loop_closed\":%s,\"done\":%d,\"commits\":%llu,\"committed_changes\":%llu,"
           "\"posts\":%llu,\"bad_nonce_retries\":%llu,\"elapsed_ms\":%lld}\n",
           closed ? "true" : "false", ndone, (unsigned long long)commit_stats.commits,
           (unsigned long long)commit_stats.changes, (unsigned long long)client_stats.posts,
           (unsigned long long)client_stats.bad_nonce_retries, (long long)(cf_wall_ms() - t0_ms));
    for (int k = 0; k < nhosts; k++)
        free(hosts[k]);
    free(hosts);
    free(done_ok);
    return closed ? 0 : 1;
}
