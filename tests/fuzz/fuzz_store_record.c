/*
 * fuzz_store_record.c - libFuzzer target for the store's value decoders:
 * host records (store/record.c) and published TXT sets (store_txt_decode).
 *
 * A store file is trusted no more than the disk it sits on: a torn page, a
 * bit flip or a newer certfleet's record must be refused, never read past.
 * The same bytes are decoded as a host record, read by the fast path that
 * takes only next_action, and decoded as a TXT set. Whatever decodes must
 * agree with the fast path, keep every string NUL-terminated inside its
 * array and every enum in range, and survive encode and decode unchanged
 * (the encoding of a decoded record is canonical: decoding and encoding it
 * again gives the same bytes, never more than the input's).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "record.h"
#include "store.h"

/* check fails the run loudly: a broken invariant is a bug libFuzzer must report. */
static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_str(const char *s, size_t size)
{
    /* A repeated field may leave a longer earlier value's tail after the NUL: harmless. */
    check(strnlen(s, size) < size);
}

static void check_record(const struct host_record *r)
{
    check(r->name[0] != '\0');
    check_str(r->name, sizeof(r->name));
    check_str(r->regdom, sizeof(r->regdom));
    check_str(r->target, sizeof(r->target));
    check_str(r->customer, sizeof(r->customer));
    check_str(r->deleg_seen, sizeof(r->deleg_seen));
    check_str(r->last_error, sizeof(r->last_error));
    check_str(r->cert_serial, sizeof(r->cert_serial));
    check_str(r->ari_cert_id, sizeof(r->ari_cert_id));
    check_str(r->order_url, sizeof(r->order_url));
    check(r->state < HOST_STATE__COUNT && strcmp(host_state_name(r->state), "?") != 0);
    check(r->reason < STOP_REASON__COUNT && strcmp(stop_reason_name(r->reason), "?") != 0);
    check(r->deleg_result < DELEG_RESULT__COUNT &&
          strcmp(deleg_result_name(r->deleg_result), "?") != 0);
    check(r->live_result < LIVE_RESULT__COUNT &&
          strcmp(live_result_name(r->live_result), "?") != 0);
    /* Times are decoded from unsigned varints bounded by INT64_MAX. */
    check(r->created_at >= 0 && r->next_action >= 0 && r->not_after >= 0 && r->retry_at >= 0);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
    /* Large structs: on the heap, so ASan sees every byte written. */
    struct host_record *rec = malloc(sizeof(*rec));
    struct host_record *back = malloc(sizeof(*back));
    struct buf enc, enc2;
    int64_t na = -1;

    int rc = host_record_decode(rec, data, size);
    int rc_na = host_record_next_action(data, size, &na);
    check(rc == 0 || rc == CF_ECORRUPT || rc == CF_ENEWER_SCHEMA);
    check(rc_na == 0 || rc_na == CF_ECORRUPT || rc_na == CF_ENEWER_SCHEMA);
    /* A newer schema is recognised by both readers alike: neither guesses. */
    check((rc == CF_ENEWER_SCHEMA) == (rc_na == CF_ENEWER_SCHEMA));
    if (rc != 0)
        goto out_free_recs;

    /* The store moves due-index entries by the fast path's answer: it must be the record's. */
    check(rc_na == 0 && na == rec->next_action);
    check_record(rec);

    buf_init(&enc);
    buf_init(&enc2);
    host_record_encode(&enc, rec);
    check(enc.len <= size); /* minimal varints, no zero fields, no repeats */
    check(host_record_decode(back, enc.data, enc.len) == 0);
    check_record(back);
    /* Every field is encoded (the field table), so equal encodings mean equal records. */
    host_record_encode(&enc2, back);
    check(enc.len == enc2.len && memcmp(enc.data, enc2.data, enc.len) == 0);
    check(host_record_next_action(enc.data, enc.len, &na) == 0 && na == rec->next_action);
    buf_cleanup(&enc2);
    buf_cleanup(&enc);
out_free_recs:
    free(back);
    free(rec);
}

struct txt_ctx {
    const uint8_t *data;
    size_t size;
    size_t seen; /* octets accounted for: the version octet, then length octets and values */
    size_t values;
};

static int on_txt(void *ctx, const char *value, size_t len)
{
    struct txt_ctx *t = ctx;
    const uint8_t *v = (const uint8_t *)value;
    /* Each value lies inside the input, right after its length octet. */
    check(len >= 1 && len <= STORE_TXT_MAX);
    check(v > t->data && v + len <= t->data + t->size);
    check((size_t)(v - t->data) == t->seen + 1 && v[-1] == len);
    t->seen += 1 + len;
    t->values++;
    /* Stop early now and then, so the callback's result is returned as is. */
    return t->values == 200 ? 7 : 0;
}

static void fuzz_txt(const uint8_t *data, size_t size)
{
    struct txt_ctx t = {.data = data, .size = size, .seen = 1};
    int rc = store_txt_decode(data, size, on_txt, &t);
    check(rc == 0 || rc == CF_ECORRUPT || rc == 7);
    if (rc == 0)
        check(size >= 1 && t.seen == size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_record(data, size);
    fuzz_txt(data, size);
    return 0;
}
