/*
 * cmd_version.c - `certfleet version` and the run-time backend check.
 */
#include <stdio.h>
#include <string.h>

#include <ares.h>
#include <curl/curl.h>
#include <idn2.h>
#include <jansson.h>
#include <libpsl.h>
#include <lmdb.h>
#include <uv.h>

#include "cli.h"
#include "crypto.h"

/*
 * curl_tls_ok returns 1 when curl's TLS backend is the one this build was
 * made for (CF_CURL_TLS_EXPECTED, set by cmake/deps.cmake).
 */
static int curl_tls_ok(const curl_version_info_data *v)
{
    return v->ssl_version &&
           strncmp(v->ssl_version, CF_CURL_TLS_EXPECTED, strlen(CF_CURL_TLS_EXPECTED)) == 0;
}

int cli_check_backends(void)
{
    char path[512];
    if (crypto_backend_check(path, sizeof(path)) != 0) {
        cli_error("crypto symbols come from %s, not from %s selected at build time; "
                  "another libcrypto in the process has captured them (DESIGN.md §6)",
                  path[0] ? path : "an unknown object", crypto_backend_name());
        return EXIT_FATAL;
    }
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!curl_tls_ok(v)) {
        cli_error("libcurl uses TLS backend '%s', but this build needs %s (DESIGN.md §6)",
                  v->ssl_version ? v->ssl_version : "none", CF_CURL_TLS_EXPECTED);
        return EXIT_FATAL;
    }
    return 0;
}

int cmd_version(struct cli *c, int argc, char **argv)
{
    (void)c;
    (void)argv;
    if (argc > 1) {
        cli_error("version takes no arguments");
        return EXIT_USAGE;
    }
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    int major, minor, patch;
    char path[512];
    int crypto_ok = crypto_backend_check(path, sizeof(path)) == 0;
    printf("certfleet %s\n", CERTFLEET_VERSION);
    printf("crypto backend: %s from %s%s\n", crypto_backend_version(), path,
           crypto_ok ? "" : " [WRONG LIBRARY]");
    printf("libcurl %s, TLS %s, HTTP/2 %s%s\n", cv->version,
           cv->ssl_version ? cv->ssl_version : "none",
           (cv->features & CURL_VERSION_HTTP2) ? "yes" : "no",
           curl_tls_ok(cv) ? "" : " [WRONG TLS BACKEND]");
    printf("libuv %s\n", uv_version_string());
    printf("c-ares %s\n", ares_version(NULL));
    printf("LMDB %s\n", mdb_version(&major, &minor, &patch));
    printf("jansson %s\n", jansson_version_str());
    printf("libpsl %s (list: %s)\n", psl_get_version(), psl_dist_filename());
    printf("libidn2 %s\n", idn2_check_version(NULL));
    return crypto_ok && curl_tls_ok(cv) ? EXIT_DONE : EXIT_FATAL;
}
