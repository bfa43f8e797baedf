/*
 * certs.c - the mock's certificates: its CA hierarchy (a root and an
 * issuing intermediate, ECDSA P-256), the TLS server certificate, the leaf
 * certificates it issues, and the PKCS#10 requests it reads.
 *
 * Certificates are written as DER by hand (der.c) and signed with one
 * EVP_DigestSign: a leaf costs one ECDSA signature and a few microseconds
 * of byte copying. The profile follows what Let's Encrypt issues for TLS
 * servers (RFC 5280, CA/B Forum Baseline Requirements): v3, a 128-bit
 * serial, SHA-256 with ECDSA, keyUsage, extKeyUsage serverAuth,
 * basicConstraints, subject and authority key identifiers, and the names in
 * the subjectAltName (CN = the first name when it fits in 64 octets).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "err.h"
#include "mockca.h"

/* Object identifiers, content octets only (X.690 §8.19). */
static const uint8_t oid_cn[] = {0x55, 0x04, 0x03};
static const uint8_t oid_org[] = {0x55, 0x04, 0x0a};
static const uint8_t oid_ecdsa_sha256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t oid_ecdsa_sha384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t oid_rsa_sha256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
static const uint8_t oid_rsa_sha384[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c};
static const uint8_t oid_rsa_sha512[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d};
static const uint8_t oid_ec_public[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t oid_p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t oid_basic_constraints[] = {0x55, 0x1d, 0x13};
static const uint8_t oid_key_usage[] = {0x55, 0x1d, 0x0f};
static const uint8_t oid_ext_key_usage[] = {0x55, 0x1d, 0x25};
static const uint8_t oid_server_auth[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const uint8_t oid_ski[] = {0x55, 0x1d, 0x0e};
static const uint8_t oid_aki[] = {0x55, 0x1d, 0x23};
static const uint8_t oid_san[] = {0x55, 0x1d, 0x11};
static const uint8_t oid_ext_request[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};

/* RFC 5280 §4.2.1.3 bits, numbered from the most significant bit of the first octet. */
#define KU_DIGITAL_SIGNATURE 0x80
#define KU_KEY_ENCIPHERMENT 0x20
#define KU_KEY_CERT_SIGN 0x04
#define KU_CRL_SIGN 0x02

#define CN_MAX 64
#define CA_DAYS 3650
#define TLS_DAYS 30
#define DAY 86400

static int oid_is(const struct mc_der_r *r, const uint8_t *oid, size_t n)
{
    return (size_t)(r->end - r->p) == n && memcmp(r->p, oid, n) == 0;
}

/* key_id computes RFC 7093 §2 method 1 (SHA-256 of subjectPublicKey, leftmost 160 bits). */
static int key_id(uint8_t out[MC_KEY_ID_LEN], const uint8_t *spki, size_t len)
{
    struct mc_der_r r = {spki, spki + len}, seq, alg, bits;
    unsigned char md[SHA256_DIGEST_LENGTH];

    if (mc_der_expect(&r, MC_DER_SEQ, &seq, NULL, NULL) != 0 ||
        mc_der_expect(&seq, MC_DER_SEQ, &alg, NULL, NULL) != 0 ||
        mc_der_expect(&seq, MC_DER_BITS, &bits, NULL, NULL) != 0 || bits.p == bits.end)
        return CF_EPARSE;
    SHA256(bits.p + 1, (size_t)(bits.end - bits.p - 1), md);
    memcpy(out, md, MC_KEY_ID_LEN);
    return 0;
}

/* name_der appends a Name of O=org (if not NULL) and CN=cn (if not empty) to b. */
static void name_der(struct buf *b, const char *org, const char *cn, size_t cn_len)
{
    struct mc_der w;

    mc_der_init(&w, b);
    mc_der_begin(&w, MC_DER_SEQ);
    if (org) {
        mc_der_begin(&w, MC_DER_SET);
        mc_der_begin(&w, MC_DER_SEQ);
        mc_der_put(&w, MC_DER_OID, oid_org, sizeof(oid_org));
        mc_der_put(&w, 0x0c, org, strlen(org));
        mc_der_end(&w);
        mc_der_end(&w);
    }
    if (cn_len) {
        mc_der_begin(&w, MC_DER_SET);
        mc_der_begin(&w, MC_DER_SEQ);
        mc_der_put(&w, MC_DER_OID, oid_cn, sizeof(oid_cn));
        mc_der_put(&w, 0x0c, cn, cn_len);
        mc_der_end(&w);
        mc_der_end(&w);
    }
    mc_der_end(&w);
}

/* What cert_sign puts into a certificate. */
struct tmpl {
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *issuer, *subject; /* Names, DER */
    size_t issuer_len, subject_len;
    int64_t not_before, not_after;
    const uint8_t *spki;
    size_t spki_len;
    int is_ca;
    int path_len; /* -1: none */
    uint8_t key_usage;
    int server_auth;
    const uint8_t *ski, *aki; /* MC_KEY_ID_LEN octets; ski may be NULL */
    const char *const *dns;
    size_t ndns;
    const uint8_t (*ips)[16];
    const size_t *ip_lens;
    size_t nips;
};

/* ext_begin opens an Extension (RFC 5280 §4.1) up to its OCTET STRING's content. */
static void ext_begin(struct mc_der *w, const uint8_t *oid, size_t oid_len, int critical)
{
    static const uint8_t bool_true = 0xff;

    mc_der_begin(w, MC_DER_SEQ);
    mc_der_put(w, MC_DER_OID, oid, oid_len);
    if (critical)
        mc_der_put(w, MC_DER_BOOL, &bool_true, 1);
    mc_der_begin(w, MC_DER_OCTETS);
}

static void ext_end(struct mc_der *w)
{
    mc_der_end(w);
    mc_der_end(w);
}

/* tbs_der appends the TBSCertificate of t to b. */
static void tbs_der(struct buf *b, const struct tmpl *t)
{
    static const uint8_t v3 = 2;
    static const uint8_t bool_true = 0xff;
    struct mc_der w;
    uint8_t ku[2];
    unsigned unused = 0;

    mc_der_init(&w, b);
    mc_der_begin(&w, MC_DER_SEQ);
    mc_der_begin(&w, 0xa0);
    mc_der_put(&w, MC_DER_INT, &v3, 1);
    mc_der_end(&w);
    mc_der_uint(&w, t->serial, t->serial_len);
    mc_der_begin(&w, MC_DER_SEQ);
    mc_der_put(&w, MC_DER_OID, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
    mc_der_end(&w);
    mc_der_raw(&w, t->issuer, t->issuer_len);
    mc_der_begin(&w, MC_DER_SEQ);
    mc_der_time(&w, t->not_before);
    mc_der_time(&w, t->not_after);
    mc_der_end(&w);
    mc_der_raw(&w, t->subject, t->subject_len);
    mc_der_raw(&w, t->spki, t->spki_len);

    mc_der_begin(&w, 0xa3);
    mc_der_begin(&w, MC_DER_SEQ);
    /* keyUsage, critical; DER drops the trailing zero bits (X.690 §11.2.2). */
    ext_begin(&w, oid_key_usage, sizeof(oid_key_usage), 1);
    while (!((t->key_usage >> unused) & 1) && unused < 7)
        unused++;
    ku[0] = (uint8_t)unused;
    ku[1] = t->key_usage;
    mc_der_put(&w, MC_DER_BITS, ku, 2);
    ext_end(&w);
    if (t->server_auth) {
        ext_begin(&w, oid_ext_key_usage, sizeof(oid_ext_key_usage), 0);
        mc_der_begin(&w, MC_DER_SEQ);
        mc_der_put(&w, MC_DER_OID, oid_server_auth, sizeof(oid_server_auth));
        mc_der_end(&w);
        ext_end(&w);
    }
    ext_begin(&w, oid_basic_constraints, sizeof(oid_basic_constraints), 1);
    mc_der_begin(&w, MC_DER_SEQ);
    if (t->is_ca) {
        mc_der_put(&w, MC_DER_BOOL, &bool_true, 1);
        if (t->path_len >= 0) {
            uint8_t pl = (uint8_t)t->path_len;
            mc_der_uint(&w, &pl, 1);
        }
    }
    mc_der_end(&w);
    ext_end(&w);
    if (t->ski) {
        ext_begin(&w, oid_ski, sizeof(oid_ski), 0);
        mc_der_put(&w, MC_DER_OCTETS, t->ski, MC_KEY_ID_LEN);
        ext_end(&w);
    }
    ext_begin(&w, oid_aki, sizeof(oid_aki), 0);
    mc_der_begin(&w, MC_DER_SEQ);
    mc_der_put(&w, 0x80, t->aki, MC_KEY_ID_LEN);
    mc_der_end(&w);
    ext_end(&w);
    if (t->ndns || t->nips) {
        /* RFC 5280 §4.2.1.6: critical when the subject is empty. */
        ext_begin(&w, oid_san, sizeof(oid_san), t->subject_len <= 2);
        mc_der_begin(&w, MC_DER_SEQ);
        for (size_t i = 0; i < t->ndns; i++)
            mc_der_put(&w, 0x82, t->dns[i], strlen(t->dns[i]));
        for (size_t i = 0; i < t->nips; i++)
            mc_der_put(&w, 0x87, t->ips[i], t->ip_lens[i]);
        mc_der_end(&w);
        ext_end(&w);
    }
    mc_der_end(&w);
    mc_der_end(&w);
    mc_der_end(&w);
}

/* cert_sign writes the certificate t describes, signed by signer (ECDSA, SHA-256), as DER to out.
 */
static int cert_sign(struct mc_issuer *is, EVP_PKEY *signer, const struct tmpl *t, struct buf *out)
{
    static struct buf tbs;
    uint8_t sig[160];
    size_t sig_len = sizeof(sig) - 1;
    struct mc_der w;

    buf_reset(&tbs);
    tbs_der(&tbs, t);
    if (EVP_DigestSignInit(is->md, NULL, EVP_sha256(), NULL, signer) != 1 ||
        EVP_DigestSign(is->md, sig + 1, &sig_len, (const uint8_t *)tbs.data, tbs.len) != 1) {
        EVP_MD_CTX_reset(is->md);
        ERR_clear_error();
        return CF_ECRYPTO;
    }
    EVP_MD_CTX_reset(is->md);
    sig[0] = 0; /* no unused bits */
    mc_der_init(&w, out);
    mc_der_begin(&w, MC_DER_SEQ);
    mc_der_raw(&w, tbs.data, tbs.len);
    mc_der_begin(&w, MC_DER_SEQ);
    mc_der_put(&w, MC_DER_OID, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
    mc_der_end(&w);
    mc_der_put(&w, MC_DER_BITS, sig, sig_len + 1);
    mc_der_end(&w);
    return 0;
}

static void pem_cert(struct buf *out, const void *der, size_t len)
{
    buf_puts(out, "-----BEGIN CERTIFICATE-----\n");
    mc_b64_pem(out, der, len);
    buf_puts(out, "-----END CERTIFICATE-----\n");
}

static EVP_PKEY *gen_p256(void)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    EVP_PKEY *k = NULL;

    if (!pc || EVP_PKEY_keygen_init(pc) != 1 ||
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(pc, NID_X9_62_prime256v1) != 1 ||
        EVP_PKEY_keygen(pc, &k) != 1) {
        EVP_PKEY_free(k);
        k = NULL;
        ERR_clear_error();
    }
    EVP_PKEY_CTX_free(pc);
    return k;
}

/* spki_of appends the DER SubjectPublicKeyInfo of k to b. */
static int spki_of(struct buf *b, EVP_PKEY *k)
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(k, &der);

    if (n <= 0)
        return CF_ECRYPTO;
    buf_append(b, der, (size_t)n);
    OPENSSL_free(der);
    return 0;
}

int mc_spki_new_p256(struct buf *out)
{
    EVP_PKEY *k = gen_p256();
    int rc = k ? spki_of(out, k) : CF_ECRYPTO;

    EVP_PKEY_free(k);
    return rc;
}

static void random_serial(uint8_t s[MC_SERIAL_LEN])
{
    RAND_bytes(s, MC_SERIAL_LEN);
    s[0] = (uint8_t)((s[0] & 0x7f) | 0x40);
}

/* ca_cert makes a CA certificate for key (subject name), signed by signer (issuer name, aki). */
static int ca_cert(struct mc_issuer *is, struct buf *pem, EVP_PKEY *key, const struct buf *subject,
                   EVP_PKEY *signer, const struct buf *issuer, const uint8_t *aki, int path_len,
                   uint8_t *ski_out)
{
    struct buf spki, der;
    uint8_t serial[MC_SERIAL_LEN];
    struct tmpl t;
    int64_t now = (int64_t)time(NULL);
    int rc;

    buf_init(&spki);
    buf_init(&der);
    rc = spki_of(&spki, key);
    if (rc == 0)
        rc = key_id(ski_out, (const uint8_t *)spki.data, spki.len);
    if (rc)
        goto out_free_bufs;
    random_serial(serial);
    memset(&t, 0, sizeof(t));
    t.serial = serial;
    t.serial_len = sizeof(serial);
    t.issuer = (const uint8_t *)issuer->data;
    t.issuer_len = issuer->len;
    t.subject = (const uint8_t *)subject->data;
    t.subject_len = subject->len;
    t.not_before = now - DAY;
    t.not_after = now + (int64_t)CA_DAYS * DAY;
    t.spki = (const uint8_t *)spki.data;
    t.spki_len = spki.len;
    t.is_ca = 1;
    t.path_len = path_len;
    t.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    t.ski = ski_out;
    t.aki = aki ? aki : ski_out;
    rc = cert_sign(is, signer, &t, &der);
    if (rc == 0)
        pem_cert(pem, der.data, der.len);
out_free_bufs:
    buf_cleanup(&der);
    buf_cleanup(&spki);
    return rc;
}

static int write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (!f)
        return -errno;
    fchmod(fileno(f), 0600);
    ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (fclose(f) != 0 || !ok)
        return CF_ECRYPTO;
    return 0;
}

static int write_text(const char *path, const struct buf *b)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (!f)
        return -errno;
    ok = fwrite(b->data, 1, b->len, f) == b->len;
    if (fclose(f) != 0 || !ok)
        return -EIO;
    return 0;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (!f)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    return k;
}

/*
 * read_cert reads a PEM certificate file into pem and its subject name
 * into name; the key identifier is recomputed from the certificate's key.
 */
static int read_cert(const char *path, struct buf *pem, struct buf *name, uint8_t *ski)
{
    FILE *f = fopen(path, "r");
    X509 *x = NULL;
    uint8_t *der = NULL;
    int n, rc = CF_EPARSE;
    char chunk[4096];
    size_t got;

    if (!f)
        return -errno;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(pem, chunk, got);
    fclose(f);
    {
        BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    if (!x)
        goto out_free_cert;
    n = i2d_X509_NAME(X509_get_subject_name(x), &der);
    if (n <= 0)
        goto out_free_cert;
    buf_append(name, der, (size_t)n);
    OPENSSL_free(der);
    der = NULL;
    {
        EVP_PKEY *pk = X509_get_pubkey(x);
        n = pk ? i2d_PUBKEY(pk, &der) : -1;
        EVP_PKEY_free(pk);
    }
    if (n <= 0 || key_id(ski, der, (size_t)n) != 0)
        goto out_free_cert;
    rc = 0;
out_free_cert:
    OPENSSL_free(der);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

int mc_issuer_init(struct mc_issuer *is, const char *dir, char *err, size_t errlen)
{
    char p_rk[1024], p_r[1024], p_ik[1024], p_i[1024];
    struct stat st;
    int rc;

    memset(is, 0, sizeof(*is));
    buf_init(&is->root_pem);
    buf_init(&is->pem);
    buf_init(&is->name);
    buf_init(&is->root_name);
    is->md = EVP_MD_CTX_new();
    if (!is->md) {
        str_fmt(err, errlen, "out of memory");
        return CF_ECRYPTO;
    }
    if (dir) {
        str_fmt(p_rk, sizeof(p_rk), "%s/root-key.pem", dir);
        str_fmt(p_r, sizeof(p_r), "%s/root.pem", dir);
        str_fmt(p_ik, sizeof(p_ik), "%s/issuer-key.pem", dir);
        str_fmt(p_i, sizeof(p_i), "%s/issuer.pem", dir);
    }
    if (dir && stat(p_rk, &st) == 0) {
        /* A CA from an earlier run: the certificates it issued stay valid (and renewable). */
        is->root_key = read_key(p_rk);
        is->key = read_key(p_ik);
        if (!is->root_key || !is->key ||
            read_cert(p_r, &is->root_pem, &is->root_name, is->root_ski) != 0 ||
            read_cert(p_i, &is->pem, &is->name, is->ski) != 0) {
            str_fmt(err, errlen,
                    "%s: cannot read the CA (root-key.pem, root.pem, issuer-key.pem, "
                    "issuer.pem)",
                    dir);
            return CF_ECONFIG;
        }
        return 0;
    }
    {
        uint8_t tag[4];
        char root_cn[64], issuer_cn[64];
        RAND_bytes(tag, sizeof(tag));
        str_fmt(root_cn, sizeof(root_cn), "certfleet mockca root %02x%02x%02x%02x", tag[0], tag[1],
                tag[2], tag[3]);
        str_fmt(issuer_cn, sizeof(issuer_cn), "certfleet mockca issuer %02x%02x%02x%02x", tag[0],
                tag[1], tag[2], tag[3]);
        name_der(&is->root_name, "certfleet bench", root_cn, strlen(root_cn));
        name_der(&is->name, "certfleet bench", issuer_cn, strlen(issuer_cn));
    }
    is->root_key = gen_p256();
    is->key = gen_p256();
    if (!is->root_key || !is->key) {
        str_fmt(err, errlen, "cannot generate the CA keys");
        return CF_ECRYPTO;
    }
    rc = ca_cert(is, &is->root_pem, is->root_key, &is->root_name, is->root_key, &is->root_name,
                 NULL, -1, is->root_ski);
    if (rc == 0)
        rc = ca_cert(is, &is->pem, is->key, &is->name, is->root_key, &is->root_name, is->root_ski,
                     0, is->ski);
    if (rc) {
        str_fmt(err, errlen, "cannot make the CA certificates");
        return rc;
    }
    if (dir) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            str_fmt(err, errlen, "%s: %s", dir, strerror(errno));
            return -errno;
        }
        if ((rc = write_key(p_rk, is->root_key)) != 0 || (rc = write_key(p_ik, is->key)) != 0 ||
            (rc = write_text(p_r, &is->root_pem)) != 0 || (rc = write_text(p_i, &is->pem)) != 0) {
            str_fmt(err, errlen, "%s: cannot write the CA: %s", dir, cf_strerror(rc));
            return rc;
        }
    }
    return 0;
}

void mc_issuer_cleanup(struct mc_issuer *is)
{
    EVP_PKEY_free(is->root_key);
    EVP_PKEY_free(is->key);
    EVP_MD_CTX_free(is->md);
    buf_cleanup(&is->root_pem);
    buf_cleanup(&is->pem);
    buf_cleanup(&is->name);
    buf_cleanup(&is->root_name);
}

int mc_tls_identity(struct mc_issuer *is, EVP_PKEY **key, struct buf *cert_der,
                    const char *const *dns, size_t ndns, const uint8_t (*ips)[16],
                    const size_t *ip_lens, size_t nips)
{
    struct buf spki, subject;
    uint8_t serial[MC_SERIAL_LEN], ski[MC_KEY_ID_LEN];
    struct tmpl t;
    int64_t now = (int64_t)time(NULL);
    int rc;

    *key = gen_p256();
    if (!*key)
        return CF_ECRYPTO;
    buf_init(&spki);
    buf_init(&subject);
    rc = spki_of(&spki, *key);
    if (rc == 0)
        rc = key_id(ski, (const uint8_t *)spki.data, spki.len);
    if (rc)
        goto out_free_bufs;
    name_der(&subject, NULL, "certfleet mockca", strlen("certfleet mockca"));
    random_serial(serial);
    memset(&t, 0, sizeof(t));
    t.serial = serial;
    t.serial_len = sizeof(serial);
    t.issuer = (const uint8_t *)is->root_name.data;
    t.issuer_len = is->root_name.len;
    t.subject = (const uint8_t *)subject.data;
    t.subject_len = subject.len;
    t.not_before = now - DAY;
    t.not_after = now + (int64_t)TLS_DAYS * DAY;
    t.spki = (const uint8_t *)spki.data;
    t.spki_len = spki.len;
    t.path_len = -1;
    t.key_usage = KU_DIGITAL_SIGNATURE;
    t.server_auth = 1;
    t.ski = ski;
    t.aki = is->root_ski;
    t.dns = dns;
    t.ndns = ndns;
    t.ips = ips;
    t.ip_lens = ip_lens;
    t.nips = nips;
    rc = cert_sign(is, is->root_key, &t, cert_der);
out_free_bufs:
    buf_cleanup(&subject);
    buf_cleanup(&spki);
    return rc;
}

int mc_issue_leaf(struct mc_issuer *is, struct buf *out, const struct mc_leaf *l)
{
    static struct buf subject, der;
    struct tmpl t;
    size_t cn_len = strlen(l->names[0]);
    uint8_t ski[MC_KEY_ID_LEN];
    int rc;

    if (key_id(ski, l->spki, l->spki_len) != 0)
        return CF_EPARSE;
    buf_reset(&subject);
    buf_reset(&der);
    /* The CN is the first name when it fits (ub-common-name, RFC 5280 §A.1); else empty. */
    name_der(&subject, NULL, l->names[0], cn_len <= CN_MAX ? cn_len : 0);
    memset(&t, 0, sizeof(t));
    t.serial = l->serial;
    t.serial_len = MC_SERIAL_LEN;
    t.issuer = (const uint8_t *)is->name.data;
    t.issuer_len = is->name.len;
    t.subject = (const uint8_t *)subject.data;
    t.subject_len = subject.len;
    t.not_before = l->not_before;
    t.not_after = l->not_after;
    t.spki = l->spki;
    t.spki_len = l->spki_len;
    t.path_len = -1;
    t.key_usage =
        (uint8_t)(KU_DIGITAL_SIGNATURE | (l->key_type == MC_KEY_RSA ? KU_KEY_ENCIPHERMENT : 0));
    t.server_auth = 1;
    /* RFC 5280 §4.2.1.2: a SKI in end-entity certificates SHOULD be there; ARI needs the AKI. */
    t.ski = ski;
    t.aki = is->ski;
    t.dns = l->names;
    t.ndns = l->nnames;
    rc = cert_sign(is, is->key, &t, &der);
    if (rc == 0)
        pem_cert(out, der.data, der.len);
    return rc;
}

enum mc_key_type mc_spki_type(const uint8_t *spki, size_t len)
{
    struct mc_der_r r = {spki, spki + len}, seq, alg, oid, params, bits, inner, rsa, n;

    if (mc_der_expect(&r, MC_DER_SEQ, &seq, NULL, NULL) != 0 || r.p != r.end ||
        mc_der_expect(&seq, MC_DER_SEQ, &alg, NULL, NULL) != 0 ||
        mc_der_expect(&seq, MC_DER_BITS, &bits, NULL, NULL) != 0 || seq.p != seq.end ||
        mc_der_expect(&alg, MC_DER_OID, &oid, NULL, NULL) != 0 || bits.p == bits.end ||
        bits.p[0] != 0)
        return MC_KEY_NONE;
    if (oid_is(&oid, oid_ec_public, sizeof(oid_ec_public))) {
        size_t pl = (size_t)(bits.end - bits.p - 1);
        if (mc_der_expect(&alg, MC_DER_OID, &params, NULL, NULL) != 0 || pl == 0 ||
            bits.p[1] != 0x04)
            return MC_KEY_NONE;
        if (oid_is(&params, oid_p256, sizeof(oid_p256)) && pl == 65)
            return MC_KEY_EC256;
        if (oid_is(&params, oid_p384, sizeof(oid_p384)) && pl == 97)
            return MC_KEY_EC384;
        return MC_KEY_NONE;
    }
    if (oid_is(&oid, oid_rsa, sizeof(oid_rsa))) {
        size_t nl;
        inner.p = bits.p + 1;
        inner.end = bits.end;
        if (mc_der_expect(&inner, MC_DER_SEQ, &rsa, NULL, NULL) != 0 ||
            mc_der_expect(&rsa, MC_DER_INT, &n, NULL, NULL) != 0 || n.p == n.end)
            return MC_KEY_NONE;
        nl = (size_t)(n.end - n.p);
        if (n.p[0] == 0) {
            n.p++;
            nl--;
        }
        if ((nl == 256 || nl == 384 || nl == 512) && (n.p[0] & 0x80))
            return MC_KEY_RSA;
    }
    return MC_KEY_NONE;
}

/* csr_attrs reads the extension request of a CSR's attributes for its dNSNames. */
static int csr_attrs(struct mc_csr *c, struct mc_der_r attrs, const char **why)
{
    while (attrs.p < attrs.end) {
        struct mc_der_r attr, oid, set, exts, ext, eoid, val, gens;
        unsigned tag;
        if (mc_der_expect(&attrs, MC_DER_SEQ, &attr, NULL, NULL) != 0 ||
            mc_der_expect(&attr, MC_DER_OID, &oid, NULL, NULL) != 0 ||
            mc_der_expect(&attr, MC_DER_SET, &set, NULL, NULL) != 0) {
            *why = "bad attribute";
            return CF_EPARSE;
        }
        if (!oid_is(&oid, oid_ext_request, sizeof(oid_ext_request)))
            continue;
        if (mc_der_expect(&set, MC_DER_SEQ, &exts, NULL, NULL) != 0) {
            *why = "bad extension request";
            return CF_EPARSE;
        }
        while (exts.p < exts.end) {
            if (mc_der_expect(&exts, MC_DER_SEQ, &ext, NULL, NULL) != 0 ||
                mc_der_expect(&ext, MC_DER_OID, &eoid, NULL, NULL) != 0) {
                *why = "bad extension";
                return CF_EPARSE;
            }
            if (ext.p < ext.end && ext.p[0] == MC_DER_BOOL) {
                struct mc_der_r crit;
                if (mc_der_next(&ext, &tag, &crit, NULL, NULL) != 0) {
                    *why = "bad extension";
                    return CF_EPARSE;
                }
            }
            if (mc_der_expect(&ext, MC_DER_OCTETS, &val, NULL, NULL) != 0) {
                *why = "bad extension value";
                return CF_EPARSE;
            }
            if (!oid_is(&eoid, oid_san, sizeof(oid_san)))
                continue;
            if (mc_der_expect(&val, MC_DER_SEQ, &gens, NULL, NULL) != 0) {
                *why = "bad subjectAltName";
                return CF_EPARSE;
            }
            while (gens.p < gens.end) {
                struct mc_der_r gn;
                if (mc_der_next(&gens, &tag, &gn, NULL, NULL) != 0) {
                    *why = "bad subjectAltName";
                    return CF_EPARSE;
                }
                if (tag != 0x82) {
                    *why = "the subjectAltName holds names other than dNSNames";
                    return CF_EPARSE;
                }
                if (c->n == MC_MAX_NAMES) {
                    *why = "more than 100 names";
                    return CF_ETOOBIG;
                }
                c->names[c->n].p = gn.p;
                c->names[c->n].len = (size_t)(gn.end - gn.p);
                c->n++;
            }
        }
    }
    return 0;
}

int mc_csr_parse(struct mc_csr *c, const uint8_t *der, size_t len, const char **why)
{
    struct mc_der_r r = {der, der + len}, req, cri, ver, subj, alg, sig, attrs;
    unsigned tag;

    memset(c, 0, sizeof(*c));
    *why = "not a DER PKCS#10 request";
    if (mc_der_expect(&r, MC_DER_SEQ, &req, NULL, NULL) != 0 || r.p != r.end ||
        mc_der_expect(&req, MC_DER_SEQ, &cri, &c->cri, &c->cri_len) != 0 ||
        mc_der_expect(&req, MC_DER_SEQ, &alg, NULL, NULL) != 0 ||
        mc_der_expect(&req, MC_DER_BITS, &sig, NULL, NULL) != 0 || req.p != req.end ||
        sig.p == sig.end || sig.p[0] != 0)
        return CF_EPARSE;
    c->sigalg = alg.p;
    c->sigalg_len = (size_t)(alg.end - alg.p);
    c->sig = sig.p + 1;
    c->sig_len = (size_t)(sig.end - sig.p - 1);
    if (mc_der_expect(&cri, MC_DER_INT, &ver, NULL, NULL) != 0 || ver.end - ver.p != 1 ||
        ver.p[0] != 0 || mc_der_expect(&cri, MC_DER_SEQ, &subj, NULL, NULL) != 0 ||
        mc_der_expect(&cri, MC_DER_SEQ, &alg, &c->spki, &c->spki_len) != 0)
        return CF_EPARSE;
    /* The subject: its CN, if any (RFC 8555 §7.4: it must be one of the names). */
    while (subj.p < subj.end) {
        struct mc_der_r rdn, atv, oid, val;
        if (mc_der_expect(&subj, MC_DER_SET, &rdn, NULL, NULL) != 0)
            return CF_EPARSE;
        while (rdn.p < rdn.end) {
            if (mc_der_expect(&rdn, MC_DER_SEQ, &atv, NULL, NULL) != 0 ||
                mc_der_expect(&atv, MC_DER_OID, &oid, NULL, NULL) != 0 ||
                mc_der_next(&atv, &tag, &val, NULL, NULL) != 0)
                return CF_EPARSE;
            if (oid_is(&oid, oid_cn, sizeof(oid_cn))) {
                c->cn = val.p;
                c->cn_len = (size_t)(val.end - val.p);
            }
        }
    }
    c->key_type = mc_spki_type(c->spki, c->spki_len);
    if (c->key_type == MC_KEY_NONE) {
        *why = "the key is not EC P-256, P-384 or RSA 2048, 3072 or 4096";
        return CF_EPARSE;
    }
    if (mc_der_expect(&cri, 0xa0, &attrs, NULL, NULL) != 0 || cri.p != cri.end)
        return CF_EPARSE;
    return csr_attrs(c, attrs, why);
}

int mc_csr_verify(const struct mc_csr *c, const char **why)
{
    static EVP_MD_CTX *ctx;
    struct mc_der_r alg = {c->sigalg, c->sigalg + c->sigalg_len}, oid;
    const EVP_MD *md = NULL;
    EVP_PKEY *k;
    int ok, is_ec = c->key_type == MC_KEY_EC256 || c->key_type == MC_KEY_EC384;

    if (mc_der_expect(&alg, MC_DER_OID, &oid, NULL, NULL) != 0) {
        *why = "bad signature algorithm";
        return CF_ECRYPTO;
    }
    if (is_ec && oid_is(&oid, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256)))
        md = EVP_sha256();
    else if (is_ec && oid_is(&oid, oid_ecdsa_sha384, sizeof(oid_ecdsa_sha384)))
        md = EVP_sha384();
    else if (!is_ec && oid_is(&oid, oid_rsa_sha256, sizeof(oid_rsa_sha256)))
        md = EVP_sha256();
    else if (!is_ec && oid_is(&oid, oid_rsa_sha384, sizeof(oid_rsa_sha384)))
        md = EVP_sha384();
    else if (!is_ec && oid_is(&oid, oid_rsa_sha512, sizeof(oid_rsa_sha512)))
        md = EVP_sha512();
    if (!md) {
        *why = "unsupported signature algorithm";
        return CF_ECRYPTO;
    }
    k = mc_key_from_spki(c->spki, c->spki_len);
    if (!k) {
        *why = "the public key does not parse";
        return CF_ECRYPTO;
    }
    if (!ctx)
        ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, k) == 1 &&
         EVP_DigestVerify(ctx, c->sig, c->sig_len, c->cri, c->cri_len) == 1;
    if (ctx)
        EVP_MD_CTX_reset(ctx);
    EVP_PKEY_free(k);
    if (!ok) {
        ERR_clear_error();
        *why = "the signature does not verify";
        return CF_ECRYPTO;
    }
    return 0;
}

int mc_cert_serial(const uint8_t *der, size_t len, const uint8_t **serial, size_t *serial_len,
                   const uint8_t **spki, size_t *spki_len)
{
    struct mc_der_r r = {der, der + len}, cert, tbs, v, sn, skip;
    unsigned tag;

    if (mc_der_expect(&r, MC_DER_SEQ, &cert, NULL, NULL) != 0 ||
        mc_der_expect(&cert, MC_DER_SEQ, &tbs, NULL, NULL) != 0)
        return CF_EPARSE;
    if (tbs.p < tbs.end && tbs.p[0] == 0xa0 && mc_der_next(&tbs, &tag, &v, NULL, NULL) != 0)
        return CF_EPARSE;
    if (mc_der_expect(&tbs, MC_DER_INT, &sn, NULL, NULL) != 0)
        return CF_EPARSE;
    *serial = sn.p;
    *serial_len = (size_t)(sn.end - sn.p);
    /* signature, issuer, validity, subject, then the key. */
    for (int i = 0; i < 4; i++)
        if (mc_der_expect(&tbs, MC_DER_SEQ, &skip, NULL, NULL) != 0)
            return CF_EPARSE;
    return mc_der_expect(&tbs, MC_DER_SEQ, &skip, spki, spki_len);
}
