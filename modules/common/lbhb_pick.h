/*
 * lbhb_pick.h: how the heartbeat balancer ranks members.
 *
 * A member's effective ready count is what its last report said minus the
 * requests this proxy has sent it since that report. Ranking on the raw
 * report would send every request between two heartbeats to the same member
 * (herding); subtracting our own traffic spreads load as it arrives.
 */
#ifndef LBHB_PICK_H
#define LBHB_PICK_H

#include <stdint.h>

typedef struct {
    int64_t eff;     /* effective ready slots; may be negative when overcommitted */
    uint32_t order;  /* distance from the round-robin cursor: lower wins a tie */
    uint32_t weight; /* the member's loadfactor; 0 counts as 1 */
} lbhb_score_t;

/* ready - started, never overflowing. */
int64_t lbhb_effective(uint32_t ready, uint64_t started_since_report);

/* Nonzero if cur should replace best (best may be NULL: then always true).
 * Higher eff wins; equal eff goes to the lower order, so that ties rotate.
 * Weights scale the comparison: free slots count weight times each
 * (eff * weight), and overcommitment counts 1/weight (eff / weight), so a
 * member of weight 4 is preferred 4:1 whether it has room or is full. */
int lbhb_better(const lbhb_score_t *cur, const lbhb_score_t *best);

/* Rotation distance of member idx from cursor among n members. */
uint32_t lbhb_order(unsigned int idx, unsigned int cursor, unsigned int n);

typedef struct {
    int usable;       /* has fresh data and may take requests */
    uint32_t ready;   /* from the last report */
    uint64_t started; /* requests sent since that report */
    uint32_t weight;  /* the member's loadfactor; 0 counts as 1 */
} lbhb_cand_t;

/* Best usable candidate among n, ties rotating from cursor; -1 if none. */
int lbhb_pick_most(const lbhb_cand_t *c, unsigned int n, unsigned int cursor);

/* Stock-compatible: a usable candidate at random, weighted by its reported
 * ready count times its weight (a candidate reporting 0 is never chosen while another
 * reports any); rnd is a uniform random number. Unlike stock, every slot
 * has exactly the same chance, and when no usable candidate reports a
 * ready slot the choice is lbhb_pick_most's (the least overcommitted)
 * rather than none. -1 only if no candidate is usable. */
int lbhb_pick_weighted(const lbhb_cand_t *c, unsigned int n, uint64_t rnd);

/* Power of two choices: two distinct usable candidates drawn at random (from
 * rnd), the one with more effective ready slots wins, weighted as in
 * lbhb_better (the first drawn on a tie). With one usable candidate, that one; -1 with none. Robust
 * when several proxies share origins: they do not all pile onto the same best. */
int lbhb_pick_p2c(const lbhb_cand_t *c, unsigned int n, uint64_t rnd);

/* A well-mixed 64-bit value from a counter (splitmix64), so that callers can
 * draw random numbers from one atomic increment without shared state. */
uint64_t lbhb_mix64(uint64_t x);

#endif
