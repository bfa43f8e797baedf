/*
 * config.h - the state directory's configuration file (config.json).
 *
 * One file, written by `certfleet init`, read by every other command.
 * Secrets are not in it: it names the files that hold them.
 */
#ifndef CF_UTIL_CONFIG_H
#define CF_UTIL_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_CDN_TARGETS 64
#define CONFIG_MAX_VALIDATION_NS 16

struct config {
    char validation_zone[256];
    char directory[1024]; /* ACME directory URL (https) */
    char ca_bundle[1024]; /* CA certificates to verify the ACME server; "" = system */
    char email[256];
    char key_type[16];    /* certificate key type: ec256 (default), rsa2048, ... */
    size_t n_cdn_targets; /* hostname suffixes or CIDRs that mean "served by us" */
    char cdn_targets[CONFIG_MAX_CDN_TARGETS][256];
    char eab_kid[256];
    char eab_hmac_file[1024];
    char resolver[128];   /* ADDR[:PORT] of the recursive resolver; "" = system */
    char dns_listen[128]; /* ADDR:PORT of the embedded validation-zone server */
    char rfc2136_server[128];
    char tsig_key_file[1024];
    int dns_auth_port; /* port of authoritative servers (tests); 0 = 53 */
    /*
     * The CA's rate limits (scheduler/ratelimit.h spec: "letsencrypt",
     * "none", "letsencrypt,new_orders=600/3h"...); "" = by directory URL:
     * Let's Encrypt's for its directories, none for other CAs.
     */
    char rate_limits[512];
    /*
     * The validation zone's nameservers, "NAME=ADDR" (or "NAME" alone for a
     * server outside the zone), one entry per address; none = ns1.<zone> at
     * the dns_listen address.
     */
    size_t n_validation_ns;
    char validation_ns[CONFIG_MAX_VALIDATION_NS][320];
};

/* config_init sets the defaults. */
void config_init(struct config *cfg);

/*
 * config_load reads <dir>/config.json into cfg. Returns 0, -ENOENT when the
 * state dir was never initialized, or CF_ECONFIG with a message naming the
 * file and the problem in err (errlen bytes).
 */
int config_load(struct config *cfg, const char *dir, char *err, size_t errlen);

/* config_save writes cfg to <dir>/config.json atomically with mode 0600. */
int config_save(const struct config *cfg, const char *dir, char *err, size_t errlen);

/*
 * config_parse_addr parses "ADDR[:PORT]", "[V6ADDR]:PORT" or "V6ADDR" into
 * host (a numeric address, at least 64 bytes) and *port (dflt when absent).
 * Returns 0 or CF_ECONFIG.
 */
int config_parse_addr(const char *s, char *host, size_t hostlen, int *port, int dflt);

#endif
