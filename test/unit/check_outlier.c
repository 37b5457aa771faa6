/*
 * check_outlier.c: unit tests for lbhb_outlier (ejecting a failing member).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lbhb_outlier.h"

#include "check_main.h"

#define S 1000000

static const lbhb_outlier_conf_t conf = {5, LBHB_RATE_ONE * 3 / 10, 10 * S, 80 * S, 50};

/* n answers of one member at time now; returns the last event. */
static lbhb_outlier_e answers(lbhb_outlier_t *o, int n, int failed, int64_t now)
{
    lbhb_outlier_e e = LBHB_OUTLIER_NONE;
    for (int i = 0; i < n; i++) {
        lbhb_outlier_e cur = lbhb_outlier_record(o, failed, now, &conf, 0, 0, 3);
        if (cur != LBHB_OUTLIER_NONE) {
            e = cur;
        }
    }
    return e;
}

START_TEST(test_black_hole_is_ejected)
{
    lbhb_outlier_t o;
    int n = 0;

    memset(&o, 0, sizeof(o));
    /* Failing at once, every time, while the peers do not: out after a
     * short run (the run and the rate must both be far above the peers'). */
    while (lbhb_outlier_record(&o, 1, 100 * S, &conf, 0, 0, 3) != LBHB_OUTLIER_EJECTED) {
        ck_assert_int_lt(++n, 20);
    }
    ck_assert_int_ge(n + 1, 5);
    ck_assert(lbhb_outlier_ejected(&o, 100 * S));
    ck_assert(lbhb_outlier_ejected(&o, 110 * S - 1));
    ck_assert(!lbhb_outlier_ejected(&o, 110 * S));
    /* On probation: one failure is enough, for twice as long. */
    ck_assert_int_eq(lbhb_outlier_record(&o, 1, 110 * S, &conf, 0, 0, 3), LBHB_OUTLIER_EJECTED);
    ck_assert(lbhb_outlier_ejected(&o, 130 * S - 1));
    ck_assert(!lbhb_outlier_ejected(&o, 130 * S));
    ck_assert_int_eq(lbhb_outlier_record(&o, 1, 130 * S, &conf, 0, 0, 3), LBHB_OUTLIER_EJECTED);
    ck_assert(lbhb_outlier_ejected(&o, 170 * S - 1));
    /* Doubling stops at the maximum. */
    ck_assert_int_eq(lbhb_outlier_record(&o, 1, 170 * S, &conf, 0, 0, 3), LBHB_OUTLIER_EJECTED);
    ck_assert_int_eq(lbhb_outlier_record(&o, 1, 250 * S, &conf, 0, 0, 3), LBHB_OUTLIER_EJECTED);
    ck_assert(!lbhb_outlier_ejected(&o, 330 * S));
    /* Answers while ejected (requests already under way) change nothing. */
    ck_assert_int_eq(answers(&o, 3, 1, 260 * S), LBHB_OUTLIER_NONE);
    /* A success after it: back in full, a run is needed again. */
    ck_assert_int_eq(lbhb_outlier_record(&o, 0, 330 * S, &conf, 0, 0, 3), LBHB_OUTLIER_RETURNED);
    ck_assert_int_eq(lbhb_outlier_record(&o, 0, 331 * S, &conf, 0, 0, 3), LBHB_OUTLIER_NONE);
    ck_assert_int_eq(lbhb_outlier_record(&o, 1, 332 * S, &conf, 0, 0, 3), LBHB_OUTLIER_NONE);
    /* The run in a row starts again; the count of all ejections does not. */
    ck_assert_uint_eq(o.ejections, 0);
    ck_assert_uint_eq(o.total, 5);
}
END_TEST

START_TEST(test_errors_like_the_peers_never_eject)
{
    lbhb_outlier_t o;
    uint64_t x = 42;

    memset(&o, 0, sizeof(o));
    /* 5% failures, the peers' rate 5% too: 200,000 answers, never out,
     * whatever the runs chance makes. */
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int failed = (x >> 33) % 100 < 5;
        ck_assert_int_ne(
            lbhb_outlier_record(&o, failed, (int64_t)i * 1000, &conf, LBHB_RATE_ONE / 20, 0, 3),
            LBHB_OUTLIER_EJECTED);
    }
    /* Everyone failing (the peers' rate 100%): none is the outlier. */
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(answers(&o, 50, 1, 0), LBHB_OUTLIER_EJECTED);
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 50; i++) {
        ck_assert_int_ne(lbhb_outlier_record(&o, 1, 0, &conf, LBHB_RATE_ONE, 0, 3),
                         LBHB_OUTLIER_EJECTED);
    }
}
END_TEST

START_TEST(test_share_and_off)
{
    lbhb_outlier_t o;

    /* Half of 3 members at most: one out already, no second. */
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 50; i++) {
        ck_assert_int_ne(lbhb_outlier_record(&o, 1, 0, &conf, 0, 1, 3), LBHB_OUTLIER_EJECTED);
    }
    /* Never the only member, nor the last one in. */
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 50; i++) {
        ck_assert_int_ne(lbhb_outlier_record(&o, 1, 0, &conf, 0, 0, 1), LBHB_OUTLIER_EJECTED);
        ck_assert_int_ne(lbhb_outlier_record(&o, 1, 0, &conf, 0, 1, 2), LBHB_OUTLIER_EJECTED);
    }
    /* Two members, none out: one may go. */
    memset(&o, 0, sizeof(o));
    lbhb_outlier_e e = LBHB_OUTLIER_NONE;
    for (int i = 0; i < 50 && e != LBHB_OUTLIER_EJECTED; i++) {
        e = lbhb_outlier_record(&o, 1, 0, &conf, 0, 0, 2);
    }
    ck_assert_int_eq(e, LBHB_OUTLIER_EJECTED);
    /* consecutive 0: off. */
    lbhb_outlier_conf_t off = conf;
    off.consecutive = 0;
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(lbhb_outlier_record(&o, 1, 0, &off, 0, 0, 3), LBHB_OUTLIER_NONE);
    }
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("lbhb_outlier");
    TCase *tc = tcase_create("outlier");
    tcase_add_test(tc, test_black_hole_is_ejected);
    tcase_add_test(tc, test_errors_like_the_peers_never_eject);
    tcase_add_test(tc, test_share_and_off);
    suite_add_tcase(s, tc);
    return s;
}
