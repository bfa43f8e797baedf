/*
 * proto.h - the ACME (RFC 8555) message layer: JWS requests, the directory,
 * problem documents, orders, authorizations and challenges, External
 * Account Binding, key authorizations and the dns-01 digest, and the nonce
 * pool. Pure functions over bytes: no I/O, so every parser of the CA's
 * (untrusted) JSON is unit tested and fuzzed here.
 */
#ifndef CF_ENGINE_ACME_PROTO_H
#define CF_ENGINE_ACME_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"

#define ACME_URL_MAX 1024
#define ACME_TOKEN_MAX 256
#define ACME_NONCE_MAX 256
#define ACME_DETAIL_MAX 512
#define ACME_MAX_SUBPROBLEMS 8
#define ACME_MAX_AUTHZ 100
/* The largest JSON document accepted from a CA (a directory, order, authz...). */
#define ACME_JSON_MAX (256 * 1024)

/* RFC 8555 §7.1.1 (and RFC 9773 §4 for renewalInfo). */
struct acme_directory {
    char new_nonce[ACME_URL_MAX];
    char new_account[ACME_URL_MAX];
    char new_order[ACME_URL_MAX];
    char revoke_cert[ACME_URL_MAX];
    char key_change[ACME_URL_MAX];
    char renewal_info[ACME_URL_MAX]; /* "" when the CA has no ARI */
    char terms_of_service[ACME_URL_MAX];
    int external_account_required;
};

/*
 * acme_directory_parse parses a directory object. Returns 0, or CF_EPARSE
 * with *err naming the problem (not JSON, too large, a required URL missing
 * or not https).
 */
int acme_directory_parse(struct acme_directory *d, const char *json, size_t len, const char **err);

/* RFC 8555 §6.7 (RFC 7807): a problem document. */
struct acme_problem {
    char type[128]; /* "urn:ietf:params:acme:error:badNonce" */
    char detail[ACME_DETAIL_MAX];
    int status;
    size_t nsub;
    struct {
        char type[128];
        char detail[256];
        char identifier[256]; /* the identifier's value */
    } sub[ACME_MAX_SUBPROBLEMS];
};

/* acme_problem_parse parses a problem document. Returns 0 or CF_EPARSE. */
int acme_problem_parse(struct acme_problem *p, const char *json, size_t len);

/* acme_problem_is returns 1 when p's type is urn:ietf:params:acme:error:<name>. */
int acme_problem_is(const struct acme_problem *p, const char *name);

/*
 * acme_problem_is_paused returns 1 when p is Let's Encrypt's refusal of a
 * newOrder for an (account, identifier) pair it paused after failed
 * validations ("automatic pausing of zombie clients", December 2024). The
 * rule: LE sends no problem type of its own for it (Boulder answers with
 * rateLimited, 429; some deployments were seen with unauthorized, 403), so
 * the detail text decides, whatever the type: it begins "Your account is
 * temporarily prevented from requesting certificates for <names>" and ends
 * with a link to the unpause portal (".../sfe/v1/unpause?jwt=..."). Either
 * marker counts (the detail may be cut at ACME_DETAIL_MAX). Only a person
 * can unpause, on that portal: retrying is pointless until then.
 */
int acme_problem_is_paused(const struct acme_problem *p);

/* Object states (RFC 8555 §7.1.6). */
enum acme_status {
    ACME_ST_UNKNOWN = 0,
    ACME_ST_PENDING,
    ACME_ST_READY,
    ACME_ST_PROCESSING,
    ACME_ST_VALID,
    ACME_ST_INVALID,
    ACME_ST_EXPIRED,
    ACME_ST_DEACTIVATED,
    ACME_ST_REVOKED,
};
const char *acme_status_name(enum acme_status s);

/* RFC 8555 §7.1.3: an order. */
struct acme_order {
    enum acme_status status;
    size_t nauthz;
    char authz[ACME_MAX_AUTHZ][ACME_URL_MAX];
    char finalize[ACME_URL_MAX];
    char certificate[ACME_URL_MAX]; /* "" until valid */
    int64_t expires;                /* Unix seconds; 0 when the CA gave none */
    int has_error;
    struct acme_problem error;
};
int acme_order_parse(struct acme_order *o, const char *json, size_t len, const char **err);

/* RFC 8555 §7.1.4: an authorization, with its dns-01 challenge (§8.4). */
struct acme_authz {
    enum acme_status status;
    char identifier[256]; /* the DNS name, without "*." */
    int wildcard;
    int has_dns01;
    enum acme_status dns01_status;
    char dns01_url[ACME_URL_MAX];
    char dns01_token[ACME_TOKEN_MAX];
    int has_error; /* the dns-01 challenge's error, when it failed */
    struct acme_problem error;
};
int acme_authz_parse(struct acme_authz *a, const char *json, size_t len, const char **err);

/*
 * RFC 9773 §4.2: a RenewalInfo object, the CA's suggested renewal window
 * for one certificate. Smaller than the other documents: a window and a URL.
 */
#define ACME_RENEWAL_INFO_MAX ((size_t)16 * 1024)
struct acme_renewal_info {
    int64_t start, end;                 /* suggestedWindow, Unix seconds; end > start */
    char explanation_url[ACME_URL_MAX]; /* "" when absent */
};

/*
 * acme_renewal_info_parse parses a RenewalInfo object. Returns 0, or
 * CF_EPARSE with *err naming the problem: larger than
 * ACME_RENEWAL_INFO_MAX, not a JSON object, suggestedWindow missing, start
 * or end missing or not RFC 3339, end not after start (§4.2: such an object
 * is invalid and is treated as no answer at all), or an explanationURL that
 * is not an http(s) URL shorter than ACME_URL_MAX.
 */
int acme_renewal_info_parse(struct acme_renewal_info *ri, const char *json, size_t len,
                            const char **err);

/*
 * acme_ari_cert_id_ok returns 1 when id looks like an RFC 9773 §4.1
 * certificate identifier: two non-empty base64url parts joined by one '.',
 * at most ACME_ARI_CERT_ID_MAX octets; 0 otherwise. It goes into a URL
 * path and a newOrder payload, so nothing else is let through.
 */
#define ACME_ARI_CERT_ID_MAX 512
int acme_ari_cert_id_ok(const char *id);

/*
 * acme_jws_build appends a flattened JWS (RFC 8555 §6.2, RFC 7515 §7.2.2)
 * for url to out: protected header {alg, nonce, url} and either kid (the
 * account URL) or, when kid is NULL, jwk (new-account, key change). payload
 * is the JSON text, or "" for POST-as-GET (§6.3). Returns 0 or a crypto code.
 */
int acme_jws_build(struct buf *out, const struct crypto_key *key, const char *kid,
                   const char *nonce, const char *url, const char *payload);

/*
 * acme_eab_build appends the externalAccountBinding JWS of RFC 8555 §7.3.4:
 * HS256 over the account key's JWK, with the key ID and the new-account URL,
 * signed with the MAC key (raw bytes, decoded from the CA's base64url).
 */
int acme_eab_build(struct buf *out, const struct crypto_key *account_key, const char *kid,
                   const void *mac_key, size_t mac_key_len, const char *url);

/*
 * acme_key_change_payload appends the inner JWS of a key rollover (RFC 8555
 * §7.3.5): signed by the new key with its jwk, payload {account, oldKey}.
 */
int acme_key_change_payload(struct buf *out, const struct crypto_key *new_key,
                            const struct crypto_key *old_key, const char *account_url,
                            const char *url);

/*
 * acme_dns01_value appends the TXT value for a dns-01 challenge (RFC 8555
 * §8.4): base64url(SHA-256(token "." thumbprint(account key))).
 */
int acme_dns01_value(struct buf *out, const char *token, const struct crypto_key *account_key);

/*
 * struct acme_nonce_pool keeps the Replay-Nonce values of responses for the
 * next requests (RFC 8555 §7.2: new-nonce is rate limited, every response
 * carries a fresh nonce). Caller-owned; a bounded ring: the oldest is
 * dropped when full.
 */
#define ACME_NONCE_POOL 256
struct acme_nonce_pool {
    size_t head, count;
    char nonce[ACME_NONCE_POOL][ACME_NONCE_MAX];
};
void acme_nonce_pool_init(struct acme_nonce_pool *p);
/* acme_nonce_put stores a nonce if it is well formed (base64url, RFC 8555 §6.5.1). */
void acme_nonce_put(struct acme_nonce_pool *p, const char *nonce);
/* acme_nonce_take copies the newest nonce into out (ACME_NONCE_MAX); returns 0 or CF_ENOTFOUND. */
int acme_nonce_take(struct acme_nonce_pool *p, char *out);

#endif
