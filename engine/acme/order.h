/*
 * order.h - the per-host issuance pipeline (RFC 8555 §7.4) on the libuv
 * loop: one hostname (a wildcard allowed), one order, one certificate.
 *
 * A struct acme_order_job walks an explicit state machine: newOrder, the
 * authorizations, the dns-01 TXT record published in the store (served by
 * `certfleet serve-dns`), its propagation to every authoritative address of
 * the validation zone, the challenge response, the polls, finalization with
 * a fresh ECDSA P-256 key, the download and a check of the chain. The TXT
 * record is withdrawn again however the order ends.
 *
 * The job owns itself once started: the caller's callback runs exactly once
 * and the job frees itself after it. The acme_client, dns_checker, committer and
 * account key are borrowed and must outlive every job started on them.
 */
#ifndef CF_ENGINE_ACME_ORDER_H
#define CF_ENGINE_ACME_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "checks.h"
#include "client.h"
#include "crypto.h"
#include "commit.h"
#include "store.h"

/* Defaults for the zeros of struct acme_order_opts. */
#define ACME_ORDER_PROPAGATE_INTERVAL_MS 200
#define ACME_ORDER_PROPAGATE_TRIES 150
#define ACME_ORDER_POLL_INTERVAL_MS 500
#define ACME_ORDER_POLL_MAX_MS 120000
/* A Retry-After further away than this is clamped: the poll budget still bounds the wait. */
#define ACME_ORDER_RETRY_AFTER_MAX_MS 30000

/* The states of a job; transitions are logged as "acme_order_state" events. */
enum acme_order_state {
    ACME_ORDER_NEW_ORDER,  /* POST newOrder; the order URL comes from Location */
    ACME_ORDER_AUTHZ,      /* POST-as-GET the next authorization; valid ones are skipped */
    ACME_ORDER_PUBLISH,    /* the dns-01 TXT value goes into the store (group commit) */
    ACME_ORDER_PROPAGATE,  /* dns_check_txt until every server has it; timer between tries */
    ACME_ORDER_RESPOND,    /* POST {} to the challenge URL: the CA may validate now */
    ACME_ORDER_POLL_AUTHZ, /* POST-as-GET the authorization until valid or invalid */
    ACME_ORDER_READY,      /* POST-as-GET the order until it is ready (all authzs valid) */
    ACME_ORDER_FINALIZE,   /* fresh key, CSR, POST finalize */
    ACME_ORDER_POLL_ORDER, /* POST-as-GET the order until valid (certificate URL set) */
    ACME_ORDER_DOWNLOAD,   /* POST-as-GET the certificate URL */
    ACME_ORDER_VERIFY,     /* parse the chain: the leaf names the host and carries our key */
    ACME_ORDER_DONE,       /* success; the TXT record has been withdrawn */
    ACME_ORDER_FAILED,     /* failure (or cancel); the TXT record has been withdrawn */
};

/* acme_order_state_name returns a static lower-case name for s ("poll_authz"). */
const char *acme_order_state_name(enum acme_order_state s);

struct acme_order_opts {
    uv_loop_t *loop;
    struct acme_client *client;           /* started (its start callback reported 0); borrowed */
    const struct crypto_key *account_key; /* the client's account key, for dns-01; borrowed */
    struct committer *commit;    /* group commit of the TXT records into the store; borrowed */
    struct dns_checker *dns;     /* propagation checks; borrowed */
    const char *validation_zone; /* normalized; copied */
    const char *host;            /* normalized, "*." allowed; copied */
    int propagate_interval_ms;   /* 0: ACME_ORDER_PROPAGATE_INTERVAL_MS */
    int propagate_tries;         /* 0: ACME_ORDER_PROPAGATE_TRIES */
    int poll_interval_ms;        /* without Retry-After; 0: ACME_ORDER_POLL_INTERVAL_MS */
    int poll_max_ms;             /* per poll phase; 0: ACME_ORDER_POLL_MAX_MS */
};

/*
 * struct acme_order_result is what the callback sees; every pointer lives
 * until the callback returns. On success chain_pem is the PEM chain (leaf
 * first) and key_pem the certificate's private key (PKCS#8 PEM): the caller
 * stores them and must never log key_pem.
 */
struct acme_order_result {
    const char *host;
    int error;                       /* 0, or a code (CF_EACME, CF_ETIMEOUT, CF_ECANCELED...) */
    const char *error_text;          /* "" on success; else names the host, the state and the URL */
    enum acme_order_state failed_in; /* the state that failed (ACME_ORDER_DONE on success) */
    const char *order_url;           /* "" before newOrder answered */
    const char *chain_pem;           /* NULL unless error is 0 */
    size_t chain_len;
    const char *key_pem; /* NULL unless error is 0 */
    size_t key_len;
};

/* acme_order_cb runs once per started job, on the loop thread, never inside acme_order_start. */
typedef void (*acme_order_cb)(void *arg, const struct acme_order_result *r);

struct acme_order_job;

/*
 * acme_order_start starts the pipeline for o->host and, when out is not
 * NULL, sets *out to the job (valid until the callback returns, for
 * acme_order_cancel). Returns 0, or CF_EUSAGE (a missing option, a client
 * without a directory) or CF_EHOSTNAME (no challenge target for the host),
 * in which case cb never runs.
 */
int acme_order_start(struct acme_order_job **out, const struct acme_order_opts *o, acme_order_cb cb,
                     void *arg);

/*
 * acme_order_cancel asks the job to stop: the callback runs with
 * CF_ECANCELED, after the TXT record is withdrawn, once the request or
 * check in flight has come back (on the next loop turn if it was waiting on
 * its timer); never inside this call. No-op once the job finished.
 */
void acme_order_cancel(struct acme_order_job *j);

/* acme_order_state_of returns the job's current state. */
enum acme_order_state acme_order_state_of(const struct acme_order_job *j);

#endif
