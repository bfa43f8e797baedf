/*
 * run.h - the nightly run (`certfleet run`): due hosts from the store,
 * their DNS checks, the scheduler's decision, ACME orders for those that
 * need a certificate, and every outcome back into the store, on one libuv
 * loop (DESIGN.md §3: store → scheduler → engine → store).
 *
 * A host's pipeline: delegation and liveness checks (concurrently) → the
 * observations folded into its record → ARI window refreshed when the CA
 * has renewalInfo → sched_decide → for an issue or a renewal, admission by
 * the rate-limit buckets and an order slot → the order (resumed when one
 * was in flight) → certificate and record stored in the same group commit.
 * Hosts that need nothing only have their record updated.
 */
#ifndef CF_ENGINE_RUN_RUN_H
#define CF_ENGINE_RUN_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "err.h"
#include "policy.h"
#include "record.h"
#include "store.h"

/* Defaults for the zeros of struct run_opts. */
#define RUN_CONCURRENCY 1000      /* pipelines in flight */
#define RUN_ORDER_CONCURRENCY 100 /* of which ACME orders */
#define RUN_DEADLINE_MS (6 * 3600 * 1000LL)
#define RUN_ORDER_DEADLINE_MS (10 * 60 * 1000LL)

struct run_opts {
    const struct config *cfg;
    struct store *st;
    const char *state_dir;
    size_t concurrency;           /* pipelines in flight; 0: RUN_CONCURRENCY */
    size_t order_concurrency;     /* ACME orders in flight; 0: RUN_ORDER_CONCURRENCY */
    size_t new_order_concurrency; /* newOrders not yet stored at once; 0: 1 (see order.h) */
    size_t limit;                 /* due hosts taken; 0: all */
    int64_t deadline_ms;          /* how long the run may take; 0: RUN_DEADLINE_MS */
    int64_t order_deadline_ms;    /* per order; 0: RUN_ORDER_DEADLINE_MS */
    int dry_run;                  /* check and decide, print, change nothing, no ACME */
    int64_t now;                  /* the scheduler's clock (Unix s); 0: the wall clock */
    struct sched_policy policy;
    const char *rate_limits; /* rl_profile_parse spec; NULL: by directory URL */
    FILE *progress;          /* a terminal for the progress line; NULL: none */
    FILE *plan;              /* dry run: one line per host goes here */
    const char *stats_json;  /* per-stage latencies and a timeline go here; NULL: none */
};

/* Error classes of failed hosts in the summary: a CF_* code's name and its count. */
#define RUN_ERROR_CLASSES 16

struct run_summary {
    int64_t started_at; /* scheduler clock, Unix s */
    double elapsed_s;
    size_t due;     /* due hosts found (before --limit) */
    size_t taken;   /* hosts whose pipeline ran */
    size_t checked; /* hosts whose DNS was checked */
    size_t issued;  /* first certificates */
    size_t renewed; /* renewals */
    size_t failed;  /* orders that failed (see errors) */
    size_t waiting; /* still awaiting their delegation */
    size_t rate_limited;
    size_t deferred;                     /* not started or cut off by the deadline */
    size_t stopped[STOP_REASON__COUNT];  /* hosts that stopped during this run */
    size_t resumed[STOP_REASON__COUNT];  /* stopped hosts that resumed */
    size_t alerts;                       /* delegation removed while still served by the CDN */
    size_t leftover;                     /* stopped hosts whose delegation still points at us */
    size_t planned_issue, planned_renew; /* dry run */
    size_t n_errors;
    struct {
        int code;
        size_t count;
    } errors[RUN_ERROR_CLASSES];
    int fatal;            /* 0, or the code that ended the run early */
    char fatal_text[512]; /* names the CA, the store or the server */
    uint64_t orders_started, acme_posts, bad_nonce_retries, dns_queries, commits;
    /* The ACME client's pacer: requests that waited, their waits (ms), 429 answers. */
    uint64_t acme_paced, acme_pace_wait_ms, acme_429;
    double cpu_s; /* user + sys of this process during the run */
};

/*
 * run_fleet runs once over the due hosts of o->st with o->cfg and fills
 * *out. Returns 0 when the run went through (hosts may have failed: see
 * out->failed), or the code of a fatal error (the store unusable, the CA
 * unreachable, the DNS server's address taken by something else), with
 * out->fatal_text saying what. Keys and secrets are never logged.
 */
int run_fleet(const struct run_opts *o, struct run_summary *out);

/* run_summary_print writes the end-of-run table to f. */
void run_summary_print(FILE *f, const struct run_summary *s, int dry_run);

/*
 * run_metrics_write writes the Prometheus textfile <state_dir>/metrics.prom
 * (atomically: a temporary file renamed) with certfleet_* metrics of the run
 * and of the store's hosts by state. Returns 0 or a negative code.
 */
int run_metrics_write(const char *state_dir, struct store *st, const struct run_summary *s);

#endif
