/*
 * backoff.h - the scheduler: failure backoff and per-host jitter.
 *
 * Pure logic (STYLE.md): time comes in as an argument, nothing here does
 * I/O or knows the event loop, so all of it is tested with simulated time.
 */
#ifndef CF_SCHEDULER_BACKOFF_H
#define CF_SCHEDULER_BACKOFF_H

#include <stdint.h>

/*
 * sched_backoff_delay returns the wait in seconds after the n-th
 * consecutive failure (n >= 1): 1 min, 10 min, 100 min, then daily
 * (DESIGN.md §1.5). n == 0 returns 0.
 */
int64_t sched_backoff_delay(uint32_t failures);

/*
 * sched_jitter returns a deterministic value in [0, span) derived from the
 * hostname, so a host's spread-out times are stable from run to run and
 * hosts imported together do not act together. span <= 0 returns 0.
 */
int64_t sched_jitter(const char *name, int64_t span);

#endif
