/*
 * hostname.c - customer hostnames: normalization, registered domain, and the
 * delegation target rule.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <libpsl.h>
#include <openssl/sha.h>

#include "err.h"
#include "hostname.h"

static psl_ctx_t *g_psl;

/* The newest of libpsl's built-in list and the system's publicsuffix file. */
static const psl_ctx_t *psl(void)
{
    if (!g_psl)
        g_psl = psl_latest(NULL);
    return g_psl ? g_psl : psl_builtin();
}

void hostname_psl_cleanup(void)
{
    psl_free(g_psl);
    g_psl = NULL;
}

const char *hostname_base(const char *name)
{
    return hostname_is_wildcard(name) ? name + 2 : name;
}

int hostname_is_wildcard(const char *name)
{
    return name[0] == '*' && name[1] == '.';
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/*
 * check_alabel returns 0 when the xn-- label at p (n octets) is a valid
 * A-label: it decodes, and encoding the result again gives the same label.
 */
static int check_alabel(const char *p, size_t n)
{
    char label[64];
    char *u = NULL, *a = NULL;
    int ok = 0;
    memcpy(label, p, n);
    label[n] = '\0';
    if (idn2_to_unicode_8z8z(label, &u, 0) == IDN2_OK &&
        idn2_to_ascii_8z(u, &a, IDN2_NONTRANSITIONAL) == IDN2_OK && strcmp(a, label) == 0)
        ok = 1;
    idn2_free(u);
    idn2_free(a);
    return ok ? 0 : -1;
}

/*
 * check_labels validates the lower-case ASCII name at s (len octets) label by
 * label. Returns 0 and the number of labels in *nlabels, or CF_EHOSTNAME.
 */
static int check_labels(const char *s, size_t len, int *nlabels, const char **reason)
{
    size_t start = 0;
    int n = 0;
    int last_numeric = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            unsigned char c = (unsigned char)s[i];
            if (c == '_') {
                *reason = "underscore in a hostname (a CA refuses it)";
                return CF_EHOSTNAME;
            }
            if (c == '*') {
                *reason = "wildcard '*' is only allowed as the whole leftmost label";
                return CF_EHOSTNAME;
            }
            if (!is_ldh(c)) {
                *reason = "character outside letters, digits and hyphen";
                return CF_EHOSTNAME;
            }
            continue;
        }
        size_t ll = i - start;
        const char *l = s + start;
        if (ll == 0) {
            *reason = "empty label";
            return CF_EHOSTNAME;
        }
        if (ll > 63) {
            *reason = "label longer than 63 octets";
            return CF_EHOSTNAME;
        }
        if (l[0] == '-' || l[ll - 1] == '-') {
            *reason = "label starts or ends with a hyphen";
            return CF_EHOSTNAME;
        }
        if (ll >= 4 && l[2] == '-' && l[3] == '-') {
            if (!(l[0] == 'x' && l[1] == 'n')) {
                *reason = "reserved label form 'xx--' (only xn-- A-labels are allowed)";
                return CF_EHOSTNAME;
            }
            if (check_alabel(l, ll) != 0) {
                *reason = "invalid A-label (xn--)";
                return CF_EHOSTNAME;
            }
        }
        last_numeric = 1;
        for (size_t k = 0; k < ll; k++)
            if (l[k] < '0' || l[k] > '9')
                last_numeric = 0;
        n++;
        start = i + 1;
    }
    if (last_numeric) {
        *reason = "numeric top-level label (an IP address is not a hostname)";
        return CF_EHOSTNAME;
    }
    *nlabels = n;
    return 0;
}

/*
 * to_ascii lower-cases and, for non-ASCII input, converts the name at in
 * (len octets, no NULs) to A-labels (UTS #46 non-transitional, NFC), writing
 * at most cap octets plus NUL into out.
 */
static int to_ascii(char *out, size_t cap, const char *in, size_t len, const char **reason)
{
    int ascii = 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] >= 0x80)
            ascii = 0;
    if (ascii) {
        if (len > cap) {
            *reason = "name longer than 253 octets";
            return CF_EHOSTNAME;
        }
        for (size_t i = 0; i < len; i++) {
            char c = in[i];
            out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        out[len] = '\0';
        return 0;
    }
    char tmp[1024];
    if (len >= sizeof(tmp)) {
        *reason = "name longer than 253 octets";
        return CF_EHOSTNAME;
    }
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    char *a = NULL;
    int rc = idn2_to_ascii_8z(tmp, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        *reason = rc == IDN2_ENCODING_ERROR ? "not valid UTF-8" : "invalid internationalized name";
        idn2_free(a);
        return CF_EHOSTNAME;
    }
    size_t alen = strlen(a);
    if (alen > cap) {
        idn2_free(a);
        *reason = "name longer than 253 octets";
        return CF_EHOSTNAME;
    }
    for (size_t i = 0; i < alen; i++)
        out[i] = (a[i] >= 'A' && a[i] <= 'Z') ? (char)(a[i] + 32) : a[i];
    out[alen] = '\0';
    idn2_free(a);
    return 0;
}

/* Shared front half of host and zone normalization: bytes, dot, ASCII. */
static int normalize_common(char *out, const char *in, size_t len, const char **reason)
{
    if (len == 0) {
        *reason = "empty name";
        return CF_EHOSTNAME;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7f) {
            *reason = "whitespace or control character in name";
            return CF_EHOSTNAME;
        }
    }
    if (len > 0 && in[len - 1] == '.')
        len--; /* one trailing dot: the root */
    if (len == 0) {
        *reason = "empty name";
        return CF_EHOSTNAME;
    }
    char tmp[64];
    if (len < sizeof(tmp)) {
        memcpy(tmp, in, len);
        tmp[len] = '\0';
        unsigned char addr[16];
        if (inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1) {
            *reason = "an IP address is not a hostname";
            return CF_EHOSTNAME;
        }
    }
    return to_ascii(out, HOSTNAME_MAX, in, len, reason);
}

int hostname_normalize_ex(char *out, char *regdom, const char *in, size_t len, const char **reason)
{
    int rc = normalize_common(out, in, len, reason);
    if (rc)
        return rc;
    const char *base = hostname_base(out);
    size_t blen = strlen(base);
    int nlabels = 0;
    rc = check_labels(base, blen, &nlabels, reason);
    if (rc)
        return rc;
    if (nlabels < 2) {
        *reason = "single-label name";
        return CF_EHOSTNAME;
    }
    if (blen > HOSTNAME_BASE_MAX) {
        *reason = "name too long: _acme-challenge.<name> would exceed 253 octets";
        return CF_EHOSTNAME;
    }
    /*
     * One public suffix lookup serves both questions: a name without a
     * registrable part is a public suffix (or lies above one).
     */
    const char *rd = psl_registrable_domain(psl(), base);
    if (!rd) {
        *reason =
            hostname_is_wildcard(out) ? "wildcard over a public suffix" : "name is a public suffix";
        return CF_EHOSTNAME;
    }
    if (regdom)
        memcpy(regdom, rd, strlen(rd) + 1); /* a suffix of base: fits */
    return 0;
}

int hostname_normalize(char *out, const char *in, size_t len, const char **reason)
{
    return hostname_normalize_ex(out, NULL, in, len, reason);
}

int hostname_normalize_zone(char *out, const char *in, const char **reason)
{
    int rc = normalize_common(out, in, strlen(in), reason);
    if (rc)
        return rc;
    int nlabels = 0;
    rc = check_labels(out, strlen(out), &nlabels, reason);
    if (rc)
        return rc;
    if (strlen(out) > HOSTNAME_ZONE_MAX) {
        *reason = "validation zone longer than 219 octets leaves no room for a host label";
        return CF_EHOSTNAME;
    }
    return 0;
}

int hostname_registered_domain(char *out, const char *name)
{
    const char *rd = psl_registrable_domain(psl(), hostname_base(name));
    if (!rd)
        return CF_EHOSTNAME;
    size_t n = strlen(rd);
    if (n > HOSTNAME_MAX)
        return CF_EHOSTNAME;
    memcpy(out, rd, n + 1);
    return 0;
}

int hostname_challenge_target(char *out, const char *name, const char *zone)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    const char *base = hostname_base(name);
    size_t blen = strlen(base), zlen = strlen(zone);
    if (blen == 0 || zlen == 0 || zlen > HOSTNAME_ZONE_MAX)
        return CF_EHOSTNAME;
    if (blen + 1 + zlen <= HOSTNAME_MAX) {
        memcpy(out, base, blen);
        out[blen] = '.';
        memcpy(out + blen + 1, zone, zlen + 1);
        return 0;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)base, blen, md);
    /* 20 octets = 160 bits = 32 base32 characters, 5 bits each. */
    out[0] = 'h';
    for (int i = 0; i < 32; i++) {
        int bit = i * 5;
        int byte = bit / 8, off = bit % 8;
        unsigned v = ((unsigned)md[byte] << 8) | (byte + 1 < 20 ? md[byte + 1] : 0);
        out[1 + i] = b32[(v >> (11 - off)) & 31];
    }
    out[HOSTNAME_HASH_LABEL_LEN] = '.';
    memcpy(out + HOSTNAME_HASH_LABEL_LEN + 1, zone, zlen + 1);
    return 0;
}
