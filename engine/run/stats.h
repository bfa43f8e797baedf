/*
 * stats.h - what the run measures for `run --stats-json` and the bench
 * harness: latency histograms per pipeline stage and a timeline.
 *
 * A histogram has log-linear buckets over microseconds (4 per power of two
 * above 16 us, like HdrHistogram at 2 significant bits): ±12% resolution,
 * a fixed 640 bytes, no allocation per sample.
 */
#ifndef CF_ENGINE_RUN_STATS_H
#define CF_ENGINE_RUN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RUN_HIST_BUCKETS 160

struct run_hist {
    uint64_t n;
    uint32_t b[RUN_HIST_BUCKETS];
};

/* run_hist_add counts one sample of us microseconds. */
void run_hist_add(struct run_hist *h, uint64_t us);

/*
 * run_hist_quantile returns the value (microseconds, a bucket's midpoint)
 * below which the fraction q (0..1) of the samples fall; 0 when empty.
 */
uint64_t run_hist_quantile(const struct run_hist *h, double q);

/* run_hist_json appends {"n":..,"p50_ms":..,"p95_ms":..,"p99_ms":..} to out. */
void run_hist_json(struct buf *out, const struct run_hist *h);

#endif
