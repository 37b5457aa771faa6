/*
 * fuzz_join.c: libFuzzer target for the balancer announcement (join=,
 * HeartbeatBalancer; hb_join.h).
 *
 * The value of every join= a proxy receives goes through hb_join_parse(),
 * and what it accepts decides which balancers an origin joins. Beyond "does
 * not crash" (ASan/UBSan), this checks:
 *  - all or nothing: a refused text leaves an empty set;
 *  - an accepted set has 1..HB_JOIN_MAX items, each with a name hash that
 *    is not 0 (an entry's "no balancer"), no two the same, a known scheme,
 *    and one item per comma-separated piece of the text;
 *  - the verdict and every item agree with a second parser written from
 *    the rules (ref_join.h);
 *  - case does not matter: the text in lower case gives the same set;
 *  - hb_join_find finds each item as it is, hb_join_equal sees the set as
 *    equal to itself;
 *  - an accepted text survives the wire: a packet formatted with it
 *    (hb_packet_format) parses back (hb_packet_parse) to an equal set and
 *    the same text; a refused one is never formatted.
 * A violated property calls abort(), which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hb_join.h"
#include "hb_packet.h"
#include "ref_join.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_join: property failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Longer inputs are refused by length alone; up to FUZZ_RUN's max_len
 * (512), well past the limit, keeps that limit itself fuzzed. */
#define INPUT_MAX 512

static void check_wire(const char *text, size_t len, int accepted, const hb_join_set_t *set)
{
    char buf[HB_PACKET_MAX + 1];
    hb_packet_t p, q;
    size_t n;

    memset(&p, 0, sizeof(p));
    p.version = 1;
    p.ready = 1;
    p.state = HB_STATE_UP;
    p.flags = HB_HAS_STATE | HB_HAS_JOIN | HB_HAS_ADDR;
    p.join_text = text;
    p.join_len = len;
    memcpy(p.addr, "10.0.0.1", sizeof("10.0.0.1"));
    memset(buf, 'Z', sizeof(buf));
    n = hb_packet_format(&p, buf, sizeof(buf));
    if (!accepted) {
        /* Never sent: what the proxies would refuse. */
        REQUIRE(n == 0 && buf[0] == '\0');
        return;
    }
    REQUIRE(n > 0 && n <= HB_PACKET_MAX && buf[n] == '\0' && strlen(buf) == n);
    REQUIRE(hb_packet_parse(buf, n, &q) == HB_OK);
    REQUIRE(q.flags == p.flags);
    REQUIRE(hb_join_equal(&q.join, set) && hb_join_equal(set, &q.join));
    REQUIRE(q.join_len == len && memcmp(q.join_text, text, len) == 0);
    /* join= comes after state= and before addr=. */
    REQUIRE(q.join_text > strstr(buf, "&state=") && q.join_text < strstr(buf, "&addr="));
    REQUIRE(strcmp(q.addr, "10.0.0.1") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[INPUT_MAX], lower[INPUT_MAX];
    hb_join_set_t set, set2;
    size_t commas = 0;
    int r;

    if (size > INPUT_MAX) {
        return 0;
    }
    /* A copy the size of the input, so ASan sees any read past it. */
    memcpy(text, data, size);

    memset(&set, 0xa5, sizeof(set));
    r = hb_join_parse(text, size, &set);
    REQUIRE(r == 0 || r == -1);
    REQUIRE(ref_join_agrees(text, size, r, &set));
    check_wire(text, size, r == 0, &set);
    if (r != 0) {
        REQUIRE(set.n == 0);
        for (unsigned int i = 0; i < HB_JOIN_MAX; i++) {
            REQUIRE(set.j[i].name_hash == 0 && set.j[i].port == 0 && set.j[i].scheme == 0);
        }
        return 0;
    }

    REQUIRE(size >= 1 && size <= HB_JOIN_TEXT_MAX);
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        REQUIRE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-' || c == ':' || c == ',');
        commas += c == ',';
    }
    REQUIRE(set.n >= 1 && set.n <= HB_JOIN_MAX && set.n == commas + 1);
    for (unsigned int i = 0; i < set.n; i++) {
        hb_join_t j;
        REQUIRE(set.j[i].name_hash != 0);
        REQUIRE(set.j[i].scheme > HB_SCHEME_NONE && set.j[i].scheme < HB_SCHEME_COUNT);
        REQUIRE(strcmp(hb_scheme_str((hb_scheme_e)set.j[i].scheme), "?") != 0);
        REQUIRE(set.j[i].pad == 0);
        for (unsigned int k = i + 1; k < set.n; k++) {
            REQUIRE(set.j[i].name_hash != set.j[k].name_hash);
        }
        memset(&j, 0, sizeof(j));
        REQUIRE(hb_join_find(&set, set.j[i].name_hash, &j) == 1);
        REQUIRE(j.name_hash == set.j[i].name_hash && j.scheme == set.j[i].scheme &&
                j.port == set.j[i].port);
    }
    for (unsigned int i = set.n; i < HB_JOIN_MAX; i++) {
        REQUIRE(set.j[i].name_hash == 0);
        REQUIRE(hb_join_find(&set, set.j[i].name_hash, NULL) == 0);
    }
    REQUIRE(hb_join_equal(&set, &set));

    /* Case does not matter, in names or schemes. */
    for (size_t i = 0; i < size; i++) {
        lower[i] = text[i] >= 'A' && text[i] <= 'Z' ? (char)(text[i] - 'A' + 'a') : text[i];
    }
    REQUIRE(hb_join_parse(lower, size, &set2) == 0);
    REQUIRE(hb_join_equal(&set, &set2));
    return 0;
}
