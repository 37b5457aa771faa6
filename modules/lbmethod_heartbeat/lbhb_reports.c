/*
 * lbhb_reports.c: the proxy's side of per-response load reports
 * (HeartbeatResponseHeader on the origins, lbhb_load.h).
 *
 * Every proxied response passes a filter that takes the Heartbeat-Load
 * header off before anything is sent to the client, whether this proxy
 * uses it or not, so an origin's capacity never leaks out. When the
 * request went to a member of a heartbeat balancer, the report is checked
 * and put in the member's shared slot, where every child's next pick finds
 * it as a fresher heartbeat. It speaks only for the member the proxy sent
 * the request to: the connection is the proxy's own to that member. Every
 * answer of a member also marks, once per report, how many requests were
 * in flight to it (lbhb_member_answered).
 */
#include "lbhb_private.h"

#include "http_log.h"
#include "http_request.h"
#include "util_filter.h"

#include "mod_heartmonitor.h"

/* Log lines carry this module's name and obey its LogLevel. */
APLOG_USE_MODULE(lbmethod_heartbeat);

static const hb_secret_t *lbhb_keys; /* the monitor's HeartbeatSecret keys, if any */
static unsigned int lbhb_nkeys;
static apr_interval_time_t lbhb_window;

void lbhb_reports_child_init(void)
{
    APR_OPTIONAL_FN_TYPE(hm_auth_keys) *fn = APR_RETRIEVE_OPTIONAL_FN(hm_auth_keys);

    lbhb_nkeys = 0;
    lbhb_keys = fn ? fn(&lbhb_nkeys, &lbhb_window) : NULL;
    if (!lbhb_keys) {
        lbhb_nkeys = 0;
    }
}

/* A signed report must name the member: the address and port the proxy
 * sent the request to. */
static int lbhb_report_is_members(proxy_worker *w, const lbhb_load_t *ld)
{
    lbhb_member_t *m = lbhb_member(w), local;
    hm_addr_t keys[LBHB_MAX_ADDRS], named;
    unsigned int n, i;

    if (ld->port != 0 && ld->port != w->s->port) {
        return 0;
    }
    if (!ld->addr[0]) {
        return lbhb_nkeys == 0;
    }
    if (!m) {
        memset(&local, 0, sizeof(local));
        lbhb_member_fill(w, &local);
        m = &local;
    }
    if (hm_addr_from_string(&named, ld->addr, 0) != 0) {
        return 0;
    }
    n = lbhb_member_keys(m, keys);
    for (i = 0; i < n; i++) {
        if (hm_addr_same_host(&keys[i], &named)) {
            return 1;
        }
    }
    return 0;
}

static void lbhb_take_report(request_rec *r, const lbhb_picked_t *pk, const char *v)
{
    lbhb_load_slot_t *slot = lbhb_inflight_load(pk->worker);
    apr_time_t now = apr_time_now();
    lbhb_load_t ld;
    lbhb_load_e st;

    if (!slot) {
        return;
    }
    st = lbhb_load_parse(v, strlen(v), lbhb_keys, lbhb_nkeys, apr_time_as_msec(now),
                         apr_time_as_msec(lbhb_window), &ld);
    if (st == LBHB_LOAD_OK && !lbhb_report_is_members(pk->worker, &ld)) {
        st = LBHB_LOAD_IDENTITY;
    }
    /* Heartbeats say who is alive: a report of a member never heard from
     * (or one that only the proxy's own answer makes) is no reason to
     * send it anything. */
    if (st != LBHB_LOAD_OK || !lbhb_member_heard(r, pk->worker)) {
        __atomic_fetch_add(&slot->ignored, 1, __ATOMIC_RELAXED);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "LB0313: load report of %s ignored (%s): %.80s", pk->worker->s->name,
                      st == LBHB_LOAD_OK         ? "member has no heartbeat entry"
                      : st == LBHB_LOAD_UNSIGNED ? "unsigned, and HeartbeatSecret is set"
                      : st == LBHB_LOAD_BADSIG   ? "bad signature or outside the window"
                      : st == LBHB_LOAD_IDENTITY ? "signed for another member"
                                                 : "malformed",
                      v);
        return;
    }
    lbhb_load_put(slot, ld.ready, ld.busy, now);
    __atomic_fetch_add(&slot->used, 1, __ATOMIC_RELAXED);
}

static apr_status_t lbhb_report_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    const char *v = apr_table_get(r->headers_out, LBHB_LOAD_HEADER);
    const lbhb_picked_t *pk = NULL;
    request_rec *rr;

    /* The request we picked for: the last of an internal redirect chain
     * that has one. */
    for (rr = r; rr; rr = rr->prev) {
        pk = ap_get_module_config(rr->request_config, &lbmethod_heartbeat_module);
        if (pk) {
            break;
        }
    }
    if (pk && pk->worker) {
        if (v) {
            lbhb_take_report(r, pk, v);
        }
        lbhb_member_answered(pk->worker);
    }
    apr_table_unset(r->headers_out, LBHB_LOAD_HEADER);
    apr_table_unset(r->err_headers_out, LBHB_LOAD_HEADER);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void lbhb_insert_report_filter(request_rec *r)
{
    if (r->proxyreq != PROXYREQ_NONE) {
        ap_add_output_filter("LBHB_LOAD_REPORT", NULL, r, r->connection);
    }
}

void lbhb_reports_register(apr_pool_t *p)
{
    ap_hook_insert_filter(lbhb_insert_report_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(lbhb_insert_report_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* First of the filters, so that nothing after it (a cache, a
     * compressor) ever sees the header. */
    ap_register_output_filter("LBHB_LOAD_REPORT", lbhb_report_filter, NULL, AP_FTYPE_RESOURCE);
}
