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

int lbhb_pick_weighted(const lbhb_cand_t *c, unsigned int n, uint64_t rnd)
{
    uint64_t total = 0, at;

    if (c == NULL) {
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        if (c[i].usable) {
            total += c[i].ready;
        }
    }
    if (total == 0) {
        /* Every member is full (or was at its last report): stock refused
         * with 503 here. Queue at the least overcommitted one instead;
         * rnd spreads the ties. */
        return lbhb_pick_most(c, n, n ? (unsigned int)(rnd % n) : 0);
    }
    /* Half-open range [0, total): no member gets a slot more than it
     * reported (stock's inclusive range favoured the last one). */
    at = rnd % total;
    for (unsigned int i = 0; i < n; i++) {
        if (!c[i].usable) {
            continue;
        }
        if (at < c[i].ready) {
            return (int)i;
        }
        at -= c[i].ready;
    }
    return -1;
}

/* The k-th usable candidate (0-based), or -1. */
static int nth_usable(const lbhb_cand_t *c, unsigned int n, uint64_t k)
{
    for (unsigned int i = 0; i < n; i++) {
        if (c[i].usable && k-- == 0) {
            return (int)i;
        }
    }
    return -1;
}

int lbhb_pick_p2c(const lbhb_cand_t *c, unsigned int n, uint64_t rnd)
{
    uint64_t usable = 0, a, b;
    int ia, ib;

    if (c == NULL) {
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        usable += c[i].usable ? 1 : 0;
    }
    if (usable == 0) {
        return -1;
    }
    if (usable == 1) {
        return nth_usable(c, n, 0);
    }
    /* Two distinct indices from one random value: the second skips the
     * first, so both are uniform and never equal. */
    a = (rnd & 0xffffffffu) % usable;
    b = (rnd >> 32) % (usable - 1);
    if (b >= a) {
        b++;
    }
    ia = nth_usable(c, n, a);
    ib = nth_usable(c, n, b);
    return lbhb_effective(c[ib].ready, c[ib].started) > lbhb_effective(c[ia].ready, c[ia].started)
               ? ib
               : ia;
}

uint64_t lbhb_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
