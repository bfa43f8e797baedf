/*
 * net.c - the mock CA's transport: TCP on a non-blocking listening socket,
 * TLS with the crypto library's libssl, HTTP/2 framing with nghttp2 (ALPN
 * "h2"), and a minimal HTTP/1.1 for clients that do not offer h2.
 *
 * Why this shape: production certfleet talks to its CA over TLS and HTTP/2
 * through curl with many streams on few connections, so the mock must
 * serve exactly that, fast. Each connection is a uv_poll on its socket and
 * libssl reads and writes the socket itself (SSL_set_fd): no memory BIOs,
 * no copies between libuv's buffers and libssl's. nghttp2 is driven with
 * its memory API (nghttp2_session_mem_recv/_mem_send): bytes that SSL_read
 * returns go straight in, frames come out into the connection's output
 * buffer, and that buffer is written with SSL_write once per loop
 * iteration from a uv_prepare handle, so the answers to all the requests
 * that one read delivered leave in as few TLS records and syscalls as
 * possible (like redis's beforeSleep).
 *
 * Streams come from a free list and keep their buffers' memory, so a
 * request costs no allocation of ours once the pool has grown (nghttp2
 * allocates its own frames). --latency-ms puts answers in a FIFO: every
 * delay is the same, so one timer serves all of them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "err.h"
#include "log.h"
#include "mockca.h"

#define OUT_HIGH_WATER (1024 * 1024) /* stop pulling frames from nghttp2 above this */
#define H1_HEADERS_MAX (16 * 1024)
#define LOCAL_WINDOW (64 * 1024 * 1024)
#define STREAM_WINDOW (1024 * 1024)

enum proto {
    P_HANDSHAKE = 0, /* TLS handshake under way */
    P_H2,            /* HTTP/2 */
    P_H1,            /* HTTP/1.1 */
};

struct conn;

/* One request and its answer; pooled with its buffers. */
struct stream {
    struct conn *conn; /* NULL once orphaned: its connection or h2 stream went away */
    int32_t id;
    uint8_t method;
    uint8_t jose;
    uint8_t too_big;
    uint8_t queued; /* in the latency FIFO */
    uint8_t dispatched;
    uint16_t path_len;
    char path[MC_PATH_MAX];
    struct buf body;
    struct buf resp;
    size_t resp_off;
    struct mc_response rs;
    uint64_t due_ms;
    struct stream *next;          /* free list or latency FIFO */
    struct stream *cprev, *cnext; /* the connection's streams */
};

struct conn {
    struct mc_net *net;
    uv_poll_t poll;
    int fd;
    int events;
    enum proto proto;
    SSL *ssl;
    nghttp2_session *h2;
    int closing;
    int drop;       /* close as soon as the input read so far is processed */
    int want_close; /* close once the output is written (HTTP/1.1 "close") */
    int dirty;
    struct conn *dprev, *dnext; /* the dirty list */
    struct conn *prev, *next;   /* every connection */
    struct buf out;
    size_t out_off;
    struct buf in;         /* HTTP/1.1 input not yet parsed */
    struct stream *h1_cur; /* HTTP/1.1: the request being answered */
    struct stream *streams;
    uint64_t peer;
};

struct mc_net {
    uv_loop_t *loop;
    struct mc_ca *ca;
    struct mc_stats *st;
    SSL_CTX *ctx;
    int lfd;
    uv_poll_t lpoll;
    uv_prepare_t prep;
    uv_timer_t lat_timer;
    struct stream *lat_head, *lat_tail;
    int latency_ms;
    uint32_t max_streams;
    int max_conns, nconns;
    struct conn *conns;
    struct conn *dirty;
    struct stream *free_streams;
    nghttp2_session_callbacks *cbs;
    int closed;
    int handles_open; /* closed by mc_net_close; the last close callback frees */
};

static uint8_t rbuf[64 * 1024];

static void conn_close(struct conn *c);
static void h1_parse(struct conn *c);
static void on_conn_poll(uv_poll_t *h, int status, int events);

/* ---- streams ------------------------------------------------------------------ */

static struct stream *stream_new(struct conn *c)
{
    struct mc_net *n = c->net;
    struct stream *s = n->free_streams;

    if (s) {
        n->free_streams = s->next;
    } else {
        s = xcalloc(1, sizeof(*s));
        buf_init(&s->body);
        buf_init(&s->resp);
    }
    s->conn = c;
    s->id = 0;
    s->method = MC_M_OTHER;
    s->jose = s->too_big = s->queued = s->dispatched = 0;
    s->path_len = 0;
    s->path[0] = '\0';
    buf_reset(&s->body);
    buf_reset(&s->resp);
    s->resp_off = 0;
    s->next = NULL;
    s->cprev = NULL;
    s->cnext = c->streams;
    if (c->streams)
        c->streams->cprev = s;
    c->streams = s;
    n->st->streams++;
    return s;
}

/* stream_detach takes s off its connection's list. */
static void stream_detach(struct stream *s)
{
    struct conn *c = s->conn;

    if (!c)
        return;
    if (s->cprev)
        s->cprev->cnext = s->cnext;
    else
        c->streams = s->cnext;
    if (s->cnext)
        s->cnext->cprev = s->cprev;
    s->cprev = s->cnext = NULL;
    s->conn = NULL;
}

/* stream_free returns s to the pool, unless the latency FIFO holds it (it is orphaned then). */
static void stream_free(struct mc_net *n, struct stream *s)
{
    stream_detach(s);
    if (s->queued)
        return;
    /* Very large buffers are not kept: one big request must not pin memory for ever. */
    if (s->body.cap > 256 * 1024) {
        buf_cleanup(&s->body);
        buf_init(&s->body);
    }
    if (s->resp.cap > 256 * 1024) {
        buf_cleanup(&s->resp);
        buf_init(&s->resp);
    }
    s->next = n->free_streams;
    n->free_streams = s;
}

static void mark_dirty(struct conn *c)
{
    struct mc_net *n = c->net;

    if (c->dirty || c->closing)
        return;
    c->dirty = 1;
    c->dprev = NULL;
    c->dnext = n->dirty;
    if (n->dirty)
        n->dirty->dprev = c;
    n->dirty = c;
}

static void unmark_dirty(struct conn *c)
{
    struct mc_net *n = c->net;

    if (!c->dirty)
        return;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        n->dirty = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    c->dirty = 0;
}

/* ---- answers -------------------------------------------------------------------- */

static const char *ctype_name(enum mc_ctype t)
{
    switch (t) {
    case MC_CT_JSON:
        return "application/json";
    case MC_CT_PROBLEM:
        return "application/problem+json";
    case MC_CT_PEM:
        return "application/pem-certificate-chain";
    case MC_CT_HTML:
        return "text/html; charset=utf-8"; /* hostile answers only */
    default:
        return NULL;
    }
}

static ssize_t on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *out,
                            size_t length, uint32_t *flags, nghttp2_data_source *source,
                            void *user_data)
{
    struct stream *s = source->ptr;
    size_t left = s->resp.len - s->resp_off;
    size_t k = left < length ? left : length;

    (void)session;
    (void)stream_id;
    (void)user_data;
    memcpy(out, s->resp.data + s->resp_off, k);
    s->resp_off += k;
    if (s->resp_off == s->resp.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

#define NV(n, v, vl)                                                                               \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME          \
    }

static void respond_h2(struct conn *c, struct stream *s)
{
    struct mc_response *rs = &s->rs;
    nghttp2_nv nv[12];
    size_t k = 0;
    char status[8], clen[24], ra[24];
    const char *ct = ctype_name(rs->ctype);
    nghttp2_data_provider prd;
    int has_body = s->resp.len > 0 && !rs->head;

    str_fmt(status, sizeof(status), "%d", rs->status);
    nv[k++] = NV(":status", status, strlen(status));
    if (ct)
        nv[k++] = NV("content-type", ct, strlen(ct));
    str_fmt(clen, sizeof(clen), "%zu", s->resp.len);
    nv[k++] = NV("content-length", clen, strlen(clen));
    if (rs->nonce[0])
        nv[k++] = NV("replay-nonce", rs->nonce, strlen(rs->nonce));
    if (rs->location[0])
        nv[k++] = NV("location", rs->location, strlen(rs->location));
    for (int i = 0; i < rs->nlinks; i++)
        nv[k++] = NV("link", rs->links[i], strlen(rs->links[i]));
    if (rs->retry_after > 0) {
        str_fmt(ra, sizeof(ra), "%d", rs->retry_after);
        nv[k++] = NV("retry-after", ra, strlen(ra));
    }
    nv[k++] = NV("cache-control", "no-store", 8);
    prd.source.ptr = s;
    prd.read_callback = on_data_read;
    s->resp_off = 0;
    if (nghttp2_submit_response(c->h2, s->id, nv, k, has_body ? &prd : NULL) != 0)
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    mark_dirty(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static void respond_h1(struct conn *c, struct stream *s)
{
    struct mc_response *rs = &s->rs;
    struct buf *o = &c->out;
    const char *ct = ctype_name(rs->ctype);

    buf_printf(o, "HTTP/1.1 %d %s\r\n", rs->status, reason(rs->status));
    if (ct)
        buf_printf(o, "Content-Type: %s\r\n", ct);
    buf_printf(o, "Content-Length: %zu\r\n", s->resp.len);
    if (rs->nonce[0])
        buf_printf(o, "Replay-Nonce: %s\r\n", rs->nonce);
    if (rs->location[0])
        buf_printf(o, "Location: %s\r\n", rs->location);
    for (int i = 0; i < rs->nlinks; i++)
        buf_printf(o, "Link: %s\r\n", rs->links[i]);
    if (rs->retry_after > 0)
        buf_printf(o, "Retry-After: %d\r\n", rs->retry_after);
    buf_puts(o, "Cache-Control: no-store\r\n");
    if (c->want_close)
        buf_puts(o, "Connection: close\r\n");
    buf_puts(o, "\r\n");
    if (!rs->head)
        buf_append(o, s->resp.data, s->resp.len);
    c->h1_cur = NULL;
    stream_free(c->net, s);
    mark_dirty(c);
}

static void respond(struct stream *s)
{
    struct conn *c = s->conn;

    c->net->st->status_class[(s->rs.status / 100) % 6]++;
    if (c->proto == P_H2) {
        respond_h2(c, s);
        return;
    }
    respond_h1(c, s);
    /* The next pipelined request, if one is waiting. */
    h1_parse(c);
}

static void on_lat_timer(uv_timer_t *t)
{
    struct mc_net *n = t->data;
    uint64_t now = uv_now(n->loop);

    while (n->lat_head && n->lat_head->due_ms <= now) {
        struct stream *s = n->lat_head;
        n->lat_head = s->next;
        if (!n->lat_head)
            n->lat_tail = NULL;
        s->next = NULL;
        s->queued = 0;
        if (!s->conn) {
            stream_free(n, s); /* its connection or stream went away meanwhile */
            continue;
        }
        respond(s);
    }
    if (n->lat_head)
        uv_timer_start(&n->lat_timer, on_lat_timer, n->lat_head->due_ms - now, 0);
}

/* dispatch hands a complete request to the CA and carries out its answer. */
static void dispatch(struct stream *s)
{
    struct conn *c = s->conn;
    struct mc_net *n = c->net;
    struct mc_request rq;
    enum mc_action act;

    s->dispatched = 1;
    memset(&rq, 0, sizeof(rq));
    rq.method = (enum mc_method)s->method;
    rq.path = s->path;
    rq.path_len = s->path_len;
    rq.jose = s->jose;
    rq.body = s->body.data ? s->body.data : "";
    rq.body_len = s->body.len;
    rq.too_big = s->too_big;
    rq.peer = c->peer;
    memset(&s->rs, 0, sizeof(s->rs));
    s->rs.body = &s->resp;
    buf_reset(&s->resp);
    act = mc_ca_handle(n->ca, &rq, &s->rs);
    switch (act) {
    case MC_ACT_DROP:
        c->drop = 1;
        n->st->conns_dropped++;
        return;
    case MC_ACT_HANG:
        return; /* answered never; freed when the client resets it or the connection ends */
    default:
        break;
    }
    if (n->latency_ms > 0) {
        s->due_ms = uv_now(n->loop) + (uint64_t)n->latency_ms;
        s->queued = 1;
        if (n->lat_tail)
            n->lat_tail->next = s;
        else
            n->lat_head = s;
        n->lat_tail = s;
        if (!uv_is_active((uv_handle_t *)&n->lat_timer))
            uv_timer_start(&n->lat_timer, on_lat_timer, (uint64_t)n->latency_ms, 0);
        return;
    }
    respond(s);
}

/* ---- HTTP/2 (nghttp2 callbacks) ----------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct conn *c = user_data;
    struct stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = stream_new(c);
    s->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    (void)flags;
    (void)user_data;
    if (!s || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
        if (valuelen == 4 && memcmp(value, "POST", 4) == 0)
            s->method = MC_M_POST;
        else if (valuelen == 3 && memcmp(value, "GET", 3) == 0)
            s->method = MC_M_GET;
        else if (valuelen == 4 && memcmp(value, "HEAD", 4) == 0)
            s->method = MC_M_HEAD;
    } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
        if (valuelen < sizeof(s->path)) {
            memcpy(s->path, value, valuelen);
            s->path[valuelen] = '\0';
            s->path_len = (uint16_t)valuelen;
        }
    } else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
        s->jose =
            valuelen >= 21 && strncasecmp((const char *)value, "application/jose+json", 21) == 0;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)flags;
    (void)user_data;
    if (!s)
        return 0;
    if (s->body.len + len > MC_BODY_MAX)
        s->too_big = 1;
    else
        buf_append(&s->body, data, len);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct stream *s;

    (void)user_data;
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s && !s->dispatched && s->conn && !s->conn->drop)
        dispatch(s);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct conn *c = user_data;
    struct stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)error_code;
    if (!s || c->closing)
        return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(c->net, s);
    return 0;
}

static int h2_start(struct conn *c)
{
    nghttp2_settings_entry iv[2] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->net->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };

    if (nghttp2_session_server_new(&c->h2, c->net->cbs, c) != 0)
        return -1;
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, LOCAL_WINDOW) != 0)
        return -1;
    mark_dirty(c);
    return 0;
}

/* ---- HTTP/1.1 ------------------------------------------------------------------ */

/* h1_parse takes the next complete request from c->in, if nothing is being answered. */
static void h1_parse(struct conn *c)
{
    while (!c->h1_cur && !c->closing && !c->drop && !c->want_close) {
        char *end = memmem(c->in.data ? c->in.data : "", c->in.len, "\r\n\r\n", 4);
        char *line, *sp1, *sp2, *eol;
        size_t hlen, clen = 0, total;
        struct stream *s;
        int jose = 0, close_it = 0;

        if (!end) {
            if (c->in.len > H1_HEADERS_MAX)
                conn_close(c);
            return;
        }
        hlen = (size_t)(end - c->in.data) + 4;
        line = c->in.data;
        eol = memmem(line, hlen, "\r\n", 2);
        sp1 = memchr(line, ' ', (size_t)(eol - line));
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
        if (!sp1 || !sp2) {
            conn_close(c);
            return;
        }
        for (char *h = eol + 2; h < end;) {
            char *he = memmem(h, (size_t)(end + 2 - h), "\r\n", 2);
            size_t hl = (size_t)(he - h);
            if (hl > 15 && strncasecmp(h, "content-length:", 15) == 0)
                clen = strtoul(h + 15, NULL, 10);
            else if (hl > 13 && strncasecmp(h, "content-type:", 13) == 0)
                jose = memmem(h + 13, hl - 13, "application/jose+json", 21) != NULL;
            else if (hl >= 17 && strncasecmp(h, "connection: close", 17) == 0)
                close_it = 1;
            h = he + 2;
        }
        if (clen > MC_BODY_MAX) {
            conn_close(c);
            return;
        }
        total = hlen + clen;
        if (c->in.len < total)
            return;
        s = stream_new(c);
        if ((size_t)(sp1 - line) == 4 && memcmp(line, "POST", 4) == 0)
            s->method = MC_M_POST;
        else if ((size_t)(sp1 - line) == 3 && memcmp(line, "GET", 3) == 0)
            s->method = MC_M_GET;
        else if ((size_t)(sp1 - line) == 4 && memcmp(line, "HEAD", 4) == 0)
            s->method = MC_M_HEAD;
        if ((size_t)(sp2 - sp1 - 1) < sizeof(s->path)) {
            s->path_len = (uint16_t)(sp2 - sp1 - 1);
            memcpy(s->path, sp1 + 1, s->path_len);
            s->path[s->path_len] = '\0';
        }
        s->jose = (uint8_t)jose;
        buf_append(&s->body, c->in.data + hlen, clen);
        memmove(c->in.data, c->in.data + total, c->in.len - total);
        c->in.len -= total;
        c->want_close = close_it;
        c->h1_cur = s;
        dispatch(s);
    }
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_poll(struct conn *c, int events)
{
    if (c->closing || events == c->events)
        return;
    c->events = events;
    uv_poll_start(&c->poll, events, on_conn_poll);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    SSL_free(c->ssl);
    close(c->fd);
    buf_cleanup(&c->out);
    buf_cleanup(&c->in);
    free(c);
}

static void conn_close(struct conn *c)
{
    struct mc_net *n = c->net;

    if (c->closing)
        return;
    c->closing = 1;
    unmark_dirty(c);
    /* The session first: whatever it calls back now finds the connection closing. */
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
    while (c->streams)
        stream_free(n, c->streams);
    c->h1_cur = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nconns--;
    n->st->conns_open--;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

/* conn_write writes what c->out holds; returns -1 when the connection was closed. */
static int conn_write(struct conn *c)
{
    while (c->out_off < c->out.len) {
        size_t left = c->out.len - c->out_off;
        int k = SSL_write(c->ssl, c->out.data + c->out_off, left > (1 << 30) ? 1 << 30 : (int)left);
        if (k > 0) {
            c->out_off += (size_t)k;
            c->net->st->bytes_out += (uint64_t)k;
            continue;
        }
        switch (SSL_get_error(c->ssl, k)) {
        case SSL_ERROR_WANT_WRITE:
            conn_poll(c, UV_READABLE | UV_WRITABLE);
            return 0;
        case SSL_ERROR_WANT_READ:
            conn_poll(c, UV_READABLE);
            return 0;
        default:
            ERR_clear_error();
            conn_close(c);
            return -1;
        }
    }
    c->out.len = 0;
    c->out_off = 0;
    conn_poll(c, UV_READABLE);
    return 0;
}

/* conn_flush moves nghttp2's pending frames into the output and writes it. */
static void conn_flush(struct conn *c)
{
    if (c->proto == P_H2 && c->h2) {
        while (c->out.len - c->out_off < OUT_HIGH_WATER) {
            const uint8_t *data;
            ssize_t k = nghttp2_session_mem_send(c->h2, &data);
            if (k < 0) {
                conn_close(c);
                return;
            }
            if (k == 0)
                break;
            buf_append(&c->out, data, (size_t)k);
        }
    }
    if (conn_write(c) != 0)
        return;
    if (c->drop) {
        conn_close(c);
        return;
    }
    if (c->out.len == 0 && ((c->proto == P_H2 && c->h2 && !nghttp2_session_want_read(c->h2) &&
                             !nghttp2_session_want_write(c->h2)) ||
                            (c->proto == P_H1 && c->want_close && !c->h1_cur)))
        conn_close(c);
}

static int on_alpn(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in,
                   unsigned inlen, void *arg)
{
    static const uint8_t h2[] = "h2", h1[] = "http/1.1";
    const uint8_t *found_h1 = NULL;

    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (l == 2 && memcmp(in + i + 1, h2, 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        if (l == 8 && memcmp(in + i + 1, h1, 8) == 0)
            found_h1 = in + i + 1;
        i += 1 + l;
    }
    if (found_h1) {
        *out = found_h1;
        *outlen = 8;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* handshake advances the TLS handshake; returns 1 when done, 0 to wait, -1 closed. */
static int handshake(struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    const uint8_t *alpn = NULL;
    unsigned alpn_len = 0;

    if (r != 1) {
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            conn_poll(c, UV_READABLE);
            return 0;
        case SSL_ERROR_WANT_WRITE:
            conn_poll(c, UV_READABLE | UV_WRITABLE);
            return 0;
        default:
            ERR_clear_error();
            c->net->st->tls_failed++;
            conn_close(c);
            return -1;
        }
    }
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0) {
        c->proto = P_H2;
        c->net->st->conns_h2++;
        if (h2_start(c) != 0) {
            conn_close(c);
            return -1;
        }
    } else {
        c->proto = P_H1;
        c->net->st->conns_h1++;
    }
    conn_poll(c, UV_READABLE);
    return 1;
}

static void conn_read(struct conn *c)
{
    for (;;) {
        int k = SSL_read(c->ssl, rbuf, sizeof(rbuf));
        if (k > 0) {
            c->net->st->bytes_in += (uint64_t)k;
            if (c->proto == P_H2) {
                if (nghttp2_session_mem_recv(c->h2, rbuf, (size_t)k) < 0) {
                    conn_close(c);
                    return;
                }
            } else {
                buf_append(&c->in, rbuf, (size_t)k);
                h1_parse(c);
            }
            if (c->closing || c->drop)
                return;
            continue;
        }
        switch (SSL_get_error(c->ssl, k)) {
        case SSL_ERROR_WANT_READ:
            return;
        case SSL_ERROR_WANT_WRITE:
            conn_poll(c, UV_READABLE | UV_WRITABLE);
            return;
        default:
            /* The peer closed (close_notify or EOF) or the connection broke. */
            ERR_clear_error();
            conn_close(c);
            return;
        }
    }
}

static void on_conn_poll(uv_poll_t *h, int status, int events)
{
    struct conn *c = h->data;

    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->proto == P_HANDSHAKE && handshake(c) <= 0)
        return;
    if (events & UV_READABLE) {
        conn_read(c);
        if (c->closing)
            return;
    }
    if (c->drop) {
        conn_close(c);
        return;
    }
    mark_dirty(c);
}

static void on_prepare(uv_prepare_t *p)
{
    struct mc_net *n = p->data;

    while (n->dirty) {
        struct conn *c = n->dirty;
        unmark_dirty(c);
        conn_flush(c);
    }
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    struct mc_net *n = h->data;

    (void)events;
    if (status < 0)
        return;
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int one = 1;
        int fd = accept4(n->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;
        if (fd < 0)
            return; /* EAGAIN, or EMFILE and the like: the next readiness tries again */
        if (n->nconns >= n->max_conns) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = xcalloc(1, sizeof(*c));
        c->net = n;
        c->fd = fd;
        buf_init(&c->out);
        buf_init(&c->in);
        if (sa.ss_family == AF_INET6)
            c->peer = mc_hash64(&((struct sockaddr_in6 *)&sa)->sin6_addr, 16, 6);
        else
            c->peer = mc_hash64(&((struct sockaddr_in *)&sa)->sin_addr, 4, 4);
        c->ssl = SSL_new(n->ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
            SSL_free(c->ssl);
            close(fd);
            free(c);
            ERR_clear_error();
            continue;
        }
        SSL_set_accept_state(c->ssl);
        uv_poll_init(n->loop, &c->poll, fd);
        c->poll.data = c;
        c->events = UV_READABLE;
        uv_poll_start(&c->poll, UV_READABLE, on_conn_poll);
        c->next = n->conns;
        if (n->conns)
            n->conns->prev = c;
        n->conns = c;
        n->nconns++;
        n->st->conns_accepted++;
        n->st->conns_open++;
    }
}

int mc_net_new(struct mc_net **out, uv_loop_t *loop, const struct mc_net_opts *o, struct mc_ca *ca,
               char *err, size_t errlen)
{
    struct mc_net *n = xcalloc(1, sizeof(*n));
    const uint8_t *p = o->cert;
    X509 *x = d2i_X509(NULL, &p, (long)o->cert_len);
    int one = 1;
    socklen_t sl;

    n->loop = loop;
    n->ca = ca;
    n->st = mc_ca_stats(ca);
    n->latency_ms = o->latency_ms;
    n->max_streams = o->max_streams ? o->max_streams : 10000;
    n->max_conns = o->max_conns ? o->max_conns : 4096;
    n->ctx = SSL_CTX_new(TLS_server_method());
    if (!x || !n->ctx || SSL_CTX_set_min_proto_version(n->ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate(n->ctx, x) != 1 || SSL_CTX_use_PrivateKey(n->ctx, o->key) != 1 ||
        SSL_CTX_check_private_key(n->ctx) != 1) {
        str_fmt(err, errlen, "cannot set up TLS");
        X509_free(x);
        ERR_clear_error();
        return CF_ECRYPTO;
    }
    X509_free(x);
    SSL_CTX_set_mode(n->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(n->ctx, on_alpn, NULL);

    nghttp2_session_callbacks_new(&n->cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(n->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(n->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(n->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(n->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(n->cbs, on_stream_close);

    sl =
        o->listen->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    n->lfd = socket(o->listen->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n->lfd < 0 || setsockopt(n->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(n->lfd, o->listen, sl) != 0 || listen(n->lfd, 4096) != 0) {
        int e = errno;
        str_fmt(err, errlen, "cannot listen: %s", strerror(e));
        if (n->lfd >= 0)
            close(n->lfd);
        return -e;
    }
    uv_poll_init(loop, &n->lpoll, n->lfd);
    n->lpoll.data = n;
    uv_poll_start(&n->lpoll, UV_READABLE, on_listen);
    uv_prepare_init(loop, &n->prep);
    n->prep.data = n;
    uv_prepare_start(&n->prep, on_prepare);
    uv_timer_init(loop, &n->lat_timer);
    n->lat_timer.data = n;
    *out = n;
    return 0;
}

static void on_net_handle_closed(uv_handle_t *h)
{
    struct mc_net *n = h->data;

    /* libuv runs close callbacks in no promised order: the last one frees. */
    if (--n->handles_open > 0)
        return;
    while (n->free_streams) {
        struct stream *s = n->free_streams;
        n->free_streams = s->next;
        buf_cleanup(&s->body);
        buf_cleanup(&s->resp);
        free(s);
    }
    nghttp2_session_callbacks_del(n->cbs);
    SSL_CTX_free(n->ctx);
    close(n->lfd);
    free(n);
}

void mc_net_close(struct mc_net *n)
{
    if (!n || n->closed)
        return;
    n->closed = 1;
    while (n->conns)
        conn_close(n->conns);
    /* Answers waiting for their latency: their streams are orphans now. */
    while (n->lat_head) {
        struct stream *s = n->lat_head;
        n->lat_head = s->next;
        s->queued = 0;
        stream_free(n, s);
    }
    n->lat_tail = NULL;
    n->handles_open = 3;
    uv_close((uv_handle_t *)&n->lpoll, on_net_handle_closed);
    uv_close((uv_handle_t *)&n->prep, on_net_handle_closed);
    uv_close((uv_handle_t *)&n->lat_timer, on_net_handle_closed);
}
