/*
 * hostname.h - customer hostnames: normalization, registered domain, and the
 * delegation target rule.
 *
 * A normalized hostname is ASCII (A-labels for IDNs), lower case, without a
 * trailing dot, at most HOSTNAME_MAX octets; it may start with "*." for a
 * wildcard, whose delegation lives at _acme-challenge.<base>.
 */
#ifndef CF_UTIL_HOSTNAME_H
#define CF_UTIL_HOSTNAME_H

#include <stddef.h>

#define HOSTNAME_MAX 253
/* "_acme-challenge." is 16 octets: the base name must leave room for it. */
#define HOSTNAME_CHALLENGE_PREFIX "_acme-challenge."
#define HOSTNAME_BASE_MAX (HOSTNAME_MAX - 16)
/* The hash-derived label: "h" and 32 base32 characters. */
#define HOSTNAME_HASH_LABEL_LEN 33
/* A validation zone must leave room for the hash-derived label and its dot. */
#define HOSTNAME_ZONE_MAX (HOSTNAME_MAX - HOSTNAME_HASH_LABEL_LEN - 1)

/*
 * hostname_normalize normalizes the len bytes at in (not NUL-terminated) into
 * out (HOSTNAME_MAX + 1 bytes). Returns 0, or CF_EHOSTNAME with *reason set
 * to a static sentence saying what is wrong. A name a CA would refuse is
 * refused here: empty labels, labels over 63 or names over 253 octets,
 * characters outside letters, digits and hyphen (underscores included), IP
 * addresses, a leading or trailing hyphen, reserved "xx--" labels other than
 * valid A-labels, invalid IDNs, single labels, public suffixes, and names too
 * long to carry the _acme-challenge prefix.
 */
int hostname_normalize(char *out, const char *in, size_t len, const char **reason);

/*
 * hostname_normalize_ex is hostname_normalize that also writes the
 * registered domain into regdom (HOSTNAME_MAX + 1 bytes; may be NULL).
 */
int hostname_normalize_ex(char *out, char *regdom, const char *in, size_t len, const char **reason);

/* hostname_base returns name without a leading "*." (a pointer into name). */
const char *hostname_base(const char *name);
/* hostname_is_wildcard returns 1 for "*.<base>", else 0. */
int hostname_is_wildcard(const char *name);

/*
 * hostname_registered_domain writes the registered domain of a normalized
 * name (public suffix list, libpsl) into out (HOSTNAME_MAX + 1 bytes).
 * Returns 0 or CF_EHOSTNAME when the name is itself a public suffix.
 */
int hostname_registered_domain(char *out, const char *name);

/*
 * hostname_normalize_zone normalizes a validation zone name into out
 * (HOSTNAME_MAX + 1 bytes): the rules of hostname_normalize, except that one
 * label and public suffixes are allowed, a wildcard is not, and the zone
 * must be at most HOSTNAME_ZONE_MAX octets.
 */
int hostname_normalize_zone(char *out, const char *in, const char **reason);

/*
 * hostname_challenge_target writes the CNAME target for a normalized
 * hostname in a normalized validation zone into out (HOSTNAME_MAX + 1
 * bytes). The rule (docs/cname-target.md): with B the name without "*.",
 *   "B.ZONE"                       when that fits in 253 octets,
 *   "h<base32(SHA-256(B))[0:32]>.ZONE" otherwise,
 * base32 in lower case (RFC 4648 alphabet) over the first 20 octets of the
 * digest. It depends only on the name and the zone, never on the account
 * key, so a delegation survives key rotation; a wildcard and its apex share
 * one target. Returns 0 or CF_EHOSTNAME.
 */
int hostname_challenge_target(char *out, const char *name, const char *zone);

/* hostname_psl_cleanup frees the public suffix list (for leak checkers). */
void hostname_psl_cleanup(void);

#endif
