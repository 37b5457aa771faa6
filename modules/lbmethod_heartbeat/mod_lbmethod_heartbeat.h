/*
 * mod_lbmethod_heartbeat.h: what mod_lbmethod_heartbeat offers other
 * modules of this suite in the same server, through APR optional functions
 * (neither module needs the other, and load order does not matter):
 * mod_heartmonitor's status page shows the balancers' members and the
 * balancers' counters with them.
 */
#ifndef MOD_LBMETHOD_HEARTBEAT_H
#define MOD_LBMETHOD_HEARTBEAT_H

#include "httpd.h"

#include "apr_optional.h"
#include "apr_tables.h"

/* One member of a heartbeat balancer, as this child sees it. A balancer
 * that virtual hosts inherit from the main server is listed once. */
typedef struct {
    const char *balancer;         /* balancer://name */
    const char *member;           /* the BalancerMember's URL */
    const char *joined;           /* how it came: "static" (BalancerMember), "joined" (from
                                   * its heartbeats, HeartbeatJoin) or "left" (joined, then
                                   * disabled when it fell silent) */
    apr_uint64_t elected;         /* requests mod_proxy_balancer sent it (its shared count) */
    apr_uint64_t busy;            /* requests in flight to it now (mod_proxy's shared count) */
    int ejected;                  /* out of rotation now (HeartbeatEject) */
    apr_time_t until;             /* end of the current or last ejection; 0 = never ejected */
    unsigned int ejections;       /* ejections in a row, without a success since */
    unsigned int ejections_total; /* ejections since the proxy started */
    double failure_rate;          /* recent failures, 0 to 1 */
    /* Per-response load reports (HeartbeatResponseHeader on the origin):
     * taken, refused, and the last one taken (load_at 0: none). */
    apr_uint64_t load_reports;
    apr_uint64_t load_ignored;
    apr_time_t load_at;
    unsigned int load_ready, load_busy;
} lbhb_member_status_t;

/* Every member of every balancer that uses lbmethod=heartbeat, in s and
 * its virtual hosts: an array of lbhb_member_status_t from p. */
APR_DECLARE_OPTIONAL_FN(apr_array_header_t *, lbhb_member_status, (apr_pool_t * p, server_rec *s));

/* A heartbeat balancer's picks since the proxy started, counted by every
 * child in shared memory. */
typedef struct {
    const char *balancer;                               /* balancer://name */
    apr_uint64_t picks_most, picks_weighted, picks_p2c; /* by HeartbeatPickMode */
    apr_uint64_t fallback; /* picked by HeartbeatFallback roundrobin: no usable data */
    apr_uint64_t no_data;  /* nothing picked (LB0304): a 503 */
    /* HeartbeatJoin: origins that joined (or came back), joined members
     * disabled for silence, origins refused for lack of slots (growth). */
    apr_uint64_t joined, left, join_full;
    int join; /* HeartbeatJoin on */
} lbhb_balancer_status_t;

/* Every balancer that uses lbmethod=heartbeat, in s and its virtual hosts,
 * each once: an array of lbhb_balancer_status_t from p (empty without the
 * shared counters, LB0307). */
APR_DECLARE_OPTIONAL_FN(apr_array_header_t *, lbhb_balancer_status,
                        (apr_pool_t * p, server_rec *s));

/* The name of the balancer with HeartbeatJoin on whose name hashes to
 * hash (hb_join_hash), or NULL: the table keeps only hashes of the names
 * origins announce. */
APR_DECLARE_OPTIONAL_FN(const char *, lbhb_join_name, (apr_uint32_t hash));

#endif
