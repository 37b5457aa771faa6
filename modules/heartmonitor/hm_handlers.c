/*
 * hm_handlers.c: HTTP side of mod_heartmonitor.
 *  - SetHandler heartbeat: an origin POSTs the same body as its UDP packet;
 *    access is controlled with the ordinary Require directives.
 *  - SetHandler heartbeat-status: the table for operators, as HTML, or as
 *    JSON (?json) or mod_status-like key: value lines (?auto) for scripts.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include "apr_strings.h"

#include "hb_packet.h"
#include "hm_private.h"

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
    int rc, st;

    r->allowed = AP_METHOD_BIT << M_POST;
    if (r->method_number != M_POST) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!conf->table) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    rc = hm_read_body(r, buf, sizeof(buf), &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        hm_table_counter_add(conf->table, HM_CTR_MALFORMED, 1);
        hm_log_bad_input(r->server, "heartbeat POST", r->useragent_ip, "body too large");
        return rc;
    }
    if (rc != OK) {
        return rc;
    }
    st = hm_apply(conf, buf, len, r->useragent_addr, 1, r->server);
    if (st != HB_OK) {
        ap_set_content_type(r, "text/plain");
        r->status = HTTP_BAD_REQUEST;
        ap_rprintf(r, "malformed heartbeat: %s\n", hb_status_str((hb_status_e)st));
        return OK;
    }
    ap_set_content_type(r, "text/plain");
    ap_rputs("OK\n", r);
    return OK;
}

static const char *hm_counter_names[HM_CTR_COUNT] = {"accepted", "inserted",  "replaced", "full",
                                                     "expired",  "malformed", "rejected"};

static void hm_status_json(request_rec *r, hm_conf_t *conf, apr_time_t now)
{
    hm_table_t *t = conf->table;
    unsigned int i, n = 0;
    int c;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"capacity\":%u,\"count\":%u,\"counters\":{", hm_table_capacity(t),
               hm_table_count(t));
    for (c = 0; c < HM_CTR_COUNT; c++) {
        ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, c ? "," : "", hm_counter_names[c],
                   hm_table_counter(t, (hm_counter_e)c));
    }
    ap_rputs("},\"servers\":[", r);
    for (i = 0; i < hm_table_capacity(t); i++) {
        hm_entry_t e;
        if (!hm_table_get(t, i, &e)) {
            continue;
        }
        ap_rprintf(r,
                   "%s{\"ip\":\"%s\",\"port\":%u,\"port_known\":%s,\"ready\":%u,\"busy\":%u,"
                   "\"state\":\"%s\",\"age_ms\":%" APR_INT64_T_FMT ",\"interval_ms\":%u,"
                   "\"seq\":%" APR_UINT64_T_FMT ",\"packets\":%" APR_UINT64_T_FMT
                   ",\"via\":\"%s\"}",
                   n++ ? "," : "", e.ip, (unsigned)e.key.port,
                   (e.flags & HM_ENTRY_PORT_KNOWN) ? "true" : "false", e.ready, e.busy,
                   hb_state_str((hb_state_e)e.state), (now - e.seen) / 1000, e.interval_ms, e.seq,
                   e.packets, (e.flags & HM_ENTRY_VIA_HTTP) ? "http" : "udp");
    }
    ap_rputs("]}\n", r);
}

static void hm_status_auto(request_rec *r, hm_conf_t *conf, apr_time_t now)
{
    hm_table_t *t = conf->table;
    unsigned int i;
    int c;

    ap_set_content_type(r, "text/plain");
    ap_rprintf(r, "Capacity: %u\nCount: %u\n", hm_table_capacity(t), hm_table_count(t));
    for (c = 0; c < HM_CTR_COUNT; c++) {
        ap_rprintf(r, "Counter%s: %" APR_UINT64_T_FMT "\n", hm_counter_names[c],
                   hm_table_counter(t, (hm_counter_e)c));
    }
    for (i = 0; i < hm_table_capacity(t); i++) {
        hm_entry_t e;
        if (!hm_table_get(t, i, &e)) {
            continue;
        }
        ap_rprintf(r, "Server: %s %u ready=%u busy=%u state=%s age_ms=%" APR_INT64_T_FMT "\n", e.ip,
                   (unsigned)e.key.port, e.ready, e.busy, hb_state_str((hb_state_e)e.state),
                   (now - e.seen) / 1000);
    }
}

static void hm_status_html(request_rec *r, hm_conf_t *conf, apr_time_t now)
{
    hm_table_t *t = conf->table;
    unsigned int i;
    int c;

    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs("<!DOCTYPE html>\n<html><head><title>Heartbeat monitor</title>"
             "<style>table{border-collapse:collapse}td,th{border:1px solid #999;"
             "padding:2px 8px;text-align:right}th{background:#eee}</style></head><body>\n"
             "<h1>Heartbeat monitor</h1>\n",
             r);
    ap_rprintf(r, "<p>%u of %u slots used.</p>\n", hm_table_count(t), hm_table_capacity(t));
    ap_rputs("<table><tr><th>Address</th><th>Port</th><th>Ready</th><th>Busy</th>"
             "<th>State</th><th>Age (s)</th><th>Interval (ms)</th><th>Packets</th>"
             "<th>Via</th></tr>\n",
             r);
    for (i = 0; i < hm_table_capacity(t); i++) {
        hm_entry_t e;
        if (!hm_table_get(t, i, &e)) {
            continue;
        }
        ap_rprintf(r,
                   "<tr><td>%s</td><td>%u%s</td><td>%u</td><td>%u</td><td>%s</td>"
                   "<td>%.1f</td><td>%u</td><td>%" APR_UINT64_T_FMT "</td><td>%s</td></tr>\n",
                   ap_escape_html(r->pool, e.ip), (unsigned)e.key.port,
                   (e.flags & HM_ENTRY_PORT_KNOWN) ? "" : " (default)", e.ready, e.busy,
                   hb_state_str((hb_state_e)e.state), (double)(now - e.seen) / 1e6, e.interval_ms,
                   e.packets, (e.flags & HM_ENTRY_VIA_HTTP) ? "HTTP" : "UDP");
    }
    ap_rputs("</table>\n<h2>Counters</h2>\n<table>\n", r);
    for (c = 0; c < HM_CTR_COUNT; c++) {
        ap_rprintf(r, "<tr><th>%s</th><td>%" APR_UINT64_T_FMT "</td></tr>\n", hm_counter_names[c],
                   hm_table_counter(t, (hm_counter_e)c));
    }
    ap_rputs("</table>\n</body></html>\n", r);
}

static int hm_status_handler(request_rec *r)
{
    hm_conf_t *conf = hm_conf(r->server);
    apr_time_t now = apr_time_now();

    r->allowed = (AP_METHOD_BIT << M_GET);
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
    if (r->args && !strcmp(r->args, "json")) {
        hm_status_json(r, conf, now);
    } else if (r->args && !strcmp(r->args, "auto")) {
        hm_status_auto(r, conf, now);
    } else {
        hm_status_html(r, conf, now);
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
