/*
 * backoff.c - failure backoff and per-host jitter.
 */
#include "backoff.h"

int64_t sched_backoff_delay(uint32_t failures)
{
    static const int64_t steps[] = {60, 600, 6000};
    if (failures == 0)
        return 0;
    if (failures <= 3)
        return steps[failures - 1];
    return 86400;
}

int64_t sched_jitter(const char *name, int64_t span)
{
    if (span <= 0)
        return 0;
    /* FNV-1a 64 and a final mix (splitmix64's), so similar names spread apart. */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (int64_t)(h % (uint64_t)span);
}
