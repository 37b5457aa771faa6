/*
 * check_join.c: unit tests for hb_join (the balancer announcement, join=).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hb_auth.h"
#include "hb_join.h"
#include "hb_packet.h"

#include "check_main.h"

/* 64 bytes: the longest name there may be. */
#define NAME64 "n123456789012345678901234567890123456789012345678901234567890123"

static hb_join_set_t parse_ok(const char *s)
{
    hb_join_set_t set;
    int r = hb_join_parse(s, strlen(s), &set);
    ck_assert_msg(r == 0, "hb_join_parse(\"%s\") = %d, want 0", s, r);
    return set;
}

static uint32_t hash(const char *name)
{
    return hb_join_hash(name, strlen(name));
}

/* ---- hb_join_parse: accepted ------------------------------------------ */

START_TEST(test_parse_single)
{
    hb_join_set_t set = parse_ok("shop");
    ck_assert_uint_eq(set.n, 1);
    ck_assert_uint_eq(set.j[0].name_hash, hash("shop"));
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_HTTP);
    ck_assert_uint_eq(set.j[0].port, 0);
}
END_TEST

START_TEST(test_parse_scheme)
{
    hb_join_set_t set = parse_ok("api:https");
    ck_assert_uint_eq(set.n, 1);
    ck_assert_uint_eq(set.j[0].name_hash, hash("api"));
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_HTTPS);
    ck_assert_uint_eq(set.j[0].port, 0);
    /* Schemes are read without regard to case. */
    set = parse_ok("api:WSS");
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_WSS);
}
END_TEST

START_TEST(test_parse_scheme_port)
{
    hb_join_set_t set = parse_ok("api:https:8443");
    ck_assert_uint_eq(set.n, 1);
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_HTTPS);
    ck_assert_uint_eq(set.j[0].port, 8443);
    set = parse_ok("a:ajp:1");
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_AJP);
    ck_assert_uint_eq(set.j[0].port, 1);
    set = parse_ok("a:h2c:65535");
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_H2C);
    ck_assert_uint_eq(set.j[0].port, 65535);
    /* Five digits, leading zeros and all. */
    set = parse_ok("a:http:00080");
    ck_assert_uint_eq(set.j[0].port, 80);
}
END_TEST

START_TEST(test_parse_four)
{
    hb_join_set_t set = parse_ok("shop,api:https:8443,Back_end.v2-1:fcgi,x:ws:9000");
    ck_assert_uint_eq(set.n, 4);
    ck_assert_uint_eq(set.j[0].name_hash, hash("shop"));
    ck_assert_uint_eq(set.j[0].scheme, HB_SCHEME_HTTP);
    ck_assert_uint_eq(set.j[1].name_hash, hash("api"));
    ck_assert_uint_eq(set.j[1].scheme, HB_SCHEME_HTTPS);
    ck_assert_uint_eq(set.j[1].port, 8443);
    ck_assert_uint_eq(set.j[2].name_hash, hash("back_end.V2-1"));
    ck_assert_uint_eq(set.j[2].scheme, HB_SCHEME_FCGI);
    ck_assert_uint_eq(set.j[2].port, 0);
    ck_assert_uint_eq(set.j[3].name_hash, hash("x"));
    ck_assert_uint_eq(set.j[3].scheme, HB_SCHEME_WS);
    ck_assert_uint_eq(set.j[3].port, 9000);
}
END_TEST

START_TEST(test_parse_longest)
{
    char text[HB_JOIN_TEXT_MAX + 2];
    hb_join_set_t set;

    /* A 64-byte name is fine, a 65-byte one is not (test_parse_bad). */
    set = parse_ok(NAME64);
    ck_assert_uint_eq(set.j[0].name_hash, hash(NAME64));

    /* Four of the longest items: the longest text there can be. */
    snprintf(text, sizeof(text),
             "%.63sa:uwsgi:65535,%.63sb:uwsgi:65535,%.63sc:uwsgi:65535,"
             "%.63sd:uwsgi:65535",
             NAME64, NAME64, NAME64, NAME64);
    ck_assert_uint_le(strlen(text), HB_JOIN_TEXT_MAX);
    set = parse_ok(text);
    ck_assert_uint_eq(set.n, 4);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_uint_eq(set.j[i].scheme, HB_SCHEME_UWSGI);
        ck_assert_uint_eq(set.j[i].port, 65535);
    }
}
END_TEST

START_TEST(test_parse_case_variants)
{
    hb_join_set_t a = parse_ok("Shop:HTTPS:443"), b = parse_ok("sHOP:https:443");
    ck_assert_uint_eq(a.j[0].name_hash, b.j[0].name_hash);
    ck_assert(hb_join_equal(&a, &b));
}
END_TEST

/* ---- hb_join_parse: refused ------------------------------------------- */

START_TEST(test_parse_bad)
{
    static const char *const bad[] = {
        "",
        ",a",
        "a,",
        "a,,b",
        ",",
        "sh op",
        "shop/",
        "shop!",
        "balancer://shop",
        "caf\xc3\xa9",
        NAME64 "x",
        "a:gopher",
        "a:",
        "a::80",
        "a:http:",
        "a:http:0",
        "a:http:00000",
        "a:http:65536",
        "a:http:99999",
        "a:http:008080",
        "a:http:-1",
        "a:http:+80",
        "a:http:8o",
        "a:http:80:1",
        ":http",
        "a,b,c,d,e",
        "a,b,a",
        "shop,SHOP",
        "Shop:https,sHoP:http:81",
    };
    hb_join_set_t set;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&set, 0x5a, sizeof(set));
        ck_assert_msg(hb_join_parse(bad[i], strlen(bad[i]), &set) == -1, "accepted \"%s\"", bad[i]);
        /* All or nothing: a refused text leaves an empty set. */
        ck_assert_msg(set.n == 0, "\"%s\" left n=%u", bad[i], set.n);
    }
    /* An embedded NUL is a bad byte, not the end of the text. */
    ck_assert_int_eq(hb_join_parse("a\0b", 3, &set), -1);
    /* Past HB_JOIN_TEXT_MAX, whatever it holds. */
    {
        char text[HB_JOIN_TEXT_MAX + 2];
        memset(text, 'a', sizeof(text));
        ck_assert_int_eq(hb_join_parse(text, HB_JOIN_TEXT_MAX + 1, &set), -1);
    }
}
END_TEST

/* ---- the helpers ------------------------------------------------------ */

START_TEST(test_hash)
{
    ck_assert_uint_eq(hash("shop"), hash("SHOP"));
    ck_assert_uint_eq(hash("Shop-1.a_B"), hash("sHOP-1.A_b"));
    ck_assert_uint_ne(hash("shop"), hash("shop1"));
    ck_assert_uint_ne(hash("shop"), hash("shoq"));
    /* Only the given bytes count. */
    ck_assert_uint_eq(hb_join_hash("shopping", 4), hash("shop"));
    /* FNV-1a of nothing is its offset basis. */
    ck_assert_uint_eq(hb_join_hash("", 0), 2166136261u);
    /* Never 0, which an entry's join slot reads as "no balancer": the
     * FNV-1a of "7met1an" is 0 (found by search), so it must come out as
     * something else, in any case. */
    ck_assert_uint_eq(hash("7met1an"), 1);
    ck_assert_uint_eq(hash("7MET1AN"), 1);
    ck_assert_uint_ne(hash("7met1am"), 0);
}
END_TEST

START_TEST(test_find)
{
    hb_join_set_t set = parse_ok("shop,api:https:8443");
    hb_join_t j;

    memset(&j, 0, sizeof(j));
    ck_assert_int_eq(hb_join_find(&set, hash("API"), &j), 1);
    ck_assert_uint_eq(j.name_hash, hash("api"));
    ck_assert_uint_eq(j.scheme, HB_SCHEME_HTTPS);
    ck_assert_uint_eq(j.port, 8443);
    ck_assert_int_eq(hb_join_find(&set, hash("shop"), &j), 1);
    ck_assert_uint_eq(j.scheme, HB_SCHEME_HTTP);
    ck_assert_uint_eq(j.port, 0);
    ck_assert_int_eq(hb_join_find(&set, hash("shop"), NULL), 1);
    j.port = 1234;
    ck_assert_int_eq(hb_join_find(&set, hash("other"), &j), 0);
    ck_assert_uint_eq(j.port, 1234); /* untouched when not found */
    memset(&set, 0, sizeof(set));
    ck_assert_int_eq(hb_join_find(&set, hash("shop"), NULL), 0);
}
END_TEST

START_TEST(test_equal)
{
    hb_join_set_t a = parse_ok("shop,api:https:8443");
    hb_join_set_t b = parse_ok("SHOP,api:HTTPS:8443");
    hb_join_set_t empty1, empty2;

    ck_assert(hb_join_equal(&a, &b));
    b = parse_ok("api:https:8443,shop"); /* same balancers, other order */
    ck_assert(!hb_join_equal(&a, &b));
    b = parse_ok("shop,api:https:8444");
    ck_assert(!hb_join_equal(&a, &b));
    b = parse_ok("shop,api:http:8443");
    ck_assert(!hb_join_equal(&a, &b));
    b = parse_ok("shop");
    ck_assert(!hb_join_equal(&a, &b));
    ck_assert(!hb_join_equal(&b, &a));
    /* Two empty sets are equal, whatever lies past n. */
    memset(&empty1, 0, sizeof(empty1));
    memset(&empty2, 0xff, sizeof(empty2));
    empty2.n = 0;
    ck_assert(hb_join_equal(&empty1, &empty2));
    ck_assert(!hb_join_equal(&empty1, &a));
}
END_TEST

START_TEST(test_scheme_round_trip)
{
    static const char *const names[] = {"http", "https", "h2c",   "h2", "ajp",
                                        "fcgi", "scgi",  "uwsgi", "ws", "wss"};

    ck_assert_uint_eq(sizeof(names) / sizeof(names[0]), HB_SCHEME_COUNT - 1);
    for (int s = HB_SCHEME_HTTP; s < HB_SCHEME_COUNT; s++) {
        const char *str = hb_scheme_str((hb_scheme_e)s);
        ck_assert_str_eq(str, names[s - 1]);
        ck_assert_int_eq(hb_scheme_parse(str, strlen(str)), s);
    }
    ck_assert_int_eq(hb_scheme_parse("HTTPS", 5), HB_SCHEME_HTTPS);
    ck_assert_int_eq(hb_scheme_parse("https", 4), HB_SCHEME_HTTP);
    ck_assert_int_eq(hb_scheme_parse("gopher", 6), HB_SCHEME_NONE);
    ck_assert_int_eq(hb_scheme_parse("", 0), HB_SCHEME_NONE);
    ck_assert_int_eq(hb_scheme_parse("http2", 5), HB_SCHEME_NONE);
    ck_assert_str_eq(hb_scheme_str(HB_SCHEME_NONE), "?");
    ck_assert_str_eq(hb_scheme_str(HB_SCHEME_COUNT), "?");
}
END_TEST

START_TEST(test_name_ok)
{
    ck_assert_int_eq(hb_join_name_ok("a", 1), 1);
    ck_assert_int_eq(hb_join_name_ok(NAME64, 64), 1);
    ck_assert_int_eq(hb_join_name_ok(NAME64 "x", 65), 0);
    ck_assert_int_eq(hb_join_name_ok("", 0), 0);
    ck_assert_int_eq(hb_join_name_ok("a:b", 3), 0);
    ck_assert_int_eq(hb_join_name_ok("a,b", 3), 0);
    ck_assert_int_eq(hb_join_name_ok("a&b", 3), 0);
    ck_assert_int_eq(hb_join_name_ok("a=b", 3), 0);
}
END_TEST

/* The longest heartbeat mod_heartbeat can send, with four of the longest
 * announcements and signed with the longest key id, is still one datagram
 * the proxies accept. */
START_TEST(test_longest_signed_packet_fits)
{
    char text[HB_JOIN_TEXT_MAX + 1], buf[HB_PACKET_MAX + 1];
    hb_packet_t p, q;
    hb_secret_t k;
    size_t n;

    snprintf(text, sizeof(text),
             "%.63sa:uwsgi:65535,%.63sb:uwsgi:65535,%.63sc:uwsgi:65535,"
             "%.63sd:uwsgi:65535",
             NAME64, NAME64, NAME64, NAME64);
    memset(&p, 0, sizeof(p));
    p.version = 1;
    p.ready = HB_COUNT_MAX;
    p.busy = HB_COUNT_MAX;
    p.port = 65535;
    p.seq = UINT64_MAX;
    p.interval_ms = HB_INTERVAL_MAX_MS;
    p.state = HB_STATE_STOPPING;
    p.join_text = text;
    p.join_len = strlen(text);
    strcpy(p.addr, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    p.flags = HB_HAS_PORT | HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE | HB_HAS_JOIN | HB_HAS_ADDR;
    ck_assert_int_eq(hb_secret_set(&k, "k0123456789012345678901234567890",
                                   (const unsigned char *)"0123456789abcdef0123456789abcdef", 32),
                     0);
    n = hb_packet_format(&p, buf, sizeof(buf));
    ck_assert_uint_gt(n, 0);
    /* A timestamp of 19 digits: far past any clock. */
    n = hb_auth_sign(&k, buf, n, sizeof(buf), INT64_MAX);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, HB_PACKET_MAX);
    ck_assert_int_eq(hb_packet_parse(buf, n, &q), HB_OK);
    ck_assert_uint_eq(q.join.n, 4);
    ck_assert_uint_eq(q.join_len, strlen(text));
    ck_assert_int_eq(memcmp(q.join_text, text, q.join_len), 0);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_join");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_single);
    tcase_add_test(tc, test_parse_scheme);
    tcase_add_test(tc, test_parse_scheme_port);
    tcase_add_test(tc, test_parse_four);
    tcase_add_test(tc, test_parse_longest);
    tcase_add_test(tc, test_parse_case_variants);
    tcase_add_test(tc, test_parse_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_test(tc, test_hash);
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_equal);
    tcase_add_test(tc, test_scheme_round_trip);
    tcase_add_test(tc, test_name_ok);
    tcase_add_test(tc, test_longest_signed_packet_fits);
    suite_add_tcase(s, tc);
    return s;
}
