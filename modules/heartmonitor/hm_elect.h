/*
 * hm_elect.h: which child runs the receiver. One thread per child waits on
 * a process-shared mutex; the holder runs the receiver until its child
 * exits, and a waiter in another child takes over at once. The owner dying
 * with it (a crash) hands it on too (a robust mutex).
 *
 * Each generation has its own mutex, and a word that outlives generations
 * says which generation's receiver runs. After a graceful restart the new
 * generation's receiver starts as soon as one of its children is up and
 * claims the word; the old receiver sees that at its next wake-up and
 * stops. Until then the old one keeps receiving: children of the new
 * generation may take a second or more to start, and with mod_watchdog's
 * singleton (which this replaces) nothing received in between, so
 * balancers with short heartbeat intervals saw every member go stale.
 */
#ifndef HM_ELECT_H
#define HM_ELECT_H

#include "apr_pools.h"

typedef struct hm_elect hm_elect_t;

/* In the parent, once per generation before its children fork: a new
 * election in shared memory that lives as long as pconf (children keep
 * their own mapping after the parent lets it go); the word shared by all
 * generations is made once, in pproc. */
apr_status_t hm_elect_create(hm_elect_t **out, apr_pool_t *pconf, apr_pool_t *pproc);

typedef enum {
    HM_ELECT_WON = 0,
    HM_ELECT_WON_FROM_DEAD, /* the previous holder died holding it */
    HM_ELECT_ERROR          /* errno says why */
} hm_elect_e;

/* Block until the calling thread holds the election. */
hm_elect_e hm_elect_wait(hm_elect_t *e);

/* After winning: 0 if this generation is (now) the one that receives,
 * -1 if a newer one already does (then release and stop). */
int hm_elect_claim(hm_elect_t *e);

/* 1 once a newer generation's receiver has claimed the word. */
int hm_elect_superseded(const hm_elect_t *e);

/* Let go (only the thread that won may). */
void hm_elect_release(hm_elect_t *e);

#endif
