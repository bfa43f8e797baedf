/*
 * record.c - the versioned encoding of host records.
 */
#include <stddef.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "record.h"

enum field_kind { F_U8, F_U32, F_I64, F_STR };

/*
 * One row a field. Tags are stored: never reuse or renumber one; a new field
 * gets a new tag, and a change of meaning gets a new schema version. Integer
 * tags are below 64, string tags from 64 (record.h).
 */
struct field {
    uint8_t tag;
    uint8_t kind;
    uint16_t size; /* for strings: the array's size including NUL */
    size_t off;
};

#define FI(tag, kind, member)                                                                      \
    {                                                                                              \
        tag, kind, 0, offsetof(struct host_record, member)                                         \
    }
#define FS(tag, member)                                                                            \
    {                                                                                              \
        tag, F_STR, sizeof(((struct host_record *)0)->member),                                     \
            offsetof(struct host_record, member)                                                   \
    }

static const struct field fields[] = {
    FI(1, F_U8, state),
    FI(2, F_U8, reason),
    FI(3, F_U8, leftover),
    FI(4, F_I64, created_at),
    FI(5, F_I64, state_since),
    FI(6, F_I64, next_action),
    FI(7, F_U8, deleg_result),
    FI(8, F_I64, deleg_checked_at),
    FI(9, F_I64, deleg_first_ok),
    FI(10, F_I64, deleg_last_ok),
    FI(11, F_U32, deleg_bad_checks),
    FI(12, F_U8, live_result),
    FI(13, F_I64, live_checked_at),
    FI(14, F_I64, live_first_seen),
    FI(15, F_I64, live_last_seen),
    FI(16, F_U32, live_bad_checks),
    FI(17, F_U32, failures),
    FI(18, F_I64, first_failure_at),
    FI(19, F_I64, not_before),
    FI(20, F_I64, not_after),
    FI(21, F_U32, certs_issued),
    FI(22, F_I64, ari_start),
    FI(23, F_I64, ari_end),
    FI(24, F_I64, ari_retry_after),
    FI(25, F_I64, renew_at),
    FI(26, F_I64, order_started_at),
    FI(27, F_I64, deleg_bad_since),
    FI(28, F_I64, live_bad_since),
    FI(29, F_I64, retry_at),
    FI(30, F_U8, rearmed),
    FS(64, name),
    FS(65, regdom),
    FS(66, target),
    FS(67, customer),
    FS(68, deleg_seen),
    FS(69, last_error),
    FS(70, cert_serial),
    FS(71, ari_cert_id),
    FS(72, order_url),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

void host_record_init(struct host_record *rec)
{
    memset(rec, 0, sizeof(*rec));
}

static void put_varint(struct buf *out, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        tmp[n++] = b | (v ? 0x80 : 0);
    } while (v);
    buf_append(out, tmp, n);
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return CF_ECORRUPT;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return CF_ECORRUPT;
}

void host_record_encode(struct buf *out, const struct host_record *rec)
{
    const char *base = (const char *)rec;
    uint8_t version = STORE_SCHEMA_VERSION;
    buf_append(out, &version, 1);
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        const char *p = base + f->off;
        uint64_t v = 0;
        switch (f->kind) {
        case F_U8:
            v = *(const uint8_t *)p;
            break;
        case F_U32:
            v = *(const uint32_t *)p;
            break;
        case F_I64:
            /* Times are never negative; clamp rather than store garbage. */
            v = *(const int64_t *)p > 0 ? (uint64_t) * (const int64_t *)p : 0;
            break;
        case F_STR: {
            size_t n = strnlen(p, f->size - 1);
            if (n == 0)
                continue;
            buf_append(out, &f->tag, 1);
            put_varint(out, n);
            buf_append(out, p, n);
            continue;
        }
        }
        if (v == 0)
            continue;
        buf_append(out, &f->tag, 1);
        put_varint(out, v);
    }
}

static const struct field *field_by_tag(uint8_t tag)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].tag == tag)
            return &fields[i];
    return NULL;
}

int host_record_decode(struct host_record *rec, const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    char *base = (char *)rec;
    host_record_init(rec);
    if (len < 1)
        return CF_ECORRUPT;
    if (p[0] > STORE_SCHEMA_VERSION)
        return CF_ENEWER_SCHEMA;
    if (p[0] == 0)
        return CF_ECORRUPT;
    p++;
    while (p < end) {
        uint8_t tag = *p++;
        const struct field *f = field_by_tag(tag);
        if (!f)
            return CF_ECORRUPT;
        uint64_t v;
        if (get_varint(&p, end, &v))
            return CF_ECORRUPT;
        char *dst = base + f->off;
        switch (f->kind) {
        case F_U8:
            if (v > UINT8_MAX)
                return CF_ECORRUPT;
            *(uint8_t *)dst = (uint8_t)v;
            break;
        case F_U32:
            if (v > UINT32_MAX)
                return CF_ECORRUPT;
            *(uint32_t *)dst = (uint32_t)v;
            break;
        case F_I64:
            if (v > INT64_MAX)
                return CF_ECORRUPT;
            *(int64_t *)dst = (int64_t)v;
            break;
        case F_STR:
            if (v >= f->size || v > (uint64_t)(end - p) || memchr(p, 0, v))
                return CF_ECORRUPT;
            memcpy(dst, p, v);
            dst[v] = '\0';
            p += v;
            break;
        }
    }
    if (rec->name[0] == '\0' || rec->state >= HOST_STATE__COUNT ||
        rec->reason >= STOP_REASON__COUNT || rec->deleg_result >= DELEG_RESULT__COUNT ||
        rec->live_result >= LIVE_RESULT__COUNT)
        return CF_ECORRUPT;
    return 0;
}

int host_record_next_action(const void *data, size_t len, int64_t *out)
{
    const uint8_t *p = data, *end = p + len;
    if (len < 1 || p[0] == 0)
        return CF_ECORRUPT;
    if (p[0] > STORE_SCHEMA_VERSION)
        return CF_ENEWER_SCHEMA;
    *out = 0;
    for (p++; p < end;) {
        uint8_t tag = *p++;
        uint64_t v;
        if (get_varint(&p, end, &v))
            return CF_ECORRUPT;
        if (tag >= 64) { /* a string: v is its length */
            if (v > (uint64_t)(end - p))
                return CF_ECORRUPT;
            p += v;
        } else if (tag == 6) { /* next_action, see the field table */
            if (v > INT64_MAX)
                return CF_ECORRUPT;
            *out = (int64_t)v;
        }
    }
    return 0;
}

#define NAME_CASE(name, val, text)                                                                 \
    case val:                                                                                      \
        return text;

const char *host_state_name(int state)
{
    switch (state) {
        HOST_STATE_MAP(NAME_CASE)
    default:
        return "?";
    }
}

const char *stop_reason_name(int reason)
{
    switch (reason) {
        STOP_REASON_MAP(NAME_CASE)
    default:
        return "?";
    }
}

const char *deleg_result_name(int r)
{
    switch (r) {
        DELEG_RESULT_MAP(NAME_CASE)
    default:
        return "?";
    }
}

const char *live_result_name(int r)
{
    switch (r) {
        LIVE_RESULT_MAP(NAME_CASE)
    default:
        return "?";
    }
}

int host_state_parse(const char *s)
{
    for (int i = 0; i < HOST_STATE__COUNT; i++)
        if (strcmp(s, host_state_name(i)) == 0)
            return i;
    return -1;
}

int stop_reason_parse(const char *s)
{
    for (int i = 1; i < STOP_REASON__COUNT; i++)
        if (strcmp(s, stop_reason_name(i)) == 0)
            return i;
    return -1;
}

void host_set_state(struct host_record *rec, enum host_state state, enum stop_reason reason,
                    int64_t now, const char *why)
{
    if (state != HOST_STOPPED)
        reason = STOP_NONE;
    if (rec->state == state && rec->reason == reason)
        return;
    log_event(LOG_INFO, "transition", "host", rec->name, "from", host_state_name(rec->state), "to",
              host_state_name(state), "reason", reason ? stop_reason_name(reason) : NULL, "why",
              why, NULL);
    rec->state = (uint8_t)state;
    rec->reason = (uint8_t)reason;
    rec->state_since = now;
}
