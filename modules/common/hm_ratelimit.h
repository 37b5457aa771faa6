/*
 * hm_ratelimit.h: a per-source token bucket for the monitor's receiver, so
 * that one address cannot flood the table's writers. Fixed memory, one
 * thread (the receiver) uses it: no locking.
 */
#ifndef HM_RATELIMIT_H
#define HM_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "hm_addr.h"

typedef struct hm_ratelimit hm_ratelimit_t;

/* Bytes for a limiter tracking up to `sources` addresses at once. */
size_t hm_ratelimit_size(unsigned int sources);

/* rate: packets per second allowed per source address (> 0); burst: how
 * many may come at once (>= 1). mem must be hm_ratelimit_size() bytes. */
hm_ratelimit_t *hm_ratelimit_init(void *mem, unsigned int sources, uint32_t rate, uint32_t burst);

/* 1 if a packet from src (its port is ignored; an IPv6 source counts as
 * its /64) at now (microseconds) is within the rate, 0 if it is over. When
 * more sources are active than the limiter tracks, the one idle longest is
 * forgotten (and starts afresh). */
int hm_ratelimit_allow(hm_ratelimit_t *rl, const hm_addr_t *src, int64_t now);

/* Signature checks per second that a signed packet may have before its
 * source's bucket is consulted: a flood of forgeries from an origin's
 * address must not starve that origin's genuine packets, yet the checks a
 * flood can cause are bounded (one costs about a microsecond). */
#define HM_VERIFY_BUDGET 50000

/* 1 if one more signature check fits in the limiter's budget at now. */
int hm_ratelimit_budget(hm_ratelimit_t *rl, int64_t now);

#endif
