/*
 * http.h - the HTTP client of the ACME engine: libcurl's multi interface
 * driven by the libuv loop.
 *
 * One http_client per CA: HTTP/2 multiplexing over a bounded number of
 * connections, https only (DESIGN.md §6), TLS verification always on, a
 * timeout per request and a cap on response bodies. curl's results are
 * translated into the project's error codes here and nowhere else.
 *
 * The header parsers (http_parse_*) are pure functions of their input so
 * they are unit tested and fuzzed without a network: everything a server
 * sends is untrusted and bounded explicitly.
 */
#ifndef CF_ENGINE_HTTP_H
#define CF_ENGINE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

#define HTTP_DEFAULT_MAX_CONNECTIONS 4
#define HTTP_DEFAULT_TIMEOUT_MS 30000
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)
/* Bounds on what a server may send. Longer values are ignored, not truncated. */
#define HTTP_HEADERS_MAX (64 * 1024) /* all header lines of one response */
#define HTTP_URL_MAX 4096            /* Location and Link targets */
#define HTTP_NONCE_MAX 256           /* Replay-Nonce */
#define HTTP_CTYPE_MAX 256           /* Content-Type */
#define HTTP_LINKS_MAX 16            /* link relations kept per response */
/* Retry-After beyond this many seconds from now is clamped to it. */
#define HTTP_RETRY_AFTER_MAX (30 * 86400)

enum http_method { HTTP_GET = 0, HTTP_HEAD, HTTP_POST };

/* The link relations ACME uses (RFC 8555 §7.1, §7.4.2, §7.1.1). */
enum http_rel {
    HTTP_REL_UP = 0,    /* authorization → order, cert → issuer chain */
    HTTP_REL_ALTERNATE, /* alternate certificate chains */
    HTTP_REL_INDEX,     /* the directory */
};

struct http_link {
    enum http_rel rel;
    char *url; /* owned by the response; absolute once delivered to a callback */
};

struct http_opts {
    const char *ca_bundle;  /* PEM file of trusted CAs; NULL: the system's store */
    int max_connections;    /* per host and in total; 0: HTTP_DEFAULT_MAX_CONNECTIONS */
    int timeout_ms;         /* whole request; 0: HTTP_DEFAULT_TIMEOUT_MS */
    int connect_timeout_ms; /* TCP and TLS handshake; 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    size_t max_body;        /* response body cap; 0: HTTP_DEFAULT_MAX_BODY */
};

struct http_req {
    enum http_method method;
    const char *url;  /* must be https:// */
    const void *body; /* POST only; copied by http_request */
    size_t body_len;
    const char *content_type; /* POST only, e.g. "application/jose+json"; NULL: none */
};

/*
 * struct http_resp is what a callback sees. Every pointer in it is owned by
 * the client and lives until the callback returns: copy what you keep.
 */
struct http_resp {
    int status;             /* HTTP status; 0 when no response arrived */
    int error;              /* 0, CF_ETIMEOUT, CF_EHTTP, CF_ETOOBIG, CF_ECANCELED */
    const char *error_text; /* "" when error is 0; else what went wrong, for people */
    int http_version;       /* 10, 11, 20, 30; 0 when unknown */
    struct buf body;
    const char *content_type; /* NULL when absent */
    const char *replay_nonce; /* NULL when absent or malformed (RFC 8555 §6.5.1) */
    const char *location;     /* absolute URL; NULL when absent */
    int64_t retry_after;      /* absolute Unix seconds; 0 when absent or malformed */
    size_t nlinks;
    struct http_link links[HTTP_LINKS_MAX];
    long new_connections; /* connections this request opened (0 when it reused one) */
    long local_port;      /* the local port of its connection, for diagnostics */
};

/* http_done_cb runs once per http_request, on the loop thread, never from inside http_request. */
typedef void (*http_done_cb)(void *arg, const struct http_resp *resp);

struct http_client;

/*
 * http_client_new creates a client on loop with options o (NULL: defaults;
 * o's strings are copied). Returns NULL if curl cannot be set up.
 */
struct http_client *http_client_new(uv_loop_t *loop, const struct http_opts *o);

/*
 * http_client_free cancels every request in flight (each callback runs with
 * CF_ECANCELED before this returns) and closes the client; its memory goes
 * once the loop has closed its handles. Callable from a callback. Accepts NULL.
 */
void http_client_free(struct http_client *c);

/*
 * http_request starts req; cb(arg, resp) runs when it completes. Returns 0,
 * CF_EUSAGE for a request without a URL, or CF_ECANCELED after
 * http_client_free. A URL that is not https fails through the callback
 * (CF_EHTTP) without any connection being made.
 */
int http_request(struct http_client *c, const struct http_req *req, http_done_cb cb, void *arg);

/* http_method_name returns "GET", "HEAD" or "POST". */
const char *http_method_name(enum http_method m);
/* http_rel_name returns "up", "alternate" or "index". */
const char *http_rel_name(enum http_rel r);

/* --- pure parsers (http_parse.c) --- */

/*
 * http_parse_retry_after parses a Retry-After value (v, len bytes, not
 * NUL-terminated): delay-seconds or an HTTP-date in any of the three formats
 * recipients must accept (RFC 9110 §10.2.3, §5.6.7). *out becomes an
 * absolute time in Unix seconds, clamped to [now, now + HTTP_RETRY_AFTER_MAX].
 * Returns 0 or CF_EPARSE (*out untouched).
 */
int http_parse_retry_after(int64_t *out, const char *v, size_t len, int64_t now);

/*
 * http_parse_link parses one Link field value (RFC 8288 §3) and appends the
 * targets of rel="up", "alternate" and "index" (a rel may list several
 * relation types) to links[*n..max), advancing *n; links past max are
 * dropped, targets over HTTP_URL_MAX skipped. Each url is heap-allocated
 * (free with http_links_free). Returns 0, or CF_EPARSE when the value is
 * malformed (links read before the error are kept).
 */
int http_parse_link(struct http_link *links, size_t max, size_t *n, const char *v, size_t len);
void http_links_free(struct http_link *links, size_t n);

enum http_line_kind {
    HTTP_LINE_STATUS = 1, /* "HTTP/2 200": a (new) response begins; status set */
    HTTP_LINE_FIELD,      /* "Name: value": name and value set, OWS trimmed */
    HTTP_LINE_END,        /* the empty line that ends the header block */
};

struct http_line {
    int status;
    const char *name, *value; /* point into the line */
    size_t name_len, value_len;
};

/*
 * http_parse_header_line classifies one header line as curl hands it over
 * (line, len bytes, with or without its CRLF). Returns an http_line_kind,
 * or CF_EPARSE for anything else (obsolete line folding, no colon, a bad
 * field name, a bad status line).
 */
int http_parse_header_line(struct http_line *out, const char *line, size_t len);

/*
 * struct http_hdrs collects the fields ACME needs from one response's header
 * lines. http_hdrs_init before use, http_hdrs_cleanup after.
 */
struct http_hdrs {
    int status;
    char *content_type, *replay_nonce, *location;
    int64_t retry_after;
    size_t nlinks;
    struct http_link links[HTTP_LINKS_MAX];
    size_t bytes; /* header bytes seen, bounded by HTTP_HEADERS_MAX */
};

void http_hdrs_init(struct http_hdrs *h);
void http_hdrs_cleanup(struct http_hdrs *h);

/*
 * http_hdrs_add feeds one header line (as http_parse_header_line takes it)
 * with now as the current time in Unix seconds. A status line starts over:
 * interim (1xx) responses leave nothing behind. Malformed and oversized
 * fields are ignored. Returns 0, or CF_ETOOBIG once the header block passed
 * HTTP_HEADERS_MAX bytes.
 */
int http_hdrs_add(struct http_hdrs *h, const char *line, size_t len, int64_t now);

#endif
