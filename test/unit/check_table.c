/*
 * check_table.c: unit tests for hm_table (shared origin table) and the key
 * helpers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hm_table.h"

#include "check_main.h"

#define SEC 1000000LL

/* Each test's table memory, released in teardown even when a test fails. */
static void *mem;
static size_t mem_size;

static void setup(void)
{
    mem = NULL;
    mem_size = 0;
}

static void teardown(void)
{
    free(mem);
    mem = NULL;
}

static hm_table_t *new_table(unsigned int cap)
{
    mem_size = hm_table_size(cap);
    ck_assert_msg(mem_size > 0, "hm_table_size(%u) = 0", cap);
    free(mem);
    mem = aligned_alloc(64, (mem_size + 63) & ~(size_t)63);
    ck_assert_ptr_nonnull(mem);
    /* Garbage first: create must not rely on zeroed memory. */
    memset(mem, 0xa5, mem_size);
    hm_table_t *t = hm_table_create(mem, mem_size, cap);
    ck_assert_ptr_nonnull(t);
    return t;
}

static hm_addr_t key4(const char *ip, uint16_t port)
{
    hm_addr_t k;
    ck_assert_msg(hm_addr_from_string(&k, ip, port) == 0, "bad test address %s", ip);
    return k;
}

static hb_packet_t pkt(uint32_t ready, uint32_t busy)
{
    hb_packet_t p;
    memset(&p, 0, sizeof(p));
    p.version = 1;
    p.ready = ready;
    p.busy = busy;
    return p;
}

static hm_update_e upd(hm_table_t *t, const char *ip, uint16_t port, uint32_t ready, int64_t now,
                       int64_t stale_after)
{
    hm_addr_t k = key4(ip, port);
    hb_packet_t p = pkt(ready, ready);
    return hm_table_update(t, &k, &p, now, stale_after, 0);
}

static int find(const hm_table_t *t, const char *ip, uint16_t port, hm_entry_t *out)
{
    hm_addr_t k = key4(ip, port);
    return hm_table_find(t, &k, out);
}

/* ---- keys ------------------------------------------------------------- */

START_TEST(test_key_from_string)
{
    hm_addr_t k;
    char buf[HM_IP_MAX];

    ck_assert_int_eq(hm_addr_from_string(&k, "10.0.0.1", 80), 0);
    ck_assert_uint_eq(k.family, 4);
    ck_assert_uint_eq(k.port, 80);
    ck_assert_uint_eq(k.addr[0], 10);
    ck_assert_uint_eq(k.addr[3], 1);
    for (int i = 4; i < 16; i++) {
        ck_assert_uint_eq(k.addr[i], 0);
    }
    hm_addr_to_string(&k, buf);
    ck_assert_str_eq(buf, "10.0.0.1");

    ck_assert_int_eq(hm_addr_from_string(&k, "2001:DB8:0:0::1", 443), 0);
    ck_assert_uint_eq(k.family, 6);
    hm_addr_to_string(&k, buf);
    ck_assert_str_eq(buf, "2001:db8::1");

    ck_assert_int_eq(hm_addr_from_string(&k, "[2001:db8::2]", 1), 0);
    ck_assert_uint_eq(k.family, 6);
    hm_addr_to_string(&k, buf);
    ck_assert_str_eq(buf, "2001:db8::2");

    ck_assert_int_eq(hm_addr_from_string(&k, "::1", 1), 0);
    ck_assert_uint_eq(k.family, 6);
    ck_assert_int_eq(hm_addr_from_string(&k, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 1),
                     0);
}
END_TEST

START_TEST(test_key_from_string_bad)
{
    static const char *bad[] = {"",
                                "10.0.0",
                                "10.0.0.1.2",
                                "256.0.0.1",
                                "010.0.0.1",
                                " 10.0.0.1",
                                "10.0.0.1 ",
                                "host.example",
                                "[10.0.0.1]",
                                "[2001:db8::1",
                                "2001:db8::1]",
                                "[]",
                                "2001:db8:::1",
                                "fe80::1%nosuchif0",
                                "fe80::1%",
                                "fe80::1%0",
                                "2001:db8::1%2",
                                "0x0a.0.0.1",
                                "1111:2222:3333:4444:5555:6666:7777:8888:9999",
                                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:ffff:ffff"};
    hm_addr_t k;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(hm_addr_from_string(&k, bad[i], 80) == -1, "\"%s\" accepted", bad[i]);
    }
    ck_assert_int_eq(hm_addr_from_string(&k, NULL, 80), -1);
}
END_TEST

START_TEST(test_key_v4mapped)
{
    hm_addr_t a, b, c;
    char buf[HM_IP_MAX];
    ck_assert_int_eq(hm_addr_from_string(&a, "10.1.2.3", 80), 0);
    ck_assert_int_eq(hm_addr_from_string(&b, "::ffff:10.1.2.3", 80), 0);
    ck_assert_int_eq(hm_addr_from_string(&c, "[::FFFF:a01:203]", 80), 0);
    ck_assert_uint_eq(b.family, 4);
    ck_assert(hm_addr_equal(&a, &b));
    ck_assert(hm_addr_equal(&a, &c));
    hm_addr_to_string(&b, buf);
    ck_assert_str_eq(buf, "10.1.2.3");
    ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);

    /* ::10.1.2.3 (IPv4-compatible) and a different port are not the same */
    ck_assert_int_eq(hm_addr_from_string(&c, "::10.1.2.3", 80), 0);
    ck_assert_uint_eq(c.family, 6);
    ck_assert(!hm_addr_equal(&a, &c));
    ck_assert_int_eq(hm_addr_from_string(&c, "10.1.2.3", 81), 0);
    ck_assert(!hm_addr_equal(&a, &c));
}
END_TEST

START_TEST(test_key_from_sockaddr)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_storage ss;
    hm_addr_t k, want;
    char buf[HM_IP_MAX];

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(9999); /* the port argument wins, not the socket's */
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    ck_assert_int_eq(hm_addr_from_sockaddr(&k, (struct sockaddr *)&sin, 80), 0);
    want = key4("192.0.2.7", 80);
    ck_assert(hm_addr_equal(&k, &want));

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
    ck_assert_int_eq(hm_addr_from_sockaddr(&k, (struct sockaddr *)&sin6, 80), 0);
    ck_assert_uint_eq(k.family, 4);
    ck_assert(hm_addr_equal(&k, &want));

    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    ck_assert_int_eq(hm_addr_from_sockaddr(&k, (struct sockaddr *)&sin6, 8080), 0);
    ck_assert_uint_eq(k.family, 6);
    ck_assert_uint_eq(k.port, 8080);
    hm_addr_to_string(&k, buf);
    ck_assert_str_eq(buf, "2001:db8::7");

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    ck_assert_int_eq(hm_addr_from_sockaddr(&k, (struct sockaddr *)&ss, 80), -1);
    ck_assert_int_eq(hm_addr_from_sockaddr(&k, NULL, 80), -1);
}
END_TEST

START_TEST(test_key_equal_ignores_padding)
{
    hm_addr_t a = key4("10.0.0.1", 80), b = a;
    b.pad = 7;
    b.addr[10] = 0xee; /* beyond the IPv4 address */
    ck_assert(hm_addr_equal(&a, &b));

    /* and the table does not care about it either */
    hm_table_t *t = new_table(4);
    hb_packet_t p = pkt(1, 1);
    ck_assert_int_eq(hm_table_update(t, &b, &p, SEC, SEC, 0), HM_UPD_INSERTED);
    ck_assert_int_eq(hm_table_find(t, &a, NULL), 0);
    ck_assert_int_eq(hm_table_update(t, &a, &p, SEC, SEC, 0), HM_UPD_UPDATED);
}
END_TEST

/* ---- create / attach -------------------------------------------------- */

START_TEST(test_size_and_create)
{
    ck_assert_uint_eq(hm_table_size(0), 0);
    ck_assert_uint_gt(hm_table_size(1), 0);
    ck_assert_uint_gt(hm_table_size(2), hm_table_size(1));
    ck_assert_uint_eq(hm_table_size(100) % 8, 0);

    size_t sz = hm_table_size(8);
    void *m = aligned_alloc(64, (sz + 64 + 63) & ~(size_t)63);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(hm_table_create(m, sz - 1, 8));
    ck_assert_ptr_null(hm_table_create(m, sz, 0));
    ck_assert_ptr_null(hm_table_create(NULL, sz, 8));
    ck_assert_ptr_null(hm_table_create((char *)m + 4, sz, 8));
    hm_table_t *t = hm_table_create(m, sz, 8);
    ck_assert_ptr_eq(t, m);
    ck_assert_uint_eq(hm_table_capacity(t), 8);
    ck_assert_uint_eq(hm_table_count(t), 0);
    ck_assert_uint_eq(hm_table_generation(t) % 2, 0);
    for (int c = 0; c < HM_CTR_COUNT; c++) {
        ck_assert_uint_eq(hm_table_counter(t, (hm_counter_e)c), 0);
    }
    for (unsigned int i = 0; i < 8; i++) {
        ck_assert_int_eq(hm_table_get(t, i, NULL), 0);
    }
    free(m);
}
END_TEST

START_TEST(test_attach)
{
    hm_table_t *t = new_table(16);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 5, SEC, SEC), HM_UPD_INSERTED);

    ck_assert_ptr_eq(hm_table_attach(mem, mem_size), t);
    ck_assert_ptr_null(hm_table_attach(mem, mem_size - 1));
    ck_assert_ptr_null(hm_table_attach(mem, 4));
    ck_assert_ptr_null(hm_table_attach(NULL, mem_size));

    /* A copy at another address works: the block holds no pointers. */
    void *copy = aligned_alloc(64, (mem_size + 63) & ~(size_t)63);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, mem, mem_size);
    hm_table_t *t2 = hm_table_attach(copy, mem_size);
    ck_assert_ptr_eq(t2, copy);
    ck_assert_uint_eq(hm_table_capacity(t2), 16);
    ck_assert_uint_eq(hm_table_count(t2), 1);
    hm_entry_t e;
    ck_assert_int_eq(find(t2, "10.0.0.1", 80, &e), 0);
    ck_assert_uint_eq(e.ready, 5);
    ck_assert_int_eq(upd(t2, "10.0.0.2", 80, 6, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(find(t, "10.0.0.2", 80, NULL), -1);

    /* Damage to any byte of each header field it checks. */
    unsigned int nfields;
    const hm_table_field_t *field = hm_table_checked_fields(&nfields);
    ck_assert_uint_gt(nfields, 0);
    for (unsigned int f = 0; f < nfields; f++) {
        ck_assert_uint_le(field[f].offset + field[f].size, mem_size);
        for (size_t b = 0; b < field[f].size; b++) {
            memcpy(copy, mem, mem_size);
            ((unsigned char *)copy)[field[f].offset + b] ^= 0x40;
            ck_assert_msg(hm_table_attach(copy, mem_size) == NULL,
                          "header field %s, byte %zu: damage not noticed", field[f].name, b);
        }
    }
    memset(copy, 0, mem_size);
    ck_assert_ptr_null(hm_table_attach(copy, mem_size));
    free(copy);
}
END_TEST

/* ---- update / find / get ---------------------------------------------- */

/* The batch hints are hints: with entries present or not, with a stage-1
 * call whose index position is garbage, the table stays byte for byte. */
START_TEST(test_prefetch_changes_nothing)
{
    hm_table_t *t = new_table(4);
    char *copy;

    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 5, 100 * SEC, 10 * SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "2001:db8::1", 80, 6, 100 * SEC, 10 * SEC), HM_UPD_INSERTED);
    copy = malloc(mem_size);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, mem, mem_size);
    const char *ips[] = {"10.0.0.1", "2001:db8::1", "10.0.0.2", "::1"};
    for (int stage = 0; stage < 2; stage++) {
        for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
            hm_addr_t k = key4(ips[i], 80);
            hm_table_prefetch(t, &k, stage);
        }
    }
    ck_assert_int_eq(memcmp(copy, mem, mem_size), 0);

    /* Out-of-range slot numbers in the index: range-checked, never
     * followed. */
    uint32_t nidx;
    int32_t *idx = hm_table_index_words(t, &nidx);
    ck_assert_uint_eq(nidx, 8);
    ck_assert((char *)idx >= (char *)mem && (char *)(idx + nidx) <= (char *)mem + mem_size);
    for (uint32_t i = 0; i < nidx; i++) {
        idx[i] = (i & 1) ? 4 : 1 << 30;
    }
    memcpy(copy, mem, mem_size);
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        hm_addr_t k = key4(ips[i], 80);
        hm_table_prefetch(t, &k, 1);
    }
    ck_assert_int_eq(memcmp(copy, mem, mem_size), 0);
    free(copy);
}
END_TEST

START_TEST(test_insert_update_find)
{
    hm_table_t *t = new_table(8);
    hm_addr_t k = key4("10.0.0.11", 80);
    hb_packet_t p = pkt(75, 3);
    hm_entry_t e;

    ck_assert_int_eq(hm_table_update(t, &k, &p, 100 * SEC, 10 * SEC, HM_ENTRY_PORT_KNOWN),
                     HM_UPD_INSERTED);
    ck_assert_uint_eq(hm_table_count(t), 1);
    int slot = hm_table_find(t, &k, &e);
    ck_assert_int_ge(slot, 0);
    ck_assert(hm_addr_equal(&e.key, &k));
    ck_assert_str_eq(e.ip, "10.0.0.11");
    ck_assert_uint_eq(e.ready, 75);
    ck_assert_uint_eq(e.busy, 3);
    ck_assert_int_eq(e.seen, 100 * SEC);
    ck_assert_int_eq(e.first_seen, 100 * SEC);
    ck_assert_uint_eq(e.packets, 1);
    ck_assert_uint_eq(e.flags, HM_ENTRY_PORT_KNOWN);
    ck_assert_uint_eq(e.state, HB_STATE_UP);
    ck_assert_uint_eq(e.interval_ms, 0);
    ck_assert_uint_eq(e.seq, 0);

    p = pkt(10, 68);
    ck_assert_int_eq(hm_table_update(t, &k, &p, 101 * SEC, 10 * SEC, HM_ENTRY_VIA_HTTP),
                     HM_UPD_UPDATED);
    ck_assert_uint_eq(hm_table_count(t), 1);
    hm_entry_t g;
    ck_assert_int_eq(hm_table_find(t, &k, &e), slot);
    ck_assert_int_eq(hm_table_get(t, (unsigned)slot, &g), 1);
    ck_assert_int_eq(memcmp(&e, &g, sizeof(e)), 0);
    ck_assert_uint_eq(e.ready, 10);
    ck_assert_uint_eq(e.busy, 68);
    ck_assert_int_eq(e.seen, 101 * SEC);
    ck_assert_int_eq(e.first_seen, 100 * SEC);
    ck_assert_uint_eq(e.packets, 2);
    ck_assert_uint_eq(e.flags, HM_ENTRY_VIA_HTTP);

    hm_addr_t other = key4("10.0.0.12", 80);
    ck_assert_int_eq(hm_table_find(t, &other, &e), -1);
}
END_TEST

START_TEST(test_optional_fields_stored)
{
    hm_table_t *t = new_table(4);
    hm_addr_t k = key4("2001:db8::5", 8080);
    hb_packet_t p = pkt(1, 2);
    hm_entry_t e;

    p.flags = HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE | HB_HAS_PORT;
    p.seq = 77;
    p.interval_ms = 500;
    p.state = HB_STATE_DRAIN;
    p.port = 8080;
    ck_assert_int_eq(hm_table_update(t, &k, &p, SEC, SEC, 0), HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &k, &e), 0);
    ck_assert_str_eq(e.ip, "2001:db8::5");
    ck_assert_uint_eq(e.seq, 77);
    ck_assert_uint_eq(e.interval_ms, 500);
    ck_assert_uint_eq(e.state, HB_STATE_DRAIN);

    /* Absent on the next packet: seq and interval keep their last value,
     * state falls back to up (a stock sender has no state to report). */
    p = pkt(3, 4);
    ck_assert_int_eq(hm_table_update(t, &k, &p, 2 * SEC, SEC, 0), HM_UPD_UPDATED);
    ck_assert_int_ge(hm_table_find(t, &k, &e), 0);
    ck_assert_uint_eq(e.seq, 77);
    ck_assert_uint_eq(e.interval_ms, 500);
    ck_assert_uint_eq(e.state, HB_STATE_UP);
    ck_assert_uint_eq(e.ready, 3);
}
END_TEST

START_TEST(test_ports_distinct)
{
    hm_table_t *t = new_table(8);
    hm_entry_t e;
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.1", 8080, 2, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.1", 8443, 3, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_uint_eq(hm_table_count(t), 3);
    ck_assert_int_ge(find(t, "10.0.0.1", 8080, &e), 0);
    ck_assert_uint_eq(e.ready, 2);
    ck_assert_uint_eq(e.key.port, 8080);
    ck_assert_int_ge(find(t, "10.0.0.1", 80, &e), 0);
    ck_assert_uint_eq(e.ready, 1);
    ck_assert_int_eq(find(t, "10.0.0.1", 81, &e), -1);
}
END_TEST

START_TEST(test_v4mapped_same_entry)
{
    hm_table_t *t = new_table(8);
    hm_entry_t e;
    ck_assert_int_eq(upd(t, "::ffff:10.9.8.7", 80, 1, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.9.8.7", 80, 2, SEC, SEC), HM_UPD_UPDATED);
    ck_assert_uint_eq(hm_table_count(t), 1);
    ck_assert_int_ge(find(t, "[::ffff:10.9.8.7]", 80, &e), 0);
    ck_assert_str_eq(e.ip, "10.9.8.7");
    ck_assert_uint_eq(e.ready, 2);
}
END_TEST

START_TEST(test_get_bounds)
{
    hm_table_t *t = new_table(4);
    hm_entry_t e;
    memset(&e, 0x5a, sizeof(e));
    ck_assert_int_eq(hm_table_get(t, 0, &e), 0);
    ck_assert_int_eq(hm_table_get(t, 3, &e), 0);
    ck_assert_int_eq(hm_table_get(t, 4, &e), 0);
    ck_assert_int_eq(hm_table_get(t, 0xffffffffu, &e), 0);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, SEC, SEC), HM_UPD_INSERTED);
    int used = 0;
    for (unsigned i = 0; i < 4; i++) {
        used += hm_table_get(t, i, &e);
    }
    ck_assert_int_eq(used, 1);
}
END_TEST

/* ---- full table ------------------------------------------------------- */

START_TEST(test_full_evicts_stale)
{
    hm_table_t *t = new_table(2);
    hm_entry_t e;
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 10 * SEC, 0), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 2, 20 * SEC, 0), HM_UPD_INSERTED);
    int slot_a = find(t, "10.0.0.1", 80, NULL);
    ck_assert_int_ge(slot_a, 0);
    /* 10.0.0.1 refreshed later than .2, so .2 is now the oldest */
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 30 * SEC, 0), HM_UPD_UPDATED);
    int slot_b = find(t, "10.0.0.2", 80, NULL);
    uint32_t gen = hm_table_generation(t);

    /* now=100s, stale_after=50s: .2 (seen 20s) is stale */
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 3, 100 * SEC, 50 * SEC), HM_UPD_REPLACED);
    ck_assert_uint_eq(hm_table_count(t), 2);
    ck_assert_int_eq(find(t, "10.0.0.2", 80, NULL), -1);
    ck_assert_int_eq(find(t, "10.0.0.3", 80, &e), slot_b);
    ck_assert_uint_eq(e.ready, 3);
    ck_assert_uint_eq(e.packets, 1);
    ck_assert_int_eq(e.first_seen, 100 * SEC);
    ck_assert_str_eq(e.ip, "10.0.0.3");
    ck_assert_int_eq(find(t, "10.0.0.1", 80, NULL), slot_a);
    ck_assert_uint_ne(hm_table_generation(t), gen);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_REPLACED), 1);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_INSERTED), 2);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_FULL), 0);
}
END_TEST

/* A table carried into a new one (graceful restart with a new size) or
 * built from a storage file: every entry as it was, no fresher. */
START_TEST(test_put_entry)
{
    hm_table_t *src = new_table(4);
    void *src_mem = mem;
    hm_entry_t e, c;
    hm_addr_t k = key4("10.0.0.1", 8080);
    hb_packet_t p = pkt(7, 3);

    p.seq = 41;
    p.interval_ms = 250;
    p.state = HB_STATE_DRAIN;
    p.flags = HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE | HB_HAS_PORT;
    ck_assert_int_eq(hm_table_update(src, &k, &p, 10 * SEC, 0,
                                     HM_ENTRY_PORT_KNOWN | HM_ENTRY_AUTH | HM_ENTRY_VIA_HTTP),
                     HM_UPD_INSERTED);
    p.seq = 42;
    ck_assert_int_eq(hm_table_update(src, &k, &p, 20 * SEC, 0,
                                     HM_ENTRY_PORT_KNOWN | HM_ENTRY_AUTH | HM_ENTRY_VIA_HTTP),
                     HM_UPD_UPDATED);
    ck_assert_int_ge(hm_table_find(src, &k, &e), 0);

    mem = NULL; /* new_table frees the last one: keep src */
    hm_table_t *t = new_table(4);
    ck_assert_int_eq(hm_table_put_entry(t, &e, 25 * SEC), HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &k, &c), 0);
    ck_assert(hm_addr_equal(&c.key, &e.key));
    ck_assert_str_eq(c.ip, "10.0.0.1");
    ck_assert_uint_eq(c.ready, 7);
    ck_assert_uint_eq(c.busy, 3);
    ck_assert_uint_eq(c.seq, 42);
    ck_assert_uint_eq(c.interval_ms, 250);
    ck_assert_uint_eq(c.state, HB_STATE_DRAIN);
    ck_assert_uint_eq(c.flags, HM_ENTRY_PORT_KNOWN | HM_ENTRY_AUTH | HM_ENTRY_VIA_HTTP);
    ck_assert_int_eq(c.seen, 20 * SEC);
    ck_assert_int_eq(c.first_seen, 20 * SEC);
    ck_assert_uint_eq(c.packets, 1);
    /* The copy is still spoken for by its key: no unsigned update, no
     * replay of the sequence number it had. */
    p.seq = 42;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 26 * SEC, 0, HM_ENTRY_PORT_KNOWN),
                     HM_UPD_DOWNGRADE);
    ck_assert_int_eq(hm_table_update(t, &k, &p, 26 * SEC, 0, HM_ENTRY_PORT_KNOWN | HM_ENTRY_AUTH),
                     HM_UPD_REPLAY);
    free(src_mem);

    /* Without optional fields: up, no interval, no sequence number. */
    memset(&e, 0, sizeof(e));
    e.key = key4("10.0.0.2", 80);
    e.ready = 1;
    e.seen = 24 * SEC;
    ck_assert_int_eq(hm_table_put_entry(t, &e, 25 * SEC), HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &e.key, &c), 0);
    ck_assert_uint_eq(c.state, HB_STATE_UP);
    ck_assert_uint_eq(c.interval_ms, 0);
    ck_assert_uint_eq(c.seq, 0);
    ck_assert_uint_eq(c.flags, 0);
    ck_assert_int_eq(c.seen, 24 * SEC);
}
END_TEST

/* Into a smaller table: of two entries for one slot the fresher stays,
 * whichever comes first. */
START_TEST(test_put_entry_smaller)
{
    hm_entry_t fresh, old, c;
    hm_table_t *t;

    memset(&fresh, 0, sizeof(fresh));
    fresh.key = key4("10.0.0.1", 80);
    fresh.ready = 1;
    fresh.seen = 90 * SEC;
    memset(&old, 0, sizeof(old));
    old.key = key4("10.0.0.2", 80);
    old.ready = 2;
    old.seen = 10 * SEC;

    t = new_table(1);
    ck_assert_int_eq(hm_table_put_entry(t, &fresh, 100 * SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(hm_table_put_entry(t, &old, 100 * SEC), HM_UPD_FULL);
    ck_assert_int_ge(hm_table_find(t, &fresh.key, &c), 0);

    t = new_table(1);
    ck_assert_int_eq(hm_table_put_entry(t, &old, 100 * SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(hm_table_put_entry(t, &fresh, 100 * SEC), HM_UPD_REPLACED);
    ck_assert_int_ge(hm_table_find(t, &fresh.key, &c), 0);
    ck_assert_int_eq(c.seen, 90 * SEC);
    ck_assert_int_lt(hm_table_find(t, &old.key, NULL), 0);

    /* Times at the ends of the range do not overflow. */
    t = new_table(1);
    old.seen = INT64_MIN;
    ck_assert_int_eq(hm_table_put_entry(t, &old, INT64_MAX), HM_UPD_INSERTED);
    fresh.seen = INT64_MAX;
    ck_assert_int_ne(hm_table_put_entry(t, &fresh, INT64_MIN), HM_UPD_INSERTED);
}
END_TEST

START_TEST(test_full_keeps_fresh)
{
    hm_table_t *t = new_table(2);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 90 * SEC, 0), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 2, 95 * SEC, 0), HM_UPD_INSERTED);
    uint32_t gen = hm_table_generation(t);
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 3, 100 * SEC, 50 * SEC), HM_UPD_FULL);
    ck_assert_int_eq(upd(t, "10.0.0.4", 80, 3, 100 * SEC, 50 * SEC), HM_UPD_FULL);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_FULL), 2);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_ACCEPTED), 2);
    ck_assert_uint_eq(hm_table_generation(t), gen);
    ck_assert_int_eq(find(t, "10.0.0.3", 80, NULL), -1);
    ck_assert_int_ge(find(t, "10.0.0.1", 80, NULL), 0);
    ck_assert_int_ge(find(t, "10.0.0.2", 80, NULL), 0);
    /* known senders are still updated when full */
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 9, 100 * SEC, 50 * SEC), HM_UPD_UPDATED);

    /* exactly at the boundary (seen == now - stale_after) is not stale */
    ck_assert_int_eq(upd(t, "10.0.0.5", 80, 3, 145 * SEC, 50 * SEC), HM_UPD_FULL);
    ck_assert_int_eq(upd(t, "10.0.0.5", 80, 3, 145 * SEC + 1, 50 * SEC), HM_UPD_REPLACED);
    ck_assert_int_eq(find(t, "10.0.0.2", 80, NULL), -1);
}
END_TEST

START_TEST(test_extreme_times)
{
    hm_table_t *t = new_table(1);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, INT64_MIN, 0), HM_UPD_INSERTED);
    /* now - stale_after would overflow: nothing can be that stale */
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 1, INT64_MIN + 5, INT64_MAX), HM_UPD_FULL);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 1, INT64_MAX, INT64_MAX), HM_UPD_REPLACED);
    ck_assert_uint_eq(hm_table_expire(t, INT64_MIN, INT64_MAX), 0);
    ck_assert_uint_eq(hm_table_expire(t, INT64_MAX, INT64_MIN), 1);
}
END_TEST

/* ---- expire ----------------------------------------------------------- */

START_TEST(test_expire)
{
    hm_table_t *t = new_table(8);
    hm_entry_t e;
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 10 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 2, 20 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 3, 30 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.4", 80, 4, 40 * SEC, SEC), HM_UPD_INSERTED);
    int slot2 = find(t, "10.0.0.2", 80, NULL);

    uint32_t gen = hm_table_generation(t);
    ck_assert_uint_eq(hm_table_expire(t, 40 * SEC, 30 * SEC), 0); /* 10s is not < 10s */
    ck_assert_uint_eq(hm_table_generation(t), gen);
    ck_assert_uint_eq(hm_table_expire(t, 45 * SEC, 20 * SEC), 2); /* < 25s: .1 .2 */
    ck_assert_uint_ne(hm_table_generation(t), gen);
    ck_assert_uint_eq(hm_table_generation(t) % 2, 0);
    ck_assert_uint_eq(hm_table_count(t), 2);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_EXPIRED), 2);
    ck_assert_int_eq(find(t, "10.0.0.1", 80, NULL), -1);
    ck_assert_int_eq(find(t, "10.0.0.2", 80, NULL), -1);
    ck_assert_int_ge(find(t, "10.0.0.3", 80, &e), 0);
    ck_assert_uint_eq(e.ready, 3);
    ck_assert_int_ge(find(t, "10.0.0.4", 80, NULL), 0);
    ck_assert_int_eq(hm_table_get(t, (unsigned)slot2, &e), 0);

    /* freed slots are reused */
    for (int i = 0; i < 6; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.1.%d", i);
        ck_assert_int_eq(upd(t, ip, 80, 5, 50 * SEC, SEC), HM_UPD_INSERTED);
    }
    ck_assert_uint_eq(hm_table_count(t), 8);
    ck_assert_int_eq(upd(t, "10.0.2.1", 80, 5, 50 * SEC, 100 * SEC), HM_UPD_FULL);
    ck_assert_uint_eq(hm_table_expire(t, 1000 * SEC, 0), 8);
    ck_assert_uint_eq(hm_table_count(t), 0);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_EXPIRED), 10);
}
END_TEST

START_TEST(test_expire_oldest_left)
{
    hm_table_t *t = new_table(8);
    int64_t oldest = 0;

    ck_assert_uint_eq(hm_table_expire_ex(t, 100 * SEC, 30 * SEC, &oldest), 0);
    ck_assert(oldest == INT64_MAX); /* empty */
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 10 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 2, 25 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 3, 20 * SEC, SEC), HM_UPD_INSERTED);
    /* Nothing removed: the oldest is .1 at 10 s. */
    ck_assert_uint_eq(hm_table_expire_ex(t, 30 * SEC, 30 * SEC, &oldest), 0);
    ck_assert_int_eq(oldest, 10 * SEC);
    /* .1 goes; of those left, .3 is the oldest. */
    ck_assert_uint_eq(hm_table_expire_ex(t, 45 * SEC, 30 * SEC, &oldest), 1);
    ck_assert_int_eq(oldest, 20 * SEC);
    /* An update makes it newer, and the bound follows. */
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 3, 46 * SEC, SEC), HM_UPD_UPDATED);
    ck_assert_uint_eq(hm_table_expire_ex(t, 46 * SEC, 30 * SEC, &oldest), 0);
    ck_assert_int_eq(oldest, 25 * SEC);
    ck_assert_uint_eq(hm_table_expire_ex(t, 100 * SEC, 30 * SEC, NULL), 2);
}
END_TEST

/* ---- generation and counters ------------------------------------------ */

START_TEST(test_generation)
{
    hm_table_t *t = new_table(4);
    uint32_t g0 = hm_table_generation(t), g;
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, SEC, SEC), HM_UPD_INSERTED);
    g = hm_table_generation(t);
    ck_assert_uint_ne(g, g0);
    ck_assert_uint_eq(g % 2, 0);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(upd(t, "10.0.0.1", 80, (uint32_t)i, SEC + i, SEC), HM_UPD_UPDATED);
    }
    ck_assert_uint_eq(hm_table_generation(t), g);
    hm_table_counter_add(t, HM_CTR_MALFORMED, 1);
    ck_assert_uint_eq(hm_table_generation(t), g);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 1, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_uint_ne(hm_table_generation(t), g);
}
END_TEST

START_TEST(test_counters)
{
    hm_table_t *t = new_table(2);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 1 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, 2 * SEC, SEC), HM_UPD_UPDATED);
    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 1, 3 * SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 1, 3 * SEC, SEC), HM_UPD_FULL);
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 1, 10 * SEC, SEC), HM_UPD_REPLACED);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_ACCEPTED), 4);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_INSERTED), 2);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_REPLACED), 1);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_FULL), 1);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_EXPIRED), 0);

    hm_table_counter_add(t, HM_CTR_MALFORMED, 3);
    hm_table_counter_add(t, HM_CTR_REJECTED, 1);
    hm_table_counter_add(t, HM_CTR_REJECTED, UINT64_C(1) << 40);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_MALFORMED), 3);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_REJECTED), (UINT64_C(1) << 40) + 1);
    /* out-of-range counters are ignored, not written past the array */
    hm_table_counter_add(t, HM_CTR_COUNT, 5);
    hm_table_counter_add(t, (hm_counter_e)-1, 5);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_COUNT), 0);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_ACCEPTED), 4);
}
END_TEST

START_TEST(test_auth_rules)
{
    hm_table_t *t = new_table(4);
    hm_addr_t k = key4("10.0.0.1", 80);
    hb_packet_t p = pkt(5, 0);
    hm_entry_t e;

    p.flags |= HB_HAS_SEQ;
    p.seq = 10;
    /* Unsigned entries take anything, as before. */
    ck_assert_int_eq(hm_table_update(t, &k, &p, 1 * SEC, SEC, 0), HM_UPD_INSERTED);
    p.seq = 5;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 2 * SEC, SEC, 0), HM_UPD_UPDATED);
    /* A signed packet takes the entry over (migration). */
    p.seq = 20;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 3 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    /* Then: no replay, no unsigned update, table unchanged. */
    p.ready = 999;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 4 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_REPLAY);
    p.seq = 19;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 4 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_REPLAY);
    p.seq = 21;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 4 * SEC, SEC, 0), HM_UPD_DOWNGRADE);
    ck_assert_int_ge(hm_table_find(t, &k, &e), 0);
    ck_assert_uint_eq(e.ready, 5);
    ck_assert_uint_eq(e.seq, 20);
    ck_assert_int_eq(e.seen, 3 * SEC);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_ACCEPTED), 3);
    /* A newer signed packet is accepted. */
    ck_assert_int_eq(hm_table_update(t, &k, &p, 5 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_int_ge(hm_table_find(t, &k, &e), 0);
    ck_assert_uint_eq(e.ready, 999);
}
END_TEST

/* ---- balancer announcements (join=) ------------------------------------ */

/* A signed-looking packet announcing text (parsed as a receiver would). */
static hb_packet_t join_pkt(uint32_t ready, uint64_t seq, const char *text)
{
    hb_packet_t p = pkt(ready, 0);
    p.seq = seq;
    p.flags = HB_HAS_SEQ;
    if (text) {
        ck_assert_msg(hb_join_parse(text, strlen(text), &p.join) == 0, "bad test join %s", text);
        p.join_text = text;
        p.join_len = strlen(text);
        p.flags |= HB_HAS_JOIN;
    }
    return p;
}

START_TEST(test_join_needs_auth)
{
    hm_table_t *t = new_table(4);
    hm_addr_t k = key4("10.0.0.1", 80), k2 = key4("10.0.0.2", 80);
    hb_packet_t p = join_pkt(5, 1, "shop,api:https:8443");
    hm_entry_t e;

    ck_assert_int_eq(hm_table_update(t, &k, &p, 1 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &k, &e), 0);
    ck_assert_uint_eq(e.join.n, 2);
    ck_assert_uint_eq(e.join.j[0].name_hash, hb_join_hash("shop", 4));
    ck_assert_uint_eq(e.join.j[0].scheme, HB_SCHEME_HTTP);
    ck_assert_uint_eq(e.join.j[1].name_hash, hb_join_hash("api", 3));
    ck_assert_uint_eq(e.join.j[1].scheme, HB_SCHEME_HTTPS);
    ck_assert_uint_eq(e.join.j[1].port, 8443);

    /* The same packet unsigned: the entry is made, but joins nothing. */
    ck_assert_int_eq(hm_table_update(t, &k2, &p, 1 * SEC, SEC, HM_ENTRY_PORT_KNOWN),
                     HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &k2, &e), 0);
    ck_assert_uint_eq(e.ready, 5);
    ck_assert_uint_eq(e.join.n, 0);
    ck_assert_uint_eq(e.join.j[0].name_hash, 0);
    /* ... and an unsigned update does not give it one either. */
    p.seq = 2;
    ck_assert_int_eq(hm_table_update(t, &k2, &p, 2 * SEC, SEC, HM_ENTRY_PORT_KNOWN),
                     HM_UPD_UPDATED);
    ck_assert_int_ge(hm_table_find(t, &k2, &e), 0);
    ck_assert_uint_eq(e.join.n, 0);
    /* Until it is signed (migration). */
    p.seq = 3;
    ck_assert_int_eq(hm_table_update(t, &k2, &p, 3 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_int_ge(hm_table_find(t, &k2, &e), 0);
    ck_assert_uint_eq(e.join.n, 2);
}
END_TEST

START_TEST(test_join_generation)
{
    hm_table_t *t = new_table(4);
    hm_addr_t k = key4("10.0.0.1", 80), plain = key4("10.0.0.2", 80);
    hb_packet_t p = join_pkt(5, 1, "shop");
    hb_packet_t q = join_pkt(5, 1, NULL);
    uint32_t g0 = hm_table_join_generation(t), g;

    /* An entry without an announcement comes and goes: no move. */
    ck_assert_int_eq(hm_table_update(t, &plain, &q, 1 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_INSERTED);
    ck_assert_uint_eq(hm_table_join_generation(t), g0);
    /* An unsigned packet with join= stores none: no move either. */
    ck_assert_int_eq(upd(t, "10.0.0.3", 80, 1, 1 * SEC, SEC), HM_UPD_INSERTED);
    {
        hm_addr_t k3 = key4("10.0.0.4", 80);
        ck_assert_int_eq(hm_table_update(t, &k3, &p, 1 * SEC, SEC, 0), HM_UPD_INSERTED);
    }
    ck_assert_uint_eq(hm_table_join_generation(t), g0);

    /* Insert of an entry that announces: moves. */
    ck_assert_int_eq(hm_table_update(t, &k, &p, 2 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_INSERTED);
    g = hm_table_join_generation(t);
    ck_assert_uint_ne(g, g0);

    /* Plain updates with the same set (other counts, state): no move. */
    for (uint64_t seq = 2; seq < 6; seq++) {
        p.seq = seq;
        p.ready = (uint32_t)seq;
        ck_assert_int_eq(hm_table_update(t, &k, &p, (int64_t)(2 + seq) * SEC, SEC, HM_ENTRY_AUTH),
                         HM_UPD_UPDATED);
    }
    p.flags |= HB_HAS_STATE;
    p.state = HB_STATE_DRAIN;
    p.seq = 6;
    ck_assert_int_eq(hm_table_update(t, &k, &p, 8 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_eq(hm_table_join_generation(t), g);
    /* Refused updates change nothing. */
    ck_assert_int_eq(hm_table_update(t, &k, &q, 8 * SEC, SEC, 0), HM_UPD_DOWNGRADE);
    ck_assert_uint_eq(hm_table_join_generation(t), g);

    /* The set changes: a scheme, a port, a balancer more. */
    p = join_pkt(5, 7, "shop:https");
    ck_assert_int_eq(hm_table_update(t, &k, &p, 9 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    g = hm_table_join_generation(t);
    p = join_pkt(5, 8, "shop:https:8443");
    ck_assert_int_eq(hm_table_update(t, &k, &p, 10 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    g = hm_table_join_generation(t);
    p = join_pkt(5, 9, "shop:https:8443,api");
    ck_assert_int_eq(hm_table_update(t, &k, &p, 11 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    g = hm_table_join_generation(t);
    /* Same balancers in another case: the same set, no move. */
    p = join_pkt(5, 10, "SHOP:HTTPS:8443,Api");
    ck_assert_int_eq(hm_table_update(t, &k, &p, 12 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_eq(hm_table_join_generation(t), g);
    /* The announcement goes (a signed packet without join=): moves. */
    q.seq = 11;
    ck_assert_int_eq(hm_table_update(t, &k, &q, 13 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    g = hm_table_join_generation(t);
    /* And comes back. */
    p = join_pkt(5, 12, "shop");
    ck_assert_int_eq(hm_table_update(t, &k, &p, 14 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_UPDATED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    g = hm_table_join_generation(t);

    /* Expiry of the entries without one (seen at 1 s): no move. */
    ck_assert_uint_eq(hm_table_expire(t, 12 * SEC, 10 * SEC), 3);
    ck_assert_uint_eq(hm_table_count(t), 1);
    ck_assert_uint_eq(hm_table_join_generation(t), g);
    /* Expiry of the one that announces: moves. */
    ck_assert_uint_eq(hm_table_expire(t, 30 * SEC, 10 * SEC), 1);
    ck_assert_uint_eq(hm_table_count(t), 0);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
}
END_TEST

START_TEST(test_join_eviction)
{
    hm_table_t *t = new_table(1);
    hm_addr_t a = key4("10.0.0.1", 80), b = key4("10.0.0.2", 80), c = key4("10.0.0.3", 80);
    hb_packet_t p = join_pkt(1, 1, "shop"), q = join_pkt(1, 1, NULL);
    uint32_t g;

    ck_assert_int_eq(hm_table_update(t, &a, &q, 1 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_INSERTED);
    g = hm_table_join_generation(t);
    /* Neither the evicted entry nor its successor announces: no move. */
    ck_assert_int_eq(hm_table_update(t, &b, &q, 10 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_REPLACED);
    ck_assert_uint_eq(hm_table_join_generation(t), g);
    /* The successor announces: moves. */
    p.seq = 5; /* newer than anything a's removal may have left behind */
    ck_assert_int_eq(hm_table_update(t, &a, &p, 20 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_REPLACED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    g = hm_table_join_generation(t);
    /* The evicted one announced: moves. */
    ck_assert_int_eq(hm_table_update(t, &c, &q, 30 * SEC, SEC, HM_ENTRY_AUTH), HM_UPD_REPLACED);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
}
END_TEST

START_TEST(test_join_put_entry)
{
    hm_table_t *src = new_table(2);
    void *src_mem = mem;
    hm_addr_t k = key4("10.0.0.1", 80);
    hb_packet_t p = join_pkt(4, 9, "shop,api:https:8443,x:ajp:8009");
    hm_entry_t e, c;

    ck_assert_int_eq(hm_table_update(src, &k, &p, 10 * SEC, 0, HM_ENTRY_AUTH | HM_ENTRY_PORT_KNOWN),
                     HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(src, &k, &e), 0);
    ck_assert_uint_eq(e.join.n, 3);

    mem = NULL; /* new_table frees the last one: keep src */
    hm_table_t *t = new_table(2);
    uint32_t g = hm_table_join_generation(t);
    ck_assert_int_eq(hm_table_put_entry(t, &e, 11 * SEC), HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &k, &c), 0);
    ck_assert(hb_join_equal(&c.join, &e.join));
    ck_assert_uint_eq(c.join.n, 3);
    ck_assert_uint_eq(c.join.j[2].name_hash, hb_join_hash("x", 1));
    ck_assert_uint_eq(c.join.j[2].scheme, HB_SCHEME_AJP);
    ck_assert_uint_eq(c.join.j[2].port, 8009);
    ck_assert_uint_ne(hm_table_join_generation(t), g);
    free(src_mem);

    /* An entry not signed keeps none, whatever its copy holds. */
    e.key = key4("10.0.0.2", 80);
    e.flags = HM_ENTRY_PORT_KNOWN;
    ck_assert_int_eq(hm_table_put_entry(t, &e, 11 * SEC), HM_UPD_INSERTED);
    ck_assert_int_ge(hm_table_find(t, &e.key, &c), 0);
    ck_assert_uint_eq(c.join.n, 0);
}
END_TEST

/* fe80::1 on two links is two hosts; the text form keeps the link. */
START_TEST(test_key_scope)
{
    struct sockaddr_in6 a, b;
    hm_addr_t ka, kb, kt;
    char text[HM_IP_MAX];

    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    ck_assert_int_eq(inet_pton(AF_INET6, "fe80::1", &a.sin6_addr), 1);
    b = a;
    a.sin6_scope_id = 3;
    b.sin6_scope_id = 4;
    ck_assert_int_eq(hm_addr_from_sockaddr(&ka, &a, 80), 0);
    ck_assert_int_eq(hm_addr_from_sockaddr(&kb, &b, 80), 0);
    ck_assert(!hm_addr_equal(&ka, &kb));
    ck_assert(hm_addr_same_host(&ka, &kb)); /* what a packet's addr= can say */
    ck_assert_uint_eq(hm_addr_scope(&ka), 3);
    hm_addr_to_string(&ka, text);
    ck_assert_str_eq(text, "fe80::1%3");
    ck_assert_int_eq(hm_addr_from_string(&kt, text, 80), 0);
    ck_assert(hm_addr_equal(&kt, &ka));
    ck_assert_int_eq(hm_addr_from_string(&kt, "fe80::1", 80), 0);
    ck_assert_uint_eq(hm_addr_scope(&kt), 0);
    ck_assert(!hm_addr_equal(&kt, &ka));
    ck_assert(hm_addr_same_host(&kt, &ka));
    /* A global address has no scope to keep. */
    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &a.sin6_addr), 1);
    ck_assert_int_eq(hm_addr_from_sockaddr(&ka, &a, 80), 0);
    hm_addr_to_string(&ka, text);
    ck_assert_str_eq(text, "2001:db8::1");
}
END_TEST

/* The sources over the rate limit: one line each, newest first, the one
 * dropped from longest ago giving way. */
START_TEST(test_limited)
{
    hm_table_t *t = new_table(2);
    hm_limited_t out[HM_LIMITED];
    hm_addr_t k;
    char ip[32];
    unsigned int i;

    ck_assert_uint_eq(hm_table_limited(t, out, HM_LIMITED), 0);
    for (i = 0; i < HM_LIMITED + 2; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%u", i + 1);
        k = key4(ip, 0);
        hm_table_note_limited(t, &k, (int64_t)(i + 1) * SEC);
        hm_table_note_limited(t, &k, (int64_t)(i + 1) * SEC);
    }
    ck_assert_uint_eq(hm_table_limited(t, out, HM_LIMITED), HM_LIMITED);
    hm_addr_to_string(&out[0].src, ip);
    ck_assert_str_eq(ip, "10.0.0.10");
    ck_assert_uint_eq(out[0].dropped, 2);
    hm_addr_to_string(&out[HM_LIMITED - 1].src, ip);
    ck_assert_str_eq(ip, "10.0.0.3");
    ck_assert_uint_eq(hm_table_limited(t, out, 3), 3);
}
END_TEST

START_TEST(test_reject_ring)
{
    hm_table_t *t = new_table(2);
    hm_reject_t out[HM_REJECTS + 4];
    hm_addr_t k = key4("10.0.0.9", 1234);
    unsigned int i, n;

    ck_assert_uint_eq(hm_table_rejects(t, out, HM_REJECTS), 0);
    hm_table_note_reject(t, &k, 7, 5 * SEC);
    n = hm_table_rejects(t, out, HM_REJECTS);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(out[0].reason, 7);
    ck_assert_int_eq(out[0].when, 5 * SEC);
    k.port = 0; /* a source address, not an origin */
    ck_assert(hm_addr_equal(&out[0].src, &k));
    /* The ring for sources outside HeartbeatAllow is another. */
    ck_assert_uint_eq(hm_table_rejects_outside(t, out, HM_REJECTS), 0);
    hm_table_note_outside(t, &k, 8, 6 * SEC);
    ck_assert_uint_eq(hm_table_rejects_outside(t, out, HM_REJECTS), 1);
    ck_assert_uint_eq(out[0].reason, 8);
    ck_assert_uint_eq(hm_table_rejects(t, out, HM_REJECTS), 1);

    /* The ring keeps the newest HM_REJECTS, newest first. */
    for (i = 0; i < HM_REJECTS + 3; i++) {
        hm_table_note_reject(t, &k, 100 + i, (int64_t)i);
    }
    n = hm_table_rejects(t, out, HM_REJECTS + 4);
    ck_assert_uint_eq(n, HM_REJECTS);
    ck_assert_uint_eq(out[0].reason, 100 + HM_REJECTS + 2);
    ck_assert_uint_eq(out[HM_REJECTS - 1].reason, 103);
    ck_assert_uint_eq(hm_table_rejects(t, out, 2), 2);
    ck_assert_uint_eq(out[1].reason, 100 + HM_REJECTS + 1);
    /* Rejections never touch the entries. */
    ck_assert_uint_eq(hm_table_count(t), 0);
}
END_TEST

/* ---- index consistency against a reference model ---------------------- */

START_TEST(test_model)
{
    /* Small key space, small table, many inserts and expiries: exercises
     * collisions, wrap-around and backward-shift deletion. */
    enum { CAP = 32, KEYS = 64, OPS = 20000 };
    hm_table_t *t = new_table(CAP);
    int64_t seen[KEYS];
    int present[KEYS];
    unsigned int count = 0;
    uint32_t rnd = 12345;

    memset(present, 0, sizeof(present));
    for (int op = 1; op <= OPS; op++) {
        rnd = rnd * 1103515245u + 12345u;
        unsigned k = (rnd >> 8) % KEYS;
        int64_t now = op;
        char ip[32];
        hm_addr_t key;

        snprintf(ip, sizeof(ip), "10.%u.0.%u", k % 3, k);
        if (hm_addr_from_string(&key, ip, (uint16_t)(80 + k % 2)) != 0) {
            ck_abort_msg("bad test address %s", ip);
        }
        if ((rnd >> 20) % 16 == 0) {
            int64_t max_age = (int64_t)((rnd >> 4) % 200);
            unsigned want = 0;
            for (int i = 0; i < KEYS; i++) {
                if (present[i] && seen[i] < now - max_age) {
                    present[i] = 0;
                    want++;
                }
            }
            unsigned got = hm_table_expire(t, now, max_age);
            if (got != want) {
                ck_abort_msg("op %d: expire removed %u, want %u", op, got, want);
            }
            count -= want;
        } else {
            hb_packet_t p = pkt(k, k);
            hm_update_e r = hm_table_update(t, &key, &p, now, INT64_MAX, 0);
            hm_update_e want;
            if (present[k]) {
                want = HM_UPD_UPDATED;
                seen[k] = now;
            } else if (count < CAP) {
                want = HM_UPD_INSERTED;
                present[k] = 1;
                seen[k] = now;
                count++;
            } else {
                want = HM_UPD_FULL;
            }
            if (r != want) {
                ck_abort_msg("op %d: update of key %u = %d, want %d", op, k, r, want);
            }
        }
        if (hm_table_count(t) != count) {
            ck_abort_msg("op %d: count %u, want %u", op, hm_table_count(t), count);
        }
        /* Plain checks: check's bookkeeping per passing assertion would
         * dominate the run time here. */
        if (op % 7 == 0 || op > OPS - 100) {
            for (unsigned i = 0; i < KEYS; i++) {
                hm_entry_t e;
                snprintf(ip, sizeof(ip), "10.%u.0.%u", i % 3, i);
                hm_addr_from_string(&key, ip, (uint16_t)(80 + i % 2));
                int s = hm_table_find(t, &key, &e);
                if ((s >= 0) != present[i] || (s >= 0 && (e.ready != i || e.seen != seen[i]))) {
                    ck_abort_msg("op %d: key %u present=%d find=%d", op, i, present[i], s);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_large)
{
    enum { CAP = 5000 };
    hm_table_t *t = new_table(CAP);
    char ip[64];
    for (unsigned i = 0; i < CAP; i++) {
        snprintf(ip, sizeof(ip), "2001:db8::%x:%x", i >> 8, i & 0xff);
        ck_assert_int_eq(upd(t, ip, 443, i, (int64_t)i, 0), HM_UPD_INSERTED);
    }
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, CAP, 1), HM_UPD_REPLACED);
    ck_assert_uint_eq(hm_table_expire(t, CAP, CAP / 2), CAP / 2 - 1);
    for (unsigned i = 0; i < CAP; i++) {
        snprintf(ip, sizeof(ip), "2001:db8::%x:%x", i >> 8, i & 0xff);
        int want = i >= CAP / 2;
        ck_assert_msg((find(t, ip, 443, NULL) >= 0) == want, "%s", ip);
    }
}
END_TEST

/* ---- locking ---------------------------------------------------------- */

START_TEST(test_steal_lock_from_dead_writer)
{
    hm_table_t *t = new_table(4);
    ck_assert_int_eq(upd(t, "10.0.0.1", 80, 1, SEC, SEC), HM_UPD_INSERTED);

    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0) {
        _exit(0);
    }
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);

    /* White box: plant the pid of a process that no longer exists in the
     * writer lock, as if it died holding it. */
    int32_t *lock = hm_table_lock_word(t);
    ck_assert((char *)lock >= (char *)mem && (char *)(lock + 1) <= (char *)mem + mem_size);
    ck_assert_int_eq(*lock, 0);
    *lock = (int32_t)dead;

    ck_assert_int_eq(upd(t, "10.0.0.2", 80, 2, SEC, SEC), HM_UPD_INSERTED);
    ck_assert_int_eq(*lock, 0);
    ck_assert_uint_eq(hm_table_count(t), 2);
    ck_assert_int_ge(find(t, "10.0.0.1", 80, NULL), 0);
    ck_assert_int_ge(find(t, "10.0.0.2", 80, NULL), 0);
    ck_assert_uint_eq(hm_table_generation(t) % 2, 0);
}
END_TEST

/* ---- concurrent reader vs writer process ------------------------------ */

enum { HAMMER_KEYS = 6, HAMMER_CAP = 4, HAMMER_UPDATES = 40000 };

static void hammer_ip(unsigned i, char *buf, size_t len)
{
    if (i % 2) {
        snprintf(buf, len, "2001:db8::%u", i);
    } else {
        snprintf(buf, len, "10.0.0.%u", i);
    }
}

/* Every value the writer stores is derived from one counter, so any mix of
 * two writes is visible as a mismatch. */
static void hammer_writer(hm_table_t *t)
{
    for (uint32_t i = 1; i <= HAMMER_UPDATES; i++) {
        unsigned k = i % HAMMER_KEYS;
        char ip[64];
        hm_addr_t key;
        hb_packet_t p = pkt(i, i);
        hammer_ip(k, ip, sizeof(ip));
        if (hm_addr_from_string(&key, ip, (uint16_t)(1000 + k)) != 0) {
            _exit(2);
        }
        p.flags = HB_HAS_SEQ | HB_HAS_INTERVAL;
        p.seq = (uint64_t)i * 3;
        p.interval_ms = (i % HB_INTERVAL_MAX_MS) + 1;
        /* More keys than slots, stale_after 0: constant eviction, so the
         * index and slot ownership change all the time. */
        hm_table_update(t, &key, &p, (int64_t)i * 10, 0, 0);
        if (i % 97 == 0) {
            hm_table_expire(t, (int64_t)i * 10, 25);
        }
    }
}

/* Returns NULL if e is consistent, else what is wrong. Plain ifs instead of
 * ck_assert in the hot loop: check records every passing assertion, which
 * would slow the reader down so much that it hardly overlaps the writer. */
static const char *torn(const hm_entry_t *e)
{
    static char why[160];
    char ip[HM_IP_MAX];
    hm_addr_t key;
    unsigned k = e->ready % HAMMER_KEYS;

    if (e->ready != e->busy) {
        snprintf(why, sizeof(why), "ready=%u busy=%u", e->ready, e->busy);
        return why;
    }
    if (e->seq != (uint64_t)e->ready * 3 || e->seen != (int64_t)e->ready * 10 ||
        e->interval_ms != (e->ready % HB_INTERVAL_MAX_MS) + 1) {
        snprintf(why, sizeof(why), "ready=%u seq=%llu seen=%lld int=%u", e->ready,
                 (unsigned long long)e->seq, (long long)e->seen, e->interval_ms);
        return why;
    }
    hammer_ip(k, ip, sizeof(ip));
    if (hm_addr_from_string(&key, ip, (uint16_t)(1000 + k)) != 0 || !hm_addr_equal(&key, &e->key) ||
        strcmp(e->ip, ip) != 0) {
        snprintf(why, sizeof(why), "ready=%u belongs to %s port %u, entry is %s port %u", e->ready,
                 ip, 1000 + k, e->ip, e->key.port);
        return why;
    }
    return NULL;
}

START_TEST(test_concurrent_reader)
{
    size_t sz = hm_table_size(HAMMER_CAP);
    void *shm = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(shm, MAP_FAILED);
    hm_table_t *t = hm_table_create(shm, sz, HAMMER_CAP);
    ck_assert_ptr_nonnull(t);

    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        hm_table_t *ct = hm_table_attach(shm, sz);
        if (ct == NULL) {
            _exit(3);
        }
        hammer_writer(ct);
        _exit(0);
    }

    hm_addr_t keys[HAMMER_KEYS];
    for (unsigned k = 0; k < HAMMER_KEYS; k++) {
        char ip[64];
        hammer_ip(k, ip, sizeof(ip));
        ck_assert_int_eq(hm_addr_from_string(&keys[k], ip, (uint16_t)(1000 + k)), 0);
    }

    unsigned long gets = 0, found = 0;
    const char *bad = NULL;
    int status = 0, done = 0;
    while (!done && bad == NULL) {
        /* Checked before the sweep, so at least one full sweep follows the
         * writer's last update. */
        done = waitpid(child, &status, WNOHANG) == child;
        for (unsigned s = 0; s < HAMMER_CAP && bad == NULL; s++) {
            hm_entry_t e;
            if (hm_table_get(t, s, &e)) {
                bad = torn(&e);
                gets++;
            }
        }
        for (unsigned k = 0; k < HAMMER_KEYS && bad == NULL; k++) {
            hm_entry_t e;
            int s = hm_table_find(t, &keys[k], &e);
            if (s >= 0) {
                if (s >= HAMMER_CAP || !hm_addr_equal(&e.key, &keys[k])) {
                    bad = "find returned a bad slot or another key";
                } else {
                    bad = torn(&e);
                }
                found++;
            }
        }
    }
    if (bad != NULL) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        munmap(shm, sz);
        ck_abort_msg("reader saw a torn entry: %s", bad);
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer failed: status %d",
                  status);
    ck_assert_uint_gt(gets, 0);
    ck_assert_uint_gt(found, 0);
    ck_assert_uint_eq(hm_table_generation(t) % 2, 0);
    ck_assert_uint_eq(hm_table_counter(t, HM_CTR_ACCEPTED), HAMMER_UPDATES);
    /* The final state is what the writer left. */
    hm_entry_t e;
    char ip[64];
    hammer_ip(HAMMER_UPDATES % HAMMER_KEYS, ip, sizeof(ip));
    ck_assert_int_ge(find(t, ip, (uint16_t)(1000 + HAMMER_UPDATES % HAMMER_KEYS), &e), 0);
    ck_assert_uint_eq(e.ready, HAMMER_UPDATES);
    munmap(shm, sz);
}
END_TEST

Suite *hb_test_suite(void)
{
    Suite *s = suite_create("hm_table");
    TCase *tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_key_from_string);
    tcase_add_test(tc, test_key_from_string_bad);
    tcase_add_test(tc, test_key_v4mapped);
    tcase_add_test(tc, test_key_from_sockaddr);
    tcase_add_test(tc, test_key_equal_ignores_padding);
    suite_add_tcase(s, tc);

    tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_size_and_create);
    tcase_add_test(tc, test_attach);
    tcase_add_test(tc, test_insert_update_find);
    tcase_add_test(tc, test_prefetch_changes_nothing);
    tcase_add_test(tc, test_optional_fields_stored);
    tcase_add_test(tc, test_ports_distinct);
    tcase_add_test(tc, test_v4mapped_same_entry);
    tcase_add_test(tc, test_get_bounds);
    tcase_add_test(tc, test_full_evicts_stale);
    tcase_add_test(tc, test_full_keeps_fresh);
    tcase_add_test(tc, test_put_entry);
    tcase_add_test(tc, test_put_entry_smaller);
    tcase_add_test(tc, test_extreme_times);
    tcase_add_test(tc, test_expire);
    tcase_add_test(tc, test_expire_oldest_left);
    tcase_add_test(tc, test_generation);
    tcase_add_test(tc, test_counters);
    tcase_add_test(tc, test_model);
    tcase_add_test(tc, test_large);
    tcase_add_test(tc, test_reject_ring);
    tcase_add_test(tc, test_key_scope);
    tcase_add_test(tc, test_limited);
    tcase_add_test(tc, test_auth_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("join");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_join_needs_auth);
    tcase_add_test(tc, test_join_generation);
    tcase_add_test(tc, test_join_eviction);
    tcase_add_test(tc, test_join_put_entry);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    /* Valgrind and lock stealing (100000 yields) are slow; the work is
     * bounded by counts, this only keeps check from killing it early. */
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_steal_lock_from_dead_writer);
    tcase_add_test(tc, test_concurrent_reader);
    suite_add_tcase(s, tc);
    return s;
}
