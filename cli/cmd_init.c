/*
 * cmd_init.c - `certfleet init`: validate the settings, write config.json,
 * create the store.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ratelimit.h"
#include "err.h"
#include "hostname.h"

/* copy_opt copies optarg into dst or reports which option is too long. */
static int copy_opt(char *dst, size_t n, const char *opt, const char *val)
{
    if (strlen(val) >= n) {
        cli_error("init: --%s is longer than %zu octets", opt, n - 1);
        return -1;
    }
    memcpy(dst, val, strlen(val) + 1);
    return 0;
}

static int readable_file(const char *opt, const char *path)
{
    if (access(path, R_OK) != 0) {
        cli_error("init: --%s %s: %s", opt, path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * normalize_cdn_target accepts a CIDR ("192.0.2.0/24", "2001:db8::/32") or a
 * hostname suffix ("cdn.example.net"); writes the normalized form.
 */
static int normalize_cdn_target(char *out, size_t n, const char *in)
{
    const char *slash = strchr(in, '/');
    if (slash) {
        char addr[64];
        unsigned char bin[16];
        size_t alen = (size_t)(slash - in);
        if (alen >= sizeof(addr))
            return -1;
        memcpy(addr, in, alen);
        addr[alen] = '\0';
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        int v4 = inet_pton(AF_INET, addr, bin) == 1;
        int v6 = !v4 && inet_pton(AF_INET6, addr, bin) == 1;
        if ((!v4 && !v6) || *end || slash[1] == '\0' || bits < 0 || bits > (v4 ? 32 : 128))
            return -1;
        snprintf(out, n, "%s/%ld", addr, bits);
        return 0;
    }
    const char *reason;
    char norm[HOSTNAME_MAX + 1];
    if (hostname_normalize_zone(norm, in, &reason) != 0)
        return -1;
    snprintf(out, n, "%s", norm);
    return 0;
}

/*
 * normalize_validation_ns accepts "NAME" or "NAME=ADDR" (an IPv4 or IPv6
 * address) for --validation-ns and writes "name=addr" in normal form.
 */
static int normalize_validation_ns(char *out, size_t n, const char *in)
{
    char name[HOSTNAME_MAX + 1], norm[HOSTNAME_MAX + 1];
    unsigned char bin[16];
    const char *eq = strchr(in, '='), *reason;
    size_t nlen = eq ? (size_t)(eq - in) : strlen(in);
    if (nlen == 0 || nlen > HOSTNAME_MAX)
        return -1;
    memcpy(name, in, nlen);
    name[nlen] = '\0';
    if (hostname_normalize_zone(norm, name, &reason) != 0)
        return -1;
    if (!eq) {
        snprintf(out, n, "%s", norm);
        return 0;
    }
    if (inet_pton(AF_INET, eq + 1, bin) != 1 && inet_pton(AF_INET6, eq + 1, bin) != 1)
        return -1;
    snprintf(out, n, "%s=%s", norm, eq + 1);
    return 0;
}

/* in_zone returns 1 when the normalized name is zone or below it. */
static int in_zone(const char *name, size_t nlen, const char *zone)
{
    size_t zlen = strlen(zone);
    if (nlen == zlen)
        return memcmp(name, zone, zlen) == 0;
    return nlen > zlen && name[nlen - zlen - 1] == '.' &&
           memcmp(name + nlen - zlen, zone, zlen) == 0;
}

int cmd_init(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"validation-zone", required_argument, NULL, 'z'},
        {"directory", required_argument, NULL, 'd'},
        {"ca-bundle", required_argument, NULL, 'b'},
        {"email", required_argument, NULL, 'e'},
        {"cdn-target", required_argument, NULL, 't'},
        {"eab-kid", required_argument, NULL, 'k'},
        {"eab-hmac-file", required_argument, NULL, 'm'},
        {"resolver", required_argument, NULL, 'r'},
        {"dns-listen", required_argument, NULL, 'l'},
        {"rfc2136", required_argument, NULL, 'u'},
        {"tsig-key-file", required_argument, NULL, 's'},
        {"key-type", required_argument, NULL, 'y'},
        {"rate-limits", required_argument, NULL, 'L'},
        {"validation-ns", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct config cfg;
    const char *reason;
    char host[64];
    int port, opt;
    config_init(&cfg);
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
        case 'z':
            if (hostname_normalize_zone(cfg.validation_zone, optarg, &reason) != 0) {
                cli_error("init: --validation-zone '%s': %s", optarg, reason);
                return EXIT_USAGE;
            }
            break;
        case 'd':
            bad = copy_opt(cfg.directory, sizeof(cfg.directory), "directory", optarg);
            break;
        case 'b':
            bad = copy_opt(cfg.ca_bundle, sizeof(cfg.ca_bundle), "ca-bundle", optarg) ||
                  readable_file("ca-bundle", optarg);
            break;
        case 'e':
            bad = copy_opt(cfg.email, sizeof(cfg.email), "email", optarg);
            if (!bad && (!strchr(optarg, '@') || strpbrk(optarg, " \t,<>\"'"))) {
                cli_error("init: --email '%s' is not an address", optarg);
                bad = 1;
            }
            break;
        case 't':
            if (cfg.n_cdn_targets == CONFIG_MAX_CDN_TARGETS) {
                cli_error("init: at most %d --cdn-target", CONFIG_MAX_CDN_TARGETS);
                return EXIT_USAGE;
            }
            if (normalize_cdn_target(cfg.cdn_targets[cfg.n_cdn_targets], sizeof(cfg.cdn_targets[0]),
                                     optarg) != 0) {
                cli_error("init: --cdn-target '%s' is neither a hostname suffix nor a CIDR",
                          optarg);
                return EXIT_USAGE;
            }
            cfg.n_cdn_targets++;
            break;
        case 'k':
            bad = copy_opt(cfg.eab_kid, sizeof(cfg.eab_kid), "eab-kid", optarg);
            break;
        case 'm':
            bad = copy_opt(cfg.eab_hmac_file, sizeof(cfg.eab_hmac_file), "eab-hmac-file", optarg) ||
                  readable_file("eab-hmac-file", optarg);
            break;
        case 'r':
            if (config_parse_addr(optarg, host, sizeof(host), &port, 53) != 0) {
                cli_error("init: --resolver '%s' is not ADDR[:PORT]", optarg);
                return EXIT_USAGE;
            }
            bad = copy_opt(cfg.resolver, sizeof(cfg.resolver), "resolver", optarg);
            break;
        case 'l':
            if (config_parse_addr(optarg, host, sizeof(host), &port, 53) != 0) {
                cli_error("init: --dns-listen '%s' is not ADDR:PORT", optarg);
                return EXIT_USAGE;
            }
            bad = copy_opt(cfg.dns_listen, sizeof(cfg.dns_listen), "dns-listen", optarg);
            break;
        case 'u':
            if (config_parse_addr(optarg, host, sizeof(host), &port, 53) != 0) {
                cli_error("init: --rfc2136 '%s' is not ADDR[:PORT]", optarg);
                return EXIT_USAGE;
            }
            bad = copy_opt(cfg.rfc2136_server, sizeof(cfg.rfc2136_server), "rfc2136", optarg);
            break;
        case 's':
            bad = copy_opt(cfg.tsig_key_file, sizeof(cfg.tsig_key_file), "tsig-key-file", optarg) ||
                  readable_file("tsig-key-file", optarg);
            break;
        case 'y':
            if (strcmp(optarg, "ec256") && strcmp(optarg, "ec384") && strcmp(optarg, "rsa2048") &&
                strcmp(optarg, "rsa3072") && strcmp(optarg, "rsa4096")) {
                cli_error("init: --key-type '%s': use ec256, ec384, rsa2048, rsa3072 or rsa4096",
                          optarg);
                return EXIT_USAGE;
            }
            bad = copy_opt(cfg.key_type, sizeof(cfg.key_type), "key-type", optarg);
            break;
        case 'L': {
            struct rl_profile prof;
            char why[256];
            if (rl_profile_parse(&prof, optarg, why, sizeof(why)) != 0) {
                cli_error("init: --rate-limits '%s': %s", optarg, why);
                return EXIT_USAGE;
            }
            bad = copy_opt(cfg.rate_limits, sizeof(cfg.rate_limits), "rate-limits", optarg);
            break;
        }
        case 'n':
            if (cfg.n_validation_ns == CONFIG_MAX_VALIDATION_NS) {
                cli_error("init: at most %d --validation-ns", CONFIG_MAX_VALIDATION_NS);
                return EXIT_USAGE;
            }
            if (normalize_validation_ns(cfg.validation_ns[cfg.n_validation_ns],
                                        sizeof(cfg.validation_ns[0]), optarg) != 0) {
                cli_error("init: --validation-ns '%s' is not NAME or NAME=ADDR (an IP address)",
                          optarg);
                return EXIT_USAGE;
            }
            cfg.n_validation_ns++;
            break;
        default:
            return EXIT_USAGE;
        }
        if (bad)
            return EXIT_USAGE;
    }
    if (optind < argc) {
        cli_error("init: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (!cfg.validation_zone[0] || !cfg.directory[0]) {
        cli_error("init: --validation-zone and --directory are required");
        return EXIT_USAGE;
    }
    /* DESIGN.md §6: every curl handle is restricted to https. */
    if (strncmp(cfg.directory, "https://", 8) != 0) {
        cli_error("init: --directory '%s' must be an https:// URL", cfg.directory);
        return EXIT_USAGE;
    }
    if (!!cfg.eab_kid[0] != !!cfg.eab_hmac_file[0]) {
        cli_error("init: --eab-kid and --eab-hmac-file go together");
        return EXIT_USAGE;
    }
    if (!!cfg.rfc2136_server[0] != !!cfg.tsig_key_file[0]) {
        cli_error("init: --rfc2136 needs --tsig-key-file (and the other way round)");
        return EXIT_USAGE;
    }

    /* A nameserver inside the zone needs glue: its address must be known. */
    for (size_t i = 0; i < cfg.n_validation_ns; i++) {
        const char *ns = cfg.validation_ns[i];
        if (!strchr(ns, '=') && in_zone(ns, strlen(ns), cfg.validation_zone)) {
            cli_error("init: --validation-ns %s is inside %s: give its address (NAME=ADDR)", ns,
                      cfg.validation_zone);
            return EXIT_USAGE;
        }
    }

    /* Targets are derived from the zone and stored: the zone cannot change under hosts. */
    struct config old;
    char err[512];
    int have_old = config_load(&old, c->state_dir, err, sizeof(err)) == 0;
    int rc = cli_open_store(c);
    if (rc)
        return rc;
    if (have_old && strcmp(old.validation_zone, cfg.validation_zone) != 0) {
        struct store_stats stats;
        if (store_stats(c->st, &stats) == 0 && stats.hosts > 0) {
            cli_error("init: %s already holds %zu hosts delegated to %s; the validation zone "
                      "cannot change to %s (customers' CNAMEs point at the old one)",
                      c->state_dir, stats.hosts, old.validation_zone, cfg.validation_zone);
            return EXIT_USAGE;
        }
    }
    if (config_save(&cfg, c->state_dir, err, sizeof(err)) != 0) {
        cli_error("init: %s", err);
        return EXIT_FATAL;
    }
    printf("initialized %s: validation zone %s, CA %s\n", c->state_dir, cfg.validation_zone,
           cfg.directory);
    return EXIT_DONE;
}
