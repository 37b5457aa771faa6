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

#include "hm_table.h"

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
    uint64_t started; /* what counts against ready: in flight now (lbhb_credit) */
    uint32_t weight;  /* the member's loadfactor; 0 counts as 1 */
    int unknown;      /* not heard from yet (warm-up): see lbhb_fill_unknown */
} lbhb_cand_t;

/*
 * A proxy that has just started has heard from some members and not yet
 * from others. Refusing those, or sending everything to the first one
 * heard, is what makes a cold start fail: the members not heard from yet
 * (unknown) stand in as the mean report of those that have (ready = the
 * mean reported ready of the usable known ones, rounded up; their own
 * started stays their in-flight count), and while none has reported, as
 * ready = 0, so that the least busy wins and ties rotate.
 */
void lbhb_fill_unknown(lbhb_cand_t *c, unsigned int n);

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

/* ---- which data counts, and how much of it is used up ---- */

/* The longest data counts as fresh, whatever the sender's interval: stock's
 * 10 s. The monitor gives a silent origin's slot away after the same. */
#define LBHB_FRESH_MAX ((int64_t)10 * 1000000)

/* How old (microseconds) an entry may be and still count: `configured`
 * (HeartbeatMaxAge) if not 0; else three of the sender's intervals plus
 * 500 ms, between 1 s and LBHB_FRESH_MAX; LBHB_FRESH_MAX when the sender
 * did not state its interval (interval_ms 0). */
int64_t lbhb_max_age(int64_t configured, uint32_t interval_ms);

/* The entry for one address of a member: by address and port, else (stock
 * senders name no port) the entry of that address whose port was never
 * stated. Returns 1 and fills *e, or 0. */
int lbhb_find(const hm_table_t *t, const hm_addr_t *key, hm_entry_t *e);

/* The freshest entry among a member's n addresses; 1 and *e, or 0. */
int lbhb_find_any(const hm_table_t *t, const hm_addr_t *keys, unsigned int n, hm_entry_t *e);

/* A member's word of lbhb_find_member: set once it was found signed. */
#define LBHB_SEEN_SIGNED 0x1u

/*
 * The entry of a member with n addresses, as lbhb_find_any finds it, with
 * one rule more: once a member has been found with a signed entry
 * (HM_ENTRY_AUTH), only signed entries speak for it. In HeartbeatAuthMode
 * migrate anyone who can send from the member's address can make an
 * unsigned entry for it (or a portless one, which lbhb_find falls back to)
 * when its signed entry has expired: that must not hand it the member's
 * traffic. *seen remembers it (LBHB_SEEN_SIGNED, set atomically when a
 * signed entry is found, never cleared: a word per member that every
 * process shares, lbhb_inflight.c). A signed entry is preferred to a
 * fresher unsigned one of the member's other addresses.
 *
 * Returns 1 and *e; 0 if the member has no entry; -1 if its only entries
 * are unsigned ones and it was seen signed (*e is then the freshest of
 * them, for the caller's messages: it must not be used).
 */
int lbhb_find_member(const hm_table_t *t, const hm_addr_t *keys, unsigned int n, uint32_t *seen,
                     hm_entry_t *e);

/*
 * This proxy's in-flight count on a member at the first look after its
 * report of time report_seen. *baseline holds that count << 32 | (low 32
 * bits of report_seen): the first caller after a new report sets it from
 * busy_now with one compare-and-swap, so every process sharing the word
 * counts from the same baseline; others see it. The word may be
 * process-local too.
 */
uint64_t lbhb_baseline(uint64_t *baseline, int64_t report_seen, uint64_t busy_now);

/*
 * The ready slots to rank a member by, from its report (ready, busy), this
 * proxy's in-flight count at the first look after it (base, from
 * lbhb_baseline) and now (busy_now, returned in *started for
 * lbhb_effective): ready + min(busy, base) - busy_now.
 *
 * The member can take ready + busy. Of the busy, the report cannot tell
 * ours from other proxies'; those others' are at least busy - base, and
 * ours are busy_now: so what is left is ready + busy - max(0, busy - base)
 * - busy_now. This counts against the member the requests started since
 * the report; credits the slots ours freed since, as a later report would
 * (else a report taken while a wave of requests was in flight keeps a
 * small member looking as full after the wave as a big one, and the next
 * wave splits evenly); and counts the requests that were on their way when
 * the report was taken (an origin's early beat when half its workers are
 * taken is sent while more requests are arriving: else they are never
 * counted, and the member gets that many too many).
 */
uint32_t lbhb_credit(uint32_t ready, uint32_t report_busy, uint64_t base, uint64_t busy_now,
                     uint64_t *started);

/* ---- slow start (HeartbeatSlowStart) ---- */

/*
 * A member that comes (back) into service gets its share ramped up rather
 * than all its reported slots at once: an origin that has just started
 * reports every worker ready while its caches are cold. Three events start
 * a ramp: its table entry is new (it joined, or came back after it had
 * expired) after the proxy's own start-up; it restarted, seen as a jump
 * of its report sequence (mod_heartbeat numbers reports from its start
 * time in ms, so a restart jumps by about its uptime, far more than
 * reports can add in the time between two looks); its ejection ended.
 *
 * lbhb_ramp_t is one per member, shared by every process; its words are
 * read and written with atomics, and a race between two processes noting
 * the same report only notes it twice.
 */
typedef struct {
    uint64_t seq;       /* the last report sequence noted */
    int64_t seq_seen;   /* when that report was made */
    int64_t restart_at; /* when the member was last seen to restart */
} lbhb_ramp_t;

/* Note a report (seq of a report made at seen; seq 0: the sender numbers
 * none); a restart sets rp->restart_at. */
void lbhb_ramp_observe(lbhb_ramp_t *rp, uint64_t seq, int64_t seen);

/* When the member's current ramp began: the latest of rp->restart_at,
 * ejected_until (0: never ejected) and first_seen if that is after
 * joined_after (the proxy's start-up: members there from the start are
 * its cold start, lbhb_fill_unknown's business). 0 if none. */
int64_t lbhb_ramp_since(const lbhb_ramp_t *rp, int64_t first_seen, int64_t joined_after,
                        int64_t ejected_until);

/* The ready count to rank on: ready in proportion to how far into the
 * ramp (of length ramp) now is, since `since`; at least 1 while ready is
 * not 0; ready itself outside a ramp (ramp <= 0, since 0, or over). */
uint32_t lbhb_ramp_ready(uint32_t ready, int64_t since, int64_t now, int64_t ramp);

/* A well-mixed 64-bit value from a counter (splitmix64), so that callers can
 * draw random numbers from one atomic increment without shared state. */
uint64_t lbhb_mix64(uint64_t x);

#endif
