/*
 * record.h - the per-host record and its versioned encoding.
 *
 * A host record is what certfleet knows of one customer hostname: its
 * names, its place in the lifecycle, what DNS showed last, the current
 * certificate and the ACME order in flight. Large blobs (certificate chain,
 * private key) live in the certs database, keyed by the hostname, so the
 * records the scheduler scans stay small.
 *
 * Encoding (docs/store.md): one octet of schema version, then fields as
 * (tag, value); tags below 64 carry an unsigned LEB128 integer, tags from
 * 64 a LEB128 length and that many octets. Zero integers and empty strings
 * are omitted, so a fresh record is a few dozen octets. A record whose
 * version is newer than this build's is refused (CF_ENEWER_SCHEMA), never
 * guessed at.
 */
#ifndef CF_STORE_RECORD_H
#define CF_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hostname.h"

#define STORE_SCHEMA_VERSION 1

/* Host states (DESIGN.md §3). Values are stored: append only. */
#define HOST_STATE_MAP(X)                                                                          \
    X(AWAITING_DELEGATION, 0, "awaiting_delegation")                                               \
    X(DELEGATED, 1, "delegated")                                                                   \
    X(ISSUING, 2, "issuing")                                                                       \
    X(ACTIVE, 3, "active")                                                                         \
    X(RENEWING, 4, "renewing")                                                                     \
    X(STOPPED, 5, "stopped")

enum host_state {
#define HOST_STATE_ENUM(name, val, text) HOST_##name = val,
    HOST_STATE_MAP(HOST_STATE_ENUM)
#undef HOST_STATE_ENUM
        HOST_STATE__COUNT
};

/* Why a host is stopped. Values are stored: append only. */
#define STOP_REASON_MAP(X)                                                                         \
    X(NONE, 0, "")                                                                                 \
    X(OFFBOARDED, 1, "offboarded")                                                                 \
    X(DELEGATION_REMOVED, 2, "delegation_removed")                                                 \
    X(NEVER_LIVE, 3, "never_live")                                                                 \
    X(FAILING, 4, "failing")                                                                       \
    X(CA_PAUSED, 5, "ca_paused")                                                                   \
    X(REMOVED, 6, "removed")

enum stop_reason {
#define STOP_REASON_ENUM(name, val, text) STOP_##name = val,
    STOP_REASON_MAP(STOP_REASON_ENUM)
#undef STOP_REASON_ENUM
        STOP_REASON__COUNT
};

/* Results of the last delegation check (values stored). */
#define DELEG_RESULT_MAP(X)                                                                        \
    X(UNKNOWN, 0, "unknown")                                                                       \
    X(CONFIRMED, 1, "confirmed")                                                                   \
    X(PROPAGATING, 2, "propagating")                                                               \
    X(MISSING, 3, "missing")                                                                       \
    X(WRONG_TARGET, 4, "wrong_target")                                                             \
    X(ERROR, 5, "error")

enum deleg_result {
#define DELEG_RESULT_ENUM(name, val, text) DELEG_##name = val,
    DELEG_RESULT_MAP(DELEG_RESULT_ENUM)
#undef DELEG_RESULT_ENUM
        DELEG_RESULT__COUNT
};

/* Results of the last liveness check (values stored). */
#define LIVE_RESULT_MAP(X)                                                                         \
    X(UNKNOWN, 0, "unknown")                                                                       \
    X(LIVE, 1, "live")                                                                             \
    X(NOT_LIVE, 2, "not_live")                                                                     \
    X(ERROR, 3, "error")

enum live_result {
#define LIVE_RESULT_ENUM(name, val, text) LIVE_##name = val,
    LIVE_RESULT_MAP(LIVE_RESULT_ENUM)
#undef LIVE_RESULT_ENUM
        LIVE_RESULT__COUNT
};

#define HOST_CUSTOMER_MAX 127
#define HOST_ERROR_MAX 255
#define HOST_URL_MAX 511
#define HOST_SERIAL_MAX 127

/*
 * struct host_record: all strings are NUL-terminated inside their arrays;
 * times are Unix seconds, 0 for "never". Caller-owned: host_record_init
 * before filling one in.
 */
struct host_record {
    char name[HOSTNAME_MAX + 1];   /* normalized hostname, the key */
    char regdom[HOSTNAME_MAX + 1]; /* registered domain (public suffix list) */
    char target[HOSTNAME_MAX + 1]; /* where _acme-challenge.<name> must point */
    char customer[HOST_CUSTOMER_MAX + 1];

    uint8_t state;    /* enum host_state */
    uint8_t reason;   /* enum stop_reason, when stopped */
    uint8_t leftover; /* stopped, and _acme-challenge still points at us */
    int64_t created_at;
    int64_t state_since;
    int64_t next_action; /* the due index key; 0 = nothing scheduled */

    /* Delegation: _acme-challenge.<name> CNAME on every authoritative server. */
    uint8_t deleg_result; /* enum deleg_result */
    int64_t deleg_checked_at, deleg_first_ok, deleg_last_ok;
    uint32_t deleg_bad_checks;         /* consecutive checks that did not confirm */
    char deleg_seen[HOSTNAME_MAX + 1]; /* the target seen when wrong */

    /* Liveness: does <name> resolve into the CDN? */
    uint8_t live_result; /* enum live_result */
    int64_t live_checked_at, live_first_seen, live_last_seen;
    uint32_t live_bad_checks; /* consecutive not-live checks */

    /* Failures (issuance or checks), for backoff and the abandonment policy. */
    uint32_t failures;
    int64_t first_failure_at;
    char last_error[HOST_ERROR_MAX + 1];

    /* The current certificate (chain and key in the certs database). */
    char cert_serial[HOST_SERIAL_MAX + 1]; /* hex */
    int64_t not_before, not_after;
    uint32_t certs_issued;
    char ari_cert_id[HOST_URL_MAX + 1];
    int64_t ari_start, ari_end, ari_retry_after;
    int64_t renew_at; /* chosen renewal time, kept once chosen */

    /* The ACME order in flight, so a restart resumes it. */
    char order_url[HOST_URL_MAX + 1];
    int64_t order_started_at;

    /* The abandonment policy's bookkeeping (scheduler/policy.h). */
    int64_t deleg_bad_since; /* first conclusive unconfirmed check after the last confirmed one */
    int64_t live_bad_since;  /* first not-live check after the last live one */
    int64_t retry_at;        /* no order before this: backoff, Retry-After, deferral */
    uint8_t rearmed;         /* re-armed by an operator: the next order skips the liveness rule */
};

/* host_record_init zeroes rec. */
void host_record_init(struct host_record *rec);

/* host_record_encode appends rec's encoding to out. */
void host_record_encode(struct buf *out, const struct host_record *rec);

/*
 * host_record_decode decodes len octets at data into rec (initialized here).
 * Returns 0, CF_ENEWER_SCHEMA for a record written by a newer schema, or
 * CF_ECORRUPT for anything malformed; rec is then unspecified.
 */
int host_record_decode(struct host_record *rec, const void *data, size_t len);

/*
 * host_record_next_action reads only next_action from an encoded record
 * (the store needs it on every write to move the due-index entry, and a
 * full decode costs more than the write). Returns 0, CF_ECORRUPT or
 * CF_ENEWER_SCHEMA.
 */
int host_record_next_action(const void *data, size_t len, int64_t *out);

/* Names of the enums, "" or "?" for values out of range. */
const char *host_state_name(int state);
const char *stop_reason_name(int reason);
const char *deleg_result_name(int r);
const char *live_result_name(int r);
/* host_state_parse / stop_reason_parse return the value or -1. */
int host_state_parse(const char *s);
int stop_reason_parse(const char *s);

/*
 * host_set_state moves rec to state (with reason when stopping) at time now
 * and logs the transition with `why`. Every state change goes through here
 * (STYLE.md: one transition function, logged). A no-op when nothing changes.
 */
void host_set_state(struct host_record *rec, enum host_state state, enum stop_reason reason,
                    int64_t now, const char *why);

#endif
