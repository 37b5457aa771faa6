/*
 * mod_lbmethod_heartbeat: lbmethod=heartbeat for mod_proxy_balancer. Sends
 * each request to the usable member with the most effective ready slots:
 * what the member last reported, minus the requests this proxy has put on
 * it since (so two heartbeats apart we do not herd onto one member).
 *
 * Data comes from mod_heartmonitor's shared table when that module runs in
 * this server (no file I/O, no lock and no allocation per request), or else
 * from the HeartbeatStorage file, parsed once per change.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "mod_proxy.h"

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include "hb_config.h"
#include "hm_storage.h"
#include "hm_table.h"
#include "lbhb_pick.h"
#include "mod_heartmonitor.h"

module AP_MODULE_DECLARE_DATA lbmethod_heartbeat_module;

#define LBHB_DEFAULT_MAX_AGE   apr_time_from_sec(10)
#define LBHB_FILE_CHECK_EVERY  apr_time_from_msec(100)
#define LBHB_FILE_MAX_BYTES    (16 * 1024 * 1024)
#define LBHB_MEMBER_CACHE_SIZE 2048 /* power of two */

typedef struct {
    const char *storage; /* HeartbeatStorage as configured (shared with the monitor) */
    apr_interval_time_t max_age;
    int max_age_set;
} lbhb_conf_t;

/* Per process: what we know about one BalancerMember. */
typedef struct {
    proxy_worker *volatile worker; /* claimed by CAS; NULL = free */
    volatile apr_uint32_t ready;   /* key below is filled in */
    int key_ok;                    /* the member's host is an IP literal */
    hm_key_t key;
    volatile apr_uint32_t warned;
    /* The in-flight count when the current report was first seen: requests
     * started after a report are not in it. */
    volatile int64_t report_seen;
    volatile apr_size_t busy_at_report;
} lbhb_member_t;

typedef struct {
    hm_table_t *table; /* this snapshot as a private table */
    apr_time_t mtime;
    apr_off_t size;
} lbhb_file_snap_t;

static APR_OPTIONAL_FN_TYPE(proxy_balancer_get_best_worker) * lbhb_get_best_worker;

static lbhb_member_t *lbhb_members; /* LBHB_MEMBER_CACHE_SIZE, per process */
static hm_table_t *lbhb_shared;     /* the monitor's table, if any */
static const char *lbhb_file_path;  /* file mode: the file read in this child */
static const char *lbhb_own_path;   /* our HeartbeatStorage (or its default), resolved */
static int lbhb_own_path_set;
static apr_interval_time_t lbhb_max_age = LBHB_DEFAULT_MAX_AGE;
static int lbhb_max_age_set;

static apr_thread_mutex_t *lbhb_file_mutex;
static lbhb_file_snap_t *lbhb_file_snap;
static apr_time_t lbhb_file_checked;
static volatile apr_uint32_t lbhb_rr_cursor;

static lbhb_conf_t *lbhb_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &lbmethod_heartbeat_module);
}

static void *lbhb_create_server_config(apr_pool_t *p, server_rec *s)
{
    lbhb_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->max_age = LBHB_DEFAULT_MAX_AGE;
    return conf;
}

static const char *lbhb_cmd_storage(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    lbhb_conf(cmd->server)->storage = arg;
    return NULL;
}

static const char *lbhb_cmd_max_age(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_conf_t *conf = lbhb_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_interval_time_t t;

    if (err) {
        return err;
    }
    if (hb_parse_duration(arg, &t) != 0 || t < apr_time_from_msec(100) ||
        t > apr_time_from_sec(3600)) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a time from 100ms to 3600s",
                            cmd->cmd->name, arg);
    }
    conf->max_age = t;
    conf->max_age_set = 1;
    return NULL;
}

/* ------------------------------------------------------------ members */

static apr_uint32_t lbhb_ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (apr_uint32_t)x;
}

static void lbhb_member_key(proxy_worker *w, lbhb_member_t *m)
{
    const char *host = w->s->hostname_ex[0] ? w->s->hostname_ex : w->s->hostname;
    m->key_ok = hm_key_from_string(&m->key, host, w->s->port) == 0;
}

/*
 * Find (or claim) the cache slot for a worker, lock-free: the slot is
 * claimed with a CAS on its worker pointer and published by its ready flag.
 * A full cache or a slot still being filled returns NULL and the caller
 * works it out on the spot, which is slower but still right.
 */
static lbhb_member_t *lbhb_member(proxy_worker *w)
{
    apr_uint32_t h = lbhb_ptr_hash(w), i;

    if (!lbhb_members) {
        return NULL;
    }
    for (i = 0; i < 16; i++) {
        lbhb_member_t *m = &lbhb_members[(h + i) & (LBHB_MEMBER_CACHE_SIZE - 1)];
        proxy_worker *cur = __atomic_load_n(&m->worker, __ATOMIC_ACQUIRE);
        if (cur == w) {
            return __atomic_load_n(&m->ready, __ATOMIC_ACQUIRE) ? m : NULL;
        }
        if (cur == NULL) {
            proxy_worker *expected = NULL;
            if (__atomic_compare_exchange_n(&m->worker, &expected, w, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                lbhb_member_key(w, m);
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

/* ---------------------------------------------------------- file mode */

static hm_table_t *lbhb_snapshot_table(apr_array_header_t *entries)
{
    unsigned int cap = entries->nelts > 0 ? (unsigned int)entries->nelts : 1;
    size_t size = hm_table_size(cap);
    void *mem = malloc(size);
    hm_table_t *t;
    int i;

    if (!mem) {
        return NULL;
    }
    t = hm_table_create(mem, size, cap);
    for (i = 0; i < entries->nelts; i++) {
        const hm_entry_t *e = &APR_ARRAY_IDX(entries, i, hm_entry_t);
        hb_packet_t pkt;
        memset(&pkt, 0, sizeof(pkt));
        pkt.version = 1;
        pkt.ready = e->ready;
        pkt.busy = e->busy;
        pkt.interval_ms = e->interval_ms;
        pkt.state = (hb_state_e)e->state;
        pkt.flags = HB_HAS_STATE | (e->interval_ms ? HB_HAS_INTERVAL : 0);
        hm_table_update(t, &e->key, &pkt, e->seen, INT64_MAX, e->flags);
    }
    return t;
}

static void lbhb_snap_free(lbhb_file_snap_t *snap)
{
    if (snap) {
        free(snap->table);
        free(snap);
    }
}

/*
 * Re-read the file only when its mtime or size changed, and look at most
 * every 100ms. The caller holds lbhb_file_mutex.
 */
static void lbhb_file_refresh(server_rec *s, apr_time_t now)
{
    apr_finfo_t fi;
    apr_pool_t *tmp;
    apr_array_header_t *entries = NULL;
    hm_storage_stats_t st;
    int64_t mtime;
    lbhb_file_snap_t *snap;
    int rv;

    if (lbhb_file_snap && now - lbhb_file_checked < LBHB_FILE_CHECK_EVERY) {
        return;
    }
    lbhb_file_checked = now;
    if (apr_pool_create(&tmp, NULL) != APR_SUCCESS) {
        return;
    }
    if (apr_stat(&fi, lbhb_file_path, APR_FINFO_MTIME | APR_FINFO_SIZE, tmp) == APR_SUCCESS &&
        lbhb_file_snap && fi.mtime == lbhb_file_snap->mtime && fi.size == lbhb_file_snap->size) {
        apr_pool_destroy(tmp);
        return;
    }
    rv = hm_storage_read(lbhb_file_path, LBHB_FILE_MAX_BYTES, tmp, &entries, &mtime, &st);
    if (rv != 0) {
        /* Keep the old snapshot: its entries age out by themselves. */
        apr_pool_destroy(tmp);
        return;
    }
    if (st.bad) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "LB0301: %s: %u malformed line(s) skipped, first at line %u", lbhb_file_path,
                     st.bad, st.first_bad_line);
    }
    snap = calloc(1, sizeof(*snap));
    if (snap) {
        snap->table = lbhb_snapshot_table(entries);
        snap->mtime = mtime;
        snap->size = fi.size;
        if (!snap->table) {
            free(snap);
            snap = NULL;
        }
    }
    if (snap) {
        lbhb_snap_free(lbhb_file_snap);
        lbhb_file_snap = snap;
    }
    apr_pool_destroy(tmp);
}

/* --------------------------------------------------------------- pick */

typedef struct {
    const hm_table_t *table;
    request_rec *r;
    apr_time_t now;
    apr_uint32_t cursor;
    unsigned int n;
    lbhb_score_t best;
} lbhb_baton_t;

static apr_interval_time_t lbhb_entry_max_age(const hm_entry_t *e)
{
    if (lbhb_max_age_set || !e->interval_ms) {
        return lbhb_max_age;
    }
    /* A few sender intervals, but never stricter than one second nor
     * laxer than the stock 10 s. */
    {
        apr_interval_time_t t =
            apr_time_from_msec(3 * (apr_int64_t)e->interval_ms) + apr_time_from_msec(500);
        if (t < apr_time_from_sec(1)) {
            t = apr_time_from_sec(1);
        }
        return t < LBHB_DEFAULT_MAX_AGE ? t : LBHB_DEFAULT_MAX_AGE;
    }
}

/* The entry for a member: by address and port, else (stock senders name no
 * port) the entry of that address whose port was never stated. */
static int lbhb_lookup(const hm_table_t *t, const hm_key_t *key, hm_entry_t *e)
{
    hm_key_t k;

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

static int lbhb_is_best(proxy_worker *current, proxy_worker *prev_best, void *data)
{
    lbhb_baton_t *b = data;
    lbhb_member_t *m = lbhb_member(current);
    lbhb_member_t local;
    hm_entry_t e;
    lbhb_score_t score;
    apr_size_t busy_now;
    uint64_t started = 0;
    unsigned int idx;

    if (!m) {
        memset(&local, 0, sizeof(local));
        lbhb_member_key(current, &local);
        m = &local;
    }
    if (!m->key_ok || !lbhb_lookup(b->table, &m->key, &e)) {
        if (m != &local && !apr_atomic_xchg32(&m->warned, 1)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, b->r,
                          "LB0302: BalancerMember %s has no heartbeat entry%s; it gets no "
                          "requests from lbmethod=heartbeat until it reports (logged once)",
                          current->s->name, m->key_ok ? "" : " (its host is not an IP address)");
        }
        return 0;
    }
    if (b->now - e.seen > lbhb_entry_max_age(&e) || e.state != HB_STATE_UP) {
        return 0;
    }

    busy_now = current->s->busy;
    if (m != &local) {
        if (m->report_seen != e.seen) {
            m->busy_at_report = busy_now;
            m->report_seen = e.seen;
        } else if (busy_now > m->busy_at_report) {
            started = busy_now - m->busy_at_report;
        }
    }
    score.eff = lbhb_effective(e.ready, started);
    /* The member's slot in the balancer's shared memory: stable across
     * processes, so every child rotates ties the same way. */
    idx = (unsigned int)current->s->index;
    score.order = lbhb_order(idx % b->n, b->cursor, b->n);
    if (prev_best && !lbhb_better(&score, &b->best)) {
        return 0;
    }
    b->best = score;
    return 1;
}

static proxy_worker *lbhb_finder(proxy_balancer *balancer, request_rec *r)
{
    lbhb_baton_t b;
    proxy_worker *w;

    memset(&b, 0, sizeof(b));
    b.r = r;
    b.now = apr_time_now();
    b.n = balancer->workers->nelts > 0 ? (unsigned int)balancer->workers->nelts : 1;
    b.cursor = apr_atomic_inc32(&lbhb_rr_cursor) % b.n;

    if (!lbhb_get_best_worker) {
        return NULL;
    }
    if (lbhb_shared) {
        b.table = lbhb_shared;
        return lbhb_get_best_worker(balancer, r, lbhb_is_best, &b);
    }
    if (!lbhb_file_path || !lbhb_file_mutex) {
        return NULL;
    }
    apr_thread_mutex_lock(lbhb_file_mutex);
    lbhb_file_refresh(r->server, b.now);
    if (lbhb_file_snap) {
        b.table = lbhb_file_snap->table;
        w = lbhb_get_best_worker(balancer, r, lbhb_is_best, &b);
    } else {
        w = NULL;
    }
    apr_thread_mutex_unlock(lbhb_file_mutex);
    return w;
}

static apr_status_t lbhb_reset(proxy_balancer *balancer, server_rec *s)
{
    return APR_SUCCESS;
}

static apr_status_t lbhb_age(proxy_balancer *balancer, server_rec *s)
{
    return APR_SUCCESS;
}

static const proxy_balancer_method lbhb_method = {"heartbeat", &lbhb_finder, NULL,
                                                  &lbhb_reset, &lbhb_age,    NULL};

/* --------------------------------------------------------------- hooks */

static apr_status_t lbhb_child_cleanup(void *data)
{
    lbhb_snap_free(lbhb_file_snap);
    lbhb_file_snap = NULL;
    return APR_SUCCESS;
}

static int lbhb_post_config(apr_pool_t *p, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    lbhb_conf_t *conf = lbhb_conf(s);

    lbhb_shared = NULL;
    lbhb_file_path = NULL;
    lbhb_own_path = NULL;
    lbhb_members = NULL;
    lbhb_max_age = conf->max_age;
    lbhb_max_age_set = conf->max_age_set;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    lbhb_get_best_worker = APR_RETRIEVE_OPTIONAL_FN(proxy_balancer_get_best_worker);
    if (!lbhb_get_best_worker) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "LB0303: lbmethod_heartbeat needs mod_proxy (2.4.26 or later) loaded");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* Resolved now, so DefaultRuntimeDir counts wherever it stands. */
    lbhb_own_path = ap_runtime_dir_relative(p, conf->storage ? conf->storage : "hb.dat");
    lbhb_own_path_set = conf->storage != NULL;
    lbhb_members = apr_pcalloc(p, LBHB_MEMBER_CACHE_SIZE * sizeof(lbhb_member_t));
    return OK;
}

/*
 * Where the data comes from is settled per child, once every module's
 * post_config has run: hook ordering by module name is not reliable for
 * modules built out of httpd's tree, and the monitor sets its table up in
 * its own post_config.
 */
static void lbhb_choose_source(void)
{
    APR_OPTIONAL_FN_TYPE(hm_shared_table) *table_fn = APR_RETRIEVE_OPTIONAL_FN(hm_shared_table);
    APR_OPTIONAL_FN_TYPE(hm_storage_path) *path_fn = APR_RETRIEVE_OPTIONAL_FN(hm_storage_path);

    lbhb_shared = table_fn ? table_fn() : NULL;
    lbhb_file_path = NULL;
    if (lbhb_shared) {
        return;
    }
    /* Our own HeartbeatStorage, else the file the monitor writes, else the
     * stock default. */
    if (!lbhb_own_path_set && path_fn && path_fn()) {
        lbhb_file_path = path_fn();
    } else {
        lbhb_file_path = lbhb_own_path;
    }
}

static void lbhb_child_init(apr_pool_t *p, server_rec *s)
{
    lbhb_choose_source();
    lbhb_file_snap = NULL;
    lbhb_file_checked = 0;
    if (lbhb_file_path) {
        apr_thread_mutex_create(&lbhb_file_mutex, APR_THREAD_MUTEX_DEFAULT, p);
        apr_pool_cleanup_register(p, NULL, lbhb_child_cleanup, apr_pool_cleanup_null);
    }
}

static void lbhb_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, PROXY_LBMETHOD, "heartbeat", "0", &lbhb_method);
    ap_hook_post_config(lbhb_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(lbhb_child_init, NULL, NULL, APR_HOOK_MIDDLE);
}

static const command_rec lbhb_cmds[] = {
    AP_INIT_TAKE1("HeartbeatStorage", lbhb_cmd_storage, NULL, RSRC_CONF,
                  "path of the heartbeat table file, when mod_heartmonitor does not run in "
                  "this server (default hb.dat in DefaultRuntimeDir)"),
    AP_INIT_TAKE1("HeartbeatMaxAge", lbhb_cmd_max_age, NULL, RSRC_CONF,
                  "ignore heartbeat data older than this (default: 3 sender intervals + "
                  "500ms, between 1s and 10s; 10s when the sender does not say)"),
    {NULL}};

AP_DECLARE_MODULE(lbmethod_heartbeat) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, lbhb_create_server_config, NULL, lbhb_cmds,
    lbhb_register_hooks,
};
