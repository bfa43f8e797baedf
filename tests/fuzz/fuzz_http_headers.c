/*
 * fuzz_http_headers.c - the HTTP response header parsers
 * (engine/http/http_parse.c) on arbitrary bytes.
 *
 * The input is split into lines at '\n' and fed to http_hdrs_add as curl
 * would; every line is also given to http_parse_retry_after and
 * http_parse_link directly, so their own bounds are exercised on values
 * that are not well-formed header lines.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct http_hdrs h;
    http_hdrs_init(&h);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        int64_t t = 0;
        struct http_link links[4];
        size_t n = 0;
        struct http_line l;

        (void)http_hdrs_add(&h, p, len, 1700000000);
        (void)http_parse_header_line(&l, p, len);
        if (http_parse_retry_after(&t, p, len, 1700000000) == 0 &&
            (t < 1700000000 || t > 1700000000 + HTTP_RETRY_AFTER_MAX))
            __builtin_trap();
        (void)http_parse_link(links, 4, &n, p, len);
        if (n > 4)
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (!links[i].url || strlen(links[i].url) > HTTP_URL_MAX)
                __builtin_trap();
        http_links_free(links, n);
        p += len;
    }
    if (h.nlinks > HTTP_LINKS_MAX || h.bytes > HTTP_HEADERS_MAX)
        __builtin_trap();
    http_hdrs_cleanup(&h);
    return 0;
}
