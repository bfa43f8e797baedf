/*
 * commit.c - group commit for the event loop.
 */
#include <stdlib.h>

#include "buf.h"
#include "commit.h"
#include "err.h"
#include "log.h"

struct waiter {
    commit_cb cb;
    void *arg;
};

struct committer {
    uv_check_t check;
    struct store *st;
    struct store_batch *batch;
    struct waiter *waiters;
    size_t nwaiters, capwaiters;
    struct committer_stats stats;
    int closing;
};

int committer_flush(struct committer *c)
{
    size_t changes = store_batch_count(c->batch);
    int rc = 0;
    if (changes) {
        rc = store_batch_commit(c->batch);
        c->stats.commits++;
        if (rc) {
            c->stats.failures++;
            log_event(LOG_ERROR, "group_commit_failed", "error", cf_strerror(rc), NULL);
            /* Nothing of the batch was applied; drop it so the next one can go. */
            store_batch_free(c->batch);
            c->batch = store_batch_new(c->st);
        } else {
            c->stats.changes += changes;
        }
    }
    /* Waiters added by these callbacks belong to the next commit. */
    size_t n = c->nwaiters;
    struct waiter *w = c->waiters;
    c->waiters = NULL;
    c->nwaiters = c->capwaiters = 0;
    for (size_t i = 0; i < n; i++)
        w[i].cb(w[i].arg, rc);
    free(w);
    return rc;
}

static void on_check(uv_check_t *h)
{
    struct committer *c = h->data;
    if (store_batch_count(c->batch) || c->nwaiters)
        committer_flush(c);
}

int committer_new(struct committer **out, uv_loop_t *loop, struct store *st)
{
    struct committer *c = xcalloc(1, sizeof(*c));
    c->st = st;
    c->batch = store_batch_new(st);
    int rc = uv_check_init(loop, &c->check);
    if (rc) {
        store_batch_free(c->batch);
        free(c);
        return rc;
    }
    c->check.data = c;
    uv_check_start(&c->check, on_check);
    /* Runs every iteration, but must not keep the loop alive by itself. */
    uv_unref((uv_handle_t *)&c->check);
    *out = c;
    return 0;
}

struct store_batch *committer_batch(struct committer *c)
{
    return c->batch;
}

void committer_then(struct committer *c, commit_cb cb, void *arg)
{
    if (c->nwaiters == c->capwaiters) {
        c->capwaiters = c->capwaiters ? c->capwaiters * 2 : 64;
        c->waiters = xrealloc(c->waiters, c->capwaiters * sizeof(*c->waiters));
    }
    c->waiters[c->nwaiters].cb = cb;
    c->waiters[c->nwaiters].arg = arg;
    c->nwaiters++;
}

void committer_get_stats(const struct committer *c, struct committer_stats *out)
{
    *out = c->stats;
}

static void on_closed(uv_handle_t *h)
{
    struct committer *c = h->data;
    store_batch_free(c->batch);
    free(c->waiters);
    free(c);
}

void committer_free(struct committer *c)
{
    if (!c || c->closing)
        return;
    committer_flush(c);
    c->closing = 1;
    uv_close((uv_handle_t *)&c->check, on_closed);
}
