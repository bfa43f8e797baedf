/*
 * proto.c - the ACME (RFC 8555) message layer.
 */
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "proto.h"
#include "timeutil.h"

static json_t *load(const char *json, size_t len, const char **err)
{
    json_error_t jerr;
    if (len > ACME_JSON_MAX) {
        *err = "document larger than 256 KiB";
        return NULL;
    }
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        *err = "not valid JSON";
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *err = "not a JSON object";
        return NULL;
    }
    return root;
}

/* get_str copies a string member (absent: "") into dst; -1 if not a string or too long. */
static int get_str(json_t *o, const char *key, char *dst, size_t n)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= n ||
        strlen(json_string_value(v)) != json_string_length(v))
        return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* get_url is get_str for URLs, which must be https (DESIGN.md §6). */
static int get_url(json_t *o, const char *key, char *dst, int required)
{
    if (get_str(o, key, dst, ACME_URL_MAX) != 0)
        return -1;
    if (!dst[0])
        return required ? -1 : 0;
    return strncmp(dst, "https://", 8) == 0 ? 0 : -1;
}

int acme_directory_parse(struct acme_directory *d, const char *json, size_t len, const char **err)
{
    memset(d, 0, sizeof(*d));
    json_t *root = load(json, len, err);
    if (!root)
        return CF_EPARSE;
    int rc = CF_EPARSE;
    /* RFC 8555 §7.1.1: newNonce, newAccount, newOrder are what issuance needs. */
    if (get_url(root, "newNonce", d->new_nonce, 1) ||
        get_url(root, "newAccount", d->new_account, 1) ||
        get_url(root, "newOrder", d->new_order, 1)) {
        *err = "newNonce, newAccount or newOrder missing or not an https URL";
        goto out;
    }
    if (get_url(root, "revokeCert", d->revoke_cert, 0) ||
        get_url(root, "keyChange", d->key_change, 0) ||
        get_url(root, "renewalInfo", d->renewal_info, 0)) {
        *err = "revokeCert, keyChange or renewalInfo is not an https URL";
        goto out;
    }
    json_t *meta = json_object_get(root, "meta");
    if (meta && json_is_object(meta)) {
        if (get_str(meta, "termsOfService", d->terms_of_service, ACME_URL_MAX) != 0) {
            *err = "meta.termsOfService is not a string";
            goto out;
        }
        d->external_account_required =
            json_is_true(json_object_get(meta, "externalAccountRequired"));
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static void problem_from(struct acme_problem *p, json_t *o)
{
    memset(p, 0, sizeof(*p));
    if (get_str(o, "type", p->type, sizeof(p->type)) != 0)
        p->type[0] = '\0';
    if (get_str(o, "detail", p->detail, sizeof(p->detail)) != 0) {
        /* An over-long detail is cut, not refused: it is for people. */
        json_t *v = json_object_get(o, "detail");
        if (json_is_string(v))
            str_copy(p->detail, sizeof(p->detail), json_string_value(v));
    }
    json_t *st = json_object_get(o, "status");
    if (json_is_integer(st) && json_integer_value(st) >= 100 && json_integer_value(st) < 600)
        p->status = (int)json_integer_value(st);
    json_t *subs = json_object_get(o, "subproblems");
    size_t i;
    json_t *s;
    if (json_is_array(subs)) {
        json_array_foreach(subs, i, s)
        {
            if (p->nsub == ACME_MAX_SUBPROBLEMS || !json_is_object(s))
                break;
            json_t *v = json_object_get(s, "type");
            str_copy(p->sub[p->nsub].type, sizeof(p->sub[0].type),
                     json_is_string(v) ? json_string_value(v) : "");
            v = json_object_get(s, "detail");
            str_copy(p->sub[p->nsub].detail, sizeof(p->sub[0].detail),
                     json_is_string(v) ? json_string_value(v) : "");
            json_t *id = json_object_get(s, "identifier");
            v = json_is_object(id) ? json_object_get(id, "value") : NULL;
            str_copy(p->sub[p->nsub].identifier, sizeof(p->sub[0].identifier),
                     json_is_string(v) ? json_string_value(v) : "");
            p->nsub++;
        }
    }
}

int acme_problem_parse(struct acme_problem *p, const char *json, size_t len)
{
    const char *err;
    json_t *root = load(json, len, &err);
    memset(p, 0, sizeof(*p));
    if (!root)
        return CF_EPARSE;
    problem_from(p, root);
    json_decref(root);
    return p->type[0] ? 0 : CF_EPARSE;
}

int acme_problem_is(const struct acme_problem *p, const char *name)
{
    static const char prefix[] = "urn:ietf:params:acme:error:";
    return strncmp(p->type, prefix, sizeof(prefix) - 1) == 0 &&
           strcmp(p->type + sizeof(prefix) - 1, name) == 0;
}

int acme_problem_is_paused(const struct acme_problem *p)
{
    /* See proto.h for where this rule comes from. */
    return strstr(p->detail, "temporarily prevented from requesting certificates") != NULL ||
           strstr(p->detail, "/sfe/v1/unpause") != NULL;
}

static const char *const status_names[] = {"unknown",    "pending",     "ready",
                                           "processing", "valid",       "invalid",
                                           "expired",    "deactivated", "revoked"};

const char *acme_status_name(enum acme_status s)
{
    return (size_t)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s] : "?";
}

static enum acme_status parse_status(json_t *o)
{
    json_t *v = json_object_get(o, "status");
    if (!json_is_string(v))
        return ACME_ST_UNKNOWN;
    for (size_t i = 1; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (strcmp(json_string_value(v), status_names[i]) == 0)
            return (enum acme_status)i;
    return ACME_ST_UNKNOWN;
}

/*
 * order_clear empties *o field by field: the struct is over 100 KiB (room
 * for ACME_MAX_AUTHZ URLs), and zeroing all of it for every order a CA
 * sends cost more than parsing the order. The authz slots past nauthz are
 * left as they are; nothing reads them.
 */
static void order_clear(struct acme_order *o)
{
    o->status = ACME_ST_UNKNOWN;
    o->nauthz = 0;
    o->finalize[0] = '\0';
    o->certificate[0] = '\0';
    o->expires = 0;
    o->has_error = 0;
    memset(&o->error, 0, sizeof(o->error));
}

int acme_order_parse(struct acme_order *o, const char *json, size_t len, const char **err)
{
    order_clear(o);
    json_t *root = load(json, len, err);
    if (!root)
        return CF_EPARSE;
    int rc = CF_EPARSE;
    o->status = parse_status(root);
    if (o->status == ACME_ST_UNKNOWN) {
        *err = "order without a known status";
        goto out;
    }
    json_t *authz = json_object_get(root, "authorizations");
    size_t i;
    json_t *a;
    if (!json_is_array(authz) || json_array_size(authz) == 0 ||
        json_array_size(authz) > ACME_MAX_AUTHZ) {
        *err = "order without 1 to 100 authorizations";
        goto out;
    }
    json_array_foreach(authz, i, a)
    {
        if (!json_is_string(a) || json_string_length(a) >= ACME_URL_MAX ||
            strncmp(json_string_value(a), "https://", 8) != 0) {
            *err = "an authorization URL is not an https URL";
            goto out;
        }
        str_copy(o->authz[o->nauthz++], ACME_URL_MAX, json_string_value(a));
    }
    if (get_url(root, "finalize", o->finalize, 1) ||
        get_url(root, "certificate", o->certificate, 0)) {
        *err = "finalize missing, or finalize/certificate not an https URL";
        goto out;
    }
    if (o->status == ACME_ST_VALID && !o->certificate[0]) {
        *err = "valid order without a certificate URL";
        goto out;
    }
    /* RFC 8555 §7.1.3: expires is an RFC 3339 date (required for pending and valid orders). */
    json_t *ex = json_object_get(root, "expires");
    if (ex && (!json_is_string(ex) || cf_time_parse(&o->expires, json_string_value(ex)) != 0)) {
        *err = "expires is not an RFC 3339 date";
        goto out;
    }
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        problem_from(&o->error, e);
        o->has_error = 1;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int acme_authz_parse(struct acme_authz *az, const char *json, size_t len, const char **err)
{
    memset(az, 0, sizeof(*az));
    json_t *root = load(json, len, err);
    if (!root)
        return CF_EPARSE;
    int rc = CF_EPARSE;
    az->status = parse_status(root);
    json_t *id = json_object_get(root, "identifier");
    json_t *type = json_is_object(id) ? json_object_get(id, "type") : NULL;
    if (az->status == ACME_ST_UNKNOWN || !json_is_string(type) ||
        strcmp(json_string_value(type), "dns") != 0 ||
        get_str(id, "value", az->identifier, sizeof(az->identifier)) != 0 || !az->identifier[0]) {
        *err = "authorization without a status or a dns identifier";
        goto out;
    }
    az->wildcard = json_is_true(json_object_get(root, "wildcard"));
    json_t *chs = json_object_get(root, "challenges");
    size_t i;
    json_t *ch;
    if (!json_is_array(chs)) {
        *err = "authorization without challenges";
        goto out;
    }
    json_array_foreach(chs, i, ch)
    {
        json_t *t = json_is_object(ch) ? json_object_get(ch, "type") : NULL;
        if (!json_is_string(t) || strcmp(json_string_value(t), "dns-01") != 0)
            continue;
        if (get_url(ch, "url", az->dns01_url, 1) ||
            get_str(ch, "token", az->dns01_token, sizeof(az->dns01_token)) != 0 ||
            !az->dns01_token[0]) {
            *err = "dns-01 challenge without an https url or a token";
            goto out;
        }
        /* RFC 8555 §8.1: the token is base64url; it goes into a TXT digest. */
        for (const char *p = az->dns01_token; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
                *err = "dns-01 token is not base64url";
                goto out;
            }
        az->dns01_status = parse_status(ch);
        json_t *e = json_object_get(ch, "error");
        if (json_is_object(e)) {
            problem_from(&az->error, e);
            az->has_error = 1;
        }
        az->has_dns01 = 1;
        break;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* get_time reads a required RFC 3339 string member into *out; -1 if absent or malformed. */
static int get_time(json_t *o, const char *key, int64_t *out)
{
    char s[64];
    if (get_str(o, key, s, sizeof(s)) != 0 || !s[0])
        return -1;
    return cf_time_parse(out, s) == 0 ? 0 : -1;
}

int acme_renewal_info_parse(struct acme_renewal_info *ri, const char *json, size_t len,
                            const char **err)
{
    memset(ri, 0, sizeof(*ri));
    if (len > ACME_RENEWAL_INFO_MAX) {
        *err = "renewalInfo larger than 16 KiB";
        return CF_EPARSE;
    }
    json_t *root = load(json, len, err);
    if (!root)
        return CF_EPARSE;
    int rc = CF_EPARSE;
    /* RFC 9773 §4.2: suggestedWindow {start, end} is required; explanationURL optional. */
    json_t *w = json_object_get(root, "suggestedWindow");
    if (!json_is_object(w)) {
        *err = "renewalInfo without a suggestedWindow object";
        goto out;
    }
    if (get_time(w, "start", &ri->start) || get_time(w, "end", &ri->end)) {
        *err = "suggestedWindow start or end missing or not an RFC 3339 date";
        goto out;
    }
    /* §4.2: an end equal to or before the start makes the object invalid. */
    if (ri->end <= ri->start) {
        *err = "suggestedWindow ends before it starts";
        goto out;
    }
    if (get_str(root, "explanationURL", ri->explanation_url, sizeof(ri->explanation_url)) != 0) {
        *err = "explanationURL is not a string or too long";
        goto out;
    }
    if (ri->explanation_url[0] && strncmp(ri->explanation_url, "https://", 8) != 0 &&
        strncmp(ri->explanation_url, "http://", 7) != 0) {
        *err = "explanationURL is not an http(s) URL";
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc)
        memset(ri, 0, sizeof(*ri));
    return rc;
}

int acme_ari_cert_id_ok(const char *id)
{
    size_t n = 0, dots = 0, part = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (n >= ACME_ARI_CERT_ID_MAX)
            return 0;
        if (c == '.') {
            if (part == 0 || ++dots > 1)
                return 0;
            part = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        part++;
    }
    return dots == 1 && part > 0;
}

/* sign_flattened appends {"protected","payload","signature"} for a protected header. */
static int sign_flattened(struct buf *out, const struct crypto_key *key, const char *protected_json,
                          const char *payload, size_t payload_len)
{
    struct buf input, sig;
    buf_init(&input);
    buf_init(&sig);
    crypto_b64url_encode(&input, protected_json, strlen(protected_json));
    size_t prot_len = input.len;
    buf_putc(&input, '.');
    crypto_b64url_encode(&input, payload, payload_len);
    int rc = crypto_jws_sign(key, &sig, input.data, input.len);
    if (rc == 0) {
        buf_puts(out, "{\"protected\":\"");
        buf_append(out, input.data, prot_len);
        buf_puts(out, "\",\"payload\":\"");
        buf_append(out, input.data + prot_len + 1, input.len - prot_len - 1);
        buf_puts(out, "\",\"signature\":\"");
        buf_append(out, sig.data, sig.len);
        buf_puts(out, "\"}");
    }
    buf_cleanup(&input);
    buf_cleanup(&sig);
    return rc;
}

int acme_jws_build(struct buf *out, const struct crypto_key *key, const char *kid,
                   const char *nonce, const char *url, const char *payload)
{
    struct buf prot;
    buf_init(&prot);
    buf_printf(&prot, "{\"alg\":\"%s\",", crypto_jws_alg(key));
    /* RFC 8555 §6.2: kid for an existing account, jwk for new-account and key change. */
    if (kid) {
        buf_puts(&prot, "\"kid\":");
        buf_json_string(&prot, kid, strlen(kid));
    } else {
        buf_puts(&prot, "\"jwk\":");
        crypto_jwk_public(key, &prot);
    }
    buf_puts(&prot, ",\"nonce\":");
    buf_json_string(&prot, nonce, strlen(nonce));
    buf_puts(&prot, ",\"url\":");
    buf_json_string(&prot, url, strlen(url));
    buf_putc(&prot, '}');
    int rc = sign_flattened(out, key, prot.data, payload, strlen(payload));
    buf_cleanup(&prot);
    return rc;
}

int acme_eab_build(struct buf *out, const struct crypto_key *account_key, const char *kid,
                   const void *mac_key, size_t mac_key_len, const char *url)
{
    struct buf prot, jwk, input;
    unsigned char mac[CRYPTO_SHA256_LEN];
    buf_init(&prot);
    buf_init(&jwk);
    buf_init(&input);
    /* RFC 8555 §7.3.4: HS256, kid = the CA's key identifier, url = newAccount; no nonce. */
    buf_puts(&prot, "{\"alg\":\"HS256\",\"kid\":");
    buf_json_string(&prot, kid, strlen(kid));
    buf_puts(&prot, ",\"url\":");
    buf_json_string(&prot, url, strlen(url));
    buf_putc(&prot, '}');
    crypto_jwk_public(account_key, &jwk);
    crypto_b64url_encode(&input, prot.data, prot.len);
    size_t prot_len = input.len;
    buf_putc(&input, '.');
    crypto_b64url_encode(&input, jwk.data, jwk.len);
    int rc = crypto_hmac_sha256(mac, mac_key, mac_key_len, input.data, input.len);
    if (rc == 0) {
        buf_puts(out, "{\"protected\":\"");
        buf_append(out, input.data, prot_len);
        buf_puts(out, "\",\"payload\":\"");
        buf_append(out, input.data + prot_len + 1, input.len - prot_len - 1);
        buf_puts(out, "\",\"signature\":\"");
        crypto_b64url_encode(out, mac, sizeof(mac));
        buf_puts(out, "\"}");
    }
    buf_cleanup(&prot);
    buf_cleanup(&jwk);
    buf_cleanup(&input);
    return rc;
}

int acme_key_change_payload(struct buf *out, const struct crypto_key *new_key,
                            const struct crypto_key *old_key, const char *account_url,
                            const char *url)
{
    struct buf prot, payload;
    buf_init(&prot);
    buf_init(&payload);
    /* RFC 8555 §7.3.5: the inner JWS has jwk (the new key) and url, but no nonce. */
    buf_printf(&prot, "{\"alg\":\"%s\",\"jwk\":", crypto_jws_alg(new_key));
    crypto_jwk_public(new_key, &prot);
    buf_puts(&prot, ",\"url\":");
    buf_json_string(&prot, url, strlen(url));
    buf_putc(&prot, '}');
    buf_puts(&payload, "{\"account\":");
    buf_json_string(&payload, account_url, strlen(account_url));
    buf_puts(&payload, ",\"oldKey\":");
    crypto_jwk_public(old_key, &payload);
    buf_putc(&payload, '}');
    int rc = sign_flattened(out, new_key, prot.data, payload.data, payload.len);
    buf_cleanup(&prot);
    buf_cleanup(&payload);
    return rc;
}

int acme_dns01_value(struct buf *out, const char *token, const struct crypto_key *account_key)
{
    struct buf ka;
    unsigned char md[CRYPTO_SHA256_LEN];
    buf_init(&ka);
    buf_puts(&ka, token);
    buf_putc(&ka, '.');
    int rc = crypto_jwk_thumbprint(account_key, &ka);
    if (rc == 0)
        rc = crypto_sha256(md, ka.data, ka.len);
    if (rc == 0)
        crypto_b64url_encode(out, md, sizeof(md));
    buf_cleanup(&ka);
    return rc;
}

void acme_nonce_pool_init(struct acme_nonce_pool *p)
{
    p->head = p->count = 0;
}

void acme_nonce_put(struct acme_nonce_pool *p, const char *nonce)
{
    size_t n = strlen(nonce);
    if (n == 0 || n >= ACME_NONCE_MAX)
        return;
    for (size_t i = 0; i < n; i++) {
        char c = nonce[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return;
    }
    memcpy(p->nonce[p->head], nonce, n + 1);
    p->head = (p->head + 1) % ACME_NONCE_POOL;
    if (p->count < ACME_NONCE_POOL)
        p->count++;
}

int acme_nonce_take(struct acme_nonce_pool *p, char *out)
{
    if (p->count == 0)
        return CF_ENOTFOUND;
    p->head = (p->head + ACME_NONCE_POOL - 1) % ACME_NONCE_POOL;
    p->count--;
    memcpy(out, p->nonce[p->head], strlen(p->nonce[p->head]) + 1);
    return 0;
}
