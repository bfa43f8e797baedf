/*
 * err.h - the project's error codes.
 *
 * Functions return int: 0 on success, a negative code on error. System
 * errors are negated errno values; the project's own codes live below
 * CF_ERR_BASE so they never collide with errno. Results of the libraries
 * (LMDB, curl, c-ares, the crypto library) are translated into these codes
 * once, at the glue layer.
 */
#ifndef CF_UTIL_ERR_H
#define CF_UTIL_ERR_H

#define CF_ERR_BASE (-10000)

/* X(name, message): one table for codes and messages, like UV_ERRNO_MAP. */
#define CF_ERR_MAP(X)                                                                              \
    X(HOSTNAME, "invalid hostname")                                                                \
    X(NEWER_SCHEMA, "written by a newer schema version of certfleet")                              \
    X(CORRUPT, "corrupt record")                                                                   \
    X(NOTFOUND, "not found")                                                                       \
    X(MAPFULL, "store is full and its map cannot grow further")                                    \
    X(STORE, "store error")                                                                        \
    X(CONFIG, "configuration error")                                                               \
    X(CRYPTO, "crypto library error")                                                              \
    X(USAGE, "usage error")                                                                        \
    X(TOOBIG, "input too large")                                                                   \
    X(PROTO, "protocol error")                                                                     \
    X(BACKEND, "wrong library backend")                                                            \
    X(PARSE, "parse error")                                                                        \
    X(TIMEOUT, "timed out")                                                                        \
    X(DNS, "DNS error")                                                                            \
    X(DNS_SERVFAIL, "the server failed (SERVFAIL)")                                                \
    X(DNS_REFUSED, "the server refused the query (REFUSED)")                                       \
    X(DNS_FORMERR, "the server could not read the query (FORMERR/NOTIMP)")                         \
    X(CONNREFUSED, "connection refused")                                                           \
    X(HTTP, "HTTP error")                                                                          \
    X(ACME, "ACME error")                                                                          \
    X(RATELIMIT, "rate limited")                                                                   \
    X(CANCELED, "canceled")                                                                        \
    X(DNS_UPDATE, "DNS UPDATE failed")

enum cf_err {
    CF_ERR__FIRST = CF_ERR_BASE,
#define CF_ERR_ENUM(name, msg) CF_E##name,
    CF_ERR_MAP(CF_ERR_ENUM)
#undef CF_ERR_ENUM
        CF_ERR__LAST
};

/*
 * cf_strerror returns a static message for err: the project's message for its
 * own codes, strerror() text for negated errno values, "success" for 0.
 */
const char *cf_strerror(int err);

/* cf_errname returns a short static symbolic name ("CF_EHOSTNAME", "ENOENT"). */
const char *cf_errname(int err);

#endif
