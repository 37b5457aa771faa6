/*
 * check_config.c: unit tests for hb_config (directive value parsing).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"

#include "hb_config.h"

#include "check_main.h"

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

static apr_pool_t *pool;

static void pool_setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
}

START_TEST(test_choice)
{
    static const char *const words[] = {"most", "weighted", "p2c", NULL};
    static const char *const two[] = {"up", "drain", NULL};
    const char *err;
    int i = -1;

    ck_assert_ptr_null(hb_config_choice(pool, "X", "P2C", words, &i));
    ck_assert_int_eq(i, 2);
    ck_assert_ptr_null(hb_config_choice(pool, "X", "most", words, &i));
    ck_assert_int_eq(i, 0);
    i = -1;
    err = hb_config_choice(pool, "HeartbeatPickMode", "best", words, &i);
    ck_assert_str_eq(err, "HeartbeatPickMode: 'best' must be most, weighted or p2c");
    ck_assert_int_eq(i, -1);
    err = hb_config_choice(pool, "HeartbeatState", "", two, &i);
    ck_assert_str_eq(err, "HeartbeatState: '' must be up or drain");
}
END_TEST

START_TEST(test_time)
{
    int64_t t = -1;
    const char *err;

    ck_assert_ptr_null(hb_config_time(pool, "X", "250ms", 100000, 3600000000LL, &t));
    ck_assert_int_eq(t, 250000);
    ck_assert_ptr_null(hb_config_time(pool, "X", "100ms", 100000, 3600000000LL, &t));
    ck_assert_ptr_null(hb_config_time(pool, "X", "1h", 100000, 3600000000LL, &t));
    t = -1;
    err = hb_config_time(pool, "HeartbeatInterval", "50ms", 100000, 3600000000LL, &t);
    ck_assert_str_eq(err, "HeartbeatInterval: '50ms' is out of range (100ms to 3600s)");
    ck_assert_int_eq(t, -1);
    err = hb_config_time(pool, "HeartbeatInterval", "soon", 1000000, 86400000000LL, &t);
    ck_assert_str_eq(
        err, "HeartbeatInterval: 'soon' is not a time (e.g. 2s or 500ms; from 1s to 86400s)");
    ck_assert_ptr_nonnull(hb_config_time(pool, "X", "3601", 100000, 3600000000LL, &t));
    ck_assert_int_eq(t, -1);
}
END_TEST

START_TEST(test_addr)
{
    apr_sockaddr_t *sa = NULL;
    const char *err;
    char ip[64];

    ck_assert_ptr_null(hb_config_addr(pool, "X", "127.0.0.1:27999", 1, &sa));
    ck_assert_int_eq(sa->port, 27999);
    apr_sockaddr_ip_getbuf(ip, sizeof(ip), sa);
    ck_assert_str_eq(ip, "127.0.0.1");
    ck_assert_ptr_null(hb_config_addr(pool, "X", "[::1]:80", 1, &sa));
    ck_assert_int_eq(sa->family, APR_INET6);
    ck_assert_ptr_null(hb_config_addr(pool, "X", "10.0.0.1", 0, &sa));
    err = hb_config_addr(pool, "HeartbeatAddress", "127.0.0.1", 1, &sa);
    ck_assert_str_eq(err, "HeartbeatAddress: '127.0.0.1' has no port (host:port or [ipv6]:port)");
    err = hb_config_addr(pool, "HeartbeatSource", "127.0.0.1:80", 0, &sa);
    ck_assert_str_eq(err, "HeartbeatSource: '127.0.0.1:80' takes an address without a port");
    err = hb_config_addr(pool, "X", "[fe80::1%lo]:80", 1, &sa);
    ck_assert_ptr_nonnull(strstr(err, "scoped IPv6 addresses are not supported"));
    err = hb_config_addr(pool, "X", "[::1:80", 1, &sa);
    ck_assert_ptr_nonnull(strstr(err, "is not an address"));
}
END_TEST

/* HeartbeatAllow: whole addresses, optionally /prefix; never APR's
 * shorthand, under which "10" trusted all of 10.0.0.0/8. */
static int allows(apr_ipsubnet_t *sub, const char *ip)
{
    apr_sockaddr_t *sa;

    ck_assert_int_eq(apr_sockaddr_info_get(&sa, ip, APR_UNSPEC, 0, APR_IPV4_ADDR_OK, pool),
                     APR_SUCCESS);
    return apr_ipsubnet_test(sub, sa);
}

START_TEST(test_subnet)
{
    static const char *const refused[] = {
        "10",          "10.1",         "10.0.0",      "10.0.0.0.0",
        "10.0.0.256",  "10..0.1",      "010.0.0.1",   "0x0a.0.0.1",
        "10.0.0.0/",   "10.0.0.0/33",  "10.0.0.0/-1", "10.0.0.0/0",
        "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0/255.0.0.0",
        "::1/129",     "fe80::1%lo",   "example.com", "",
        "/8",          "1.2.3.4 ",     "::g",         "10/8",
        "10.1/16",     "10.0.0.0/8x",
    };
    apr_ipsubnet_t *sub = NULL;
    const char *err;
    size_t i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err = hb_config_subnet(pool, "HeartbeatAllow", refused[i], &sub);
        ck_assert_msg(err != NULL, "'%s' accepted", refused[i]);
        ck_assert_msg(!strncmp(err, "HeartbeatAllow: '", 17) && strstr(err, refused[i]), "'%s': %s",
                      refused[i], err);
    }
    err = hb_config_subnet(pool, "HeartbeatAllow", "10", &sub);
    ck_assert_str_eq(err, "HeartbeatAllow: '10' is not a whole IPv4 address: write all four "
                          "parts (e.g. 10.0.0.0/8, not 10)");
    err = hb_config_subnet(pool, "HeartbeatAllow", "10.0.0.0/33", &sub);
    ck_assert_ptr_nonnull(strstr(err, "from 1 to 32"));
    err = hb_config_subnet(pool, "HeartbeatAllow", "2001:db8::/200", &sub);
    ck_assert_ptr_nonnull(strstr(err, "from 1 to 128"));

    ck_assert_ptr_null(hb_config_subnet(pool, "X", "10.0.0.0/8", &sub));
    ck_assert(allows(sub, "10.200.1.1"));
    ck_assert(!allows(sub, "11.0.0.1"));
    ck_assert_ptr_null(hb_config_subnet(pool, "X", "127.0.0.1", &sub));
    ck_assert(allows(sub, "127.0.0.1"));
    ck_assert(!allows(sub, "127.0.0.2"));
    ck_assert_ptr_null(hb_config_subnet(pool, "X", "127.0.0.16/28", &sub));
    ck_assert(allows(sub, "127.0.0.31"));
    ck_assert(!allows(sub, "127.0.0.32"));
    ck_assert_ptr_null(hb_config_subnet(pool, "X", "0.0.0.0/1", &sub));
    ck_assert(allows(sub, "127.0.0.1"));
    ck_assert(!allows(sub, "192.0.2.1"));
    ck_assert_ptr_null(hb_config_subnet(pool, "X", "::1", &sub));
    ck_assert(allows(sub, "::1"));
    ck_assert_ptr_null(hb_config_subnet(pool, "X", "2001:db8:1::/64", &sub));
    ck_assert(allows(sub, "2001:db8:1::5"));
    ck_assert(!allows(sub, "2001:db8:2::5"));
    /* An IPv4 range still matches the IPv4-mapped form. */
    ck_assert_ptr_null(hb_config_subnet(pool, "X", "10.0.0.0/24", &sub));
    ck_assert(allows(sub, "::ffff:10.0.0.7"));
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_config");
    TCase *tc = tcase_create("duration");
    tcase_add_test(tc, test_units);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_large_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("directives");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, test_choice);
    tcase_add_test(tc, test_time);
    tcase_add_test(tc, test_addr);
    tcase_add_test(tc, test_subnet);
    suite_add_tcase(s, tc);
    return s;
}
