/*
 * commit.h - group commit for the event loop.
 *
 * Pipelines queue their store changes into one shared batch; a uv_check
 * handle commits it once per loop iteration (STYLE.md: "one short write
 * transaction per loop iteration", like redis's fsync in beforeSleep), and
 * then tells every pipeline that asked whether its changes are durable.
 * A thousand orders publishing TXT records in one iteration cost one
 * transaction and one fsync, not a thousand.
 */
#ifndef CF_ENGINE_LOOP_COMMIT_H
#define CF_ENGINE_LOOP_COMMIT_H

#include <uv.h>

#include "store.h"

struct committer;

/* commit_cb learns the outcome (0 or a store error) of the commit holding its changes. */
typedef void (*commit_cb)(void *arg, int status);

/* committer_new creates a committer on loop for st (borrowed). Returns 0 or a negative code. */
int committer_new(struct committer **out, uv_loop_t *loop, struct store *st);

/*
 * committer_batch returns the shared batch: changes queued there are
 * committed at the end of this loop iteration.
 */
struct store_batch *committer_batch(struct committer *c);

/*
 * committer_then calls cb(arg, status) once the changes queued so far are
 * committed (or failed to be), from the loop, never from inside this call.
 */
void committer_then(struct committer *c, commit_cb cb, void *arg);

/* committer_flush commits now (for shutdown); returns the commit's status. */
int committer_flush(struct committer *c);

/*
 * committer_free flushes what is queued (callbacks run) and frees c once
 * its handle has closed. Accepts NULL.
 */
void committer_free(struct committer *c);

struct committer_stats {
    uint64_t commits, changes, failures;
};
void committer_get_stats(const struct committer *c, struct committer_stats *out);

#endif
