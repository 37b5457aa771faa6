/*
 * check_load.c: unit tests for lbhb_load (per-response load reports).
 */
#include <string.h>

#include "lbhb_load.h"

#include "check_main.h"

#define NOW_MS INT64_C(1796000000000)

static hb_secret_t key, other;

static void setup(void)
{
    ck_assert_int_eq(hb_secret_set(&key, "site", (const unsigned char *)"0123456789abcdef01", 18),
                     0);
    ck_assert_int_eq(
        hb_secret_set(&other, "site", (const unsigned char *)"another-key-material", 20), 0);
}

static lbhb_load_e parse(const char *v, const hb_secret_t *keys, unsigned int n, lbhb_load_t *out)
{
    return lbhb_load_parse(v, strlen(v), keys, n, NOW_MS, 30000, out);
}

START_TEST(test_unsigned)
{
    lbhb_load_t ld;
    char buf[LBHB_LOAD_MAX + 1];
    size_t n = lbhb_load_format(buf, sizeof(buf), 12, 20, 8080, NULL, NULL, NOW_MS);

    ck_assert_str_eq(buf, "ready=12&busy=20&port=8080");
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_int_eq(parse(buf, NULL, 0, &ld), LBHB_LOAD_OK);
    ck_assert_uint_eq(ld.ready, 12);
    ck_assert_uint_eq(ld.busy, 20);
    ck_assert_uint_eq(ld.port, 8080);
    ck_assert_str_eq(ld.addr, "");
    /* Unknown fields are for later versions; the order is free. */
    ck_assert_int_eq(parse("busy=1&x=y&ready=2", NULL, 0, &ld), LBHB_LOAD_OK);
    ck_assert_uint_eq(ld.ready, 2);
    /* With keys, an unsigned report is refused. */
    ck_assert_int_eq(parse(buf, &key, 1, &ld), LBHB_LOAD_UNSIGNED);
}
END_TEST

START_TEST(test_malformed)
{
    static const char *const bad[] = {"",
                                      "ready=-1&busy=2",
                                      "ready=99999999999&busy=0",
                                      "ready=1&busy=1&ready=2",
                                      "ready=5",
                                      "busy=5",
                                      "ready=1&busy=x",
                                      "ready=1&busy=2&port=0",
                                      "ready=1&busy=2&port=65536",
                                      "ready=1 &busy=2"};
    char huge[LBHB_LOAD_MAX + 2];
    lbhb_load_t ld;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(parse(bad[i], NULL, 0, &ld) == LBHB_LOAD_MALFORMED, "%s accepted", bad[i]);
    }
    memset(huge, '1', sizeof(huge) - 1);
    memcpy(huge, "ready=", 6);
    huge[sizeof(huge) - 1] = '\0';
    ck_assert_int_eq(parse(huge, NULL, 0, &ld), LBHB_LOAD_MALFORMED);
}
END_TEST

START_TEST(test_signed)
{
    lbhb_load_t ld;
    char buf[LBHB_LOAD_MAX + 1];
    size_t n = lbhb_load_format(buf, sizeof(buf), 3, 4, 80, "10.0.0.5", &key, NOW_MS);

    ck_assert_uint_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(buf, "ready=3&busy=4&port=80&addr=10.0.0.5&ts="));
    ck_assert_int_eq(parse(buf, &key, 1, &ld), LBHB_LOAD_OK);
    ck_assert_uint_eq(ld.ready, 3);
    ck_assert_str_eq(ld.addr, "10.0.0.5");
    ck_assert_int_eq(parse(buf, &other, 1, &ld), LBHB_LOAD_BADSIG);
    /* Read without keys, the signature is not checked, the counts are. */
    ck_assert_int_eq(parse(buf, NULL, 0, &ld), LBHB_LOAD_OK);
    ck_assert_uint_eq(ld.busy, 4);
    /* Outside the window. */
    n = lbhb_load_format(buf, sizeof(buf), 3, 4, 80, "10.0.0.5", &key, NOW_MS - 60000);
    ck_assert_int_eq(parse(buf, &key, 1, &ld), LBHB_LOAD_BADSIG);
    /* Signed without naming the member: whose is it? */
    strcpy(buf, "ready=3&busy=4");
    n = hb_auth_sign(&key, buf, strlen(buf), sizeof(buf), NOW_MS);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(parse(buf, &key, 1, &ld), LBHB_LOAD_IDENTITY);
    /* Too small a buffer. */
    ck_assert_uint_eq(lbhb_load_format(buf, 10, 3, 4, 80, NULL, NULL, NOW_MS), 0);
}
END_TEST

START_TEST(test_slot)
{
    lbhb_load_slot_t s;
    uint32_t r, b;
    int64_t at;

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(lbhb_load_get(&s, &r, &b, &at), 0);
    lbhb_load_put(&s, 7, 8, 100);
    ck_assert_int_eq(lbhb_load_get(&s, &r, &b, &at), 1);
    ck_assert_uint_eq(r, 7);
    ck_assert_uint_eq(b, 8);
    ck_assert_int_eq(at, 100);
    /* A writer finding another one writing leaves it be; a reader finding
     * the slot being written has nothing. */
    s.seq++;
    lbhb_load_put(&s, 1, 1, 200);
    ck_assert_int_eq(lbhb_load_get(&s, &r, &b, &at), 0);
    s.seq++;
    ck_assert_int_eq(lbhb_load_get(&s, &r, &b, &at), 1);
    ck_assert_uint_eq(r, 7);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("lbhb_load");
    TCase *tc = tcase_create("load");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_unsigned);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_signed);
    tcase_add_test(tc, test_slot);
    suite_add_tcase(s, tc);
    return s;
}
