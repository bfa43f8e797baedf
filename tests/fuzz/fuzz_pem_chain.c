/*
 * fuzz_pem_chain.c - libFuzzer target for the certificate chain parser
 * (crypto_cert_parse_chain) and the ARI certificate identifier made from
 * what it returns (crypto_ari_cert_id, RFC 9773 §4.1).
 *
 * A chain comes from the CA's certificate URL (RFC 8555 §7.4.2), so it is
 * untrusted. Each input is parsed twice: as PEM text as it is, and as the
 * DER of one certificate wrapped in a PEM block here, so that mutations
 * reach the ASN.1 structure instead of breaking the base64. Whatever parses
 * must fill struct crypto_cert_info within its bounds, give an identifier
 * that acme_ari_cert_id_ok accepts (it goes into a URL path), and leave the
 * crypto library's error queue empty (crypto.h: it is cleared on every
 * failure).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "buf.h"
#include "crypto.h"
#include "err.h"
#include "proto.h"

/* The largest DER input wrapped: well past any real certificate, far below the chain bound. */
#define DER_MAX ((size_t)64 * 1024)

static struct crypto_key *key;

/* check fails the run loudly: a broken invariant is a bug libFuzzer must report. */
static void check(int ok)
{
    if (!ok)
        abort();
}

static void cleanup(void)
{
    crypto_key_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* A fresh key: no certificate in the corpus can hold it. */
    check(crypto_key_generate(&key, CRYPTO_KEY_EC_P256) == 0);
    atexit(cleanup);
    return 0;
}

static int printable_name(const char *s)
{
    size_t n = strnlen(s, CRYPTO_NAME_MAX + 1);
    if (n == 0 || n > CRYPTO_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static void check_info(const struct crypto_cert_info *info)
{
    static const char hex[] = "0123456789abcdef";
    check(info->serial_len >= 1 && info->serial_len <= CRYPTO_SERIAL_MAX);
    check(strlen(info->serial_hex) == 2 * info->serial_len);
    for (size_t i = 0; i < info->serial_len; i++)
        check(info->serial_hex[2 * i] == hex[info->serial[i] >> 4] &&
              info->serial_hex[2 * i + 1] == hex[info->serial[i] & 15]);
    check(info->aki_len <= CRYPTO_AKI_MAX);
    check(info->n_names <= CRYPTO_CERT_MAX_NAMES);
    for (size_t i = 0; i < info->n_names; i++)
        check(printable_name(info->names[i]));
}

static void parse(const char *pem, size_t len)
{
    /* Large struct: on the heap, so ASan sees every byte written. */
    struct crypto_cert_info *info = malloc(sizeof(*info));
    size_t n = 0;
    struct buf id;

    int rc = crypto_cert_parse_chain(pem, len, info, &n);
    check(ERR_peek_error() == 0);
    check(rc == 0 || rc == CF_EPARSE || rc == CF_ETOOBIG);
    if (rc == 0) {
        check(n >= 1 && n <= CRYPTO_CHAIN_MAX_CERTS);
        check_info(info);
        buf_init(&id);
        buf_putc(&id, 'x'); /* crypto.h: appended to, never reset */
        int rc_id = crypto_ari_cert_id(info, &id);
        check((rc_id == 0) == (info->aki_len > 0));
        check(rc_id == 0 || (rc_id == CF_EPARSE && id.len == 1));
        if (rc_id == 0) {
            buf_putc(&id, '\0');
            check(acme_ari_cert_id_ok(id.data + 1));
        }
        buf_cleanup(&id);
        /* The optional outputs may be left out. */
        check(crypto_cert_parse_chain(pem, len, NULL, NULL) == 0);
    }
    /* A certificate cannot hold a key made after it: never a match. */
    int rc_key = crypto_cert_matches_key(pem, len, key);
    check(ERR_peek_error() == 0);
    check(rc_key != 0);
    if (rc == 0)
        check(rc_key == CF_ECRYPTO);
    free(info);
}

/* wrap_der appends the standard base64 (RFC 4648 §4) of der as one PEM certificate to out. */
static void wrap_der(struct buf *out, const uint8_t *der, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t col = 0;
    buf_puts(out, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)der[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)der[i + 1] << 8;
        if (i + 2 < len)
            v |= der[i + 2];
        buf_putc(out, b64[v >> 18 & 63]);
        buf_putc(out, b64[v >> 12 & 63]);
        buf_putc(out, i + 1 < len ? b64[v >> 6 & 63] : '=');
        buf_putc(out, i + 2 < len ? b64[v & 63] : '=');
        col += 4;
        if (col == 64) {
            buf_putc(out, '\n');
            col = 0;
        }
    }
    if (col)
        buf_putc(out, '\n');
    buf_puts(out, "-----END CERTIFICATE-----\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf pem;

    parse((const char *)data, size);
    if (size == 0 || size > DER_MAX)
        return 0;
    buf_init(&pem);
    wrap_der(&pem, data, size);
    parse(pem.data, pem.len);
    buf_cleanup(&pem);
    return 0;
}
