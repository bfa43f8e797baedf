/*
 * test_commit.c - group commit: one transaction per loop iteration for all
 * queued changes, callbacks after it with its outcome, nothing applied on
 * failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "commit.h"
#include "err.h"

struct fixture {
    char dir[64];
    struct store *st;
    uv_loop_t loop;
    struct committer *c;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cf-test-commit-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    committer_free(f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int seen[8];

static void on_done(void *arg, int status)
{
    seen[(intptr_t)arg] = status == 0 ? 1 : status;
}

static void on_timer(uv_timer_t *t)
{
    struct fixture *f = t->data;
    /* Changes from several "pipelines" in one iteration... */
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "h%d.acme.test", i);
        store_batch_txt_add(committer_batch(f->c), name, "digest");
        committer_then(f->c, on_done, (void *)(intptr_t)i);
    }
    /* ...are not committed yet, and no callback has run. */
    struct buf v;
    buf_init(&v);
    assert_int_equal(store_get(f->st, STORE_DB_DNS, "h0.acme.test", 12, &v), CF_ENOTFOUND);
    buf_cleanup(&v);
    assert_int_equal(seen[0], 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_one_commit_per_iteration(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    uv_loop_init(&f->loop);
    assert_int_equal(committer_new(&f->c, &f->loop, f->st), 0);
    memset(seen, 0, sizeof(seen));
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = f;
    uv_timer_start(&t, on_timer, 0, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
    struct committer_stats s;
    committer_get_stats(f->c, &s);
    assert_int_equal(s.commits, 1);
    assert_int_equal(s.changes, 3);
    struct buf v;
    buf_init(&v);
    assert_int_equal(store_get(f->st, STORE_DB_DNS, "h2.acme.test", 12, &v), 0);
    buf_cleanup(&v);
}

static void test_failure_reported(void **state)
{
    struct fixture *f = *state;
    /* A map that cannot hold the batch: the commit fails, callbacks learn it, nothing lands. */
    struct store_options o = {1 << 20, 1 << 20};
    assert_int_equal(store_open(&f->st, f->dir, &o), 0);
    uv_loop_init(&f->loop);
    assert_int_equal(committer_new(&f->c, &f->loop, f->st), 0);
    memset(seen, 0, sizeof(seen));
    char big[200], name[64];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "host-%06d.acme.test", i);
        store_batch_txt_add(committer_batch(f->c), name, big);
    }
    committer_then(f->c, on_done, (void *)(intptr_t)5);
    assert_int_equal(committer_flush(f->c), CF_EMAPFULL);
    assert_int_equal(seen[5], CF_EMAPFULL);
    struct buf v;
    buf_init(&v);
    assert_int_equal(store_get(f->st, STORE_DB_DNS, "host-000000.acme.test", 21, &v), CF_ENOTFOUND);
    buf_cleanup(&v);
    /* The committer goes on with the next batch. */
    store_batch_txt_add(committer_batch(f->c), "ok.acme.test", "digest");
    assert_int_equal(committer_flush(f->c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_commit_per_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
