/*
 * check_ratelimit.c: unit tests for hm_ratelimit (per-source token bucket).
 */
#include <stdio.h>
#include <stdlib.h>

#include "hm_ratelimit.h"

#include "check_main.h"

#define SEC 1000000LL

static hm_addr_t ip(const char *s)
{
    hm_addr_t k;
    ck_assert_int_eq(hm_addr_from_string(&k, s, 0), 0);
    return k;
}

START_TEST(test_burst_then_rate)
{
    void *mem = malloc(hm_ratelimit_size(16));
    hm_ratelimit_t *rl = hm_ratelimit_init(mem, 16, 10, 5);
    hm_addr_t a = ip("10.0.0.1"), b = ip("10.0.0.2");
    int i, ok = 0;

    /* The burst passes at once, then nothing until tokens come back. */
    for (i = 0; i < 5; i++) {
        ck_assert(hm_ratelimit_allow(rl, &a, 0));
    }
    ck_assert(!hm_ratelimit_allow(rl, &a, 0));
    /* Other sources are not affected. */
    ck_assert(hm_ratelimit_allow(rl, &b, 0));
    /* 10/s: one more every 100 ms. */
    ck_assert(!hm_ratelimit_allow(rl, &a, 99999));
    ck_assert(hm_ratelimit_allow(rl, &a, 100000));
    /* Over ten seconds at most 10/s pass (plus the burst refilled). */
    for (i = 0; i < 10000; i++) {
        ok += hm_ratelimit_allow(rl, &a, SEC + i * 1000LL);
    }
    ck_assert_int_le(ok, 5 + 100);
    ck_assert_int_ge(ok, 99);
    free(mem);
}
END_TEST

/* A /64 is one source: its holder has 2^64 addresses to send from. */
START_TEST(test_ipv6_per_64)
{
    void *mem = malloc(hm_ratelimit_size(16));
    hm_ratelimit_t *rl = hm_ratelimit_init(mem, 16, 1, 2);
    hm_addr_t a = ip("2001:db8:1:2::1"), b = ip("2001:db8:1:2:ffff::9"), c = ip("2001:db8:1:3::1");

    ck_assert(hm_ratelimit_allow(rl, &a, 0));
    ck_assert(hm_ratelimit_allow(rl, &b, 0));
    ck_assert(!hm_ratelimit_allow(rl, &a, 0));
    ck_assert(!hm_ratelimit_allow(rl, &b, 0));
    /* The next /64 is another source. */
    ck_assert(hm_ratelimit_allow(rl, &c, 0));
    free(mem);
}
END_TEST

/* The budget of signature checks is global and refills at its rate. */
START_TEST(test_budget)
{
    void *mem = malloc(hm_ratelimit_size(16));
    hm_ratelimit_t *rl = hm_ratelimit_init(mem, 16, 1, 2);
    int i, ok = 0;

    for (i = 0; i < 2 * HM_VERIFY_BUDGET; i++) {
        ok += hm_ratelimit_budget(rl, SEC);
    }
    ck_assert_int_eq(ok, HM_VERIFY_BUDGET);
    ck_assert(!hm_ratelimit_budget(rl, SEC));
    /* A tenth of a second later, a tenth of the rate. */
    for (ok = 0, i = 0; i < HM_VERIFY_BUDGET; i++) {
        ok += hm_ratelimit_budget(rl, SEC + SEC / 10);
    }
    ck_assert_int_eq(ok, HM_VERIFY_BUDGET / 10);
    free(mem);
}
END_TEST

START_TEST(test_many_sources)
{
    void *mem = malloc(hm_ratelimit_size(8));
    hm_ratelimit_t *rl = hm_ratelimit_init(mem, 8, 1, 1);
    char buf[32];
    int i;

    /* More sources than slots: newcomers evict idle ones and still pass. */
    for (i = 0; i < 1000; i++) {
        hm_addr_t k;
        snprintf(buf, sizeof(buf), "10.1.%d.%d", i / 250, i % 250);
        k = ip(buf);
        ck_assert(hm_ratelimit_allow(rl, &k, (int64_t)i));
    }
    {
        hm_addr_t v6 = ip("2001:db8::1");
        ck_assert(hm_ratelimit_allow(rl, &v6, 5000));
        ck_assert(!hm_ratelimit_allow(rl, &v6, 5001));
    }
    free(mem);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_ratelimit");
    TCase *tc = tcase_create("bucket");

    tcase_add_test(tc, test_burst_then_rate);
    tcase_add_test(tc, test_many_sources);
    tcase_add_test(tc, test_ipv6_per_64);
    tcase_add_test(tc, test_budget);
    suite_add_tcase(s, tc);
    return s;
}
