/*
 * lbhb_members.c: per-process knowledge of BalancerMembers: the addresses
 * a member's heartbeats come from, and its in-flight snapshot.
 *
 * Members written as IP literals get their key once; members that joined
 * (lbhb_joiner.c) the key of the entry they joined from. Members written as
 * host names are resolved when the child starts and again every
 * HeartbeatResolveInterval by a thread of the child, never on the request
 * path: a request only reads the last answer (seqlocked).
 */
#include "lbhb_private.h"

#include "http_log.h"

#include "apr_network_io.h"
#include "apr_thread_proc.h"
#include "apr_time.h"

/* Log lines carry this module's name and obey its LogLevel. */
APLOG_USE_MODULE(lbmethod_heartbeat);

#define LBHB_MEMBER_CACHE_SIZE 2048 /* power of two */
#define LBHB_PROBE             16

static lbhb_member_t *lbhb_members;

static apr_uint32_t lbhb_ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (apr_uint32_t)x;
}

static const char *lbhb_host(proxy_worker *w)
{
    return w->s->hostname_ex[0] ? w->s->hostname_ex : w->s->hostname;
}

void lbhb_member_fill(proxy_worker *w, lbhb_member_t *m)
{
    /* A member that joined is the entry it joined from, whatever port its
     * URL has (HeartbeatBalancer may name another). */
    if (lbhb_join_key(w, &m->keys[0])) {
        m->nkeys = 1;
        m->is_name = 0;
        return;
    }
    m->nkeys = hm_addr_from_string(&m->keys[0], lbhb_host(w), w->s->port) == 0 ? 1 : 0;
    m->is_name = m->nkeys == 0;
}

lbhb_member_t *lbhb_member(proxy_worker *w)
{
    apr_uint32_t h = lbhb_ptr_hash(w), i;

    if (!lbhb_members) {
        return NULL;
    }
    for (i = 0; i < LBHB_PROBE; i++) {
        lbhb_member_t *m = &lbhb_members[(h + i) & (LBHB_MEMBER_CACHE_SIZE - 1)];
        proxy_worker *cur = __atomic_load_n(&m->worker, __ATOMIC_ACQUIRE);
        if (cur == w) {
            return __atomic_load_n(&m->ready, __ATOMIC_ACQUIRE) ? m : NULL;
        }
        if (cur == NULL) {
            proxy_worker *expected = NULL;
            if (__atomic_compare_exchange_n(&m->worker, &expected, w, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                /* A name added at run time (balancer-manager) waits for the
                 * resolver's next round; requests never resolve. */
                lbhb_member_fill(w, m);
                __atomic_store_n(&m->ready, 1, __ATOMIC_RELEASE);
                return m;
            }
            if (expected == w) {
                return NULL;
            }
        }
    }
    return NULL;
}

unsigned int lbhb_member_keys(const lbhb_member_t *m, hm_addr_t *out)
{
    for (;;) {
        apr_uint32_t s1 = __atomic_load_n(&m->kseq, __ATOMIC_ACQUIRE);
        unsigned int n;
        if (s1 & 1u) {
            continue;
        }
        n = m->nkeys;
        if (n > LBHB_MAX_ADDRS) {
            n = LBHB_MAX_ADDRS;
        }
        memcpy(out, m->keys, n * sizeof(hm_addr_t));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&m->kseq, __ATOMIC_RELAXED) == s1) {
            return n;
        }
    }
}

/* Resolve one named member and publish its addresses. Only the resolver
 * (or child_init, before it starts) writes keys, so one writer. */
static void lbhb_resolve(lbhb_member_t *m, server_rec *s, apr_pool_t *p)
{
    proxy_worker *w = m->worker;
    hm_addr_t keys[LBHB_MAX_ADDRS];
    apr_sockaddr_t *sa = NULL, *a;
    unsigned int n = 0;
    apr_status_t rv;

    rv = apr_sockaddr_info_get(&sa, lbhb_host(w), APR_UNSPEC, w->s->port, 0, p);
    if (rv != APR_SUCCESS) {
        /* Keep the last good answer: a DNS hiccup must not drop a member. */
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "LB0305: cannot resolve BalancerMember host %s; keeping its last known "
                     "addresses",
                     lbhb_host(w));
        return;
    }
    for (a = sa; a && n < LBHB_MAX_ADDRS; a = a->next) {
        if (hm_addr_from_sockaddr(&keys[n], &a->sa, w->s->port) == 0) {
            unsigned int j;
            for (j = 0; j < n && !hm_addr_equal(&keys[j], &keys[n]); j++) {
            }
            n += j == n;
        }
    }
    __atomic_store_n(&m->kseq, m->kseq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(m->keys, keys, n * sizeof(hm_addr_t));
    m->nkeys = n;
    __atomic_store_n(&m->kseq, m->kseq + 1, __ATOMIC_RELEASE);
}

static void lbhb_resolve_all(server_rec *s, int only_new)
{
    apr_pool_t *p;
    unsigned int i;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < LBHB_MEMBER_CACHE_SIZE; i++) {
        lbhb_member_t *m = &lbhb_members[i];
        if (!__atomic_load_n(&m->ready, __ATOMIC_ACQUIRE) || !m->is_name) {
            continue;
        }
        if (only_new && m->nkeys) {
            continue;
        }
        lbhb_resolve(m, s, p);
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
}

typedef struct {
    server_rec *s;
    apr_interval_time_t every;
    apr_thread_t *thread;
    const hm_table_t *table; /* for the joiner */
    apr_pool_t *scratch;
    volatile int stop;
} lbhb_resolver_t;

static void *APR_THREAD_FUNC lbhb_resolver_main(apr_thread_t *thd, void *data)
{
    lbhb_resolver_t *rs = data;
    apr_time_t last = apr_time_now();

    while (!rs->stop) {
        apr_sleep(apr_time_from_msec(100));
        if (rs->scratch) {
            lbhb_join_tick(rs->s, rs->table, rs->scratch);
        }
        if (apr_time_now() - last >= rs->every) {
            lbhb_resolve_all(rs->s, 0);
            last = apr_time_now();
        } else {
            lbhb_resolve_all(rs->s, 1);
        }
    }
    apr_thread_exit(thd, APR_SUCCESS);
    return NULL;
}

static apr_status_t lbhb_resolver_stop(void *data)
{
    lbhb_resolver_t *rs = data;
    apr_status_t trv;

    rs->stop = 1;
    apr_thread_join(&trv, rs->thread);
    return APR_SUCCESS;
}

/* Claim a slot for every member of every heartbeat balancer now, so names
 * are resolved before the first request. */
static int lbhb_claim_members(server_rec *s)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    server_rec *sv;
    int names = 0;

    if (!proxy) {
        return 0;
    }
    for (sv = s; sv; sv = sv->next) {
        proxy_server_conf *pc = ap_get_module_config(sv->module_config, proxy);
        proxy_balancer *b;
        int i, j;

        if (!pc || !pc->balancers) {
            continue;
        }
        b = (proxy_balancer *)pc->balancers->elts;
        for (i = 0; i < pc->balancers->nelts; i++, b++) {
            proxy_worker **w = (proxy_worker **)b->workers->elts;
            if (!b->lbmethod || strcmp(b->lbmethod->name, "heartbeat")) {
                continue;
            }
            for (j = 0; j < b->workers->nelts; j++) {
                lbhb_member_t *m = lbhb_member(w[j]);
                names += m && m->is_name;
            }
        }
    }
    return names;
}

void lbhb_members_child_init(apr_pool_t *p, server_rec *s, apr_interval_time_t every,
                             const hm_table_t *table)
{
    lbhb_resolver_t *rs;

    lbhb_members = apr_pcalloc(p, LBHB_MEMBER_CACHE_SIZE * sizeof(lbhb_member_t));
    lbhb_claim_members(s);
    lbhb_resolve_all(s, 0);
    /* Always run the resolver: members added at run time may be names. */
    rs = apr_pcalloc(p, sizeof(*rs));
    rs->s = s;
    rs->every = every;
    rs->table = table;
    /* The joiner allocates in a pool of its own: pools are not for
     * sharing between threads. */
    if (lbhb_join_used() && apr_pool_create(&rs->scratch, p) != APR_SUCCESS) {
        rs->scratch = NULL;
    }
    if (apr_thread_create(&rs->thread, NULL, lbhb_resolver_main, rs, p) == APR_SUCCESS) {
        apr_pool_pre_cleanup_register(p, rs, lbhb_resolver_stop);
    } else {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "LB0306: cannot start the member resolver thread; host names are "
                     "resolved only at start-up");
    }
}
