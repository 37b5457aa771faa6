/*
 * lbhb_outlier.h: taking a failing member out of rotation.
 *
 * Balancing on reported capacity has one classic trap: an origin whose
 * application fails at once (a lost database connection, a broken
 * deployment) answers every request in a millisecond, so its workers are
 * always free, it reports the most ready slots, and a capacity balancer
 * pours everything into it (98.9% of requests in our measurement). So the
 * proxy watches each member's answers and ejects one that fails in a row
 * while failing far more than its peers, for a time that doubles each
 * time it is ejected again; at most a bounded share of members is out at
 * once. Past its time it is on probation: one more failure ejects it again,
 * a success brings it back. Errors that every member has alike (5% of 500s
 * everywhere) are the application's, not a member's: nobody is ejected.
 *
 * The state lives in shared memory, one per member, and is updated with
 * atomics by every process's request threads.
 */
#ifndef LBHB_OUTLIER_H
#define LBHB_OUTLIER_H

#include <stdint.h>

/* Failure rates are fixed point: LBHB_RATE_ONE is 100%. */
#define LBHB_RATE_ONE 65536u

typedef struct {
    uint32_t consecutive; /* failures in a row */
    uint32_t rate;        /* recent failure rate (moving average over ~16 answers) */
    uint32_t ejections;   /* ejections in a row, without a success between */
    uint32_t total;       /* ejections since the proxy started (a counter, for metrics) */
    int64_t until;        /* ejected until this time (usec); 0 = never ejected */
} lbhb_outlier_t;

typedef struct {
    uint32_t consecutive;   /* failures in a row that may eject (0 = ejection off) */
    uint32_t excess;        /* by how much the rate must exceed the peers' (fixed point) */
    int64_t base;           /* first ejection time (usec); doubles each time */
    int64_t max;            /* longest ejection (usec) */
    unsigned int max_share; /* percent of members that may be out at once */
} lbhb_outlier_conf_t;

typedef enum {
    LBHB_OUTLIER_NONE = 0,
    LBHB_OUTLIER_EJECTED, /* this answer ejected the member */
    LBHB_OUTLIER_RETURNED /* a success after an ejection: back in full */
} lbhb_outlier_e;

/*
 * Record one answer of a member: failed != 0 for a 5xx or no answer.
 * peers_rate is the mean failure rate of the member's peers (the other
 * members of the balancer, LBHB_RATE_ONE = 100%), out the number of
 * members ejected now and members the balancer's size. Returns what
 * changed, for the caller to log.
 */
lbhb_outlier_e lbhb_outlier_record(lbhb_outlier_t *o, int failed, int64_t now,
                                   const lbhb_outlier_conf_t *c, uint32_t peers_rate,
                                   unsigned int out, unsigned int members);

/* Whether the member is ejected at now (and so not to be picked). */
int lbhb_outlier_ejected(const lbhb_outlier_t *o, int64_t now);

#endif
