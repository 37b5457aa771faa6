/*
 * hb_throttle.c: at most one report per period (see hb_throttle.h).
 */
#include "hb_throttle.h"

int hb_throttle(hb_throttle_t *t, int64_t now, int64_t every, uint64_t *held)
{
    int64_t last = __atomic_load_n(&t->last, __ATOMIC_ACQUIRE);
    uint64_t n;

    /* A clock that went back counts as due: better one line too many than
     * silence until the clock catches up. */
    if ((last == 0 || now - last >= every || now < last) &&
        __atomic_compare_exchange_n(&t->last, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        n = __atomic_exchange_n(&t->held, 0, __ATOMIC_ACQ_REL);
        if (held) {
            *held = n;
        }
        return 1;
    }
    __atomic_fetch_add(&t->held, 1, __ATOMIC_RELAXED);
    return 0;
}
