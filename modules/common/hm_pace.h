/*
 * hm_pace.h: how long the monitor's receiver lets datagrams queue up
 * between reads once it has emptied its sockets. On a virtual machine a
 * wake-up costs as much as dozens of packets, so at low rates it waits
 * longer and reads more per wake-up; at high rates it waits less so the
 * queue stays far below the receive buffer's size. One thread (the
 * receiver) uses it: no locking.
 */
#ifndef HM_PACE_H
#define HM_PACE_H

#include <stdint.h>

typedef struct {
    int64_t wait; /* microseconds to sleep before the next read */
    int64_t min;
    int64_t max;
    int target; /* datagrams one wait should gather, at most */
} hm_pace_t;

/* Start at the shortest wait: the first reads after a quiet spell learn
 * the rate before any long wait can let a burst pile up. */
void hm_pace_init(hm_pace_t *p, int64_t min, int64_t max, int target);

/* After a wait that gathered `gathered` datagrams: halve the wait when it
 * gathered more than the target, double it when less than half. */
void hm_pace_update(hm_pace_t *p, int gathered);

/* The target for a receive buffer of rcvbuf bytes (as SO_RCVBUF reports
 * it) when a queued datagram may take up to per_dgram bytes of it: what
 * fits, at most cap, at least 16. */
int hm_pace_target(long rcvbuf, long per_dgram, int cap);

#endif
