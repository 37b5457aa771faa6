/*
 * lbhb_outlier.c: ejecting a failing member (see lbhb_outlier.h).
 */
#include "lbhb_outlier.h"

/* The moving average weighs the newest answer 1/16. */
#define RATE_SHIFT 4

static void rate_update(uint32_t *rate, int failed)
{
    uint32_t cur = __atomic_load_n(rate, __ATOMIC_RELAXED), next;

    do {
        int64_t target = failed ? LBHB_RATE_ONE : 0;
        next = (uint32_t)((int64_t)cur + ((target - (int64_t)cur) >> RATE_SHIFT));
    } while (!__atomic_compare_exchange_n(rate, &cur, next, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

int lbhb_outlier_ejected(const lbhb_outlier_t *o, int64_t now)
{
    return now < __atomic_load_n(&o->until, __ATOMIC_ACQUIRE);
}

lbhb_outlier_e lbhb_outlier_record(lbhb_outlier_t *o, int failed, int64_t now,
                                   const lbhb_outlier_conf_t *c, uint32_t peers_rate,
                                   unsigned int out, unsigned int members)
{
    int64_t until, length;
    uint32_t n, rate;

    rate_update(&o->rate, failed);
    if (!failed) {
        __atomic_store_n(&o->consecutive, 0, __ATOMIC_RELAXED);
        /* The first success after an ejection: back in full. */
        if (__atomic_exchange_n(&o->ejections, 0, __ATOMIC_ACQ_REL) != 0) {
            return LBHB_OUTLIER_RETURNED;
        }
        return LBHB_OUTLIER_NONE;
    }
    n = __atomic_add_fetch(&o->consecutive, 1, __ATOMIC_RELAXED);
    if (c->consecutive == 0 || lbhb_outlier_ejected(o, now)) {
        return LBHB_OUTLIER_NONE;
    }
    rate = __atomic_load_n(&o->rate, __ATOMIC_RELAXED);
    /* On probation (ejected before, no success since) one failure is
     * enough; otherwise a run of them, and a rate far above the peers'. */
    if (__atomic_load_n(&o->ejections, __ATOMIC_RELAXED) == 0 &&
        (n < c->consecutive || rate < peers_rate + c->excess)) {
        return LBHB_OUTLIER_NONE;
    }
    /* At most max_share percent of the members out at once, and never the
     * last one: with every member failing, none is the outlier. */
    if ((out + 1) * 100 > (unsigned long)c->max_share * members || out + 1 >= members) {
        return LBHB_OUTLIER_NONE;
    }
    n = __atomic_load_n(&o->ejections, __ATOMIC_ACQUIRE);
    length = c->base;
    while (n-- > 0 && length < c->max) {
        length *= 2;
    }
    if (length > c->max) {
        length = c->max;
    }
    until = __atomic_load_n(&o->until, __ATOMIC_ACQUIRE);
    /* One thread wins the ejection; the others' failures were counted. */
    if (until > now || !__atomic_compare_exchange_n(&o->until, &until, now + length, 0,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        return LBHB_OUTLIER_NONE;
    }
    __atomic_add_fetch(&o->ejections, 1, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&o->total, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&o->consecutive, 0, __ATOMIC_RELAXED);
    return LBHB_OUTLIER_EJECTED;
}
