/*
 * observe.c - folding DNS check results into a host record.
 */
#include <stdio.h>

#include "observe.h"

void sched_note_delegation(struct host_record *rec, enum deleg_result result, const char *seen,
                           int64_t now)
{
    rec->deleg_result = (uint8_t)result;
    rec->deleg_checked_at = now;
    rec->deleg_seen[0] = '\0';
    switch (result) {
    case DELEG_CONFIRMED:
        if (!rec->deleg_first_ok)
            rec->deleg_first_ok = now;
        rec->deleg_last_ok = now;
        rec->deleg_bad_checks = 0;
        break;
    case DELEG_WRONG_TARGET:
        if (seen)
            snprintf(rec->deleg_seen, sizeof(rec->deleg_seen), "%s", seen);
        rec->deleg_bad_checks++;
        break;
    case DELEG_MISSING:
    case DELEG_PROPAGATING:
        rec->deleg_bad_checks++;
        break;
    default:
        /* An error says nothing about the customer's DNS: no count either way. */
        break;
    }
}

void sched_note_liveness(struct host_record *rec, enum live_result result, int64_t now)
{
    rec->live_result = (uint8_t)result;
    rec->live_checked_at = now;
    if (result == LIVE_LIVE) {
        if (!rec->live_first_seen)
            rec->live_first_seen = now;
        rec->live_last_seen = now;
        rec->live_bad_checks = 0;
    } else if (result == LIVE_NOT_LIVE) {
        rec->live_bad_checks++;
    }
}
