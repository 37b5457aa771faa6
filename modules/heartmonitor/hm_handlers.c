/*
 * hm_handlers.c: HTTP side of mod_heartmonitor.
 *  - SetHandler heartbeat: an origin POSTs the same body as its UDP packet;
 *    access is controlled with the ordinary Require directives.
 *  - SetHandler heartbeat-status: the table for operators, as HTML, or as
 *    JSON (?json) or mod_status-like key: value lines (?auto) for scripts,
 *    or only the counters (?counters) for frequent polling.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "mod_status.h"

#include "hb_packet.h"
#include "hm_private.h"
#include "hm_ratelimit.h"
#include "mod_lbmethod_heartbeat.h"

/* HeartbeatRateLimit for POSTs, per child: request threads share one
 * limiter under a lock (NULL: no limit). */
#define HM_POST_RL_SOURCES 256
static hm_ratelimit_t *hm_post_rl;
static apr_thread_mutex_t *hm_post_rl_lock;

void hm_handlers_child_init(apr_pool_t *pchild, server_rec *s)
{
    hm_conf_t *conf = hm_conf(s);

    hm_post_rl = NULL;
    if (!conf->rate_limit || apr_thread_mutex_create(&hm_post_rl_lock, APR_THREAD_MUTEX_DEFAULT,
                                                     pchild) != APR_SUCCESS) {
        return;
    }
    hm_post_rl = hm_ratelimit_init(apr_palloc(pchild, hm_ratelimit_size(HM_POST_RL_SOURCES)),
                                   HM_POST_RL_SOURCES, conf->rate_limit, 2 * conf->rate_limit);
}

static int hm_read_body(request_rec *r, char *buf, apr_size_t cap, apr_size_t *len)
{
    int rc;

    *len = 0;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rc;
    }
    if (r->remaining > (apr_off_t)cap) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (ap_should_client_block(r)) {
        char chunk[512];
        long n;
        while ((n = ap_get_client_block(r, chunk, sizeof(chunk))) > 0) {
            if (*len + (apr_size_t)n > cap) {
                /* Read and drop the rest, so the connection can be reused. */
                while (ap_get_client_block(r, chunk, sizeof(chunk)) > 0) {
                }
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            memcpy(buf + *len, chunk, (apr_size_t)n);
            *len += (apr_size_t)n;
        }
        if (n < 0) {
            return HTTP_BAD_REQUEST;
        }
    }
    return OK;
}

static int hm_post_handler(request_rec *r)
{
    hm_conf_t *conf = hm_conf(r->server);
    char buf[HB_PACKET_MAX];
    apr_size_t len;
    apr_sockaddr_t *from;
    hm_pending_t pd;
    hm_reason_e reason;
    int rc;

    r->allowed = AP_METHOD_BIT << M_POST;
    ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
    if (r->method_number != M_POST) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!conf->admit) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    /* The connection's peer, never r->useragent_addr: mod_remoteip would
     * let a forwarded header choose whose entry this updates. */
    from = r->connection->client_addr;
    rc = hm_read_body(r, buf, sizeof(buf), &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        hm_admit_reject(conf->admit, from, 1, HM_REASON_TOOLONG, apr_time_now());
        return rc;
    }
    if (rc != OK) {
        return rc;
    }
    if (hm_post_rl) {
        apr_thread_mutex_lock(hm_post_rl_lock);
        reason = hm_admit_check(conf->admit, hm_post_rl, buf, len, from, 1, apr_time_now(), &pd);
        apr_thread_mutex_unlock(hm_post_rl_lock);
    } else {
        reason = hm_admit_check(conf->admit, NULL, buf, len, from, 1, apr_time_now(), &pd);
    }
    if (reason == HM_REASON_OK) {
        reason = hm_admit_commit(conf->admit, &pd);
    }
    if (reason != HM_REASON_OK) {
        int refused = hm_reason_refused(reason);
        /* Malformed: 400. Over the rate: 429. Refused by policy: 403. */
        ap_set_content_type(r, "text/plain");
        r->status = reason == HM_REASON_RATE ? HTTP_TOO_MANY_REQUESTS
                    : refused                ? HTTP_FORBIDDEN
                                             : HTTP_BAD_REQUEST;
        ap_rprintf(r, "%s heartbeat: %s\n", refused ? "refused" : "malformed",
                   hm_reason_str(reason));
        return OK;
    }
    ap_set_content_type(r, "text/plain");
    ap_rputs("OK\n", r);
    return OK;
}

static const char *hm_counter_names[] = {
    "accepted",      "inserted",   "replaced",    "full",           "expired",
    "malformed",     "rejected",   "unsigned",    "badsig",         "replay",
    "clock_skew",    "notallowed", "ratelimited", "storage_writes", "storage_errors",
    "state_changes", "identity",   "unbound",     "per_address"};
/* A counter added to hm_table.h without a name here fails the build. */
typedef char hm_counter_names_complete
    [sizeof(hm_counter_names) / sizeof(hm_counter_names[0]) == HM_CTR_COUNT ? 1 : -1];

/* One consistent-enough picture of the table for a page: every entry is a
 * seqlocked copy, so rows are never torn, though rows may be from slightly
 * different moments. */
typedef struct {
    apr_time_t now;
    unsigned int capacity, count;
    uint64_t counters[HM_CTR_COUNT];
    apr_array_header_t *entries; /* hm_entry_t */
    hm_reject_t rejects[HM_REJECTS];
    unsigned int nrejects;
    hm_reject_t outside[HM_REJECTS]; /* from outside HeartbeatAllow */
    unsigned int noutside;
    hm_limited_t limited[HM_LIMITED];
    unsigned int nlimited;
} hm_snapshot_t;

static hm_snapshot_t *hm_snapshot(apr_pool_t *p, const hm_table_t *t)
{
    hm_snapshot_t *sn = apr_pcalloc(p, sizeof(*sn));
    unsigned int i;
    int c;

    sn->now = apr_time_now();
    sn->capacity = hm_table_capacity(t);
    sn->count = hm_table_count(t);
    for (c = 0; c < HM_CTR_COUNT; c++) {
        sn->counters[c] = hm_table_counter(t, (hm_counter_e)c);
    }
    sn->entries = apr_array_make(p, (int)sn->count + 1, sizeof(hm_entry_t));
    for (i = 0; i < sn->capacity; i++) {
        hm_entry_t e;
        if (hm_table_get(t, i, &e)) {
            *(hm_entry_t *)apr_array_push(sn->entries) = e;
        }
    }
    sn->nrejects = hm_table_rejects(t, sn->rejects, HM_REJECTS);
    sn->noutside = hm_table_rejects_outside(t, sn->outside, HM_REJECTS);
    sn->nlimited = hm_table_limited(t, sn->limited, HM_LIMITED);
    return sn;
}

/* The newest rejection from an entry's address, if the ring still has one. */
static const hm_reject_t *hm_last_error(const hm_snapshot_t *sn, const hm_entry_t *e)
{
    unsigned int i;

    for (i = 0; i < sn->nrejects; i++) {
        const hm_reject_t *r = &sn->rejects[i];
        if (r->src.family == e->key.family &&
            !memcmp(r->src.addr, e->key.addr, e->key.family == 4 ? 4 : 16)) {
            return r;
        }
    }
    return NULL;
}

/* The members of this server's heartbeat balancers, when
 * mod_lbmethod_heartbeat is loaded: their ejection state is the
 * balancer's, shown here so that operators find it beside the table. */
static apr_array_header_t *hm_members(request_rec *r)
{
    APR_OPTIONAL_FN_TYPE(lbhb_member_status) *fn = APR_RETRIEVE_OPTIONAL_FN(lbhb_member_status);

    return fn ? fn(r->pool, r->server) : NULL;
}

/* A JSON string's contents: names come from the configuration, which may
 * hold quotes or backslashes. */
static const char *hm_json_str(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) * 6 + 1), *o = out;

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += apr_snprintf(o, 7, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

static void hm_members_json(request_rec *r, const apr_array_header_t *ms, apr_time_t now)
{
    int i;

    ap_rputs(",\"members\":[", r);
    for (i = 0; ms && i < ms->nelts; i++) {
        const lbhb_member_status_t *m = &APR_ARRAY_IDX(ms, i, lbhb_member_status_t);
        ap_rprintf(r,
                   "%s{\"balancer\":\"%s\",\"member\":\"%s\",\"ejected\":%s,"
                   "\"ejected_for_ms\":%" APR_INT64_T_FMT ",\"ejections\":%u,"
                   "\"failure_rate\":%.3f,\"load_reports\":%" APR_UINT64_T_FMT
                   ",\"load_ignored\":%" APR_UINT64_T_FMT ",\"load\":",
                   i ? "," : "", hm_json_str(r->pool, m->balancer), hm_json_str(r->pool, m->member),
                   m->ejected ? "true" : "false", m->ejected ? (m->until - now) / 1000 : 0,
                   m->ejections, m->failure_rate, m->load_reports, m->load_ignored);
        if (m->load_at) {
            ap_rprintf(r, "{\"ready\":%u,\"busy\":%u,\"age_ms\":%" APR_INT64_T_FMT "}}",
                       m->load_ready, m->load_busy, (now - m->load_at) / 1000);
        } else {
            ap_rputs("null}", r);
        }
    }
    ap_rputs("]", r);
}

/* The JSON head both ?json and ?counters start with, up to the counters'
 * closing brace. */
static void hm_json_head(request_rec *r, unsigned int capacity, unsigned int count,
                         const uint64_t *counters)
{
    const hm_conf_t *conf = hm_conf(r->server);
    int c;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r,
               "{\"capacity\":%u,\"count\":%u,\"huge_page_kb\":%" APR_SIZE_T_FMT ",\"counters\":{",
               capacity, count, conf->huge_page / 1024);
    for (c = 0; c < HM_CTR_COUNT; c++) {
        ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, c ? "," : "", hm_counter_names[c],
                   counters[c]);
    }
    ap_rputs("}", r);
}

static void hm_rejects_json(request_rec *r, const char *name, const hm_reject_t *rj, unsigned int n,
                            apr_time_t now)
{
    unsigned int i;

    ap_rprintf(r, ",\"%s\":[", name);
    for (i = 0; i < n; i++) {
        char ip[HM_IP_MAX];
        hm_addr_to_string(&rj[i].src, ip);
        ap_rprintf(r, "%s{\"ip\":\"%s\",\"reason\":\"%s\",\"age_ms\":%" APR_INT64_T_FMT "}",
                   i ? "," : "", ip, hm_reason_str(rj[i].reason), (now - rj[i].when) / 1000);
    }
    ap_rputs("]", r);
}

static void hm_status_json(request_rec *r, const hm_snapshot_t *sn)
{
    int i;

    hm_json_head(r, sn->capacity, sn->count, sn->counters);
    ap_rputs(",\"servers\":[", r);
    for (i = 0; i < sn->entries->nelts; i++) {
        const hm_entry_t *e = &APR_ARRAY_IDX(sn->entries, i, hm_entry_t);
        const hm_reject_t *last = hm_last_error(sn, e);
        ap_rprintf(r,
                   "%s{\"ip\":\"%s\",\"port\":%u,\"port_known\":%s,\"ready\":%u,"
                   "\"busy\":%u,\"state\":\"%s\",\"age_ms\":%" APR_INT64_T_FMT
                   ",\"interval_ms\":%u,\"seq\":%" APR_UINT64_T_FMT
                   ",\"packets\":%" APR_UINT64_T_FMT ",\"via\":\"%s\",\"signed\":%s,"
                   "\"last_error\":",
                   i ? "," : "", e->ip, (unsigned)e->key.port,
                   (e->flags & HM_ENTRY_PORT_KNOWN) ? "true" : "false", e->ready, e->busy,
                   hb_state_str((hb_state_e)e->state), (sn->now - e->seen) / 1000, e->interval_ms,
                   e->seq, e->packets, (e->flags & HM_ENTRY_VIA_HTTP) ? "http" : "udp",
                   (e->flags & HM_ENTRY_AUTH) ? "true" : "false");
        if (last) {
            ap_rprintf(r, "{\"reason\":\"%s\",\"age_ms\":%" APR_INT64_T_FMT "}}",
                       hm_reason_str(last->reason), (sn->now - last->when) / 1000);
        } else {
            ap_rputs("null}", r);
        }
    }
    ap_rputs("]", r);
    hm_members_json(r, hm_members(r), sn->now);
    hm_rejects_json(r, "rejections", sn->rejects, sn->nrejects, sn->now);
    hm_rejects_json(r, "rejections_outside", sn->outside, sn->noutside, sn->now);
    ap_rputs(",\"ratelimited\":[", r);
    for (i = 0; i < (int)sn->nlimited; i++) {
        char ip[HM_IP_MAX];
        hm_addr_to_string(&sn->limited[i].src, ip);
        ap_rprintf(
            r,
            "%s{\"ip\":\"%s\",\"dropped\":%" APR_UINT64_T_FMT ",\"age_ms\":%" APR_INT64_T_FMT "}",
            i ? "," : "", ip, sn->limited[i].dropped, (sn->now - sn->limited[i].when) / 1000);
    }
    ap_rputs("]}\n", r);
}

/* Counters only, read straight from the table: a monitoring system polling
 * every few seconds should not copy and format thousands of entries. */
static void hm_status_counters(request_rec *r, const hm_table_t *t)
{
    uint64_t counters[HM_CTR_COUNT];
    int c;

    for (c = 0; c < HM_CTR_COUNT; c++) {
        counters[c] = hm_table_counter(t, (hm_counter_e)c);
    }
    hm_json_head(r, hm_table_capacity(t), hm_table_count(t), counters);
    ap_rputs("}\n", r);
}

static void hm_status_auto(request_rec *r, const hm_snapshot_t *sn, const char *prefix)
{
    apr_array_header_t *ms;
    int i, c;

    ap_rprintf(r, "%sCapacity: %u\n%sCount: %u\n%sHugePageKB: %" APR_SIZE_T_FMT "\n", prefix,
               sn->capacity, prefix, sn->count, prefix, hm_conf(r->server)->huge_page / 1024);
    for (c = 0; c < HM_CTR_COUNT; c++) {
        ap_rprintf(r, "%sCounter%s: %" APR_UINT64_T_FMT "\n", prefix, hm_counter_names[c],
                   sn->counters[c]);
    }
    for (i = 0; i < sn->entries->nelts; i++) {
        const hm_entry_t *e = &APR_ARRAY_IDX(sn->entries, i, hm_entry_t);
        ap_rprintf(r, "%sServer: %s %u ready=%u busy=%u state=%s age_ms=%" APR_INT64_T_FMT "\n",
                   prefix, e->ip, (unsigned)e->key.port, e->ready, e->busy,
                   hb_state_str((hb_state_e)e->state), (sn->now - e->seen) / 1000);
    }
    ms = hm_members(r);
    for (i = 0; ms && i < ms->nelts; i++) {
        const lbhb_member_status_t *m = &APR_ARRAY_IDX(ms, i, lbhb_member_status_t);
        /* Names without spaces or newlines, as each line is "Key: words". */
        ap_rprintf(r,
                   "%sMember: %s %s ejected=%d ejections=%u failure_rate=%.3f "
                   "load_reports=%" APR_UINT64_T_FMT " load_ignored=%" APR_UINT64_T_FMT "\n",
                   prefix, ap_escape_uri(r->pool, m->balancer), ap_escape_uri(r->pool, m->member),
                   m->ejected, m->ejections, m->failure_rate, m->load_reports, m->load_ignored);
    }
    for (i = 0; i < (int)sn->nlimited; i++) {
        char ip[HM_IP_MAX];
        hm_addr_to_string(&sn->limited[i].src, ip);
        ap_rprintf(r,
                   "%sRateLimited: %s dropped=%" APR_UINT64_T_FMT " age_ms=%" APR_INT64_T_FMT "\n",
                   prefix, ip, sn->limited[i].dropped, (sn->now - sn->limited[i].when) / 1000);
    }
}

static void hm_members_html(request_rec *r, const apr_array_header_t *ms, apr_time_t now,
                            const char *h)
{
    int i;

    if (!ms || !ms->nelts) {
        return;
    }
    ap_rprintf(r,
               "<%s>Balancer members</%s>\n<table class=\"hb\"><tr><th>Balancer</th>"
               "<th>Member</th><th>Ejected (s left)</th><th>Ejections in a row</th>"
               "<th>Recent failures</th></tr>\n",
               h, h);
    for (i = 0; i < ms->nelts; i++) {
        const lbhb_member_status_t *m = &APR_ARRAY_IDX(ms, i, lbhb_member_status_t);
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%u</td><td>%.0f%%</td></tr>\n",
                   ap_escape_html(r->pool, m->balancer), ap_escape_html(r->pool, m->member),
                   m->ejected
                       ? apr_psprintf(r->pool, "<b>yes</b> (%.0f)", (double)(m->until - now) / 1e6)
                       : "no",
                   m->ejections, m->failure_rate * 100);
    }
    ap_rputs("</table>\n", r);
}

static void hm_rejects_html(request_rec *r, const char *h, const char *title, const hm_reject_t *rj,
                            unsigned int n, apr_time_t now)
{
    unsigned int i;

    ap_rprintf(r, "<%s>%s</%s>\n", h, title, h);
    if (!n) {
        ap_rputs("<p>None.</p>\n", r);
        return;
    }
    ap_rputs("<table class=\"hb\"><tr><th>Source</th><th>Reason</th><th>Age (s)</th></tr>\n", r);
    for (i = 0; i < n; i++) {
        char ip[HM_IP_MAX];
        hm_addr_to_string(&rj[i].src, ip);
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%.1f</td></tr>\n", ap_escape_html(r->pool, ip),
                   ap_escape_html(r->pool, hm_reason_str(rj[i].reason)),
                   (double)(now - rj[i].when) / 1e6);
    }
    ap_rputs("</table>\n", r);
}

static void hm_status_html_body(request_rec *r, const hm_snapshot_t *sn, const char *h)
{
    int i, c;

    ap_rprintf(r, "<p>%u of %u slots used.</p>\n", sn->count, sn->capacity);
    ap_rputs("<table class=\"hb\"><tr><th>Address</th><th>Port</th><th>Ready</th><th>Busy</th>"
             "<th>State</th><th>Age (s)</th><th>Interval (ms)</th><th>Packets</th>"
             "<th>Via</th><th>Signed</th><th>Last error</th></tr>\n",
             r);
    for (i = 0; i < sn->entries->nelts; i++) {
        const hm_entry_t *e = &APR_ARRAY_IDX(sn->entries, i, hm_entry_t);
        const hm_reject_t *last = hm_last_error(sn, e);
        ap_rprintf(r,
                   "<tr><td>%s</td><td>%u%s</td><td>%u</td><td>%u</td><td>%s</td>"
                   "<td>%.1f</td><td>%u</td><td>%" APR_UINT64_T_FMT "</td><td>%s</td><td>%s</td>"
                   "<td>",
                   ap_escape_html(r->pool, e->ip), (unsigned)e->key.port,
                   (e->flags & HM_ENTRY_PORT_KNOWN) ? "" : " (default)", e->ready, e->busy,
                   hb_state_str((hb_state_e)e->state), (double)(sn->now - e->seen) / 1e6,
                   e->interval_ms, e->packets, (e->flags & HM_ENTRY_VIA_HTTP) ? "HTTP" : "UDP",
                   (e->flags & HM_ENTRY_AUTH) ? "yes" : "<b>no</b>");
        if (last) {
            ap_rprintf(r, "%s, %.0fs ago", hm_reason_str(last->reason),
                       (double)(sn->now - last->when) / 1e6);
        }
        ap_rputs("</td></tr>\n", r);
    }
    ap_rputs("</table>\n", r);
    hm_members_html(r, hm_members(r), sn->now, h);
    ap_rprintf(r, "<%s>Counters</%s>\n<table class=\"hb\">\n", h, h);
    for (c = 0; c < HM_CTR_COUNT; c++) {
        ap_rprintf(r, "<tr><th>%s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n", hm_counter_names[c],
                   sn->counters[c]);
    }
    ap_rputs("</table>\n", r);
    hm_rejects_html(r, h, "Recent rejections", sn->rejects, sn->nrejects, sn->now);
    hm_rejects_html(r, h, "Recent rejections from outside HeartbeatAllow", sn->outside,
                    sn->noutside, sn->now);
    ap_rprintf(r, "<%s>Sources over HeartbeatRateLimit</%s>\n", h, h);
    if (!sn->nlimited) {
        ap_rputs("<p>None.</p>\n", r);
        return;
    }
    ap_rputs("<table class=\"hb\"><tr><th>Source</th><th>Dropped</th><th>Last drop (s ago)</th>"
             "</tr>\n",
             r);
    for (i = 0; i < (int)sn->nlimited; i++) {
        char ip[HM_IP_MAX];
        hm_addr_to_string(&sn->limited[i].src, ip);
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%.1f</td></tr>\n",
                   ap_escape_html(r->pool, ip), sn->limited[i].dropped,
                   (double)(sn->now - sn->limited[i].when) / 1e6);
    }
    ap_rputs("</table>\n", r);
}

static void hm_status_html(request_rec *r, const hm_snapshot_t *sn)
{
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs("<!DOCTYPE html>\n<html><head><title>Heartbeat monitor</title>"
             "<style>table.hb{border-collapse:collapse}table.hb td,table.hb th{border:1px solid "
             "#999;padding:2px 8px;text-align:right}table.hb th{background:#eee}</style></head>"
             "<body>\n<h1>Heartbeat monitor</h1>\n",
             r);
    hm_status_html_body(r, sn, "h2");
    ap_rputs("</body></html>\n", r);
}

/* A section in mod_status's /server-status, when mod_status is loaded. */
static int hm_server_status(request_rec *r, int flags)
{
    hm_conf_t *conf = hm_conf(r->server);
    hm_snapshot_t *sn;

    if (!conf->table) {
        return OK;
    }
    sn = hm_snapshot(r->pool, conf->table);
    if (flags & AP_STATUS_SHORT) {
        hm_status_auto(r, sn, "Heartbeat");
    } else {
        ap_rputs("<hr />\n<h2>Heartbeat monitor</h2>\n", r);
        hm_status_html_body(r, sn, "h3");
    }
    return OK;
}

void hm_register_status_hook(void)
{
    APR_OPTIONAL_HOOK(ap, status_hook, hm_server_status, NULL, NULL, APR_HOOK_MIDDLE);
}

static int hm_status_handler(request_rec *r)
{
    hm_conf_t *conf = hm_conf(r->server);
    hm_snapshot_t *sn;

    r->allowed = AP_METHOD_BIT << M_GET;
    ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!conf->table) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    if (r->args && !strcmp(r->args, "counters")) {
        hm_status_counters(r, conf->table);
        return OK;
    }
    sn = hm_snapshot(r->pool, conf->table);
    if (r->args && !strcmp(r->args, "json")) {
        hm_status_json(r, sn);
    } else if (r->args && !strcmp(r->args, "auto")) {
        ap_set_content_type(r, "text/plain");
        hm_status_auto(r, sn, "");
    } else {
        hm_status_html(r, sn);
    }
    return OK;
}

int hm_handler(request_rec *r)
{
    if (!r->handler) {
        return DECLINED;
    }
    if (!strcmp(r->handler, "heartbeat")) {
        return hm_post_handler(r);
    }
    if (!strcmp(r->handler, "heartbeat-status")) {
        return hm_status_handler(r);
    }
    return DECLINED;
}
