/*
 * check_storage.c: unit tests for hm_storage (the HeartbeatStorage file).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"

#include "hm_storage.h"

#include "check_main.h"

#define SEC 1000000LL
/* 2023-11-14T22:13:20Z, a plausible "now" in microseconds */
#define NOW (1700000000LL * SEC)

static apr_pool_t *pool;
static char tmpdir[64];
static void *tmem;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
    strcpy(tmpdir, "/tmp/check_storage.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    tmem = NULL;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char p[512];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (unlink(p) != 0) {
            rm_rf(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void teardown(void)
{
    rm_rf(tmpdir);
    free(tmem);
    tmem = NULL;
    apr_pool_destroy(pool);
}

static hm_entry_t entry(const char *ip, uint16_t port, uint32_t ready, uint32_t busy, int64_t seen)
{
    hm_entry_t e;
    memset(&e, 0, sizeof(e));
    ck_assert_msg(hm_addr_from_string(&e.key, ip, port) == 0, "bad test address %s", ip);
    hm_addr_to_string(&e.key, e.ip);
    e.ready = ready;
    e.busy = busy;
    e.seen = seen;
    e.first_seen = seen;
    return e;
}

static apr_array_header_t *parse(const char *text, int64_t written_at, hm_storage_stats_t *st)
{
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(hm_entry_t));
    hm_storage_parse(text, strlen(text), written_at, a, st);
    return a;
}

#define ENTRY(a, i) (&APR_ARRAY_IDX((a), (i), hm_entry_t))

/* ---- format ----------------------------------------------------------- */

START_TEST(test_format_full)
{
    hm_entry_t e = entry("10.0.0.11", 8080, 75, 3, NOW - 1999999);
    char buf[HM_STORAGE_LINE_MAX + 1];
    e.flags = HM_ENTRY_PORT_KNOWN;
    e.interval_ms = 1000;
    e.state = HB_STATE_DRAIN;
    e.seq = 7;
    size_t n = hm_storage_format_line(&e, NOW, buf, sizeof(buf));
    ck_assert_str_eq(buf, "10.0.0.11 &ready=75&busy=3&lastseen=1&port=8080&seen=1699999998000001"
                          "&int=1000&state=drain&seq=7&portknown=1\n");
    ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

START_TEST(test_format_minimal)
{
    /* unknown port: port=80 and portknown=0; int and seq left out */
    hm_entry_t e = entry("10.0.0.12", HM_DEFAULT_PORT, 1, 0, NOW);
    char buf[HM_STORAGE_LINE_MAX + 1];
    ck_assert_uint_gt(hm_storage_format_line(&e, NOW, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "10.0.0.12 &ready=1&busy=0&lastseen=0&port=80&seen=1700000000000000"
                          "&state=up&portknown=0\n");
}
END_TEST

START_TEST(test_format_lastseen)
{
    hm_entry_t e = entry("2001:db8::1", 443, 1, 0, NOW);
    char buf[HM_STORAGE_LINE_MAX + 1];
    e.flags = HM_ENTRY_PORT_KNOWN;
    struct {
        int64_t now;
        const char *want;
    } cases[] = {
        {NOW, "lastseen=0&"},           {NOW + 999999, "lastseen=0&"},
        {NOW + SEC, "lastseen=1&"},     {NOW + 61 * SEC + 5, "lastseen=61&"},
        {NOW - 5 * SEC, "lastseen=0&"}, /* seen in the future: never negative */
        {INT64_MIN, "lastseen=0&"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_uint_gt(hm_storage_format_line(&e, cases[i].now, buf, sizeof(buf)), 0);
        ck_assert_msg(strstr(buf, cases[i].want) != NULL, "case %zu: %s lacks %s", i, buf,
                      cases[i].want);
    }
    ck_assert_msg(strncmp(buf, "2001:db8::1 &", 13) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "&port=443&"));

    /* enormous age does not overflow */
    e.seen = INT64_MIN;
    ck_assert_uint_gt(hm_storage_format_line(&e, INT64_MAX, buf, sizeof(buf)), 0);
    ck_assert_ptr_null(strstr(buf, "lastseen=-"));
    ck_assert_ptr_null(strstr(buf, "seen=-"));
}
END_TEST

START_TEST(test_format_too_small)
{
    hm_entry_t e = entry("10.0.0.1", 80, 1, 2, NOW);
    char buf[HM_STORAGE_LINE_MAX + 1], big[HM_STORAGE_LINE_MAX + 1];
    size_t need = hm_storage_format_line(&e, NOW, big, sizeof(big));
    ck_assert_uint_gt(need, 0);
    for (size_t cap = 0; cap <= need; cap++) {
        memset(buf, 'Z', sizeof(buf));
        ck_assert_msg(hm_storage_format_line(&e, NOW, buf, cap) == 0, "cap %zu too small", cap);
        ck_assert_msg(buf[cap] == 'Z', "cap %zu: wrote past the end", cap);
    }
    ck_assert_uint_eq(hm_storage_format_line(&e, NOW, buf, need + 1), need);
    ck_assert_str_eq(buf, big);
}
END_TEST

/* ---- parse ------------------------------------------------------------ */

START_TEST(test_roundtrip)
{
    hm_entry_t in[3];
    char text[3 * (HM_STORAGE_LINE_MAX + 1)] = "";
    hm_storage_stats_t st;

    in[0] = entry("10.0.0.1", 8080, 10, 20, NOW - 1234567);
    in[0].flags = HM_ENTRY_PORT_KNOWN;
    in[0].interval_ms = 500;
    in[0].state = HB_STATE_STOPPING;
    in[0].seq = UINT64_MAX;
    in[1] = entry("2001:db8::abcd", 80, HB_COUNT_MAX, 0, NOW);
    in[1].flags = HM_ENTRY_PORT_KNOWN; /* port 80, but said so */
    in[2] = entry("10.0.0.3", 80, 0, 0, NOW - 3600 * SEC);
    for (int i = 0; i < 3; i++) {
        char line[HM_STORAGE_LINE_MAX + 1];
        ck_assert_uint_gt(hm_storage_format_line(&in[i], NOW, line, sizeof(line)), 0);
        strcat(text, line);
    }
    apr_array_header_t *a = parse(text, NOW, &st);
    ck_assert_int_eq(a->nelts, 3);
    ck_assert_uint_eq(st.lines, 3);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.bad, 0);
    ck_assert_uint_eq(st.first_bad_line, 0);
    for (int i = 0; i < 3; i++) {
        const hm_entry_t *e = ENTRY(a, i);
        ck_assert_msg(hm_addr_equal(&e->key, &in[i].key), "entry %d key", i);
        ck_assert_str_eq(e->ip, in[i].ip);
        ck_assert_uint_eq(e->ready, in[i].ready);
        ck_assert_uint_eq(e->busy, in[i].busy);
        ck_assert_uint_eq(e->interval_ms, in[i].interval_ms);
        ck_assert_uint_eq(e->state, in[i].state);
        ck_assert_uint_eq(e->seq, in[i].seq);
        ck_assert_uint_eq(e->flags, in[i].flags);
        ck_assert_int_eq(e->seen, in[i].seen);
    }
}
END_TEST

START_TEST(test_stock_lines)
{
    hm_storage_stats_t st;
    apr_array_header_t *a = parse("10.0.0.11 &ready=75&busy=0&lastseen=1&port=80\n"
                                  "10.0.0.12 &ready=3&busy=4&lastseen=0&port=8080\n"
                                  "10.0.0.13 &ready=5&busy=6\n",
                                  NOW, &st);
    ck_assert_int_eq(a->nelts, 3);
    ck_assert_uint_eq(st.bad, 0);

    const hm_entry_t *e = ENTRY(a, 0);
    ck_assert_str_eq(e->ip, "10.0.0.11");
    ck_assert_uint_eq(e->key.port, 80);
    ck_assert_uint_eq(e->ready, 75);
    ck_assert_uint_eq(e->busy, 0);
    ck_assert_int_eq(e->seen, NOW - SEC);
    ck_assert_uint_eq(e->flags & HM_ENTRY_PORT_KNOWN, 0); /* 80 from stock proves nothing */
    ck_assert_uint_eq(e->state, HB_STATE_UP);
    ck_assert_uint_eq(e->interval_ms, 0);

    e = ENTRY(a, 1);
    ck_assert_uint_eq(e->key.port, 8080);
    ck_assert_uint_eq(e->flags & HM_ENTRY_PORT_KNOWN, HM_ENTRY_PORT_KNOWN);
    ck_assert_int_eq(e->seen, NOW);

    e = ENTRY(a, 2);
    ck_assert_uint_eq(e->key.port, HM_DEFAULT_PORT);
    ck_assert_uint_eq(e->flags & HM_ENTRY_PORT_KNOWN, 0);
    ck_assert_int_eq(e->seen, NOW); /* lastseen defaults to 0 */
}
END_TEST

START_TEST(test_portknown)
{
    apr_array_header_t *a = parse("10.0.0.1 &ready=1&busy=1&port=80&portknown=1\n"
                                  "10.0.0.2 &ready=1&busy=1&port=8080&portknown=0\n"
                                  "10.0.0.3 &ready=1&busy=1&portknown=1\n"
                                  "10.0.0.4 &ready=1&busy=1&port=80&portknown=2\n",
                                  NOW, NULL);
    ck_assert_int_eq(a->nelts, 3);
    ck_assert_uint_eq(ENTRY(a, 0)->flags & HM_ENTRY_PORT_KNOWN, HM_ENTRY_PORT_KNOWN);
    ck_assert_uint_eq(ENTRY(a, 1)->flags & HM_ENTRY_PORT_KNOWN, 0);
    ck_assert_uint_eq(ENTRY(a, 1)->key.port, 8080);
    ck_assert_uint_eq(ENTRY(a, 2)->flags & HM_ENTRY_PORT_KNOWN, HM_ENTRY_PORT_KNOWN);
    ck_assert_uint_eq(ENTRY(a, 2)->key.port, 80);
}
END_TEST

START_TEST(test_comments_blank_crlf)
{
    hm_storage_stats_t st;
    apr_array_header_t *a = parse("# heartbeat table, written sometime\r\n"
                                  "\r\n"
                                  "\n"
                                  "   \t \n"
                                  "  # indented comment\n"
                                  "10.0.0.1 &ready=1&busy=2&lastseen=3&port=80\r\n"
                                  "#10.0.0.9 &ready=1&busy=2\n"
                                  "10.0.0.2\t\t&ready=4&busy=5  \r\n"
                                  "10.0.0.3    &ready=6&busy=7\n"
                                  "10.0.0.4 &ready=8&busy=9", /* no final newline */
                                  NOW, &st);
    ck_assert_int_eq(a->nelts, 4);
    ck_assert_uint_eq(st.lines, 4);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.bad, 0);
    ck_assert_int_eq(ENTRY(a, 0)->seen, NOW - 3 * SEC);
    ck_assert_uint_eq(ENTRY(a, 1)->ready, 4);
    ck_assert_uint_eq(ENTRY(a, 1)->busy, 5);
    ck_assert_uint_eq(ENTRY(a, 2)->ready, 6);
    ck_assert_uint_eq(ENTRY(a, 3)->busy, 9);

    a = parse("", NOW, &st);
    ck_assert_int_eq(a->nelts, 0);
    ck_assert_uint_eq(st.lines, 0);
}
END_TEST

START_TEST(test_ipv6)
{
    apr_array_header_t *a = parse("2001:db8::1 &ready=1&busy=2&port=8443&portknown=1\n"
                                  "[2001:db8::2] &ready=3&busy=4\n"
                                  "::ffff:10.0.0.5 &ready=5&busy=6\n"
                                  "2001:DB8:0::1 &ready=7&busy=8&port=8443&portknown=1\n",
                                  NOW, NULL);
    ck_assert_int_eq(a->nelts, 4);
    ck_assert_uint_eq(ENTRY(a, 0)->key.family, 6);
    ck_assert_str_eq(ENTRY(a, 0)->ip, "2001:db8::1");
    ck_assert_uint_eq(ENTRY(a, 0)->key.port, 8443);
    ck_assert_str_eq(ENTRY(a, 1)->ip, "2001:db8::2");
    ck_assert_uint_eq(ENTRY(a, 2)->key.family, 4);
    ck_assert_str_eq(ENTRY(a, 2)->ip, "10.0.0.5");
    ck_assert(hm_addr_equal(&ENTRY(a, 0)->key, &ENTRY(a, 3)->key));
}
END_TEST

START_TEST(test_bad_lines_skipped)
{
    char longline[HM_STORAGE_LINE_MAX + 64];
    hm_storage_stats_t st;
    /* each bad line sits between good ones */
    static const char *bad[] = {
        "10.0.0.256 &ready=1&busy=1",
        "host.example &ready=1&busy=1",
        "10.0.0.1 &ready=-1&busy=1",
        "10.0.0.1 &ready=abc&busy=1",
        "10.0.0.1 &ready=2147483648&busy=1",
        "10.0.0.1 &ready=1",
        "10.0.0.1 &busy=1",
        "10.0.0.1",
        "10.0.0.1 ",
        "10.0.0.1&ready=1&busy=1",
        "10.0.0.1 &ready=1&busy=1&port=0",
        "10.0.0.1 &ready=1&busy=1&port=65536",
        "10.0.0.1 &ready=1&busy=1&lastseen=x",
        "10.0.0.1 &ready=1&busy=1&seen=-5",
        "10.0.0.1 &ready=1&busy=1&state=bogus",
        "10.0.0.1 &ready=1&busy=1&int=0",
        "10.0.0.1 &ready=1&busy=1&portknown=yes",
        "10.0.0.1 &ready=1&busy=1&ready=2",
        "10.0.0.1 &ready=1&busy=1&bad key=1",
        "10.0.0.1 &ready=1 &busy=1",
        "10.0.0.1 &ready=1&busy=1&x=\x7f",
        "10.0.0.1 &ready=1&busy=1&x=caf\xc3\xa9",
        "&ready=1&busy=1",
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    char *text = apr_pstrdup(pool, "# header\n10.1.0.0 &ready=1&busy=1\n");
    for (size_t i = 0; i < nbad; i++) {
        /* apr_psprintf knows no %zu */
        text = apr_psprintf(pool, "%s%s\n10.1.0.%u &ready=%u&busy=1\n", text, bad[i],
                            (unsigned)i + 1, (unsigned)i + 1);
    }
    /* one line over the limit */
    memset(longline, 0, sizeof(longline));
    strcpy(longline, "10.0.0.1 &ready=1&busy=1&pad=");
    memset(longline + strlen(longline), 'x', HM_STORAGE_LINE_MAX + 1 - strlen(longline));
    ck_assert_uint_eq(strlen(longline), HM_STORAGE_LINE_MAX + 1);
    text = apr_psprintf(pool, "%s%s\n10.2.0.0 &ready=1&busy=1\n", text, longline);

    apr_array_header_t *a = parse(text, NOW, &st);
    ck_assert_uint_eq(st.bad, nbad + 1);
    ck_assert_uint_eq(st.entries, nbad + 2);
    ck_assert_uint_eq(st.lines, 2 * nbad + 3);
    ck_assert_uint_eq(st.first_bad_line, 3);
    ck_assert_int_eq(a->nelts, (int)nbad + 2);
    for (size_t i = 0; i <= nbad; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.1.0.%zu", i);
        ck_assert_str_eq(ENTRY(a, (int)i)->ip, ip);
        ck_assert_uint_eq(ENTRY(a, (int)i)->ready, i ? i : 1);
    }
    ck_assert_str_eq(ENTRY(a, (int)nbad + 1)->ip, "10.2.0.0");

    /* exactly at the limit is fine */
    longline[HM_STORAGE_LINE_MAX] = '\0';
    a = parse(longline, NOW, &st);
    ck_assert_int_eq(a->nelts, 1);
    ck_assert_uint_eq(st.bad, 0);
    /* and the limit does not count the CR of a CRLF */
    a = parse(apr_pstrcat(pool, longline, "\r\n", NULL), NOW, &st);
    ck_assert_int_eq(a->nelts, 1);
}
END_TEST

START_TEST(test_nul_in_line)
{
    static const char text[] = "10.0.0.1 &ready=1&busy=1\n"
                               "10.0.0.2\0 &ready=1&busy=1\n"
                               "10.0.0.3 &ready=1\0&busy=1\n"
                               "10.0.0.4 &ready=1&busy=1\n";
    hm_storage_stats_t st;
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(hm_entry_t));
    hm_storage_parse(text, sizeof(text) - 1, NOW, a, &st);
    ck_assert_int_eq(a->nelts, 2);
    ck_assert_uint_eq(st.bad, 2);
    ck_assert_uint_eq(st.first_bad_line, 2);
    ck_assert_str_eq(ENTRY(a, 1)->ip, "10.0.0.4");
}
END_TEST

START_TEST(test_seen_field)
{
    apr_array_header_t *a = parse("10.0.0.1 &ready=1&busy=1&lastseen=10&seen=1699999999500000\n"
                                  "10.0.0.2 &ready=1&busy=1&lastseen=0&seen=1700000005000000\n"
                                  "10.0.0.3 &ready=1&busy=1&seen=0\n"
                                  "10.0.0.4 &ready=1&busy=1&seen=9223372036854775807\n"
                                  "10.0.0.5 &ready=1&busy=1&lastseen=18446744073709551615\n",
                                  NOW, NULL);
    ck_assert_int_eq(a->nelts, 5);
    ck_assert_int_eq(ENTRY(a, 0)->seen, NOW - SEC / 2); /* seen wins over lastseen */
    ck_assert_int_eq(ENTRY(a, 1)->seen, NOW);           /* clamped to written_at */
    ck_assert_int_eq(ENTRY(a, 2)->seen, 0);
    ck_assert_int_eq(ENTRY(a, 3)->seen, NOW);
    ck_assert_int_le(ENTRY(a, 4)->seen, NOW); /* huge lastseen: very old, no wrap */
    ck_assert_int_lt(ENTRY(a, 4)->seen, 0);

    hm_storage_stats_t st;
    a = parse("10.0.0.1 &ready=1&busy=1&seen=9223372036854775808\n", NOW, &st);
    ck_assert_int_eq(a->nelts, 0);
    ck_assert_uint_eq(st.bad, 1);
}
END_TEST

START_TEST(test_unknown_fields_ignored)
{
    apr_array_header_t *a = parse("10.0.0.1 &ready=1&busy=2&future=thing&x=%20&&&\n", NOW, NULL);
    ck_assert_int_eq(a->nelts, 1);
    ck_assert_uint_eq(ENTRY(a, 0)->busy, 2);
}
END_TEST

START_TEST(test_parse_null_out_and_stats)
{
    /* counting only, and stats reset from garbage */
    hm_storage_stats_t st;
    memset(&st, 0xff, sizeof(st));
    const char *text = "10.0.0.1 &ready=1&busy=1\nbad\n";
    hm_storage_parse(text, strlen(text), NOW, NULL, &st);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.bad, 1);
    ck_assert_uint_eq(st.first_bad_line, 2);
    hm_storage_parse(text, strlen(text), NOW, NULL, NULL);
}
END_TEST

/* ---- files ------------------------------------------------------------ */

static hm_table_t *table_with(unsigned cap)
{
    size_t sz = hm_table_size(cap);
    tmem = aligned_alloc(64, (sz + 63) & ~(size_t)63);
    ck_assert_ptr_nonnull(tmem);
    hm_table_t *t = hm_table_create(tmem, sz, cap);
    ck_assert_ptr_nonnull(t);
    return t;
}

static void add(hm_table_t *t, const char *ip, uint16_t port, uint32_t ready, int64_t seen,
                uint32_t flags)
{
    hm_addr_t k;
    hb_packet_t p;
    memset(&p, 0, sizeof(p));
    p.version = 1;
    p.ready = ready;
    p.busy = ready + 1;
    p.flags = HB_HAS_INTERVAL | HB_HAS_SEQ;
    p.interval_ms = 1000;
    p.seq = ready;
    ck_assert_int_eq(hm_addr_from_string(&k, ip, port), 0);
    ck_assert_int_ne(hm_table_update(t, &k, &p, seen, 0, flags), HM_UPD_FULL);
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

START_TEST(test_write_read)
{
    hm_table_t *t = table_with(8);
    const char *path = apr_pstrcat(pool, tmpdir, "/hb.dat", NULL);
    apr_array_header_t *a = NULL;
    hm_storage_stats_t st;
    int64_t mtime = 0;
    struct timeval tv;

    add(t, "10.0.0.1", 8080, 5, NOW - 2 * SEC, HM_ENTRY_PORT_KNOWN);
    add(t, "2001:db8::9", 80, 6, NOW - 500000, 0);
    add(t, "10.0.0.3", 80, 7, NOW - 100 * SEC, 0); /* beyond max_age */

    ck_assert_int_eq(hm_storage_write(path, t, NOW, 60 * SEC, pool), 0);
    ck_assert_int_eq(dir_entries(tmpdir), 1); /* no temp file left */

    gettimeofday(&tv, NULL);
    int64_t before = (int64_t)tv.tv_sec * SEC + tv.tv_usec;
    ck_assert_int_eq(hm_storage_read(path, 1 << 20, pool, &a, &mtime, &st), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->nelts, 2);
    ck_assert_uint_eq(st.bad, 0);
    ck_assert_uint_eq(st.entries, 2);
    /* mtime is real time in microseconds (apr_time_t), not our NOW */
    ck_assert_int_le(mtime, before + SEC);
    ck_assert_int_gt(mtime, before - 60 * SEC);

    const hm_entry_t *e = ENTRY(a, 0);
    ck_assert_str_eq(e->ip, "10.0.0.1");
    ck_assert_uint_eq(e->key.port, 8080);
    ck_assert_uint_eq(e->flags, HM_ENTRY_PORT_KNOWN);
    ck_assert_uint_eq(e->ready, 5);
    ck_assert_uint_eq(e->busy, 6);
    ck_assert_uint_eq(e->interval_ms, 1000);
    ck_assert_uint_eq(e->seq, 5);
    ck_assert_int_eq(e->seen, NOW - 2 * SEC); /* seen= is before mtime: kept exactly */
    e = ENTRY(a, 1);
    ck_assert_str_eq(e->ip, "2001:db8::9");
    ck_assert_uint_eq(e->flags, 0);

    /* the file starts with the comment header */
    FILE *f = fopen(path, "r");
    char line[HM_STORAGE_LINE_MAX + 2];
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    ck_assert_msg(strncmp(line, "# heartbeat table, written ", 27) == 0, "header: %s", line);

    /* max_age 0 keeps everything; rewriting replaces the file */
    ck_assert_int_eq(hm_storage_write(path, t, NOW, 0, pool), 0);
    ck_assert_int_eq(hm_storage_read(path, 1 << 20, pool, &a, NULL, NULL), 0);
    ck_assert_int_eq(a->nelts, 3);
    ck_assert_int_eq(dir_entries(tmpdir), 1);
}
END_TEST

START_TEST(test_write_empty_table)
{
    hm_table_t *t = table_with(2);
    const char *path = apr_pstrcat(pool, tmpdir, "/empty.dat", NULL);
    apr_array_header_t *a = NULL;
    hm_storage_stats_t st;
    ck_assert_int_eq(hm_storage_write(path, t, NOW, 0, pool), 0);
    ck_assert_int_eq(hm_storage_read(path, 4096, pool, &a, NULL, &st), 0);
    ck_assert_int_eq(a->nelts, 0);
    ck_assert_uint_eq(st.lines, 0);
}
END_TEST

START_TEST(test_write_errors)
{
    hm_table_t *t = table_with(2);
    add(t, "10.0.0.1", 80, 1, NOW, 0);

    const char *missing = apr_pstrcat(pool, tmpdir, "/nodir/hb.dat", NULL);
    ck_assert_int_eq(hm_storage_write(missing, t, NOW, 0, pool), ENOENT);
    ck_assert_int_eq(dir_entries(tmpdir), 0);

    /* rename onto a directory fails after the temp file was written: the
     * temp file must be removed */
    const char *isdir = apr_pstrcat(pool, tmpdir, "/adir", NULL);
    ck_assert_int_eq(mkdir(isdir, 0755), 0);
    int rv = hm_storage_write(isdir, t, NOW, 0, pool);
    ck_assert_msg(rv == EISDIR, "write onto a directory: %d (%s)", rv, strerror(rv));
    ck_assert_int_eq(dir_entries(tmpdir), 1);
}
END_TEST

START_TEST(test_read_errors)
{
    apr_array_header_t *a = NULL;
    const char *path = apr_pstrcat(pool, tmpdir, "/none.dat", NULL);
    ck_assert_int_eq(hm_storage_read(path, 4096, pool, &a, NULL, NULL), ENOENT);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(hm_storage_read(tmpdir, 4096, pool, &a, NULL, NULL), EISDIR);

    /* EFBIG above max_bytes, fine at exactly max_bytes */
    const char *text = "10.0.0.1 &ready=1&busy=1\n";
    size_t len = strlen(text);
    path = apr_pstrcat(pool, tmpdir, "/big.dat", NULL);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    ck_assert_int_eq(hm_storage_read(path, len - 1, pool, &a, NULL, NULL), EFBIG);
    ck_assert_int_eq(hm_storage_read(path, 0, pool, &a, NULL, NULL), EFBIG);
    ck_assert_int_eq(hm_storage_read(path, len, pool, &a, NULL, NULL), 0);
    ck_assert_int_eq(a->nelts, 1);
}
END_TEST

START_TEST(test_read_stock_file)
{
    const char *path = apr_pstrcat(pool, tmpdir, "/stock.dat", NULL);
    apr_array_header_t *a = NULL;
    hm_storage_stats_t st;
    int64_t mtime = 0;
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("10.0.0.11 &ready=75&busy=0&lastseen=1&port=80\n"
          "10.0.0.12 &ready=0&busy=100&lastseen=30&port=80\n"
          "garbage line\n",
          f);
    fclose(f);
    ck_assert_int_eq(hm_storage_read(path, 1 << 16, pool, &a, &mtime, &st), 0);
    ck_assert_int_eq(a->nelts, 2);
    ck_assert_uint_eq(st.bad, 1);
    ck_assert_uint_eq(st.first_bad_line, 3);
    ck_assert_int_eq(ENTRY(a, 0)->seen, mtime - SEC);
    ck_assert_int_eq(ENTRY(a, 1)->seen, mtime - 30 * SEC);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_storage");
    TCase *tc = tcase_create("format");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format_full);
    tcase_add_test(tc, test_format_minimal);
    tcase_add_test(tc, test_format_lastseen);
    tcase_add_test(tc, test_format_too_small);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_stock_lines);
    tcase_add_test(tc, test_portknown);
    tcase_add_test(tc, test_comments_blank_crlf);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_bad_lines_skipped);
    tcase_add_test(tc, test_nul_in_line);
    tcase_add_test(tc, test_seen_field);
    tcase_add_test(tc, test_unknown_fields_ignored);
    tcase_add_test(tc, test_parse_null_out_and_stats);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_read);
    tcase_add_test(tc, test_write_empty_table);
    tcase_add_test(tc, test_write_errors);
    tcase_add_test(tc, test_read_errors);
    tcase_add_test(tc, test_read_stock_file);
    suite_add_tcase(s, tc);
    return s;
}
