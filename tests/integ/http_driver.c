/*
 * http_driver.c - runs HTTP requests through engine/http on one loop and
 * prints one JSON line per response, then a summary line.
 *
 *   http_driver [--ca FILE] [--timeout MS] [--connect-timeout MS]
 *               [--max-body N] [--max-conn N] [--body TEXT] [--show-body]
 *               [--cancel-after MS] METHOD URL [COUNT] [METHOD URL [COUNT]]...
 *
 * METHOD is GET, HEAD or POST (POST sends --body as application/jose+json).
 * COUNT requests of each are started at once. --cancel-after frees the
 * client after MS milliseconds, cancelling what is still in flight. The
 * exit status is 0 when every request got its callback and the loop closed
 * cleanly, whatever the responses were.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "err.h"
#include "http.h"
#include "timeutil.h"

#define PORTS_MAX 4096

struct req_ctx {
    enum http_method method;
    const char *url;
    int64_t started_ms;
};

static struct http_client *client;
static int outstanding, responses, errors, show_body;
static long connections;
static long ports[PORTS_MAX];
static size_t nports;

static void note_port(long p)
{
    if (p <= 0)
        return;
    for (size_t i = 0; i < nports; i++)
        if (ports[i] == p)
            return;
    if (nports < PORTS_MAX)
        ports[nports++] = p;
}

static void json_str_or_null(struct buf *b, const char *s)
{
    if (s)
        buf_json_string(b, s, strlen(s));
    else
        buf_puts(b, "null");
}

static void on_done(void *arg, const struct http_resp *r)
{
    struct req_ctx *rc = arg;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"method\":");
    json_str_or_null(&b, http_method_name(rc->method));
    buf_puts(&b, ",\"url\":");
    json_str_or_null(&b, rc->url);
    buf_printf(&b, ",\"status\":%d,\"http_version\":%d,\"error\":", r->status, r->http_version);
    json_str_or_null(&b, r->error ? cf_errname(r->error) : NULL);
    buf_puts(&b, ",\"error_text\":");
    json_str_or_null(&b, r->error_text);
    buf_puts(&b, ",\"replay_nonce\":");
    json_str_or_null(&b, r->replay_nonce);
    buf_printf(&b, ",\"retry_after\":%lld,\"location\":", (long long)r->retry_after);
    json_str_or_null(&b, r->location);
    buf_puts(&b, ",\"content_type\":");
    json_str_or_null(&b, r->content_type);
    buf_puts(&b, ",\"links\":[");
    for (size_t i = 0; i < r->nlinks; i++) {
        buf_printf(&b, "%s{\"rel\":\"%s\",\"url\":", i ? "," : "", http_rel_name(r->links[i].rel));
        json_str_or_null(&b, r->links[i].url);
        buf_putc(&b, '}');
    }
    buf_printf(
        &b, "],\"body_len\":%zu,\"new_connections\":%ld,\"local_port\":%ld,\"elapsed_ms\":%lld",
        r->body.len, r->new_connections, r->local_port, (long long)(cf_wall_ms() - rc->started_ms));
    if (show_body) {
        buf_puts(&b, ",\"body\":");
        buf_json_string(&b, r->body.data, r->body.len);
    }
    buf_puts(&b, "}\n");
    fputs(b.data, stdout);
    buf_cleanup(&b);

    responses++;
    if (r->error)
        errors++;
    connections += r->new_connections;
    note_port(r->local_port);
    free(rc);
    if (--outstanding == 0) {
        http_client_free(client);
        client = NULL;
    }
}

static void on_cancel(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
    if (client) {
        struct http_client *c = client;
        client = NULL;
        http_client_free(c);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: http_driver [--ca FILE] [--timeout MS] [--connect-timeout MS] "
                    "[--max-body N] [--max-conn N] [--body TEXT] [--show-body] "
                    "[--cancel-after MS] METHOD URL [COUNT]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct http_opts o;
    const char *body = "{}";
    long cancel_after = -1;
    int i = 1;
    memset(&o, 0, sizeof(o));
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--show-body") == 0) {
            show_body = 1;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(a, "--ca") == 0)
            o.ca_bundle = v;
        else if (strcmp(a, "--timeout") == 0)
            o.timeout_ms = atoi(v);
        else if (strcmp(a, "--connect-timeout") == 0)
            o.connect_timeout_ms = atoi(v);
        else if (strcmp(a, "--max-body") == 0)
            o.max_body = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(a, "--max-conn") == 0)
            o.max_connections = atoi(v);
        else if (strcmp(a, "--body") == 0)
            body = v;
        else if (strcmp(a, "--cancel-after") == 0)
            cancel_after = atol(v);
        else
            return usage();
    }
    if (i >= argc)
        return usage();

    uv_loop_t loop;
    uv_loop_init(&loop);
    client = http_client_new(&loop, &o);
    if (!client) {
        fprintf(stderr, "http_driver: cannot create the client\n");
        return 1;
    }
    int total = 0;
    while (i < argc) {
        struct http_req req;
        memset(&req, 0, sizeof(req));
        if (strcmp(argv[i], "GET") == 0)
            req.method = HTTP_GET;
        else if (strcmp(argv[i], "HEAD") == 0)
            req.method = HTTP_HEAD;
        else if (strcmp(argv[i], "POST") == 0)
            req.method = HTTP_POST;
        else
            return usage();
        if (i + 1 >= argc)
            return usage();
        req.url = argv[i + 1];
        i += 2;
        long count = 1;
        if (i < argc && argv[i][0] >= '0' && argv[i][0] <= '9')
            count = atol(argv[i++]);
        if (req.method == HTTP_POST) {
            req.body = body;
            req.body_len = strlen(body);
            req.content_type = "application/jose+json";
        }
        for (long k = 0; k < count; k++) {
            struct req_ctx *rc = xcalloc(1, sizeof(*rc));
            rc->method = req.method;
            rc->url = req.url;
            rc->started_ms = cf_wall_ms();
            int err = http_request(client, &req, on_done, rc);
            if (err) {
                printf("{\"method\":\"%s\",\"url\":\"%s\",\"request_error\":\"%s\"}\n",
                       http_method_name(req.method), req.url, cf_errname(err));
                free(rc);
                continue;
            }
            outstanding++;
            total++;
        }
    }
    if (total == 0) {
        http_client_free(client);
        client = NULL;
    }
    uv_timer_t cancel;
    if (cancel_after >= 0) {
        uv_timer_init(&loop, &cancel);
        uv_timer_start(&cancel, on_cancel, (uint64_t)cancel_after, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop) == 0;
    printf("{\"summary\":{\"requests\":%d,\"responses\":%d,\"errors\":%d,\"connections\":%ld,"
           "\"local_ports\":%zu,\"loop_closed\":%s}}\n",
           total, responses, errors, connections, nports, closed ? "true" : "false");
    return responses == total && closed ? 0 : 1;
}
