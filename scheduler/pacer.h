/*
 * pacer.h - the scheduler: the pacer of the requests sent to the CA's
 * endpoints.
 *
 * A CA limits the request rate of each endpoint (Let's Encrypt: new-nonce
 * 20/s with a burst of 10, new-order 300/s burst 200, renewal-info 1000/s
 * burst 100, every other /acme/ endpoint 250/s burst 125; DESIGN.md §3).
 * A request the CA refuses for its rate costs the order it belongs to, so
 * the client must never send one: every request passes through a pacer,
 * one token bucket (GCRA, as ratelimit.h) per endpoint class, and waits in
 * a first-in first-out queue of its class until the bucket has a token.
 * Nothing is ever dropped: a request waits as long as it takes.
 *
 * Pure logic (STYLE.md): time comes in as an argument, in microseconds on
 * any monotonic clock; there is no timer here. The ACME client (engine/acme
 * /client.c) queues its requests and wakes up at rl_pacer_next_us.
 *
 * Jitter. The CA counts a request when it arrives, not when it was sent:
 * requests sent in step can arrive bunched (a busy loop turn on either side,
 * TCP, the scheduler of a shared machine). If the send times conform to a
 * GCRA of interval T and tolerance tau_s, arrival times delayed by anything
 * from d to d + J conform to interval T and tolerance tau_s + J. The CA's
 * bucket of B tokens every T has the tolerance tau = (B - 1) * T, so the
 * pacer keeps tau_s = tau - J, and for a bucket too small for that (tau <
 * J) a longer interval T + (J - tau) with no burst: either way arrivals
 * that are up to J late, relative to each other, stay within the CA's
 * limit. The cost is J's worth of burst (Let's Encrypt's ep_other: 112 of
 * 125 with J = 50 ms); the long-term rate is the CA's.
 *
 * Functions taking a kind treat one that is not an endpoint kind as
 * RL_EP_OTHER.
 */
#ifndef CF_SCHEDULER_PACER_H
#define CF_SCHEDULER_PACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

/* The arrival jitter the pacer absorbs by default (see above). */
#define RL_PACE_JITTER_MS 50

/*
 * rl_pace_is_endpoint tells whether kind is one of the per-endpoint request
 * rates (RL_EP_NEW_NONCE, RL_EP_NEW_ORDER, RL_EP_ARI, RL_EP_OTHER): the
 * classes a pacer keeps. The others are per-order limits (ratelimit.h).
 */
bool rl_pace_is_endpoint(enum rl_kind kind);

/*
 * struct rl_pace_item is one request waiting in a pacer, embedded in the
 * caller's own struct (container_of). The pacer links it and owns nothing:
 * the caller keeps it alive while it is queued and frees it after it was
 * popped or removed.
 */
struct rl_pace_item {
    struct rl_pace_item *next; /* the class's queue */
    uint64_t seq;              /* order of arrival in the pacer */
    uint8_t kind;              /* its class (an endpoint kind) */
    uint8_t queued;            /* in a queue now */
};

struct rl_pacer;

/*
 * rl_pacer_new returns a pacer for the endpoint limits of profile p (the
 * other kinds of p are ignored) absorbing jitter_ms of arrival jitter (0 or
 * negative: none). Every class starts with a full bucket. NULL only if
 * rl_profile_check refuses p.
 */
struct rl_pacer *rl_pacer_new(const struct rl_profile *p, int jitter_ms);

/* rl_pacer_free frees p (the items still queued are the caller's). Accepts NULL. */
void rl_pacer_free(struct rl_pacer *p);

/*
 * rl_pacer_limit tells what the pacer keeps for kind: the interval between
 * tokens and the tolerance (microseconds; a bucket of 1 + tolerance /
 * interval tokens). Both 0 for an unlimited class.
 */
void rl_pacer_limit(const struct rl_pacer *p, enum rl_kind kind, int64_t *interval_us,
                    int64_t *tolerance_us);

/*
 * rl_pacer_ready_at returns the earliest time >= now_us at which kind's
 * bucket gives a token (now_us for an unlimited class that is not frozen).
 */
int64_t rl_pacer_ready_at(const struct rl_pacer *p, enum rl_kind kind, int64_t now_us);

/*
 * rl_pacer_try is the way in for a request of class kind at now_us: when
 * nothing of its class waits and the bucket has a token, the token is taken
 * and the result is true (send it now); otherwise false, and nothing is
 * taken (queue it with rl_pacer_push).
 */
bool rl_pacer_try(struct rl_pacer *p, enum rl_kind kind, int64_t now_us);

/* rl_pacer_push queues it at the tail of kind's queue. */
void rl_pacer_push(struct rl_pacer *p, struct rl_pace_item *it, enum rl_kind kind);

/*
 * rl_pacer_remove takes it out of its queue wherever it is (a request given
 * up on); returns false if it was not queued.
 */
bool rl_pacer_remove(struct rl_pacer *p, struct rl_pace_item *it);

/*
 * rl_pace_ready_fn says whether the head of a queue, its token being there,
 * can go now: the caller's own condition (an ACME client's signed requests
 * also need a nonce). NULL means always.
 */
typedef bool (*rl_pace_ready_fn)(void *ctx, const struct rl_pace_item *it);

/*
 * rl_pacer_pop returns the request to send at now_us, with its class's
 * token taken: of the queue heads whose bucket has a token and that ready
 * accepts, the one that arrived first. NULL when none can go now; call it
 * again until NULL. ready is only asked about heads whose token is there.
 */
struct rl_pace_item *rl_pacer_pop(struct rl_pacer *p, int64_t now_us, rl_pace_ready_fn ready,
                                  void *ctx);

/*
 * rl_pacer_next_us returns when the pacer has something to send next: the
 * earliest rl_pacer_ready_at over the classes with a queue, leaving out a
 * head whose token is there at now_us but that ready refuses (it waits for
 * the caller's condition, and the caller pops again when that changes).
 * INT64_MAX when there is no such time.
 */
int64_t rl_pacer_next_us(const struct rl_pacer *p, int64_t now_us, rl_pace_ready_fn ready,
                         void *ctx);

/*
 * rl_pacer_freeze holds kind until until_us: the CA answered rateLimited
 * (RFC 8555 §6.6) with that Retry-After. Its bucket then refills from empty
 * (the CA's next token is at until_us, and no more), as rl_freeze does. A
 * later freeze never shortens an earlier one. Applies to unlimited classes
 * too: every CA gets the reactive handling (DESIGN.md §3).
 */
void rl_pacer_freeze(struct rl_pacer *p, enum rl_kind kind, int64_t until_us);

/* rl_pacer_queued returns how many requests of kind wait; RL_KIND__COUNT: of every class. */
size_t rl_pacer_queued(const struct rl_pacer *p, enum rl_kind kind);

#endif
