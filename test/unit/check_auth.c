/*
 * check_auth.c: unit tests for hb_auth (HMAC-SHA256 signed heartbeats).
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "apr_pools.h"
#include "apr_tables.h"

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

/* A key pasted where the path of its file belongs fails to open like a
 * mistyped path, and the message reaches the console and the error log: it
 * must not repeat the argument, whatever ServerRoot was put in front of it.
 * A missing file that looks like a path is still named. */
START_TEST(test_key_never_echoed)
{
    static const char *const pasted[] = {
        "0123456789abcdef0123456789abcdef",               /* hex */
        "/etc/apache2/0123456789abcdef0123456789abcdef",  /* after ServerRoot */
        "/etc/apache2/q83vEjK+ZpL/4aXb9Wn2Rt0yUhC1dIoG=", /* base64, a '/' inside */
        "/etc/apache2/correct horse battery staple",      /* a passphrase */
        "/etc/apache2/first-secret-key-0123456789abcdef",
    };
    char err[512];
    hb_secret_t k;
    size_t i;

    for (i = 0; i < sizeof(pasted) / sizeof(pasted[0]); i++) {
        const char *key = strrchr(pasted[i], '/') ? strrchr(pasted[i], '/') + 1 : pasted[i];

        memset(err, 0, sizeof(err));
        ck_assert_int_eq(hb_secret_load(&k, pasted[i], NULL, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "never the key itself") != NULL, "%s", err);
        ck_assert_msg(strstr(err, "not repeated here") != NULL, "%s", err);
        ck_assert_msg(strstr(err, key) == NULL, "key material echoed: %s", err);
        /* Not even a part of it (what a base64 key has after a '/'). */
        ck_assert_msg(strstr(err, "0123456789abcdef") == NULL && strstr(err, "dIoG") == NULL &&
                          strstr(err, "horse") == NULL,
                      "key material echoed: %s", err);
    }
    /* A path that is one: named, so that a typo can be found. */
    ck_assert_int_eq(hb_secret_load(&k, "/nonexistent/dir/site-a.key", NULL, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "/nonexistent/dir/site-a.key") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);
}
END_TEST

/* Every key copy the configuration keeps is wiped by the cleanup
 * registered on its pool: run each cleanup as the pool would, and look at
 * the bytes. */
static int key_bytes_zero(const hb_secret_t *k)
{
    const unsigned char *b = (const unsigned char *)k;

    for (size_t i = 0; i < sizeof(*k); i++) {
        if (b[i]) {
            return 0;
        }
    }
    return 1;
}

START_TEST(test_key_cleanup)
{
    apr_pool_t *p;
    hb_secret_t *k, tmp, *old;
    apr_array_header_t *keys;
    int i;

    ck_assert_int_eq(apr_pool_create(&p, NULL), APR_SUCCESS);
    /* One key in a pool (mod_heartbeat). */
    k = apr_palloc(p, sizeof(*k));
    *k = k1;
    apr_pool_cleanup_register(p, k, hb_secret_cleanup, apr_pool_cleanup_null);
    ck_assert(!key_bytes_zero(k));
    ck_assert_int_eq(apr_pool_cleanup_run(p, k, hb_secret_cleanup), APR_SUCCESS);
    ck_assert_msg(key_bytes_zero(k), "key left after its cleanup");
    ck_assert_uint_eq(k->len, 0);

    /* An array of keys (mod_heartmonitor): pushing wipes the caller's copy
     * and, when the array grows, the storage it leaves behind. */
    keys = apr_array_make(p, 1, sizeof(hb_secret_t));
    tmp = k1;
    ck_assert_ptr_nonnull(hb_secret_push(keys, &tmp));
    ck_assert_msg(key_bytes_zero(&tmp), "caller's copy left after a push");
    old = (hb_secret_t *)keys->elts;
    for (i = 0; i < 4; i++) {
        tmp = i % 2 ? k1 : k2;
        ck_assert_ptr_nonnull(hb_secret_push(keys, &tmp));
    }
    ck_assert_int_eq(keys->nelts, 5);
    ck_assert_ptr_ne(old, (hb_secret_t *)keys->elts);
    ck_assert_msg(key_bytes_zero(old), "copy left behind when the array grew");
    ck_assert_int_eq(memcmp(&APR_ARRAY_IDX(keys, 0, hb_secret_t), &k1, sizeof(k1)), 0);
    ck_assert_int_eq(memcmp(&APR_ARRAY_IDX(keys, 1, hb_secret_t), &k2, sizeof(k2)), 0);
    ck_assert_int_eq(memcmp(&APR_ARRAY_IDX(keys, 4, hb_secret_t), &k1, sizeof(k1)), 0);
    /* The first push registered the array's cleanup: running it as the
     * pool would (kill finds it, so it was registered) wipes every key. */
    ck_assert_int_eq(apr_pool_cleanup_run(p, keys, hb_secret_array_cleanup), APR_SUCCESS);
    for (i = 0; i < keys->nelts; i++) {
        ck_assert_msg(key_bytes_zero(&APR_ARRAY_IDX(keys, i, hb_secret_t)), "key %d left", i);
    }
    /* A wiped key signs nothing. */
    {
        char buf[HB_PACKET_MAX + 1];
        strcpy(buf, "v=1&ready=5&busy=1&seq=1");
        ck_assert_uint_eq(hb_auth_sign(k, buf, strlen(buf), sizeof(buf), NOW), 0);
    }
    apr_pool_destroy(p);
}
END_TEST

/* The cleanup is registered, and runs when the pool is destroyed: a
 * cleanup registered before it runs after it (last in, first out) while
 * the pool's memory is still there, and looks at the key then. */
static int wiped_at_destroy = -1;

static apr_status_t look_at_key(void *data)
{
    apr_array_header_t *keys = data;

    wiped_at_destroy = key_bytes_zero(&APR_ARRAY_IDX(keys, 0, hb_secret_t)) &&
                       key_bytes_zero(&APR_ARRAY_IDX(keys, 1, hb_secret_t));
    return APR_SUCCESS;
}

START_TEST(test_key_cleanup_at_destroy)
{
    apr_pool_t *p;
    apr_array_header_t *keys;
    hb_secret_t tmp;

    ck_assert_int_eq(apr_pool_create(&p, NULL), APR_SUCCESS);
    keys = apr_array_make(p, 2, sizeof(hb_secret_t));
    apr_pool_cleanup_register(p, keys, look_at_key, apr_pool_cleanup_null);
    tmp = k1;
    hb_secret_push(keys, &tmp);
    tmp = k2;
    hb_secret_push(keys, &tmp);
    wiped_at_destroy = -1;
    apr_pool_destroy(p);
    ck_assert_int_eq(wiped_at_destroy, 1);
}
END_TEST

/* HB_PACKET_MAX bounds the whole datagram, signature included: a signed
 * packet of 1,400 bytes is accepted, one of 1,401 or 1,402 refused (the
 * receiver reads up to 1,402 bytes so that it can tell a datagram that is
 * too long). */
static size_t signed_of_length(char *buf, size_t cap, size_t want)
{
    /* The signature adds &ts=<13 digits>&kid=k1&sig=<64 hex>. */
    size_t tail = strlen("&ts=1796000000000&kid=k1&sig=") + HB_SIG_HEX_LEN, n;

    ck_assert_uint_gt(want, tail + 40);
    n = (size_t)snprintf(buf, cap, "v=1&ready=5&busy=1&port=80&seq=42&pad=");
    while (n < want - tail) {
        buf[n++] = 'x';
    }
    buf[n] = '\0';
    return n;
}

/* Signed as a sender that does not check the length would. */
static size_t sign_unchecked(char *buf, size_t len, int64_t ts)
{
    unsigned int mlen = 0;
    unsigned char m[32];
    static const char hexd[] = "0123456789abcdef";

    len += (size_t)sprintf(buf + len, "&ts=%lld&kid=%s", (long long)ts, k1.id);
    HMAC(EVP_sha256(), k1.key, (int)k1.len, (const unsigned char *)buf, len, m, &mlen);
    len += (size_t)sprintf(buf + len, "&sig=");
    for (unsigned int i = 0; i < 32; i++) {
        buf[len++] = hexd[m[i] >> 4];
        buf[len++] = hexd[m[i] & 15];
    }
    buf[len] = '\0';
    return len;
}

START_TEST(test_signed_length_limit)
{
    char buf[HB_PACKET_MAX + 64];
    size_t want, n, slen;

    for (want = HB_PACKET_MAX - 1; want <= HB_PACKET_MAX + 2; want++) {
        n = sign_unchecked(buf, signed_of_length(buf, sizeof(buf), want), NOW);
        ck_assert_uint_eq(n, want);
        ck_assert_uint_eq(strlen(buf), want);
        slen = 0;
        if (want <= HB_PACKET_MAX) {
            ck_assert_msg(verify(&k1, 1, buf, n, &slen) == HB_AUTH_OK, "%zu bytes refused", n);
            ck_assert_uint_eq(slen, n - 5 - HB_SIG_HEX_LEN);
        } else {
            ck_assert_msg(verify(&k1, 1, buf, n, &slen) == HB_AUTH_MALFORMED,
                          "%zu bytes, over HB_PACKET_MAX, accepted", n);
        }
        /* With the cap a sender gives it, hb_auth_sign makes the same
         * packets up to the limit, and none beyond it. */
        n = signed_of_length(buf, sizeof(buf), want);
        n = hb_auth_sign(&k1, buf, n, HB_PACKET_MAX + 1, NOW);
        ck_assert_uint_eq(n, want <= HB_PACKET_MAX ? want : 0);
    }
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
    tcase_add_test(tc, test_key_never_echoed);
    tcase_add_test(tc, test_key_cleanup);
    tcase_add_test(tc, test_key_cleanup_at_destroy);
    tcase_add_test(tc, test_signed_length_limit);
    suite_add_tcase(s, tc);
    return s;
}
