/*
 * http.c - libcurl's multi interface on the libuv loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * uv_poll per socket, attached with curl_multi_assign) and when to wake it
 * (CURLMOPT_TIMERFUNCTION: one uv_timer); we hand each event back with
 * curl_multi_socket_action and collect finished transfers with
 * curl_multi_info_read. This is the only file that sees curl's error codes.
 */
#include <curl/curl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "http.h"
#include "log.h"
#include "timeutil.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#ifndef CF_HTTP_VERSION
#define CF_HTTP_VERSION "0"
#endif

/* Reset easy handles kept for reuse (see struct http_client). */
#define HTTP_SPARE_HANDLES 64

/* One watched socket: its uv_poll lives until its close callback. */
struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_client *c;
    struct http_sock *prev, *next;
};

/* One request in flight. */
struct http_xfer {
    struct http_client *c;
    struct http_xfer *prev, *next;
    CURL *easy;
    struct curl_slist *hdr_list;
    http_done_cb cb;
    void *arg;
    struct http_hdrs hdrs;
    struct buf body;
    int too_big;         /* the body passed max_body */
    int headers_too_big; /* the header block passed HTTP_HEADERS_MAX */
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int handles_open; /* the timer and every uv_poll; memory goes when this reaches 0 */
    int closing;      /* http_client_free was called */
    int timeout_ms, connect_timeout_ms, max_connections;
    size_t max_body;
    char *ca_bundle;
    char user_agent[64];
    struct http_xfer *xfers;
    struct http_sock *socks;
    /*
     * Easy handles of finished transfers, reset (curl_easy_reset) for the
     * next request: a fresh handle per request cost more in allocations
     * than setting its options.
     */
    CURL *spare[HTTP_SPARE_HANDLES];
    size_t nspare;
};

const char *http_method_name(enum http_method m)
{
    switch (m) {
    case HTTP_GET:
        return "GET";
    case HTTP_HEAD:
        return "HEAD";
    case HTTP_POST:
        return "POST";
    }
    return "?";
}

static void client_release(struct http_client *c)
{
    free(c->ca_bundle);
    free(c);
    curl_global_cleanup();
}

static void on_handle_closed(uv_handle_t *h)
{
    struct http_client *c;
    if (h->type == UV_POLL) {
        struct http_sock *s = container_of((uv_poll_t *)h, struct http_sock, poll);
        c = s->c;
        free(s);
    } else {
        c = container_of((uv_timer_t *)h, struct http_client, timer);
    }
    if (--c->handles_open == 0)
        client_release(c);
}

static void sock_close(struct http_sock *s)
{
    struct http_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

/* --- finishing transfers --- */

static void xfer_unlink(struct http_xfer *x)
{
    struct http_client *c = x->c;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void xfer_free(struct http_xfer *x)
{
    struct http_client *c = x->c;
    if (x->easy && !c->closing && c->nspare < HTTP_SPARE_HANDLES) {
        /* Options, headers and state go; the handle's buffers stay. */
        curl_easy_reset(x->easy);
        c->spare[c->nspare++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdr_list);
    http_hdrs_cleanup(&x->hdrs);
    buf_cleanup(&x->body);
    free(x);
}

/*
 * translate maps curl's result for x to the project's code and a message for
 * people. The one place curl's codes are read (STYLE.md: errors).
 */
static int translate(struct http_xfer *x, CURLcode rc, char *msg, size_t n)
{
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    if (x->too_big) {
        str_fmt(msg, n, "response body larger than %zu bytes", x->c->max_body);
        return CF_ETOOBIG;
    }
    if (x->headers_too_big) {
        str_fmt(msg, n, "response headers larger than %d bytes", HTTP_HEADERS_MAX);
        return CF_ETOOBIG;
    }
    switch (rc) {
    case CURLE_OK:
        msg[0] = '\0';
        return 0;
    case CURLE_FILESIZE_EXCEEDED:
        str_fmt(msg, n, "response body larger than %zu bytes (Content-Length)", x->c->max_body);
        return CF_ETOOBIG;
    case CURLE_OPERATION_TIMEDOUT:
        str_fmt(msg, n, "timed out: %s", detail);
        return CF_ETIMEOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
        str_fmt(msg, n, "refused: only https URLs are allowed (%s)", detail);
        return CF_EHTTP;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
        str_fmt(msg, n, "TLS error: %s", detail);
        return CF_EHTTP;
    default:
        str_fmt(msg, n, "%s", detail);
        return CF_EHTTP;
    }
}

static int version_number(long v)
{
    switch (v) {
    case CURL_HTTP_VERSION_1_0:
        return 10;
    case CURL_HTTP_VERSION_1_1:
        return 11;
    case CURL_HTTP_VERSION_2_0:
        return 20;
    case CURL_HTTP_VERSION_3:
        return 30;
    default:
        return 0;
    }
}

/*
 * absolutize resolves *url (owned) against base, as RFC 9110 §10.2.2 and
 * RFC 8288 §3.2 ask for relative references; on failure the value is dropped
 * so callers only ever see absolute URLs.
 */
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

/*
 * plain_https_url says whether u is an absolute https URL that curl's URL
 * parser gives back unchanged, so resolving it against any base is a copy:
 * a host of lower-case letters, digits, dots and hyphens whose last label
 * starts with a letter (never read as an IPv4 number) or a dotted quad
 * without leading zeros; an optional port 1-65535 without a leading zero;
 * a path of unreserved characters and slashes without dot segments; no
 * user, query or fragment. The URLs CAs send look like this; anything else
 * goes through curl.
 */
static int plain_https_url(const char *u)
{
    const char *p, *label;
    int dots = 0, quad = 1;
    unsigned long port = 0;

    if (strncmp(u, "https://", 8) != 0)
        return 0;
    p = label = u + 8;
    for (; *p && *p != ':' && *p != '/'; p++) {
        if (*p == '.') {
            if (p == label || (quad && (p - label > 3 || (label[0] == '0' && p - label > 1))))
                return 0;
            if (quad && strtoul(label, NULL, 10) > 255)
                return 0;
            dots++;
            label = p + 1;
        } else if (is_digit(*p)) {
            continue;
        } else if (is_lower(*p) || *p == '-') {
            quad = 0;
        } else {
            return 0;
        }
    }
    if (p == label || p == u + 8)
        return 0;
    if (quad) {
        /* All digits and dots: curl's IPv4 forms; only a canonical dotted quad is plain. */
        if (dots != 3 || p - label > 3 || (label[0] == '0' && p - label > 1) ||
            strtoul(label, NULL, 10) > 255)
            return 0;
    } else if (!is_lower(*label)) {
        return 0;
    }
    if (*p == ':') {
        const char *d = ++p;
        for (; is_digit(*p); p++) {
            port = port * 10 + (unsigned long)(*p - '0');
            if (port > 65535)
                return 0;
        }
        if (p == d || *d == '0')
            return 0;
    }
    if (*p != '/')
        return 0;
    for (; *p; p++) {
        if (*p == '/') {
            if (p[1] == '.' && (p[2] == '/' || !p[2] || (p[2] == '.' && (p[3] == '/' || !p[3]))))
                return 0;
        } else if (!is_digit(*p) && !is_lower(*p) && !(*p >= 'A' && *p <= 'Z') && *p != '-' &&
                   *p != '.' && *p != '_' && *p != '~') {
            return 0;
        }
    }
    return 1;
}

static void absolutize(char **url, const char *base)
{
    if (!*url)
        return;
    if (plain_https_url(*url)) {
        /* What curl would give back (parsing costs more than the request's JSON). */
        if (strlen(*url) > HTTP_URL_MAX) {
            free(*url);
            *url = NULL;
        }
        return;
    }
    CURLU *u = curl_url();
    char *abs = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, *url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK && strlen(abs) <= HTTP_URL_MAX) {
        free(*url);
        *url = xstrdup(abs);
    } else {
        free(*url);
        *url = NULL;
    }
    curl_free(abs);
    curl_url_cleanup(u);
}

/*
 * finish delivers x's result to its callback and frees x. The callback may
 * call http_request or http_client_free.
 */
static void finish(struct http_xfer *x, CURLcode rc, int error)
{
    struct http_client *c = x->c;
    struct http_resp r;
    char msg[CURL_ERROR_SIZE + 64];
    long v = 0;

    curl_multi_remove_handle(c->multi, x->easy);
    xfer_unlink(x);
    memset(&r, 0, sizeof(r));
    if (error) {
        r.error = error;
        str_fmt(msg, sizeof(msg), "%s", cf_strerror(error));
    } else {
        r.error = translate(x, rc, msg, sizeof(msg));
    }
    r.error_text = msg;
    if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &v) == CURLE_OK)
        r.status = (int)v;
    v = 0;
    if (r.status && curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &v) == CURLE_OK)
        r.http_version = version_number(v);
    v = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &v) == CURLE_OK)
        r.new_connections = v;
    v = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_LOCAL_PORT, &v) == CURLE_OK)
        r.local_port = v;

    char *base = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &base) == CURLE_OK && base) {
        absolutize(&x->hdrs.location, base);
        size_t k = 0;
        for (size_t i = 0; i < x->hdrs.nlinks; i++) {
            absolutize(&x->hdrs.links[i].url, base);
            if (x->hdrs.links[i].url)
                x->hdrs.links[k++] = x->hdrs.links[i];
        }
        x->hdrs.nlinks = k;
    }
    r.body = x->body;
    if (!r.body.data) {
        /* callers may use body.data as a C string */
        buf_reserve(&x->body, 0);
        x->body.data[0] = '\0';
        r.body = x->body;
    }
    r.content_type = x->hdrs.content_type;
    r.replay_nonce = x->hdrs.replay_nonce;
    r.location = x->hdrs.location;
    r.retry_after = x->hdrs.retry_after;
    r.nlinks = x->hdrs.nlinks;
    memcpy(r.links, x->hdrs.links, sizeof(r.links));
    if (r.error && log_enabled(LOG_DEBUG)) {
        char *url = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
        log_event(LOG_DEBUG, "http_error", "url", url ? url : "", "error", cf_errname(r.error),
                  "detail", msg, NULL);
    }
    x->cb(x->arg, &r);
    xfer_free(x);
}

/* check_done reads curl's completion messages; stops if a callback closed the client. */
static void check_done(struct http_client *c)
{
    CURLMsg *m;
    int left;
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct http_xfer *x = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            finish(x, rc, 0);
    }
}

/* --- curl → libuv glue --- */

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct http_sock *s = container_of(p, struct http_sock, poll);
    struct http_client *c = s->c;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* s may be closed (and freed later) from inside this call: copy fd first. */
    curl_socket_t fd = s->fd;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_done(c);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct http_sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1; /* curl fails the transfer */
        }
        c->handles_open++;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct http_client *c = container_of(t, struct http_client, timer);
    int running = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* curl asks for a wake-up in timeout_ms (-1: none). Never call curl from here. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;
    (void)multi;
    if (c->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* --- per-transfer callbacks --- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_xfer *x = userp;
    size_t n = size * nmemb;
    if (n > x->c->max_body || x->body.len > x->c->max_body - n) {
        x->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(&x->body, data, n);
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_xfer *x = userp;
    size_t n = size * nmemb;
    if (http_hdrs_add(&x->hdrs, data, n, cf_wall_ms() / 1000) != 0) {
        x->headers_too_big = 1;
        return 0;
    }
    return n;
}

/* --- public API --- */

struct http_client *http_client_new(uv_loop_t *loop, const struct http_opts *o)
{
    struct http_opts def;
    memset(&def, 0, sizeof(def));
    if (!o)
        o = &def;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    struct http_client *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms =
        o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_connections = o->max_connections > 0 ? o->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    c->max_body = o->max_body > 0 ? o->max_body : HTTP_DEFAULT_MAX_BODY;
    c->ca_bundle = o->ca_bundle ? xstrdup(o->ca_bundle) : NULL;
    str_fmt(c->user_agent, sizeof(c->user_agent), "certfleet/%s", CF_HTTP_VERSION);
    c->multi = curl_multi_init();
    if (!c->multi) {
        client_release(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    /* DESIGN.md §3: HTTP/2 multiplexing to the CA over a few connections. */
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->max_connections);
    uv_timer_init(loop, &c->timer);
    c->handles_open = 1;
    return c;
}

void http_client_free(struct http_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    /* Cancel what is in flight; a callback's new requests are refused (closing). */
    while (c->xfers)
        finish(c->xfers, CURLE_OK, CF_ECANCELED);
    /*
     * Stop watching the sockets while their descriptors are still open, and
     * detach them so curl's cleanup, which closes them, hands us no stale
     * pointer if it reports their removal.
     */
    while (c->socks) {
        uv_poll_stop(&c->socks->poll);
        curl_multi_assign(c->multi, c->socks->fd, NULL);
        sock_close(c->socks);
    }
    curl_multi_cleanup(c->multi);
    while (c->nspare)
        curl_easy_cleanup(c->spare[--c->nspare]);
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

int http_request(struct http_client *c, const struct http_req *req, http_done_cb cb, void *arg)
{
    if (c->closing)
        return CF_ECANCELED;
    if (!req->url || !cb ||
        (req->method != HTTP_GET && req->method != HTTP_HEAD && req->method != HTTP_POST))
        return CF_EUSAGE;
    struct http_xfer *x = xcalloc(1, sizeof(*x));
    x->c = c;
    x->cb = cb;
    x->arg = arg;
    http_hdrs_init(&x->hdrs);
    buf_init(&x->body);
    x->easy = c->nspare ? c->spare[--c->nspare] : curl_easy_init();
    if (!x->easy) {
        free(x);
        return CF_EHTTP;
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    /* DESIGN.md §6: https only, also for redirects, which are not followed anyway. */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_bundle);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Wait for a connection that may multiplex rather than open another. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    if (req->method == HTTP_HEAD) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (req->method == HTTP_POST) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? (const char *)req->body : "");
        if (req->content_type) {
            char h[HTTP_CTYPE_MAX + 32];
            str_fmt(h, sizeof(h), "Content-Type: %s", req->content_type);
            x->hdr_list = curl_slist_append(x->hdr_list, h);
        }
        /* No "Expect: 100-continue" round trip for small JWS bodies. */
        x->hdr_list = curl_slist_append(x->hdr_list, "Expect:");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdr_list);
    }
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    /* The transfer starts from curl's timer callback, never from inside this call. */
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        xfer_unlink(x);
        xfer_free(x);
        return CF_EHTTP;
    }
    return 0;
}
