/*
 * hb_throttle.h: at most one report per period. Bad input and unreachable
 * peers repeat for as long as they last; the log gets the first one, then
 * one a period with how many were held back, and never a line per packet
 * or per request.
 */
#ifndef HB_THROTTLE_H
#define HB_THROTTLE_H

#include <stdint.h>

/* How often a repeating condition is reported (in microseconds). */
#define HB_REPORT_EVERY ((int64_t)60 * 1000000)

/* Zero-initialise (a static or a member of a zeroed struct will do). */
typedef struct {
    int64_t last;  /* when the last report went out; 0 = never */
    uint64_t held; /* reports held back since */
} hb_throttle_t;

/*
 * Whether a report is due at now: the first at once, then one per every.
 * Returns 1 and sets *held (if not NULL) to the reports held back since
 * the last one; otherwise counts this one as held back and returns 0.
 * Threads may share a throttle: one of them wins each period.
 */
int hb_throttle(hb_throttle_t *t, int64_t now, int64_t every, uint64_t *held);

#endif
