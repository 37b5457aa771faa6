/*
 * check_pick.c: unit tests for lbhb_pick (balancer member ranking).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "lbhb_pick.h"

#include "check_main.h"

START_TEST(test_effective)
{
    ck_assert_int_eq(lbhb_effective(10, 0), 10);
    ck_assert_int_eq(lbhb_effective(10, 3), 7);
    ck_assert_int_eq(lbhb_effective(10, 10), 0);
    ck_assert_int_eq(lbhb_effective(3, 10), -7);
    ck_assert_int_eq(lbhb_effective(0, 0), 0);
    ck_assert_int_eq(lbhb_effective(UINT32_MAX, 0), (int64_t)UINT32_MAX);
    ck_assert_int_eq(lbhb_effective(UINT32_MAX, UINT64_MAX), INT64_MIN);
    ck_assert_int_eq(lbhb_effective(0, (uint64_t)INT64_MAX), -INT64_MAX);
    ck_assert_int_eq(lbhb_effective(0, (uint64_t)INT64_MAX + 1), INT64_MIN);
    ck_assert_int_eq(lbhb_effective(0, UINT64_MAX), INT64_MIN);
    ck_assert_int_eq(lbhb_effective(1, (uint64_t)INT64_MAX + 1), -INT64_MAX);
}
END_TEST

START_TEST(test_better)
{
    lbhb_score_t a = {5, 3}, b = {4, 0}, c = {5, 1}, d = {-1, 0};
    ck_assert(lbhb_better(&a, NULL));
    ck_assert(lbhb_better(&d, NULL));
    ck_assert(lbhb_better(&a, &b)); /* higher eff wins even with worse order */
    ck_assert(!lbhb_better(&b, &a));
    ck_assert(lbhb_better(&c, &a)); /* tie: lower order wins */
    ck_assert(!lbhb_better(&a, &c));
    ck_assert(!lbhb_better(&a, &a)); /* equal is not better: first stays */
    ck_assert(lbhb_better(&b, &d));
    lbhb_score_t lo = {INT64_MIN, 0}, hi = {INT64_MAX, UINT32_MAX};
    ck_assert(lbhb_better(&hi, &lo));
    ck_assert(!lbhb_better(&lo, &hi));
}
END_TEST

START_TEST(test_order)
{
    ck_assert_uint_eq(lbhb_order(0, 0, 4), 0);
    ck_assert_uint_eq(lbhb_order(3, 0, 4), 3);
    ck_assert_uint_eq(lbhb_order(1, 1, 4), 0);
    ck_assert_uint_eq(lbhb_order(0, 1, 4), 3);
    ck_assert_uint_eq(lbhb_order(2, 3, 4), 3);
    ck_assert_uint_eq(lbhb_order(3, 3, 4), 0);
    /* the cursor keeps counting up forever; only its residue matters */
    ck_assert_uint_eq(lbhb_order(1, 9, 4), lbhb_order(1, 1, 4));
    ck_assert_uint_eq(lbhb_order(2, UINT_MAX, 4), (2 + 4 - UINT_MAX % 4) % 4);
    ck_assert_uint_eq(lbhb_order(0, 0, 1), 0);
    ck_assert_uint_eq(lbhb_order(0, 12345, 1), 0);
    ck_assert_uint_eq(lbhb_order(0, 0, 0), 0);
    /* no wrap for large member counts */
    ck_assert_uint_eq(lbhb_order(UINT_MAX - 1, 0, UINT_MAX), UINT_MAX - 1);
    ck_assert_uint_eq(lbhb_order(UINT_MAX - 1, 1, UINT_MAX), UINT_MAX - 2);
    ck_assert_uint_eq(lbhb_order(0, UINT_MAX - 1, UINT_MAX), 1);

    /* a permutation of 0..n-1 for every cursor */
    for (unsigned n = 1; n <= 7; n++) {
        for (unsigned cur = 0; cur < 2 * n; cur++) {
            unsigned seen = 0;
            for (unsigned i = 0; i < n; i++) {
                uint32_t o = lbhb_order(i, cur, n);
                ck_assert_uint_lt(o, n);
                seen |= 1u << o;
            }
            ck_assert_uint_eq(seen, (1u << n) - 1);
        }
    }
}
END_TEST

START_TEST(test_ties_rotate)
{
    lbhb_cand_t c[4] = {{1, 5, 0}, {1, 5, 0}, {1, 5, 0}, {1, 5, 0}};
    for (unsigned cur = 0; cur < 12; cur++) {
        ck_assert_int_eq(lbhb_pick_most(c, 4, cur), (int)(cur % 4));
    }
}
END_TEST

START_TEST(test_ties_rotate_skip_unusable)
{
    lbhb_cand_t c[4] = {{1, 5, 0}, {0, 5, 0}, {1, 5, 0}, {0, 5, 0}};
    ck_assert_int_eq(lbhb_pick_most(c, 4, 0), 0);
    ck_assert_int_eq(lbhb_pick_most(c, 4, 1), 2);
    ck_assert_int_eq(lbhb_pick_most(c, 4, 2), 2);
    ck_assert_int_eq(lbhb_pick_most(c, 4, 3), 0);
}
END_TEST

START_TEST(test_higher_eff_wins)
{
    lbhb_cand_t c[3] = {{1, 10, 0}, {1, 50, 45}, {1, 20, 0}};
    /* effective: 10, 5, 20 */
    for (unsigned cur = 0; cur < 3; cur++) {
        ck_assert_int_eq(lbhb_pick_most(c, 3, cur), 2);
    }
    /* our own traffic since the report moves the choice */
    c[2].started = 15;
    for (unsigned cur = 0; cur < 3; cur++) {
        ck_assert_int_eq(lbhb_pick_most(c, 3, cur), 0);
    }
}
END_TEST

START_TEST(test_negative_eff)
{
    lbhb_cand_t c[3] = {{1, 0, 10}, {1, 5, 7}, {1, 0, UINT64_MAX}};
    /* effective: -10, -2, INT64_MIN: least overcommitted wins */
    ck_assert_int_eq(lbhb_pick_most(c, 3, 0), 1);
    ck_assert_int_eq(lbhb_pick_most(c, 3, 2), 1);
    /* overcommitted but usable still beats nothing */
    lbhb_cand_t one[1] = {{1, 0, UINT64_MAX}};
    ck_assert_int_eq(lbhb_pick_most(one, 1, 0), 0);
}
END_TEST

START_TEST(test_unusable_skipped)
{
    lbhb_cand_t c[3] = {{0, 1000, 0}, {1, 1, 0}, {0, 999, 0}};
    ck_assert_int_eq(lbhb_pick_most(c, 3, 0), 1);
    ck_assert_int_eq(lbhb_pick_most(c, 3, 2), 1);
}
END_TEST

START_TEST(test_none_usable)
{
    lbhb_cand_t c[3] = {{0, 1, 0}, {0, 2, 0}, {0, 3, 0}};
    ck_assert_int_eq(lbhb_pick_most(c, 3, 0), -1);
    ck_assert_int_eq(lbhb_pick_most(c, 0, 0), -1);
    ck_assert_int_eq(lbhb_pick_most(NULL, 0, 0), -1);
}
END_TEST

START_TEST(test_spreads_load)
{
    /* Simulate requests between two reports: each pick bumps started, the
     * cursor advances; load must spread evenly over equal members. */
    enum { N = 5, REQ = 1000 };
    lbhb_cand_t c[N];
    unsigned hits[N] = {0};
    for (unsigned i = 0; i < N; i++) {
        c[i].usable = 1;
        c[i].ready = 100;
        c[i].started = 0;
        c[i].weight = 0;
    }
    for (unsigned r = 0; r < REQ; r++) {
        int w = lbhb_pick_most(c, N, r);
        ck_assert_int_ge(w, 0);
        c[w].started++;
        hits[w]++;
    }
    for (unsigned i = 0; i < N; i++) {
        ck_assert_uint_eq(hits[i], REQ / N);
    }
}
END_TEST

START_TEST(test_weighted_proportions)
{
    lbhb_cand_t c[4] = {{1, 1, 0}, {1, 3, 0}, {0, 100, 0}, {1, 0, 0}};
    unsigned int hits[4] = {0, 0, 0, 0};
    uint64_t r;

    /* Every residue of the total once: exact proportions 1:3, never the
     * unusable one, never the one reporting 0. */
    for (r = 0; r < 4 * 1000; r++) {
        int i = lbhb_pick_weighted(c, 4, r);
        ck_assert_int_ge(i, 0);
        hits[i]++;
    }
    ck_assert_uint_eq(hits[0], 1000);
    ck_assert_uint_eq(hits[1], 3000);
    ck_assert_uint_eq(hits[2], 0);
    ck_assert_uint_eq(hits[3], 0);
}
END_TEST

START_TEST(test_weighted_none)
{
    lbhb_cand_t zero[2] = {{1, 0, 0}, {1, 0, 0}};
    lbhb_cand_t unusable[1] = {{0, 5, 0}};
    /* All full: not a 503 but the least overcommitted member, ties spread
     * by rnd; an unusable member is never chosen. */
    lbhb_cand_t full[3] = {{1, 0, 4}, {0, 9, 0}, {1, 0, 1}};
    unsigned int hits[2] = {0, 0};
    for (uint64_t r = 0; r < 100; r++) {
        ck_assert_int_eq(lbhb_pick_weighted(full, 3, r), 2);
        int i = lbhb_pick_weighted(zero, 2, r);
        ck_assert(i == 0 || i == 1);
        hits[i]++;
    }
    ck_assert_uint_gt(hits[0], 0);
    ck_assert_uint_gt(hits[1], 0);
    ck_assert_int_eq(lbhb_pick_weighted(unusable, 1, 0), -1);
    ck_assert_int_eq(lbhb_pick_weighted(NULL, 0, 0), -1);
    ck_assert_int_eq(lbhb_pick_weighted(zero, 0, 0), -1);
}
END_TEST

START_TEST(test_p2c)
{
    /* 0 is the best, 3 the worst; 2 is unusable. */
    lbhb_cand_t c[4] = {{1, 10, 0}, {1, 5, 0}, {0, 50, 0}, {1, 1, 0}};
    unsigned int hits[4] = {0, 0, 0, 0};
    uint64_t k;

    for (k = 0; k < 30000; k++) {
        int i = lbhb_pick_p2c(c, 4, lbhb_mix64(k));
        ck_assert_int_ge(i, 0);
        hits[i]++;
    }
    ck_assert_uint_eq(hits[2], 0);
    /* The worst of three loses every pair it is in: never chosen. The best
     * wins every pair it is in: 2/3 of the time. The middle one 1/3. */
    ck_assert_uint_eq(hits[3], 0);
    ck_assert_msg(hits[0] > 19000 && hits[0] < 21000, "best chosen %u times", hits[0]);
    ck_assert_msg(hits[1] > 9000 && hits[1] < 11000, "middle chosen %u times", hits[1]);
}
END_TEST

START_TEST(test_p2c_small)
{
    lbhb_cand_t one[3] = {{0, 9, 0}, {1, 0, 5}, {0, 9, 0}};
    lbhb_cand_t none[2] = {{0, 9, 0}, {0, 9, 0}};
    lbhb_cand_t tie[2] = {{1, 4, 0}, {1, 4, 0}};
    unsigned int hits[2] = {0, 0};
    uint64_t k;

    ck_assert_int_eq(lbhb_pick_p2c(one, 3, 7), 1);
    ck_assert_int_eq(lbhb_pick_p2c(none, 2, 7), -1);
    ck_assert_int_eq(lbhb_pick_p2c(NULL, 0, 7), -1);
    /* Equal members: the first drawn wins, so both are used evenly. */
    for (k = 0; k < 1000; k++) {
        hits[lbhb_pick_p2c(tie, 2, lbhb_mix64(k))]++;
    }
    ck_assert_msg(hits[0] > 400 && hits[1] > 400, "tie split %u/%u", hits[0], hits[1]);
}
END_TEST

START_TEST(test_weight_scores)
{
    /* Room counts weight times: 3 free slots of weight 4 beat 10 of
     * weight 1, 2 of weight 4 do not. */
    lbhb_score_t a = {10, 0, 1}, b = {3, 1, 4}, c = {2, 1, 4};
    ck_assert(lbhb_better(&b, &a));
    ck_assert(!lbhb_better(&c, &a));
    /* Overcommitment counts 1/weight: 3 over on weight 4 is better than 1
     * over on weight 1; 5 over on weight 4 is worse. */
    lbhb_score_t o1 = {-1, 0, 1}, o3 = {-3, 1, 4}, o5 = {-5, 1, 4};
    ck_assert(lbhb_better(&o3, &o1));
    ck_assert(!lbhb_better(&o5, &o1));
    /* Room always beats none, whatever the weights. */
    lbhb_score_t room = {1, 1, 1}, full = {0, 0, 100}, over = {-1, 0, 100};
    ck_assert(lbhb_better(&room, &full));
    ck_assert(lbhb_better(&full, &over));
    /* Weight 0 is weight 1: the unweighted order. */
    lbhb_score_t z = {5, 0, 0}, one = {5, 1, 1};
    ck_assert(!lbhb_better(&one, &z));
    ck_assert(lbhb_better(&z, &one));
    /* Extremes neither overflow nor flip. */
    lbhb_score_t lo = {INT64_MIN, 0, 7}, hi = {INT64_MAX, 1, 1000000}, hi2 = {INT64_MAX, 0, 1};
    ck_assert(lbhb_better(&hi, &lo));
    ck_assert(!lbhb_better(&lo, &hi));
    ck_assert(lbhb_better(&hi, &hi2));
}
END_TEST

START_TEST(test_weight_modes)
{
    /* Equal reports, loadfactor 1 and 3. */
    lbhb_cand_t c[2] = {{1, 10, 0, 1}, {1, 10, 0, 3}};
    unsigned int hits[2] = {0, 0};
    uint64_t r;

    /* most: the heavier member while it has at least a third of the
     * other's room. */
    ck_assert_int_eq(lbhb_pick_most(c, 2, 0), 1);
    c[1].started = 7; /* 3 x 3 = 9 < 10 */
    ck_assert_int_eq(lbhb_pick_most(c, 2, 1), 0);
    c[1].started = 6; /* 4 x 3 = 12 > 10 */
    ck_assert_int_eq(lbhb_pick_most(c, 2, 0), 1);
    c[1].started = 0;
    /* weighted: exactly 1:3 over every residue of the total. */
    for (r = 0; r < 40 * 100; r++) {
        hits[lbhb_pick_weighted(c, 2, r)]++;
    }
    ck_assert_uint_eq(hits[0], 1000);
    ck_assert_uint_eq(hits[1], 3000);
    /* p2c: of two, the heavier wins every draw. */
    for (r = 0; r < 100; r++) {
        ck_assert_int_eq(lbhb_pick_p2c(c, 2, lbhb_mix64(r)), 1);
    }
    /* Saturating total: absurd reports still give an answer. */
    lbhb_cand_t big[3] = {{1, UINT32_MAX, 0, 4000000000u},
                          {1, UINT32_MAX, 0, 4000000000u},
                          {1, UINT32_MAX, 0, 4000000000u}};
    ck_assert_int_ge(lbhb_pick_weighted(big, 3, UINT64_MAX - 1), 0);
}
END_TEST

START_TEST(test_max_age)
{
    /* Configured wins; no stated interval: stock's 10 s. */
    ck_assert_int_eq(lbhb_max_age(2500000, 100), 2500000);
    ck_assert_int_eq(lbhb_max_age(0, 0), LBHB_FRESH_MAX);
    /* Three intervals and 500 ms, at least 1 s, at most 10 s. */
    ck_assert_int_eq(lbhb_max_age(0, 1000), 3500000);
    ck_assert_int_eq(lbhb_max_age(0, 100), 1000000);
    ck_assert_int_eq(lbhb_max_age(0, 250), 1250000);
    ck_assert_int_eq(lbhb_max_age(0, 5000), LBHB_FRESH_MAX);
    ck_assert_int_eq(lbhb_max_age(0, UINT32_MAX), LBHB_FRESH_MAX);
}
END_TEST

static void put(hm_table_t *t, const char *ip, uint16_t port, int port_known, uint32_t ready,
                int64_t now)
{
    hb_packet_t pkt = {0};
    hm_addr_t k;

    ck_assert_int_eq(hm_addr_from_string(&k, ip, port), 0);
    pkt.version = 1;
    pkt.ready = ready;
    pkt.flags = port_known ? HB_HAS_PORT : 0;
    pkt.port = port_known ? port : 0;
    hm_table_update(t, &k, &pkt, now, INT64_MAX, port_known ? HM_ENTRY_PORT_KNOWN : 0);
}

START_TEST(test_find)
{
    static uint64_t mem[4096];
    hm_table_t *t = hm_table_create(mem, sizeof(mem), 8);
    hm_addr_t k[2];
    hm_entry_t e;

    ck_assert_ptr_nonnull(t);
    put(t, "10.0.0.1", 8080, 1, 5, 100);
    put(t, "10.0.0.2", 80, 0, 7, 100); /* a stock sender: no port stated */
    put(t, "10.0.0.3", 80, 1, 9, 100); /* port 80 stated */
    /* By address and port. */
    hm_addr_from_string(&k[0], "10.0.0.1", 8080);
    ck_assert(lbhb_find(t, &k[0], &e) && e.ready == 5);
    hm_addr_from_string(&k[0], "10.0.0.1", 8081);
    ck_assert(!lbhb_find(t, &k[0], &e));
    /* A stock sender's entry serves a member on any port of its address... */
    hm_addr_from_string(&k[0], "10.0.0.2", 8443);
    ck_assert(lbhb_find(t, &k[0], &e) && e.ready == 7);
    /* ... but an entry that stated port 80 serves port 80 only. */
    hm_addr_from_string(&k[0], "10.0.0.3", 8443);
    ck_assert(!lbhb_find(t, &k[0], &e));
    /* The freshest of a member's addresses. */
    put(t, "10.0.0.4", 80, 1, 1, 50);
    put(t, "10.0.0.5", 80, 1, 2, 150);
    hm_addr_from_string(&k[0], "10.0.0.4", 80);
    hm_addr_from_string(&k[1], "10.0.0.5", 80);
    ck_assert(lbhb_find_any(t, k, 2, &e) && e.ready == 2);
    ck_assert(lbhb_find_any(t, k, 1, &e) && e.ready == 1);
    ck_assert(!lbhb_find_any(t, k, 0, &e));
}
END_TEST

static void put_signed(hm_table_t *t, const char *ip, uint16_t port, uint32_t ready, uint64_t seq,
                       int64_t now)
{
    hb_packet_t pkt = {0};
    hm_addr_t k;

    ck_assert_int_eq(hm_addr_from_string(&k, ip, port), 0);
    pkt.version = 1;
    pkt.ready = ready;
    pkt.flags = HB_HAS_PORT | HB_HAS_SEQ;
    pkt.port = port;
    pkt.seq = seq;
    ck_assert_int_eq(
        hm_table_update(t, &k, &pkt, now, INT64_MAX, HM_ENTRY_PORT_KNOWN | HM_ENTRY_AUTH),
        HM_UPD_INSERTED);
}

/* Migration mode: once a member was found signed, an unsigned entry (its
 * own port's, or the portless one of its address that lbhb_find falls
 * back to) never speaks for it again, whatever table it is read from; the
 * memory is the member's word, which every process shares. */
START_TEST(test_find_member_signed_sticks)
{
    static uint64_t mem1[4096], mem2[4096], mem3[4096];
    hm_table_t *t1 = hm_table_create(mem1, sizeof(mem1), 8);
    hm_table_t *t2 = hm_table_create(mem2, sizeof(mem2), 8);
    hm_table_t *t3 = hm_table_create(mem3, sizeof(mem3), 8);
    uint32_t seen = 0, fresh = 0;
    hm_addr_t k[2];
    hm_entry_t e;

    ck_assert(t1 && t2 && t3);
    hm_addr_from_string(&k[0], "10.0.1.1", 8080);
    /* Heard signed on its port. */
    put_signed(t1, "10.0.1.1", 8080, 5, 1, 100);
    ck_assert_int_eq(lbhb_find_member(t1, k, 1, &seen, &e), 1);
    ck_assert_uint_eq(e.ready, 5);
    ck_assert(e.flags & HM_ENTRY_AUTH);
    ck_assert_uint_eq(seen, LBHB_SEEN_SIGNED);

    /* Its signed entry gone (a table without it), an unsigned portless
     * entry of its address: lbhb_find_any still falls back to it... */
    put(t2, "10.0.1.1", 80, 0, 1000, 200);
    ck_assert(lbhb_find_any(t2, k, 1, &e) && e.ready == 1000);
    /* ...a member never seen signed still uses it (stock senders)... */
    ck_assert_int_eq(lbhb_find_member(t2, k, 1, &fresh, &e), 1);
    ck_assert_uint_eq(e.ready, 1000);
    ck_assert_uint_eq(fresh, 0);
    /* ...but not this one. */
    ck_assert_int_eq(lbhb_find_member(t2, k, 1, &seen, &e), -1);
    /* Nor an unsigned entry on its own port. */
    put(t3, "10.0.1.1", 8080, 1, 1000, 200);
    ck_assert_int_eq(lbhb_find_member(t3, k, 1, &seen, &e), -1);
    ck_assert_uint_eq(seen, LBHB_SEEN_SIGNED);
    /* No entry at all: 0, as for any member. */
    hm_addr_from_string(&k[0], "10.0.1.9", 8080);
    ck_assert_int_eq(lbhb_find_member(t3, k, 1, &seen, &e), 0);

    /* Signed again: used again. */
    put_signed(t2, "10.0.1.1", 8080, 6, 2, 300);
    hm_addr_from_string(&k[0], "10.0.1.1", 8080);
    ck_assert_int_eq(lbhb_find_member(t2, k, 1, &seen, &e), 1);
    ck_assert_uint_eq(e.ready, 6);

    /* Two addresses: the signed entry wins over a fresher unsigned one,
     * and marks the member. */
    fresh = 0;
    put_signed(t1, "10.0.2.1", 80, 3, 1, 100);
    put(t1, "10.0.2.2", 80, 1, 900, 200);
    hm_addr_from_string(&k[0], "10.0.2.1", 80);
    hm_addr_from_string(&k[1], "10.0.2.2", 80);
    ck_assert_int_eq(lbhb_find_member(t1, k, 2, &fresh, &e), 1);
    ck_assert_uint_eq(e.ready, 3);
    ck_assert_uint_eq(fresh, LBHB_SEEN_SIGNED);

    /* Unsigned only, never seen signed: as lbhb_find_any, the freshest. */
    fresh = 0;
    put(t3, "10.0.3.1", 80, 1, 1, 100);
    put(t3, "10.0.3.2", 80, 1, 2, 150);
    hm_addr_from_string(&k[0], "10.0.3.1", 80);
    hm_addr_from_string(&k[1], "10.0.3.2", 80);
    ck_assert_int_eq(lbhb_find_member(t3, k, 2, &fresh, &e), 1);
    ck_assert_uint_eq(e.ready, 2);
    ck_assert_uint_eq(fresh, 0);
    /* The word may have been set by another process: it is obeyed. */
    fresh = LBHB_SEEN_SIGNED;
    ck_assert_int_eq(lbhb_find_member(t3, k, 2, &fresh, &e), -1);
}
END_TEST

START_TEST(test_baseline)
{
    uint64_t word = 0;

    /* The first look after a report sets the baseline; later ones see it. */
    ck_assert_uint_eq(lbhb_baseline(&word, 1000, 4), 4);
    ck_assert_uint_eq(lbhb_baseline(&word, 1000, 7), 4);
    ck_assert_uint_eq(lbhb_baseline(&word, 1000, 1), 4);
    /* Every process sharing the word counts from the same baseline. */
    uint64_t shared = word;
    ck_assert_uint_eq(lbhb_baseline(&shared, 1000, 9), 4);
    /* A new report starts again from the count at its first look. */
    ck_assert_uint_eq(lbhb_baseline(&word, 2000, 9), 9);
    ck_assert_uint_eq(lbhb_baseline(&word, 2000, 10), 9);
    /* Only the low 32 bits of the report time tell reports apart. */
    ck_assert_uint_eq(lbhb_baseline(&word, 2000 + (1ll << 32), 12), 9);
}
END_TEST

static int64_t credited(uint32_t ready, uint32_t busy, uint64_t base, uint64_t now)
{
    uint64_t started;
    uint32_t r = lbhb_credit(ready, busy, base, now, &started);

    ck_assert_uint_eq(started, now);
    return lbhb_effective(r, started);
}

START_TEST(test_credit)
{
    /* Requests started since the report count against its ready. */
    ck_assert_int_eq(credited(5, 3, 3, 5), 3);
    ck_assert_int_eq(credited(5, 3, 3, 10), -2);
    /* Finished since: the slots they held are ready again, as a new
     * report would say; a report taken mid-wave does not keep an idle
     * 8-slot member looking as full as an idle 32-slot one. */
    ck_assert_int_eq(credited(0, 8, 8, 0), 8);
    ck_assert_int_eq(credited(0, 32, 32, 0), 32);
    /* Other proxies' requests (busy beyond ours) are not credited. */
    ck_assert_int_eq(credited(2, 10, 4, 0), 6);
    /* Ours on their way when the report was taken (in flight here, not
     * yet busy there) count: 4 ready, 4 busy, 8 sent, all still out. */
    ck_assert_int_eq(credited(4, 4, 8, 8), 0);
    ck_assert_int_eq(credited(4, 4, 8, 3), 5);
    /* A report from before any of ours: as before. */
    ck_assert_int_eq(credited(32, 0, 0, 30), 2);
    ck_assert_uint_eq(lbhb_credit(UINT32_MAX - 1, 8, 8, 0, &(uint64_t){0}), UINT32_MAX);
}
END_TEST

START_TEST(test_fill_unknown)
{
    /* Two known (one unusable, not counted), two unknown. */
    lbhb_cand_t c[4] = {{1, 10, 3, 1, 0}, {0, 100, 0, 1, 0}, {1, 0, 2, 1, 1}, {1, 5, 0, 1, 0}};
    lbhb_fill_unknown(c, 4);
    /* mean of 10 and 5, rounded up; started untouched */
    ck_assert_uint_eq(c[2].ready, 8);
    ck_assert_uint_eq(c[2].started, 2);
    ck_assert_uint_eq(c[0].ready, 10);
    ck_assert_uint_eq(c[1].ready, 100);
    /* The unknown one ranks as a member reporting the mean. */
    ck_assert_int_eq(lbhb_pick_most(c, 4, 0), 0); /* 10-3=7 vs 8-2=6 vs 5 */
    c[0].started = 5;
    ck_assert_int_eq(lbhb_pick_most(c, 4, 0), 2);

    /* None known: all stand in as 0, so the least busy wins, ties rotate. */
    lbhb_cand_t u[3] = {{1, 99, 1, 1, 1}, {1, 99, 0, 1, 1}, {1, 99, 0, 1, 1}};
    lbhb_fill_unknown(u, 3);
    ck_assert_uint_eq(u[0].ready, 0);
    ck_assert_int_eq(lbhb_pick_most(u, 3, 0), 1);
    ck_assert_int_eq(lbhb_pick_most(u, 3, 2), 2);
    lbhb_fill_unknown(NULL, 0);
}
END_TEST

START_TEST(test_mix64)
{
    /* Consecutive counters give values differing in about half the bits. */
    uint64_t a = lbhb_mix64(1), b = lbhb_mix64(2);
    ck_assert(a != b);
    ck_assert_int_gt(__builtin_popcountll(a ^ b), 16);
    ck_assert_uint_eq(lbhb_mix64(1), a); /* a pure function */
}
END_TEST

/* ---- slow start */

START_TEST(test_ramp_observe)
{
    const int64_t s = 1000000, t0 = INT64_C(1796000000) * s;
    lbhb_ramp_t rp = {0, 0, 0};
    uint64_t seq = UINT64_C(1796000000000);

    /* The first report only sets the mark; reports at their pace (one a
     * second here, or even one a millisecond) are no restart. */
    lbhb_ramp_observe(&rp, seq, t0);
    ck_assert_int_eq(rp.restart_at, 0);
    lbhb_ramp_observe(&rp, seq + 1, t0 + s);
    lbhb_ramp_observe(&rp, seq + 3, t0 + 3 * s);
    lbhb_ramp_observe(&rp, seq + 1003, t0 + 4 * s);
    ck_assert_int_eq(rp.restart_at, 0);
    /* The same report again changes nothing; seq 0 (unnumbered) neither. */
    lbhb_ramp_observe(&rp, seq + 1003, t0 + 5 * s);
    lbhb_ramp_observe(&rp, 0, t0 + 5 * s);
    ck_assert_uint_eq(rp.seq, seq + 1003);
    /* A restart after an hour's uptime numbers from its new start. */
    lbhb_ramp_observe(&rp, seq + 3600000, t0 + 6 * s);
    ck_assert_int_eq(rp.restart_at, t0 + 6 * s);
    /* A sender that counts from 1 again. */
    lbhb_ramp_observe(&rp, 5, t0 + 9 * s);
    ck_assert_int_eq(rp.restart_at, t0 + 9 * s);
}
END_TEST

START_TEST(test_ramp_since_and_ready)
{
    const int64_t s = 1000000, t0 = INT64_C(1796000000) * s;
    lbhb_ramp_t rp = {0, 0, 0};

    /* There from the start-up: no ramp. Joined later: from then. */
    ck_assert_int_eq(lbhb_ramp_since(&rp, t0 + 5 * s, t0 + 10 * s, 0), 0);
    ck_assert_int_eq(lbhb_ramp_since(&rp, t0 + 20 * s, t0 + 10 * s, 0), t0 + 20 * s);
    ck_assert_int_eq(lbhb_ramp_since(NULL, t0 + 20 * s, INT64_MAX, 0), 0);
    /* The latest event counts: a restart, an ejection's end. */
    rp.restart_at = t0 + 30 * s;
    ck_assert_int_eq(lbhb_ramp_since(&rp, t0 + 20 * s, t0 + 10 * s, 0), t0 + 30 * s);
    ck_assert_int_eq(lbhb_ramp_since(&rp, t0 + 20 * s, t0 + 10 * s, t0 + 40 * s), t0 + 40 * s);

    /* In proportion, rounded up, at least 1; whole outside the ramp. */
    ck_assert_uint_eq(lbhb_ramp_ready(100, t0, t0 + s, 4 * s), 25);
    ck_assert_uint_eq(lbhb_ramp_ready(100, t0, t0 + 2 * s, 4 * s), 50);
    ck_assert_uint_eq(lbhb_ramp_ready(3, t0, t0 + 1, 4 * s), 1);
    ck_assert_uint_eq(lbhb_ramp_ready(100, t0, t0, 4 * s), 1);
    ck_assert_uint_eq(lbhb_ramp_ready(100, t0, t0 - s, 4 * s), 1);
    ck_assert_uint_eq(lbhb_ramp_ready(100, t0, t0 + 4 * s, 4 * s), 100);
    ck_assert_uint_eq(lbhb_ramp_ready(0, t0, t0 + s, 4 * s), 0);
    ck_assert_uint_eq(lbhb_ramp_ready(100, 0, t0, 4 * s), 100);
    ck_assert_uint_eq(lbhb_ramp_ready(100, t0, t0 + s, 0), 100);
    /* The largest counts and ramps do not overflow. */
    ck_assert_uint_eq(lbhb_ramp_ready(UINT32_MAX, t0, t0 + 300 * s, 600 * s),
                      (uint32_t)(((uint64_t)UINT32_MAX + 1) / 2));
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("lbhb_pick");
    TCase *tc = tcase_create("score");
    tcase_add_test(tc, test_effective);
    tcase_add_test(tc, test_better);
    tcase_add_test(tc, test_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("pick");
    tcase_add_test(tc, test_ties_rotate);
    tcase_add_test(tc, test_ties_rotate_skip_unusable);
    tcase_add_test(tc, test_higher_eff_wins);
    tcase_add_test(tc, test_negative_eff);
    tcase_add_test(tc, test_unusable_skipped);
    tcase_add_test(tc, test_none_usable);
    tcase_add_test(tc, test_spreads_load);
    suite_add_tcase(s, tc);

    tc = tcase_create("modes");
    tcase_add_test(tc, test_weighted_proportions);
    tcase_add_test(tc, test_weighted_none);
    tcase_add_test(tc, test_p2c);
    tcase_add_test(tc, test_p2c_small);
    tcase_add_test(tc, test_mix64);
    tcase_add_test(tc, test_weight_scores);
    tcase_add_test(tc, test_weight_modes);
    suite_add_tcase(s, tc);

    tc = tcase_create("policy");
    tcase_add_test(tc, test_max_age);
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_find_member_signed_sticks);
    tcase_add_test(tc, test_baseline);
    tcase_add_test(tc, test_credit);
    tcase_add_test(tc, test_fill_unknown);
    tcase_add_test(tc, test_ramp_observe);
    tcase_add_test(tc, test_ramp_since_and_ready);
    suite_add_tcase(s, tc);
    return s;
}
