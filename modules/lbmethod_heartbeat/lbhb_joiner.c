/*
 * lbhb_joiner.c: origins that announce a balancer (HeartbeatBalancer) in
 * signed heartbeats become its members at run time (HeartbeatJoin).
 *
 * mod_proxy fixes a balancer's member slots at start-up (its members plus
 * ProxySet growth=N) and can add a member to a free slot at run time, as
 * balancer-manager does: under the balancer's global mutex, copy a new
 * worker into the slot and move the balancer's shared "workers updated"
 * time; every child then makes its own object for the slot in
 * ap_proxy_sync_balancer. We do the same, from each child's member thread
 * (the first to see a new origin adds it; the others find it done), and
 * call the sync ourselves so that every child knows the member at once,
 * not only after its next request to that balancer.
 *
 * A balancer that virtual hosts inherit has one copy of its slots per host
 * (BalancerInherit). Our shared state of a member is keyed by balancer
 * name and slot index, so a joining origin takes the same index in every
 * copy, under the mutex of the first.
 *
 * Members never go: mod_proxy frees no slot. One that falls silent is
 * disabled after HeartbeatJoinExpire; its slot is its own again when it
 * returns, and another origin's only once it has been disabled that long
 * again with nothing in flight (lbhb_join_choose). A child's object for a
 * slot given to someone else is left behind, and skipped
 * (LBHB_WORKER_CURRENT).
 *
 * mod_proxy's functions are looked up when the configuration is loaded,
 * not linked: Debian loads lbmethod modules before mod_proxy.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>

#include "lbhb_private.h"

#include "http_log.h"

#include "apr_strings.h"

#include "hb_config.h"
#include "hb_join.h"
#include "hb_throttle.h"
#include "lbhb_join.h"
#include "mod_heartmonitor.h"

/* Log lines carry this module's name and obey its LogLevel. */
APLOG_USE_MODULE(lbmethod_heartbeat);

#define LBHB_SWEEP_EVERY apr_time_from_sec(1)

typedef char *(*lbhb_define_fn)(apr_pool_t *, proxy_worker **, proxy_balancer *,
                                proxy_server_conf *, const char *, unsigned int);
typedef char *(*lbhb_define_old_fn)(apr_pool_t *, proxy_worker **, proxy_balancer *,
                                    proxy_server_conf *, const char *, int);
typedef apr_status_t (*lbhb_share_fn)(proxy_worker *, proxy_worker_shared *, int);
typedef apr_status_t (*lbhb_sync_fn)(proxy_balancer *, server_rec *, proxy_server_conf *);

static lbhb_define_fn lbhb_define;
static lbhb_define_old_fn lbhb_define_old;
static lbhb_share_fn lbhb_share;
static lbhb_sync_fn lbhb_sync;

/* One balancer name with HeartbeatJoin on, and its copies. */
typedef struct {
    const char *name; /* balancer://name, as mod_proxy keeps it */
    uint32_t hash;    /* hb_join_hash of the part after balancer:// */
    apr_interval_time_t expire;
    lbhb_join_params_t params;  /* HeartbeatJoinMember */
    apr_array_header_t *copies; /* proxy_balancer *, every server's */
    unsigned int slots;         /* the fewest slots of any copy */
    /* per process */
    uint32_t gen;
    int scanned;
    int refused; /* the last scan found no slot for someone: scan again */
    apr_time_t scan_at;
    apr_time_t swept;
    hb_throttle_t full_log;
} lbhb_group_t;

static apr_array_header_t *lbhb_groups; /* set by the parent, inherited by children */

static proxy_balancer *lbhb_copy(const lbhb_group_t *g, int i)
{
    return APR_ARRAY_IDX(g->copies, i, proxy_balancer *);
}

static const char *lbhb_shm_host(const proxy_worker_shared *w)
{
    return w->hostname_ex[0] ? w->hostname_ex : w->hostname;
}

static proxy_worker_shared *lbhb_shm_at(proxy_balancer *b, unsigned int i)
{
    proxy_worker_shared *shm = NULL;

    if (!b->storage || !b->wslot || b->storage->dptr(b->wslot, i, (void **)&shm) != APR_SUCCESS) {
        return NULL;
    }
    return shm;
}

static int lbhb_shm_used(const proxy_worker_shared *shm)
{
    return shm && (shm->hash.def || shm->hash.fnv);
}

/* What an origin that joins is reached by. */
typedef struct {
    const char *scheme;
    char host[HM_IP_MAX];
    apr_port_t port;
    hm_addr_t key; /* its table entry */
} lbhb_origin_t;

static int lbhb_shm_is(const proxy_worker_shared *shm, const lbhb_origin_t *o)
{
    return lbhb_shm_used(shm) && shm->port == o->port && !strcasecmp(shm->scheme, o->scheme) &&
           !strcasecmp(lbhb_shm_host(shm), o->host);
}

/* The slots of every copy as lbhb_join_choose sees them; NULL if a copy
 * has no slots to show yet. */
static lbhb_jslot_t *lbhb_slots(apr_pool_t *p, lbhb_group_t *g, const lbhb_origin_t *o)
{
    lbhb_jslot_t *s = apr_pcalloc(p, (g->slots ? g->slots : 1) * sizeof(*s));
    unsigned int i;
    int c;

    for (i = 0; i < g->slots; i++) {
        lbhb_join_rec_t *rec = lbhb_inflight_join(lbhb_copy(g, 0), i);
        s[i].same = o != NULL;
        for (c = 0; c < g->copies->nelts; c++) {
            proxy_worker_shared *shm = lbhb_shm_at(lbhb_copy(g, c), i);
            if (!shm) {
                return NULL;
            }
            s[i].used |= lbhb_shm_used(shm);
            s[i].same &= o && lbhb_shm_is(shm, o);
            if (shm->busy > s[i].busy) {
                s[i].busy = shm->busy;
            }
        }
        if (rec && rec->state != LBHB_JREC_NONE) {
            s[i].joined = 1;
            s[i].disabled = rec->state == LBHB_JREC_DISABLED;
            s[i].since = rec->since;
        }
    }
    return s;
}

/* A new time for the copies' "workers updated": later than any child's. */
static void lbhb_bump(lbhb_group_t *g)
{
    apr_time_t now = apr_time_now();
    int c;

    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (c = 0; c < g->copies->nelts; c++) {
        proxy_balancer *b = lbhb_copy(g, c);
        apr_time_t t = now;
        if (t <= b->s->wupdated) {
            t = b->s->wupdated + 1; /* the clock may step back */
        }
        if (t <= b->wupdated) {
            t = b->wupdated + 1;
        }
        b->s->wupdated = t;
    }
}

static void lbhb_set_disabled(lbhb_group_t *g, unsigned int i, int on)
{
    int c;

    for (c = 0; c < g->copies->nelts; c++) {
        proxy_worker_shared *shm = lbhb_shm_at(lbhb_copy(g, c), i);
        if (shm) {
            if (on) {
                __atomic_fetch_or(&shm->status, PROXY_WORKER_DISABLED, __ATOMIC_RELEASE);
            } else {
                /* Its error state goes too: a request that picked it just
                 * before it was disabled finds it disabled at connect time,
                 * and mod_proxy then marks it in error (AH00940) for
                 * retry seconds, although its signed heartbeat just
                 * announced it again. */
                __atomic_fetch_and(&shm->status,
                                   ~(unsigned int)(PROXY_WORKER_DISABLED | PROXY_WORKER_IN_ERROR),
                                   __ATOMIC_RELEASE);
            }
        }
    }
}

static void lbhb_count_join(lbhb_group_t *g, int which)
{
    const uint64_t *c = lbhb_inflight_counters(lbhb_copy(g, 0));

    if (c) {
        __atomic_fetch_add((uint64_t *)(uintptr_t)&c[which], 1, __ATOMIC_RELAXED);
    }
}

static void lbhb_apply_params(proxy_worker_shared *ws, const lbhb_join_params_t *jp)
{
    if (jp->disablereuse_set) {
        ws->disablereuse = jp->disablereuse ? 1 : 0;
        ws->disablereuse_set = 1;
    }
    if (jp->keepalive_set) {
        ws->keepalive = jp->keepalive ? 1 : 0;
        ws->keepalive_set = 1;
    }
    if (jp->retry_set) {
        ws->retry = jp->retry;
        ws->retry_set = 1;
    }
    if (jp->timeout_set) {
        ws->timeout = jp->timeout;
        ws->timeout_set = 1;
    }
    if (jp->conn_timeout_set) {
        ws->conn_timeout = jp->conn_timeout;
        ws->conn_timeout_set = 1;
    }
    if (jp->ttl_set) {
        ws->ttl = jp->ttl;
    }
    if (jp->lbset_set) {
        ws->lbset = jp->lbset;
    }
    if (jp->lbfactor_set) {
        ws->lbfactor = jp->lbfactor;
    }
}

/* The parameters HeartbeatJoinMember knows, as BalancerMember writes them. */
const char *lbhb_join_param(apr_pool_t *p, lbhb_join_params_t *jp, const char *arg)
{
    const char *eq = strchr(arg, '=');
    const char *key, *val;
    apr_interval_time_t t = 0;
    char *end;
    long v;

    if (!eq || eq == arg || !eq[1]) {
        return apr_psprintf(p, "HeartbeatJoinMember: '%s' is not key=value", arg);
    }
    key = apr_pstrndup(p, arg, (apr_size_t)(eq - arg));
    val = eq + 1;
    if (!strcasecmp(key, "disablereuse") || !strcasecmp(key, "keepalive")) {
        int on = !strcasecmp(val, "on");
        if (!on && strcasecmp(val, "off")) {
            return apr_psprintf(p, "HeartbeatJoinMember: %s must be On or Off, not '%s'", key, val);
        }
        if (!strcasecmp(key, "disablereuse")) {
            jp->disablereuse = on;
            jp->disablereuse_set = 1;
        } else {
            jp->keepalive = on;
            jp->keepalive_set = 1;
        }
        return NULL;
    }
    if (!strcasecmp(key, "retry") || !strcasecmp(key, "timeout") ||
        !strcasecmp(key, "connectiontimeout") || !strcasecmp(key, "ttl")) {
        const char *err =
            hb_config_time(p, "HeartbeatJoinMember", val, 0, apr_time_from_sec(86400), &t);
        if (err) {
            return apr_psprintf(p, "%s (%s)", err, key);
        }
        if (!strcasecmp(key, "retry")) {
            jp->retry = t;
            jp->retry_set = 1;
        } else if (!strcasecmp(key, "timeout")) {
            jp->timeout = t;
            jp->timeout_set = 1;
        } else if (!strcasecmp(key, "connectiontimeout")) {
            jp->conn_timeout = t;
            jp->conn_timeout_set = 1;
        } else {
            jp->ttl = t;
            jp->ttl_set = 1;
        }
        return NULL;
    }
    if (!strcasecmp(key, "lbset") || !strcasecmp(key, "loadfactor")) {
        v = strtol(val, &end, 10);
        if (*end || end == val || v < (strcasecmp(key, "lbset") ? 1 : 0) ||
            v > (strcasecmp(key, "lbset") ? 100 : 99)) {
            return apr_psprintf(p, "HeartbeatJoinMember: %s must be %s, not '%s'", key,
                                strcasecmp(key, "lbset") ? "1 to 100" : "0 to 99", val);
        }
        if (!strcasecmp(key, "lbset")) {
            jp->lbset = (int)v;
            jp->lbset_set = 1;
        } else {
            /* mod_proxy keeps loadfactor in hundredths since 2.4.50; only
             * the ratio between members matters to lbmethod=heartbeat. */
            jp->lbfactor = (int)v * 100;
            jp->lbfactor_set = 1;
        }
        return NULL;
    }
    return apr_psprintf(p,
                        "HeartbeatJoinMember: unknown parameter '%s' (known: disablereuse, "
                        "keepalive, retry, timeout, connectiontimeout, ttl, lbset, loadfactor)",
                        key);
}

/* Put origin o into slot i of every copy (a fresh slot, or one given up). */
static int lbhb_install(apr_pool_t *p, server_rec *s, lbhb_group_t *g, unsigned int i,
                        const lbhb_origin_t *o, int fresh)
{
    const char *url = strchr(o->host, ':')
                          ? apr_psprintf(p, "%s://[%s]:%u", o->scheme, o->host, o->port)
                          : apr_psprintf(p, "%s://%s:%u", o->scheme, o->host, o->port);
    lbhb_join_rec_t *rec = lbhb_inflight_join(lbhb_copy(g, 0), i);
    int c;

    if (!rec) {
        return -1;
    }
    if (!fresh) {
        lbhb_inflight_forget(lbhb_copy(g, 0), i);
    }
    for (c = 0; c < g->copies->nelts; c++) {
        proxy_balancer *b = lbhb_copy(g, c);
        proxy_worker *w = NULL;
        proxy_worker_shared *shm;
        const char *err;

        if (fresh && b->storage->fgrab(b->wslot, i) != APR_SUCCESS) {
            return -1;
        }
        if (!(shm = lbhb_shm_at(b, i))) {
            return -1;
        }
        /* A worker of no balancer and no server, in a scratch pool: only
         * its shared part is kept, copied into the slot. */
        err = lbhb_define ? lbhb_define(p, &w, NULL, NULL, url, 0)
                          : lbhb_define_old(p, &w, NULL, NULL, url, 0);
        if (err || !w) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "LB0318: cannot make a member of %s for %s: %s", g->name, url,
                         err ? err : "no worker");
            return -1;
        }
        w->s->status &= ~(unsigned int)PROXY_WORKER_IGNORE_ERRORS;
        w->s->updated = apr_time_now();
        lbhb_apply_params(w->s, &g->params);
        if (lbhb_share(w, shm, (int)i) != APR_SUCCESS) {
            return -1;
        }
    }
    rec->key = o->key;
    rec->since = apr_time_now();
    __atomic_store_n(&rec->state, LBHB_JREC_JOINED, __ATOMIC_RELEASE);
    lbhb_bump(g);
    lbhb_count_join(g, LBHB_BAL_JOINED);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "LB0315: %s joined %s (slot %u%s), from its signed heartbeats", url, g->name, i,
                 fresh ? "" : ", given up by a member gone since");
    return 0;
}

/* Make origin o a usable member of g; the caller holds the lock (or is the
 * parent). */
static void lbhb_admit(apr_pool_t *p, server_rec *s, lbhb_group_t *g, const lbhb_origin_t *o,
                       apr_time_t now)
{
    lbhb_jslot_t *slots = lbhb_slots(p, g, o);
    unsigned int i = 0;
    lbhb_join_rec_t *rec;

    if (!slots) {
        return;
    }
    switch (lbhb_join_choose(slots, g->slots, now, g->expire, &i)) {
    case LBHB_JOIN_HAVE:
        rec = lbhb_inflight_join(lbhb_copy(g, 0), i);
        if (rec && rec->state == LBHB_JREC_DISABLED) {
            rec->since = now;
            __atomic_store_n(&rec->state, LBHB_JREC_JOINED, __ATOMIC_RELEASE);
            lbhb_set_disabled(g, i, 0);
            lbhb_count_join(g, LBHB_BAL_JOINED);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                         "LB0319: %s://%s:%u joined %s again (its slot %u)", o->scheme, o->host,
                         o->port, g->name, i);
        }
        break;
    case LBHB_JOIN_NEW:
        lbhb_install(p, s, g, i, o, 1);
        break;
    case LBHB_JOIN_REUSE:
        lbhb_install(p, s, g, i, o, 0);
        break;
    default:
        g->refused = 1;
        lbhb_count_join(g, LBHB_BAL_JOIN_FULL);
        if (hb_throttle(&g->full_log, now, HB_REPORT_EVERY, NULL)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "LB0316: %s://%s:%u cannot join %s: all its %u slots are taken "
                         "(raise ProxySet growth=N for it; members silent for "
                         "HeartbeatJoinExpire give theirs up; logged at most once a minute)",
                         o->scheme, o->host, o->port, g->name, g->slots);
        }
    }
}

/* How the entry's origin joins g, if it does: signed, announcing g, up,
 * and heard lately. */
static int lbhb_candidate(const lbhb_group_t *g, const hm_entry_t *e, apr_time_t now,
                          lbhb_origin_t *o)
{
    hb_join_t j;

    if (!(e->flags & HM_ENTRY_AUTH) || !hb_join_find(&e->join, g->hash, &j) ||
        e->state == HB_STATE_STOPPING || now - e->seen > lbhb_max_age(0, e->interval_ms) ||
        hm_addr_link_local(&e->key)) {
        return 0;
    }
    o->scheme = hb_scheme_str((hb_scheme_e)j.scheme);
    apr_cpystrn(o->host, e->ip, sizeof(o->host));
    o->port = j.port ? j.port : e->key.port;
    o->key = e->key;
    return 1;
}

static int lbhb_lock(lbhb_group_t *g, int parent)
{
    proxy_balancer *b = lbhb_copy(g, 0);

    return parent || !b->gmutex || apr_global_mutex_lock(b->gmutex) == APR_SUCCESS;
}

static void lbhb_unlock(lbhb_group_t *g, int parent)
{
    proxy_balancer *b = lbhb_copy(g, 0);

    if (!parent && b->gmutex) {
        apr_global_mutex_unlock(b->gmutex);
    }
}

/* Every origin of the table that announces g and is not a usable member
 * of it yet. */
static void lbhb_scan(apr_pool_t *p, server_rec *s, lbhb_group_t *g, const hm_table_t *t,
                      apr_time_t now, int parent)
{
    unsigned int cap = hm_table_capacity(t), n;
    hm_entry_t e;

    for (n = 0; n < cap; n++) {
        lbhb_origin_t o;
        lbhb_jslot_t *slots;
        unsigned int i;
        lbhb_join_rec_t *rec;

        if (!hm_table_get(t, n, &e) || !e.join.n || !lbhb_candidate(g, &e, now, &o)) {
            continue;
        }
        /* Without the lock first: nearly always it is there already. */
        slots = lbhb_slots(p, g, &o);
        if (slots && lbhb_join_choose(slots, g->slots, now, g->expire, &i) == LBHB_JOIN_HAVE &&
            (rec = lbhb_inflight_join(lbhb_copy(g, 0), i)) != NULL &&
            rec->state != LBHB_JREC_DISABLED) {
            continue;
        }
        if (lbhb_lock(g, parent)) {
            lbhb_admit(p, s, g, &o, now);
            lbhb_unlock(g, parent);
        }
    }
}

/* Joined members that fell silent, stopped announcing g or were left
 * behind by a disabled member's return. */
static void lbhb_sweep(apr_pool_t *p, server_rec *s, lbhb_group_t *g, const hm_table_t *t,
                       apr_time_t now)
{
    unsigned int i;

    for (i = 0; i < g->slots; i++) {
        lbhb_join_rec_t *rec = lbhb_inflight_join(lbhb_copy(g, 0), i);
        hm_entry_t e;
        hb_join_t j;
        lbhb_origin_t o;
        int alive;

        if (!rec || __atomic_load_n(&rec->state, __ATOMIC_ACQUIRE) == LBHB_JREC_NONE) {
            continue;
        }
        alive = hm_table_find(t, &rec->key, &e) >= 0 && (e.flags & HM_ENTRY_AUTH) &&
                hb_join_find(&e.join, g->hash, &j) && now - e.seen <= g->expire;
        if (alive) {
            /* It still announces the balancer, but maybe by another scheme
             * or port now: then this slot is not it any more (the new
             * form joins as a member of its own). */
            lbhb_origin_t now_o;
            now_o.scheme = hb_scheme_str((hb_scheme_e)j.scheme);
            apr_cpystrn(now_o.host, e.ip, sizeof(now_o.host));
            now_o.port = j.port ? j.port : e.key.port;
            alive = lbhb_shm_is(lbhb_shm_at(lbhb_copy(g, 0), i), &now_o);
        }
        if (rec->state == LBHB_JREC_JOINED && !alive && lbhb_lock(g, 0)) {
            if (rec->state == LBHB_JREC_JOINED) {
                rec->since = now;
                __atomic_store_n(&rec->state, LBHB_JREC_DISABLED, __ATOMIC_RELEASE);
                lbhb_set_disabled(g, i, 1);
                lbhb_count_join(g, LBHB_BAL_LEFT);
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                             "LB0317: the member in slot %u of %s is disabled: no signed "
                             "heartbeat announcing it (by this scheme and port) for "
                             "HeartbeatJoinExpire (%" APR_TIME_T_FMT " s)",
                             i, g->name, apr_time_sec(g->expire));
            }
            lbhb_unlock(g, 0);
        } else if (rec->state == LBHB_JREC_DISABLED && alive && lbhb_candidate(g, &e, now, &o) &&
                   lbhb_lock(g, 0)) {
            lbhb_admit(p, s, g, &o, now);
            lbhb_unlock(g, 0);
        }
    }
}

void lbhb_join_sync(proxy_balancer *b, server_rec *s)
{
    if (lbhb_sync && b->s->wupdated > b->wupdated && PROXY_THREAD_LOCK(b) == APR_SUCCESS) {
        lbhb_sync(b, s, b->sconf);
        PROXY_THREAD_UNLOCK(b);
    }
}

/* Let this child make its objects for new members now (mod_proxy does it
 * under the balancer's thread mutex, before each pick). */
static void lbhb_sync_copies(server_rec *s, lbhb_group_t *g)
{
    int c;

    for (c = 0; c < g->copies->nelts; c++) {
        lbhb_join_sync(lbhb_copy(g, c), s);
    }
}

void lbhb_join_tick(server_rec *s, const hm_table_t *t, apr_pool_t *scratch)
{
    apr_time_t now = apr_time_now();
    int k;

    if (!lbhb_groups || !t) {
        return;
    }
    for (k = 0; k < lbhb_groups->nelts; k++) {
        lbhb_group_t *g = &APR_ARRAY_IDX(lbhb_groups, k, lbhb_group_t);
        uint32_t gen = hm_table_join_generation(t);

        /* A refused origin waits for a slot to be given up: once a second. */
        if (!g->scanned || gen != g->gen || (g->refused && now - g->scan_at >= LBHB_SWEEP_EVERY)) {
            g->gen = gen;
            g->scanned = 1;
            g->refused = 0;
            g->scan_at = now;
            lbhb_scan(scratch, s, g, t, now, 0);
            apr_pool_clear(scratch);
        }
        if (now - g->swept >= LBHB_SWEEP_EVERY) {
            g->swept = now;
            lbhb_sweep(scratch, s, g, t, now);
            apr_pool_clear(scratch);
        }
        lbhb_sync_copies(s, g);
    }
}

/* ------------------------------------------------------------- config */

static lbhb_group_t *lbhb_group(apr_pool_t *p, const char *name)
{
    int k;

    for (k = 0; k < lbhb_groups->nelts; k++) {
        lbhb_group_t *g = &APR_ARRAY_IDX(lbhb_groups, k, lbhb_group_t);
        if (!strcasecmp(g->name, name)) {
            return g;
        }
    }
    return NULL;
}

static apr_status_t lbhb_groups_gone(void *data)
{
    lbhb_groups = NULL;
    return APR_SUCCESS;
}

static int lbhb_fail(server_rec *s, const lbhb_join_conf_t *jc, const char *why)
{
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                 "LB0314: HeartbeatJoin on in <Proxy %s> (%s:%d): %s", jc->name,
                 jc->file ? jc->file : "?", jc->line, why);
    return HTTP_INTERNAL_SERVER_ERROR;
}

int lbhb_join_post_config(apr_pool_t *p, apr_pool_t *ptemp, server_rec *s, hm_table_t *t)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    APR_OPTIONAL_FN_TYPE(hm_auth_keys) *keys_fn = APR_RETRIEVE_OPTIONAL_FN(hm_auth_keys);
    server_rec *sv;
    unsigned int nkeys = 0;
    apr_interval_time_t window;
    int k;

    lbhb_groups = apr_array_make(p, 2, sizeof(lbhb_group_t));
    apr_pool_cleanup_register(p, NULL, lbhb_groups_gone, apr_pool_cleanup_null);
    for (sv = s; sv; sv = sv->next) {
        lbhb_sconf_t *sc = ap_get_module_config(sv->module_config, &lbmethod_heartbeat_module);
        for (k = 0; sc->joins && k < sc->joins->nelts; k++) {
            lbhb_join_conf_t *jc = &APR_ARRAY_IDX(sc->joins, k, lbhb_join_conf_t);
            lbhb_group_t *g;
            if (!jc->on) {
                continue;
            }
            if (!(g = lbhb_group(p, jc->name))) {
                g = apr_array_push(lbhb_groups);
                memset(g, 0, sizeof(*g));
                g->name = jc->name;
                g->hash = hb_join_hash(jc->name + 11, strlen(jc->name + 11));
                g->copies = apr_array_make(p, 2, sizeof(proxy_balancer *));
                g->expire = jc->expire > 0 ? jc->expire : sc->join_expire;
                g->params = jc->params;
                g->scanned = 0;
            }
            /* Checked for each section, so the message names its line. */
            if (!keys_fn || !keys_fn(&nkeys, &window) || nkeys == 0) {
                return lbhb_fail(s, jc,
                                 "joining needs HeartbeatSecret in this server: only origins "
                                 "whose heartbeats are signed with one of its keys may join");
            }
            if (!t) {
                return lbhb_fail(s, jc,
                                 "joining needs mod_heartmonitor's shared table in this "
                                 "server (HeartbeatListen, and HeartbeatMaxServers above 0); "
                                 "a storage file alone cannot vouch for who signed what");
            }
        }
    }
    if (lbhb_groups->nelts == 0) {
        return OK;
    }
    lbhb_define = (lbhb_define_fn)dlsym(RTLD_DEFAULT, "ap_proxy_define_worker_ex");
    lbhb_define_old = (lbhb_define_old_fn)dlsym(RTLD_DEFAULT, "ap_proxy_define_worker");
    lbhb_share = (lbhb_share_fn)dlsym(RTLD_DEFAULT, "ap_proxy_share_worker");
    lbhb_sync = (lbhb_sync_fn)dlsym(RTLD_DEFAULT, "ap_proxy_sync_balancer");
    for (k = 0; k < lbhb_groups->nelts; k++) {
        lbhb_group_t *g = &APR_ARRAY_IDX(lbhb_groups, k, lbhb_group_t);
        lbhb_join_conf_t jc = {g->name, 1, 0, NULL, 0};
        int others = 0;

        if ((!lbhb_define && !lbhb_define_old) || !lbhb_share || !lbhb_sync || !proxy) {
            return lbhb_fail(s, &jc,
                             "mod_proxy and mod_proxy_balancer must be loaded (their "
                             "functions to add members were not found)");
        }
        for (sv = s; sv; sv = sv->next) {
            proxy_server_conf *pc = ap_get_module_config(sv->module_config, proxy);
            proxy_balancer *b = pc && pc->balancers ? (proxy_balancer *)pc->balancers->elts : NULL;
            int i;
            for (i = 0; b && i < pc->balancers->nelts; i++) {
                if (strcasecmp(b[i].s->name, g->name)) {
                    continue;
                }
                if (!b[i].lbmethod || strcmp(b[i].lbmethod->name, "heartbeat")) {
                    /* A ProxyPass in a virtual host defines a balancer of
                     * the name there too, with mod_proxy's default
                     * lbmethod, before the main server's is inherited; the
                     * inherited copy comes first and is the one used. */
                    others++;
                    continue;
                }
                if (b[i].growth <= 0) {
                    return lbhb_fail(s, &jc,
                                     "the balancer has no room for members that join: set "
                                     "ProxySet growth=N (1-100) in its section");
                }
                if (!b[i].wslot || !b[i].storage) {
                    return lbhb_fail(s, &jc,
                                     "mod_proxy_balancer has not set the balancer up (is it "
                                     "loaded?)");
                }
                /* A balancer that starts with one member or none would
                 * get no failover (mod_proxy counts the members it starts
                 * with): an origin that stops can refuse a connection. */
                if (!b[i].s->max_attempts_set) {
                    b[i].s->max_attempts = 2;
                    b[i].s->max_attempts_set = 1;
                }
                *(proxy_balancer **)apr_array_push(g->copies) = &b[i];
                if (g->copies->nelts == 1 || (unsigned int)b[i].max_workers < g->slots) {
                    g->slots = (unsigned int)b[i].max_workers;
                }
            }
        }
        if (g->copies->nelts == 0) {
            return lbhb_fail(s, &jc,
                             others ? "the balancer must use lbmethod=heartbeat (ProxySet "
                                      "lbmethod=heartbeat growth=N)"
                                    : "no such balancer is defined");
        }
        /* After a graceful restart the table still holds the origins that
         * had joined: put them back now, so that they serve from the new
         * children's first request instead of after their next heartbeat. */
        if (t && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
            lbhb_scan(ptemp, s, g, t, apr_time_now(), 1);
        }
    }
    return OK;
}

/* -------------------------------------------------------------- status */

const char *lbhb_join_mark(proxy_worker *w)
{
    lbhb_join_rec_t *rec =
        w->balancer ? lbhb_inflight_join(w->balancer, (unsigned int)w->s->index) : NULL;
    uint32_t st = rec ? __atomic_load_n(&rec->state, __ATOMIC_ACQUIRE) : LBHB_JREC_NONE;

    return st == LBHB_JREC_JOINED ? "joined" : st == LBHB_JREC_DISABLED ? "left" : "static";
}

int lbhb_join_key(proxy_worker *w, hm_addr_t *key)
{
    lbhb_join_rec_t *rec =
        w->balancer ? lbhb_inflight_join(w->balancer, (unsigned int)w->s->index) : NULL;

    if (!rec || __atomic_load_n(&rec->state, __ATOMIC_ACQUIRE) == LBHB_JREC_NONE) {
        return 0;
    }
    *key = rec->key;
    return 1;
}

int lbhb_join_used(void)
{
    return lbhb_groups && lbhb_groups->nelts > 0;
}

const char *lbhb_join_name(apr_uint32_t hash)
{
    int k;

    for (k = 0; lbhb_groups && k < lbhb_groups->nelts; k++) {
        const lbhb_group_t *g = &APR_ARRAY_IDX(lbhb_groups, k, lbhb_group_t);
        if (g->hash == hash) {
            return g->name;
        }
    }
    return NULL;
}

int lbhb_join_enabled(const char *name)
{
    int k;

    for (k = 0; lbhb_groups && k < lbhb_groups->nelts; k++) {
        if (!strcasecmp(APR_ARRAY_IDX(lbhb_groups, k, lbhb_group_t).name, name)) {
            return 1;
        }
    }
    return 0;
}
