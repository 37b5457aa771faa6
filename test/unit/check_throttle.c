/*
 * check_throttle.c: unit tests for hb_throttle (one report per period).
 */
#include <pthread.h>
#include <stdlib.h>

#include "hb_throttle.h"

#include "check_main.h"

#define S 1000000

START_TEST(test_first_then_one_per_period)
{
    hb_throttle_t t = {0, 0};
    uint64_t held = 99;

    ck_assert_int_eq(hb_throttle(&t, 5 * S, 60 * S, &held), 1);
    ck_assert_uint_eq(held, 0);
    ck_assert_int_eq(hb_throttle(&t, 6 * S, 60 * S, &held), 0);
    ck_assert_int_eq(hb_throttle(&t, 64 * S, 60 * S, &held), 0);
    ck_assert_int_eq(hb_throttle(&t, 65 * S, 60 * S, &held), 1);
    ck_assert_uint_eq(held, 2);
    ck_assert_int_eq(hb_throttle(&t, 66 * S, 60 * S, NULL), 0);
    /* A clock stepped back reports rather than staying silent. */
    ck_assert_int_eq(hb_throttle(&t, 1 * S, 60 * S, &held), 1);
    ck_assert_uint_eq(held, 1);
}
END_TEST

typedef struct {
    hb_throttle_t *t;
    int won;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    for (int i = 0; i < 10000; i++) {
        r->won += hb_throttle(r->t, 100 * S, 60 * S, NULL);
    }
    return NULL;
}

START_TEST(test_one_winner_among_threads)
{
    hb_throttle_t t = {1, 0}; /* reported at time 1: due again at 100 s */
    racer_t r[4];
    pthread_t th[4];
    int won = 0;
    uint64_t held = 0;

    for (int i = 0; i < 4; i++) {
        r[i].t = &t;
        r[i].won = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        won += r[i].won;
    }
    ck_assert_int_eq(won, 1);
    /* Every call but the winner's was counted. */
    ck_assert_int_eq(hb_throttle(&t, 200 * S, 60 * S, &held), 1);
    ck_assert_uint_eq(held, 4 * 10000 - 1);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_throttle");
    TCase *tc = tcase_create("throttle");
    tcase_add_test(tc, test_first_then_one_per_period);
    tcase_add_test(tc, test_one_winner_among_threads);
    suite_add_tcase(s, tc);
    return s;
}
