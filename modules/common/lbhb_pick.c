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

/* Weights as mod_proxy stores loadfactors fit easily; the clamp only
 * keeps the products below in range for absurd values. */
#define LBHB_WEIGHT_MAX 1000000u
#define LBHB_EFF_CLAMP  ((int64_t)1 << 40)

static int64_t weight_of(uint32_t w)
{
    return w == 0 ? 1 : w > LBHB_WEIGHT_MAX ? LBHB_WEIGHT_MAX : (int64_t)w;
}

static int64_t clamp_eff(int64_t e)
{
    return e > LBHB_EFF_CLAMP ? LBHB_EFF_CLAMP : e < -LBHB_EFF_CLAMP ? -LBHB_EFF_CLAMP : e;
}

/* <0, 0 or >0 as a ranks below, with or above b. */
static int rank(int64_t ea, uint32_t wa, int64_t eb, uint32_t wb)
{
    int64_t x, y, ka = weight_of(wa), kb = weight_of(wb);

    if (ka == kb || (ea >= 0) != (eb >= 0)) {
        /* Equal weights, or one has room and the other has not: the
         * plain counts decide, as without weights. */
        return ea > eb ? 1 : ea < eb ? -1 : 0;
    }
    ea = clamp_eff(ea);
    eb = clamp_eff(eb);
    if (ea >= 0) {
        x = ea * ka; /* free slots weigh more on a heavier member */
        y = eb * kb;
    } else {
        x = ea * kb; /* ea / ka against eb / kb, without dividing */
        y = eb * ka;
    }
    return x > y ? 1 : x < y ? -1 : 0;
}

int lbhb_better(const lbhb_score_t *cur, const lbhb_score_t *best)
{
    int r;

    if (cur == NULL) {
        return 0;
    }
    if (best == NULL) {
        return 1;
    }
    r = rank(cur->eff, cur->weight, best->eff, best->weight);
    if (r != 0) {
        return r > 0;
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
    lbhb_score_t best = {0, 0, 0};
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
        cur.weight = c[i].weight;
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
    int last = -1;

    if (c == NULL) {
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        /* Saturating: only absurd reports reach it, and then the draw
         * the draw is merely uneven. */
        if (c[i].usable &&
            __builtin_add_overflow(total, (uint64_t)c[i].ready * (uint64_t)weight_of(c[i].weight),
                                   &total)) {
            total = UINT64_MAX;
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
        uint64_t slots;

        if (!c[i].usable) {
            continue;
        }
        slots = (uint64_t)c[i].ready * (uint64_t)weight_of(c[i].weight);
        if (at < slots) {
            return (int)i;
        }
        at -= slots;
        last = (int)i;
    }
    /* Only when the total saturated. */
    return last;
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
    return rank(lbhb_effective(c[ib].ready, c[ib].started), c[ib].weight,
                lbhb_effective(c[ia].ready, c[ia].started), c[ia].weight) > 0
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

int64_t lbhb_max_age(int64_t configured, uint32_t interval_ms)
{
    int64_t t;

    if (configured || !interval_ms) {
        return configured ? configured : LBHB_FRESH_MAX;
    }
    /* A few sender intervals, never stricter than 1 s (a late packet or
     * two) nor laxer than stock's 10 s. */
    t = 3 * (int64_t)interval_ms * 1000 + 500000;
    if (t < 1000000) {
        t = 1000000;
    }
    return t < LBHB_FRESH_MAX ? t : LBHB_FRESH_MAX;
}

int lbhb_find(const hm_table_t *t, const hm_addr_t *key, hm_entry_t *e)
{
    hm_addr_t k;

    if (hm_table_find(t, key, e) >= 0) {
        return 1;
    }
    if (key->port == HM_DEFAULT_PORT) {
        return 0;
    }
    k = *key;
    k.port = HM_DEFAULT_PORT;
    return hm_table_find(t, &k, e) >= 0 && !(e->flags & HM_ENTRY_PORT_KNOWN);
}

int lbhb_find_any(const hm_table_t *t, const hm_addr_t *keys, unsigned int n, hm_entry_t *e)
{
    int found = 0;

    for (unsigned int i = 0; i < n; i++) {
        hm_entry_t cur;
        if (lbhb_find(t, &keys[i], &cur) && (!found || cur.seen > e->seen)) {
            *e = cur;
            found = 1;
        }
    }
    return found;
}

int lbhb_find_member(const hm_table_t *t, const hm_addr_t *keys, unsigned int n, uint32_t *seen,
                     hm_entry_t *e)
{
    int any = 0, sig = 0;
    hm_entry_t best_sig;

    /* One lookup per address, as lbhb_find_any: unsigned deployments pay
     * nothing for the rule. */
    for (unsigned int i = 0; i < n; i++) {
        hm_entry_t cur;
        if (!lbhb_find(t, &keys[i], &cur)) {
            continue;
        }
        if (!any || cur.seen > e->seen) {
            *e = cur;
            any = 1;
        }
        if ((cur.flags & HM_ENTRY_AUTH) && (!sig || cur.seen > best_sig.seen)) {
            best_sig = cur;
            sig = 1;
        }
    }
    if (sig) {
        if (!(__atomic_load_n(seen, __ATOMIC_ACQUIRE) & LBHB_SEEN_SIGNED)) {
            __atomic_fetch_or(seen, LBHB_SEEN_SIGNED, __ATOMIC_ACQ_REL);
        }
        *e = best_sig;
        return 1;
    }
    if (!any) {
        return 0;
    }
    return (__atomic_load_n(seen, __ATOMIC_ACQUIRE) & LBHB_SEEN_SIGNED) ? -1 : 1;
}

uint64_t lbhb_baseline(uint64_t *baseline, int64_t report_seen, uint64_t busy_now)
{
    uint64_t tag = (uint32_t)report_seen, busy = (uint32_t)busy_now;
    uint64_t word = __atomic_load_n(baseline, __ATOMIC_ACQUIRE);

    while ((word & 0xffffffffu) != tag) {
        uint64_t mine = (busy << 32) | tag;
        if (__atomic_compare_exchange_n(baseline, &word, mine, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            word = mine;
        }
        /* else word holds what another process stored: check it */
    }
    return word >> 32;
}

uint32_t lbhb_credit(uint32_t ready, uint32_t report_busy, uint64_t base, uint64_t busy_now,
                     uint64_t *started)
{
    uint64_t ours = base < report_busy ? base : report_busy;

    *started = busy_now;
    return (uint64_t)ready + ours > UINT32_MAX ? UINT32_MAX : (uint32_t)(ready + ours);
}

void lbhb_fill_unknown(lbhb_cand_t *c, unsigned int n)
{
    uint64_t sum = 0, known = 0, mean;

    for (unsigned int i = 0; i < n; i++) {
        if (c[i].usable && !c[i].unknown) {
            sum += c[i].ready;
            known++;
        }
    }
    mean = known ? (sum + known - 1) / known : 0;
    for (unsigned int i = 0; i < n; i++) {
        if (c[i].unknown) {
            c[i].ready = (uint32_t)mean;
        }
    }
}

void lbhb_ramp_observe(lbhb_ramp_t *rp, uint64_t seq, int64_t seen)
{
    uint64_t old = __atomic_load_n(&rp->seq, __ATOMIC_ACQUIRE);
    int64_t old_seen, gap_ms;

    if (seq == 0 || seq == old ||
        !__atomic_compare_exchange_n(&rp->seq, &old, seq, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        return;
    }
    old_seen = __atomic_load_n(&rp->seq_seen, __ATOMIC_ACQUIRE);
    __atomic_store_n(&rp->seq_seen, seen, __ATOMIC_RELEASE);
    if (old == 0) {
        return;
    }
    /* Reports add at most one per millisecond between them; a restart
     * adds about the uptime (or starts lower, for senders that count from
     * 1). A second's slack covers clocks. */
    gap_ms = seen > old_seen ? (seen - old_seen) / 1000 : 0;
    if (seq < old || seq - old > (uint64_t)gap_ms + 1000) {
        __atomic_store_n(&rp->restart_at, seen, __ATOMIC_RELEASE);
    }
}

int64_t lbhb_ramp_since(const lbhb_ramp_t *rp, int64_t first_seen, int64_t joined_after,
                        int64_t ejected_until)
{
    int64_t since = rp ? __atomic_load_n(&rp->restart_at, __ATOMIC_ACQUIRE) : 0;

    if (first_seen > joined_after && first_seen > since) {
        since = first_seen;
    }
    return ejected_until > since ? ejected_until : since;
}

uint32_t lbhb_ramp_ready(uint32_t ready, int64_t since, int64_t now, int64_t ramp)
{
    uint64_t part;

    if (ramp <= 0 || since <= 0 || now - since >= ramp || ready == 0) {
        return ready;
    }
    if (now <= since) {
        return 1;
    }
    /* ready < 2^32 and now - since < ramp <= 10 min (HeartbeatSlowStart's
     * maximum, under 2^30 us): the product stays under 2^62. */
    part = ((uint64_t)ready * (uint64_t)(now - since) + (uint64_t)ramp - 1) / (uint64_t)ramp;
    return part ? (uint32_t)part : 1;
}
