/*
 * pacer.c - per-endpoint request pacing (pacer.h): a GCRA bucket and a FIFO
 * queue per endpoint class.
 *
 * A class with interval T and tolerance tau keeps TAT, the theoretical
 * arrival time of its next request (virtual scheduling form of GCRA): a
 * request at now conforms when TAT - tau <= now, and then sets TAT to
 * max(TAT, now) + T. So a class idle for long admits 1 + tau / T requests
 * at once, then one every T.
 */
#include <stdlib.h>
#include <string.h>

#include "pacer.h"
#include "buf.h"

/* The classes, in the order of enum rl_kind's endpoint kinds. */
#define FIRST_EP RL_EP_NEW_NONCE
#define NCLASS (RL_EP_OTHER - RL_EP_NEW_NONCE + 1)

struct pace_class {
    int64_t t_us;      /* interval; 0: unlimited */
    int64_t tau_us;    /* tolerance */
    int64_t tat_us;    /* theoretical arrival time of the next request */
    int64_t frozen_us; /* nothing before this (a rateLimited answer) */
    struct rl_pace_item *head, *tail;
    size_t n;
};

struct rl_pacer {
    struct pace_class cls[NCLASS];
    uint64_t seq;
};

bool rl_pace_is_endpoint(enum rl_kind kind)
{
    return kind == RL_EP_NEW_NONCE || kind == RL_EP_NEW_ORDER || kind == RL_EP_ARI ||
           kind == RL_EP_OTHER;
}

static struct pace_class *class_of(struct rl_pacer *p, enum rl_kind kind)
{
    return &p->cls[(rl_pace_is_endpoint(kind) ? kind : RL_EP_OTHER) - FIRST_EP];
}

static const struct pace_class *cclass_of(const struct rl_pacer *p, enum rl_kind kind)
{
    return &p->cls[(rl_pace_is_endpoint(kind) ? kind : RL_EP_OTHER) - FIRST_EP];
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

struct rl_pacer *rl_pacer_new(const struct rl_profile *prof, int jitter_ms)
{
    if (rl_profile_check(prof, NULL, 0))
        return NULL;
    int64_t j_us = (int64_t)(jitter_ms > 0 ? jitter_ms : 0) * 1000;
    struct rl_pacer *p = xcalloc(1, sizeof(*p));
    for (int i = 0; i < NCLASS; i++) {
        const struct rl_limit *l = &prof->limit[FIRST_EP + i];
        struct pace_class *c = &p->cls[i];
        if (!l->count)
            continue;
        /* T rounded up to a whole microsecond: rounding only makes the pace slower. */
        int64_t t = (l->period_ms * 1000 + l->count - 1) / l->count;
        int64_t burst = l->burst ? l->burst : l->count;
        int64_t tau = (burst - 1) * t;
        /* pacer.h: keep J of the CA's tolerance for the jitter, or slow down by what is missing. */
        if (tau >= j_us) {
            c->t_us = t;
            c->tau_us = tau - j_us;
        } else {
            c->t_us = t + (j_us - tau);
            c->tau_us = 0;
        }
    }
    return p;
}

void rl_pacer_free(struct rl_pacer *p)
{
    free(p);
}

void rl_pacer_limit(const struct rl_pacer *p, enum rl_kind kind, int64_t *interval_us,
                    int64_t *tolerance_us)
{
    const struct pace_class *c = cclass_of(p, kind);
    if (interval_us)
        *interval_us = c->t_us;
    if (tolerance_us)
        *tolerance_us = c->t_us ? c->tau_us : 0;
}

static int64_t class_ready_at(const struct pace_class *c, int64_t now_us)
{
    int64_t at = max64(now_us, c->frozen_us);
    if (c->t_us)
        at = max64(at, c->tat_us - c->tau_us);
    return at;
}

int64_t rl_pacer_ready_at(const struct rl_pacer *p, enum rl_kind kind, int64_t now_us)
{
    return class_ready_at(cclass_of(p, kind), now_us);
}

/* take spends a token of c at now_us (the caller saw that it had one). */
static void take(struct pace_class *c, int64_t now_us)
{
    if (c->t_us)
        c->tat_us = max64(c->tat_us, now_us) + c->t_us;
}

bool rl_pacer_try(struct rl_pacer *p, enum rl_kind kind, int64_t now_us)
{
    struct pace_class *c = class_of(p, kind);
    if (c->head || class_ready_at(c, now_us) > now_us)
        return false;
    take(c, now_us);
    return true;
}

void rl_pacer_push(struct rl_pacer *p, struct rl_pace_item *it, enum rl_kind kind)
{
    struct pace_class *c = class_of(p, kind);
    it->next = NULL;
    it->seq = ++p->seq;
    it->kind = (uint8_t)(rl_pace_is_endpoint(kind) ? kind : RL_EP_OTHER);
    it->queued = 1;
    if (c->tail)
        c->tail->next = it;
    else
        c->head = it;
    c->tail = it;
    c->n++;
}

bool rl_pacer_remove(struct rl_pacer *p, struct rl_pace_item *it)
{
    if (!it->queued)
        return false;
    struct pace_class *c = class_of(p, (enum rl_kind)it->kind);
    struct rl_pace_item *prev = NULL;
    for (struct rl_pace_item *x = c->head; x; prev = x, x = x->next) {
        if (x != it)
            continue;
        if (prev)
            prev->next = x->next;
        else
            c->head = x->next;
        if (c->tail == x)
            c->tail = prev;
        c->n--;
        it->next = NULL;
        it->queued = 0;
        return true;
    }
    return false;
}

struct rl_pace_item *rl_pacer_pop(struct rl_pacer *p, int64_t now_us, rl_pace_ready_fn ready,
                                  void *ctx)
{
    struct pace_class *best = NULL;
    for (int i = 0; i < NCLASS; i++) {
        struct pace_class *c = &p->cls[i];
        if (!c->head || (best && best->head->seq < c->head->seq))
            continue;
        if (class_ready_at(c, now_us) > now_us || (ready && !ready(ctx, c->head)))
            continue;
        best = c;
    }
    if (!best)
        return NULL;
    struct rl_pace_item *it = best->head;
    best->head = it->next;
    if (!best->head)
        best->tail = NULL;
    best->n--;
    it->next = NULL;
    it->queued = 0;
    take(best, now_us);
    return it;
}

int64_t rl_pacer_next_us(const struct rl_pacer *p, int64_t now_us, rl_pace_ready_fn ready,
                         void *ctx)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < NCLASS; i++) {
        const struct pace_class *c = &p->cls[i];
        if (!c->head)
            continue;
        int64_t at = class_ready_at(c, now_us);
        if (at <= now_us && ready && !ready(ctx, c->head))
            continue;
        if (at < next)
            next = at;
    }
    return next;
}

void rl_pacer_freeze(struct rl_pacer *p, enum rl_kind kind, int64_t until_us)
{
    struct pace_class *c = class_of(p, kind);
    c->frozen_us = max64(c->frozen_us, until_us);
    /* The CA's bucket gives its next token at until and refills from there: TAT = until + tau. */
    if (c->t_us)
        c->tat_us = max64(c->tat_us, until_us + c->tau_us);
}

size_t rl_pacer_queued(const struct rl_pacer *p, enum rl_kind kind)
{
    if (kind == RL_KIND__COUNT) {
        size_t n = 0;
        for (int i = 0; i < NCLASS; i++)
            n += p->cls[i].n;
        return n;
    }
    return cclass_of(p, kind)->n;
}
