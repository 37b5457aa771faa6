/*
 * fuzz_packet.c: libFuzzer target for the heartbeat wire format.
 *
 * Every datagram and POST body the monitor receives goes through
 * hb_packet_parse(), so it must survive any bytes at all. Beyond "does not
 * crash" (ASan/UBSan), this checks the properties the rest of the suite
 * relies on:
 *  - an accepted packet only holds values inside the documented ranges;
 *  - an accepted packet consists of printable ASCII only, so no NUL, control
 *    or non-ASCII byte can reach the table (or a log line) through it;
 *  - parse -> format -> parse gives the same struct, and formatting is
 *    canonical (formatting the re-parsed packet gives the same bytes), so
 *    what our sender emits is exactly what our receiver stores;
 *  - hb_packet_format() never writes past cap and never leaves a truncated
 *    packet behind;
 *  - hb_query_next() always makes progress and stays inside the buffer;
 *  - the parser accepts exactly what docs/protocol.md allows, with the
 *    same values: a second, deliberately simple parser written from the
 *    document (numbers compared as digit strings, no arithmetic shared with
 *    the real one; join= through ref_join.h) must reach the same verdict on
 *    every input.
 * A violated property calls abort(), which libFuzzer reports as a crash.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_packet.h"
#include "ref_join.h"

/* Report which property failed: a bare abort() would leave a reader of a
 * fuzzer log with nothing but a stack trace. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_packet: property failed at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define KNOWN_FLAGS                                                                                \
    (HB_HAS_PORT | HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE | HB_HAS_ADDR | HB_HAS_JOIN)

static void check_ranges(const hb_packet_t *p)
{
    REQUIRE(p->version == 1);
    REQUIRE(p->ready <= HB_COUNT_MAX);
    REQUIRE(p->busy <= HB_COUNT_MAX);
    REQUIRE((p->flags & ~KNOWN_FLAGS) == 0);
    REQUIRE(!(p->flags & HB_HAS_PORT) || p->port >= 1);
    REQUIRE(!(p->flags & HB_HAS_INTERVAL) ||
            (p->interval_ms >= HB_INTERVAL_MIN_MS && p->interval_ms <= HB_INTERVAL_MAX_MS));
    REQUIRE(p->state == HB_STATE_UP || p->state == HB_STATE_DRAIN || p->state == HB_STATE_STOPPING);
    /* Without state= the packet means "up"; the table relies on that. */
    REQUIRE((p->flags & HB_HAS_STATE) || p->state == HB_STATE_UP);
    /* addr= is a terminated IP literal, or absent and empty. */
    REQUIRE(memchr(p->addr, '\0', sizeof(p->addr)) != NULL);
    REQUIRE((p->flags & HB_HAS_ADDR) ? p->addr[0] != '\0' : p->addr[0] == '\0');
    /* join=: a whole set and the text it came from, or nothing at all. */
    if (p->flags & HB_HAS_JOIN) {
        REQUIRE(p->join.n >= 1 && p->join.n <= HB_JOIN_MAX);
        REQUIRE(p->join_text != NULL && p->join_len >= 1 && p->join_len <= HB_JOIN_TEXT_MAX);
        for (uint32_t i = 0; i < p->join.n; i++) {
            REQUIRE(p->join.j[i].name_hash != 0);
            REQUIRE(p->join.j[i].scheme > HB_SCHEME_NONE && p->join.j[i].scheme < HB_SCHEME_COUNT);
        }
    } else {
        REQUIRE(p->join.n == 0 && p->join_text == NULL && p->join_len == 0);
    }
}

/* Field by field: the struct has padding, so memcmp() would compare junk. */
static void check_same(const hb_packet_t *a, const hb_packet_t *b)
{
    REQUIRE(a->version == b->version);
    REQUIRE(a->ready == b->ready);
    REQUIRE(a->busy == b->busy);
    REQUIRE(a->flags == b->flags);
    REQUIRE(a->state == b->state);
    REQUIRE(!(a->flags & HB_HAS_PORT) || a->port == b->port);
    REQUIRE(!(a->flags & HB_HAS_SEQ) || a->seq == b->seq);
    REQUIRE(!(a->flags & HB_HAS_INTERVAL) || a->interval_ms == b->interval_ms);
    REQUIRE(!(a->flags & HB_HAS_ADDR) || strcmp(a->addr, b->addr) == 0);
    REQUIRE(hb_join_equal(&a->join, &b->join));
    REQUIRE(a->join_len == b->join_len);
    REQUIRE(!(a->flags & HB_HAS_JOIN) || memcmp(a->join_text, b->join_text, a->join_len) == 0);
}

/* Walk the pairs the way both parsers do; every step must consume input and
 * every pair returned must lie inside [buf, end). */
static void check_query_walk(const char *buf, size_t len)
{
    const char *pos = buf, *end = buf + len;
    hb_kv_t kv;
    int r;

    for (;;) {
        const char *before = pos;
        r = hb_query_next(&pos, end, &kv);
        REQUIRE(pos >= before && pos <= end);
        if (r == 0) {
            REQUIRE(pos == end);
            break;
        }
        REQUIRE(pos > before);
        if (r == 1) {
            REQUIRE(kv.key >= buf && kv.key_len >= 1 && kv.key_len <= HB_FIELD_NAME_MAX);
            REQUIRE(kv.key + kv.key_len < end && kv.key[kv.key_len] == '=');
            REQUIRE(kv.val == kv.key + kv.key_len + 1 && kv.val + kv.val_len <= end);
            REQUIRE(kv.val + kv.val_len == pos);
        } else {
            REQUIRE(r == -1);
        }
    }
}

/* hb_parse_u64 on the whole input: an accepted number prints back as the
 * input without its leading zeros. */
static void check_number(const char *buf, size_t len)
{
    char text[32];
    uint64_t v = 0;
    size_t skip = 0;

    if (hb_parse_u64(buf, len, UINT64_MAX, &v) != HB_OK) {
        return;
    }
    while (skip + 1 < len && buf[skip] == '0') {
        skip++;
    }
    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    REQUIRE(strlen(text) == len - skip && memcmp(text, buf + skip, len - skip) == 0);
}

static void check_format_caps(const hb_packet_t *p, size_t n, size_t cap)
{
    /* One byte of slack on each side, filled with a marker, shows both a
     * write past cap and a truncated packet left in the buffer. */
    char buf[HB_PACKET_MAX + 8];

    REQUIRE(cap + 2 <= sizeof(buf));
    memset(buf, 'Z', sizeof(buf));
    size_t got = hb_packet_format(p, buf + 1, cap);
    REQUIRE(buf[0] == 'Z' && buf[cap + 1] == 'Z');
    if (cap > n) {
        REQUIRE(got == n && buf[1 + n] == '\0');
    } else {
        REQUIRE(got == 0);
        REQUIRE(cap == 0 || buf[1] == '\0');
    }
}

/* ---- the reference parser, from docs/protocol.md -------------------- */

typedef struct {
    int ok;
    uint64_t ready, busy, port, seq, interval;
    int has_port, has_seq, has_int, has_state, has_addr, has_join;
    hb_state_e state;
    char addr[64];
    const char *join;
    size_t join_len;
} ref_t;

/* Digits only, 1..20 of them, and no larger than max (given as text):
 * leading zeros stripped, then shorter is smaller, equal length compares
 * as strings. Stores the value through strtoull, used only after the
 * checks, so the verdict does not depend on any arithmetic. */
static int ref_number(const char *s, size_t len, const char *max, uint64_t *out)
{
    char text[32];
    size_t i = 0, mlen = strlen(max);

    if (len == 0 || len > 20) {
        return 0;
    }
    for (size_t j = 0; j < len; j++) {
        if (s[j] < '0' || s[j] > '9') {
            return 0;
        }
    }
    while (i + 1 < len && s[i] == '0') {
        i++;
    }
    if (len - i > mlen || (len - i == mlen && memcmp(s + i, max, mlen) > 0)) {
        return 0;
    }
    memcpy(text, s + i, len - i);
    text[len - i] = '\0';
    *out = strtoull(text, NULL, 10);
    return 1;
}

static int ref_is(const char *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

static void ref_parse(const char *buf, size_t len, ref_t *r)
{
    int have_v = 0, have_ready = 0, have_busy = 0;
    uint64_t v = 0;
    size_t i = 0;

    memset(r, 0, sizeof(*r));
    r->state = HB_STATE_UP;
    if (len == 0 || len > 1400) {
        return;
    }
    while (i < len) {
        size_t start = i, eq = 0, end;
        int has_eq = 0;

        while (i < len && buf[i] != '&') {
            if (buf[i] == '=' && !has_eq) {
                has_eq = 1;
                eq = i;
            }
            i++;
        }
        end = i;
        i++; /* past the '&' (or the end) */
        if (end == start) {
            continue; /* empty pair */
        }
        if (!has_eq || eq == start || eq - start > 32) {
            return;
        }
        for (size_t j = start; j < eq; j++) {
            char c = buf[j];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-')) {
                return;
            }
        }
        for (size_t j = eq + 1; j < end; j++) {
            unsigned char c = (unsigned char)buf[j];
            if (c < 0x21 || c > 0x7e) {
                return;
            }
        }
        const char *k = buf + start, *val = buf + eq + 1;
        size_t klen = eq - start, vlen = end - eq - 1;
        if (ref_is(k, klen, "v")) {
            if (have_v++ || !ref_number(val, vlen, "18446744073709551615", &v)) {
                return;
            }
        } else if (ref_is(k, klen, "ready")) {
            if (have_ready++ || !ref_number(val, vlen, "2147483647", &r->ready)) {
                return;
            }
        } else if (ref_is(k, klen, "busy")) {
            if (have_busy++ || !ref_number(val, vlen, "2147483647", &r->busy)) {
                return;
            }
        } else if (ref_is(k, klen, "port")) {
            if (r->has_port++ || !ref_number(val, vlen, "65535", &r->port) || r->port == 0) {
                return;
            }
        } else if (ref_is(k, klen, "seq")) {
            if (r->has_seq++ || !ref_number(val, vlen, "18446744073709551615", &r->seq)) {
                return;
            }
        } else if (ref_is(k, klen, "int")) {
            if (r->has_int++ || !ref_number(val, vlen, "3600000", &r->interval) ||
                r->interval == 0) {
                return;
            }
        } else if (ref_is(k, klen, "addr")) {
            /* An IPv4 or IPv6 literal as inet_pton reads it; no brackets. */
            unsigned char bin[16];
            if (r->has_addr++ || vlen == 0 || vlen >= 46) {
                return;
            }
            memcpy(r->addr, val, vlen);
            r->addr[vlen] = '\0';
            if (inet_pton(AF_INET, r->addr, bin) != 1 && inet_pton(AF_INET6, r->addr, bin) != 1) {
                return;
            }
        } else if (ref_is(k, klen, "join")) {
            /* The balancers announced: ref_join.h has the rules. Two
             * names of one hash are one balancer announced twice. */
            ref_join_t rj;
            if (r->has_join++ || !ref_join_parse(val, vlen, &rj) || ref_join_collides(&rj)) {
                return;
            }
            r->join = val;
            r->join_len = vlen;
        } else if (ref_is(k, klen, "state")) {
            if (r->has_state++) {
                return;
            }
            if (ref_is(val, vlen, "up")) {
                r->state = HB_STATE_UP;
            } else if (ref_is(val, vlen, "drain")) {
                r->state = HB_STATE_DRAIN;
            } else if (ref_is(val, vlen, "stopping")) {
                r->state = HB_STATE_STOPPING;
            } else {
                return;
            }
        }
    }
    r->ok = have_v && have_ready && have_busy && v == 1;
}

static void check_against_reference(const char *buf, size_t len, hb_status_e st,
                                    const hb_packet_t *p)
{
    ref_t r;

    ref_parse(buf, len, &r);
    REQUIRE((st == HB_OK) == (r.ok != 0));
    if (!r.ok) {
        return;
    }
    REQUIRE(p->ready == r.ready && p->busy == r.busy && p->state == r.state);
    REQUIRE(!!(p->flags & HB_HAS_PORT) == r.has_port);
    REQUIRE(!!(p->flags & HB_HAS_SEQ) == r.has_seq);
    REQUIRE(!!(p->flags & HB_HAS_INTERVAL) == r.has_int);
    REQUIRE(!!(p->flags & HB_HAS_STATE) == r.has_state);
    REQUIRE(!!(p->flags & HB_HAS_ADDR) == r.has_addr);
    REQUIRE(!r.has_addr || strcmp(p->addr, r.addr) == 0);
    REQUIRE(!!(p->flags & HB_HAS_JOIN) == r.has_join);
    if (r.has_join) {
        REQUIRE(p->join_text == r.join && p->join_len == r.join_len);
        REQUIRE(ref_join_agrees(r.join, r.join_len, 0, &p->join));
    }
    REQUIRE(!r.has_port || p->port == r.port);
    REQUIRE(!r.has_seq || p->seq == r.seq);
    REQUIRE(!r.has_int || p->interval_ms == r.interval);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    hb_packet_t a, b;
    char out[HB_PACKET_MAX + 1], out2[HB_PACKET_MAX + 1];
    size_t n, n2;
    hb_status_e st;

    check_query_walk(buf, size);
    check_number(buf, size);

    st = hb_packet_parse(buf, size, &a);
    REQUIRE(hb_status_str(st) != NULL);
    check_against_reference(buf, size, st, &a);
    if (st != HB_OK) {
        return 0;
    }

    /* Accepted: within the size limit, and printable ASCII only. */
    REQUIRE(size >= 1 && size <= HB_PACKET_MAX);
    for (size_t i = 0; i < size; i++) {
        REQUIRE(data[i] >= 0x21 && data[i] <= 0x7e);
    }
    check_ranges(&a);

    n = hb_packet_format(&a, out, sizeof(out));
    REQUIRE(n > 0 && n < sizeof(out) && n <= HB_PACKET_MAX && strlen(out) == n);
    st = hb_packet_parse(out, n, &b);
    REQUIRE(st == HB_OK);
    check_ranges(&b);
    check_same(&a, &b);

    n2 = hb_packet_format(&b, out2, sizeof(out2));
    REQUIRE(n2 == n && memcmp(out, out2, n) == 0);

    /* Exactly enough room, one byte short (no room for the NUL), and a cap
     * chosen by the input. */
    check_format_caps(&a, n, n + 1);
    check_format_caps(&a, n, n);
    check_format_caps(&a, n, data[0] % (n + 2));
    return 0;
}
