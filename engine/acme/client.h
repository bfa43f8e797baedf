/*
 * client.h - the session with one ACME CA on the libuv loop (RFC 8555).
 *
 * An acme_client fetches the directory, registers (or finds) the account,
 * and then signs every request with the account key and its URL (kid). It
 * owns the nonce pool of the CA: nonces come from the Replay-Nonce of every
 * response, and newNonce is asked (HEAD) only when the pool is empty, with
 * at most one such request in flight. A badNonce rejection is retried with
 * a fresh nonce, a bounded number of times, without the caller seeing it.
 *
 * Every request to the CA (the directory, newNonce, renewalInfo, every
 * signed POST and its retries) passes through the client's pacer
 * (scheduler/pacer.h): one token bucket per endpoint class of the CA's
 * rate-limit profile (new-nonce, new-order, renewal-info, every other
 * endpoint). A request whose class has no token left waits in its class's
 * queue, first in first out, and goes when the bucket refills (a uv timer);
 * it is never dropped, and its callback runs as for any other request. A
 * 429 answer holds its class until its Retry-After (newOrder excepted: see
 * ACME_CLIENT_PACE_FREEZE_MAX_MS).
 *
 * The account key and the http_client are borrowed: both must outlive the
 * acme_client. After a successful acme_client_key_change the new key is
 * borrowed the same way (it must outlive the client), and the old one only
 * until the key change's callback has run. Persisting the account URL and key is the caller's job
 * (acme_client_account_url after start).
 */
#ifndef CF_ENGINE_ACME_CLIENT_H
#define CF_ENGINE_ACME_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "crypto.h"
#include "http.h"
#include "proto.h"
#include "ratelimit.h"

/* badNonce retries per request when the options say 0. */
#define ACME_CLIENT_BAD_NONCE_RETRIES 5
/* Upper bound on the retries the options may ask for. */
#define ACME_CLIENT_BAD_NONCE_RETRIES_MAX 100
/*
 * A 429 answer (RFC 8555 §6.6) from any endpoint but newOrder holds its
 * endpoint class in the pacer until the answer's Retry-After (a second
 * without one), at most this long: request rates refill within seconds, and
 * a longer wait is the job's to decide (its own Retry-After handling). At
 * newOrder a 429 is mostly one of the order limits (per account, domain or
 * set of names), which the caller's rate-limit buckets freeze instead.
 */
#define ACME_CLIENT_PACE_FREEZE_MAX_MS 60000

struct acme_client_opts {
    const char *directory_url;            /* https URL of the directory; copied */
    const char *contact_email;            /* NULL or "": no contact; copied */
    const struct crypto_key *account_key; /* borrowed; outlives the client */
    const char *account_url;              /* NULL or "": register at start; copied */
    int max_bad_nonce_retries;            /* 0: ACME_CLIENT_BAD_NONCE_RETRIES */
    /*
     * External Account Binding (RFC 8555 §7.3.4), for CAs that require one:
     * the key ID and the MAC key (raw bytes, copied) the CA handed out. A
     * new account then carries the binding; without one, a directory whose
     * meta says externalAccountRequired fails the start with CF_ECONFIG.
     */
    const char *eab_kid;
    const void *eab_key;
    size_t eab_key_len;
    /*
     * The CA's rate-limit profile, whose per-endpoint request rates the
     * pacer keeps (copied; its other limits are the caller's business).
     * NULL: rl_profile_for_directory(directory_url), i.e. Let's Encrypt's
     * for its directories and none (no pacing, the reactive hold only) for
     * any other CA.
     */
    const struct rl_profile *pace;
    /* Arrival jitter the pacer absorbs (pacer.h); 0: RL_PACE_JITTER_MS, negative: none. */
    int pace_jitter_ms;
};

/*
 * struct acme_client_reply is what a post callback sees. Every pointer lives
 * until the callback returns: copy what you keep.
 */
struct acme_client_reply {
    int status; /* HTTP status; 0 when no response arrived */
    /*
     * 0 for a 2xx/3xx response; the transport's code (CF_ETIMEOUT, CF_EHTTP,
     * CF_ETOOBIG, CF_ECANCELED); CF_ERATELIMIT for a rateLimited problem;
     * CF_EACME for any other 4xx/5xx.
     */
    int error;
    const char *error_text;             /* "" when error is 0 */
    const struct acme_problem *problem; /* NULL unless the body was a problem document */
    const char *body;                   /* NUL-terminated; "" when empty */
    size_t body_len;
    const char *content_type; /* NULL when absent */
    const char *location;     /* NULL when absent */
    int64_t retry_after;      /* absolute Unix seconds; 0 when absent */
    size_t nlinks;
    const struct http_link *links;
    int bad_nonce_retries; /* how often this request was retried */
};

/* acme_client_post_cb runs once per accepted acme_client_post, on the loop thread. */
typedef void (*acme_client_post_cb)(void *arg, const struct acme_client_reply *r);

/*
 * acme_client_start_cb runs once per acme_client_start: err 0 (detail
 * "created" or "existing" or "known") or an error code with the CA's
 * problem detail or the transport's text.
 */
typedef void (*acme_client_start_cb)(void *arg, int err, const char *detail);

struct acme_client_stats {
    uint64_t posts;                 /* signed POSTs sent, retries included */
    uint64_t bad_nonce_retries;     /* badNonce rejections retried */
    uint64_t nonce_heads;           /* HEAD newNonce requests completed */
    uint64_t nonces_from_responses; /* Replay-Nonce values taken from other responses */
    uint64_t paced;                 /* requests that waited in the pacer (a token or a nonce) */
    uint64_t pace_wait_us;          /* their waits, added up */
    uint64_t rate_limited; /* 429 answers (each holds its endpoint class, newOrder excepted) */
};

struct acme_client;

/*
 * acme_client_new makes a client for the CA of o->directory_url into *out
 * (freed with acme_client_free). Returns 0 or CF_EUSAGE (no directory URL,
 * no account key, no loop, or a pace profile rl_profile_check refuses).
 */
int acme_client_new(struct acme_client **out, uv_loop_t *loop, struct http_client *http,
                    const struct acme_client_opts *o);

/*
 * acme_client_free drops the client. Callbacks of requests still in flight
 * or waiting in the pacer never run; the memory of those in flight goes
 * when the http_client completes or cancels them, that of the pacer's timer
 * on the loop's next turn (run the loop before uv_loop_close). Callable from
 * the client's own callbacks. Accepts NULL.
 */
void acme_client_free(struct acme_client *c);

/*
 * acme_client_start GETs the directory and, unless the account URL is
 * known, registers the account (RFC 8555 §7.3). cb runs once, from the
 * loop. Returns 0, or CF_EUSAGE when already started.
 */
int acme_client_start(struct acme_client *c, acme_client_start_cb cb, void *arg);

/*
 * acme_client_post sends payload_json (copied; "" for POST-as-GET, RFC 8555
 * §6.3) to url, signed with the account key and URL (kid). cb runs once,
 * from the loop, never from inside this call. Returns 0, or CF_EUSAGE
 * before the start callback reported success.
 */
int acme_client_post(struct acme_client *c, const char *url, const char *payload_json,
                     acme_client_post_cb cb, void *arg);

/*
 * acme_client_key_change rolls the account over to new_key (RFC 8555
 * §7.3.5): it POSTs to the directory's keyChange URL an outer JWS signed by
 * the current key (kid) whose payload is the inner JWS signed by new_key
 * (jwk, url, {account, oldKey}). A badNonce retry rebuilds both layers.
 *
 * new_key is borrowed: it must outlive the client whatever the outcome is,
 * or at least until cb has run and reported a failure. When the CA answers
 * 200, the client signs every request sent after that with new_key (before
 * cb runs); the account URL does not change. Any other answer leaves the
 * current key in place and cb sees the error (e.g. CF_EACME with the
 * problem, 409 conflict when new_key is already an account's key; CF_EPROTO
 * for a 2xx other than 200). Requests already sent with the old key when the
 * CA switches may be refused: have none in flight meanwhile.
 *
 * cb runs once, from the loop, never from inside this call. Returns 0, or
 * CF_EUSAGE before the start callback reported success, with new_key NULL
 * or the current key, while another key change is in flight, or when the
 * directory has no keyChange URL.
 */
int acme_client_key_change(struct acme_client *c, const struct crypto_key *new_key,
                           acme_client_post_cb cb, void *arg);

/*
 * struct acme_op is one request of the client in flight (opaque). A caller
 * that may have to stop waiting for a request (a deadline, a cancel) keeps
 * the handle acme_client_post_op gives and passes it to
 * acme_client_abandon.
 */
struct acme_op;

/*
 * acme_client_post_op is acme_client_post that also sets *op (when op is
 * not NULL and the call returns 0) to the request's handle. The handle is
 * valid until cb runs or acme_client_abandon is called, whichever is first.
 */
int acme_client_post_op(struct acme_client *c, struct acme_op **op, const char *url,
                        const char *payload_json, acme_client_post_cb cb, void *arg);

/*
 * acme_client_abandon gives up on op: its callback never runs. A request
 * still waiting for a nonce is dropped unsent; one already sent is left to
 * finish in the http_client (bounded by its per-request timeout), its
 * answer's nonce kept and the rest discarded. Call it only before op's
 * callback ran, with op from acme_client_post_op on c.
 */
void acme_client_abandon(struct acme_client *c, struct acme_op *op);

/* RFC 9773 §4.3: Retry-After of a renewalInfo answer is kept within [1 minute, 1 day]. */
#define ACME_ARI_RETRY_MIN_S 60
#define ACME_ARI_RETRY_MAX_S 86400

/*
 * struct acme_renewal_reply is what a renewal_info callback sees; pointers
 * live until the callback returns.
 */
struct acme_renewal_reply {
    int status; /* HTTP status; 0 when no response arrived */
    /*
     * 0 with info set; the transport's code (CF_ETIMEOUT, CF_EHTTP...);
     * CF_EACME for a 4xx/5xx (problem set when the body was one); CF_EPARSE
     * for a 200 whose RenewalInfo is invalid (RFC 9773 §4.2: to be treated
     * as no answer).
     */
    int error;
    const char *error_text;               /* "" when error is 0 */
    const struct acme_problem *problem;   /* NULL unless the body was a problem document */
    const struct acme_renewal_info *info; /* NULL unless error is 0 */
    /*
     * Retry-After as absolute Unix seconds, kept within now + [1 min, 1 day]
     * (RFC 9773 §4.3); 0 when the CA sent none (§4.3.3: the caller then
     * picks its own interval).
     */
    int64_t retry_after;
};

/* acme_renewal_info_cb runs once per accepted acme_client_renewal_info, on the loop thread. */
typedef void (*acme_renewal_info_cb)(void *arg, const struct acme_renewal_reply *r);

/*
 * acme_client_renewal_info asks the CA for the suggested renewal window of
 * the certificate cert_id (RFC 9773 §4.1, as crypto_ari_cert_id makes it):
 * an unauthenticated GET of <renewalInfo>/<cert_id> (§4.2). Only the
 * directory is needed, not the account. cb runs once, from the loop, never
 * from inside this call (and never after acme_client_free). Returns 0,
 * CF_EUSAGE before the directory arrived or for a cert_id that
 * acme_ari_cert_id_ok refuses, or CF_ENOTFOUND when the CA's directory has
 * no renewalInfo (no ARI at this CA).
 */
int acme_client_renewal_info(struct acme_client *c, const char *cert_id, acme_renewal_info_cb cb,
                             void *arg);

/* acme_client_account_url returns the account URL (owned by c), or NULL before it is known. */
const char *acme_client_account_url(const struct acme_client *c);

/* acme_client_directory returns the parsed directory, or NULL before it arrived. */
const struct acme_directory *acme_client_directory(const struct acme_client *c);

/* acme_client_get_stats copies the client's counters into *out. */
void acme_client_get_stats(const struct acme_client *c, struct acme_client_stats *out);

/*
 * Poll pacing. RFC 8555 §7.5.1 and §7.4 have the client poll an
 * authorization (after its challenge response) and an order (after
 * finalize) until they leave pending or processing, after the CA's
 * Retry-After when there is one; without one the schedule is the client's.
 * How soon this CA is done is learnt from the first poll of each phase, for
 * all the jobs of a client: acme_client_first_poll_ms gives the delay
 * before a first poll (at most cap_ms, the job's poll interval;
 * ACME_POLL_FIRST_START_MS until something was learnt) and
 * acme_client_first_poll_seen reports whether the first poll after
 * delay_ms found the object done. A first poll that finds it done brings
 * the next ones a tenth sooner; one that does not doubles the delay, so
 * about one first poll in eight comes too early (and the job polls again
 * with its usual backoff). A CA slower than cap_ms gets the cap after the
 * first few misses of a run.
 */
#define ACME_POLL_FIRST_START_MS 100
#define ACME_POLL_FIRST_MIN_MS 20
enum acme_poll_kind {
    ACME_POLL_AUTHZ = 0, /* an authorization after its challenge response */
    ACME_POLL_ORDER,     /* an order after finalize, or not ready yet */
    ACME_POLL__COUNT,
};
int acme_client_first_poll_ms(const struct acme_client *c, enum acme_poll_kind kind, int cap_ms);
void acme_client_first_poll_seen(struct acme_client *c, enum acme_poll_kind kind, int delay_ms,
                                 int done);

#endif
