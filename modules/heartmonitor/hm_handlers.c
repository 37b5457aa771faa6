/*
 * hm_handlers.c: HTTP side of mod_heartmonitor.
 *  - SetHandler heartbeat: an origin POSTs the same body as its UDP packet;
 *    access is controlled with the ordinary Require directives.
 *  - SetHandler heartbeat-status: the table for operators, as HTML, or as
 *    JSON (?json) or mod_status-like key: value lines (?auto) for scripts,
 *    only the counters (?counters) for frequent polling, or the Prometheus
 *    text format (?prometheus, docs/monitoring.md).
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"

#include "apr_portable.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "mod_status.h"

#include <stddef.h>
#include <sys/socket.h>
#ifdef __linux__
#include <linux/sock_diag.h>
#endif

#include "hb_packet.h"
#include "hb_prom.h"
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
    "state_changes", "identity",   "unbound",     "per_address",    "receiver_starts"};
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
 * balancer's, shown here so that operators find it beside the table.
 * Those of the main server and every virtual host, whichever virtual host
 * serves the page: the table is the whole server's too. */
static apr_array_header_t *hm_members(request_rec *r)
{
    APR_OPTIONAL_FN_TYPE(lbhb_member_status) *fn = APR_RETRIEVE_OPTIONAL_FN(lbhb_member_status);

    return fn ? fn(r->pool, ap_server_conf) : NULL;
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
                   "%s{\"balancer\":\"%s\",\"member\":\"%s\",\"joined\":\"%s\",\"ejected\":%s,"
                   "\"ejected_for_ms\":%" APR_INT64_T_FMT ",\"ejections\":%u,"
                   "\"failure_rate\":%.3f,\"load_reports\":%" APR_UINT64_T_FMT
                   ",\"load_ignored\":%" APR_UINT64_T_FMT ",\"load\":",
                   i ? "," : "", hm_json_str(r->pool, m->balancer), hm_json_str(r->pool, m->member),
                   m->joined, m->ejected ? "true" : "false",
                   m->ejected ? (m->until - now) / 1000 : 0, m->ejections, m->failure_rate,
                   m->load_reports, m->load_ignored);
        if (m->load_at) {
            ap_rprintf(r, "{\"ready\":%u,\"busy\":%u,\"age_ms\":%" APR_INT64_T_FMT "}}",
                       m->load_ready, m->load_busy, (now - m->load_at) / 1000);
        } else {
            ap_rputs("null}", r);
        }
    }
    ap_rputs("]", r);
}

/* The balancers an origin announces (HeartbeatBalancer): the table keeps
 * a hash of each name, named here when it is one of this server's
 * balancers with HeartbeatJoin on. */
static const char *hm_join_name(request_rec *r, uint32_t hash)
{
    APR_OPTIONAL_FN_TYPE(lbhb_join_name) *fn = APR_RETRIEVE_OPTIONAL_FN(lbhb_join_name);
    const char *name = fn ? fn(hash) : NULL;

    return name ? name : apr_psprintf(r->pool, "#%08x", hash);
}

static const char *hm_join_json(request_rec *r, const hm_entry_t *e)
{
    const char *out = "[";
    uint32_t i;

    for (i = 0; i < e->join.n && i < HB_JOIN_MAX; i++) {
        const hb_join_t *j = &e->join.j[i];
        out = apr_psprintf(r->pool, "%s%s{\"balancer\":\"%s\",\"scheme\":\"%s\",\"port\":%u}", out,
                           i ? "," : "", hm_json_str(r->pool, hm_join_name(r, j->name_hash)),
                           hb_scheme_str((hb_scheme_e)j->scheme),
                           (unsigned)(j->port ? j->port : e->key.port));
    }
    return apr_pstrcat(r->pool, out, "]", NULL);
}

static void hm_balancers_json(request_rec *r)
{
    APR_OPTIONAL_FN_TYPE(lbhb_balancer_status) *fn = APR_RETRIEVE_OPTIONAL_FN(lbhb_balancer_status);
    apr_array_header_t *bs = fn ? fn(r->pool, ap_server_conf) : NULL;
    int i;

    ap_rputs(",\"balancers\":[", r);
    for (i = 0; bs && i < bs->nelts; i++) {
        const lbhb_balancer_status_t *b = &APR_ARRAY_IDX(bs, i, lbhb_balancer_status_t);
        ap_rprintf(r,
                   "%s{\"balancer\":\"%s\",\"picks_most\":%" APR_UINT64_T_FMT
                   ",\"picks_weighted\":%" APR_UINT64_T_FMT ",\"picks_p2c\":%" APR_UINT64_T_FMT
                   ",\"fallback\":%" APR_UINT64_T_FMT ",\"no_data\":%" APR_UINT64_T_FMT
                   ",\"join\":%s,\"joined\":%" APR_UINT64_T_FMT ",\"left\":%" APR_UINT64_T_FMT
                   ",\"join_full\":%" APR_UINT64_T_FMT "}",
                   i ? "," : "", hm_json_str(r->pool, b->balancer), b->picks_most,
                   b->picks_weighted, b->picks_p2c, b->fallback, b->no_data,
                   b->join ? "true" : "false", b->joined, b->left, b->join_full);
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
                   "\"join\":%s,\"last_error\":",
                   i ? "," : "", e->ip, (unsigned)e->key.port,
                   (e->flags & HM_ENTRY_PORT_KNOWN) ? "true" : "false", e->ready, e->busy,
                   hb_state_str((hb_state_e)e->state), (sn->now - e->seen) / 1000, e->interval_ms,
                   e->seq, e->packets, (e->flags & HM_ENTRY_VIA_HTTP) ? "http" : "udp",
                   (e->flags & HM_ENTRY_AUTH) ? "true" : "false", hm_join_json(r, e));
        if (last) {
            ap_rprintf(r, "{\"reason\":\"%s\",\"age_ms\":%" APR_INT64_T_FMT "}}",
                       hm_reason_str(last->reason), (sn->now - last->when) / 1000);
        } else {
            ap_rputs("null}", r);
        }
    }
    ap_rputs("]", r);
    hm_members_json(r, hm_members(r), sn->now);
    hm_balancers_json(r);
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

/* ------------------------------------------------------ ?prometheus */

/* Heartbeats not applied, by reason: the counters of hm_table.h that
 * count them, each packet in exactly one (HM_CTR_REJECTED is the sum of
 * the policy ones, so it is not among them). */
static const hm_counter_e hm_prom_reasons[] = {
    HM_CTR_MALFORMED,   HM_CTR_FULL,     HM_CTR_PER_ADDRESS, HM_CTR_UNSIGNED,
    HM_CTR_BADSIG,      HM_CTR_REPLAY,   HM_CTR_CLOCK,       HM_CTR_NOTALLOWED,
    HM_CTR_RATELIMITED, HM_CTR_IDENTITY, HM_CTR_UNBOUND};

/* The monitor's counters that are families of their own. */
static const struct {
    hm_counter_e counter;
    const char *name, *help;
} hm_prom_counters[] = {
    {HM_CTR_ACCEPTED, "heartbeat_monitor_packets_accepted_total",
     "Heartbeats applied to the table (UDP datagrams and HTTP POSTs)."},
    {HM_CTR_INSERTED, "heartbeat_monitor_origins_inserted_total",
     "Origins that got an entry in the table (new, or back after expiring)."},
    {HM_CTR_REPLACED, "heartbeat_monitor_origins_replaced_total",
     "Stale entries evicted from a full table for a new origin."},
    {HM_CTR_EXPIRED, "heartbeat_monitor_origins_expired_total",
     "Entries removed because their origin was silent for HeartbeatExpiry."},
    {HM_CTR_STATE_CHANGES, "heartbeat_monitor_state_changes_total",
     "Origins that appeared or changed state (up, drain, stopping)."},
    {HM_CTR_STORAGE_WRITES, "heartbeat_monitor_storage_writes_total",
     "Times the HeartbeatStorage file was written."},
    {HM_CTR_STORAGE_ERRORS, "heartbeat_monitor_storage_errors_total",
     "Times the HeartbeatStorage file could not be written (HM0207)."},
    {HM_CTR_RX_STARTS, "heartbeat_monitor_receiver_starts_total",
     "Times a receiver thread started: at start-up, after each restart, and when the child "
     "running it exited or crashed and another child took over (HM0211). It rises with "
     "restarts and child recycling; a rise without them means crashes."}};

static int hm_prom_flush(void *baton, const char *data, size_t len)
{
    return ap_rwrite(data, (int)len, baton) < 0 ? -1 : 0;
}

/* "ip:port", IPv6 in brackets, as an origin label. */
static const char *hm_prom_origin(apr_pool_t *p, const hm_entry_t *e)
{
    return apr_psprintf(p, e->key.family == 6 ? "[%s]:%u" : "%s:%u", e->ip, (unsigned)e->key.port);
}

/* What the kernel says about a HeartbeatListen socket: datagrams it
 * dropped (a full receive buffer: the receiver fell behind) and bytes
 * queued now. The sockets are the parent's, inherited by every child.
 * Returns 0 if the system cannot tell. */
static int hm_prom_socket(const hm_listen_t *l, apr_uint64_t *drops, apr_uint64_t *queued)
{
#if defined(SO_MEMINFO) && defined(__linux__)
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);
    apr_os_sock_t fd;

    if (!l->sock || apr_os_sock_get(&fd, l->sock) != APR_SUCCESS ||
        getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
        len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) {
        return 0;
    }
    *drops = mem[SK_MEMINFO_DROPS];
    *queued = mem[SK_MEMINFO_RMEM_ALLOC];
    return 1;
#else
    return 0;
#endif
}

/* The two families of hm_prom_socket: name, type, help. */
static const char *const hm_prom_socket_families[2][3] = {
    {"heartbeat_monitor_receive_drops_total", "counter",
     "Datagrams the kernel dropped on a HeartbeatListen socket, mostly because its receive "
     "buffer was full: the receiver fell behind."},
    {"heartbeat_monitor_receive_queue_bytes", "gauge",
     "Bytes waiting in a HeartbeatListen socket's receive buffer now."}};

static void hm_prom_monitor(hb_prom_t *w, request_rec *r, const hm_snapshot_t *sn)
{
    const hm_conf_t *conf = hm_conf(r->server);
    hb_prom_label_t l;
    unsigned int i;
    int k;

    for (i = 0; i < sizeof(hm_prom_counters) / sizeof(hm_prom_counters[0]); i++) {
        hb_prom_family(w, hm_prom_counters[i].name, "counter", hm_prom_counters[i].help);
        hb_prom_u64(w, NULL, 0, sn->counters[hm_prom_counters[i].counter]);
    }
    hb_prom_family(w, "heartbeat_monitor_packets_rejected_total", "counter",
                   "Heartbeats not applied, by reason (the status page's counters of the same "
                   "names; docs/troubleshooting.md says what each means).");
    l.name = "reason";
    for (i = 0; i < sizeof(hm_prom_reasons) / sizeof(hm_prom_reasons[0]); i++) {
        l.value = hm_counter_names[hm_prom_reasons[i]];
        hb_prom_u64(w, &l, 1, sn->counters[hm_prom_reasons[i]]);
    }
    hb_prom_family(w, "heartbeat_monitor_table_entries", "gauge", "Origins in the table now.");
    hb_prom_u64(w, NULL, 0, sn->count);
    hb_prom_family(w, "heartbeat_monitor_table_capacity", "gauge",
                   "Origins the table can hold (HeartbeatMaxServers).");
    hb_prom_u64(w, NULL, 0, sn->capacity);
    for (k = 0; k < 2; k++) {
        hb_prom_family(w, hm_prom_socket_families[k][0], hm_prom_socket_families[k][1],
                       hm_prom_socket_families[k][2]);
        l.name = "listen";
        for (i = 0; i < (unsigned int)conf->listens->nelts; i++) {
            const hm_listen_t *hl = &APR_ARRAY_IDX(conf->listens, i, hm_listen_t);
            apr_uint64_t drops, queued;
            if (hm_prom_socket(hl, &drops, &queued)) {
                l.value = hl->text;
                hb_prom_u64(w, &l, 1, k == 0 ? drops : queued);
            }
        }
    }
}

/* A value of a table row (an origin's entry, a member's status) that is a
 * metric family of its own: one sample per row, with the row's labels. */
typedef enum {
    HM_PF_U32,    /* uint32_t */
    HM_PF_UINT,   /* unsigned int */
    HM_PF_U64,    /* apr_uint64_t */
    HM_PF_BOOL,   /* int: 0 or 1 */
    HM_PF_FLAG,   /* uint32_t: 1 if the field's flag bit is set */
    HM_PF_MS,     /* uint32_t milliseconds, as seconds */
    HM_PF_DOUBLE, /* double */
} hm_pf_kind_e;

typedef struct {
    const char *name, *type, *help;
    size_t offset;
    hm_pf_kind_e kind;
    uint32_t flag;
} hm_prom_field_t;

/* Each field a family, its samples the rows' (n rows of size bytes; nl
 * labels a row in labels, row after row). */
static void hm_prom_fields(hb_prom_t *w, const hm_prom_field_t *fs, size_t nfs, const void *rows,
                           size_t size, int n, const hb_prom_label_t *labels, unsigned int nl)
{
    size_t f;
    int i;

    for (f = 0; f < nfs; f++) {
        hb_prom_family(w, fs[f].name, fs[f].type, fs[f].help);
        for (i = 0; i < n; i++) {
            const char *v = (const char *)rows + (size_t)i * size + fs[f].offset;
            const hb_prom_label_t *l = labels + (size_t)i * nl;
            switch (fs[f].kind) {
            case HM_PF_U32:
                hb_prom_u64(w, l, nl, *(const uint32_t *)v);
                break;
            case HM_PF_UINT:
                hb_prom_u64(w, l, nl, *(const unsigned int *)v);
                break;
            case HM_PF_U64:
                hb_prom_u64(w, l, nl, *(const apr_uint64_t *)v);
                break;
            case HM_PF_BOOL:
                hb_prom_u64(w, l, nl, *(const int *)v != 0);
                break;
            case HM_PF_FLAG:
                hb_prom_u64(w, l, nl, (*(const uint32_t *)v & fs[f].flag) != 0);
                break;
            case HM_PF_MS:
                hb_prom_double(w, l, nl, *(const uint32_t *)v / 1000.0);
                break;
            case HM_PF_DOUBLE:
                hb_prom_double(w, l, nl, *(const double *)v);
                break;
            }
        }
    }
}

#define HM_PF(name, type, help, row, field, kind, flag)                                            \
    {                                                                                              \
        name, type, help, offsetof(row, field), kind, flag                                         \
    }

static const hm_prom_field_t hm_prom_origin_fields[] = {
    HM_PF("heartbeat_origin_ready", "gauge",
          "Idle workers the origin reported in its last heartbeat.", hm_entry_t, ready, HM_PF_U32,
          0),
    HM_PF("heartbeat_origin_busy", "gauge",
          "Busy workers the origin reported in its last heartbeat.", hm_entry_t, busy, HM_PF_U32,
          0),
    HM_PF("heartbeat_origin_interval_seconds", "gauge",
          "The heartbeat interval the origin announced (int=); 0 if it did not say.", hm_entry_t,
          interval_ms, HM_PF_MS, 0),
    HM_PF("heartbeat_origin_packets_total", "counter",
          "Heartbeats applied to the origin's entry since the entry was made.", hm_entry_t, packets,
          HM_PF_U64, 0),
    HM_PF("heartbeat_origin_signed", "gauge",
          "1 if the origin's last heartbeat was signed with a valid HeartbeatSecret key, else 0.",
          hm_entry_t, flags, HM_PF_FLAG, HM_ENTRY_AUTH)};

static const hm_prom_field_t hm_prom_member_fields[] = {
    HM_PF("heartbeat_member_picked_total", "counter",
          "Requests mod_proxy_balancer sent to the member (its elected count, as "
          "balancer-manager shows it), by any pick: heartbeat, fallback or route.",
          lbhb_member_status_t, elected, HM_PF_U64, 0),
    HM_PF("heartbeat_member_in_flight", "gauge",
          "Requests in flight to the member now (mod_proxy's busy count), which the balancer "
          "subtracts from the member's last report.",
          lbhb_member_status_t, busy, HM_PF_U64, 0),
    HM_PF("heartbeat_member_ejected", "gauge",
          "1 while the member is out of rotation for failing (HeartbeatEject), else 0.",
          lbhb_member_status_t, ejected, HM_PF_BOOL, 0),
    HM_PF("heartbeat_member_ejections_total", "counter",
          "Times the member was ejected for failing (HeartbeatEject, LB0310).",
          lbhb_member_status_t, ejections_total, HM_PF_UINT, 0),
    HM_PF("heartbeat_member_ejections_in_a_row", "gauge",
          "Ejections without a success in between; each doubles the ejection time.",
          lbhb_member_status_t, ejections, HM_PF_UINT, 0),
    HM_PF("heartbeat_member_failure_ratio", "gauge",
          "The member's recent failures (5xx or no answer), 0 to 1, a moving average over about "
          "16 answers.",
          lbhb_member_status_t, failure_rate, HM_PF_DOUBLE, 0)};

static const hm_prom_field_t hm_prom_balancer_fields[] = {
    HM_PF("heartbeat_balancer_fallback_picks_total", "counter",
          "Members picked by rotation because none had fresh data and was up (HeartbeatFallback "
          "roundrobin; LB0304 says why).",
          lbhb_balancer_status_t, fallback, HM_PF_U64, 0),
    HM_PF("heartbeat_balancer_no_data_total", "counter",
          "Picks that found no member with fresh data that is up, nor one to rotate to with "
          "HeartbeatFallback roundrobin (LB0304): the request got 503.",
          lbhb_balancer_status_t, no_data, HM_PF_U64, 0),
    HM_PF("heartbeat_balancer_joined_total", "counter",
          "Origins that joined the balancer from their heartbeats, or came back to their slot "
          "(HeartbeatJoin; LB0315, LB0319).",
          lbhb_balancer_status_t, joined, HM_PF_U64, 0),
    HM_PF("heartbeat_balancer_left_total", "counter",
          "Joined members disabled for silence (HeartbeatJoinExpire; LB0317).",
          lbhb_balancer_status_t, left, HM_PF_U64, 0),
    HM_PF("heartbeat_balancer_join_refused_total", "counter",
          "Times an origin could not join: every slot taken (ProxySet growth; LB0316).",
          lbhb_balancer_status_t, join_full, HM_PF_U64, 0)};

#define HM_NELTS(a) (sizeof(a) / sizeof((a)[0]))

/* Per origin: the labels are made once, for every family. */
static void hm_prom_origins(hb_prom_t *w, request_rec *r, const hm_snapshot_t *sn)
{
    static const char *const states[] = {"up", "drain", "stopping"};
    const hm_entry_t *es = (const hm_entry_t *)sn->entries->elts;
    int n = sn->entries->nelts, i, f;
    hb_prom_label_t *ls = apr_palloc(r->pool, sizeof(*ls) * (n ? n : 1)), two[2];

    for (i = 0; i < n; i++) {
        ls[i].name = "origin";
        ls[i].value = hm_prom_origin(r->pool, &es[i]);
    }
    hm_prom_fields(w, hm_prom_origin_fields, HM_NELTS(hm_prom_origin_fields), es, sizeof(*es), n,
                   ls, 1);
    hb_prom_family(w, "heartbeat_origin_state", "gauge",
                   "The state the origin reported: 1 for its state, 0 for the others (up: "
                   "takes requests; drain: finishing, takes none; stopping: shutting down).");
    two[1].name = "state";
    for (i = 0; i < n; i++) {
        two[0] = ls[i];
        for (f = 0; f < 3; f++) {
            two[1].value = states[f];
            hb_prom_u64(w, two, 2, es[i].state == (uint32_t)f);
        }
    }
    hb_prom_family(w, "heartbeat_origin_report_age_seconds", "gauge",
                   "Seconds since the origin's last heartbeat was applied. An origin silent for "
                   "HeartbeatExpiry leaves the table (and this list).");
    for (i = 0; i < n; i++) {
        apr_time_t age = sn->now > es[i].seen ? sn->now - es[i].seen : 0;
        hb_prom_double(w, &ls[i], 1, (double)age / APR_USEC_PER_SEC);
    }
}

/* The balancers' members (mod_lbmethod_heartbeat). */
static void hm_prom_members(hb_prom_t *w, request_rec *r, const apr_array_header_t *ms)
{
    const lbhb_member_status_t *m = ms ? (const lbhb_member_status_t *)ms->elts : NULL;
    int n = ms ? ms->nelts : 0, i;
    /* Each member's balancer and member labels, and room for a third. */
    hb_prom_label_t *ls = apr_palloc(r->pool, sizeof(*ls) * 2 * (n ? n : 1)), three[3];

    for (i = 0; i < n; i++) {
        ls[2 * i].name = "balancer";
        ls[2 * i].value = m[i].balancer;
        ls[2 * i + 1].name = "member";
        ls[2 * i + 1].value = m[i].member;
    }
    hb_prom_family(w, "heartbeat_member_info", "gauge",
                   "1 for each member of a heartbeat balancer. joined says how it came into the "
                   "balancer: static (a BalancerMember line), joined (from its heartbeats, "
                   "HeartbeatJoin) or left (joined, then disabled when it fell silent).");
    three[2].name = "joined";
    for (i = 0; i < n; i++) {
        memcpy(three, &ls[2 * i], 2 * sizeof(*ls));
        three[2].value = m[i].joined;
        hb_prom_u64(w, three, 3, 1);
    }
    hm_prom_fields(w, hm_prom_member_fields, HM_NELTS(hm_prom_member_fields), m, sizeof(*m), n, ls,
                   2);
    hb_prom_family(w, "heartbeat_member_load_reports_total", "counter",
                   "Per-response load reports (HeartbeatResponseHeader) from the member: "
                   "result=taken were used, result=ignored refused (bad, unsigned, stale).");
    three[2].name = "result";
    for (i = 0; i < n; i++) {
        memcpy(three, &ls[2 * i], 2 * sizeof(*ls));
        three[2].value = "taken";
        hb_prom_u64(w, three, 3, m[i].load_reports);
        three[2].value = "ignored";
        hb_prom_u64(w, three, 3, m[i].load_ignored);
    }
}

static void hm_prom_balancers(hb_prom_t *w, request_rec *r)
{
    APR_OPTIONAL_FN_TYPE(lbhb_balancer_status) *fn = APR_RETRIEVE_OPTIONAL_FN(lbhb_balancer_status);
    const apr_array_header_t *bs = fn ? fn(r->pool, ap_server_conf) : NULL;
    const lbhb_balancer_status_t *b = bs ? (const lbhb_balancer_status_t *)bs->elts : NULL;
    hb_prom_label_t l[2] = {{"balancer", NULL}, {"mode", NULL}};
    hb_prom_label_t *ls = apr_palloc(r->pool, sizeof(*ls) * (bs && bs->nelts ? bs->nelts : 1));
    int i;

    hb_prom_family(w, "heartbeat_balancer_picks_total", "counter",
                   "Members picked from heartbeat data, by pick mode (HeartbeatPickMode).");
    for (i = 0; bs && i < bs->nelts; i++) {
        l[0].value = b[i].balancer;
        l[1].value = "most";
        hb_prom_u64(w, l, 2, b[i].picks_most);
        l[1].value = "weighted";
        hb_prom_u64(w, l, 2, b[i].picks_weighted);
        l[1].value = "p2c";
        hb_prom_u64(w, l, 2, b[i].picks_p2c);
    }
    for (i = 0; bs && i < bs->nelts; i++) {
        ls[i].name = "balancer";
        ls[i].value = b[i].balancer;
    }
    hm_prom_fields(w, hm_prom_balancer_fields, HM_NELTS(hm_prom_balancer_fields), b, sizeof(*b),
                   bs ? bs->nelts : 0, ls, 1);
}

/* Written as it goes, through a buffer of HM_PROM_BUF bytes: with 10,000
 * origins the text is megabytes, and is never held whole. */
#define HM_PROM_BUF 65536

static void hm_status_prometheus(request_rec *r, const hm_snapshot_t *sn)
{
    hb_prom_t w;

    ap_set_content_type(r, HB_PROM_CONTENT_TYPE);
    hb_prom_init(&w, apr_palloc(r->pool, HM_PROM_BUF), HM_PROM_BUF, hm_prom_flush, r);
    hm_prom_monitor(&w, r, sn);
    hm_prom_origins(&w, r, sn);
    hm_prom_members(&w, r, hm_members(r));
    hm_prom_balancers(&w, r);
    hb_prom_finish(&w);
}

/* ?prometheus, or ?prometheus= as Prometheus sends it from a scrape
 * configuration's params. */
static int hm_args_prometheus(const char *args)
{
    return args && (!strcmp(args, "prometheus") || !strncmp(args, "prometheus=", 11));
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
                   "%sMember: %s %s joined=%s ejected=%d ejections=%u failure_rate=%.3f "
                   "load_reports=%" APR_UINT64_T_FMT " load_ignored=%" APR_UINT64_T_FMT "\n",
                   prefix, ap_escape_uri(r->pool, m->balancer), ap_escape_uri(r->pool, m->member),
                   m->joined, m->ejected, m->ejections, m->failure_rate, m->load_reports,
                   m->load_ignored);
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
               "<th>Member</th><th>How</th><th>Ejected (s left)</th><th>Ejections in a row</th>"
               "<th>Recent failures</th></tr>\n",
               h, h);
    for (i = 0; i < ms->nelts; i++) {
        const lbhb_member_status_t *m = &APR_ARRAY_IDX(ms, i, lbhb_member_status_t);
        ap_rprintf(
            r, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%u</td><td>%.0f%%</td></tr>\n",
            ap_escape_html(r->pool, m->balancer), ap_escape_html(r->pool, m->member), m->joined,
            m->ejected ? apr_psprintf(r->pool, "<b>yes</b> (%.0f)", (double)(m->until - now) / 1e6)
                       : "no",
            m->ejections, m->failure_rate * 100);
    }
    ap_rputs("</table>\n", r);
}

/* Balancers that origins join (HeartbeatJoin): how many came and went,
 * and a line that stands out when one is full. */
static void hm_join_html(request_rec *r, const char *h)
{
    APR_OPTIONAL_FN_TYPE(lbhb_balancer_status) *fn = APR_RETRIEVE_OPTIONAL_FN(lbhb_balancer_status);
    apr_array_header_t *bs = fn ? fn(r->pool, ap_server_conf) : NULL;
    int i, any = 0;

    for (i = 0; bs && i < bs->nelts; i++) {
        const lbhb_balancer_status_t *b = &APR_ARRAY_IDX(bs, i, lbhb_balancer_status_t);
        if (!b->join) {
            continue;
        }
        if (!any++) {
            ap_rprintf(r,
                       "<%s>Balancers origins join</%s>\n<table class=\"hb\"><tr><th>Balancer</th>"
                       "<th>Joined</th><th>Left</th><th>Refused: full</th></tr>\n",
                       h, h);
        }
        ap_rprintf(r,
                   "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%s</td></tr>\n",
                   ap_escape_html(r->pool, b->balancer), b->joined, b->left,
                   b->join_full ? apr_psprintf(r->pool,
                                               "<b>%" APR_UINT64_T_FMT
                                               "</b> (every slot taken: raise ProxySet growth)",
                                               b->join_full)
                                : "0");
    }
    if (any) {
        ap_rputs("</table>\n", r);
    }
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
    hm_join_html(r, h);
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
    } else if (hm_args_prometheus(r->args)) {
        hm_status_prometheus(r, sn);
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
