/*
 * lbhb_inflight.c: how many requests this proxy has put on a member since
 * its last report, agreed on by every child.
 *
 * A report says how many slots were ready when it was sent; requests the
 * proxy starts afterwards use some of them up. The baseline is the member's
 * in-flight count (mod_proxy_balancer's shared busy counter) at the first
 * pick after the report. If each child took its own baseline, a child that
 * looks late would miss the requests others started in between, and equal
 * members would stop alternating. So the baseline lives in shared memory,
 * one 64-bit word per member, set with a single compare-and-swap: no lock.
 * Beside it, per member: its outlier state, whether it was ever found
 * signed (then no unsigned entry speaks for it, lbhb_find_member), and the
 * events that start a slow start (lbhb_ramp_t), kept until the proxy
 * restarts. A balancer has a slot of its own (a key no member has): its
 * tie-break rotation and the counters of its picks (lbhb_bal_counter_e).
 */
#include "lbhb_private.h"

#include "http_log.h"

#include "apr_shm.h"

#include "lbhb_outlier.h"
#include "lbhb_pick.h"

/* Log lines carry this module's name and obey its LogLevel. */
APLOG_USE_MODULE(lbmethod_heartbeat);

#define LBHB_INFLIGHT_SLOTS 4096 /* power of two */
#define LBHB_INFLIGHT_PROBE 32

typedef struct {
    uint64_t key;  /* balancer name hash and member index; 0 = free */
    uint64_t word; /* member: busy baseline << 32 | low 32 bits of the report time;
                    * balancer: the rotation cursor */
    union {
        struct {
            lbhb_outlier_t outlier; /* the member's answers (lbhb_outlier.h) */
            uint32_t seen;          /* LBHB_SEEN_SIGNED once found signed (lbhb_find_member) */
            lbhb_ramp_t ramp;       /* HeartbeatSlowStart's events (lbhb_pick.h) */
            lbhb_load_slot_t load;  /* its last per-response load report (lbhb_load.h) */
            lbhb_join_rec_t join;   /* HeartbeatJoin: how the member came (lbhb_joiner.c) */
        };
        uint64_t counters[LBHB_BAL_COUNT]; /* a balancer's slot */
    };
} lbhb_inflight_t;

static lbhb_inflight_t *lbhb_slots;

static apr_status_t lbhb_inflight_cleanup(void *data)
{
    lbhb_slots = NULL;
    return APR_SUCCESS;
}

void lbhb_inflight_init(apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    apr_status_t rv;

    lbhb_slots = NULL;
    rv = apr_shm_create(&shm, LBHB_INFLIGHT_SLOTS * sizeof(lbhb_inflight_t), NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "LB0307: no shared memory for in-flight baselines; each child keeps "
                     "its own (less even spreading between heartbeats)");
        return;
    }
    lbhb_slots = apr_shm_baseaddr_get(shm);
    memset(lbhb_slots, 0, LBHB_INFLIGHT_SLOTS * sizeof(lbhb_inflight_t));
    apr_pool_cleanup_register(pconf, NULL, lbhb_inflight_cleanup, apr_pool_cleanup_null);
}

/* Same in every child: the balancer's precomputed name hash and the
 * member's slot in the balancer's shared memory. */
static uint64_t lbhb_key(proxy_worker *w)
{
    uint64_t k =
        ((uint64_t)(w->balancer ? w->balancer->s->hash.def : 0) << 32) | (uint32_t)w->s->index;
    return k ? k : 1;
}

static lbhb_inflight_t *lbhb_slot_for(uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    unsigned int i;

    for (i = 0; i < LBHB_INFLIGHT_PROBE; i++) {
        lbhb_inflight_t *sl = &lbhb_slots[((h >> 40) + i) & (LBHB_INFLIGHT_SLOTS - 1)];
        uint64_t cur = __atomic_load_n(&sl->key, __ATOMIC_ACQUIRE);
        if (cur == key) {
            return sl;
        }
        if (cur == 0) {
            uint64_t expected = 0;
            if (__atomic_compare_exchange_n(&sl->key, &expected, key, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE) ||
                expected == key) {
                return sl;
            }
        }
    }
    return NULL;
}

int lbhb_inflight_baseline(proxy_worker *w, int64_t report_seen, apr_size_t busy_now,
                           uint64_t *base)
{
    lbhb_inflight_t *sl;

    if (!lbhb_slots || !(sl = lbhb_slot_for(lbhb_key(w)))) {
        return 0;
    }
    *base = lbhb_baseline(&sl->word, report_seen, busy_now);
    return 1;
}

lbhb_outlier_t *lbhb_inflight_outlier(proxy_worker *w)
{
    lbhb_inflight_t *sl;

    if (!lbhb_slots || !(sl = lbhb_slot_for(lbhb_key(w)))) {
        return NULL;
    }
    return &sl->outlier;
}

uint32_t *lbhb_inflight_seen(proxy_worker *w)
{
    lbhb_inflight_t *sl;

    if (!lbhb_slots || !(sl = lbhb_slot_for(lbhb_key(w)))) {
        return NULL;
    }
    return &sl->seen;
}

lbhb_ramp_t *lbhb_inflight_ramp(proxy_worker *w)
{
    lbhb_inflight_t *sl;

    if (!lbhb_slots || !(sl = lbhb_slot_for(lbhb_key(w)))) {
        return NULL;
    }
    return &sl->ramp;
}

lbhb_load_slot_t *lbhb_inflight_load(proxy_worker *w)
{
    lbhb_inflight_t *sl;

    if (!lbhb_slots || !(sl = lbhb_slot_for(lbhb_key(w)))) {
        return NULL;
    }
    return &sl->load;
}

lbhb_join_rec_t *lbhb_inflight_join(proxy_balancer *b, unsigned int index)
{
    uint64_t k = ((uint64_t)b->s->hash.def << 32) | (uint32_t)index;
    lbhb_inflight_t *sl;

    if (!lbhb_slots || !(sl = lbhb_slot_for(k ? k : 1))) {
        return NULL;
    }
    return &sl->join;
}

void lbhb_inflight_forget(proxy_balancer *b, unsigned int index)
{
    uint64_t k = ((uint64_t)b->s->hash.def << 32) | (uint32_t)index;
    lbhb_inflight_t *sl;

    if (lbhb_slots && (sl = lbhb_slot_for(k ? k : 1))) {
        lbhb_join_rec_t keep = sl->join;
        __atomic_store_n(&sl->word, 0, __ATOMIC_RELAXED);
        memset(&sl->outlier, 0, sizeof(*sl) - offsetof(lbhb_inflight_t, outlier));
        sl->join = keep;
    }
}

static lbhb_inflight_t *lbhb_balancer_slot(proxy_balancer *b)
{
    /* Member indexes are small, so this key never meets a member's. */
    uint64_t key = ((uint64_t)b->s->hash.def << 32) | 0xffffffffu;

    return lbhb_slots ? lbhb_slot_for(key) : NULL;
}

apr_uint32_t lbhb_inflight_cursor(proxy_balancer *b, uint64_t **counters)
{
    static apr_uint32_t local;
    lbhb_inflight_t *sl = lbhb_balancer_slot(b);

    if (!sl) {
        *counters = NULL;
        return apr_atomic_inc32(&local);
    }
    *counters = sl->counters;
    return (apr_uint32_t)__atomic_fetch_add(&sl->word, 1, __ATOMIC_RELAXED);
}

const uint64_t *lbhb_inflight_counters(proxy_balancer *b)
{
    lbhb_inflight_t *sl = lbhb_balancer_slot(b);

    return sl ? sl->counters : NULL;
}
