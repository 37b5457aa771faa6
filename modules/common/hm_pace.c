/*
 * hm_pace.c: the receiver's wait between reads (see hm_pace.h).
 */
#include "hm_pace.h"

#define HM_PACE_TARGET_MIN 16

void hm_pace_init(hm_pace_t *p, int64_t min, int64_t max, int target)
{
    p->min = min > 0 ? min : 1;
    p->max = max > p->min ? max : p->min;
    p->wait = p->min;
    p->target = target > 1 ? target : 1;
}

void hm_pace_update(hm_pace_t *p, int gathered)
{
    /* Multiplicative both ways: a rate that jumps tenfold is matched
     * within a few waits, and between half and all of the target nothing
     * moves, so a steady rate settles instead of oscillating. */
    if (gathered > p->target) {
        p->wait /= 2;
        if (p->wait < p->min) {
            p->wait = p->min;
        }
    } else if (gathered < p->target / 2) {
        p->wait *= 2;
        if (p->wait > p->max) {
            p->wait = p->max;
        }
    }
}

int hm_pace_target(long rcvbuf, long per_dgram, int cap)
{
    long n = per_dgram > 0 && rcvbuf > 0 ? rcvbuf / per_dgram : 0;

    if (n > cap) {
        n = cap;
    }
    return n < HM_PACE_TARGET_MIN ? HM_PACE_TARGET_MIN : (int)n;
}
