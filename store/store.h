/*
 * store.h - the LMDB store: host records, the due-time index, certificates
 * and keys, the ACME account, published DNS records, rate-limit state and
 * run history, in one environment in the state directory.
 *
 * Writes go through batches (struct store_batch): many changes, one short
 * write transaction, all or nothing (group commit). There is deliberately
 * no "put one host and commit" call: on a hot path that would be one fsync
 * per host.
 *
 * The store is used from one thread (the event loop's). Read functions open
 * their own short read transaction unless they take a struct store_read.
 */
#ifndef CF_STORE_STORE_H
#define CF_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"

/* Named databases. Names are stored in the environment: append only. */
enum store_db {
    STORE_DB_HOSTS,   /* name -> host record */
    STORE_DB_DUE,     /* be64(next_action) || name -> empty */
    STORE_DB_CERTS,   /* name -> certificate chain and key (see store_cert_*) */
    STORE_DB_ACCOUNT, /* "key", "url", ... -> ACME account */
    STORE_DB_META,    /* "schema", ... */
    STORE_DB_DNS,     /* owner name -> published TXT values */
    STORE_DB_LIMITS,  /* rate-limit bucket -> state */
    STORE_DB_RUNS,    /* be64(start) -> run summary */
    /*
     * The owner names of STORE_DB_DNS with their labels reversed
     * ("test.cdn.acme.com.example.www") -> empty, kept by the TXT ops. Names
     * below a name then share a key prefix, so the embedded DNS server can
     * tell an empty non-terminal from a name that does not exist.
     */
    STORE_DB_DNS_TREE,
    STORE_DB__COUNT
};

struct store_options {
    size_t initial_map; /* bytes; 0 = default (256 MiB) */
    size_t max_map;     /* bytes the map may grow to; 0 = default (1 TiB) */
};

struct store;
struct store_batch;
struct store_read;

/*
 * store_open opens (creating if needed) the store in dir, which is created
 * with mode 0700 (and tightened to 0700 if it exists); the data and lock
 * files are 0600. opts may be NULL. The environment variable
 * CERTFLEET_STORE_MAX_MB, when set, caps the map (for tests of a full
 * store). Returns 0, CF_ENEWER_SCHEMA if a newer certfleet wrote the store,
 * CF_ECORRUPT if the schema marker is unreadable, or another negative code.
 */
int store_open(struct store **out, const char *dir, const struct store_options *opts);
/* store_close closes the store; accepts NULL. */
void store_close(struct store *st);
/* store_path returns the data file's path (owned by st). */
const char *store_path(const struct store *st);

struct store_stats {
    size_t hosts;      /* host records */
    size_t due;        /* due-index entries */
    size_t used_bytes; /* pages in use times page size */
    size_t map_bytes;  /* current map size */
};
int store_stats(struct store *st, struct store_stats *out);

/* Reads. */
int store_read_begin(struct store *st, struct store_read **out);
void store_read_end(struct store_read *rd);
/*
 * store_read_reset releases rd's snapshot but keeps its reader slot, so that
 * store_read_renew can take a fresh snapshot cheaply (no lock, no
 * allocation): a long-lived reader such as the DNS server resets between
 * batches instead of holding one snapshot (and old pages) for long. Values
 * read before the reset are no longer valid. store_read_renew returns 0 or a
 * negative code; after a failure only store_read_end may be called.
 */
void store_read_reset(struct store_read *rd);
int store_read_renew(struct store_read *rd);
/*
 * store_read_txn_id returns the id of the snapshot rd reads: the number of
 * the last write transaction committed before it, which grows with every
 * commit (of any kind) and survives restarts.
 */
uint64_t store_read_txn_id(const struct store_read *rd);
/*
 * store_read_get finds key in db. On 0 *val and *vlen point into the map and
 * stay valid until store_read_end. Returns CF_ENOTFOUND when absent.
 */
int store_read_get(struct store_read *rd, enum store_db db, const void *key, size_t klen,
                   const void **val, size_t *vlen);
/* store_read_host decodes name's record into rec. CF_ENOTFOUND when absent. */
int store_read_host(struct store_read *rd, struct host_record *rec, const char *name);
/* store_host_get is store_read_host in a transaction of its own. */
int store_host_get(struct store *st, struct host_record *rec, const char *name);
/* store_get copies db's value for key into out (appended). CF_ENOTFOUND when absent. */
int store_get(struct store *st, enum store_db db, const void *key, size_t klen, struct buf *out);

/*
 * store_host_iter calls cb for each host record in name order, starting
 * after `after` (NULL or "" for the first). cb returns 0 to go on, anything
 * else to stop (which is then returned). rec is valid during the call only.
 */
typedef int (*store_host_cb)(void *ctx, const struct host_record *rec);
int store_host_iter(struct store *st, const char *after, store_host_cb cb, void *ctx);

/*
 * store_host_names_iter calls cb(ctx, name) for every host name in order,
 * without decoding the records (a fleet-wide pass that needs only names).
 * cb returns 0 to go on.
 */
typedef int (*store_name_cb)(void *ctx, const char *name);
int store_host_names_iter(struct store *st, store_name_cb cb, void *ctx);

/*
 * store_due_iter calls cb(ctx, name, due) for due-index entries with
 * due <= until, earliest first. cb returns 0 to go on, else stops.
 */
typedef int (*store_due_cb)(void *ctx, const char *name, int64_t due);
int store_due_iter(struct store *st, int64_t until, store_due_cb cb, void *ctx);

/* Writes: batches. */
enum store_import_result {
    STORE_IMPORT_ADDED = 1,
    STORE_IMPORT_UNCHANGED,
    STORE_IMPORT_UPDATED /* existed; its customer label changed */
};

struct store_batch *store_batch_new(struct store *st);
/* store_batch_free drops uncommitted changes; accepts NULL. */
void store_batch_free(struct store_batch *b);
/* store_batch_count returns the number of queued changes. */
size_t store_batch_count(const struct store_batch *b);
/* store_batch_store returns the store b writes to (the one given to store_batch_new). */
struct store *store_batch_store(const struct store_batch *b);
/*
 * store_batch_put_host queues rec as name's record; the due index follows
 * rec->next_action (0 = not indexed).
 */
void store_batch_put_host(struct store_batch *b, const struct host_record *rec);
/*
 * store_batch_import_host queues rec for insertion if no record of that name
 * exists. An existing record keeps its state; only a non-empty differing
 * customer label is taken over. *result (may be NULL) is set at commit.
 */
void store_batch_import_host(struct store_batch *b, const struct host_record *rec,
                             enum store_import_result *result);
/*
 * store_batch_del_host queues the removal of name's record, due entry,
 * certificate and pending order (see store_batch_put_pending).
 */
void store_batch_del_host(struct store_batch *b, const char *name);
void store_batch_put(struct store_batch *b, enum store_db db, const void *key, size_t klen,
                     const void *val, size_t vlen);
void store_batch_del(struct store_batch *b, enum store_db db, const void *key, size_t klen);
/*
 * Published TXT records (STORE_DB_DNS): the key is the owner name (normalized
 * text, no trailing dot), the value the set of TXT values there. Adding a
 * value already present and removing one that is absent change nothing, so
 * publishing is idempotent across restarts.
 */
#define STORE_TXT_MAX 255
void store_batch_txt_add(struct store_batch *b, const char *name, const char *value);
void store_batch_txt_del(struct store_batch *b, const char *name, const char *value);
/*
 * store_txt_decode calls cb(ctx, value, len) for each value of an encoded TXT
 * set (as read from STORE_DB_DNS). cb returns 0 to go on. Returns 0, cb's
 * nonzero result, or CF_ECORRUPT.
 */
typedef int (*store_txt_cb)(void *ctx, const char *value, size_t len);
int store_txt_decode(const void *data, size_t len, store_txt_cb cb, void *ctx);
/*
 * store_read_txt_below returns 1 when TXT values are published at some name
 * strictly below name (len octets of normalized text, no trailing dot; len 0
 * is the root), 0 when none are, or a negative code. It reads
 * STORE_DB_DNS_TREE, which the TXT ops keep in step with STORE_DB_DNS.
 */
int store_read_txt_below(struct store_read *rd, const char *name, size_t len);

/*
 * Certificates and pending orders (STORE_DB_CERTS). Both hold private keys:
 * nothing here logs a value, and callers must not either.
 *
 * A host's certificate is one value under its name: the PEM chain (leaf
 * first) and the certificate's private key (PKCS#8 PEM), encoded as one
 * octet of version (1), then u32be(chain_len) chain u32be(key_len) key.
 * Putting it again replaces both halves at once.
 *
 * A host's pending order is the ACME order URL the engine is working on and,
 * once finalization is near, the fresh key the CSR will carry, so that a
 * restarted run resumes the same order (and downloads its certificate with
 * the right key) instead of creating another. It lives in the same database
 * under STORE_PENDING_PREFIX followed by the name: no normalized hostname
 * starts with '!', so the two kinds of keys never collide, and the pending
 * entries sort together before every host. Value: one octet of version (1),
 * then u32be(url_len) url u32be(key_len) key (key_len 0 without a key).
 */
#define STORE_PENDING_PREFIX '!'
/* Bounds of what the encodings accept, on write and on read. */
#define STORE_CERT_PART_MAX ((size_t)4 * 1024 * 1024)
#define STORE_PENDING_URL_MAX 4096

/*
 * store_batch_put_cert queues name's certificate: the chain_len bytes at
 * chain_pem and the key_len bytes at key_pem (both copied). Lengths above
 * STORE_CERT_PART_MAX make the commit fail with CF_ETOOBIG, nothing applied.
 */
void store_batch_put_cert(struct store_batch *b, const char *name, const char *chain_pem,
                          size_t chain_len, const char *key_pem, size_t key_len);
/*
 * store_get_cert appends name's chain to chain and its key to key (either
 * may be NULL when not wanted). Returns 0, CF_ENOTFOUND, or CF_ECORRUPT for
 * a value that does not decode (nothing appended then).
 */
int store_get_cert(struct store *st, const char *name, struct buf *chain, struct buf *key);

/*
 * store_batch_put_pending queues name's pending order: order_url (copied)
 * and, when key_len is not 0, the key_len bytes at key_pem. It replaces the
 * pending order name had, key included. A URL longer than
 * STORE_PENDING_URL_MAX or a key above STORE_CERT_PART_MAX makes the commit
 * fail with CF_ETOOBIG, nothing applied.
 */
void store_batch_put_pending(struct store_batch *b, const char *name, const char *order_url,
                             const char *key_pem, size_t key_len);
/*
 * store_get_pending appends name's pending order URL to order_url and its
 * key (if one was stored) to key_pem; either may be NULL. Returns 0,
 * CF_ENOTFOUND, or CF_ECORRUPT (nothing appended then).
 */
int store_get_pending(struct store *st, const char *name, struct buf *order_url,
                      struct buf *key_pem);
/* store_batch_del_pending queues the removal of name's pending order (absent: no change). */
void store_batch_del_pending(struct store_batch *b, const char *name);

/*
 * store_batch_commit applies every queued change in one write transaction
 * and empties the batch. When the map is full it grows the map and retries;
 * when it cannot grow, returns CF_EMAPFULL and nothing of the batch is
 * applied (what was committed before stays). Other failures: CF_ESTORE.
 */
int store_batch_commit(struct store_batch *b);

/*
 * store_batch_drop queues the removal of every entry of db (for state that
 * is rewritten whole, like the rate-limit buckets). Not for the hosts or the
 * due index, which must stay in step.
 */
void store_batch_drop(struct store_batch *b, enum store_db db);

/*
 * store_db_iter calls cb(ctx, key, klen, val, vlen) for each entry of db in
 * key order, in one read transaction; the pointers are valid during the
 * call only. cb returns 0 to go on, anything else to stop (returned).
 * Returns CF_EUSAGE for STORE_DB_HOSTS and STORE_DB_DUE (use their own
 * iterators).
 */
typedef int (*store_kv_cb)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);
int store_db_iter(struct store *st, enum store_db db, store_kv_cb cb, void *ctx);

#endif
