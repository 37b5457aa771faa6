/*
 * check_config.c: unit tests for hb_config (directive value parsing).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "hb_config.h"

static int64_t dur(const char *s)
{
    int64_t v = -42;
    ck_assert_msg(hb_parse_duration(s, &v) == 0, "'%s' should parse", s);
    return v;
}

static void bad(const char *s)
{
    int64_t v = -42;
    ck_assert_msg(hb_parse_duration(s, &v) == -1, "'%s' should be refused", s);
    ck_assert_msg(v == -42, "'%s': output written on failure", s);
}

START_TEST(test_units)
{
    ck_assert_int_eq(dur("1"), 1000000);
    ck_assert_int_eq(dur("1s"), 1000000);
    ck_assert_int_eq(dur("250ms"), 250000);
    ck_assert_int_eq(dur("0"), 0);
    ck_assert_int_eq(dur("2mi"), 120000000);
    ck_assert_int_eq(dur("1h"), 3600000000LL);
    ck_assert_int_eq(dur("007ms"), 7000);
}
END_TEST

START_TEST(test_refused)
{
    bad(NULL);
    bad("");
    bad("soon");
    bad("s");
    bad("ms");
    bad("-1");
    bad("+1");
    bad(" 1");
    bad("1 ");
    bad("1.5s");
    bad("1sec");
    bad("1m"); /* ambiguous: httpd says mi for minutes */
    bad("1S");
    bad("10d");
    bad("1s1");
    bad("99999999999h");            /* more digits than allowed */
    bad("99999999999999999999999"); /* overflow */
}
END_TEST

START_TEST(test_large_values)
{
    /* Values whose microseconds would not fit are refused, not wrapped. */
    ck_assert_int_eq(dur("2562047788h"), 2562047788LL * 3600000000LL);
    bad("2562047789h");
    ck_assert_int_eq(dur("9999999999"), 9999999999LL * 1000000LL);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("hb_config");
    TCase *tc = tcase_create("duration");
    tcase_add_test(tc, test_units);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_large_values);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
