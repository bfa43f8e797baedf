/*
 * main.c - certfleet-mockca: flags, setup, signals and the stats file.
 *
 *   certfleet-mockca --listen ADDR:PORT --ca-out FILE [options]
 *
 * See usage() for the options and bench/README.md for how the harness uses
 * them. The process prints one JSON line on stdout once it listens
 * ({"listening", "directory", "ca"}), writes the stats file on SIGUSR1, and
 * on SIGTERM or SIGINT writes it and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "err.h"
#include "log.h"
#include "mockca.h"
#include "timeutil.h"

static const char usage_text[] =
    "usage: certfleet-mockca [options]\n"
    "  --listen ADDR:PORT        where to listen (default 127.0.0.1:14000; [v6]:port)\n"
    "  --base-url URL            the URLs' prefix (default https://ADDR:PORT)\n"
    "  --ca-out FILE             write the root CA (PEM) here: the client's --ca-bundle\n"
    "  --ca-dir DIR              keep the CA keys and certificates in DIR across runs\n"
    "  --tls-name NAME           another DNS name for the TLS certificate (repeatable)\n"
    "  --verify-jws              verify every JWS and CSR signature (default)\n"
    "  --trust-jws               skip signature checks (measure the client alone)\n"
    "  --validate dns|none       dns-01 over DNS, or every challenge valid at once (default none)\n"
    "  --dns-server ADDR[:PORT]  the resolver (or authoritative server) --validate dns asks\n"
    "  --dns-authoritative       ask without recursion; follow CNAMEs by asking again\n"
    "  --dns-timeout-ms N        per try (default 2000; 3 tries)\n"
    "  --validation-ms N         --validate none: a challenge is processing this long (0)\n"
    "  --processing-ms N         a finalized order is processing this long (0)\n"
    "  --latency-ms N            delay every answer by N ms\n"
    "  --fail-429 P, --fail-503 P, --bad-nonce P, --drop P, --hang P\n"
    "                            inject errors into P percent of the requests (0..100)\n"
    "  --inject-on LIST          endpoints that get them (comma-separated, or 'all'; default\n"
    "                            every endpoint but directory, new-nonce, new-account)\n"
    "  --retry-after S           Retry-After of injected 429 and 503 answers (default 1)\n"
    "  --hostile MODE            spoil the answers of every order (README: hostile answers);\n"
    "                            without it, an order whose first name's first label is\n"
    "                            hx-MODE or hx-MODE-... gets MODE\n"
    "  --ratelimit SPEC          enforce limits: letsencrypt, none, and overrides\n"
    "                            NAME=none|COUNT/DURATION[:BURST] (default none)\n"
    "  --ratelimit-scale F       divide every limit's period by F (fast scenarios)\n"
    "  --ari-window S,E          ARI window as percent of the lifetime (default 66,70)\n"
    "  --ari-retry-after S       Retry-After of renewalInfo answers (default 21600)\n"
    "  --cert-lifetime DURATION  of certificates (default 90d)\n"
    "  --order-lifetime DURATION of orders and authorizations (default 7d)\n"
    "  --cert-cache N            certificates kept as PEM (default 100000; others re-signed)\n"
    "  --eab-kid ID --eab-hmac-file FILE   require external account binding\n"
    "  --max-streams N           HTTP/2 concurrent streams per connection (default 10000)\n"
    "  --max-conns N             connections (default 4096)\n"
    "  --stats-json FILE         written on SIGUSR1, SIGTERM and SIGINT\n"
    "  --seed N                  seed of the error injection (default random)\n"
    "  --log-level LEVEL         debug, info, warn, error (default info)\n";

enum {
    OPT_LISTEN = 256,
    OPT_BASE_URL,
    OPT_CA_OUT,
    OPT_CA_DIR,
    OPT_TLS_NAME,
    OPT_VERIFY,
    OPT_TRUST,
    OPT_VALIDATE,
    OPT_DNS_SERVER,
    OPT_DNS_AUTH,
    OPT_DNS_TIMEOUT,
    OPT_VALIDATION_MS,
    OPT_PROCESSING_MS,
    OPT_LATENCY,
    OPT_F429,
    OPT_F503,
    OPT_BAD_NONCE,
    OPT_DROP,
    OPT_HANG,
    OPT_INJECT_ON,
    OPT_RETRY_AFTER,
    OPT_HOSTILE,
    OPT_RATELIMIT,
    OPT_RL_SCALE,
    OPT_ARI_WINDOW,
    OPT_ARI_RETRY,
    OPT_LIFETIME,
    OPT_ORDER_LIFETIME,
    OPT_CERT_CACHE,
    OPT_EAB_KID,
    OPT_EAB_FILE,
    OPT_MAX_STREAMS,
    OPT_MAX_CONNS,
    OPT_STATS,
    OPT_SEED,
    OPT_LOG_LEVEL,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"base-url", required_argument, NULL, OPT_BASE_URL},
    {"ca-out", required_argument, NULL, OPT_CA_OUT},
    {"ca-dir", required_argument, NULL, OPT_CA_DIR},
    {"tls-name", required_argument, NULL, OPT_TLS_NAME},
    {"verify-jws", no_argument, NULL, OPT_VERIFY},
    {"trust-jws", no_argument, NULL, OPT_TRUST},
    {"validate", required_argument, NULL, OPT_VALIDATE},
    {"dns-server", required_argument, NULL, OPT_DNS_SERVER},
    {"dns-authoritative", no_argument, NULL, OPT_DNS_AUTH},
    {"dns-timeout-ms", required_argument, NULL, OPT_DNS_TIMEOUT},
    {"validation-ms", required_argument, NULL, OPT_VALIDATION_MS},
    {"processing-ms", required_argument, NULL, OPT_PROCESSING_MS},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"fail-429", required_argument, NULL, OPT_F429},
    {"fail-503", required_argument, NULL, OPT_F503},
    {"bad-nonce", required_argument, NULL, OPT_BAD_NONCE},
    {"drop", required_argument, NULL, OPT_DROP},
    {"hang", required_argument, NULL, OPT_HANG},
    {"inject-on", required_argument, NULL, OPT_INJECT_ON},
    {"retry-after", required_argument, NULL, OPT_RETRY_AFTER},
    {"hostile", required_argument, NULL, OPT_HOSTILE},
    {"ratelimit", required_argument, NULL, OPT_RATELIMIT},
    {"ratelimit-scale", required_argument, NULL, OPT_RL_SCALE},
    {"ari-window", required_argument, NULL, OPT_ARI_WINDOW},
    {"ari-retry-after", required_argument, NULL, OPT_ARI_RETRY},
    {"cert-lifetime", required_argument, NULL, OPT_LIFETIME},
    {"order-lifetime", required_argument, NULL, OPT_ORDER_LIFETIME},
    {"cert-cache", required_argument, NULL, OPT_CERT_CACHE},
    {"eab-kid", required_argument, NULL, OPT_EAB_KID},
    {"eab-hmac-file", required_argument, NULL, OPT_EAB_FILE},
    {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"stats-json", required_argument, NULL, OPT_STATS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

#define MAX_TLS_NAMES 16

/* The process: one loop and what runs on it. */
static struct {
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_usr1;
    struct mc_issuer issuer;
    struct mc_ca *ca;
    struct mc_net *net;
    struct mc_dnsval *dns;
    const char *stats_path;
    int stopping;
} g;

static int fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* fail_usage says what is wrong with the command line and returns exit status 2. */
static int fail_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "certfleet-mockca: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return 2;
}

/* parse_int reads a decimal integer in [lo, hi]; returns 0 or -1. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_pct(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end || v < 0 || v > 100)
        return -1;
    *out = v / 100.0;
    return 0;
}

/*
 * parse_hostport reads ADDR:PORT, [V6]:PORT, or ADDR (port def) into sa.
 * host gets the address text. Returns 0 or -1.
 */
static int parse_hostport(const char *s, int def_port, struct sockaddr_storage *sa, char *host,
                          size_t hostlen)
{
    const char *colon;
    long port = def_port;
    char h[128];

    memset(sa, 0, sizeof(*sa));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (size_t)(close - s - 1) >= sizeof(h))
            return -1;
        memcpy(h, s + 1, (size_t)(close - s - 1));
        h[close - s - 1] = '\0';
        if (close[1] == ':' && parse_int(close + 2, 1, 65535, &port) != 0)
            return -1;
        if (close[1] && close[1] != ':')
            return -1;
        str_copy(host, hostlen, h);
        return uv_ip6_addr(h, (int)port, (struct sockaddr_in6 *)sa) == 0 ? 0 : -1;
    }
    colon = strrchr(s, ':');
    if (colon) {
        if ((size_t)(colon - s) >= sizeof(h) || parse_int(colon + 1, 1, 65535, &port) != 0)
            return -1;
        memcpy(h, s, (size_t)(colon - s));
        h[colon - s] = '\0';
    } else {
        str_copy(h, sizeof(h), s);
    }
    str_copy(host, hostlen, h);
    return uv_ip4_addr(h, (int)port, (struct sockaddr_in *)sa) == 0 ? 0 : -1;
}

static uint32_t inject_mask_parse(const char *s, int *ok)
{
    uint32_t mask = 0;
    char item[64];

    *ok = 1;
    if (strcmp(s, "all") == 0)
        return 0xffffffffu;
    while (*s) {
        size_t n = strcspn(s, ",");
        int found = 0;
        if (n >= sizeof(item)) {
            *ok = 0;
            return 0;
        }
        memcpy(item, s, n);
        item[n] = '\0';
        for (int e = 0; e < MC_EP__COUNT; e++) {
            if (strcmp(item, mc_ep_name((enum mc_ep)e)) == 0) {
                mask |= 1u << e;
                found = 1;
            }
        }
        if (!found) {
            *ok = 0;
            return 0;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return mask;
}

/* write_stats writes the stats document to g.stats_path atomically (a temporary file renamed). */
static void write_stats(void)
{
    struct buf b;
    char tmp[4096];
    FILE *f;

    if (!g.stats_path)
        return;
    buf_init(&b);
    mc_ca_stats_json(g.ca, &b);
    buf_putc(&b, '\n');
    str_fmt(tmp, sizeof(tmp), "%s.tmp", g.stats_path);
    f = fopen(tmp, "w");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0 ||
        rename(tmp, g.stats_path) != 0)
        fprintf(stderr, "certfleet-mockca: cannot write %s: %s\n", g.stats_path, strerror(errno));
    buf_cleanup(&b);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    write_stats();
    if (signum == SIGUSR1 || g.stopping)
        return;
    g.stopping = 1;
    log_event(LOG_INFO, "mockca_stop", "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    mc_net_close(g.net);
    mc_ca_set_dnsval(g.ca, NULL);
    mc_dnsval_free(g.dns);
    g.dns = NULL;
    uv_close((uv_handle_t *)&g.sig_term, NULL);
    uv_close((uv_handle_t *)&g.sig_int, NULL);
    uv_close((uv_handle_t *)&g.sig_usr1, NULL);
}

static int read_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return -errno;
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return (int)n;
}

int main(int argc, char **argv)
{
    struct mc_opts o;
    struct mc_net_opts no;
    struct sockaddr_storage listen_sa, dns_sa;
    char listen_host[128] = "127.0.0.1", base[MC_URL_MAX], err[512];
    const char *listen_arg = "127.0.0.1:14000", *ca_out = NULL, *ca_dir = NULL, *dns_server = NULL,
               *rl_spec = NULL, *eab_file = NULL;
    const char *tls_names[MAX_TLS_NAMES];
    size_t ntls = 0;
    double rl_scale = 1;
    int dns_recurse = 1, dns_timeout = 2000, opt, rc;
    long v;
    uint8_t eab_key[256];
    EVP_PKEY *tls_key = NULL;
    struct buf tls_cert;
    struct mc_dnsval_opts dvo;

    memset(&o, 0, sizeof(o));
    o.verify_jws = 1;
    o.lifetime_s = 90 * 86400;
    o.order_lifetime_s = 7 * 86400;
    o.ari_start = 0.66;
    o.ari_end = 0.70;
    o.ari_retry_after = 21600;
    o.retry_after = 1;
    o.cert_cache = 100000;
    o.inject_mask = 0xffffffffu & ~((1u << MC_EP_DIRECTORY) | (1u << MC_EP_NEW_NONCE) |
                                    (1u << MC_EP_NEW_ACCOUNT) | (1u << MC_EP_STATS) |
                                    (1u << MC_EP_ISSUER) | (1u << MC_EP_UNKNOWN));
    memset(&no, 0, sizeof(no));
    base[0] = '\0';
    log_setup(LOG_INFO, 1, stderr);

    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            listen_arg = optarg;
            break;
        case OPT_BASE_URL:
            str_copy(base, sizeof(base), optarg);
            break;
        case OPT_CA_OUT:
            ca_out = optarg;
            break;
        case OPT_CA_DIR:
            ca_dir = optarg;
            break;
        case OPT_TLS_NAME:
            if (ntls == MAX_TLS_NAMES)
                return fail_usage("too many --tls-name");
            tls_names[ntls++] = optarg;
            break;
        case OPT_VERIFY:
            o.verify_jws = 1;
            break;
        case OPT_TRUST:
            o.verify_jws = 0;
            break;
        case OPT_VALIDATE:
            if (strcmp(optarg, "dns") == 0)
                o.validate_dns = 1;
            else if (strcmp(optarg, "none") == 0)
                o.validate_dns = 0;
            else
                return fail_usage("--validate takes dns or none, not %s", optarg);
            break;
        case OPT_DNS_SERVER:
            dns_server = optarg;
            break;
        case OPT_DNS_AUTH:
            dns_recurse = 0;
            break;
        case OPT_DNS_TIMEOUT:
            if (parse_int(optarg, 1, 60000, &v) != 0)
                return fail_usage("bad --dns-timeout-ms %s", optarg);
            dns_timeout = (int)v;
            break;
        case OPT_VALIDATION_MS:
        case OPT_PROCESSING_MS:
        case OPT_LATENCY:
            if (parse_int(optarg, 0, 600000, &v) != 0)
                return fail_usage("bad millisecond value %s", optarg);
            if (opt == OPT_VALIDATION_MS)
                o.validation_ms = (int)v;
            else if (opt == OPT_PROCESSING_MS)
                o.processing_ms = (int)v;
            else
                no.latency_ms = (int)v;
            break;
        case OPT_F429:
        case OPT_F503:
        case OPT_BAD_NONCE:
        case OPT_DROP:
        case OPT_HANG: {
            double p;
            if (parse_pct(optarg, &p) != 0)
                return fail_usage("bad percentage %s (0..100)", optarg);
            if (opt == OPT_F429)
                o.p429 = p;
            else if (opt == OPT_F503)
                o.p503 = p;
            else if (opt == OPT_BAD_NONCE)
                o.pbadnonce = p;
            else if (opt == OPT_DROP)
                o.pdrop = p;
            else
                o.phang = p;
            break;
        }
        case OPT_INJECT_ON: {
            int ok;
            o.inject_mask = inject_mask_parse(optarg, &ok);
            if (!ok)
                return fail_usage("bad --inject-on %s (endpoint names, comma-separated)", optarg);
            break;
        }
        case OPT_RETRY_AFTER:
        case OPT_ARI_RETRY:
            if (parse_int(optarg, 1, 86400 * 30, &v) != 0)
                return fail_usage("bad seconds %s", optarg);
            if (opt == OPT_RETRY_AFTER)
                o.retry_after = (int)v;
            else
                o.ari_retry_after = (int)v;
            break;
        case OPT_HOSTILE: {
            int m = mc_hx_parse(optarg);
            if (m < 0)
                return fail_usage("unknown --hostile mode %s", optarg);
            o.hostile = (enum mc_hx)m;
            break;
        }
        case OPT_RATELIMIT:
            rl_spec = optarg;
            break;
        case OPT_RL_SCALE: {
            char *end;
            rl_scale = strtod(optarg, &end);
            if (end == optarg || *end || rl_scale < 1)
                return fail_usage("bad --ratelimit-scale %s (at least 1)", optarg);
            break;
        }
        case OPT_ARI_WINDOW: {
            double s, e;
            char extra;
            if (sscanf(optarg, "%lf,%lf%c", &s, &e, &extra) != 2 || s < 0 || e <= s || e > 100)
                return fail_usage("bad --ari-window %s (START,END percent, START < END)", optarg);
            o.ari_start = s / 100;
            o.ari_end = e / 100;
            break;
        }
        case OPT_LIFETIME:
        case OPT_ORDER_LIFETIME: {
            int64_t secs;
            if (cf_duration_parse(&secs, optarg) != 0 || secs < 1 || secs > 3650LL * 86400)
                return fail_usage("bad duration %s (e.g. 90d, 6h, 300)", optarg);
            if (opt == OPT_LIFETIME)
                o.lifetime_s = secs;
            else
                o.order_lifetime_s = secs;
            break;
        }
        case OPT_CERT_CACHE:
            if (parse_int(optarg, 1, 100000000, &v) != 0)
                return fail_usage("bad --cert-cache %s", optarg);
            o.cert_cache = (size_t)v;
            break;
        case OPT_EAB_KID:
            o.eab_kid = optarg;
            break;
        case OPT_EAB_FILE:
            eab_file = optarg;
            break;
        case OPT_MAX_STREAMS:
            if (parse_int(optarg, 1, 1000000, &v) != 0)
                return fail_usage("bad --max-streams %s", optarg);
            no.max_streams = (uint32_t)v;
            break;
        case OPT_MAX_CONNS:
            if (parse_int(optarg, 1, 1000000, &v) != 0)
                return fail_usage("bad --max-conns %s", optarg);
            no.max_conns = (int)v;
            break;
        case OPT_STATS:
            g.stats_path = optarg;
            break;
        case OPT_SEED: {
            char *end;
            o.seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end)
                return fail_usage("bad --seed %s", optarg);
            break;
        }
        case OPT_LOG_LEVEL: {
            int lv = log_level_parse(optarg);
            if (lv < 0)
                return fail_usage("bad --log-level %s", optarg);
            log_setup((enum log_level)lv, 1, stderr);
            break;
        }
        case OPT_HELP:
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc)
        return fail_usage("unexpected argument %s", argv[optind]);
    if (parse_hostport(listen_arg, 14000, &listen_sa, listen_host, sizeof(listen_host)) != 0)
        return fail_usage("bad --listen %s (ADDR:PORT)", listen_arg);
    if (!base[0]) {
        int port = listen_sa.ss_family == AF_INET6
                       ? ntohs(((struct sockaddr_in6 *)&listen_sa)->sin6_port)
                       : ntohs(((struct sockaddr_in *)&listen_sa)->sin_port);
        if (listen_sa.ss_family == AF_INET6)
            str_fmt(base, sizeof(base), "https://[%s]:%d", listen_host, port);
        else
            str_fmt(base, sizeof(base), "https://%s:%d", listen_host, port);
    }
    while (strlen(base) > 8 && base[strlen(base) - 1] == '/')
        base[strlen(base) - 1] = '\0';
    o.base_url = base;
    if (o.validate_dns) {
        if (!dns_server)
            return fail_usage("--validate dns needs --dns-server");
        if (parse_hostport(dns_server, 53, &dns_sa, err, sizeof(err)) != 0)
            return fail_usage("bad --dns-server %s", dns_server);
    }
    if (rl_spec) {
        if (mc_rl_parse(o.limits, rl_spec, rl_scale, err, sizeof(err)) != 0)
            return fail_usage("%s", err);
        o.ratelimit = 1;
    }
    if (!!o.eab_kid != !!eab_file)
        return fail_usage("--eab-kid and --eab-hmac-file go together");
    if (eab_file) {
        char text[512];
        long n;
        rc = read_file(eab_file, text, sizeof(text));
        n = rc > 0 ? mc_b64url_decode(eab_key, sizeof(eab_key), text, (size_t)rc) : -1;
        if (n < 16)
            return fail_usage("%s: not a base64url HMAC key of at least 16 octets", eab_file);
        o.eab_key = eab_key;
        o.eab_key_len = (size_t)n;
    }
    signal(SIGPIPE, SIG_IGN);

    if (mc_issuer_init(&g.issuer, ca_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "certfleet-mockca: %s\n", err);
        return 1;
    }
    if (ca_out) {
        FILE *f = fopen(ca_out, "w");
        if (!f ||
            fwrite(g.issuer.root_pem.data, 1, g.issuer.root_pem.len, f) != g.issuer.root_pem.len ||
            fclose(f) != 0) {
            fprintf(stderr, "certfleet-mockca: cannot write %s: %s\n", ca_out, strerror(errno));
            return 1;
        }
    }
    {
        /* The TLS certificate names the listening address, the base URL's host and localhost. */
        const char *dns[MAX_TLS_NAMES + 2];
        uint8_t ips[4][16];
        size_t ip_lens[4], ndns = 0, nips = 0;
        char bhost[128] = "";
        const char *h = base + 8, *e;
        struct sockaddr_in6 a6;
        struct sockaddr_in a4;
        const char *cands[3];
        dns[ndns++] = "localhost";
        for (size_t i = 0; i < ntls; i++)
            dns[ndns++] = tls_names[i];
        if (*h == '[') {
            e = strchr(h, ']');
            if (e && (size_t)(e - h - 1) < sizeof(bhost)) {
                memcpy(bhost, h + 1, (size_t)(e - h - 1));
                bhost[e - h - 1] = '\0';
            }
        } else {
            size_t n = strcspn(h, ":/");
            if (n < sizeof(bhost)) {
                memcpy(bhost, h, n);
                bhost[n] = '\0';
            }
        }
        cands[0] = listen_host;
        cands[1] = bhost;
        cands[2] = "127.0.0.1";
        for (int i = 0; i < 3; i++) {
            int dup = 0;
            if (uv_ip4_addr(cands[i], 0, &a4) == 0) {
                for (size_t k = 0; k < nips; k++)
                    dup |= ip_lens[k] == 4 && memcmp(ips[k], &a4.sin_addr, 4) == 0;
                if (!dup && a4.sin_addr.s_addr != 0) {
                    memcpy(ips[nips], &a4.sin_addr, 4);
                    ip_lens[nips++] = 4;
                }
            } else if (uv_ip6_addr(cands[i], 0, &a6) == 0) {
                memcpy(ips[nips], &a6.sin6_addr, 16);
                ip_lens[nips++] = 16;
            } else if (cands[i][0] && strcmp(cands[i], "localhost") != 0 && i == 1) {
                dns[ndns++] = cands[i];
            }
        }
        buf_init(&tls_cert);
        if (mc_tls_identity(&g.issuer, &tls_key, &tls_cert, dns, ndns, (const uint8_t(*)[16])ips,
                            ip_lens, nips) != 0) {
            fprintf(stderr, "certfleet-mockca: cannot make the TLS certificate\n");
            return 1;
        }
    }

    uv_loop_init(&g.loop);
    if (mc_ca_new(&g.ca, &g.loop, &o, &g.issuer, err, sizeof(err)) != 0) {
        fprintf(stderr, "certfleet-mockca: %s\n", err);
        return 2;
    }
    if (o.validate_dns) {
        memset(&dvo, 0, sizeof(dvo));
        dvo.server = (const struct sockaddr *)&dns_sa;
        dvo.recurse = dns_recurse;
        dvo.timeout_ms = dns_timeout;
        dvo.tries = 3;
        rc = mc_dnsval_new(&g.dns, &g.loop, &dvo, mc_ca_dnsval_done, g.ca);
        if (rc) {
            fprintf(stderr, "certfleet-mockca: DNS client: %s\n", uv_strerror(rc));
            return 1;
        }
        mc_ca_set_dnsval(g.ca, g.dns);
    }
    no.listen = (const struct sockaddr *)&listen_sa;
    no.key = tls_key;
    no.cert = (const uint8_t *)tls_cert.data;
    no.cert_len = tls_cert.len;
    if (mc_net_new(&g.net, &g.loop, &no, g.ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "certfleet-mockca: %s: %s\n", listen_arg, err);
        return 1;
    }
    uv_signal_init(&g.loop, &g.sig_term);
    uv_signal_init(&g.loop, &g.sig_int);
    uv_signal_init(&g.loop, &g.sig_usr1);
    uv_signal_start(&g.sig_term, on_signal, SIGTERM);
    uv_signal_start(&g.sig_int, on_signal, SIGINT);
    uv_signal_start(&g.sig_usr1, on_signal, SIGUSR1);

    printf("{\"listening\":\"%s\",\"directory\":\"%s/dir\",\"ca\":\"%s\",\"verify_jws\":%s,"
           "\"validate\":\"%s\",\"pid\":%d}\n",
           listen_arg, base, ca_out ? ca_out : "", o.verify_jws ? "true" : "false",
           o.validate_dns ? "dns" : "none", (int)getpid());
    fflush(stdout);

    uv_run(&g.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&g.loop);
    mc_ca_free(g.ca);
    mc_issuer_cleanup(&g.issuer);
    EVP_PKEY_free(tls_key);
    buf_cleanup(&tls_cert);
    return rc == 0 ? 0 : 1;
}
