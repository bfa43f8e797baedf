/*
 * x509.c - CSRs and certificates: what an ACME client sends and receives,
 * and the signing half that the tests and the bench's mock CA need.
 *
 * Extensions are built from their structures (GENERAL_NAMES,
 * BASIC_CONSTRAINTS, ...) and X509_add1_ext_i2d rather than from config
 * strings: the two libraries agree on those, and a hostname never passes
 * through a parser that gives commas a meaning.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_internal.h"
#include "err.h"

#define DAYS_MAX 36500
#define SECONDS_PER_DAY 86400L
/* X.509 encodes v3 as the integer 2 (RFC 5280 §4.1.2.1). */
#define CERT_VERSION_3 2
/* PKCS#10 knows only version 0 (RFC 2986 §4.1). */
#define CSR_VERSION_1 0
/* The random serial of self-signed certificates, in octets. */
#define SELF_SERIAL_LEN 16

/*
 * check_names checks the names for a CSR or certificate: at least one, at
 * most CRYPTO_CERT_MAX_NAMES, each 1..CRYPTO_NAME_MAX printable ASCII
 * characters without spaces (an IA5String dNSName, RFC 5280 §4.2.1.6).
 */
static int check_names(const char *const *names, size_t n)
{
    if (n == 0)
        return CF_EUSAGE;
    if (n > CRYPTO_CERT_MAX_NAMES)
        return CF_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        size_t len = names[i] ? strnlen(names[i], CRYPTO_NAME_MAX + 1) : 0;
        if (len == 0 || len > CRYPTO_NAME_MAX)
            return CF_EHOSTNAME;
        for (size_t j = 0; j < len; j++)
            if ((unsigned char)names[i][j] <= 0x20 || (unsigned char)names[i][j] >= 0x7f)
                return CF_EHOSTNAME;
    }
    return 0;
}

/* cn_fits returns 1 when the first name can be the subject CN (ub-common-name, RFC 5280 §A.1). */
static int cn_fits(const char *first)
{
    return strlen(first) <= CRYPTO_CN_MAX;
}

/*
 * subject_name_new returns a new X509_NAME holding CN=first, or an empty
 * name when first is too long for a CN (it is then only in the
 * subjectAltName, as Let's Encrypt does). NULL when out of memory.
 */
static X509_NAME *subject_name_new(const char *first)
{
    X509_NAME *name = X509_NAME_new();

    if (name && cn_fits(first) &&
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_ASC, (const unsigned char *)first,
                                   -1, -1, 0) != 1) {
        X509_NAME_free(name);
        name = NULL;
    }
    return name;
}

/* san_new returns new GENERAL_NAMES with the n names as dNSNames, or NULL. */
static GENERAL_NAMES *san_new(const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen = NULL;
    ASN1_IA5STRING *ia5 = NULL;

    if (!gens)
        goto out_free_gens;
    for (size_t i = 0; i < n; i++) {
        gen = GENERAL_NAME_new();
        ia5 = ASN1_IA5STRING_new();
        if (!gen || !ia5 || ASN1_STRING_set(ia5, names[i], (int)strlen(names[i])) != 1)
            goto out_free_gens;
        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
        ia5 = NULL;
        if (sk_GENERAL_NAME_push(gens, gen) == 0)
            goto out_free_gens;
        gen = NULL;
    }
    return gens;
out_free_gens:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(gens);
    return NULL;
}

/*
 * ia5_copy copies a dNSName into dst (CRYPTO_NAME_MAX + 1 bytes). Returns 0,
 * or CF_EPARSE for an empty or overlong name or one with bytes that are not
 * printable ASCII (an embedded NUL included).
 */
static int ia5_copy(char *dst, const ASN1_STRING *s)
{
    const unsigned char *data = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s);

    if (len < 1 || len > CRYPTO_NAME_MAX)
        return CF_EPARSE;
    for (int i = 0; i < len; i++)
        if (data[i] <= 0x20 || data[i] >= 0x7f)
            return CF_EPARSE;
    memcpy(dst, data, (size_t)len);
    dst[len] = '\0';
    return 0;
}

/*
 * dns_names_copy copies the dNSNames of gens into names, setting *n. Other
 * kinds of names are skipped. Returns 0, CF_ETOOBIG above
 * CRYPTO_CERT_MAX_NAMES, or CF_EPARSE.
 */
static int dns_names_copy(char (*names)[CRYPTO_NAME_MAX + 1], size_t *n, const GENERAL_NAMES *gens)
{
    int ret = 0;

    *n = 0;
    for (size_t i = 0; gens && i < (size_t)sk_GENERAL_NAME_num(gens); i++) {
        int type;
        void *value = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
        if (type != GEN_DNS)
            continue;
        if (*n == CRYPTO_CERT_MAX_NAMES)
            return CF_ETOOBIG;
        ret = ia5_copy(names[*n], value);
        if (ret < 0)
            return ret;
        (*n)++;
    }
    return 0;
}

/* add_ext adds the extension nid with the value structure to x. Returns 0 or CF_ECRYPTO. */
static int add_ext(X509 *x, int nid, void *value, int critical)
{
    if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1)
        return crypto_fail("X509_add1_ext_i2d", CF_ECRYPTO);
    return 0;
}

/*
 * add_usage adds basicConstraints (critical), keyUsage (critical) and, for
 * a leaf, extKeyUsage serverAuth: what the Baseline Requirements ask of a
 * TLS server certificate and its CA. Returns 0 or CF_ECRYPTO.
 */
static int add_usage(X509 *x, int is_ca, int is_rsa)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    STACK_OF(ASN1_OBJECT) *eku = NULL;
    int ret = 0;

    if (!bc || !ku) {
        ret = crypto_fail("add_usage", CF_ECRYPTO);
        goto out_free_exts;
    }
    /* ASN.1 TRUE is 0xff; 0 is the DEFAULT FALSE and is left out. */
    bc->ca = is_ca ? 0xff : 0;
    /* RFC 5280 §4.2.1.3: 0 digitalSignature, 2 keyEncipherment, 5 keyCertSign, 6 cRLSign. */
    if (ASN1_BIT_STRING_set_bit(ku, 0, 1) != 1 ||
        (is_ca &&
         (ASN1_BIT_STRING_set_bit(ku, 5, 1) != 1 || ASN1_BIT_STRING_set_bit(ku, 6, 1) != 1)) ||
        (!is_ca && is_rsa && ASN1_BIT_STRING_set_bit(ku, 2, 1) != 1)) {
        ret = crypto_fail("add_usage", CF_ECRYPTO);
        goto out_free_exts;
    }
    ret = add_ext(x, NID_basic_constraints, bc, 1);
    if (ret < 0)
        goto out_free_exts;
    ret = add_ext(x, NID_key_usage, ku, 1);
    if (ret < 0 || is_ca)
        goto out_free_exts;
    eku = sk_ASN1_OBJECT_new_null();
    if (!eku || sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) == 0) {
        ret = crypto_fail("add_usage", CF_ECRYPTO);
        goto out_free_exts;
    }
    ret = add_ext(x, NID_ext_key_usage, eku, 0);
out_free_exts:
    /* OBJ_nid2obj's objects are static: freeing the stack alone is right. */
    sk_ASN1_OBJECT_free(eku);
    ASN1_BIT_STRING_free(ku);
    BASIC_CONSTRAINTS_free(bc);
    return ret;
}

/*
 * add_key_ids adds the subjectKeyIdentifier ski (CRYPTO_KEY_ID_LEN octets)
 * and the authorityKeyIdentifier with keyIdentifier aki (RFC 5280
 * §4.2.1.1-2). Returns 0 or CF_ECRYPTO.
 */
static int add_key_ids(X509 *x, const unsigned char *ski, const unsigned char *aki, size_t aki_len)
{
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    int ret = 0;

    if (!skid || !akid || !(akid->keyid = ASN1_OCTET_STRING_new()) ||
        ASN1_OCTET_STRING_set(skid, ski, CRYPTO_KEY_ID_LEN) != 1 ||
        ASN1_OCTET_STRING_set(akid->keyid, aki, (int)aki_len) != 1) {
        ret = crypto_fail("add_key_ids", CF_ECRYPTO);
        goto out_free_ids;
    }
    ret = add_ext(x, NID_subject_key_identifier, skid, 0);
    if (ret < 0)
        goto out_free_ids;
    ret = add_ext(x, NID_authority_key_identifier, akid, 0);
out_free_ids:
    AUTHORITY_KEYID_free(akid);
    ASN1_OCTET_STRING_free(skid);
    return ret;
}

/* x509_to_pem appends x as PEM to out. Returns 0 or CF_ECRYPTO. */
static int x509_to_pem(X509 *x, struct buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    int ret = 0;

    if (!bio || PEM_write_bio_X509(bio, x) != 1 || (len = BIO_get_mem_data(bio, &data)) <= 0 ||
        !data) {
        ret = crypto_fail("PEM_write_bio_X509", CF_ECRYPTO);
        goto out_free_bio;
    }
    buf_append(out, data, (size_t)len);
out_free_bio:
    BIO_free(bio);
    return ret;
}

/* struct cert_params is what cert_sign puts into a certificate. */
struct cert_params {
    /* The key certified, and the key that signs (the same when self-signed). */
    const struct crypto_key *subject;
    const struct crypto_key *signer;
    /* The issuer's subject; NULL for a self-signed certificate. */
    X509_NAME *issuer_name;
    /* The authorityKeyIdentifier's keyIdentifier. */
    const unsigned char *aki;
    size_t aki_len;
    ASN1_INTEGER *serial;
    const char *const *names;
    size_t n_names;
    int days;
    int is_ca;
};

/* cert_sign makes the certificate cp describes, signs it (SHA-256) and appends it as PEM to out. */
static int cert_sign(struct buf *out, const struct cert_params *cp)
{
    X509 *x = X509_new();
    X509_NAME *subject = subject_name_new(cp->names[0]);
    GENERAL_NAMES *gens = san_new(cp->names, cp->n_names);
    int ret = 0;

    if (!x || !subject || !gens || X509_set_version(x, CERT_VERSION_3) != 1 ||
        X509_set_serialNumber(x, cp->serial) != 1 || X509_set_subject_name(x, subject) != 1 ||
        X509_set_issuer_name(x, cp->issuer_name ? cp->issuer_name : subject) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), cp->days * SECONDS_PER_DAY) ||
        X509_set_pubkey(x, cp->subject->pkey) != 1) {
        ret = crypto_fail("cert_sign", CF_ECRYPTO);
        goto out_free_cert;
    }
    ret = add_usage(
        x, cp->is_ca,
        !(cp->subject->type == CRYPTO_KEY_EC_P256 || cp->subject->type == CRYPTO_KEY_EC_P384));
    if (ret < 0)
        goto out_free_cert;
    ret = add_key_ids(x, cp->subject->key_id, cp->aki, cp->aki_len);
    if (ret < 0)
        goto out_free_cert;
    /* RFC 5280 §4.2.1.6: with an empty subject the subjectAltName is critical. */
    ret = add_ext(x, NID_subject_alt_name, gens, !cn_fits(cp->names[0]));
    if (ret < 0)
        goto out_free_cert;
    if (X509_sign(x, cp->signer->pkey, EVP_sha256()) <= 0) {
        ret = crypto_fail("X509_sign", CF_ECRYPTO);
        goto out_free_cert;
    }
    ret = x509_to_pem(x, out);
out_free_cert:
    GENERAL_NAMES_free(gens);
    X509_NAME_free(subject);
    X509_free(x);
    return ret;
}

/*
 * chain_link returns 1 when issuer can be the certificate that certified
 * subject: subject's issuer name is issuer's subject name (RFC 5280
 * §4.1.2.4) and, when both carry one, subject's authority key identifier is
 * issuer's subject key identifier (§4.2.1.1). Signatures are not checked:
 * this refuses a chain that was not put together from one issuer's
 * certificates, it does not make a verifier of a parser.
 */
static int chain_link(X509 *subject, X509 *issuer)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(subject);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    int ok = X509_NAME_cmp(X509_get_issuer_name(subject), X509_get_subject_name(issuer)) == 0 &&
             (!aki || !ski || ASN1_OCTET_STRING_cmp(aki, ski) == 0);

    /* Decoding the extensions may queue errors for bad ones: the answer is what counts. */
    ERR_clear_error();
    return ok;
}

/*
 * chain_read parses the PEM chain at pem (len bytes): *leaf gets the first
 * certificate (the caller frees it), *n_certs the count. The count of
 * "BEGIN CERTIFICATE" lines bounds the work before anything is decoded, and
 * every such block must parse. Each certificate must be issued by the next
 * (chain_link), as RFC 8555 §7.4.2 delivers the chain: a leaf followed by a
 * certificate that did not issue it is a broken chain. Returns 0,
 * CF_ETOOBIG or CF_EPARSE.
 */
static int chain_read(const char *pem, size_t len, X509 **leaf, size_t *n_certs)
{
    static const char marker[] = "-----BEGIN CERTIFICATE-----";
    const size_t marker_len = sizeof(marker) - 1;
    BIO *bio = NULL;
    X509 *prev = NULL; /* the certificate before this one; owned unless it is *leaf */
    size_t count = 0;
    int ret = 0;

    *leaf = NULL;
    if (len > CRYPTO_CHAIN_MAX_BYTES) {
        ret = CF_ETOOBIG;
        goto out_free_bio;
    }
    if (!pem || len == 0) {
        ret = CF_EPARSE;
        goto out_free_bio;
    }
    for (const char *p = pem, *end = pem + len;
         (p = memmem(p, (size_t)(end - p), marker, marker_len)) != NULL; p += marker_len) {
        if (++count > CRYPTO_CHAIN_MAX_CERTS) {
            ret = CF_ETOOBIG;
            goto out_free_bio;
        }
    }
    if (count == 0) {
        ret = CF_EPARSE;
        goto out_free_bio;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        ret = crypto_fail("chain_read", CF_ECRYPTO);
        goto out_free_bio;
    }
    for (size_t i = 0; i < count; i++) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!x) {
            ret = crypto_fail("PEM_read_bio_X509", CF_EPARSE);
            goto out_free_bio;
        }
        if (prev && !chain_link(prev, x)) {
            X509_free(x);
            ret = crypto_fail("chain_link", CF_EPARSE);
            goto out_free_bio;
        }
        if (i == 0)
            *leaf = x;
        else if (prev != *leaf)
            X509_free(prev);
        prev = x;
    }
    if (n_certs)
        *n_certs = count;
out_free_bio:
    BIO_free(bio);
    if (prev != *leaf)
        X509_free(prev);
    if (ret < 0) {
        X509_free(*leaf);
        *leaf = NULL;
    }
    return ret;
}

/*
 * asn1_time_unix converts t to Unix seconds. BoringSSL has no
 * ASN1_TIME_to_tm, so both libraries go through ASN1_TIME_diff from the
 * epoch. Returns 0 or CF_EPARSE.
 */
static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days, secs, ret = 0;

    if (!epoch || ASN1_TIME_diff(&days, &secs, epoch, t) != 1) {
        ret = crypto_fail("asn1_time_unix", CF_EPARSE);
        goto out_free_epoch;
    }
    *out = (int64_t)days * SECONDS_PER_DAY + secs;
out_free_epoch:
    ASN1_TIME_free(epoch);
    return ret;
}

/* cert_info_fill fills *info from x. Returns 0, CF_ETOOBIG or CF_EPARSE. */
static int cert_info_fill(X509 *x, struct crypto_cert_info *info)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *der = NULL;
    const unsigned char *p, *val;
    const ASN1_OCTET_STRING *akid;
    GENERAL_NAMES *gens = NULL;
    size_t len;
    int der_len, crit = -1, ret = 0;

    memset(info, 0, sizeof(*info));

    /* RFC 9773 §4.1 wants the serial's DER content octets, leading zero and all. */
    der_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
    p = der;
    if (der_len <= 0 || crypto_der_read(&p, der + der_len, CRYPTO_DER_INTEGER, &val, &len) < 0 ||
        len == 0) {
        ret = crypto_fail("serial", CF_EPARSE);
        goto out_free_info;
    }
    if (len > CRYPTO_SERIAL_MAX) {
        ret = CF_ETOOBIG;
        goto out_free_info;
    }
    memcpy(info->serial, val, len);
    info->serial_len = len;
    for (size_t i = 0; i < len; i++) {
        info->serial_hex[2 * i] = hex[val[i] >> 4];
        info->serial_hex[2 * i + 1] = hex[val[i] & 15];
    }

    akid = X509_get0_authority_key_id(x);
    if (akid) {
        if (ASN1_STRING_length(akid) > CRYPTO_AKI_MAX) {
            ret = CF_ETOOBIG;
            goto out_free_info;
        }
        info->aki_len = (size_t)ASN1_STRING_length(akid);
        memcpy(info->aki, ASN1_STRING_get0_data(akid), info->aki_len);
    }

    ret = asn1_time_unix(X509_get0_notBefore(x), &info->not_before);
    if (ret < 0)
        goto out_free_info;
    ret = asn1_time_unix(X509_get0_notAfter(x), &info->not_after);
    if (ret < 0)
        goto out_free_info;

    /* crit stays -1 when there is no subjectAltName; other values mean a bad one. */
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (!gens && crit != -1) {
        ret = crypto_fail("subjectAltName", CF_EPARSE);
        goto out_free_info;
    }
    ret = dns_names_copy(info->names, &info->n_names, gens);
out_free_info:
    GENERAL_NAMES_free(gens);
    OPENSSL_free(der);
    ERR_clear_error();
    return ret;
}

/*
 * cert_has_key sets *equal to whether x's SubjectPublicKeyInfo is key's,
 * byte for byte, which both libraries encode the same way. Returns 0 or
 * CF_ECRYPTO.
 */
static int cert_has_key(X509 *x, const struct crypto_key *key, int *equal)
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    int ret = 0;

    if (len <= 0) {
        ret = crypto_fail("i2d_X509_PUBKEY", CF_ECRYPTO);
        goto out_free_der;
    }
    *equal = (size_t)len == key->spki.len && memcmp(der, key->spki.data, key->spki.len) == 0;
out_free_der:
    OPENSSL_free(der);
    return ret;
}

int crypto_csr_new(const struct crypto_key *key, struct buf *out_der, const char *const *names,
                   size_t n)
{
    X509_REQ *req = NULL;
    X509_NAME *subject = NULL;
    GENERAL_NAMES *gens = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ext = NULL;
    unsigned char *der = NULL;
    int len, ret;

    ret = check_names(names, n);
    if (ret < 0)
        goto out_free_req;
    if (!key->has_private) {
        ret = CF_EUSAGE;
        goto out_free_req;
    }
    req = X509_REQ_new();
    subject = subject_name_new(names[0]);
    gens = san_new(names, n);
    exts = sk_X509_EXTENSION_new_null();
    if (!req || !subject || !gens || !exts || X509_REQ_set_version(req, CSR_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, key->pkey) != 1) {
        ret = crypto_fail("csr_new", CF_ECRYPTO);
        goto out_free_req;
    }
    /* RFC 8555 §7.4: the names go in a subjectAltName the CA copies. */
    ext = X509V3_EXT_i2d(NID_subject_alt_name, !cn_fits(names[0]), gens);
    if (!ext || sk_X509_EXTENSION_push(exts, ext) == 0) {
        ret = crypto_fail("csr_new", CF_ECRYPTO);
        goto out_free_req;
    }
    ext = NULL;
    if (X509_REQ_add_extensions(req, exts) != 1 ||
        X509_REQ_sign(req, key->pkey, EVP_sha256()) <= 0) {
        ret = crypto_fail("csr_sign", CF_ECRYPTO);
        goto out_free_req;
    }
    len = i2d_X509_REQ(req, &der);
    if (len <= 0) {
        ret = crypto_fail("i2d_X509_REQ", CF_ECRYPTO);
        goto out_free_req;
    }
    buf_append(out_der, der, (size_t)len);
out_free_req:
    OPENSSL_free(der);
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return ret;
}

int crypto_cert_parse_chain(const char *pem, size_t len, struct crypto_cert_info *leaf,
                            size_t *n_certs)
{
    X509 *x = NULL;
    int ret;

    ret = chain_read(pem, len, &x, n_certs);
    if (ret < 0 || !leaf)
        goto out_free_cert;
    ret = cert_info_fill(x, leaf);
out_free_cert:
    X509_free(x);
    return ret;
}

int crypto_cert_matches_key(const char *pem, size_t len, const struct crypto_key *key)
{
    X509 *x = NULL;
    int equal = 0, ret;

    ret = chain_read(pem, len, &x, NULL);
    if (ret < 0)
        goto out_free_cert;
    ret = cert_has_key(x, key, &equal);
    if (ret == 0 && !equal)
        ret = CF_ECRYPTO;
out_free_cert:
    X509_free(x);
    return ret;
}

int crypto_cert_parse_chain_key(const char *pem, size_t len, const struct crypto_key *key,
                                struct crypto_cert_info *leaf, size_t *n_certs, int *key_matches)
{
    X509 *x = NULL;
    int ret;

    *key_matches = 0;
    ret = chain_read(pem, len, &x, n_certs);
    if (ret < 0)
        goto out_free_cert;
    if (leaf) {
        ret = cert_info_fill(x, leaf);
        if (ret < 0)
            goto out_free_cert;
    }
    ret = cert_has_key(x, key, key_matches);
out_free_cert:
    X509_free(x);
    return ret;
}

int crypto_ari_cert_id(const struct crypto_cert_info *info, struct buf *out)
{
    if (info->aki_len == 0 || info->serial_len == 0)
        return CF_EPARSE;
    /* RFC 9773 §4.1: base64url(keyIdentifier) "." base64url(serial), no padding. */
    crypto_b64url_encode(out, info->aki, info->aki_len);
    buf_putc(out, '.');
    crypto_b64url_encode(out, info->serial, info->serial_len);
    return 0;
}

int crypto_self_signed_cert(const struct crypto_key *key, struct buf *out_pem,
                            const char *const *names, size_t n, int days)
{
    unsigned char rnd[SELF_SERIAL_LEN];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    struct cert_params cp;
    int ret;

    ret = check_names(names, n);
    if (ret < 0)
        goto out_free_serial;
    if (!key->has_private || days < 1 || days > DAYS_MAX) {
        ret = CF_EUSAGE;
        goto out_free_serial;
    }
    ret = crypto_random(rnd, sizeof(rnd));
    if (ret < 0)
        goto out_free_serial;
    /* RFC 5280 §4.1.2.2: positive and nonzero; the set bit keeps all 16 octets. */
    rnd[0] = (unsigned char)((rnd[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
    serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (!serial) {
        ret = crypto_fail("self_signed_serial", CF_ECRYPTO);
        goto out_free_serial;
    }
    cp = (struct cert_params){
        .subject = key,
        .signer = key,
        .issuer_name = NULL,
        .aki = key->key_id,
        .aki_len = CRYPTO_KEY_ID_LEN,
        .serial = serial,
        .names = names,
        .n_names = n,
        .days = days,
        .is_ca = 1,
    };
    ret = cert_sign(out_pem, &cp);
out_free_serial:
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ret;
}

int crypto_issue_from_csr(const struct crypto_key *issuer_key, struct buf *out_pem,
                          const char *issuer_pem, size_t issuer_pem_len, const void *csr_der,
                          size_t csr_len, int days, uint64_t serial)
{
    const unsigned char *p = csr_der;
    X509_REQ *req = NULL;
    EVP_PKEY *pkey = NULL;
    struct crypto_key *subject = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    GENERAL_NAMES *gens = NULL;
    char(*names)[CRYPTO_NAME_MAX + 1] = NULL;
    const char **name_ptrs = NULL;
    size_t n_names = 0;
    X509 *issuer = NULL;
    const ASN1_OCTET_STRING *issuer_skid;
    ASN1_INTEGER *sn = NULL;
    struct cert_params cp;
    int crit = -1, equal = 0, ret = 0;

    if (!issuer_key->has_private || days < 1 || days > DAYS_MAX || serial == 0) {
        ret = CF_EUSAGE;
        goto out_free_all;
    }
    if (csr_len > CRYPTO_CSR_MAX_BYTES) {
        ret = CF_ETOOBIG;
        goto out_free_all;
    }

    /* The CSR: it must parse whole and carry its own valid signature (RFC 2986 §3). */
    req = csr_der ? d2i_X509_REQ(NULL, &p, (long)csr_len) : NULL;
    if (!req || p != (const unsigned char *)csr_der + csr_len) {
        ret = crypto_fail("d2i_X509_REQ", CF_EPARSE);
        goto out_free_all;
    }
    pkey = X509_REQ_get_pubkey(req);
    if (!pkey || X509_REQ_verify(req, pkey) != 1) {
        ret = crypto_fail("X509_REQ_verify", CF_EPARSE);
        goto out_free_all;
    }
    /* crypto_key_wrap takes pkey, and refuses key types we do not issue for. */
    ret = crypto_key_wrap(&subject, pkey, 0);
    pkey = NULL;
    if (ret < 0) {
        ret = CF_EPARSE;
        goto out_free_all;
    }
    exts = X509_REQ_get_extensions(req);
    gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL) : NULL;
    names = xcalloc(CRYPTO_CERT_MAX_NAMES, sizeof(*names));
    ret = dns_names_copy(names, &n_names, gens);
    if (ret < 0)
        goto out_free_all;
    if (n_names == 0) {
        ret = crypto_fail("csr_names", CF_EPARSE);
        goto out_free_all;
    }
    name_ptrs = xcalloc(n_names, sizeof(*name_ptrs));
    for (size_t i = 0; i < n_names; i++)
        name_ptrs[i] = names[i];

    /* The issuer: its key must be issuer_key, or the chain would not verify. */
    ret = chain_read(issuer_pem, issuer_pem_len, &issuer, NULL);
    if (ret < 0)
        goto out_free_all;
    ret = cert_has_key(issuer, issuer_key, &equal);
    if (ret < 0)
        goto out_free_all;
    if (!equal) {
        ret = CF_EUSAGE;
        goto out_free_all;
    }

    sn = ASN1_INTEGER_new();
    if (!sn || ASN1_INTEGER_set_uint64(sn, serial) != 1) {
        ret = crypto_fail("serial", CF_ECRYPTO);
        goto out_free_all;
    }
    cp = (struct cert_params){
        .subject = subject,
        .signer = issuer_key,
        .issuer_name = X509_get_subject_name(issuer),
        .aki = issuer_key->key_id,
        .aki_len = CRYPTO_KEY_ID_LEN,
        .serial = sn,
        .names = name_ptrs,
        .n_names = n_names,
        .days = days,
        .is_ca = 0,
    };
    /* RFC 5280 §4.2.1.1: the AKI is the issuer's SKI when it has one. */
    issuer_skid = X509_get0_subject_key_id(issuer);
    if (issuer_skid && ASN1_STRING_length(issuer_skid) > 0) {
        cp.aki = ASN1_STRING_get0_data(issuer_skid);
        cp.aki_len = (size_t)ASN1_STRING_length(issuer_skid);
    }
    ret = cert_sign(out_pem, &cp);
out_free_all:
    ASN1_INTEGER_free(sn);
    X509_free(issuer);
    free(name_ptrs);
    free(names);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    crypto_key_free(subject);
    EVP_PKEY_free(pkey);
    X509_REQ_free(req);
    ERR_clear_error();
    return ret;
}
