/*
 * lbhb_pick.c: member ranking for the heartbeat balancer.
 */
#include <stddef.h>

#include "lbhb_pick.h"

int64_t lbhb_effective(uint32_t ready, uint64_t started_since_report)
{
    uint64_t over;

    if (started_since_report <= ready) {
        return (int64_t)(ready - started_since_report);
    }
    over = started_since_report - ready;
    /* Saturate: beyond this the member is hopelessly overcommitted anyway,
     * and wrapping would make it look like the best choice. */
    if (over > (uint64_t)INT64_MAX) {
        return INT64_MIN;
    }
    return -(int64_t)over;
}

int lbhb_better(const lbhb_score_t *cur, const lbhb_score_t *best)
{
    if (cur == NULL) {
        return 0;
    }
    if (best == NULL) {
        return 1;
    }
    if (cur->eff != best->eff) {
        return cur->eff > best->eff;
    }
    return cur->order < best->order;
}

uint32_t lbhb_order(unsigned int idx, unsigned int cursor, unsigned int n)
{
    if (n == 0) {
        return 0;
    }
    /* Widened so that idx + n cannot wrap for large member counts. */
    return (uint32_t)(((uint64_t)idx + n - cursor % n) % n);
}

int lbhb_pick_most(const lbhb_cand_t *c, unsigned int n, unsigned int cursor)
{
    lbhb_score_t best = {0, 0};
    int found = -1;

    if (c == NULL) {
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        lbhb_score_t cur;
        if (!c[i].usable) {
            continue;
        }
        cur.eff = lbhb_effective(c[i].ready, c[i].started);
        cur.order = lbhb_order(i, cursor, n);
        if (lbhb_better(&cur, found < 0 ? NULL : &best)) {
            best = cur;
            found = (int)i;
        }
    }
    return found;
}
