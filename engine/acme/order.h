/*
 * order.h - the per-host issuance pipeline (RFC 8555 §7.4) on the libuv
 * loop: one hostname (a wildcard allowed), one order, one certificate.
 *
 * A struct acme_order_job walks an explicit state machine: newOrder, the
 * authorizations, the dns-01 TXT record published in the store (served by
 * `certfleet serve-dns`), its propagation to every authoritative address of
 * the validation zone, the challenge response, the polls, finalization with
 * a fresh key (ECDSA P-256 unless told otherwise; RSA keys are made on the
 * libuv thread pool), the download and a check of the chain. The TXT record
 * is withdrawn again however the order ends.
 *
 * Persistence and resume: the order URL is made durable (group commit, see
 * store_batch_put_pending) before the job takes its next step, and the
 * fresh key before finalize is POSTed, so a run killed at any point leaves
 * what the next run needs to resume the same order (opts.resume) instead of
 * creating another. The pending entry is deleted when the job ends with a
 * certificate or a verdict that makes the order useless (result.terminal),
 * in the group commit that the callback's own store changes join: storing
 * the certificate and forgetting the order are one transaction. A job that
 * ends on a transient error (timeout, deadline, cancel, 5xx, rate limit)
 * keeps the entry for the next run.
 *
 * Failures of the CA or the network (5xx, 503, timeouts, transport errors,
 * a badNonce the client gave up on) are retried per step with bounded
 * backoff; 429 rateLimited ends the job at once with the CA's Retry-After.
 * An overall deadline bounds the job whatever it waits on.
 *
 * The job owns itself once started: the caller's callback runs exactly once
 * and the job frees itself after it. The acme_client, dns_checker, committer
 * (and its store) and account key are borrowed and must outlive every job
 * started on them.
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
#include "rfc2136.h"
#include "store.h"

/* Defaults for the zeros of struct acme_order_opts. */
#define ACME_ORDER_PROPAGATE_INTERVAL_MS 200
#define ACME_ORDER_PROPAGATE_TRIES 150
#define ACME_ORDER_POLL_INTERVAL_MS 500
#define ACME_ORDER_POLL_MAX_MS 120000
/* A Retry-After further away than this is clamped: the poll budget still bounds the wait. */
#define ACME_ORDER_RETRY_AFTER_MAX_MS 30000
/* The whole job, when opts.deadline_ms is 0: from acme_order_start. */
#define ACME_ORDER_DEADLINE_MS ((int64_t)10 * 60 * 1000)
/*
 * Tries per step on a transient failure (5xx, transport error, timeout,
 * exhausted badNonce retries), waiting ACME_ORDER_BACKOFF_MS, then twice
 * that, and so on in between; a Retry-After replaces the wait, up to
 * ACME_ORDER_RETRY_AFTER_MAX_MS.
 */
#define ACME_ORDER_STEP_TRIES 4
#define ACME_ORDER_BACKOFF_MS 1000

/* The states of a job; transitions are logged as "acme_order_state" events. */
enum acme_order_state {
    ACME_ORDER_RESUME,      /* POST-as-GET the stored pending order: go on from its status */
    ACME_ORDER_NEW_ORDER,   /* POST newOrder; the order URL comes from Location */
    ACME_ORDER_STORE_ORDER, /* the order URL goes into the store (group commit) */
    ACME_ORDER_AUTHZ,       /* POST-as-GET the next authorization; valid ones are skipped */
    ACME_ORDER_PUBLISH,     /* the dns-01 TXT value goes into the store (group commit) */
    ACME_ORDER_PROPAGATE,   /* dns_check_txt until every server has it; timer between tries */
    ACME_ORDER_RESPOND,     /* POST {} to the challenge URL: the CA may validate now */
    ACME_ORDER_POLL_AUTHZ,  /* POST-as-GET the authorization until valid or invalid */
    ACME_ORDER_READY,       /* POST-as-GET the order until it is ready (all authzs valid) */
    ACME_ORDER_KEYGEN,      /* a fresh key: inline for EC, on the thread pool for RSA */
    ACME_ORDER_STORE_KEY,   /* the key joins the pending order in the store (group commit) */
    ACME_ORDER_FINALIZE,    /* CSR, POST finalize */
    ACME_ORDER_POLL_ORDER,  /* POST-as-GET the order until valid (certificate URL set) */
    ACME_ORDER_DOWNLOAD,    /* POST-as-GET the certificate URL */
    ACME_ORDER_VERIFY,      /* parse the chain: the leaf names the host and carries our key */
    ACME_ORDER_DONE,        /* success; the TXT record has been withdrawn */
    ACME_ORDER_FAILED,      /* failure (or cancel); the TXT record has been withdrawn */
    ACME_ORDER__COUNT
};

/* acme_order_state_name returns a static lower-case name for s ("poll_authz"). */
const char *acme_order_state_name(enum acme_order_state s);

struct acme_order_opts {
    uv_loop_t *loop;
    struct acme_client *client;           /* started (its start callback reported 0); borrowed */
    const struct crypto_key *account_key; /* the client's account key, for dns-01; borrowed */
    /*
     * Group commit of the TXT records and the pending order into the store;
     * pending orders are read from the store its batches write to. Borrowed.
     */
    struct committer *commit;
    struct dns_checker *dns; /* propagation checks; borrowed */
    /*
     * Where TXT records go: NULL publishes them in the store (the embedded
     * server answers from there); else RFC 2136 UPDATEs to the primary of
     * the validation zone (borrowed), and the step goes on once it answered.
     */
    struct rfc2136 *rfc2136;
    /*
     * At most so many newOrder requests between "sent" and "order URL
     * durable" across the jobs sharing the gate (NULL: no bound). A crash
     * loses only orders whose URL was not stored yet, so with a gate of 1
     * a killed run costs the CA at most one orphaned order.
     */
    struct acme_order_gate *gate;
    const char *validation_zone; /* normalized; copied */
    const char *host;            /* normalized, "*." allowed; copied */
    int propagate_interval_ms;   /* 0: ACME_ORDER_PROPAGATE_INTERVAL_MS */
    int propagate_tries;         /* 0: ACME_ORDER_PROPAGATE_TRIES */
    int poll_interval_ms;        /* without Retry-After; 0: ACME_ORDER_POLL_INTERVAL_MS */
    int poll_max_ms;             /* per poll phase; 0: ACME_ORDER_POLL_MAX_MS */
    /*
     * Look for the host's pending order first (store_get_pending) and go on
     * with it from its status: pending → the authorizations; ready →
     * finalize; processing → poll; valid → download with the stored key.
     * An order that is invalid, expired, unknown to the CA (404) or valid
     * without a stored key is dropped and a new one created.
     */
    int resume;
    /*
     * When the job gives up, absolute wall-clock milliseconds (cf_wall_ms);
     * 0: ACME_ORDER_DEADLINE_MS after acme_order_start. Passing it ends the
     * job with CF_ETIMEOUT whatever it waits on: a request in flight is
     * abandoned (acme_client_abandon; it stays in the http_client until its
     * answer or the per-request timeout, http_opts.timeout_ms, 30 s by
     * default, whichever comes first), a DNS check, commit or key generation
     * in flight is left to finish without the job.
     */
    int64_t deadline_ms;
    enum crypto_key_type key_type; /* of the certificate's key; 0 is CRYPTO_KEY_EC_P256 */
    /*
     * NULL or "": a new certificate. Otherwise the RFC 9773 §4.1 certificate
     * identifier of the certificate this order replaces (copied): newOrder
     * carries it as "replaces" (§5). When the CA answers alreadyReplaced,
     * newOrder is sent once more without it.
     */
    const char *replaces;
};

/*
 * struct acme_order_result is what the callback sees; every pointer lives
 * until the callback returns. On success chain_pem is the PEM chain (leaf
 * first) and key_pem the certificate's private key (PKCS#8 PEM): the caller
 * stores them and must never log key_pem.
 */
struct acme_order_result {
    const char *host;
    /*
     * 0, or a code: CF_EACME (the CA refused or declared something invalid),
     * CF_ERATELIMIT (429 rateLimited: freeze the bucket until retry_after),
     * CF_ETIMEOUT (a poll phase, the propagation or the deadline ran out),
     * CF_ECANCELED, CF_EHTTP (transport, after the retries), CF_EPROTO...
     */
    int error;
    const char *error_text;          /* "" on success; else names the host, the state and the URL */
    enum acme_order_state failed_in; /* the state that failed (ACME_ORDER_DONE on success) */
    const char *order_url;           /* "" before newOrder answered */
    const char *chain_pem;           /* NULL unless error is 0 */
    size_t chain_len;
    const char *key_pem; /* NULL unless error is 0 */
    size_t key_len;
    int64_t retry_after; /* the CA's Retry-After of the final answer, Unix s; 0: none */
    /*
     * The CA paused this (account, host) pair after failed validations (Let's
     * Encrypt, see acme_problem_is_paused): stop the host, a person must
     * unpause it. error is then CF_EACME, not CF_ERATELIMIT, even though LE
     * sends a rateLimited problem: no rate-limit bucket should freeze.
     */
    int ca_paused;
    const char *problem_type; /* the CA's problem type of the failure ("urn:..."); "" none */
    /*
     * 1 when trying this order again is pointless: the CA declared the
     * order, an authorization or a challenge invalid, refused a request
     * with a 4xx other than rate limiting, paused the host, or the
     * certificate did not match the host or the key. The pending order has
     * been dropped then. 0 on success and for transient failures.
     */
    int terminal;
    int resumed; /* the job went on with a stored pending order */
    /*
     * On success, the leaf of chain_pem as the job's check parsed it (NULL
     * otherwise), so the caller need not parse the chain again.
     */
    const struct crypto_cert_info *leaf;
    /* Wall time the job spent in each state (for the run's per-stage percentiles). */
    const uint64_t *stage_ns; /* ACME_ORDER__COUNT entries */
};

/*
 * acme_order_cb runs once per started job, on the loop thread, never inside
 * acme_order_start. Store changes the callback queues into the committer's
 * batch land in the same transaction as the job's own last changes (the
 * TXT withdrawal, the pending order's deletion).
 */
typedef void (*acme_order_cb)(void *arg, const struct acme_order_result *r);

struct acme_order_job;

/*
 * acme_order_start starts the pipeline for o->host and, when out is not
 * NULL, sets *out to the job (valid until the callback returns, for
 * acme_order_cancel). Returns 0, or CF_EUSAGE (a missing option, a client
 * without a directory, an unknown key type, a replaces value that is not a
 * certificate identifier) or CF_EHOSTNAME (no challenge target for the
 * host), in which case cb never runs.
 */
int acme_order_start(struct acme_order_job **out, const struct acme_order_opts *o, acme_order_cb cb,
                     void *arg);

/*
 * acme_order_cancel asks the job to stop: the callback runs with
 * CF_ECANCELED on the next loop turn, never inside this call, after the TXT
 * record is withdrawn; a request in flight is abandoned. The pending order
 * is kept (a later run may resume it). No-op once the job finished.
 */
void acme_order_cancel(struct acme_order_job *j);

/*
 * acme_order_gate_new makes a gate for opts.gate letting max (>= 1) jobs
 * create orders at once; the others wait in line, in order. Free it with
 * acme_order_gate_free (accepts NULL) once no job uses it.
 */
struct acme_order_gate *acme_order_gate_new(int max);
void acme_order_gate_free(struct acme_order_gate *g);

/* acme_order_state_of returns the job's current state. */
enum acme_order_state acme_order_state_of(const struct acme_order_job *j);

#endif
