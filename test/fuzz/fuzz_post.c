/*
 * fuzz_post.c: libFuzzer target for the path a heartbeat takes from a POST
 * body (or a UDP datagram) into the monitor's shared table.
 *
 * It runs the monitor's own admission code (hm_admit.c: address filter,
 * per-source rate cap, signature, parse, table), as the receiver and the
 * POST handler call it, with httpd's parts replaced by plain values: the
 * POST handler's body limit is the one step played here. A small table
 * (1 to 8 slots) makes the full-table and eviction paths common. For every
 * step it works out what the rules (hm_admit.h) must decide, from the
 * parts they are built on (the subnet list, a limiter of its own fed the
 * same datagrams, hb_auth_verify, hb_packet_parse, the key), requires the
 * code to decide the same, and checks the table against what the step
 * must have done and the invariants every reader relies on:
 *  - count <= capacity, and count equals the slots hm_table_get() returns;
 *  - every entry is found by hm_table_find() at its own slot, and no two
 *    entries share a key;
 *  - a malformed or refused body, or a new origin turned away by a full
 *    table, leaves every entry exactly as it was; so do stages 1 to 3
 *    (hm_admit_check) for an accepted one, before hm_admit_commit;
 *  - only a body this target signed with a configured key, in the time
 *    window, and no longer than HB_PACKET_MAX, passes the signature check,
 *    and every such body passes it unless it arrived cut short or holds a
 *    ts= or kid= pair of its own;
 *  - the rate cap never lets more through than its burst plus its rate;
 *  - a signed packet is taken only from the address its addr= names;
 *    one without addr= is refused, or under migrate taken as unsigned;
 *  - a new origin's fate in the table (hm_table_update): a removed signed
 *    entry's seq still refuses replays, at most MAX_PER_ADDR unsigned
 *    origins per address under migrate, and which entry a full table
 *    gives up (an unsigned origin never takes a signed one's slot);
 *  - an entry announces balancers (join=) only if its packet was signed,
 *    and the join generation moves exactly when an entry's announcement
 *    appears, changes or goes (an evicted or expired one's included);
 *  - the counters account for every step, each refusal once on its
 *    reason's counter, and the ring of recent rejections holds every one
 *    but the rate cap's and those from outside HeartbeatAllow (which have
 *    a ring of their own);
 *  - every log line is one of the monitor's (HM02xx).
 *
 * Input: byte 0 is the configuration:
 *  - & 0x07: capacity - 1;
 *  - & 0x18: keys: 0 none, 1 required, 2 migrate (unsigned accepted too),
 *    3 required with two keys (rotation);
 *  - & 0x20: rate cap (10 per second, bursts of 20; a packet carrying a
 *    signature pays only if refused);
 *  - & 0x40: HeartbeatAllow 127.0.0.0/8 2001:db8::/32.
 * The rest is records separated by '\n' (bodies containing '\n' are
 * malformed anyway; fuzz_packet covers them). A record is
 * [source][time][body...]:
 *  - source & 0x0f: the client address, from a fixed list with IPv4, IPv6
 *    and IPv4-mapped IPv6 forms of the same hosts, so keys collide;
 *    source & 0x10: sign the body (as mod_heartbeat does) before it is
 *    sent; & 0x20: with a key of the right id but the wrong material;
 *    & 0x40: with a timestamp outside the window; & 0x80 with 0x10: as an
 *    older sender, without addr= (else the source's address is appended
 *    as addr= before signing); without 0x10, 0x80 means nothing (seeds
 *    set it so that no source byte is a '\n');
 *  - time & 0x3f: how far the clock moves first, in 100 ms steps;
 *    time & 0x40: run expiry (30 s) after moving it;
 *    time & 0x80: the body came by UDP (truncated to the receive buffer, as
 *    recvfrom does) rather than by POST (refused above HB_PACKET_MAX).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "apr_network_io.h"
#include "apr_pools.h"

#include "hb_auth.h"
#include "hb_log.h"
#include "hb_packet.h"
#include "hm_admit.h"
#include "hm_ratelimit.h"
#include "hm_table.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_post: property failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define CAPACITY_MAX 8u
#define USEC         INT64_C(1000000)
/* mod_heartmonitor's defaults: HeartbeatExpiry 30s, stale after 10s. */
#define STALE_AFTER (10 * USEC)
#define EXPIRY      (30 * USEC)
/* The receiver's buffer (hm_drain): a longer datagram arrives cut to this. */
#define UDP_BUF (HB_PACKET_MAX + 2)
/* HeartbeatAuthWindow's default, in ms. */
#define AUTH_WINDOW_MS INT64_C(30000)
#define RATE           10u
/* HeartbeatMaxPerAddress, in migrate mode. */
#define MAX_PER_ADDR 2u
#define BURST        20u
/* Limiter slots: the 12 distinct addresses of sources[] fit without one
 * being forgotten, which would hand it a fresh bucket. */
#define RL_SOURCES 64u
/* Key material: any 16 or more bytes. */
#define KEY1 "fuzz-key-one-0123456789abcdef"
#define KEY0 "fuzz-key-zero-0123456789abcdef"

static const char *const sources[16] = {"127.0.0.1",        "127.0.0.2",        "10.0.0.11",
                                        "10.0.0.12",        "192.0.2.1",        "198.51.100.7",
                                        "0.0.0.0",          "255.255.255.255",  "::1",
                                        "2001:db8::1",      "2001:db8::2",      "fe80::1",
                                        "::ffff:127.0.0.1", "::ffff:127.0.0.2", "::ffff:10.0.0.11",
                                        "::ffff:10.0.0.12"};
/* Which of them HeartbeatAllow 127.0.0.0/8 2001:db8::/32 lets in: the
 * first two, 2001:db8::1 and ::2, and the mapped forms of the first two. */
#define ALLOWED_SOURCES 0x3603u

/* Made once: the sources as httpd hands them over, and the subnets. */
static apr_pool_t *root;
static apr_sockaddr_t *source_sa[16];
static apr_ipsubnet_t *allow_nets[2];

typedef struct {
    hm_table_t *t;
    hm_admit_t *adm;
    unsigned int capacity;
    int64_t now;
    /* configuration */
    hb_secret_t keys[2], rogue;
    unsigned int nkeys;
    int migrate;
    int allow;
    hm_ratelimit_t *rl;
    hm_ratelimit_t *rl_expect; /* the same limit, fed here to know its verdicts */
    /* What the counters must say, counted independently of the table. */
    uint64_t accepted, full, malformed, rejected, noted, noted_outside;
    uint64_t by_counter[HM_CTR_COUNT];
    uint32_t last_reason;
    int64_t last_when;
    /* Packets the rate cap let through, per source, and since when. */
    uint64_t rl_passed[16];
    int64_t rl_first[16];
    /* What removed signed entries left behind (hm_table_set_guard): a
     * ring as long as the table, written in the table's order. */
    struct {
        hm_addr_t key;
        uint64_t seq;
        int64_t seen;
    } tombs[CAPACITY_MAX];
    unsigned int ntombs;
} model_t;

typedef struct {
    int used;
    hm_entry_t e;
} snap_t;

static void snapshot(const model_t *m, snap_t *s)
{
    for (unsigned int i = 0; i < m->capacity; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        s[i].used = hm_table_get(m->t, i, &s[i].e);
    }
}

/* Field by field: hm_entry_t has padding after ip[], which a struct copy
 * need not preserve. */
static int entry_equal(const hm_entry_t *a, const hm_entry_t *b)
{
    return hm_addr_equal(&a->key, &b->key) && a->key.pad == b->key.pad &&
           memcmp(a->key.addr, b->key.addr, sizeof(a->key.addr)) == 0 &&
           memcmp(a->ip, b->ip, sizeof(a->ip)) == 0 && a->ready == b->ready && a->busy == b->busy &&
           a->interval_ms == b->interval_ms && a->state == b->state && a->flags == b->flags &&
           a->seq == b->seq && a->seen == b->seen && a->first_seen == b->first_seen &&
           a->packets == b->packets && hb_join_equal(&a->join, &b->join);
}

static void check_unchanged(const model_t *m, const snap_t *before)
{
    snap_t now[CAPACITY_MAX];

    snapshot(m, now);
    for (unsigned int i = 0; i < m->capacity; i++) {
        REQUIRE(now[i].used == before[i].used);
        REQUIRE(!now[i].used || entry_equal(&now[i].e, &before[i].e));
    }
}

static void check_table(const model_t *m)
{
    snap_t s[CAPACITY_MAX];
    unsigned int used = 0;
    uint64_t inserted, expired;

    REQUIRE(hm_table_capacity(m->t) == m->capacity);
    REQUIRE(hm_table_count(m->t) <= m->capacity);
    snapshot(m, s);
    for (unsigned int i = 0; i < m->capacity; i++) {
        char ip[HM_IP_MAX];
        hm_entry_t f;

        if (!s[i].used) {
            continue;
        }
        used++;
        const hm_entry_t *e = &s[i].e;
        REQUIRE(hm_table_find(m->t, &e->key, &f) == (int)i);
        REQUIRE(entry_equal(&f, e));
        for (unsigned int j = i + 1; j < m->capacity; j++) {
            REQUIRE(!s[j].used || !hm_addr_equal(&s[j].e.key, &e->key));
        }
        REQUIRE(memchr(e->ip, '\0', sizeof(e->ip)) != NULL);
        hm_addr_to_string(&e->key, ip);
        REQUIRE(ip[0] != '\0' && strcmp(ip, e->ip) == 0);
        REQUIRE(e->key.family == 4 || e->key.family == 6);
        REQUIRE(e->key.port >= 1);
        REQUIRE(e->ready <= HB_COUNT_MAX && e->busy <= HB_COUNT_MAX);
        REQUIRE(e->state <= HB_STATE_STOPPING);
        REQUIRE(e->packets >= 1);
        REQUIRE(e->first_seen <= e->seen && e->seen <= m->now);
    }
    REQUIRE(used == hm_table_count(m->t));

    REQUIRE(hm_table_counter(m->t, HM_CTR_ACCEPTED) == m->accepted);
    REQUIRE(hm_table_counter(m->t, HM_CTR_FULL) == m->full);
    REQUIRE(hm_table_counter(m->t, HM_CTR_MALFORMED) == m->malformed);
    REQUIRE(hm_table_counter(m->t, HM_CTR_REJECTED) == m->rejected);
    /* The rejection reasons; the storage counters are the receiver's. */
    for (int c = HM_CTR_UNSIGNED; c <= HM_CTR_RATELIMITED; c++) {
        REQUIRE(hm_table_counter(m->t, (hm_counter_e)c) == m->by_counter[c]);
    }
    for (int c = HM_CTR_IDENTITY; c <= HM_CTR_PER_ADDRESS; c++) {
        REQUIRE(hm_table_counter(m->t, (hm_counter_e)c) == m->by_counter[c]);
    }
    /* Every new entry is a change of state, and so may be an update. */
    REQUIRE(hm_table_counter(m->t, HM_CTR_STATE_CHANGES) >=
            hm_table_counter(m->t, HM_CTR_INSERTED) + hm_table_counter(m->t, HM_CTR_REPLACED));
    /* Replacing keeps the count; only inserts and expiry move it. */
    inserted = hm_table_counter(m->t, HM_CTR_INSERTED);
    expired = hm_table_counter(m->t, HM_CTR_EXPIRED);
    REQUIRE(inserted >= expired && inserted - expired == used);

    hm_reject_t rj[HM_REJECTS];
    unsigned int nr = hm_table_rejects(m->t, rj, HM_REJECTS);
    REQUIRE(nr == (m->noted < HM_REJECTS ? m->noted : HM_REJECTS));
    REQUIRE(nr == 0 || (rj[0].reason == m->last_reason && rj[0].when == m->last_when));
    nr = hm_table_rejects_outside(m->t, rj, HM_REJECTS);
    REQUIRE(nr == (m->noted_outside < HM_REJECTS ? m->noted_outside : HM_REJECTS));
    REQUIRE(nr == 0 || rj[0].reason == HM_REASON_NOTALLOWED);
}

/* Every log line is one of the monitor's, and formats (under ASan). */
static void log_line(void *baton, hb_log_level_e level, const char *file, int line, const char *fmt,
                     va_list ap)
{
    char text[1024];

    REQUIRE(baton == NULL && file != NULL && line > 0);
    REQUIRE(level == HB_LOG_DEBUG || level == HB_LOG_WARNING);
    REQUIRE(vsnprintf(text, sizeof(text), fmt, ap) > 0);
    REQUIRE(strncmp(text, "HM02", 4) == 0 && memchr(text, '\0', sizeof(text)) != NULL);
}

/* What a refusal must have done to the counters and the ring. */
static void expect_refusal(model_t *m, hm_reason_e reason)
{
    REQUIRE(reason != HM_REASON_OK && reason < HM_REASON_COUNT);
    if (hm_reason_refused(reason)) {
        m->rejected++;
    } else {
        m->malformed++;
    }
    m->by_counter[hm_reason_counter(reason)]++;
    /* The rate cap's excess is counted only; sources outside the filter
     * have a ring of their own. */
    if (reason == HM_REASON_RATE) {
        return;
    }
    if (reason == HM_REASON_NOTALLOWED) {
        m->noted_outside++;
        return;
    }
    m->noted++;
    m->last_reason = (uint32_t)reason;
    m->last_when = m->now;
}

/* Does body contain a ts= or kid= pair, or a pair hb_query_next refuses?
 * Then a signature over it cannot verify, whoever made it. (A sig= pair
 * inside the signed part is only an unknown key there; it is counted as
 * spoiling anyway, to keep this check simple.) */
static int spoils_signature(const char *body, size_t len)
{
    const char *pos = body, *end = body + len;
    hb_kv_t kv;
    int r;

    while ((r = hb_query_next(&pos, end, &kv)) != 0) {
        if (r < 0 || (kv.key_len == 2 && !memcmp(kv.key, "ts", 2)) ||
            (kv.key_len == 3 && !memcmp(kv.key, "kid", 3)) ||
            (kv.key_len == 3 && !memcmp(kv.key, "sig", 3))) {
            return 1;
        }
    }
    return 0;
}

/* The model's own "carries a signature" (hm_admit_check's verify-first
 * test). */
static int carries_sig(const char *body, size_t len)
{
    for (size_t i = 0; i + 5 <= len; i++) {
        if (memcmp(body + i, "&sig=", 5) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Feed the model's limiter; 1 if the packet is within the rate. */
static int rate_allows(model_t *m, unsigned int si, const apr_sockaddr_t *sa)
{
    hm_addr_t src;

    REQUIRE(hm_addr_from_sockaddr(&src, &sa->sa, 0) == 0);
    if (!hm_ratelimit_allow(m->rl_expect, &src, m->now)) {
        return 0;
    }
    /* Never more than the burst plus what the rate earned since. Keyed by
     * the list entry: mapped and plain IPv4 forms share a bucket, so the
     * bound is checked per form, which only loosens it. */
    if (m->rl_passed[si]++ == 0) {
        m->rl_first[si] = m->now;
    }
    REQUIRE(m->rl_passed[si] <=
            BURST + (uint64_t)((m->now - m->rl_first[si]) / 1000) * RATE / 1000 + 1);
    return 1;
}

static void tomb_push(model_t *m, const hm_entry_t *e)
{
    if (m->nkeys == 0 || !(e->flags & HM_ENTRY_AUTH)) {
        return;
    }
    m->tombs[m->ntombs % m->capacity].key = e->key;
    m->tombs[m->ntombs % m->capacity].seq = e->seq;
    m->tombs[m->ntombs % m->capacity].seen = e->seen;
    m->ntombs++;
}

/* The newest seq a removed signed entry of key left within the window. */
static uint64_t tomb_seq(const model_t *m, const hm_addr_t *key)
{
    unsigned int n = m->ntombs < m->capacity ? m->ntombs : m->capacity;
    uint64_t seq = 0;

    for (unsigned int i = 0; i < n; i++) {
        if (m->tombs[i].seen >= m->now - AUTH_WINDOW_MS * 1000 && m->tombs[i].seq > seq &&
            hm_addr_equal(&m->tombs[i].key, key)) {
            seq = m->tombs[i].seq;
        }
    }
    return seq;
}

/* Unsigned entries at key's address, any port. */
static unsigned int unsigned_at(const model_t *m, const snap_t *s, const hm_addr_t *key)
{
    unsigned int n = 0;

    for (unsigned int i = 0; i < m->capacity; i++) {
        if (s[i].used && !(s[i].e.flags & HM_ENTRY_AUTH) && s[i].e.key.family == key->family &&
            memcmp(s[i].e.key.addr, key->addr, key->family == 4 ? 4 : 16) == 0) {
            n++;
        }
    }
    return n;
}

/* Which slot a new origin takes in a full table (hm_table_update), or -1:
 * the entry seen longest ago (the first of equals) if stale; a signed
 * origin else the unsigned one seen longest ago; an unsigned origin only
 * an unsigned one, and only a stale one. */
static int victim_for(const model_t *m, const snap_t *s, uint32_t flags)
{
    int oldest = -1, oldest_unsigned = -1;

    for (unsigned int i = 0; i < m->capacity; i++) {
        REQUIRE(s[i].used);
        if (oldest < 0 || s[i].e.seen < s[oldest].e.seen) {
            oldest = (int)i;
        }
        if (!(s[i].e.flags & HM_ENTRY_AUTH) &&
            (oldest_unsigned < 0 || s[i].e.seen < s[oldest_unsigned].e.seen)) {
            oldest_unsigned = (int)i;
        }
    }
    if (flags & HM_ENTRY_AUTH) {
        return s[oldest].e.seen < m->now - STALE_AFTER ? oldest : oldest_unsigned;
    }
    return oldest_unsigned >= 0 && s[oldest_unsigned].e.seen < m->now - STALE_AFTER
               ? oldest_unsigned
               : -1;
}

static void apply(model_t *m, unsigned int sel, const char *body, size_t len, int via_udp)
{
    const apr_sockaddr_t *sa = source_sa[sel & 0x0fu];
    snap_t before[CAPACITY_MAX];
    char *signed_buf = NULL;
    hb_packet_t pkt;
    hb_status_e st;
    hm_addr_t key;
    hm_entry_t old, e;
    hm_pending_t pd;
    hm_reason_e expect = HM_REASON_OK, r;
    int had, slot, we_signed_ok = 0, truncated = 0, verify_first = 0, victim = -1, moved;
    size_t body_len = len;
    unsigned int count0, si = sel & 0x0fu;
    uint32_t flags = 0;
    size_t plen;
    uint64_t full0, inserted0, replaced0;
    uint32_t jgen0;
    int64_t now_ms = m->now / 1000;

    snapshot(m, before);
    count0 = hm_table_count(m->t);
    jgen0 = hm_table_join_generation(m->t);

    /* The origin signs what it sends (hb_auth_sign appends ts, kid, sig). */
    if (sel & 0x10u) {
        const hb_secret_t *k = (sel & 0x20u) ? &m->rogue : &m->keys[m->nkeys > 1 ? 1 : 0];
        int64_t ts = (sel & 0x40u) ? now_ms - 2 * AUTH_WINDOW_MS : now_ms;
        size_t cap = len + 128 + HB_ADDR_TEXT_MAX, n;

        signed_buf = malloc(cap);
        REQUIRE(signed_buf != NULL);
        memcpy(signed_buf, body, len);
        if (!(sel & 0x80u)) {
            /* A current sender names the address it sends from. */
            len += (size_t)snprintf(signed_buf + len, cap - len, "&addr=%s", sources[si]);
            body_len = len;
        }
        n = hb_auth_sign(k, signed_buf, len, cap, ts);
        REQUIRE(n > len && n < cap && signed_buf[n] == '\0');
        body = signed_buf;
        len = n;
        we_signed_ok = m->nkeys > 0 && !(sel & 0x60u);
    }

    if (via_udp) {
        if (len > UDP_BUF) {
            len = UDP_BUF;
            truncated = 1;
        }
    } else if (len > HB_PACKET_MAX) {
        /* hm_read_body() refuses the body before anything parses it, and
         * the handler reports it. */
        hm_admit_reject(m->adm, sa, 1, HM_REASON_TOOLONG, m->now);
        expect_refusal(m, HM_REASON_TOOLONG);
        goto unchanged;
    }

    /* What the stages must decide, one after the other (hm_admit.h). */

    /* 1. The address filter, then the rate cap, except that a packet
     * carrying a signature is checked first and pays only if refused. */
    if (m->allow && !(ALLOWED_SOURCES & (1u << si))) {
        expect = HM_REASON_NOTALLOWED;
    }
    if (expect == HM_REASON_OK && m->rl) {
        if (m->nkeys && carries_sig(body, len) && hm_ratelimit_budget(m->rl_expect, m->now)) {
            verify_first = 1;
        } else if (!rate_allows(m, si, sa)) {
            expect = HM_REASON_RATE;
        }
    }
    /* The whole datagram, signature included, within HB_PACKET_MAX. */
    if (expect == HM_REASON_OK && len > HB_PACKET_MAX) {
        expect = HM_REASON_TOOLONG;
    }

    /* 2. The signature. */
    plen = len;
    if (expect == HM_REASON_OK && m->nkeys) {
        size_t slen = 0;
        const hb_secret_t *which = NULL;
        hb_auth_e a =
            hb_auth_verify(m->keys, m->nkeys, body, len, now_ms, AUTH_WINDOW_MS, &slen, &which);
        REQUIRE(hb_auth_str(a) != NULL);
        /* Nobody but the holder of a configured key gets past this, and
         * nothing longer than HB_PACKET_MAX, signature included. */
        REQUIRE(a != HB_AUTH_OK || we_signed_ok);
        REQUIRE(a != HB_AUTH_OK || len <= HB_PACKET_MAX);
        REQUIRE(a != HB_AUTH_CLOCK || ((sel & 0x70u) == 0x50u));
        /* And whoever holds one gets past it: a body we signed with a
         * configured key, in the window, arriving whole, verifies unless
         * the body itself holds pairs the verifier must refuse. */
        if (we_signed_ok && !truncated && len <= HB_PACKET_MAX &&
            !spoils_signature(body, body_len)) {
            REQUIRE(a == HB_AUTH_OK);
        }
        if (a == HB_AUTH_OK) {
            REQUIRE(which != NULL && slen < len && memcmp(body + slen, "&sig=", 5) == 0);
            flags |= HM_ENTRY_AUTH;
            plen = slen;
        } else if (a == HB_AUTH_UNSIGNED) {
            expect = m->migrate ? HM_REASON_OK : HM_REASON_UNSIGNED;
        } else {
            expect = a == HB_AUTH_CLOCK ? HM_REASON_CLOCK : HM_REASON_BADSIG;
        }
    }

    /* 3. The content, and the key. */
    if (expect == HM_REASON_OK) {
        st = hb_packet_parse(body, plen, &pkt);
        if (st == HB_OK && (flags & HM_ENTRY_AUTH) && !(pkt.flags & HB_HAS_SEQ)) {
            st = HB_E_MISSING;
        }
        if (st == HB_OK) {
            REQUIRE(hm_addr_from_sockaddr(&key, &sa->sa,
                                          (pkt.flags & HB_HAS_PORT) ? pkt.port : HM_DEFAULT_PORT) ==
                    0);
            flags |= (pkt.flags & HB_HAS_PORT) ? HM_ENTRY_PORT_KNOWN : 0;
            flags |= via_udp ? 0 : HM_ENTRY_VIA_HTTP;
        }
        expect = hm_reason_of_status(st);
        /* A signed packet speaks for the address it names, and must come
         * from it; an older sender's without addr= proves no origin. */
        if (expect == HM_REASON_OK && (flags & HM_ENTRY_AUTH)) {
            hm_addr_t claimed, host;
            REQUIRE(hm_addr_from_sockaddr(&host, &sa->sa, 0) == 0);
            if (!(pkt.flags & HB_HAS_ADDR)) {
                if (m->migrate) {
                    flags &= ~HM_ENTRY_AUTH;
                } else {
                    expect = HM_REASON_UNBOUND;
                }
            } else if (hm_addr_from_string(&claimed, pkt.addr, 0) != 0 ||
                       !hm_addr_same_host(&claimed, &host)) {
                expect = HM_REASON_IDENTITY;
            }
        }
    }
    if (expect != HM_REASON_OK && verify_first && !rate_allows(m, si, sa)) {
        expect = HM_REASON_RATE;
    }

    /* The code under test, stages 1 to 3. */
    r = hm_admit_check(m->adm, m->rl, body, len, sa, !via_udp, m->now, &pd);
    REQUIRE(r == expect);
    if (r != HM_REASON_OK) {
        expect_refusal(m, r);
        goto unchanged;
    }
    REQUIRE(hm_addr_equal(&pd.key, &key) && pd.flags == flags && pd.now == m->now);
    REQUIRE(pd.from == sa && pd.via_http == !via_udp);
    REQUIRE(pd.pkt.ready == pkt.ready && pd.pkt.busy == pkt.busy && pd.pkt.flags == pkt.flags);
    /* Nothing is applied before the commit. */
    check_unchanged(m, before);

    /* 4. The table. */
    had = hm_table_find(m->t, &key, &old) >= 0;
    full0 = hm_table_counter(m->t, HM_CTR_FULL);
    inserted0 = hm_table_counter(m->t, HM_CTR_INSERTED);
    replaced0 = hm_table_counter(m->t, HM_CTR_REPLACED);
    r = hm_admit_commit(m->adm, &pd);

    /* An origin that signed once is spoken for by signed, newer packets only. */
    if (had && (old.flags & HM_ENTRY_AUTH) && !(flags & HM_ENTRY_AUTH)) {
        REQUIRE(r == HM_REASON_DOWNGRADE);
        expect_refusal(m, r);
        goto unchanged;
    }
    if (had && (old.flags & HM_ENTRY_AUTH) && (flags & HM_ENTRY_AUTH) && pkt.seq <= old.seq) {
        REQUIRE(r == HM_REASON_REPLAY);
        expect_refusal(m, r);
        goto unchanged;
    }
    /* ... also once it left the table, within the window. */
    if (!had && (flags & HM_ENTRY_AUTH) && (pkt.flags & HB_HAS_SEQ) &&
        pkt.seq <= tomb_seq(m, &key)) {
        REQUIRE(r == HM_REASON_REPLAY);
        expect_refusal(m, r);
        goto unchanged;
    }
    REQUIRE(r == HM_REASON_OK);

    /* In migrate mode one address holds at most MAX_PER_ADDR unsigned. */
    if (!had && !(flags & HM_ENTRY_AUTH) && m->migrate &&
        unsigned_at(m, before, &key) >= MAX_PER_ADDR) {
        REQUIRE(hm_table_counter(m->t, HM_CTR_PER_ADDRESS) ==
                m->by_counter[HM_CTR_PER_ADDRESS] + 1);
        m->by_counter[HM_CTR_PER_ADDRESS]++;
        REQUIRE(hm_table_find(m->t, &key, NULL) < 0);
        goto unchanged;
    }
    if (!had && count0 == m->capacity) {
        victim = victim_for(m, before, flags);
    }
    if (!had && count0 == m->capacity && victim < 0) {
        REQUIRE(hm_table_counter(m->t, HM_CTR_FULL) == full0 + 1);
        m->full++;
        REQUIRE(hm_table_find(m->t, &key, NULL) < 0);
        goto unchanged;
    }
    REQUIRE(hm_table_counter(m->t, HM_CTR_FULL) == full0);
    m->accepted++;
    if (had) {
        REQUIRE(hm_table_counter(m->t, HM_CTR_INSERTED) == inserted0 &&
                hm_table_counter(m->t, HM_CTR_REPLACED) == replaced0);
    } else if (count0 < m->capacity) {
        REQUIRE(hm_table_counter(m->t, HM_CTR_INSERTED) == inserted0 + 1);
        REQUIRE(hm_table_count(m->t) == count0 + 1);
    } else {
        REQUIRE(hm_table_counter(m->t, HM_CTR_REPLACED) == replaced0 + 1);
        REQUIRE(hm_table_count(m->t) == count0);
    }

    slot = hm_table_find(m->t, &key, &e);
    REQUIRE(slot >= 0);
    REQUIRE(e.ready == pkt.ready && e.busy == pkt.busy);
    REQUIRE(e.seen == m->now && e.flags == flags);
    REQUIRE(e.state == ((pkt.flags & HB_HAS_STATE) ? (uint32_t)pkt.state : HB_STATE_UP));
    REQUIRE(e.packets == (had ? old.packets + 1 : 1));
    REQUIRE(e.first_seen == (had ? old.first_seen : m->now));
    /* Only a signed packet announces balancers (HeartbeatJoin), and the
     * join generation moves exactly when an announcement appears, changes
     * or goes, an evicted entry's included. */
    if ((flags & HM_ENTRY_AUTH) && (pkt.flags & HB_HAS_JOIN)) {
        REQUIRE(e.join.n >= 1 && hb_join_equal(&e.join, &pkt.join));
    } else {
        REQUIRE(e.join.n == 0);
    }
    if (had) {
        moved = !hb_join_equal(&old.join, &e.join);
    } else if (count0 == m->capacity) {
        moved = before[victim].e.join.n > 0 || e.join.n > 0;
    } else {
        moved = e.join.n > 0;
    }
    REQUIRE((hm_table_join_generation(m->t) != jgen0) == moved);
    if (pkt.flags & HB_HAS_SEQ) {
        REQUIRE(e.seq == pkt.seq);
    } else {
        REQUIRE(e.seq == (had ? old.seq : 0));
    }
    if (pkt.flags & HB_HAS_INTERVAL) {
        REQUIRE(e.interval_ms == pkt.interval_ms);
    } else {
        REQUIRE(e.interval_ms == (had ? old.interval_ms : 0));
    }
    /* A replacement takes the slot victim_for names; a signed entry
     * leaves its seq behind. */
    if (!had && count0 == m->capacity) {
        REQUIRE(slot == victim);
        REQUIRE(hm_table_find(m->t, &before[slot].e.key, NULL) < 0);
        tomb_push(m, &before[slot].e);
    } else {
        REQUIRE(!had || (before[slot].used && hm_addr_equal(&before[slot].e.key, &key)));
    }
    /* Every other entry is exactly as it was. */
    for (unsigned int i = 0; i < m->capacity; i++) {
        hm_entry_t cur;
        if ((int)i == slot) {
            continue;
        }
        REQUIRE(hm_table_get(m->t, i, &cur) == before[i].used);
        REQUIRE(!before[i].used || entry_equal(&cur, &before[i].e));
    }
    free(signed_buf);
    return;

unchanged:
    check_unchanged(m, before);
    REQUIRE(hm_table_join_generation(m->t) == jgen0);
    free(signed_buf);
}

static void expire(model_t *m)
{
    unsigned int count0 = hm_table_count(m->t), n;
    snap_t before[CAPACITY_MAX];
    uint32_t jgen0;
    int moved = 0;

    snapshot(m, before);
    jgen0 = hm_table_join_generation(m->t);
    n = hm_table_expire(m->t, m->now, EXPIRY);
    /* Removed in slot order, each signed one leaving a tombstone. */
    for (unsigned int i = 0; i < m->capacity; i++) {
        if (before[i].used && before[i].e.seen < m->now - EXPIRY) {
            tomb_push(m, &before[i].e);
            moved |= before[i].e.join.n > 0;
        }
    }
    REQUIRE(n <= count0 && hm_table_count(m->t) == count0 - n);
    /* An announcement that goes with its entry moves the join generation. */
    REQUIRE((hm_table_join_generation(m->t) != jgen0) == moved);
    for (unsigned int i = 0; i < m->capacity; i++) {
        hm_entry_t e;
        if (hm_table_get(m->t, i, &e)) {
            REQUIRE(e.seen >= m->now - EXPIRY);
        }
    }
}

static void init_once(void)
{
    if (root) {
        return;
    }
    REQUIRE(apr_initialize() == APR_SUCCESS);
    REQUIRE(apr_pool_create(&root, NULL) == APR_SUCCESS);
    for (unsigned int i = 0; i < 16; i++) {
        /* The family named: with APR_UNSPEC, getaddrinfo may refuse IPv6
         * on a host without an IPv6 address of its own. */
        REQUIRE(apr_sockaddr_info_get(&source_sa[i], sources[i],
                                      strchr(sources[i], ':') ? APR_INET6 : APR_INET, 40000, 0,
                                      root) == APR_SUCCESS);
    }
    REQUIRE(apr_ipsubnet_create(&allow_nets[0], "127.0.0.0", "8", root) == APR_SUCCESS);
    REQUIRE(apr_ipsubnet_create(&allow_nets[1], "2001:db8::", "32", root) == APR_SUCCESS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const hb_log_t log = {log_line, NULL};
    hm_admit_policy_t policy;
    apr_pool_t *pool;
    model_t m;
    void *mem;
    size_t bytes;
    const uint8_t *p, *end;

    if (size == 0) {
        return 0;
    }
    init_once();
    memset(&m, 0, sizeof(m));
    m.capacity = (data[0] & 0x07u) + 1;
    m.now = INT64_C(1796003978158256);
    switch ((data[0] >> 3) & 3u) {
    case 0:
        m.nkeys = 0;
        break;
    case 1:
        m.nkeys = 1;
        break;
    case 2:
        m.nkeys = 1;
        m.migrate = 1;
        break;
    default:
        m.nkeys = 2;
        break;
    }
    /* Signing always uses "k1"; with two keys it is the second one tried. */
    REQUIRE(hb_secret_set(&m.keys[m.nkeys > 1 ? 1 : 0], "k1", (const unsigned char *)KEY1,
                          strlen(KEY1)) == 0);
    if (m.nkeys > 1) {
        REQUIRE(hb_secret_set(&m.keys[0], "k0", (const unsigned char *)KEY0, strlen(KEY0)) == 0);
    }
    REQUIRE(hb_secret_set(&m.rogue, "k1", (const unsigned char *)KEY0, strlen(KEY0)) == 0);
    if (data[0] & 0x20u) {
        m.rl = malloc(hm_ratelimit_size(RL_SOURCES));
        m.rl_expect = malloc(hm_ratelimit_size(RL_SOURCES));
        REQUIRE(m.rl != NULL && m.rl_expect != NULL);
        REQUIRE(hm_ratelimit_init(m.rl, RL_SOURCES, RATE, BURST) == m.rl);
        REQUIRE(hm_ratelimit_init(m.rl_expect, RL_SOURCES, RATE, BURST) == m.rl_expect);
    }
    m.allow = (data[0] & 0x40u) != 0;
    bytes = hm_table_size(m.capacity);
    REQUIRE(bytes > 0);
    /* Exactly the size asked for, so ASan sees any access past the block. */
    mem = malloc(bytes);
    REQUIRE(mem != NULL);
    REQUIRE(hm_table_create(mem, bytes - 1, m.capacity) == NULL);
    m.t = hm_table_create(mem, bytes, m.capacity);
    REQUIRE(m.t != NULL);
    check_table(&m);

    /* The monitor's settings: HeartbeatExpiry 30s (stale after 10s),
     * HeartbeatAuthWindow 30s. */
    memset(&policy, 0, sizeof(policy));
    policy.table = m.t;
    policy.stale_after = STALE_AFTER;
    policy.keys = m.keys;
    policy.nkeys = m.nkeys;
    policy.migrate = m.migrate;
    policy.auth_window = AUTH_WINDOW_MS * 1000;
    policy.allow = m.allow ? allow_nets : NULL;
    policy.nallow = m.allow ? 2 : 0;
    policy.max_per_addr = MAX_PER_ADDR;
    REQUIRE(apr_pool_create(&pool, root) == APR_SUCCESS);
    m.adm = hm_admit_create(pool, &policy, &log);
    REQUIRE(m.adm != NULL);

    p = data + 1;
    end = data + size;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *rec_end = nl ? nl : end;
        size_t rlen = (size_t)(rec_end - p);

        if (rlen >= 1) {
            unsigned int sel = p[0];
            unsigned int tm = rlen >= 2 ? p[1] : 0;
            const char *body = rlen >= 2 ? (const char *)p + 2 : (const char *)rec_end;
            size_t blen = rlen >= 2 ? rlen - 2 : 0;

            m.now += (int64_t)(tm & 0x3f) * (USEC / 10);
            if (tm & 0x40) {
                expire(&m);
            }
            apply(&m, sel, body, blen, (tm & 0x80) != 0);
            check_table(&m);
        }
        p = nl ? nl + 1 : end;
    }

    /* Another process attaches to the same block and sees the same table. */
    REQUIRE(hm_table_attach(mem, bytes) == m.t);
    apr_pool_destroy(pool);
    free(mem);
    free(m.rl);
    free(m.rl_expect);
    return 0;
}
