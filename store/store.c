/*
 * store.c - the LMDB store.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "err.h"
#include "log.h"
#include "store.h"

#define MIB ((size_t)1 << 20)
#define DEFAULT_INITIAL_MAP (256 * MIB)
#define DEFAULT_MAX_MAP ((size_t)1 << 40)

/*
 * BAD_RECORD: apply_op's own result for a stored record that does not
 * decode, kept apart from LMDB's codes so the log says what happened.
 */
#define BAD_RECORD (-29000)
/* TOO_BIG: a queued certificate or pending order over its bound (store.h). */
#define TOO_BIG (-29001)

static const char *const db_names[STORE_DB__COUNT] = {
    "hosts", "due", "certs", "account", "meta", "dns", "limits", "runs", "dns_tree",
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_DB__COUNT];
    size_t map_size;
    size_t max_map;
    char path[4096];
};

struct store_read {
    struct store *st;
    MDB_txn *txn;
    /*
     * STORE_DB_DNS_TREE's cursor, kept across reset and renew: a read-only
     * cursor can be renewed, and opening one allocates.
     */
    MDB_cursor *tree_cur;
};

enum op_kind {
    OP_PUT_HOST,
    OP_IMPORT_HOST,
    OP_DEL_HOST,
    OP_PUT,
    OP_DEL,
    OP_TXT_ADD,
    OP_TXT_DEL,
    OP_TOO_BIG, /* a value refused when queued: the commit fails with CF_ETOOBIG */
    OP_DROP,    /* empty a whole database */
};

struct batch_op {
    uint8_t kind;
    uint8_t db;
    size_t koff, klen, voff, vlen; /* into the batch's arena */
    int64_t next_action;
    enum store_import_result *result;
};

struct store_batch {
    struct store *st;
    struct buf arena;
    struct batch_op *ops;
    size_t nops, capops;
};

/* lmdb_err translates an LMDB result (DESIGN: translated once, here). */
static int lmdb_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return CF_ENOTFOUND;
    case MDB_MAP_FULL:
        return CF_EMAPFULL;
    case TOO_BIG:
        return CF_ETOOBIG;
    case BAD_RECORD:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return CF_ECORRUPT;
    default:
        if (rc > 0 && rc < 4096)
            return -rc; /* an errno value */
        return CF_ESTORE;
    }
}

static void log_lmdb(const char *what, int rc)
{
    const char *text = mdb_strerror(rc);
    if (rc == BAD_RECORD)
        text = "a stored host record does not decode";
    else if (rc == TOO_BIG)
        text = "a certificate or pending order over its size bound";
    log_event(LOG_ERROR, "store_error", "op", what, "error", text, NULL);
}

/*
 * txn_begin starts a transaction. Another process (serve-dns beside run)
 * may have grown the map: LMDB then says MDB_MAP_RESIZED and we adopt the
 * new size.
 */
static int txn_begin(struct store *st, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        rc = mdb_env_set_mapsize(st->env, 0);
        if (rc == 0) {
            MDB_envinfo info;
            mdb_env_info(st->env, &info);
            st->map_size = info.me_mapsize;
            rc = mdb_txn_begin(st->env, NULL, flags, txn);
        }
    }
    if (rc)
        log_lmdb("txn_begin", rc);
    return lmdb_err(rc);
}

/* grow_map doubles the map, up to max_map. Call with no transaction open. */
static int grow_map(struct store *st)
{
    if (st->map_size >= st->max_map)
        return CF_EMAPFULL;
    size_t next = st->map_size * 2;
    if (next > st->max_map)
        next = st->max_map;
    int rc = mdb_env_set_mapsize(st->env, next);
    if (rc) {
        log_lmdb("set_mapsize", rc);
        return lmdb_err(rc);
    }
    char a[32], b[32];
    snprintf(a, sizeof(a), "%zu", st->map_size / MIB);
    snprintf(b, sizeof(b), "%zu", next / MIB);
    log_event(LOG_INFO, "store_map_grown", "from_mib", a, "to_mib", b, NULL);
    st->map_size = next;
    return 0;
}

static int check_schema(struct store *st, MDB_txn *txn)
{
    static const char key[] = "schema";
    MDB_val k = {sizeof(key) - 1, (void *)key}, v;
    int rc = mdb_get(txn, st->dbi[STORE_DB_META], &k, &v);
    if (rc == MDB_NOTFOUND) {
        uint8_t ver[4] = {0, 0, 0, STORE_SCHEMA_VERSION};
        v.mv_size = sizeof(ver);
        v.mv_data = ver;
        return lmdb_err(mdb_put(txn, st->dbi[STORE_DB_META], &k, &v, 0));
    }
    if (rc)
        return lmdb_err(rc);
    if (v.mv_size != 4)
        return CF_ECORRUPT;
    const uint8_t *p = v.mv_data;
    uint32_t ver = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (ver > STORE_SCHEMA_VERSION)
        return CF_ENEWER_SCHEMA;
    return 0;
}

/* LMDB's default largest key; a reversed owner name is far shorter. */
#define TREE_KEY_MAX 511

/*
 * tree_key writes name (len octets of text) with its labels in reverse order
 * into out (TREE_KEY_MAX octets): "www.example.com" -> "com.example.www".
 * Returns the key's length, or 0 when it does not fit.
 */
static size_t tree_key(char *out, const char *name, size_t len)
{
    size_t o = 0, end = len;
    if (len == 0 || len > TREE_KEY_MAX)
        return 0;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && name[start - 1] != '.')
            start--;
        if (o > 0)
            out[o++] = '.';
        memcpy(out + o, name + start, end - start);
        o += end - start;
        end = start > 0 ? start - 1 : 0;
    }
    return o;
}

/*
 * sync_dns_tree rebuilds STORE_DB_DNS_TREE from STORE_DB_DNS when their
 * entry counts differ: a store written before the tree existed. The TXT ops
 * keep both in step in the same transaction, so this runs at most once.
 */
static int sync_dns_tree(struct store *st, MDB_txn *txn)
{
    MDB_stat a, b;
    MDB_cursor *cur;
    MDB_val k, v, tk, tv = {0, NULL};
    char key[TREE_KEY_MAX];
    int rc = mdb_stat(txn, st->dbi[STORE_DB_DNS], &a);
    if (rc == 0)
        rc = mdb_stat(txn, st->dbi[STORE_DB_DNS_TREE], &b);
    if (rc || a.ms_entries == b.ms_entries)
        return rc;
    rc = mdb_drop(txn, st->dbi[STORE_DB_DNS_TREE], 0);
    if (rc == 0)
        rc = mdb_cursor_open(txn, st->dbi[STORE_DB_DNS], &cur);
    if (rc)
        return rc;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        tk.mv_size = tree_key(key, k.mv_data, k.mv_size);
        tk.mv_data = key;
        if (tk.mv_size == 0)
            continue; /* not a name: nothing can be below it */
        rc = mdb_put(txn, st->dbi[STORE_DB_DNS_TREE], &tk, &tv, 0);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int open_dbs(struct store *st)
{
    MDB_txn *txn;
    int rc = txn_begin(st, 0, &txn);
    if (rc)
        return rc;
    for (int i = 0; i < STORE_DB__COUNT; i++) {
        int lrc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &st->dbi[i]);
        if (lrc) {
            log_lmdb("dbi_open", lrc);
            mdb_txn_abort(txn);
            return lmdb_err(lrc);
        }
    }
    rc = check_schema(st, txn);
    if (rc == 0)
        rc = lmdb_err(sync_dns_tree(st, txn));
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return lmdb_err(mdb_txn_commit(txn));
}

static size_t env_size(const char *name, size_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v == 0)
        return dflt;
    return (size_t)v * MIB;
}

int store_open(struct store **out, const char *dir, const struct store_options *opts)
{
    int rc;
    struct store *st = xcalloc(1, sizeof(*st));
    *out = NULL;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        goto out_free_st;
    }
    /* The directory holds keys: nobody else may list or read it. */
    if (chmod(dir, 0700) != 0) {
        rc = -errno;
        goto out_free_st;
    }
    if ((size_t)snprintf(st->path, sizeof(st->path), "%s/store.mdb", dir) >= sizeof(st->path)) {
        rc = CF_ETOOBIG;
        goto out_free_st;
    }
    st->map_size = opts && opts->initial_map ? opts->initial_map : DEFAULT_INITIAL_MAP;
    st->max_map = opts && opts->max_map ? opts->max_map : DEFAULT_MAX_MAP;
    st->max_map = env_size("CERTFLEET_STORE_MAX_MB", st->max_map);
    if (st->map_size > st->max_map)
        st->map_size = st->max_map;

    int lrc = mdb_env_create(&st->env);
    if (lrc) {
        rc = lmdb_err(lrc);
        goto out_free_st;
    }
    mdb_env_set_maxdbs(st->env, STORE_DB__COUNT + 4);
    mdb_env_set_mapsize(st->env, st->map_size);
    /* MDB_NOTLS: read transactions are not tied to threads (libuv pool). */
    lrc = mdb_env_open(st->env, st->path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
    if (lrc) {
        log_event(LOG_ERROR, "store_open_failed", "path", st->path, "error", mdb_strerror(lrc),
                  NULL);
        rc = lmdb_err(lrc);
        goto out_close_env;
    }
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    st->map_size = info.me_mapsize; /* an existing file may be larger */
    rc = open_dbs(st);
    if (rc)
        goto out_close_env;
    *out = st;
    return 0;

out_close_env:
    mdb_env_close(st->env);
out_free_st:
    free(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    mdb_env_close(st->env);
    free(st);
}

const char *store_path(const struct store *st)
{
    return st->path;
}

int store_stats(struct store *st, struct store_stats *out)
{
    MDB_txn *txn;
    int rc = txn_begin(st, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    MDB_stat s;
    memset(out, 0, sizeof(*out));
    if (mdb_stat(txn, st->dbi[STORE_DB_HOSTS], &s) == 0)
        out->hosts = s.ms_entries;
    if (mdb_stat(txn, st->dbi[STORE_DB_DUE], &s) == 0)
        out->due = s.ms_entries;
    mdb_txn_abort(txn);
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &s);
    out->used_bytes = (info.me_last_pgno + 1) * (size_t)s.ms_psize;
    out->map_bytes = info.me_mapsize;
    return 0;
}

int store_read_begin(struct store *st, struct store_read **out)
{
    struct store_read *rd = xcalloc(1, sizeof(*rd));
    int rc = txn_begin(st, MDB_RDONLY, &rd->txn);
    if (rc) {
        free(rd);
        return rc;
    }
    rd->st = st;
    *out = rd;
    return 0;
}

void store_read_end(struct store_read *rd)
{
    if (!rd)
        return;
    if (rd->tree_cur)
        mdb_cursor_close(rd->tree_cur);
    if (rd->txn)
        mdb_txn_abort(rd->txn);
    free(rd);
}

void store_read_reset(struct store_read *rd)
{
    mdb_txn_reset(rd->txn);
}

int store_read_renew(struct store_read *rd)
{
    int rc = mdb_txn_renew(rd->txn);
    if (rc) {
        /*
         * Another process grew the map (MDB_MAP_RESIZED) or the slot is
         * gone: start over with a new transaction, which adopts the new map
         * size.
         */
        mdb_txn_abort(rd->txn);
        rd->txn = NULL;
        rc = txn_begin(rd->st, MDB_RDONLY, &rd->txn);
        if (rc)
            return rc;
    }
    if (rd->tree_cur && mdb_cursor_renew(rd->txn, rd->tree_cur) != 0) {
        mdb_cursor_close(rd->tree_cur);
        rd->tree_cur = NULL;
    }
    return 0;
}

uint64_t store_read_txn_id(const struct store_read *rd)
{
    return mdb_txn_id(rd->txn);
}

int store_read_get(struct store_read *rd, enum store_db db, const void *key, size_t klen,
                   const void **val, size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(rd->txn, rd->st->dbi[db], &k, &v);
    if (rc)
        return lmdb_err(rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int store_read_host(struct store_read *rd, struct host_record *rec, const char *name)
{
    const void *v = NULL;
    size_t vlen = 0;
    int rc = store_read_get(rd, STORE_DB_HOSTS, name, strlen(name), &v, &vlen);
    if (rc)
        return rc;
    return host_record_decode(rec, v, vlen);
}

int store_host_get(struct store *st, struct host_record *rec, const char *name)
{
    struct store_read *rd;
    int rc = store_read_begin(st, &rd);
    if (rc)
        return rc;
    rc = store_read_host(rd, rec, name);
    store_read_end(rd);
    return rc;
}

int store_get(struct store *st, enum store_db db, const void *key, size_t klen, struct buf *out)
{
    struct store_read *rd;
    int rc = store_read_begin(st, &rd);
    if (rc)
        return rc;
    const void *v = NULL;
    size_t vlen = 0;
    rc = store_read_get(rd, db, key, klen, &v, &vlen);
    if (rc == 0)
        buf_append(out, v, vlen);
    store_read_end(rd);
    return rc;
}

/*
 * walk_fn visits one key/value of a walk; it returns 0 to go on, or anything
 * else to stop the walk with that result (WALK_STOP: stop, no error).
 */
typedef int (*walk_fn)(void *ctx, const MDB_val *k, const MDB_val *v);
#define WALK_STOP INT_MAX /* not a value callbacks use */

/*
 * walk reads db in key order in one read transaction, from the first key
 * at or after start (NULL: the first key).
 */
static int walk(struct store *st, enum store_db db, const MDB_val *start, walk_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = txn_begin(st, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    int lrc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (lrc) {
        mdb_txn_abort(txn);
        return lmdb_err(lrc);
    }
    MDB_val k = start ? *start : (MDB_val){0, NULL}, v;
    MDB_cursor_op op = start ? MDB_SET_RANGE : MDB_FIRST;
    while ((lrc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        rc = fn(ctx, &k, &v);
        if (rc)
            break;
    }
    if (lrc && lrc != MDB_NOTFOUND)
        rc = lmdb_err(lrc);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc == WALK_STOP ? 0 : rc;
}

struct host_walk {
    const char *after;
    store_host_cb cb;
    void *ctx;
    struct host_record rec;
};

static int host_visit(void *ctx, const MDB_val *k, const MDB_val *v)
{
    struct host_walk *w = ctx;
    if (w->after && k->mv_size == strlen(w->after) && memcmp(k->mv_data, w->after, k->mv_size) == 0)
        return 0;
    int rc = host_record_decode(&w->rec, v->mv_data, v->mv_size);
    if (rc) {
        log_event(LOG_ERROR, "store_record_unreadable", "error", cf_strerror(rc), NULL);
        return rc;
    }
    return w->cb(w->ctx, &w->rec);
}

int store_host_iter(struct store *st, const char *after, store_host_cb cb, void *ctx)
{
    struct host_walk *w = xmalloc(sizeof(*w));
    MDB_val start = {after ? strlen(after) : 0, (void *)after};
    w->after = after && *after ? after : NULL;
    w->cb = cb;
    w->ctx = ctx;
    int rc = walk(st, STORE_DB_HOSTS, w->after ? &start : NULL, host_visit, w);
    free(w);
    return rc;
}

struct name_walk {
    store_name_cb cb;
    void *ctx;
};

static int name_visit(void *ctx, const MDB_val *k, const MDB_val *v)
{
    struct name_walk *w = ctx;
    char name[HOSTNAME_MAX + 1];
    (void)v;
    if (k->mv_size == 0 || k->mv_size > HOSTNAME_MAX)
        return CF_ECORRUPT;
    memcpy(name, k->mv_data, k->mv_size);
    name[k->mv_size] = '\0';
    return w->cb(w->ctx, name);
}

int store_host_names_iter(struct store *st, store_name_cb cb, void *ctx)
{
    struct name_walk w = {cb, ctx};
    return walk(st, STORE_DB_HOSTS, NULL, name_visit, &w);
}

static void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = v & 0xff;
        v >>= 8;
    }
}

static uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

struct due_walk {
    int64_t until;
    store_due_cb cb;
    void *ctx;
};

static int due_visit(void *ctx, const MDB_val *k, const MDB_val *v)
{
    struct due_walk *w = ctx;
    char name[HOSTNAME_MAX + 1];
    (void)v;
    if (k->mv_size <= 8 || k->mv_size > 8 + HOSTNAME_MAX)
        return CF_ECORRUPT;
    int64_t due = (int64_t)be64_get(k->mv_data);
    if (due > w->until)
        return WALK_STOP;
    memcpy(name, (const char *)k->mv_data + 8, k->mv_size - 8);
    name[k->mv_size - 8] = '\0';
    return w->cb(w->ctx, name, due);
}

int store_due_iter(struct store *st, int64_t until, store_due_cb cb, void *ctx)
{
    struct due_walk w = {until, cb, ctx};
    return walk(st, STORE_DB_DUE, NULL, due_visit, &w);
}

struct store_batch *store_batch_new(struct store *st)
{
    struct store_batch *b = xcalloc(1, sizeof(*b));
    b->st = st;
    buf_init(&b->arena);
    return b;
}

void store_batch_free(struct store_batch *b)
{
    if (!b)
        return;
    buf_cleanup(&b->arena);
    free(b->ops);
    free(b);
}

size_t store_batch_count(const struct store_batch *b)
{
    return b->nops;
}

struct store *store_batch_store(const struct store_batch *b)
{
    return b->st;
}

static struct batch_op *add_op(struct store_batch *b, enum op_kind kind, enum store_db db,
                               const void *key, size_t klen)
{
    if (b->nops == b->capops) {
        b->capops = b->capops ? b->capops * 2 : 64;
        b->ops = xrealloc(b->ops, b->capops * sizeof(*b->ops));
    }
    struct batch_op *op = &b->ops[b->nops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->db = db;
    op->koff = b->arena.len;
    op->klen = klen;
    buf_append(&b->arena, key, klen);
    return op;
}

static void add_host_op(struct store_batch *b, enum op_kind kind, const struct host_record *rec,
                        enum store_import_result *result)
{
    struct batch_op *op = add_op(b, kind, STORE_DB_HOSTS, rec->name, strlen(rec->name));
    op->voff = b->arena.len;
    host_record_encode(&b->arena, rec);
    op->vlen = b->arena.len - op->voff;
    op->next_action = rec->next_action;
    op->result = result;
}

void store_batch_put_host(struct store_batch *b, const struct host_record *rec)
{
    add_host_op(b, OP_PUT_HOST, rec, NULL);
}

void store_batch_import_host(struct store_batch *b, const struct host_record *rec,
                             enum store_import_result *result)
{
    add_host_op(b, OP_IMPORT_HOST, rec, result);
}

void store_batch_del_host(struct store_batch *b, const char *name)
{
    add_op(b, OP_DEL_HOST, STORE_DB_HOSTS, name, strlen(name));
}

void store_batch_put(struct store_batch *b, enum store_db db, const void *key, size_t klen,
                     const void *val, size_t vlen)
{
    struct batch_op *op = add_op(b, OP_PUT, db, key, klen);
    op->voff = b->arena.len;
    op->vlen = vlen;
    buf_append(&b->arena, val, vlen);
}

void store_batch_del(struct store_batch *b, enum store_db db, const void *key, size_t klen)
{
    add_op(b, OP_DEL, db, key, klen);
}

static void add_txt_op(struct store_batch *b, enum op_kind kind, const char *name,
                       const char *value)
{
    struct batch_op *op = add_op(b, kind, STORE_DB_DNS, name, strlen(name));
    op->voff = b->arena.len;
    op->vlen = strlen(value);
    buf_append(&b->arena, value, op->vlen);
}

void store_batch_txt_add(struct store_batch *b, const char *name, const char *value)
{
    add_txt_op(b, OP_TXT_ADD, name, value);
}

void store_batch_txt_del(struct store_batch *b, const char *name, const char *value)
{
    add_txt_op(b, OP_TXT_DEL, name, value);
}

int store_read_txt_below(struct store_read *rd, const char *name, size_t len)
{
    char key[TREE_KEY_MAX + 1];
    MDB_val k, v;
    size_t klen = 0;
    if (len > 0) {
        klen = tree_key(key, name, len);
        if (klen == 0 || klen >= TREE_KEY_MAX)
            return 0; /* longer than any stored name */
        key[klen++] = '.';
    }
    int rc = 0;
    if (!rd->tree_cur)
        rc = mdb_cursor_open(rd->txn, rd->st->dbi[STORE_DB_DNS_TREE], &rd->tree_cur);
    if (rc)
        return lmdb_err(rc);
    /* Keys with the prefix "<reversed name>." sort together: look at the first. */
    k.mv_size = klen;
    k.mv_data = key;
    rc = mdb_cursor_get(rd->tree_cur, &k, &v, klen ? MDB_SET_RANGE : MDB_FIRST);
    int below = 0;
    if (rc == 0)
        below = k.mv_size >= klen && memcmp(k.mv_data, key, klen) == 0;
    if (rc && rc != MDB_NOTFOUND)
        return lmdb_err(rc);
    return below;
}

int store_txt_decode(const void *data, size_t len, store_txt_cb cb, void *ctx)
{
    const uint8_t *p = data, *end = p + len;
    if (len < 1 || p[0] != 1)
        return CF_ECORRUPT;
    for (p++; p < end;) {
        size_t n = *p++;
        if (n == 0 || n > (size_t)(end - p))
            return CF_ECORRUPT;
        int rc = cb(ctx, (const char *)p, n);
        if (rc)
            return rc;
        p += n;
    }
    return 0;
}

/*
 * apply_txt adds or removes one value of the TXT set at a name. The set is
 * "\x01" then (length octet, value) pairs; an emptied set is deleted.
 */
static int apply_txt(struct store *st, MDB_txn *txn, struct batch_op *op, const char *arena)
{
    MDB_dbi dbi = st->dbi[STORE_DB_DNS];
    MDB_val k = {op->klen, (void *)(arena + op->koff)}, old;
    const char *val = arena + op->voff;
    size_t vlen = op->vlen;
    struct buf nb;
    char tkey[TREE_KEY_MAX];
    MDB_val tk = {tree_key(tkey, k.mv_data, k.mv_size), tkey}, tv = {0, NULL};
    int found = 0, rc, existed;
    if (vlen == 0 || vlen > STORE_TXT_MAX || tk.mv_size == 0)
        return BAD_RECORD;
    rc = mdb_get(txn, dbi, &k, &old);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    existed = rc == 0;
    buf_init(&nb);
    buf_putc(&nb, 1);
    if (rc == 0) {
        const uint8_t *p = old.mv_data, *end = p + old.mv_size;
        if (old.mv_size < 1 || p[0] != 1) {
            buf_cleanup(&nb);
            return BAD_RECORD;
        }
        for (p++; p < end;) {
            size_t n = *p++;
            if (n == 0 || n > (size_t)(end - p)) {
                buf_cleanup(&nb);
                return BAD_RECORD;
            }
            int same = n == vlen && memcmp(p, val, n) == 0;
            found |= same;
            if (!(same && op->kind == OP_TXT_DEL)) {
                buf_putc(&nb, (char)n);
                buf_append(&nb, p, n);
            }
            p += n;
        }
    }
    if (op->kind == OP_TXT_ADD && !found) {
        buf_putc(&nb, (char)vlen);
        buf_append(&nb, val, vlen);
    }
    /* The name enters or leaves STORE_DB_DNS_TREE with its first or last value. */
    if (nb.len == 1) {
        rc = mdb_del(txn, dbi, &k, NULL);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
        if (rc == 0 && existed) {
            rc = mdb_del(txn, st->dbi[STORE_DB_DNS_TREE], &tk, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        }
    } else {
        MDB_val v = {nb.len, nb.data};
        rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc == 0 && !existed)
            rc = mdb_put(txn, st->dbi[STORE_DB_DNS_TREE], &tk, &tv, 0);
    }
    buf_cleanup(&nb);
    return rc;
}

/*
 * put_tail puts k/v into dbi, appending when k sorts after every key there.
 * LMDB splits a page in the middle on an ordinary insert, so keys inserted
 * in order would leave pages half full; MDB_APPEND fills them. Bulk imports
 * (sorted runs of new names, all due "now") take this path almost always.
 */
static int put_tail(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    MDB_cursor *cur;
    MDB_val lk, lv;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
    if (rc == MDB_NOTFOUND || (rc == 0 && mdb_cmp(txn, dbi, k, &lk) > 0))
        rc = mdb_cursor_put(cur, k, v, MDB_APPEND);
    else if (rc == 0)
        rc = mdb_put(txn, dbi, k, v, flags);
    mdb_cursor_close(cur);
    return rc;
}

/* due_key builds be64(due) || name into out (8 + HOSTNAME_MAX octets). */
static MDB_val due_key(uint8_t *out, int64_t due, const void *name, size_t nlen)
{
    be64_put(out, (uint64_t)due);
    memcpy(out + 8, name, nlen);
    MDB_val k = {8 + nlen, out};
    return k;
}

/* old_next_action reads the next_action of an existing record value. */
static int old_next_action(const MDB_val *v, int64_t *out)
{
    return host_record_next_action(v->mv_data, v->mv_size, out);
}

/* Replace the due entry of name: old -> new (0 = none). */
static int move_due(struct store *st, MDB_txn *txn, const void *name, size_t nlen, int64_t old_due,
                    int64_t new_due)
{
    uint8_t kb[8 + HOSTNAME_MAX];
    if (old_due == new_due)
        return 0;
    if (nlen > HOSTNAME_MAX)
        return CF_ECORRUPT;
    if (old_due) {
        MDB_val k = due_key(kb, old_due, name, nlen);
        int rc = mdb_del(txn, st->dbi[STORE_DB_DUE], &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
    }
    if (new_due) {
        MDB_val k = due_key(kb, new_due, name, nlen), v = {0, NULL};
        int rc = put_tail(txn, st->dbi[STORE_DB_DUE], &k, &v, 0);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * apply_import inserts the record unless one exists; an existing record
 * only takes over a new customer label. Returns an LMDB code.
 */
static int apply_import(struct store *st, MDB_txn *txn, struct batch_op *op, const char *arena)
{
    MDB_dbi hosts = st->dbi[STORE_DB_HOSTS];
    MDB_val k = {op->klen, (void *)(arena + op->koff)};
    MDB_val v = {op->vlen, (void *)(arena + op->voff)};
    int rc = put_tail(txn, hosts, &k, &v, MDB_NOOVERWRITE);
    if (rc == 0) {
        if (op->result)
            *op->result = STORE_IMPORT_ADDED;
        return move_due(st, txn, k.mv_data, k.mv_size, 0, op->next_action);
    }
    if (rc != MDB_KEYEXIST)
        return rc;
    /* v now holds the existing value. */
    struct host_record *cur = xmalloc(sizeof(*cur)), *imp = xmalloc(sizeof(*imp));
    enum store_import_result res = STORE_IMPORT_UNCHANGED;
    rc = host_record_decode(cur, v.mv_data, v.mv_size);
    if (rc == 0)
        rc = host_record_decode(imp, arena + op->voff, op->vlen);
    if (rc) {
        rc = BAD_RECORD;
        goto out_free;
    }
    if (imp->customer[0] && strcmp(imp->customer, cur->customer) != 0) {
        memcpy(cur->customer, imp->customer, sizeof(cur->customer));
        struct buf enc;
        buf_init(&enc);
        host_record_encode(&enc, cur);
        MDB_val nv = {enc.len, enc.data};
        rc = mdb_put(txn, hosts, &k, &nv, 0);
        buf_cleanup(&enc);
        res = STORE_IMPORT_UPDATED;
    }
    if (op->result)
        *op->result = res;
out_free:
    free(cur);
    free(imp);
    return rc;
}

/*
 * Certificates and pending orders (store.h). Both values are a version
 * octet and two length-prefixed parts; the helpers below build and read
 * that shape, bounded on both sides.
 */
#define TWO_PART_VERSION 1

/* pending_key writes '!' || name into out (HOSTNAME_MAX + 2 octets); returns the key's length. */
static size_t pending_key(char *out, const void *name, size_t nlen)
{
    if (nlen > HOSTNAME_MAX)
        nlen = HOSTNAME_MAX; /* longer than any name: the key simply never matches */
    out[0] = STORE_PENDING_PREFIX;
    memcpy(out + 1, name, nlen);
    return nlen + 1;
}

/* del_pending removes the pending order of the nlen-octet name, if any. Returns an LMDB code. */
static int del_pending(struct store *st, MDB_txn *txn, const void *name, size_t nlen)
{
    char key[HOSTNAME_MAX + 2];
    MDB_val k = {pending_key(key, name, nlen), key};
    int rc = mdb_del(txn, st->dbi[STORE_DB_CERTS], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void be32_put(struct buf *b, size_t v)
{
    char p[4] = {(char)(v >> 24 & 0xff), (char)(v >> 16 & 0xff), (char)(v >> 8 & 0xff),
                 (char)(v & 0xff)};
    buf_append(b, p, sizeof(p));
}

/*
 * put_two_parts queues key -> (version, a, b) into db, or an OP_TOO_BIG
 * when a part passes its bound: refused at commit time, so a caller on the
 * loop learns it from the commit's status like any other store failure.
 */
static void put_two_parts(struct store_batch *sb, const char *key, size_t klen, const char *a,
                          size_t alen, size_t amax, const char *b, size_t blen)
{
    if (alen > amax || blen > STORE_CERT_PART_MAX) {
        add_op(sb, OP_TOO_BIG, STORE_DB_CERTS, key, klen);
        return;
    }
    struct batch_op *op = add_op(sb, OP_PUT, STORE_DB_CERTS, key, klen);
    op->voff = sb->arena.len;
    buf_putc(&sb->arena, TWO_PART_VERSION);
    be32_put(&sb->arena, alen);
    buf_append(&sb->arena, a, alen);
    be32_put(&sb->arena, blen);
    buf_append(&sb->arena, b, blen);
    op->vlen = sb->arena.len - op->voff;
}

/*
 * get_two_parts reads key in db and appends its two parts to a and b (each
 * may be NULL). Returns 0, CF_ENOTFOUND, CF_ECORRUPT (nothing appended), or
 * a store error.
 */
static int get_two_parts(struct store *st, const char *key, size_t klen, struct buf *a, size_t amax,
                         struct buf *b)
{
    struct store_read *rd;
    const void *v = NULL;
    size_t vlen = 0, part[2], off[2], pos = 1;
    int rc = store_read_begin(st, &rd);
    if (rc)
        return rc;
    rc = store_read_get(rd, STORE_DB_CERTS, key, klen, &v, &vlen);
    if (rc)
        goto out_end;
    const uint8_t *p = v;
    rc = CF_ECORRUPT;
    if (vlen < 1 || p[0] != TWO_PART_VERSION)
        goto out_end;
    for (int i = 0; i < 2; i++) {
        if (vlen - pos < 4)
            goto out_end;
        part[i] =
            (size_t)p[pos] << 24 | (size_t)p[pos + 1] << 16 | (size_t)p[pos + 2] << 8 | p[pos + 3];
        pos += 4;
        if (part[i] > vlen - pos || part[i] > (i == 0 ? amax : STORE_CERT_PART_MAX))
            goto out_end;
        off[i] = pos;
        pos += part[i];
    }
    if (pos != vlen)
        goto out_end;
    if (a)
        buf_append(a, p + off[0], part[0]);
    if (b)
        buf_append(b, p + off[1], part[1]);
    rc = 0;
out_end:
    store_read_end(rd);
    return rc;
}

void store_batch_put_cert(struct store_batch *b, const char *name, const char *chain_pem,
                          size_t chain_len, const char *key_pem, size_t key_len)
{
    put_two_parts(b, name, strlen(name), chain_pem, chain_len, STORE_CERT_PART_MAX, key_pem,
                  key_len);
}

int store_get_cert(struct store *st, const char *name, struct buf *chain, struct buf *key)
{
    return get_two_parts(st, name, strlen(name), chain, STORE_CERT_PART_MAX, key);
}

void store_batch_put_pending(struct store_batch *b, const char *name, const char *order_url,
                             const char *key_pem, size_t key_len)
{
    char key[HOSTNAME_MAX + 2];
    size_t klen = pending_key(key, name, strlen(name));
    put_two_parts(b, key, klen, order_url, strlen(order_url), STORE_PENDING_URL_MAX,
                  key_len ? key_pem : "", key_len);
}

int store_get_pending(struct store *st, const char *name, struct buf *order_url,
                      struct buf *key_pem)
{
    char key[HOSTNAME_MAX + 2];
    size_t klen = pending_key(key, name, strlen(name));
    return get_two_parts(st, key, klen, order_url, STORE_PENDING_URL_MAX, key_pem);
}

void store_batch_del_pending(struct store_batch *b, const char *name)
{
    char key[HOSTNAME_MAX + 2];
    add_op(b, OP_DEL, STORE_DB_CERTS, key, pending_key(key, name, strlen(name)));
}

static int apply_op(struct store *st, MDB_txn *txn, struct batch_op *op, const char *arena)
{
    MDB_dbi dbi = st->dbi[op->db];
    MDB_val k = {op->klen, (void *)(arena + op->koff)};
    MDB_val v = {op->vlen, (void *)(arena + op->voff)}, old;
    int64_t old_due = 0;
    int rc;

    switch (op->kind) {
    case OP_PUT_HOST:
        rc = mdb_get(txn, dbi, &k, &old);
        if (rc == 0 && old_next_action(&old, &old_due) != 0)
            return BAD_RECORD;
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        rc = move_due(st, txn, k.mv_data, k.mv_size, old_due, op->next_action);
        if (rc)
            return rc;
        return mdb_put(txn, dbi, &k, &v, 0);
    case OP_IMPORT_HOST:
        return apply_import(st, txn, op, arena);
    case OP_DEL_HOST:
        rc = mdb_get(txn, dbi, &k, &old);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc)
            return rc;
        if (old_next_action(&old, &old_due) != 0)
            return BAD_RECORD;
        rc = move_due(st, txn, k.mv_data, k.mv_size, old_due, 0);
        if (rc)
            return rc;
        rc = mdb_del(txn, st->dbi[STORE_DB_CERTS], &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        rc = del_pending(st, txn, k.mv_data, k.mv_size);
        if (rc)
            return rc;
        return mdb_del(txn, dbi, &k, NULL);
    case OP_PUT:
        return mdb_put(txn, dbi, &k, &v, 0);
    case OP_DEL:
        rc = mdb_del(txn, dbi, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    case OP_TXT_ADD:
    case OP_TXT_DEL:
        return apply_txt(st, txn, op, arena);
    case OP_TOO_BIG:
        return TOO_BIG;
    case OP_DROP:
        return mdb_drop(txn, dbi, 0);
    }
    return MDB_INVALID;
}

int store_batch_commit(struct store_batch *b)
{
    struct store *st = b->st;
    int rc;
    if (b->nops == 0)
        return 0;
    for (;;) {
        MDB_txn *txn;
        rc = txn_begin(st, 0, &txn);
        if (rc)
            return rc;
        int lrc = 0;
        for (size_t i = 0; i < b->nops && lrc == 0; i++)
            lrc = apply_op(st, txn, &b->ops[i], b->arena.data);
        if (lrc == 0)
            lrc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (lrc == MDB_MAP_FULL) {
            /* Nothing of this batch was applied: grow and try it again. */
            rc = grow_map(st);
            if (rc == CF_EMAPFULL) {
                char mib[32];
                snprintf(mib, sizeof(mib), "%zu", st->map_size / MIB);
                log_event(LOG_ERROR, "store_full", "path", st->path, "map_mib", mib, NULL);
            }
            if (rc)
                return rc;
            continue;
        }
        if (lrc) {
            log_lmdb("commit", lrc);
            rc = lmdb_err(lrc);
            return rc == CF_ECORRUPT || rc == CF_ETOOBIG ? rc : CF_ESTORE;
        }
        break;
    }
    b->nops = 0;
    buf_reset(&b->arena);
    return 0;
}

void store_batch_drop(struct store_batch *b, enum store_db db)
{
    add_op(b, OP_DROP, db, "", 0);
}

struct db_walk {
    store_kv_cb cb;
    void *ctx;
};

static int db_visit(void *ctx, const MDB_val *k, const MDB_val *v)
{
    struct db_walk *w = ctx;
    return w->cb(w->ctx, k->mv_data, k->mv_size, v->mv_data, v->mv_size);
}

int store_db_iter(struct store *st, enum store_db db, store_kv_cb cb, void *ctx)
{
    struct db_walk w = {cb, ctx};
    if (db == STORE_DB_HOSTS || db == STORE_DB_DUE || db >= STORE_DB__COUNT)
        return CF_EUSAGE; /* those have iterators of their own that keep the index straight */
    return walk(st, db, NULL, db_visit, &w);
}
