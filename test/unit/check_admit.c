/*
 * check_admit.c: unit tests for hm_admit (whether a heartbeat gets into the
 * monitor's table; what is counted, remembered and logged when not).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_network_io.h"
#include "apr_pools.h"

#include "hb_auth.h"
#include "hb_log.h"
#include "hb_packet.h"
#include "hm_admit.h"
#include "hm_ratelimit.h"
#include "hm_table.h"

#include "check_main.h"

#define SEC INT64_C(1000000)
#define NOW (INT64_C(1796000000) * SEC)

/* ---- fixture: a pool, a table of CAP slots, a log that records */

#define CAP       4
#define LOG_LINES 16

static apr_pool_t *pool;
static hm_table_t *table;
static void *table_mem;
static hm_admit_policy_t policy;
static hb_secret_t key, rogue;

static struct {
    hb_log_level_e level;
    char text[512];
} lines[LOG_LINES];
static unsigned int nlines;

static void record(void *baton, hb_log_level_e level, const char *file, int line, const char *fmt,
                   va_list ap)
{
    ck_assert_ptr_eq(baton, &nlines);
    ck_assert_ptr_nonnull(file);
    ck_assert_int_gt(line, 0);
    ck_assert_uint_lt(nlines, LOG_LINES);
    lines[nlines].level = level;
    vsnprintf(lines[nlines].text, sizeof(lines[nlines].text), fmt, ap);
    nlines++;
}

static const hb_log_t recorder = {record, &nlines};

static void setup(void)
{
    size_t size = hm_table_size(CAP);

    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
    table_mem = malloc(size);
    ck_assert_ptr_nonnull(table_mem);
    table = hm_table_create(table_mem, size, CAP);
    ck_assert_ptr_nonnull(table);
    memset(&policy, 0, sizeof(policy));
    policy.table = table;
    policy.stale_after = 10 * SEC;
    policy.auth_window = 30 * SEC;
    ck_assert_int_eq(hb_secret_set(&key, "k1", (const unsigned char *)"0123456789abcdef0123", 20),
                     0);
    ck_assert_int_eq(
        hb_secret_set(&rogue, "k1", (const unsigned char *)"another-secret-key-material", 27), 0);
    memset(lines, 0, sizeof(lines));
    nlines = 0;
}

static void teardown(void)
{
    free(table_mem);
    apr_pool_destroy(pool);
}

static hm_admit_t *admit(void)
{
    return hm_admit_create(pool, &policy, &recorder);
}

/* Heartbeats must be signed with key (migrate: or be unsigned). */
static hm_admit_t *admit_keyed(int migrate)
{
    policy.keys = &key;
    policy.nkeys = 1;
    policy.migrate = migrate;
    return admit();
}

/* The client address as httpd or the receiver has it. */
static apr_sockaddr_t *from(const char *ip)
{
    apr_sockaddr_t *sa = NULL;

    /* The family named: with APR_UNSPEC, getaddrinfo may refuse IPv6 on a
     * host without an IPv6 address of its own. */
    ck_assert_int_eq(
        apr_sockaddr_info_get(&sa, ip, strchr(ip, ':') ? APR_INET6 : APR_INET, 40000, 0, pool),
        APR_SUCCESS);
    return sa;
}

static hm_reason_e udp(hm_admit_t *adm, hm_ratelimit_t *rl, const char *ip, const char *body,
                       int64_t now)
{
    return hm_admit(adm, rl, body, strlen(body), from(ip), 0, now);
}

static hm_reason_e post(hm_admit_t *adm, const char *ip, const char *body, int64_t now)
{
    return hm_admit(adm, NULL, body, strlen(body), from(ip), 1, now);
}

/* body signed with k at ts (ms), into buf. */
static const char *sign(char *buf, size_t cap, const hb_secret_t *k, const char *body, int64_t ts)
{
    size_t n;

    ck_assert_uint_lt(strlen(body), cap);
    strcpy(buf, body);
    n = hb_auth_sign(k, buf, strlen(body), cap, ts);
    ck_assert_uint_gt(n, strlen(body));
    return buf;
}

static int entry(const char *ip, uint16_t port, hm_entry_t *e)
{
    hm_addr_t k;

    ck_assert_int_eq(hm_addr_from_string(&k, ip, port), 0);
    return hm_table_find(table, &k, e) >= 0;
}

static uint64_t ctr(hm_counter_e c)
{
    return hm_table_counter(table, c);
}

/* Entries in the ring of recent rejections. */
static unsigned int noted(void)
{
    hm_reject_t rj[HM_REJECTS];

    return hm_table_rejects(table, rj, HM_REJECTS);
}

static unsigned int noted_outside(void)
{
    hm_reject_t rj[HM_REJECTS];

    return hm_table_rejects_outside(table, rj, HM_REJECTS);
}

static const char *ip_of(const hm_addr_t *a)
{
    static char ip[HM_IP_MAX];

    hm_addr_to_string(a, ip);
    return ip;
}

/* ---- the reasons */

START_TEST(test_reason_table)
{
    unsigned int r, q;

    ck_assert_str_eq(hm_reason_str(HM_REASON_OK), "ok");
    ck_assert_int_eq(hm_reason_refused(HM_REASON_OK), 0);
    for (r = 1; r < HM_REASON_COUNT; r++) {
        const char *text = hm_reason_str(r);
        hm_counter_e c = hm_reason_counter((hm_reason_e)r);

        ck_assert_msg(text && *text && strcmp(text, "unknown reason") != 0, "reason %u: no words",
                      r);
        ck_assert_msg(c < HM_CTR_COUNT, "reason %u: no counter", r);
        /* Malformed input, or a refusal with a counter of its own. */
        ck_assert_int_eq(hm_reason_refused((hm_reason_e)r), c != HM_CTR_MALFORMED);
        ck_assert(c != HM_CTR_REJECTED && c != HM_CTR_ACCEPTED);
        for (q = 1; q < r; q++) {
            ck_assert_msg(strcmp(text, hm_reason_str(q)) != 0, "reasons %u and %u: same words", q,
                          r);
        }
    }
    ck_assert_str_eq(hm_reason_str(HM_REASON_COUNT), "unknown reason");
    ck_assert_str_eq(hm_reason_str(UINT32_MAX), "unknown reason");
    ck_assert_int_eq(hm_reason_refused(HM_REASON_COUNT), 0);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_COUNT), HM_CTR_COUNT);

    /* Every verdict of the parser is a malformed reason, in its words. */
    ck_assert_int_eq(hm_reason_of_status(HB_OK), HM_REASON_OK);
    for (r = HB_E_EMPTY; r <= HB_E_STATE; r++) {
        hm_reason_e m = hm_reason_of_status((hb_status_e)r);
        ck_assert_int_ne(m, HM_REASON_OK);
        ck_assert(!hm_reason_refused(m));
        ck_assert_str_eq(hm_reason_str(m), hb_status_str((hb_status_e)r));
    }

    /* The policy counters, as the status page names them. */
    ck_assert_int_eq(hm_reason_counter(HM_REASON_UNSIGNED), HM_CTR_UNSIGNED);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_DOWNGRADE), HM_CTR_UNSIGNED);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_BADSIG), HM_CTR_BADSIG);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_REPLAY), HM_CTR_REPLAY);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_CLOCK), HM_CTR_CLOCK);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_NOTALLOWED), HM_CTR_NOTALLOWED);
    ck_assert_int_eq(hm_reason_counter(HM_REASON_RATE), HM_CTR_RATELIMITED);
    ck_assert_str_eq(hm_reason_str(HM_REASON_RATE), "over HeartbeatRateLimit");
    ck_assert_str_eq(hm_reason_str(HM_REASON_NOTALLOWED), "source not in HeartbeatAllow");
}
END_TEST

/* ---- accepted */

START_TEST(test_accepted)
{
    hm_admit_t *adm = admit();
    hm_entry_t e;

    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", "v=1&ready=5&busy=1&port=8080", NOW), HM_REASON_OK);
    ck_assert(entry("10.0.0.1", 8080, &e));
    ck_assert_uint_eq(e.ready, 5);
    ck_assert_uint_eq(e.flags, HM_ENTRY_PORT_KNOWN);
    ck_assert_int_eq(e.seen, NOW);

    /* By POST: marked so; no port= means the stock default. */
    ck_assert_int_eq(post(adm, "10.0.0.2", "v=1&ready=3&busy=0", NOW + 1), HM_REASON_OK);
    ck_assert(entry("10.0.0.2", HM_DEFAULT_PORT, &e));
    ck_assert_uint_eq(e.flags, HM_ENTRY_VIA_HTTP);

    /* An IPv4-mapped source is the same origin as its IPv4 form. */
    ck_assert_int_eq(udp(adm, NULL, "::ffff:10.0.0.1", "v=1&ready=6&busy=0&port=8080", NOW + 2),
                     HM_REASON_OK);
    ck_assert(entry("10.0.0.1", 8080, &e));
    ck_assert_uint_eq(e.ready, 6);

    ck_assert_uint_eq(ctr(HM_CTR_ACCEPTED), 3);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED) + ctr(HM_CTR_REJECTED), 0);
    ck_assert_uint_eq(noted(), 0);
    ck_assert_uint_eq(nlines, 0);
}
END_TEST

/* Stages 1 to 3 leave the table alone; stage 4 applies. */
START_TEST(test_check_then_commit)
{
    hm_admit_t *adm = admit();
    const char *b1 = "v=1&ready=1&busy=0&port=1", *b2 = "v=1&ready=2&busy=0&port=2";
    apr_sockaddr_t *sa = from("10.0.0.1");
    hm_pending_t p1, p2;

    ck_assert_int_eq(hm_admit_check(adm, NULL, b1, strlen(b1), sa, 0, NOW, &p1), HM_REASON_OK);
    ck_assert_int_eq(hm_admit_check(adm, NULL, b2, strlen(b2), sa, 0, NOW + 1, &p2), HM_REASON_OK);
    ck_assert_uint_eq(hm_table_count(table), 0);
    ck_assert_uint_eq(ctr(HM_CTR_ACCEPTED), 0);
    ck_assert_uint_eq(p1.key.port, 1);
    ck_assert_uint_eq(p2.key.port, 2);
    ck_assert_ptr_eq(p1.from, sa);
    ck_assert_int_eq(hm_admit_commit(adm, &p1), HM_REASON_OK);
    ck_assert_int_eq(hm_admit_commit(adm, &p2), HM_REASON_OK);
    ck_assert_uint_eq(hm_table_count(table), 2);
    ck_assert(entry("10.0.0.1", 2, NULL));
}
END_TEST

/* ---- malformed, and how refusals are reported */

START_TEST(test_malformed_reported)
{
    hm_admit_t *adm = admit();
    hm_reject_t rj[HM_REJECTS];

    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", "v=2&ready=1&busy=1", NOW), HM_REASON_VERSION);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 1);
    ck_assert_uint_eq(ctr(HM_CTR_REJECTED), 0);
    ck_assert_uint_eq(hm_table_count(table), 0);
    ck_assert_uint_eq(hm_table_rejects(table, rj, HM_REJECTS), 1);
    ck_assert_uint_eq(rj[0].reason, HM_REASON_VERSION);
    ck_assert_int_eq(rj[0].when, NOW);
    ck_assert_uint_eq(rj[0].src.port, 0);

    /* Every one at debug; the first as a warning too. */
    ck_assert_uint_eq(nlines, 2);
    ck_assert_int_eq(lines[0].level, HB_LOG_DEBUG);
    ck_assert_str_eq(lines[0].text,
                     "HM0201: rejected heartbeat packet from 10.0.0.1: unsupported version");
    ck_assert_int_eq(lines[1].level, HB_LOG_WARNING);
    ck_assert_msg(strstr(lines[1].text, "HM0202: rejected heartbeat packet from 10.0.0.1: "
                                        "unsupported version (0 more rejected since the last "
                                        "report; next report in 60s") == lines[1].text,
                  "%s", lines[1].text);

    /* Within the minute: debug only. */
    ck_assert_int_eq(post(adm, "2001:db8::1", "v=1&ready=x&busy=1", NOW + 59 * SEC),
                     HM_REASON_NUMBER);
    ck_assert_int_eq(udp(adm, NULL, "::ffff:10.0.0.9", "", NOW + 59 * SEC), HM_REASON_EMPTY);
    ck_assert_uint_eq(nlines, 4);
    ck_assert_str_eq(lines[2].text,
                     "HM0201: rejected heartbeat POST from 2001:db8::1: malformed number");
    /* A mapped address is shown in its IPv4 form. */
    ck_assert_str_eq(lines[3].text,
                     "HM0201: rejected heartbeat packet from 10.0.0.9: empty packet");
    /* A minute after the last warning: one more, with what it stands for. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", "v=1", NOW + 60 * SEC), HM_REASON_MISSING);
    ck_assert_uint_eq(nlines, 6);
    ck_assert_int_eq(lines[5].level, HB_LOG_WARNING);
    ck_assert_msg(strstr(lines[5].text, "required field missing (2 more rejected") != NULL, "%s",
                  lines[5].text);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 4);
    ck_assert_uint_eq(hm_table_rejects(table, rj, HM_REJECTS), 4);
    ck_assert_uint_eq(rj[0].reason, HM_REASON_MISSING);
}
END_TEST

/* Refused before the stages: a POST body over HB_PACKET_MAX. */
START_TEST(test_reject_direct)
{
    hm_admit_t *adm = admit();

    hm_admit_reject(adm, from("10.0.0.1"), 1, HM_REASON_TOOLONG, NOW);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 1);
    ck_assert_uint_eq(noted(), 1);
    ck_assert_uint_eq(nlines, 2);
    ck_assert_str_eq(lines[0].text,
                     "HM0201: rejected heartbeat POST from 10.0.0.1: packet too long");
    /* Not a refusal at all: nothing happens. */
    hm_admit_reject(adm, from("10.0.0.1"), 1, HM_REASON_OK, NOW);
    hm_admit_reject(adm, from("10.0.0.1"), 1, HM_REASON_COUNT, NOW);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED) + ctr(HM_CTR_REJECTED), 1);
    ck_assert_uint_eq(nlines, 2);
}
END_TEST

START_TEST(test_silent_log)
{
    hm_admit_t *adm = hm_admit_create(pool, &policy, NULL);

    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", "garbage", NOW), HM_REASON_SYNTAX);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 1);
    ck_assert_uint_eq(nlines, 0);
}
END_TEST

/* ---- stage 1: the source */

START_TEST(test_allow)
{
    apr_ipsubnet_t *nets[2];
    hm_admit_t *adm;

    ck_assert_int_eq(apr_ipsubnet_create(&nets[0], "10.0.0.0", "8", pool), APR_SUCCESS);
    ck_assert_int_eq(apr_ipsubnet_create(&nets[1], "2001:db8::", "32", pool), APR_SUCCESS);
    policy.allow = nets;
    policy.nallow = 2;
    adm = admit();

    ck_assert_int_eq(udp(adm, NULL, "10.1.2.3", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    ck_assert_int_eq(udp(adm, NULL, "2001:db8::5", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    ck_assert_int_eq(udp(adm, NULL, "::ffff:10.0.0.5", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    /* Outside: refused before parsing, even garbage. */
    ck_assert_int_eq(udp(adm, NULL, "192.0.2.1", "garbage", NOW), HM_REASON_NOTALLOWED);
    ck_assert_int_eq(udp(adm, NULL, "2001:db9::1", "v=1&ready=1&busy=0", NOW),
                     HM_REASON_NOTALLOWED);
    ck_assert_uint_eq(ctr(HM_CTR_NOTALLOWED), 2);
    ck_assert_uint_eq(ctr(HM_CTR_REJECTED), 2);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 0);
    /* Remembered apart: anyone can send these, and they must not wash
     * the real origins' refusals out of the ring. */
    ck_assert_uint_eq(noted(), 0);
    ck_assert_uint_eq(noted_outside(), 2);
    ck_assert_str_eq(lines[0].text,
                     "HM0201: rejected heartbeat packet from 192.0.2.1: source not in "
                     "HeartbeatAllow");
    /* POSTs too, by their connection's peer. */
    ck_assert_int_eq(post(adm, "192.0.2.1", "v=1&ready=1&busy=0", NOW), HM_REASON_NOTALLOWED);
    ck_assert_int_eq(post(adm, "10.9.9.9", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    ck_assert_uint_eq(noted_outside(), 3);
    ck_assert_uint_eq(hm_table_count(table), 4);
}
END_TEST

START_TEST(test_rate)
{
    void *mem = malloc(hm_ratelimit_size(16));
    hm_ratelimit_t *rl = hm_ratelimit_init(mem, 16, 1, 2);
    hm_admit_t *adm = admit();
    int i;

    ck_assert_ptr_nonnull(rl);
    ck_assert_int_eq(udp(adm, rl, "10.0.0.1", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    ck_assert_int_eq(udp(adm, rl, "10.0.0.1", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    /* Over the burst, garbage or not: counted, and nothing else. */
    ck_assert_int_eq(udp(adm, rl, "10.0.0.1", "v=1&ready=1&busy=0", NOW), HM_REASON_RATE);
    ck_assert_int_eq(udp(adm, rl, "::ffff:10.0.0.1", "garbage", NOW), HM_REASON_RATE);
    ck_assert_uint_eq(ctr(HM_CTR_RATELIMITED), 2);
    ck_assert_uint_eq(ctr(HM_CTR_REJECTED), 2);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 0);
    ck_assert_uint_eq(noted(), 0);
    ck_assert_uint_eq(nlines, 0);
    /* Another source has its own bucket; a second later there is room. */
    ck_assert_int_eq(udp(adm, rl, "10.0.0.2", "v=1&ready=1&busy=0", NOW), HM_REASON_OK);
    ck_assert_int_eq(udp(adm, rl, "10.0.0.1", "v=1&ready=1&busy=0", NOW + SEC), HM_REASON_OK);
    /* POSTs are capped by the limiter they are given, like datagrams. */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(
            hm_admit(adm, rl, "v=1&ready=1&busy=0", 18, from("10.0.0.3"), 1, NOW + SEC),
            i < 2 ? HM_REASON_OK : HM_REASON_RATE);
    }
    /* Each source over the cap is listed with what it lost. */
    {
        hm_limited_t lim[HM_LIMITED];
        ck_assert_uint_eq(hm_table_limited(table, lim, HM_LIMITED), 2);
        ck_assert_str_eq(ip_of(&lim[0].src), "10.0.0.3");
        ck_assert_uint_eq(lim[0].dropped, 1);
        ck_assert_int_eq(lim[0].when, NOW + SEC);
        ck_assert_str_eq(ip_of(&lim[1].src), "10.0.0.1");
        ck_assert_uint_eq(lim[1].dropped, 2);
    }
    free(mem);
}
END_TEST

/* ---- stage 2: the signature */

START_TEST(test_signature_required)
{
    char buf[HB_PACKET_MAX + 1];
    const char *body = "v=1&ready=5&busy=1&port=80&seq=7&addr=10.0.0.1";
    hm_admit_t *adm;
    hm_entry_t e;

    adm = admit_keyed(0);

    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", body, NOW), HM_REASON_UNSIGNED);
    ck_assert_int_eq(post(adm, "10.0.0.1", sign(buf, sizeof(buf), &rogue, body, NOW / 1000), NOW),
                     HM_REASON_BADSIG);
    ck_assert_int_eq(post(adm, "10.0.0.1", "v=1&ready=5&busy=1&sig=xyz", NOW), HM_REASON_BADSIG);
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.1", sign(buf, sizeof(buf), &key, body, NOW / 1000 - 31000), NOW),
        HM_REASON_CLOCK);
    /* Signed, but no seq=: could be replayed. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1",
                         sign(buf, sizeof(buf), &key, "v=1&ready=5&busy=1&port=80", NOW / 1000),
                         NOW),
                     HM_REASON_MISSING);
    ck_assert_uint_eq(ctr(HM_CTR_UNSIGNED), 1);
    ck_assert_uint_eq(ctr(HM_CTR_BADSIG), 2);
    ck_assert_uint_eq(ctr(HM_CTR_CLOCK), 1);
    ck_assert_uint_eq(ctr(HM_CTR_REJECTED), 4);
    ck_assert_uint_eq(ctr(HM_CTR_MALFORMED), 1);
    ck_assert_uint_eq(hm_table_count(table), 0);

    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.1", sign(buf, sizeof(buf), &key, body, NOW / 1000 + 29000), NOW),
        HM_REASON_OK);
    ck_assert(entry("10.0.0.1", 80, &e));
    ck_assert_uint_eq(e.flags, HM_ENTRY_PORT_KNOWN | HM_ENTRY_AUTH);
    ck_assert_uint_eq(e.seq, 7);
}
END_TEST

START_TEST(test_signature_migrate)
{
    char buf[HB_PACKET_MAX + 1];
    hm_admit_t *adm;
    hm_entry_t e;

    adm = admit_keyed(1);

    /* Unsigned is accepted, and shown as such; a bad signature is not. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", "v=1&ready=5&busy=1&port=80", NOW), HM_REASON_OK);
    ck_assert(entry("10.0.0.1", 80, &e));
    ck_assert_uint_eq(e.flags & HM_ENTRY_AUTH, 0);
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.2",
                         sign(buf, sizeof(buf), &rogue, "v=1&ready=5&busy=1&seq=1", NOW / 1000),
                         NOW),
                     HM_REASON_BADSIG);
}
END_TEST

/* ---- stage 4: the table */

START_TEST(test_replay_and_downgrade)
{
    char buf[HB_PACKET_MAX + 1];
    hm_admit_t *adm;
    hm_reject_t rj[HM_REJECTS];
    hm_entry_t e;

    adm = admit_keyed(1);

    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1",
                         sign(buf, sizeof(buf), &key,
                              "v=1&ready=5&busy=1&port=80&seq=5&addr=10.0.0.1", NOW / 1000),
                         NOW),
                     HM_REASON_OK);
    /* The same sequence number again: replayed. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1",
                         sign(buf, sizeof(buf), &key,
                              "v=1&ready=9&busy=1&port=80&seq=5&addr=10.0.0.1", NOW / 1000 + 1),
                         NOW + 1000),
                     HM_REASON_REPLAY);
    /* Unsigned, for an origin that signed: not any more. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", "v=1&ready=9&busy=1&port=80", NOW + 2000),
                     HM_REASON_DOWNGRADE);
    ck_assert(entry("10.0.0.1", 80, &e));
    ck_assert_uint_eq(e.ready, 5);
    ck_assert_uint_eq(ctr(HM_CTR_REPLAY), 1);
    ck_assert_uint_eq(ctr(HM_CTR_UNSIGNED), 1);
    ck_assert_uint_eq(ctr(HM_CTR_REJECTED), 2);
    ck_assert_uint_eq(ctr(HM_CTR_ACCEPTED), 1);
    ck_assert_uint_eq(hm_table_rejects(table, rj, HM_REJECTS), 2);
    ck_assert_uint_eq(rj[0].reason, HM_REASON_DOWNGRADE);
    ck_assert_int_eq(rj[0].when, NOW + 2000);
    ck_assert_uint_eq(rj[1].reason, HM_REASON_REPLAY);
    ck_assert_str_eq(lines[0].text, "HM0201: rejected heartbeat packet from 10.0.0.1: replayed "
                                    "(sequence not newer)");
    ck_assert_str_eq(lines[2].text, "HM0201: rejected heartbeat packet from 10.0.0.1: unsigned "
                                    "update of a signed origin");
}
END_TEST

/* A new origin turned away by a full table: no rejection, counted as
 * full, logged at most once a minute. */
START_TEST(test_full)
{
    char body[64];
    hm_admit_t *adm = admit();
    int i;

    for (i = 0; i < CAP; i++) {
        snprintf(body, sizeof(body), "v=1&ready=1&busy=0&port=%d", i + 1);
        ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", body, NOW), HM_REASON_OK);
    }
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.2", "v=1&ready=1&busy=0", NOW + SEC), HM_REASON_OK);
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.3", "v=1&ready=1&busy=0", NOW + 2 * SEC), HM_REASON_OK);
    ck_assert_uint_eq(ctr(HM_CTR_FULL), 2);
    ck_assert_uint_eq(ctr(HM_CTR_REJECTED) + ctr(HM_CTR_MALFORMED), 0);
    ck_assert_uint_eq(noted(), 0);
    ck_assert_uint_eq(nlines, 1);
    ck_assert_int_eq(lines[0].level, HB_LOG_WARNING);
    ck_assert_msg(strstr(lines[0].text,
                         "HM0203: table full, heartbeat from new origin 10.0.0.2 dropped: "
                         "raise HeartbeatMaxServers") == lines[0].text,
                  "%s", lines[0].text);
    /* Once the oldest is stale, a new origin takes its place. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.4", "v=1&ready=1&busy=0", NOW + 11 * SEC),
                     HM_REASON_OK);
    ck_assert(entry("10.0.0.4", HM_DEFAULT_PORT, NULL));
    ck_assert_uint_eq(ctr(HM_CTR_REPLACED), 1);
}
END_TEST

/* ---- identity: which origin a signed packet speaks for */

/* Signed body + "&seq=N&addr=A" (A NULL: no addr=) at now. */
static const char *signed_at(char *buf, size_t cap, const hb_secret_t *k, const char *fields,
                             uint64_t seq, const char *addr, int64_t now)
{
    char body[256];

    if (addr) {
        snprintf(body, sizeof(body), "%s&seq=%llu&addr=%s", fields, (unsigned long long)seq, addr);
    } else {
        snprintf(body, sizeof(body), "%s&seq=%llu", fields, (unsigned long long)seq);
    }
    return sign(buf, cap, k, body, now / 1000);
}

START_TEST(test_identity)
{
    char buf[HB_PACKET_MAX + 1];
    hm_admit_t *adm;
    hm_entry_t e;

    adm = admit_keyed(0);

    /* Origin A's genuine packet, sent again from B's address. */
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.2",
            signed_at(buf, sizeof(buf), &key, "v=1&ready=90&busy=0&port=80", 100, "10.0.0.1", NOW),
            NOW),
        HM_REASON_IDENTITY);
    ck_assert_int_eq(post(adm, "10.0.0.3", buf, NOW), HM_REASON_IDENTITY);
    ck_assert_uint_eq(ctr(HM_CTR_IDENTITY), 2);
    ck_assert_uint_eq(hm_table_count(table), 0);
    /* From its own address it is fine, IPv4-mapped or not. */
    ck_assert_int_eq(udp(adm, NULL, "::ffff:10.0.0.1", buf, NOW), HM_REASON_OK);
    ck_assert(entry("10.0.0.1", 80, &e));
    ck_assert_uint_eq(e.flags & HM_ENTRY_AUTH, HM_ENTRY_AUTH);
    ck_assert_int_eq(udp(adm, NULL, "2001:db8::7",
                         signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1,
                                   "2001:db8:0:0::7", NOW),
                         NOW),
                     HM_REASON_OK);
    /* Garbage in addr= is no address. */
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.1",
            signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=81", 1, "10.0.0.1x", NOW),
            NOW) != HM_REASON_OK,
        1);
    /* An older sender's signed packet without addr=: refused, and says so. */
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.4",
            signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1, NULL, NOW), NOW),
        HM_REASON_UNBOUND);
    ck_assert_uint_eq(ctr(HM_CTR_UNBOUND), 1);
    ck_assert_ptr_nonnull(strstr(lines[nlines - 1].text, "signed without addr="));
    ck_assert_ptr_nonnull(strstr(lines[nlines - 1].text, "HeartbeatAuthMode migrate"));
}
END_TEST

START_TEST(test_unbound_migrate)
{
    char buf[HB_PACKET_MAX + 1];
    hm_admit_t *adm;
    hm_entry_t e;

    adm = admit_keyed(1);

    /* Taken, but as unsigned: it proves no origin. */
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.4",
            signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1, NULL, NOW), NOW),
        HM_REASON_OK);
    ck_assert(entry("10.0.0.4", 80, &e));
    ck_assert_uint_eq(e.flags & HM_ENTRY_AUTH, 0);
    /* So it cannot speak for an origin that signs with addr=. */
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.1",
            signed_at(buf, sizeof(buf), &key, "v=1&ready=5&busy=0&port=80", 10, "10.0.0.1", NOW),
            NOW),
        HM_REASON_OK);
    ck_assert_int_eq(
        udp(adm, NULL, "10.0.0.1",
            signed_at(buf, sizeof(buf), &key, "v=1&ready=0&busy=0&port=80", 11, NULL, NOW), NOW),
        HM_REASON_DOWNGRADE);
    ck_assert(entry("10.0.0.1", 80, &e));
    ck_assert_uint_eq(e.ready, 5);
}
END_TEST

/* Forgeries from an origin's address must not starve its genuine
 * packets; they pay for their own refusals. */
START_TEST(test_verified_not_starved)
{
    void *mem = malloc(hm_ratelimit_size(16));
    hm_ratelimit_t *rl = hm_ratelimit_init(mem, 16, 1, 2);
    char buf[HB_PACKET_MAX + 1];
    hm_admit_t *adm;
    hm_entry_t e;
    int i;

    adm = admit_keyed(0);
    for (i = 0; i < 50; i++) {
        hm_reason_e r = udp(adm, rl, "10.0.0.1", "x", NOW);
        /* The burst's two are parsed (and refused as malformed). */
        if (i < 2) {
            ck_assert(r != HM_REASON_OK && r != HM_REASON_RATE);
        } else {
            ck_assert_int_eq(r, HM_REASON_RATE);
        }
    }
    ck_assert_uint_eq(ctr(HM_CTR_RATELIMITED), 48);
    for (i = 0; i < 20; i++) {
        ck_assert_int_eq(udp(adm, rl, "10.0.0.1",
                             signed_at(buf, sizeof(buf), &key, "v=1&ready=5&busy=0&port=80",
                                       (uint64_t)i + 1, "10.0.0.1", NOW),
                             NOW),
                         HM_REASON_OK);
        /* A forged signature from the same address: over the cap. */
        ck_assert_int_eq(udp(adm, rl, "10.0.0.1",
                             signed_at(buf, sizeof(buf), &rogue, "v=1&ready=99&busy=0&port=80",
                                       (uint64_t)i + 1000, "10.0.0.1", NOW),
                             NOW),
                         HM_REASON_RATE);
    }
    ck_assert(entry("10.0.0.1", 80, &e));
    ck_assert_uint_eq(e.seq, 20);
    ck_assert_uint_eq(e.packets, 20);
    free(mem);
}
END_TEST

/* An expired signed origin's own old packet does not bring it back. */
START_TEST(test_tombstone)
{
    char old[HB_PACKET_MAX + 1], buf[HB_PACKET_MAX + 1];
    hm_admit_t *adm;

    adm = admit_keyed(0);
    signed_at(old, sizeof(old), &key, "v=1&ready=80&busy=0&port=80", 5, "10.0.0.1", NOW);
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", old, NOW), HM_REASON_OK);
    ck_assert_uint_eq(hm_table_expire(table, NOW + 11 * SEC, 10 * SEC), 1);
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1", old, NOW + 11 * SEC), HM_REASON_REPLAY);
    ck_assert_uint_eq(hm_table_count(table), 0);
    /* Its next genuine packet is welcome. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.0.1",
                         signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 6,
                                   "10.0.0.1", NOW + 11 * SEC),
                         NOW + 11 * SEC),
                     HM_REASON_OK);
}
END_TEST

/* Migrate mode: unsigned never displaces signed; signed displaces
 * unsigned; one address holds at most max_per_addr unsigned entries. */
START_TEST(test_table_guard)
{
    char buf[HB_PACKET_MAX + 1], body[64];
    hm_admit_t *adm;
    int i;

    policy.max_per_addr = 2;
    adm = admit_keyed(1);
    for (i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), "v=1&ready=1&busy=0&port=%d", i + 1);
        ck_assert_int_eq(udp(adm, NULL, "10.0.0.5", body, NOW), HM_REASON_OK);
    }
    ck_assert_uint_eq(hm_table_count(table), 2);
    ck_assert_uint_eq(ctr(HM_CTR_PER_ADDRESS), 1);
    ck_assert_ptr_nonnull(strstr(lines[nlines - 1].text, "HM0217"));
    ck_assert_ptr_nonnull(strstr(lines[nlines - 1].text, "HeartbeatMaxPerAddress"));
    /* Fill the table with signed origins... */
    for (i = 0; hm_table_count(table) < CAP; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.1.%d", i + 1);
        ck_assert_int_eq(
            udp(adm, NULL, ip,
                signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1, ip, NOW), NOW),
            HM_REASON_OK);
    }
    /* ... then one more displaces a fresh unsigned entry ... */
    ck_assert_int_eq(udp(adm, NULL, "10.0.2.1",
                         signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1,
                                   "10.0.2.1", NOW + SEC),
                         NOW + SEC),
                     HM_REASON_OK);
    ck_assert(entry("10.0.2.1", 80, NULL));
    ck_assert_uint_eq(ctr(HM_CTR_REPLACED), 1);
    ck_assert_int_eq(udp(adm, NULL, "10.0.2.2",
                         signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1,
                                   "10.0.2.2", NOW + SEC),
                         NOW + SEC),
                     HM_REASON_OK);
    ck_assert_uint_eq(ctr(HM_CTR_REPLACED), 2);
    /* ... and when only signed entries are left, long silent or not, an
     * unsigned newcomer takes none of their places. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.3.1", "v=1&ready=1&busy=0", NOW + 60 * SEC),
                     HM_REASON_OK);
    ck_assert(!entry("10.0.3.1", HM_DEFAULT_PORT, NULL));
    ck_assert_uint_eq(ctr(HM_CTR_FULL), 1);
    /* A signed newcomer still replaces a stale signed entry. */
    ck_assert_int_eq(udp(adm, NULL, "10.0.2.9",
                         signed_at(buf, sizeof(buf), &key, "v=1&ready=1&busy=0&port=80", 1,
                                   "10.0.2.9", NOW + 60 * SEC),
                         NOW + 60 * SEC),
                     HM_REASON_OK);
    ck_assert(entry("10.0.2.9", 80, NULL));
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_admit");
    TCase *tc = tcase_create("reasons");

    tcase_add_test(tc, test_reason_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("admit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_accepted);
    tcase_add_test(tc, test_check_then_commit);
    tcase_add_test(tc, test_malformed_reported);
    tcase_add_test(tc, test_reject_direct);
    tcase_add_test(tc, test_silent_log);
    tcase_add_test(tc, test_allow);
    tcase_add_test(tc, test_rate);
    tcase_add_test(tc, test_signature_required);
    tcase_add_test(tc, test_signature_migrate);
    tcase_add_test(tc, test_replay_and_downgrade);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_identity);
    tcase_add_test(tc, test_unbound_migrate);
    tcase_add_test(tc, test_verified_not_starved);
    tcase_add_test(tc, test_tombstone);
    tcase_add_test(tc, test_table_guard);
    suite_add_tcase(s, tc);
    return s;
}
