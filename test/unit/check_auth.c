/*
 * check_auth.c: unit tests for hb_auth (HMAC-SHA256 signed heartbeats).
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hb_auth.h"
#include "hb_packet.h"

#include "check_main.h"

#define NOW 1796000000000LL /* ms */
#define WIN 30000LL

static hb_secret_t k1, k2;

static void setup(void)
{
    ck_assert_int_eq(hb_secret_set(&k1, "k1", (const unsigned char *)"0123456789abcdef0123\n", 21),
                     0);
    ck_assert_int_eq(
        hb_secret_set(&k2, "k2", (const unsigned char *)"another-secret-key-material", 27), 0);
}

static size_t signed_packet(char *buf, size_t cap, const hb_secret_t *k, int64_t ts)
{
    const char *base = "v=1&ready=5&busy=1&port=80&seq=42";
    size_t n;
    strcpy(buf, base);
    n = hb_auth_sign(k, buf, strlen(base), cap, ts);
    ck_assert_uint_gt(n, strlen(base));
    ck_assert_uint_eq(strlen(buf), n);
    return n;
}

static hb_auth_e verify(const hb_secret_t *keys, unsigned int n, const char *buf, size_t len,
                        size_t *slen)
{
    const hb_secret_t *used = NULL;
    return hb_auth_verify(keys, n, buf, len, NOW, WIN, slen, &used);
}

START_TEST(test_sign_and_verify)
{
    char buf[HB_PACKET_MAX + 1];
    size_t n = signed_packet(buf, sizeof(buf), &k1, NOW), slen = 0;
    hb_packet_t pkt;

    ck_assert_msg(strstr(buf, "&ts=1796000000000&kid=k1&sig=") != NULL, "%s", buf);
    ck_assert_int_eq(verify(&k1, 1, buf, n, &slen), HB_AUTH_OK);
    ck_assert_uint_eq(slen, n - 5 - HB_SIG_HEX_LEN);
    /* The signed part is an ordinary packet; stock fields first. */
    ck_assert_int_eq(hb_packet_parse(buf, slen, &pkt), HB_OK);
    ck_assert_uint_eq(pkt.ready, 5);
    ck_assert_uint_eq(pkt.seq, 42);
    /* And a stock parser of the whole packet still finds its fields. */
    ck_assert_int_eq(hb_packet_parse(buf, n, &pkt), HB_OK);
}
END_TEST

START_TEST(test_rotation_keys)
{
    hb_secret_t both[2];
    char buf[HB_PACKET_MAX + 1];
    size_t n, slen;

    both[0] = k1;
    both[1] = k2;
    n = signed_packet(buf, sizeof(buf), &k2, NOW);
    ck_assert_int_eq(verify(both, 2, buf, n, &slen), HB_AUTH_OK);
    ck_assert_int_eq(verify(&k1, 1, buf, n, &slen), HB_AUTH_UNKNOWN_KEY);
}
END_TEST

START_TEST(test_rejections)
{
    char buf[HB_PACKET_MAX + 1], mod[HB_PACKET_MAX + 1];
    size_t n = signed_packet(buf, sizeof(buf), &k1, NOW), slen;
    hb_secret_t wrong;
    char *p;

    /* Unsigned. */
    ck_assert_int_eq(verify(&k1, 1, "v=1&ready=5&busy=1", 18, &slen), HB_AUTH_UNSIGNED);
    /* Any modified byte of the signed part. */
    for (size_t i = 0; i < n - HB_SIG_HEX_LEN - 5; i++) {
        memcpy(mod, buf, n + 1);
        mod[i] = mod[i] == '9' ? '8' : (mod[i] == 'a' ? 'b' : '9');
        hb_auth_e e = verify(&k1, 1, mod, n, &slen);
        ck_assert_msg(e != HB_AUTH_OK, "modified byte %zu accepted: %s", i, mod);
    }
    /* A modified ready specifically: bad signature. */
    memcpy(mod, buf, n + 1);
    p = strstr(mod, "ready=5");
    p[6] = '9';
    ck_assert_int_eq(verify(&k1, 1, mod, n, &slen), HB_AUTH_BADSIG);
    /* A wrong key with the same id. */
    ck_assert_int_eq(hb_secret_set(&wrong, "k1", (const unsigned char *)"xxxxxxxxxxxxxxxxxxxx", 20),
                     0);
    ck_assert_int_eq(verify(&wrong, 1, buf, n, &slen), HB_AUTH_BADSIG);
    /* Signature not last, truncated, or not hex. */
    memcpy(mod, buf, n + 1);
    strcat(mod, "&x=1");
    ck_assert_int_eq(verify(&k1, 1, mod, n + 4, &slen), HB_AUTH_MALFORMED);
    ck_assert_int_eq(verify(&k1, 1, buf, n - 1, &slen), HB_AUTH_MALFORMED);
    memcpy(mod, buf, n + 1);
    mod[n - 1] = 'G';
    ck_assert_int_eq(verify(&k1, 1, mod, n, &slen), HB_AUTH_MALFORMED);
}
END_TEST

START_TEST(test_clock_window)
{
    char buf[HB_PACKET_MAX + 1];
    size_t n, slen;

    n = signed_packet(buf, sizeof(buf), &k1, NOW - WIN);
    ck_assert_int_eq(verify(&k1, 1, buf, n, &slen), HB_AUTH_OK);
    n = signed_packet(buf, sizeof(buf), &k1, NOW - WIN - 1);
    ck_assert_int_eq(verify(&k1, 1, buf, n, &slen), HB_AUTH_CLOCK);
    n = signed_packet(buf, sizeof(buf), &k1, NOW + WIN + 1);
    ck_assert_int_eq(verify(&k1, 1, buf, n, &slen), HB_AUTH_CLOCK);
}
END_TEST

START_TEST(test_keys)
{
    hb_secret_t k;
    ck_assert_int_eq(hb_secret_set(&k, "ok", (const unsigned char *)"short", 5), -1);
    ck_assert_int_eq(hb_secret_set(&k, "bad id", (const unsigned char *)"0123456789abcdef", 16),
                     -1);
    ck_assert_int_eq(hb_secret_set(&k, "", (const unsigned char *)"0123456789abcdef", 16), -1);
    ck_assert_int_eq(hb_secret_set(&k, "a-b_c.d", (const unsigned char *)"0123456789abcdef \n", 18),
                     0);
    ck_assert_uint_eq(k.len, 16);
    ck_assert(!hb_secret_id_valid("x&y"));
    ck_assert(!hb_secret_id_valid("0123456789012345678901234567890123"));
}
END_TEST

START_TEST(test_small_buffer)
{
    char buf[60];
    strcpy(buf, "v=1&ready=5&busy=1&seq=1");
    ck_assert_uint_eq(hb_auth_sign(&k1, buf, strlen(buf), sizeof(buf), NOW), 0);
}
END_TEST

START_TEST(test_key_files)
{
    char dir[] = "/tmp/check_auth.XXXXXX", path[128], err[256];
    hb_secret_t k;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/site-a.key", dir);
    f = fopen(path, "w");
    fputs("0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    chmod(path, 0644);
    ck_assert_int_eq(hb_secret_load(&k, path, NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "accessible to others") != NULL, "%s", err);
    chmod(path, 0600);
    ck_assert_int_eq(hb_secret_load(&k, path, NULL, err, sizeof(err)), 0);
    ck_assert_str_eq(k.id, "site-a");
    ck_assert_uint_eq(k.len, 32);
    ck_assert_int_eq(hb_secret_load(&k, path, "other", err, sizeof(err)), 0);
    ck_assert_str_eq(k.id, "other");
    ck_assert_int_eq(hb_secret_load(&k, path, "bad id!", err, sizeof(err)), -1);
    /* A key written in place of a path is refused. */
    ck_assert_int_eq(hb_secret_load(&k, "0123456789abcdef0123456789abcdef", NULL, err, sizeof(err)),
                     -1);
    ck_assert_msg(strstr(err, "never the key itself") != NULL, "%s", err);
    /* Too short. */
    f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    ck_assert_int_eq(hb_secret_load(&k, path, NULL, err, sizeof(err)), -1);
    unlink(path);
    rmdir(dir);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hb_auth");
    TCase *tc = tcase_create("auth");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_sign_and_verify);
    tcase_add_test(tc, test_rotation_keys);
    tcase_add_test(tc, test_rejections);
    tcase_add_test(tc, test_clock_window);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_small_buffer);
    tcase_add_test(tc, test_key_files);
    suite_add_tcase(s, tc);
    return s;
}
