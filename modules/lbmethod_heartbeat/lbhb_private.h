/*
 * lbhb_private.h: state shared by the files of mod_lbmethod_heartbeat.
 */
#ifndef LBHB_PRIVATE_H
#define LBHB_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "mod_proxy.h"

#include "apr_atomic.h"

#include "hm_table.h"
#include "lbhb_load.h"
#include "lbhb_outlier.h"
#include "lbhb_pick.h"

extern module AP_MODULE_DECLARE_DATA lbmethod_heartbeat_module;

/* ---- configuration (mod_lbmethod_heartbeat.c) ---- */

/* HeartbeatJoinMember: BalancerMember parameters for members that join;
 * a field is used when its *_set is. */
typedef struct {
    int disablereuse, disablereuse_set;
    int keepalive, keepalive_set;
    apr_interval_time_t retry, timeout, conn_timeout, ttl;
    int retry_set, timeout_set, conn_timeout_set, ttl_set;
    int lbset, lbset_set;
    int lbfactor, lbfactor_set;
} lbhb_join_params_t;

/* HeartbeatJoin, HeartbeatJoinExpire and HeartbeatJoinMember in a
 * <Proxy balancer://name>. */
typedef struct {
    const char *name; /* balancer://name */
    int on;
    apr_interval_time_t expire; /* 0 = the server's */
    const char *file;
    int line;
    lbhb_join_params_t params;
} lbhb_join_conf_t;

/* Parse one "key=value" of HeartbeatJoinMember into *jp; NULL or an error
 * naming the directive. */
const char *lbhb_join_param(apr_pool_t *p, lbhb_join_params_t *jp, const char *arg);

typedef struct {
    const char *storage; /* HeartbeatStorage as configured (shared with the monitor) */
    apr_interval_time_t resolve_every;
    apr_array_header_t *joins;       /* lbhb_join_conf_t, this server's sections */
    apr_interval_time_t join_expire; /* HeartbeatJoinExpire outside any section */
} lbhb_sconf_t;

/* ---- members (lbhb_members.c) ---- */

#define LBHB_MAX_ADDRS 4

/* Per process: what we know about one BalancerMember. */
typedef struct {
    proxy_worker *volatile worker; /* claimed by CAS; NULL = free */
    volatile apr_uint32_t ready;   /* the fields below are filled in */
    int is_name;                   /* host is a name: addresses come from the resolver */
    volatile apr_uint32_t kseq;    /* seqlock over nkeys/keys (resolver writes) */
    unsigned int nkeys;
    hm_addr_t keys[LBHB_MAX_ADDRS];
    volatile apr_uint32_t warned;
    volatile apr_uint32_t warned_unsigned;
    /* This process's in-flight baseline and LBHB_SEEN_SIGNED word, when
     * there is no shared one (lbhb_baseline, lbhb_find_member). */
    uint64_t baseline;
    uint32_t seen;
} lbhb_member_t;

/* Set up this child's member cache, resolve every member of a heartbeat
 * balancer that is named by host name, and start the thread that
 * re-resolves them every `every`. */
void lbhb_members_child_init(apr_pool_t *p, server_rec *s, apr_interval_time_t every,
                             const hm_table_t *table);

/* The cache slot of a worker, claimed on first use; NULL if the cache is
 * full (the caller then works from lbhb_member_fill on a local copy). */
lbhb_member_t *lbhb_member(proxy_worker *w);
void lbhb_member_fill(proxy_worker *w, lbhb_member_t *m);

/* A consistent copy of a member's addresses; returns how many. */
unsigned int lbhb_member_keys(const lbhb_member_t *m, hm_addr_t *out);

/* ---- members that join (lbhb_joiner.c) ---- */

/* How a member came, shared by all children, kept with the member's other
 * shared state; written only under the balancer's global mutex (or by the
 * parent before any child runs). */
typedef struct {
    uint32_t state; /* LBHB_JREC_* */
    uint32_t pad;
    hm_addr_t key; /* the table entry whose heartbeats speak for it */
    int64_t since; /* when it joined, or was disabled */
} lbhb_join_rec_t;

#define LBHB_JREC_NONE     0u /* a BalancerMember of the configuration */
#define LBHB_JREC_JOINED   1u /* joined from its heartbeats */
#define LBHB_JREC_DISABLED 2u /* joined, and disabled: silent too long */

/* Checks HeartbeatJoin against the rest of the configuration and puts
 * back the members that had joined before a graceful restart (parent,
 * post_config, after mod_proxy_balancer's). Returns OK or an HTTP error. */
int lbhb_join_post_config(apr_pool_t *p, apr_pool_t *ptemp, server_rec *s, hm_table_t *t);

/* One round of the joiner (each child's member thread, every 100 ms). */
void lbhb_join_tick(server_rec *s, const hm_table_t *t, apr_pool_t *scratch);

/* Make this child's objects for members added to b since it last looked
 * (when HeartbeatJoin is used; a no-op otherwise). */
void lbhb_join_sync(proxy_balancer *b, server_rec *s);

/* 1 if some balancer has HeartbeatJoin on. */
int lbhb_join_used(void);

/* Named as the optional function it implements (mod_lbmethod_heartbeat.h). */
const char *lbhb_join_name(apr_uint32_t hash);

/* 1 if the balancer of that name has HeartbeatJoin on. */
int lbhb_join_enabled(const char *name);

/* "static", "joined" or "left", for the status page. */
const char *lbhb_join_mark(proxy_worker *w);

/* The table key of a member that joined (1), or 0 for a BalancerMember. */
int lbhb_join_key(proxy_worker *w, hm_addr_t *key);

/* 1 if this child's object for a slot still names the member in it: a
 * slot given to another origin leaves the old object behind. */
#define LBHB_WORKER_CURRENT(w)                                                                     \
    ((w)->hash.def == (w)->s->hash.def && (w)->hash.fnv == (w)->s->hash.fnv)

/* ---- in-flight snapshots shared by all children (lbhb_inflight.c) ---- */

/* Create the shared snapshot slots (parent, post_config). */
void lbhb_inflight_init(apr_pool_t *pconf, server_rec *s);

/*
 * This proxy's in-flight count on worker w at the first look after the
 * report seen at report_seen (lbhb_baseline), busy_now being its count
 * now: the first pick in any child after a report records it, and every
 * child counts from it. Returns 0 if no shared slot is available (the
 * caller then keeps a per-process baseline), else 1 and *base.
 */
int lbhb_inflight_baseline(proxy_worker *w, int64_t report_seen, apr_size_t busy_now,
                           uint64_t *base);

/* What a balancer's picks came to, counted in its shared slot for the
 * status page's metrics. */
typedef enum {
    LBHB_BAL_MOST = 0,  /* a member picked, by HeartbeatPickMode: most, */
    LBHB_BAL_WEIGHTED,  /* weighted */
    LBHB_BAL_P2C,       /* or p2c */
    LBHB_BAL_FALLBACK,  /* no member had usable data; the round-robin fallback picked one */
    LBHB_BAL_NO_DATA,   /* none picked at all (LB0304): mod_proxy answers 503 */
    LBHB_BAL_JOINED,    /* HeartbeatJoin: origins that joined (or came back) */
    LBHB_BAL_LEFT,      /* joined members disabled for silence */
    LBHB_BAL_JOIN_FULL, /* origins refused: every slot taken (growth) */
    LBHB_BAL_COUNT
} lbhb_bal_counter_e;

/* The balancer's tie-break rotation counter, shared by all children so that
 * ties alternate across the whole proxy, not per child; *counters is set
 * to its LBHB_BAL_COUNT counters in the same slot (NULL if no slot), so
 * that a pick costs one look-up and one relaxed atomic add. */
apr_uint32_t lbhb_inflight_cursor(proxy_balancer *b, uint64_t **counters);

/* The same counters, to read (NULL if no slot). */
const uint64_t *lbhb_inflight_counters(proxy_balancer *b);

/* The member's outlier state, shared by all children (NULL if no slot). */
lbhb_outlier_t *lbhb_inflight_outlier(proxy_worker *w);

/* The member's word of lbhb_find_member (LBHB_SEEN_SIGNED), shared by all
 * children (NULL if no slot). */
uint32_t *lbhb_inflight_seen(proxy_worker *w);

/* The member's slow-start events (lbhb_ramp_t), shared by all children
 * (NULL if no slot: then there is no slow start for it). */
lbhb_ramp_t *lbhb_inflight_ramp(proxy_worker *w);

/* The join record of a balancer's slot index (NULL if no shared slot). */
lbhb_join_rec_t *lbhb_inflight_join(proxy_balancer *b, unsigned int index);

/* Forget what a slot's previous member left (baseline, outlier, slow
 * start, load report, signed mark), before it is given to another origin. */
void lbhb_inflight_forget(proxy_balancer *b, unsigned int index);

/* The member's last per-response load report, shared by all children
 * (NULL if no slot: then its reports are not used). */
lbhb_load_slot_t *lbhb_inflight_load(proxy_worker *w);

/* ---- the pick (mod_lbmethod_heartbeat.c) ---- */

/* The member a request went to, in the request's request_config. */
typedef struct {
    proxy_worker *worker;
    proxy_balancer *balancer;
} lbhb_picked_t;

/* 1 if the member has an entry in this child's heartbeat table. */
int lbhb_member_heard(request_rec *r, proxy_worker *w);

/*
 * A member's answer is passing through (lbhb_reports.c), its request still
 * counted in flight: the first look after a report records the in-flight
 * count it is credited from (lbhb_credit), so that requests ending before
 * the next pick are not lost from it. Picks happen only as requests come
 * in; a wave of answers that ends before the next one came would
 * otherwise leave the member's baseline at what was left in flight then,
 * and it would look as full as its report said long after it emptied.
 */
void lbhb_member_answered(proxy_worker *w);

/* ---- per-response load reports (lbhb_reports.c) ---- */

/* Register the filter that takes the Heartbeat-Load header off every
 * proxied response, using it when the member was ours. */
void lbhb_reports_register(apr_pool_t *p);

/* At child_init: the keys that reports must be signed with, if any. */
void lbhb_reports_child_init(void);

/* ---- storage file (lbhb_file.c) ---- */

/* Lock, refresh at most every 100ms if the file changed, and return the
 * table parsed from it (NULL if never read). Call lbhb_file_release after. */
const hm_table_t *lbhb_file_acquire(server_rec *s, apr_time_t now);
void lbhb_file_release(void);
void lbhb_file_child_init(apr_pool_t *p, const char *path);
/* The file this child reads, or NULL. */
const char *lbhb_file_path(void);

#endif
