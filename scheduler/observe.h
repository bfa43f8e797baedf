/*
 * observe.h - folding DNS check results into a host record.
 *
 * Pure logic: the record, the result and the time come in; the record's
 * observation fields go out. Policy decisions that use them (delegation
 * removed, offboarded, never live) are the scheduler's, elsewhere.
 */
#ifndef CF_SCHEDULER_OBSERVE_H
#define CF_SCHEDULER_OBSERVE_H

#include <stdint.h>

#include "record.h"

/*
 * sched_note_delegation records a delegation check result at now: the first
 * and last time the delegation was confirmed, consecutive checks that did
 * not confirm, and the target seen when it was wrong (seen may be NULL).
 */
void sched_note_delegation(struct host_record *rec, enum deleg_result result, const char *seen,
                           int64_t now);

/*
 * sched_note_liveness records a liveness check result at now: first and last
 * time seen live, and consecutive not-live checks (errors count neither way).
 */
void sched_note_liveness(struct host_record *rec, enum live_result result, int64_t now);

#endif
