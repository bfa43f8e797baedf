/*
 * stats.c - latency histograms for the run's report (see stats.h).
 */
#include "stats.h"

/* bucket_of maps us to its bucket: exact below 16, then 4 per power of two. */
static size_t bucket_of(uint64_t us)
{
    if (us < 16)
        return (size_t)us;
    int e = 63 - __builtin_clzll(us); /* e >= 4 */
    size_t i = 16 + (size_t)(e - 4) * 4 + (size_t)((us >> (e - 2)) & 3);
    return i < RUN_HIST_BUCKETS ? i : RUN_HIST_BUCKETS - 1;
}

/* bucket_mid is the middle of bucket i's range, the value reported for it. */
static uint64_t bucket_mid(size_t i)
{
    if (i < 16)
        return i;
    int e = (int)((i - 16) / 4) + 4;
    uint64_t sub = (i - 16) % 4;
    uint64_t lo = (1ULL << e) + sub * (1ULL << (e - 2));
    return lo + (1ULL << (e - 2)) / 2;
}

void run_hist_add(struct run_hist *h, uint64_t us)
{
    h->b[bucket_of(us)]++;
    h->n++;
}

uint64_t run_hist_quantile(const struct run_hist *h, double q)
{
    uint64_t want, seen = 0;
    if (h->n == 0)
        return 0;
    want = (uint64_t)(q * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    for (size_t i = 0; i < RUN_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return bucket_mid(i);
    }
    return bucket_mid(RUN_HIST_BUCKETS - 1);
}

void run_hist_json(struct buf *out, const struct run_hist *h)
{
    buf_printf(out, "{\"n\":%llu,\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f}",
               (unsigned long long)h->n, (double)run_hist_quantile(h, 0.50) / 1000.0,
               (double)run_hist_quantile(h, 0.95) / 1000.0,
               (double)run_hist_quantile(h, 0.99) / 1000.0);
}
