/*
 * check_prom.c: unit tests for hb_prom (the Prometheus text format).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hb_prom.h"

#include "check_main.h"

/* Where the flushes go: one growing string, and how many flushes. */
typedef struct {
    char out[65536];
    size_t len;
    unsigned int flushes;
    unsigned int fail_after; /* 0: never fail */
} sink_t;

static int sink_flush(void *baton, const char *data, size_t len)
{
    sink_t *k = baton;

    if (k->fail_after && k->flushes >= k->fail_after) {
        return -1;
    }
    ck_assert_uint_le(k->len + len, sizeof(k->out) - 1);
    memcpy(k->out + k->len, data, len);
    k->len += len;
    k->out[k->len] = '\0';
    k->flushes++;
    return 0;
}

static sink_t sink;
static char buf[4096];

static void setup(void)
{
    memset(&sink, 0, sizeof(sink));
}

/* A writer into the sink through the big buffer, its first family begun. */
static void begin(hb_prom_t *w, const char *name, const char *type, const char *help)
{
    memset(&sink, 0, sizeof(sink));
    hb_prom_init(w, buf, sizeof(buf), sink_flush, &sink);
    hb_prom_family(w, name, type, help);
}

/* All that was written, once it went through without a failure. */
static const char *written(hb_prom_t *w)
{
    ck_assert_int_eq(hb_prom_finish(w), 0);
    return sink.out;
}

START_TEST(test_families)
{
    hb_prom_t w;
    hb_prom_label_t two[] = {{"origin", "10.0.0.1:80"}, {"state", "up"}};

    begin(&w, "heartbeat_a", "gauge", "A gauge.");
    hb_prom_u64(&w, NULL, 0, 0);
    hb_prom_u64(&w, two, 2, UINT64_MAX);
    /* A family without samples writes nothing, not even HELP. */
    hb_prom_family(&w, "heartbeat_empty_total", "counter", "Never seen.");
    hb_prom_family(&w, "heartbeat_b_total", "counter", "A counter.");
    hb_prom_u64(&w, two, 1, 42);
    ck_assert_str_eq(written(&w), "# HELP heartbeat_a A gauge.\n"
                                  "# TYPE heartbeat_a gauge\n"
                                  "heartbeat_a 0\n"
                                  "heartbeat_a{origin=\"10.0.0.1:80\",state=\"up\"} "
                                  "18446744073709551615\n"
                                  "# HELP heartbeat_b_total A counter.\n"
                                  "# TYPE heartbeat_b_total counter\n"
                                  "heartbeat_b_total{origin=\"10.0.0.1:80\"} 42\n");
    /* Everything in one flush: the buffer was big enough. */
    ck_assert_uint_eq(sink.flushes, 1);
}
END_TEST

START_TEST(test_doubles)
{
    hb_prom_t w;

    begin(&w, "d", "gauge", "h");
    hb_prom_double(&w, NULL, 0, 0.25);
    hb_prom_double(&w, NULL, 0, 12345.678);
    hb_prom_double(&w, NULL, 0, 0);
    hb_prom_double(&w, NULL, 0, NAN);
    hb_prom_double(&w, NULL, 0, INFINITY);
    hb_prom_double(&w, NULL, 0, -INFINITY);
    ck_assert_str_eq(written(&w), "# HELP d h\n# TYPE d gauge\nd 0.25\nd 12345.678\nd 0\nd NaN\n"
                                  "d +Inf\nd -Inf\n");
}
END_TEST

/* A label value and the sample line it makes. */
typedef struct {
    const char *value, *line;
} label_case_t;

/* The sample line of one gauge sample with a label of the given value. */
static void check_label(const label_case_t *c)
{
    hb_prom_t w;
    hb_prom_label_t l = {"balancer", c->value};
    const char *line;

    begin(&w, "x", "gauge", "h");
    hb_prom_u64(&w, &l, 1, 1);
    line = strstr(written(&w), "\nx{");
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(line + 1, c->line);
}

START_TEST(test_escaping)
{
    static const label_case_t cases[] = {
        /* The three characters the format escapes. */
        {"balancer://we\"ird", "x{balancer=\"balancer://we\\\"ird\"} 1\n"},
        {"a\\b", "x{balancer=\"a\\\\b\"} 1\n"},
        {"line\nbreak", "x{balancer=\"line\\nbreak\"} 1\n"},
        {"\\\"\n", "x{balancer=\"\\\\\\\"\\n\"} 1\n"},
        {"", "x{balancer=\"\"} 1\n"},
        /* Other characters pass as they are, valid UTF-8 included. */
        {"http://h:8080/a b\t{}=,", "x{balancer=\"http://h:8080/a b\t{}=,\"} 1\n"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\x93",
         "x{balancer=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\x93\"} 1\n"},
        /* The largest valid code point and the last before the surrogates. */
        {"\xf4\x8f\xbf\xbf\xed\x9f\xbf", "x{balancer=\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\"} 1\n"},
        /* Each byte that is not part of a valid sequence becomes U+FFFD: a
         * stray continuation byte, a lone lead byte, an overlong form, a
         * surrogate, a code point above U+10FFFF, a sequence cut short. */
        {"a\x80z", "x{balancer=\"a\xef\xbf\xbdz\"} 1\n"},
        {"\xff", "x{balancer=\"\xef\xbf\xbd\"} 1\n"},
        {"\xc0\xaf", "x{balancer=\"\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
        {"\xe0\x80\xaf", "x{balancer=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
        {"\xed\xa0\x80", "x{balancer=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
        {"\xf4\x90\x80\x80",
         "x{balancer=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"},
        {"ok\xe2\x82", "x{balancer=\"ok\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_label(&cases[i]);
    }
}
END_TEST

START_TEST(test_help_escaping)
{
    hb_prom_t w;

    begin(&w, "h", "gauge", "Says \"up\", a\\b\nand more.");
    hb_prom_u64(&w, NULL, 0, 1);
    ck_assert_str_eq(written(&w),
                     "# HELP h Says \"up\", a\\\\b\\nand more.\n# TYPE h gauge\nh 1\n");
}
END_TEST

/* A small buffer flushes often and splits lines anywhere, a value longer
 * than the buffer goes straight through: the text is the same. */
START_TEST(test_small_buffer)
{
    char small[64], big_value[300], expected[65536];
    hb_prom_t w;
    hb_prom_label_t l = {"member", big_value};
    size_t elen;
    int i;

    memset(big_value, 'm', sizeof(big_value) - 1);
    big_value[sizeof(big_value) - 1] = '\0';
    for (i = 0; i < 2; i++) {
        memset(&sink, 0, sizeof(sink));
        hb_prom_init(&w, i ? small : buf, i ? sizeof(small) : sizeof(buf), sink_flush, &sink);
        hb_prom_family(&w, "heartbeat_member_in_flight", "gauge", "In flight.");
        for (int j = 0; j < 20; j++) {
            hb_prom_u64(&w, &l, 1, (uint64_t)j * 1000003u);
            hb_prom_double(&w, &l, 1, j / 8.0);
        }
        ck_assert_int_eq(hb_prom_finish(&w), 0);
        if (!i) {
            memcpy(expected, sink.out, sink.len + 1);
            elen = sink.len;
            ck_assert_uint_lt(sink.flushes, 10);
        }
    }
    ck_assert_uint_ge(sink.flushes, 40);
    ck_assert_uint_eq(sink.len, elen);
    ck_assert_str_eq(sink.out, expected);
}
END_TEST

START_TEST(test_flush_failure)
{
    char small[64];
    hb_prom_t w;

    sink.fail_after = 1;
    hb_prom_init(&w, small, sizeof(small), sink_flush, &sink);
    hb_prom_family(&w, "heartbeat_origin_ready", "gauge", "Ready.");
    for (int j = 0; j < 10; j++) {
        hb_prom_u64(&w, NULL, 0, (uint64_t)j);
    }
    ck_assert_int_eq(hb_prom_finish(&w), -1);
    /* What went out before the failure, and nothing after it. */
    ck_assert_uint_eq(sink.flushes, 1);
    ck_assert_uint_le(sink.len, sizeof(small));
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_prom");
    TCase *tc = tcase_create("prom");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_families);
    tcase_add_test(tc, test_doubles);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_help_escaping);
    tcase_add_test(tc, test_small_buffer);
    tcase_add_test(tc, test_flush_failure);
    suite_add_tcase(s, tc);
    return s;
}
