/*
 * hm_admit.c: admission of heartbeats into the monitor's table (see
 * hm_admit.h for the stages).
 */
#include <string.h>

#include "apr_strings.h"

#include "hb_throttle.h"
#include "hm_admit.h"

struct hm_admit {
    hm_admit_policy_t policy;
    hb_log_t log;
    hb_throttle_t bad_input; /* HM0202 */
    hb_throttle_t full;      /* HM0203 */
    hb_throttle_t per_addr;  /* HM0217 */
};

/* Every reason: the counter it goes to and its words. */
#define HM_RF_REFUSED 0x01u /* by policy: also HM_CTR_REJECTED; 403 for a POST */
#define HM_RF_QUIET   0x02u /* counted only: neither remembered nor logged */

static const struct {
    hm_counter_e counter;
    unsigned int flags;
    hb_status_e status; /* malformed: the parser's verdict, whose words are used */
    const char *text;   /* else these */
} hm_reasons[HM_REASON_COUNT] = {
    [HM_REASON_OK] = {HM_CTR_COUNT, 0, HB_OK, "ok"},
    [HM_REASON_EMPTY] = {HM_CTR_MALFORMED, 0, HB_E_EMPTY, NULL},
    [HM_REASON_TOOLONG] = {HM_CTR_MALFORMED, 0, HB_E_TOOLONG, NULL},
    [HM_REASON_SYNTAX] = {HM_CTR_MALFORMED, 0, HB_E_SYNTAX, NULL},
    [HM_REASON_NUMBER] = {HM_CTR_MALFORMED, 0, HB_E_NUMBER, NULL},
    [HM_REASON_RANGE] = {HM_CTR_MALFORMED, 0, HB_E_RANGE, NULL},
    [HM_REASON_MISSING] = {HM_CTR_MALFORMED, 0, HB_E_MISSING, NULL},
    [HM_REASON_VERSION] = {HM_CTR_MALFORMED, 0, HB_E_VERSION, NULL},
    [HM_REASON_DUPLICATE] = {HM_CTR_MALFORMED, 0, HB_E_DUPLICATE, NULL},
    [HM_REASON_STATE] = {HM_CTR_MALFORMED, 0, HB_E_STATE, NULL},
    [HM_REASON_UNSIGNED] = {HM_CTR_UNSIGNED, HM_RF_REFUSED, HB_OK, "unsigned"},
    [HM_REASON_BADSIG] = {HM_CTR_BADSIG, HM_RF_REFUSED, HB_OK, "bad signature"},
    [HM_REASON_REPLAY] = {HM_CTR_REPLAY, HM_RF_REFUSED, HB_OK, "replayed (sequence not newer)"},
    [HM_REASON_CLOCK] = {HM_CTR_CLOCK, HM_RF_REFUSED, HB_OK, "timestamp outside the window"},
    [HM_REASON_NOTALLOWED] = {HM_CTR_NOTALLOWED, HM_RF_REFUSED, HB_OK,
                              "source not in HeartbeatAllow"},
    [HM_REASON_RATE] = {HM_CTR_RATELIMITED, HM_RF_REFUSED | HM_RF_QUIET, HB_OK,
                        "over HeartbeatRateLimit"},
    /* Counted with the unsigned ones: it is an unsigned heartbeat where
     * only a signed one may speak. */
    [HM_REASON_DOWNGRADE] = {HM_CTR_UNSIGNED, HM_RF_REFUSED, HB_OK,
                             "unsigned update of a signed origin"},
    [HM_REASON_IDENTITY] = {HM_CTR_IDENTITY, HM_RF_REFUSED, HB_OK,
                            "signed addr= is not the source address"},
    [HM_REASON_UNBOUND] = {HM_CTR_UNBOUND, HM_RF_REFUSED, HB_OK,
                           "signed without addr= (an older sender: upgrade it, or accept "
                           "it as unsigned with HeartbeatAuthMode migrate)"},
};

hm_reason_e hm_reason_of_status(hb_status_e st)
{
    /* No default: a verdict added to hb_status_e without a reason here
     * fails the build (-Wswitch). */
    switch (st) {
    case HB_OK:
        return HM_REASON_OK;
    case HB_E_EMPTY:
        return HM_REASON_EMPTY;
    case HB_E_TOOLONG:
        return HM_REASON_TOOLONG;
    case HB_E_SYNTAX:
        return HM_REASON_SYNTAX;
    case HB_E_NUMBER:
        return HM_REASON_NUMBER;
    case HB_E_RANGE:
        return HM_REASON_RANGE;
    case HB_E_MISSING:
        return HM_REASON_MISSING;
    case HB_E_VERSION:
        return HM_REASON_VERSION;
    case HB_E_DUPLICATE:
        return HM_REASON_DUPLICATE;
    case HB_E_STATE:
        return HM_REASON_STATE;
    }
    return HM_REASON_SYNTAX;
}

const char *hm_reason_str(uint32_t reason)
{
    if (reason >= HM_REASON_COUNT) {
        return "unknown reason";
    }
    return hm_reasons[reason].text ? hm_reasons[reason].text
                                   : hb_status_str(hm_reasons[reason].status);
}

int hm_reason_refused(hm_reason_e reason)
{
    return reason < HM_REASON_COUNT && (hm_reasons[reason].flags & HM_RF_REFUSED);
}

hm_counter_e hm_reason_counter(hm_reason_e reason)
{
    return reason < HM_REASON_COUNT ? hm_reasons[reason].counter : HM_CTR_COUNT;
}

hm_admit_t *hm_admit_create(apr_pool_t *p, const hm_admit_policy_t *policy, const hb_log_t *log)
{
    hm_admit_t *adm = apr_pcalloc(p, sizeof(*adm));

    adm->policy = *policy;
    if (log) {
        adm->log = *log;
    }
    if (policy->table) {
        /* Only signed entries leave tombstones, so the window is moot
         * without keys; the cap is for migrate mode, where unsigned
         * packets share the table with signed ones (without keys every
         * source address can be forged, and a cap would only stop
         * honest hosts). */
        hm_table_set_guard(policy->table, policy->nkeys ? policy->auth_window : 0,
                           policy->nkeys && policy->migrate ? policy->max_per_addr : 0);
    }
    return adm;
}

/* ------------------------------------------------------------ refusals */

void hm_admit_reject(hm_admit_t *adm, const apr_sockaddr_t *from, int via_http, hm_reason_e reason,
                     int64_t now)
{
    hm_table_t *t = adm->policy.table;
    const char *what = via_http ? "heartbeat POST" : "heartbeat packet";
    char ip[HM_IP_MAX];
    hm_addr_t src;
    uint64_t held;

    if (reason == HM_REASON_OK || reason >= HM_REASON_COUNT) {
        return;
    }
    if (hm_reasons[reason].flags & HM_RF_REFUSED) {
        hm_table_counter_add(t, HM_CTR_REJECTED, 1);
    }
    hm_table_counter_add(t, hm_reasons[reason].counter, 1);
    if (hm_addr_from_sockaddr(&src, &from->sa, 0) != 0) {
        return;
    }
    if (hm_reasons[reason].flags & HM_RF_QUIET) {
        if (reason == HM_REASON_RATE) {
            hm_table_note_limited(t, &src, now);
        }
        return;
    }
    if (reason == HM_REASON_NOTALLOWED) {
        hm_table_note_outside(t, &src, (uint32_t)reason, now);
    } else {
        hm_table_note_reject(t, &src, (uint32_t)reason, now);
    }
    apr_sockaddr_ip_getbuf(ip, sizeof(ip), (apr_sockaddr_t *)from);
    /* A flood of garbage costs a counter and at most one warning a minute. */
    hb_log(&adm->log, HB_LOG_DEBUG, HB_LOG_MARK, "HM0201: rejected %s from %s: %s", what, ip,
           hm_reason_str(reason));
    if (hb_throttle(&adm->bad_input, now, HB_REPORT_EVERY, &held)) {
        hb_log(&adm->log, HB_LOG_WARNING, HB_LOG_MARK,
               "HM0202: rejected %s from %s: %s (%" APR_UINT64_T_FMT
               " more rejected since the last report; next report in 60s at the earliest, "
               "all at LogLevel debug)",
               what, ip, hm_reason_str(reason), held);
    }
}

/* -------------------------------------------------------------- stages */

/* Stage 1, the source: HeartbeatAllow ... */
static int hm_admit_allowed(const hm_admit_t *adm, const apr_sockaddr_t *from)
{
    const hm_admit_policy_t *pol = &adm->policy;

    if (pol->nallow == 0) {
        return 1;
    }
    for (unsigned int i = 0; i < pol->nallow; i++) {
        if (apr_ipsubnet_test(pol->allow[i], (apr_sockaddr_t *)from)) {
            return 1;
        }
    }
    return 0;
}

/* ... and the rate cap: 1 if within. */
static int hm_admit_within_rate(hm_ratelimit_t *rl, const apr_sockaddr_t *from, int64_t now)
{
    hm_addr_t src;

    return rl == NULL || hm_addr_from_sockaddr(&src, &from->sa, 0) != 0 ||
           hm_ratelimit_allow(rl, &src, now);
}

/* Whether buf carries a signature (a check that costs nothing next to
 * verifying it). */
static int hm_admit_looks_signed(const char *buf, size_t len)
{
    static const char mark[] = "&sig=";

    for (size_t i = 0; i + sizeof(mark) - 1 <= len; i++) {
        if (buf[i] == '&' && memcmp(buf + i, mark, sizeof(mark) - 1) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Stage 2, the signature: on success *plen is the length of the signed
 * part (what stage 3 parses) and HM_ENTRY_AUTH is added to *flags. */
static hm_reason_e hm_admit_signature(const hm_admit_t *adm, const char *buf, size_t len,
                                      int64_t now, size_t *plen, uint32_t *flags)
{
    const hm_admit_policy_t *pol = &adm->policy;
    size_t slen = 0;
    hb_auth_e a;

    *plen = len;
    if (pol->nkeys == 0) {
        return HM_REASON_OK;
    }
    a = hb_auth_verify(pol->keys, pol->nkeys, buf, len, now / 1000, pol->auth_window / 1000, &slen,
                       NULL);
    switch (a) {
    case HB_AUTH_OK:
        *flags |= HM_ENTRY_AUTH;
        *plen = slen;
        return HM_REASON_OK;
    case HB_AUTH_UNSIGNED:
        return pol->migrate ? HM_REASON_OK : HM_REASON_UNSIGNED;
    case HB_AUTH_CLOCK:
        return HM_REASON_CLOCK;
    case HB_AUTH_MALFORMED:
    case HB_AUTH_UNKNOWN_KEY:
    case HB_AUTH_BADSIG:
        break;
    }
    return HM_REASON_BADSIG;
}

/* Stage 3 for a signed packet: does it speak for the address it came
 * from? */
static hm_reason_e hm_admit_identity(const hm_admit_t *adm, hm_pending_t *pd)
{
    hm_addr_t claimed, src;

    if (!(pd->pkt.flags & HB_HAS_ADDR)) {
        if (!adm->policy.migrate) {
            return HM_REASON_UNBOUND;
        }
        /* An older sender's: whoever holds the key may have sent it from
         * anywhere, so it proves no more than an unsigned one. */
        pd->flags &= ~HM_ENTRY_AUTH;
        return HM_REASON_OK;
    }
    if (hm_addr_from_string(&claimed, pd->pkt.addr, 0) != 0 ||
        hm_addr_from_sockaddr(&src, &pd->from->sa, 0) != 0 || !hm_addr_same_host(&claimed, &src)) {
        return HM_REASON_IDENTITY;
    }
    return HM_REASON_OK;
}

/* Stage 3, the content: parse, and the entry's key. */
static hm_reason_e hm_admit_content(const hm_admit_t *adm, const char *buf, size_t plen,
                                    hm_pending_t *pd)
{
    hb_status_e st = hb_packet_parse(buf, plen, &pd->pkt);
    hm_reason_e r;

    if (st == HB_OK && (pd->flags & HM_ENTRY_AUTH) && !(pd->pkt.flags & HB_HAS_SEQ)) {
        /* Without a sequence number a signed packet could be replayed. */
        st = HB_E_MISSING;
    }
    if (st == HB_OK && (pd->flags & HM_ENTRY_AUTH) &&
        (r = hm_admit_identity(adm, pd)) != HM_REASON_OK) {
        return r;
    }
    if (st == HB_OK &&
        hm_addr_from_sockaddr(&pd->key, &pd->from->sa,
                              (pd->pkt.flags & HB_HAS_PORT) ? pd->pkt.port : HM_DEFAULT_PORT)) {
        st = HB_E_SYNTAX;
    }
    if (st != HB_OK) {
        return hm_reason_of_status(st);
    }
    if (pd->pkt.flags & HB_HAS_PORT) {
        pd->flags |= HM_ENTRY_PORT_KNOWN;
    }
    if (pd->via_http) {
        pd->flags |= HM_ENTRY_VIA_HTTP;
    }
    return HM_REASON_OK;
}

hm_reason_e hm_admit_check(hm_admit_t *adm, hm_ratelimit_t *rl, const char *buf, size_t len,
                           const apr_sockaddr_t *from, int via_http, int64_t now, hm_pending_t *pd)
{
    hm_reason_e r = HM_REASON_OK;
    size_t plen = len;
    int verify_first;

    pd->now = now;
    pd->flags = 0;
    pd->from = from;
    pd->via_http = via_http;
    if (!hm_admit_allowed(adm, from)) {
        r = HM_REASON_NOTALLOWED;
    } else {
        verify_first = rl != NULL && adm->policy.nkeys > 0 && hm_admit_looks_signed(buf, len) &&
                       hm_ratelimit_budget(rl, now);
        if (!verify_first && !hm_admit_within_rate(rl, from, now)) {
            r = HM_REASON_RATE;
        } else {
            /* The whole datagram, signature included (hb_packet_parse
             * sees only the signed part). */
            r = len > HB_PACKET_MAX ? HM_REASON_TOOLONG
                                    : hm_admit_signature(adm, buf, len, now, &plen, &pd->flags);
            if (r == HM_REASON_OK) {
                r = hm_admit_content(adm, buf, plen, pd);
            }
            /* Checked first for free; refused, it pays like any other. */
            if (r != HM_REASON_OK && verify_first && !hm_admit_within_rate(rl, from, now)) {
                r = HM_REASON_RATE;
            }
        }
    }
    if (r != HM_REASON_OK) {
        hm_admit_reject(adm, from, via_http, r, now);
    }
    return r;
}

/* Stage 4, the table. */
hm_reason_e hm_admit_commit(hm_admit_t *adm, const hm_pending_t *pd)
{
    hm_update_e up = hm_table_update(adm->policy.table, &pd->key, &pd->pkt, pd->now,
                                     adm->policy.stale_after, pd->flags);
    hm_reason_e r = up == HM_UPD_REPLAY      ? HM_REASON_REPLAY
                    : up == HM_UPD_DOWNGRADE ? HM_REASON_DOWNGRADE
                                             : HM_REASON_OK;
    char ip[HM_IP_MAX];

    if (r != HM_REASON_OK) {
        hm_admit_reject(adm, pd->from, pd->via_http, r, pd->now);
    } else if (up == HM_UPD_PER_ADDRESS &&
               hb_throttle(&adm->per_addr, pd->now, HB_REPORT_EVERY, NULL)) {
        hm_addr_to_string(&pd->key, ip);
        hb_log(&adm->log, HB_LOG_WARNING, HB_LOG_MARK,
               "HM0217: unsigned heartbeat from new origin %s port %u dropped: that address "
               "already has HeartbeatMaxPerAddress (%u) unsigned origins in the table (further "
               "drops are counted on the status page as per_address)",
               ip, (unsigned int)pd->key.port, adm->policy.max_per_addr);
    } else if (up == HM_UPD_FULL && hb_throttle(&adm->full, pd->now, HB_REPORT_EVERY, NULL)) {
        hm_addr_to_string(&pd->key, ip);
        hb_log(&adm->log, HB_LOG_WARNING, HB_LOG_MARK,
               "HM0203: table full, heartbeat from new origin %s dropped: raise "
               "HeartbeatMaxServers (further drops are counted on the status page)",
               ip);
    }
    return r;
}

hm_reason_e hm_admit(hm_admit_t *adm, hm_ratelimit_t *rl, const char *buf, size_t len,
                     const apr_sockaddr_t *from, int via_http, int64_t now)
{
    hm_pending_t pd;
    hm_reason_e r = hm_admit_check(adm, rl, buf, len, from, via_http, now, &pd);

    return r == HM_REASON_OK ? hm_admit_commit(adm, &pd) : r;
}
