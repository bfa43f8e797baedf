/*
 * renewal.h - renewal timing and fleet leveling.
 *
 * Pure logic (STYLE.md): the record, the leveler and the time come in, a
 * renewal time goes out; nothing here does I/O or knows the event loop.
 *
 * A host's renewal time is chosen once, inside the allowed window of its
 * current certificate (the CA's ARI window, RFC 9773, or a fixed part of the
 * lifetime), stored in rec->renew_at and kept. A bulk import issues many
 * certificates in one night; so that their renewals do not all fall due on
 * one later night, each one is placed in the least-loaded hour of its window
 * (DESIGN.md §3 "Scheduler rules"). The leveler holds the number of stored
 * renewals per hour, loaded from every host's renew_at at the start of a run.
 */
#ifndef CF_SCHEDULER_RENEWAL_H
#define CF_SCHEDULER_RENEWAL_H

#include <stdint.h>

#include "record.h"

/*
 * Without ARI, a certificate of lifetime L = not_after - not_before may be
 * renewed in [not_before + 62% L, not_before + 70% L): around the point where
 * a third of the lifetime remains (66.7%). A 90-day certificate renews between
 * 55.8 and 63 days after issuance, with 34.2 to 27 days left; a 6-day
 * certificate with 2.28 to 1.8 days left. The same fractions hold for every
 * lifetime, so short test certificates behave like real ones, scaled.
 */
#define SCHED_RENEW_START_PCT 62
#define SCHED_RENEW_END_PCT 70

/* The leveler counts renewals in slots of one hour, over at most ten years. */
#define SCHED_LEVELER_SLOT 3600
#define SCHED_LEVELER_MAX_HORIZON ((int64_t)3660 * 86400)

/*
 * sched_renewal_window stores in [*start, *end) the time in which the host's
 * current certificate may be renewed: the ARI window [ari_start, ari_end)
 * when the record holds a valid one for this certificate, otherwise the
 * fixed part of the lifetime above (rounded down to the second).
 *
 * An ARI window whose end is not after its start is ignored (RFC 9773 §4.2:
 * treated as no answer, so the fallback schedule applies), and so is one
 * that ends before the certificate's not_before: it was fetched for an
 * earlier certificate, and following it would renew again at once.
 *
 * Returns 0, CF_ENOTFOUND when the record holds no certificate (not_before
 * or not_after unset), or -EINVAL when not_after is not after not_before.
 */
int sched_renewal_window(const struct host_record *rec, int64_t *start, int64_t *end);

/*
 * struct sched_leveler: the number of stored renewals per hour over
 * [origin, origin + horizon), origin rounded down to the hour. Opaque; a
 * segment tree of minima over the hour counts, so placing a renewal costs
 * O(log slots) however wide its window.
 */
struct sched_leveler;

/*
 * sched_leveler_new returns an empty leveler covering horizon_s seconds from
 * origin (rounded down to the hour; typically the start of the run), or NULL
 * when horizon_s is not in (0, SCHED_LEVELER_MAX_HORIZON]. The caller frees
 * it with sched_leveler_free. 400 days take 128 KiB.
 */
struct sched_leveler *sched_leveler_new(int64_t origin, int64_t horizon_s);

/* sched_leveler_free frees l; NULL is accepted. */
void sched_leveler_free(struct sched_leveler *l);

/*
 * sched_leveler_add counts one renewal at time t, sched_leveler_remove
 * forgets one (a host renewed, stopped or given another renew_at). Times
 * outside the horizon are ignored by both, so they stay symmetric: a time
 * before the origin is overdue work of the current run, not future load. A
 * remove from an empty hour does nothing.
 */
void sched_leveler_add(struct sched_leveler *l, int64_t t);
void sched_leveler_remove(struct sched_leveler *l, int64_t t);

/*
 * sched_leveler_load returns the number of renewals counted in the hour that
 * holds t, 0 outside the horizon.
 */
uint32_t sched_leveler_load(const struct sched_leveler *l, int64_t t);

/*
 * sched_leveler_place picks a time in [start, end) for name's renewal, counts
 * it in l and returns it. The time falls in the least-loaded hour of the
 * window. Among equally loaded hours the search starts at the hour of the
 * name's jitter point (start + sched_jitter(name, end - start)) and goes on
 * cyclically, so hosts that see the same loads spread out instead of piling
 * into the first hour; in an empty leveler the result is that jitter point.
 * Inside another hour the time keeps the jitter point's offset in its hour
 * (moved inside the window for the window's partial first and last hours).
 *
 * The window is cut to the horizon first. A window outside the horizon gets
 * its jitter point, uncounted; an empty window (end <= start) gets start.
 * Deterministic: the same loads and name give the same time.
 */
int64_t sched_leveler_place(struct sched_leveler *l, const char *name, int64_t start, int64_t end);

/*
 * sched_renew_at stores in *out the renewal time to keep in rec->renew_at,
 * for the certificate rec holds, at time now:
 *
 * - A renew_at already inside the window (sched_renewal_window) is kept: the
 *   point was chosen once and stays put while the window still holds it,
 *   also when a new ARI window arrives that contains it. RFC 9773 §4.2 asks
 *   for a point in the window, and moving it run after run would undo the
 *   leveling. A kept time may be in the past: it is due.
 * - A window that ended by now gives now: RFC 9773 §4.2, a selected time in
 *   the past means renewing immediately.
 * - Otherwise the part of the window from now on: with l, the least-loaded
 *   hour (sched_leveler_place); without l, or when less than an hour is left,
 *   the uniform jitter point start + sched_jitter(name, end - start).
 *
 * With l, the leveler keeps mirroring the stored renew_at values: a replaced
 * rec->renew_at is removed from l and the new time added. l must therefore
 * hold rec->renew_at already (loaded at the start of the run).
 *
 * Returns 0, or the errors of sched_renewal_window (no certificate); *out is
 * then untouched.
 */
int sched_renew_at(struct sched_leveler *l, int64_t *out, const struct host_record *rec,
                   int64_t now);

#endif
