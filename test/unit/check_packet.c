/*
 * check_packet.c: unit tests for hb_packet (wire format parser/formatter).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_packet.h"

#include "check_main.h"

/* Printable rendering of arbitrary bytes for failure messages. */
static const char *esc(const char *s, size_t len)
{
    static char out[512];
    size_t o = 0, shown = len > 80 ? 80 : len;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
        }
    }
    if (shown < len) {
        snprintf(out + o, sizeof(out) - o, "...(%zu bytes)", len);
    } else {
        out[o] = '\0';
    }
    return out;
}

static hb_status_e parse_len(const char *s, size_t len, hb_packet_t *pkt)
{
    return hb_packet_parse(s, len, pkt);
}

#define EXPECT_LEN(s, len, want)                                                                   \
    do {                                                                                           \
        hb_packet_t pkt_;                                                                          \
        hb_status_e got_ = parse_len((s), (len), &pkt_);                                           \
        ck_assert_msg(got_ == (want), "parse(\"%s\") = %s, want %s", esc((s), (len)),              \
                      hb_status_str(got_), hb_status_str(want));                                   \
    } while (0)

#define EXPECT(s, want) EXPECT_LEN((s), strlen(s), (want))

static hb_packet_t parse_ok(const char *s)
{
    hb_packet_t pkt;
    hb_status_e st = hb_packet_parse(s, strlen(s), &pkt);
    ck_assert_msg(st == HB_OK, "parse(\"%s\") = %s, want ok", esc(s, strlen(s)), hb_status_str(st));
    return pkt;
}

/* ---- valid packets ---------------------------------------------------- */

START_TEST(test_stock_packet)
{
    hb_packet_t p = parse_ok("v=1&ready=75&busy=0");
    ck_assert_uint_eq(p.version, 1);
    ck_assert_uint_eq(p.ready, 75);
    ck_assert_uint_eq(p.busy, 0);
    ck_assert_uint_eq(p.flags, 0);
    ck_assert_int_eq(p.state, HB_STATE_UP);
}
END_TEST

START_TEST(test_key_order_free)
{
    hb_packet_t p = parse_ok("busy=3&ready=2&v=1");
    ck_assert_uint_eq(p.ready, 2);
    ck_assert_uint_eq(p.busy, 3);
}
END_TEST

START_TEST(test_optional_fields)
{
    hb_packet_t p = parse_ok("v=1&ready=5&busy=6&port=8080&seq=42&int=1000&state=drain");
    ck_assert_uint_eq(p.flags, HB_HAS_PORT | HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE);
    ck_assert_uint_eq(p.port, 8080);
    ck_assert_uint_eq(p.seq, 42);
    ck_assert_uint_eq(p.interval_ms, 1000);
    ck_assert_int_eq(p.state, HB_STATE_DRAIN);

    p = parse_ok("v=1&ready=5&busy=6&seq=0");
    ck_assert_uint_eq(p.flags, HB_HAS_SEQ);
    ck_assert_uint_eq(p.seq, 0);
}
END_TEST

START_TEST(test_states)
{
    ck_assert_int_eq(parse_ok("v=1&ready=1&busy=1&state=up").state, HB_STATE_UP);
    ck_assert_int_eq(parse_ok("v=1&ready=1&busy=1&state=drain").state, HB_STATE_DRAIN);
    ck_assert_int_eq(parse_ok("v=1&ready=1&busy=1&state=stopping").state, HB_STATE_STOPPING);
    EXPECT("v=1&ready=1&busy=1&state=UP", HB_E_STATE);
    EXPECT("v=1&ready=1&busy=1&state=down", HB_E_STATE);
    EXPECT("v=1&ready=1&busy=1&state=", HB_E_STATE);
    EXPECT("v=1&ready=1&busy=1&state=upx", HB_E_STATE);
    EXPECT("v=1&ready=1&busy=1&state=u", HB_E_STATE);
    EXPECT("v=1&ready=1&busy=1&state=stop", HB_E_STATE);
}
END_TEST

START_TEST(test_unknown_keys_ignored)
{
    hb_packet_t p = parse_ok("v=1&foo=bar&ready=1&x.y-Z_9=%41%42&busy=2&empty=&foo=again&q=a=b");
    ck_assert_uint_eq(p.ready, 1);
    ck_assert_uint_eq(p.busy, 2);
    ck_assert_uint_eq(p.flags, 0);
    /* keys are case-sensitive: these are unknown, not duplicates */
    p = parse_ok("v=1&ready=1&busy=2&READY=9&Busy=x&V=2");
    ck_assert_uint_eq(p.ready, 1);
}
END_TEST

START_TEST(test_unknown_key_syntax_still_checked)
{
    EXPECT("v=1&ready=1&busy=2&fo o=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=2&foo=a b", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=2&f%6f=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=2&flag", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=2&=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=2&foo/bar=1", HB_E_SYNTAX);
}
END_TEST

START_TEST(test_ampersands)
{
    parse_ok("&v=1&ready=1&busy=1");
    parse_ok("v=1&ready=1&busy=1&");
    parse_ok("v=1&&ready=1&&&busy=1");
    parse_ok("&&&v=1&ready=1&busy=1&&&");
    EXPECT("&", HB_E_MISSING);
    EXPECT("&&&&", HB_E_MISSING);
}
END_TEST

START_TEST(test_key_length)
{
    char buf[128];
    char key[HB_FIELD_NAME_MAX + 2];
    memset(key, 'k', sizeof(key));
    key[HB_FIELD_NAME_MAX] = '\0';
    snprintf(buf, sizeof(buf), "v=1&ready=1&busy=1&%s=x", key);
    EXPECT(buf, HB_OK);
    key[HB_FIELD_NAME_MAX] = 'k';
    key[HB_FIELD_NAME_MAX + 1] = '\0';
    snprintf(buf, sizeof(buf), "v=1&ready=1&busy=1&%s=x", key);
    EXPECT(buf, HB_E_SYNTAX);
}
END_TEST

/* ---- numbers ---------------------------------------------------------- */

START_TEST(test_signs_and_spaces)
{
    EXPECT("v=1&ready=+5&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=-5&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=-0&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=5x&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=0x10&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=1e3&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=1.0&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=%35&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready=%41&busy=1", HB_E_NUMBER);
    EXPECT("v=1&ready==5&busy=1", HB_E_NUMBER);
    /* spaces are not printable-non-space bytes, so syntax, not number */
    EXPECT("v=1&ready= 5&busy=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=5 &busy=1", HB_E_SYNTAX);
    EXPECT("v=1& ready=5&busy=1", HB_E_SYNTAX);
    EXPECT("v=1&ready =5&busy=1", HB_E_SYNTAX);
    EXPECT(" v=1&ready=5&busy=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=5&busy=1 ", HB_E_SYNTAX);
    EXPECT("v=1&ready=5&busy=1\n", HB_E_SYNTAX);
    EXPECT("v=1&ready=5&busy=1\r\n", HB_E_SYNTAX);
}
END_TEST

START_TEST(test_overflow)
{
    EXPECT("v=1&ready=4294967296&busy=1", HB_E_RANGE);
    EXPECT("v=1&ready=4294967295&busy=1", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=18446744073709551616", HB_E_RANGE);
    EXPECT("v=1&ready=99999999999999999999999&busy=1", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&seq=18446744073709551616", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&seq=99999999999999999999", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&seq=99999999999999999999999", HB_E_RANGE);
    EXPECT("v=18446744073709551616&ready=1&busy=1", HB_E_RANGE);
    ck_assert_uint_eq(parse_ok("v=1&ready=1&busy=1&seq=18446744073709551615").seq, UINT64_MAX);
    /* 21 digits is refused even when the value would fit */
    EXPECT("v=1&ready=1&busy=1&seq=000000000000000000001", HB_E_RANGE);
    ck_assert_uint_eq(parse_ok("v=1&ready=1&busy=1&seq=00000000000000000001").seq, 1);
}
END_TEST

START_TEST(test_count_boundary)
{
    hb_packet_t p = parse_ok("v=1&ready=2147483647&busy=2147483647");
    ck_assert_uint_eq(p.ready, HB_COUNT_MAX);
    ck_assert_uint_eq(p.busy, HB_COUNT_MAX);
    EXPECT("v=1&ready=2147483648&busy=0", HB_E_RANGE);
    EXPECT("v=1&ready=0&busy=2147483648", HB_E_RANGE);
    p = parse_ok("v=1&ready=0&busy=0");
    ck_assert_uint_eq(p.ready, 0);
    p = parse_ok("v=1&ready=0000000000000000007&busy=00");
    ck_assert_uint_eq(p.ready, 7);
}
END_TEST

START_TEST(test_port_range)
{
    EXPECT("v=1&ready=1&busy=1&port=0", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&port=00000", HB_E_RANGE);
    ck_assert_uint_eq(parse_ok("v=1&ready=1&busy=1&port=1").port, 1);
    ck_assert_uint_eq(parse_ok("v=1&ready=1&busy=1&port=65535").port, 65535);
    EXPECT("v=1&ready=1&busy=1&port=65536", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&port=4294967377", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&port=-80", HB_E_NUMBER);
    EXPECT("v=1&ready=1&busy=1&port=", HB_E_NUMBER);
}
END_TEST

START_TEST(test_interval_range)
{
    EXPECT("v=1&ready=1&busy=1&int=0", HB_E_RANGE);
    ck_assert_uint_eq(parse_ok("v=1&ready=1&busy=1&int=1").interval_ms, HB_INTERVAL_MIN_MS);
    ck_assert_uint_eq(parse_ok("v=1&ready=1&busy=1&int=3600000").interval_ms, HB_INTERVAL_MAX_MS);
    EXPECT("v=1&ready=1&busy=1&int=3600001", HB_E_RANGE);
    EXPECT("v=1&ready=1&busy=1&int=1s", HB_E_NUMBER);
}
END_TEST

START_TEST(test_version)
{
    EXPECT("v=2&ready=1&busy=1", HB_E_VERSION);
    EXPECT("v=0&ready=1&busy=1", HB_E_VERSION);
    EXPECT("v=4294967297&ready=1&busy=1", HB_E_VERSION);
    EXPECT("v=1.0&ready=1&busy=1", HB_E_NUMBER);
    EXPECT("v=&ready=1&busy=1", HB_E_NUMBER);
    EXPECT("v=one&ready=1&busy=1", HB_E_NUMBER);
    ck_assert_uint_eq(parse_ok("v=01&ready=1&busy=1").version, 1);
    ck_assert_uint_eq(parse_ok("v=0001&ready=1&busy=1").version, 1);
}
END_TEST

/* ---- bad bytes -------------------------------------------------------- */

START_TEST(test_embedded_nul)
{
    static const char a[] = "v=1&ready=1\0&busy=1";
    static const char b[] = "v=1&ready=1&busy=1\0";
    static const char c[] = "v=1&rea\0dy=1&busy=1";
    static const char d[] = "v=1&ready=1&busy=1&x=\0";
    EXPECT_LEN(a, sizeof(a) - 1, HB_E_SYNTAX);
    EXPECT_LEN(b, sizeof(b) - 1, HB_E_SYNTAX);
    EXPECT_LEN(c, sizeof(c) - 1, HB_E_SYNTAX);
    EXPECT_LEN(d, sizeof(d) - 1, HB_E_SYNTAX);
    EXPECT_LEN("\0", 1, HB_E_SYNTAX);
}
END_TEST

START_TEST(test_high_bytes)
{
    EXPECT("v=1&ready=1\x80&busy=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=1&x=\xff", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=1&\xc3\xa9=1", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=1&x=caf\xc3\xa9", HB_E_SYNTAX);
}
END_TEST

START_TEST(test_control_bytes)
{
    static const char ctl[] = {'\x01', '\t', '\n', '\r', '\x1b', '\x1f', '\x7f', ' '};
    for (size_t i = 0; i < sizeof(ctl); i++) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "v=1&ready=1&busy=1&x=a%cb", ctl[i]);
        EXPECT_LEN(buf, (size_t)n, HB_E_SYNTAX);
        n = snprintf(buf, sizeof(buf), "v=1&ready=1&busy=1&x%c=ab", ctl[i]);
        EXPECT_LEN(buf, (size_t)n, HB_E_SYNTAX);
    }
    /* every printable non-space byte other than '&' is fine in a value */
    char buf[256];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "v=1&ready=1&busy=1&x=");
    for (int c = 0x21; c <= 0x7e; c++) {
        if (c != '&') {
            buf[n++] = (char)c;
        }
    }
    EXPECT_LEN(buf, n, HB_OK);
}
END_TEST

/* ---- lengths ---------------------------------------------------------- */

START_TEST(test_empty)
{
    EXPECT_LEN("", 0, HB_E_EMPTY);
    EXPECT_LEN("v=1&ready=1&busy=1", 0, HB_E_EMPTY);
}
END_TEST

static char *padded(size_t len, char fill_first)
{
    /* A valid packet padded with an unknown key to exactly len bytes. */
    const char *head = "v=1&ready=1&busy=1&pad=";
    char *buf = malloc(len + 1);
    ck_assert_ptr_nonnull(buf);
    size_t h = strlen(head);
    ck_assert_uint_ge(len, h + 1);
    memcpy(buf, head, h);
    memset(buf + h, 'x', len - h);
    buf[h] = fill_first;
    buf[len] = '\0';
    return buf;
}

START_TEST(test_size_limits)
{
    char *b = padded(HB_PACKET_MAX, 'x');
    EXPECT_LEN(b, HB_PACKET_MAX, HB_OK);
    free(b);
    b = padded(HB_PACKET_MAX + 1, 'x');
    EXPECT_LEN(b, HB_PACKET_MAX + 1, HB_E_TOOLONG);
    free(b);
    /* length is checked before content */
    b = padded(HB_PACKET_MAX + 1, '\0');
    EXPECT_LEN(b, HB_PACKET_MAX + 1, HB_E_TOOLONG);
    free(b);
    b = padded(HB_PACKET_MAX, '\0');
    EXPECT_LEN(b, HB_PACKET_MAX, HB_E_SYNTAX);
    free(b);
    b = malloc(65536);
    memset(b, 0xff, 65536);
    EXPECT_LEN(b, 65536, HB_E_TOOLONG);
    free(b);
}
END_TEST

/* ---- structure -------------------------------------------------------- */

START_TEST(test_duplicates)
{
    EXPECT("v=1&ready=1&busy=1&ready=2", HB_E_DUPLICATE);
    EXPECT("v=1&v=1&ready=1&busy=1", HB_E_DUPLICATE);
    EXPECT("v=1&ready=1&busy=1&busy=1", HB_E_DUPLICATE);
    EXPECT("v=1&ready=1&busy=1&port=80&port=80", HB_E_DUPLICATE);
    EXPECT("v=1&ready=1&busy=1&seq=1&seq=2", HB_E_DUPLICATE);
    EXPECT("v=1&ready=1&busy=1&int=5&int=5", HB_E_DUPLICATE);
    EXPECT("v=1&ready=1&busy=1&state=up&state=up", HB_E_DUPLICATE);
    /* found in order: the duplicate comes before the bad number */
    EXPECT("v=1&ready=1&ready=x&busy=1", HB_E_DUPLICATE);
    EXPECT("v=1&ready=x&ready=1&busy=1", HB_E_NUMBER);
}
END_TEST

START_TEST(test_missing)
{
    EXPECT("ready=1&busy=1", HB_E_MISSING);
    EXPECT("v=1&busy=1", HB_E_MISSING);
    EXPECT("v=1&ready=1", HB_E_MISSING);
    EXPECT("v=1", HB_E_MISSING);
    EXPECT("foo=bar", HB_E_MISSING);
    EXPECT("v=1&ready=1&Busy=1", HB_E_MISSING);
}
END_TEST

START_TEST(test_precedence)
{
    /* syntax/number in order of appearance */
    EXPECT("v=1&ready=x&busy=\x01", HB_E_NUMBER);
    EXPECT("v=1&busy=\x01&ready=x", HB_E_SYNTAX);
    EXPECT("v=1&ready=99999999999&busy=x", HB_E_RANGE);
    EXPECT("state=bad&v=1&ready=x&busy=1", HB_E_STATE);
    /* those before missing, missing before version */
    EXPECT("v=2&ready=x", HB_E_NUMBER);
    EXPECT("v=2&ready=1", HB_E_MISSING);
    EXPECT("v=2&ready=1&busy=1&port=0", HB_E_RANGE);
    EXPECT("v=2&ready=1&busy=1&ready=1", HB_E_DUPLICATE);
}
END_TEST

/* ---- helpers ---------------------------------------------------------- */

START_TEST(test_query_next)
{
    const char *q = "&a=1&&bb=xyz&c=&";
    const char *pos = q, *end = q + strlen(q);
    hb_kv_t kv;

    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 1);
    ck_assert_uint_eq(kv.key_len, 1);
    ck_assert_int_eq(memcmp(kv.key, "a", 1), 0);
    ck_assert_uint_eq(kv.val_len, 1);
    ck_assert_int_eq(kv.val[0], '1');
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 1);
    ck_assert_uint_eq(kv.key_len, 2);
    ck_assert_uint_eq(kv.val_len, 3);
    ck_assert_int_eq(memcmp(kv.val, "xyz", 3), 0);
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 1);
    ck_assert_uint_eq(kv.key_len, 1);
    ck_assert_uint_eq(kv.val_len, 0);
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 0);
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 0);

    /* an error still advances, so the rest can be read */
    q = "bad&k=v";
    pos = q;
    end = q + strlen(q);
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), -1);
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 1);
    ck_assert_int_eq(kv.key[0], 'k');

    /* respects end rather than NUL */
    q = "a=1&b=2";
    pos = q;
    end = q + 3;
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 1);
    ck_assert_uint_eq(kv.val_len, 1);
    ck_assert_int_eq(hb_query_next(&pos, end, &kv), 0);
}
END_TEST

START_TEST(test_parse_u64)
{
    uint64_t v = 12345;
    ck_assert_int_eq(hb_parse_u64("0", 1, 10, &v), HB_OK);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(hb_parse_u64("10", 2, 10, &v), HB_OK);
    ck_assert_uint_eq(v, 10);
    ck_assert_int_eq(hb_parse_u64("11", 2, 10, &v), HB_E_RANGE);
    ck_assert_int_eq(hb_parse_u64("", 0, 10, &v), HB_E_NUMBER);
    ck_assert_int_eq(hb_parse_u64("1 ", 2, 10, &v), HB_E_NUMBER);
    ck_assert_int_eq(hb_parse_u64("+1", 2, 10, &v), HB_E_NUMBER);
    ck_assert_int_eq(hb_parse_u64("18446744073709551615", 20, UINT64_MAX, &v), HB_OK);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(hb_parse_u64("18446744073709551616", 20, UINT64_MAX, &v), HB_E_RANGE);
    ck_assert_int_eq(hb_parse_u64("99999999999999999999", 20, UINT64_MAX, &v), HB_E_RANGE);
    ck_assert_int_eq(hb_parse_u64("00000000000000000001", 20, UINT64_MAX, &v), HB_OK);
    ck_assert_uint_eq(v, 1);
    /* 21 digits is over the limit even with leading zeros */
    ck_assert_int_eq(hb_parse_u64("000000000000000000001", 21, UINT64_MAX, &v), HB_E_RANGE);
    ck_assert_int_eq(hb_parse_u64("00000000000000000000x", 21, UINT64_MAX, &v), HB_E_NUMBER);
    /* length is respected: "12" of "123" */
    ck_assert_int_eq(hb_parse_u64("123", 2, 100, &v), HB_OK);
    ck_assert_uint_eq(v, 12);
    ck_assert_int_eq(hb_parse_u64("4294967296", 10, UINT32_MAX, &v), HB_E_RANGE);
}
END_TEST

START_TEST(test_strings)
{
    for (int s = HB_OK; s <= HB_E_STATE; s++) {
        const char *str = hb_status_str((hb_status_e)s);
        ck_assert_ptr_nonnull(str);
        ck_assert_uint_gt(strlen(str), 0);
    }
    ck_assert_str_eq(hb_status_str(HB_OK), "ok");
    ck_assert_str_eq(hb_state_str(HB_STATE_UP), "up");
    ck_assert_str_eq(hb_state_str(HB_STATE_DRAIN), "drain");
    ck_assert_str_eq(hb_state_str(HB_STATE_STOPPING), "stopping");
    ck_assert_ptr_nonnull(hb_state_str((hb_state_e)42));

    hb_state_e st = HB_STATE_UP;
    ck_assert_int_eq(hb_state_parse("drain", 5, &st), 0);
    ck_assert_int_eq(st, HB_STATE_DRAIN);
    ck_assert_int_eq(hb_state_parse("drai", 4, &st), -1);
    ck_assert_int_eq(hb_state_parse("drainx", 6, &st), -1);
    ck_assert_int_eq(hb_state_parse("", 0, &st), -1);
}
END_TEST

/* ---- format ----------------------------------------------------------- */

START_TEST(test_format_stock)
{
    hb_packet_t p = {0};
    char buf[128];
    p.ready = 75;
    p.busy = 3;
    size_t n = hb_packet_format(&p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "v=1&ready=75&busy=3");
    ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

START_TEST(test_format_all)
{
    hb_packet_t p = {0};
    char buf[256];
    p.ready = 1;
    p.busy = 2;
    p.port = 8443;
    p.seq = 99;
    p.interval_ms = 250;
    p.state = HB_STATE_STOPPING;
    p.flags = HB_HAS_PORT | HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE;
    ck_assert_uint_gt(hb_packet_format(&p, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "v=1&ready=1&busy=2&port=8443&seq=99&int=250&state=stopping");
    p.flags = HB_HAS_STATE | HB_HAS_PORT;
    ck_assert_uint_gt(hb_packet_format(&p, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "v=1&ready=1&busy=2&port=8443&state=stopping");
}
END_TEST

START_TEST(test_format_roundtrip)
{
    static const hb_packet_t cases[] = {
        {1, 0, 0, 0, 0, 0, HB_STATE_UP, 0},
        {1, HB_COUNT_MAX, HB_COUNT_MAX, 65535, UINT64_MAX, HB_INTERVAL_MAX_MS, HB_STATE_DRAIN,
         HB_HAS_PORT | HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE},
        {1, 7, 9, 1, 0, HB_INTERVAL_MIN_MS, HB_STATE_UP, HB_HAS_PORT | HB_HAS_INTERVAL},
        {1, 3, 4, 0, 123456789, 0, HB_STATE_STOPPING, HB_HAS_SEQ | HB_HAS_STATE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[HB_PACKET_MAX + 1];
        hb_packet_t back;
        size_t n = hb_packet_format(&cases[i], buf, sizeof(buf));
        ck_assert_msg(n > 0, "case %zu: format failed", i);
        hb_status_e st = hb_packet_parse(buf, n, &back);
        ck_assert_msg(st == HB_OK, "case %zu: parse(\"%s\") = %s", i, buf, hb_status_str(st));
        ck_assert_uint_eq(back.ready, cases[i].ready);
        ck_assert_uint_eq(back.busy, cases[i].busy);
        ck_assert_uint_eq(back.flags, cases[i].flags);
        if (cases[i].flags & HB_HAS_PORT) {
            ck_assert_uint_eq(back.port, cases[i].port);
        }
        if (cases[i].flags & HB_HAS_SEQ) {
            ck_assert_uint_eq(back.seq, cases[i].seq);
        }
        if (cases[i].flags & HB_HAS_INTERVAL) {
            ck_assert_uint_eq(back.interval_ms, cases[i].interval_ms);
        }
        ck_assert_int_eq(back.state, cases[i].state);
    }
}
END_TEST

START_TEST(test_format_too_small)
{
    hb_packet_t p = {0};
    char buf[128];
    p.ready = 12;
    p.busy = 34;
    p.seq = 5;
    p.flags = HB_HAS_SEQ;
    const char *want = "v=1&ready=12&busy=34&seq=5";
    size_t need = strlen(want) + 1;
    for (size_t cap = 0; cap < need; cap++) {
        memset(buf, 'Z', sizeof(buf));
        ck_assert_msg(hb_packet_format(&p, buf, cap) == 0, "cap %zu should be too small", cap);
        if (cap > 0) {
            ck_assert_msg(buf[0] == '\0', "cap %zu left a partial packet", cap);
        }
        ck_assert_msg(buf[cap] == 'Z', "cap %zu: wrote past the buffer", cap);
    }
    ck_assert_uint_eq(hb_packet_format(&p, buf, need), need - 1);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(hb_packet_format(&p, NULL, 0), 0);
}
END_TEST

START_TEST(test_format_bad_state)
{
    hb_packet_t p = {0};
    char buf[128];
    p.state = (hb_state_e)7;
    p.flags = HB_HAS_STATE;
    ck_assert_uint_eq(hb_packet_format(&p, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(test_addr)
{
    hb_packet_t p;
    char buf[256];

    ck_assert_int_eq(hb_packet_parse("v=1&ready=1&busy=0&addr=10.0.0.11", 33, &p), HB_OK);
    ck_assert(p.flags & HB_HAS_ADDR);
    ck_assert_str_eq(p.addr, "10.0.0.11");
    const char *v6 = "v=1&ready=1&busy=0&addr=2001:db8::7";
    ck_assert_int_eq(hb_packet_parse(v6, strlen(v6), &p), HB_OK);
    ck_assert_str_eq(p.addr, "2001:db8::7");
    /* Only IP literals: no names, brackets, ports, scopes or junk. */
    const char *bad[] = {"addr=",
                         "addr=host.example",
                         "addr=[::1]",
                         "addr=10.0.0.1:80",
                         "addr=fe80::1%lo",
                         "addr=10.0.0.256",
                         "addr=1111:2222:3333:4444:5555:6666:7777:8888:9999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "v=1&ready=1&busy=0&%s", bad[i]);
        ck_assert_msg(hb_packet_parse(buf, strlen(buf), &p) == HB_E_SYNTAX, "%s accepted", bad[i]);
    }
    snprintf(buf, sizeof(buf), "v=1&ready=1&busy=0&addr=10.0.0.1&addr=10.0.0.2");
    ck_assert_int_eq(hb_packet_parse(buf, strlen(buf), &p), HB_E_DUPLICATE);
    /* Formatted last, and only when flagged. */
    memset(&p, 0, sizeof(p));
    p.version = 1;
    p.ready = 2;
    p.flags = HB_HAS_STATE | HB_HAS_ADDR;
    strcpy(p.addr, "::1");
    ck_assert_uint_gt(hb_packet_format(&p, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "v=1&ready=2&busy=0&state=up&addr=::1");
    p.flags = HB_HAS_STATE;
    hb_packet_format(&p, buf, sizeof(buf));
    ck_assert_str_eq(buf, "v=1&ready=2&busy=0&state=up");
    /* Refuses to write what it would not read. */
    p.flags = HB_HAS_ADDR;
    strcpy(p.addr, "not an address");
    ck_assert_uint_eq(hb_packet_format(&p, buf, sizeof(buf)), 0);
}
END_TEST

/* ---- join= (HeartbeatBalancer) ----------------------------------------- */

START_TEST(test_join_parse)
{
    static const char text[] = "v=1&ready=2&busy=0&port=80&state=up&join=shop,api:https:8443"
                               "&addr=10.0.0.1";
    hb_packet_t p = parse_ok(text);

    ck_assert_uint_eq(p.flags, HB_HAS_PORT | HB_HAS_STATE | HB_HAS_JOIN | HB_HAS_ADDR);
    ck_assert_uint_eq(p.join.n, 2);
    ck_assert_uint_eq(p.join.j[0].name_hash, hb_join_hash("shop", 4));
    ck_assert_uint_eq(p.join.j[0].scheme, HB_SCHEME_HTTP);
    ck_assert_uint_eq(p.join.j[0].port, 0);
    ck_assert_uint_eq(p.join.j[1].name_hash, hb_join_hash("api", 3));
    ck_assert_uint_eq(p.join.j[1].scheme, HB_SCHEME_HTTPS);
    ck_assert_uint_eq(p.join.j[1].port, 8443);
    /* join_text points into the packet, at the value only. */
    ck_assert_ptr_eq(p.join_text, strstr(text, "shop"));
    ck_assert_uint_eq(p.join_len, strlen("shop,api:https:8443"));
    ck_assert_str_eq(p.addr, "10.0.0.1");

    /* Without join=: nothing announced. */
    p = parse_ok("v=1&ready=2&busy=0");
    ck_assert_uint_eq(p.flags & HB_HAS_JOIN, 0);
    ck_assert_uint_eq(p.join.n, 0);
    ck_assert_ptr_null(p.join_text);
}
END_TEST

START_TEST(test_join_bad)
{
    EXPECT("v=1&ready=1&busy=0&join=", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=,shop", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=shop,", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=sh/op", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=shop:gopher", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=shop:http:0", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=a,b,c,d,e", HB_E_SYNTAX);
    EXPECT("v=1&ready=1&busy=0&join=shop,SHOP", HB_E_SYNTAX);
    /* A bad join= spoils the whole packet, wherever it stands. */
    EXPECT("join=a::80&v=1&ready=1&busy=0", HB_E_SYNTAX);
    /* The key is case-sensitive, as every key is: JOIN= is unknown. */
    hb_packet_t p = parse_ok("v=1&ready=1&busy=0&JOIN=a::80");
    ck_assert_uint_eq(p.flags, 0);
}
END_TEST

START_TEST(test_join_duplicate)
{
    EXPECT("v=1&ready=1&busy=0&join=shop&join=shop", HB_E_DUPLICATE);
    EXPECT("v=1&ready=1&busy=0&join=shop&join=api", HB_E_DUPLICATE);
    EXPECT("join=shop&v=1&ready=1&join=api&busy=0", HB_E_DUPLICATE);
}
END_TEST

START_TEST(test_join_format)
{
    hb_packet_t p, back;
    char buf[HB_PACKET_MAX + 1];
    size_t n;

    memset(&p, 0, sizeof(p));
    p.version = 1;
    p.ready = 3;
    p.busy = 1;
    p.port = 8080;
    p.seq = 7;
    p.interval_ms = 100;
    p.state = HB_STATE_DRAIN;
    p.join_text = "shop,api:https:8443";
    p.join_len = strlen(p.join_text);
    strcpy(p.addr, "127.0.0.1");
    p.flags = HB_HAS_PORT | HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE | HB_HAS_JOIN | HB_HAS_ADDR;
    n = hb_packet_format(&p, buf, sizeof(buf));
    /* After state=, before addr= (and so before a signature's ts, kid, sig). */
    ck_assert_str_eq(buf, "v=1&ready=3&busy=1&port=8080&seq=7&int=100&state=drain"
                          "&join=shop,api:https:8443&addr=127.0.0.1");
    ck_assert_uint_eq(n, strlen(buf));

    ck_assert_int_eq(hb_packet_parse(buf, n, &back), HB_OK);
    ck_assert_uint_eq(back.flags, p.flags);
    ck_assert_uint_eq(back.join.n, 2);
    ck_assert_uint_eq(back.join_len, p.join_len);
    ck_assert_int_eq(memcmp(back.join_text, p.join_text, p.join_len), 0);
    ck_assert_str_eq(back.addr, "127.0.0.1");
    ck_assert_int_eq(back.state, HB_STATE_DRAIN);
    /* What was parsed formats to the same bytes. */
    {
        char again[HB_PACKET_MAX + 1];
        ck_assert_uint_eq(hb_packet_format(&back, again, sizeof(again)), n);
        ck_assert_str_eq(again, buf);
    }

    /* Only join= and no state=: it follows the stock fields. */
    p.flags = HB_HAS_JOIN;
    ck_assert_uint_gt(hb_packet_format(&p, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "v=1&ready=3&busy=1&join=shop,api:https:8443");

    /* Refuses to write what it would not read, or what does not fit. */
    p.join_text = "shop,";
    p.join_len = 5;
    ck_assert_uint_eq(hb_packet_format(&p, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
    p.join_text = NULL;
    p.join_len = 0;
    ck_assert_uint_eq(hb_packet_format(&p, buf, sizeof(buf)), 0);
    p.join_text = "shop";
    p.join_len = 4;
    /* "v=1&ready=3&busy=1&join=shop" is 28 bytes: 29 with its NUL. */
    ck_assert_uint_eq(hb_packet_format(&p, buf, 28), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(hb_packet_format(&p, buf, 29), 28);
    ck_assert_str_eq(buf, "v=1&ready=3&busy=1&join=shop");
    /* join_len rules, not a NUL: only "shop" of "shopping" goes out. */
    p.join_text = "shopping";
    ck_assert_uint_eq(hb_packet_format(&p, buf, sizeof(buf)), 28);
    ck_assert_str_eq(buf, "v=1&ready=3&busy=1&join=shop");
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_packet");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_stock_packet);
    tcase_add_test(tc, test_key_order_free);
    tcase_add_test(tc, test_optional_fields);
    tcase_add_test(tc, test_states);
    tcase_add_test(tc, test_unknown_keys_ignored);
    tcase_add_test(tc, test_unknown_key_syntax_still_checked);
    tcase_add_test(tc, test_ampersands);
    tcase_add_test(tc, test_key_length);
    tcase_add_test(tc, test_signs_and_spaces);
    tcase_add_test(tc, test_overflow);
    tcase_add_test(tc, test_count_boundary);
    tcase_add_test(tc, test_port_range);
    tcase_add_test(tc, test_interval_range);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_embedded_nul);
    tcase_add_test(tc, test_high_bytes);
    tcase_add_test(tc, test_control_bytes);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_precedence);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_test(tc, test_query_next);
    tcase_add_test(tc, test_parse_u64);
    tcase_add_test(tc, test_strings);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, test_format_stock);
    tcase_add_test(tc, test_format_all);
    tcase_add_test(tc, test_format_roundtrip);
    tcase_add_test(tc, test_format_too_small);
    tcase_add_test(tc, test_format_bad_state);
    tcase_add_test(tc, test_addr);
    suite_add_tcase(s, tc);

    tc = tcase_create("join");
    tcase_add_test(tc, test_join_parse);
    tcase_add_test(tc, test_join_bad);
    tcase_add_test(tc, test_join_duplicate);
    tcase_add_test(tc, test_join_format);
    suite_add_tcase(s, tc);
    return s;
}
