/*
 * mod_lbmethod_heartbeat.h: what mod_lbmethod_heartbeat offers other
 * modules of this suite in the same server, through APR optional functions
 * (neither module needs the other, and load order does not matter):
 * mod_heartmonitor's status page shows the balancers' members with it.
 */
#ifndef MOD_LBMETHOD_HEARTBEAT_H
#define MOD_LBMETHOD_HEARTBEAT_H

#include "httpd.h"

#include "apr_optional.h"
#include "apr_tables.h"

/* One member of a heartbeat balancer, as this child sees it. */
typedef struct {
    const char *balancer;   /* balancer://name */
    const char *member;     /* the BalancerMember's URL */
    int ejected;            /* out of rotation now (HeartbeatEject) */
    apr_time_t until;       /* end of the current or last ejection; 0 = never ejected */
    unsigned int ejections; /* ejections in a row, without a success since */
    double failure_rate;    /* recent failures, 0 to 1 */
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

#endif
