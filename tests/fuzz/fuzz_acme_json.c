/*
 * fuzz_acme_json.c - every parser of a CA's JSON: directory, problem
 * document, order, authorization, RenewalInfo (RFC 9773).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Large structs: on the heap, so ASan sees every byte written. */
    struct acme_directory *d = malloc(sizeof(*d));
    struct acme_problem *p = malloc(sizeof(*p));
    struct acme_order *o = malloc(sizeof(*o));
    struct acme_authz *a = malloc(sizeof(*a));
    struct acme_renewal_info *ri = malloc(sizeof(*ri));
    const char *err = NULL;
    const char *json = (const char *)data;
    if (acme_directory_parse(d, json, size, &err) == 0 && strncmp(d->new_order, "https://", 8))
        abort();
    if (acme_problem_parse(p, json, size) == 0)
        (void)acme_problem_is_paused(p);
    if (acme_order_parse(o, json, size, &err) == 0 &&
        (o->nauthz == 0 || o->nauthz > ACME_MAX_AUTHZ))
        abort();
    if (acme_authz_parse(a, json, size, &err) == 0 && a->has_dns01 && !a->dns01_token[0])
        abort();
    /* RFC 9773 §4.2: what parses is a window that ends after it starts. */
    if (acme_renewal_info_parse(ri, json, size, &err) == 0 && ri->end <= ri->start)
        abort();
    free(d);
    free(p);
    free(o);
    free(a);
    free(ri);
    return 0;
}
