/*
 * check_pace.c: unit tests for hm_pace (the receiver's wait between reads).
 */
#include <stdlib.h>

#include "hm_pace.h"

#include "check_main.h"

#define MS 1000

/* A sender at a steady rate: each wait gathers rate x wait datagrams. */
static int gathered_at(const hm_pace_t *p, int per_second)
{
    return (int)((int64_t)per_second * p->wait / 1000000);
}

static int64_t settle(hm_pace_t *p, int per_second)
{
    for (int i = 0; i < 50; i++) {
        hm_pace_update(p, gathered_at(p, per_second));
    }
    return p->wait;
}

START_TEST(test_starts_short)
{
    hm_pace_t p;

    hm_pace_init(&p, 1 * MS, 20 * MS, 1024);
    ck_assert_int_eq(p.wait, 1 * MS);
}
END_TEST

START_TEST(test_settles_by_rate)
{
    hm_pace_t p;

    hm_pace_init(&p, 1 * MS, 20 * MS, 1024);
    /* Slow: the longest wait, still far from the target. */
    ck_assert_int_eq(settle(&p, 1000), 20 * MS);
    ck_assert_int_eq(settle(&p, 10000), 20 * MS);
    /* Fast: short enough that a wait gathers at most the target and at
     * least half of it. */
    for (int rate = 60000; rate <= 800000; rate *= 2) {
        settle(&p, rate);
        ck_assert_int_le(gathered_at(&p, rate), 1024);
        ck_assert_int_ge(gathered_at(&p, rate), 512);
        /* Steady: nothing moves any more. */
        int64_t w = p.wait;
        hm_pace_update(&p, gathered_at(&p, rate));
        ck_assert_int_eq(p.wait, w);
    }
    /* Faster than even the shortest wait can follow: the shortest. */
    ck_assert_int_eq(settle(&p, 10000000), 1 * MS);
    /* And back to slow. */
    ck_assert_int_eq(settle(&p, 100), 20 * MS);
}
END_TEST

START_TEST(test_burst_shortens_at_once)
{
    hm_pace_t p;

    hm_pace_init(&p, 1 * MS, 20 * MS, 256);
    settle(&p, 1000);
    hm_pace_update(&p, 5000);
    ck_assert_int_eq(p.wait, 10 * MS);
    hm_pace_update(&p, 257);
    ck_assert_int_eq(p.wait, 5 * MS);
    /* Between half and all of the target: unchanged. */
    hm_pace_update(&p, 128);
    hm_pace_update(&p, 256);
    ck_assert_int_eq(p.wait, 5 * MS);
    hm_pace_update(&p, 127);
    ck_assert_int_eq(p.wait, 10 * MS);
}
END_TEST

START_TEST(test_bad_bounds)
{
    hm_pace_t p;

    hm_pace_init(&p, 0, -5, 0);
    ck_assert_int_eq(p.min, 1);
    ck_assert_int_eq(p.max, 1);
    ck_assert_int_eq(p.target, 1);
    hm_pace_update(&p, 0);
    ck_assert_int_eq(p.wait, 1);
    hm_pace_update(&p, 1000);
    ck_assert_int_eq(p.wait, 1);
}
END_TEST

START_TEST(test_target_from_buffer)
{
    /* 4 MB set, reported doubled by Linux. */
    ck_assert_int_eq(hm_pace_target(8L << 20, 2048, 1024), 1024);
    /* Debian's default rmem_max (212992), reported doubled. */
    ck_assert_int_eq(hm_pace_target(425984, 2048, 1024), 208);
    ck_assert_int_eq(hm_pace_target(4096, 2048, 1024), 16);
    ck_assert_int_eq(hm_pace_target(0, 2048, 1024), 16);
    ck_assert_int_eq(hm_pace_target(1L << 20, 0, 1024), 16);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_pace");
    TCase *tc = tcase_create("pace");

    tcase_add_test(tc, test_starts_short);
    tcase_add_test(tc, test_settles_by_rate);
    tcase_add_test(tc, test_burst_shortens_at_once);
    tcase_add_test(tc, test_bad_bounds);
    tcase_add_test(tc, test_target_from_buffer);
    suite_add_tcase(s, tc);
    return s;
}
