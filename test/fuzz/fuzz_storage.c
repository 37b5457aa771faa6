/*
 * fuzz_storage.c: libFuzzer target for the HeartbeatStorage file parser.
 *
 * mod_lbmethod_heartbeat parses the file in every proxy process, and the
 * file may come from the stock monitor, an older build, a full disk or a
 * hand edit, so hm_storage_parse() must take any bytes. For every entry it
 * returns, this checks what the balancer relies on: a NUL-terminated
 * canonical address that turns back into the same key, counts within
 * HB_COUNT_MAX, a valid state and interval, and a time no later than the
 * file's. The statistics must add up, and an entry written back with
 * hm_storage_format_line() must parse to the same entry.
 *
 * The file's time (written_at) is an input of the parser too; it is chosen
 * from the input's length so that the extremes are tried without a format
 * of our own in front of the file's text (the seeds stay plain files).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_tables.h"

#include "hm_storage.h"

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_storage: property failed at line %d: %s\n", __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static apr_pool_t *root;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&root, NULL) != APR_SUCCESS) {
        abort();
    }
    return 0;
}

/* A realistic "now" (2026) and the extremes of the int64 clock. */
static const int64_t times[] = {INT64_C(1796003978158256), 0, -1, INT64_MAX, INT64_MIN,
                                INT64_C(1000000)};

static void check_entry(const hm_entry_t *e, int64_t written_at)
{
    hm_addr_t k;

    REQUIRE(memchr(e->ip, '\0', sizeof(e->ip)) != NULL);
    REQUIRE(e->ip[0] != '\0');
    REQUIRE(e->key.family == 4 || e->key.family == 6);
    REQUIRE(e->key.port >= 1);
    /* The text must name the key: the status page shows the text, the
     * balancer matches the key. */
    REQUIRE(hm_addr_from_string(&k, e->ip, e->key.port) == 0);
    REQUIRE(hm_addr_equal(&k, &e->key));
    REQUIRE(e->ready <= HB_COUNT_MAX);
    REQUIRE(e->busy <= HB_COUNT_MAX);
    REQUIRE(e->state == HB_STATE_UP || e->state == HB_STATE_DRAIN || e->state == HB_STATE_STOPPING);
    REQUIRE(e->interval_ms == 0 ||
            (e->interval_ms >= HB_INTERVAL_MIN_MS && e->interval_ms <= HB_INTERVAL_MAX_MS));
    REQUIRE((e->flags & ~(uint32_t)HM_ENTRY_PORT_KNOWN) == 0);
    /* A file cannot vouch for data newer than itself. */
    REQUIRE(e->seen <= written_at);
    REQUIRE(e->first_seen == e->seen);
}

/* Write the entry back as a line, parse that line, compare. */
static void check_round_trip(const hm_entry_t *e, int64_t written_at, apr_array_header_t *arr)
{
    char line[HM_STORAGE_LINE_MAX + 1];
    hm_storage_stats_t st;
    const hm_entry_t *r;
    size_t n;

    n = hm_storage_format_line(e, written_at, line, sizeof(line));
    REQUIRE(n > 0 && n <= HM_STORAGE_LINE_MAX && line[n - 1] == '\n' && strlen(line) == n);
    arr->nelts = 0;
    hm_storage_parse(line, n, written_at, arr, &st);
    REQUIRE(st.lines == 1 && st.entries == 1 && st.bad == 0 && arr->nelts == 1);
    r = &APR_ARRAY_IDX(arr, 0, hm_entry_t);
    REQUIRE(strcmp(r->ip, e->ip) == 0);
    REQUIRE(r->key.family == e->key.family);
    REQUIRE(memcmp(r->key.addr, e->key.addr, sizeof(e->key.addr)) == 0);
    REQUIRE(r->ready == e->ready && r->busy == e->busy && r->state == e->state);
    REQUIRE(r->interval_ms == e->interval_ms && r->seq == e->seq);
    REQUIRE(r->flags == e->flags);
    /* The writer states a port only when the sender named one (stock
     * writes 80 otherwise), so the key's port survives only then. */
    if (e->flags & HM_ENTRY_PORT_KNOWN) {
        REQUIRE(r->key.port == e->key.port);
    } else {
        REQUIRE(r->key.port == HM_DEFAULT_PORT);
    }
    /* seen= is written only for times from the epoch on; otherwise the
     * reader falls back to lastseen, which is whole seconds. */
    if (e->seen >= 0) {
        REQUIRE(r->seen == e->seen);
    } else {
        REQUIRE(r->seen >= e->seen);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    int64_t written_at = times[size % (sizeof(times) / sizeof(times[0]))];
    hm_storage_stats_t st, st2;
    apr_array_header_t *arr, *scratch;
    apr_pool_t *p;
    unsigned int nlines = 0;

    /* One pool, cleared per input: creating and destroying a pool per input
     * costs more than the parse itself. */
    apr_pool_clear(root);
    p = root;
    arr = apr_array_make(p, 4, sizeof(hm_entry_t));
    scratch = apr_array_make(p, 1, sizeof(hm_entry_t));

    hm_storage_parse(buf, size, written_at, arr, &st);

    for (size_t i = 0; i < size; i++) {
        nlines += data[i] == '\n';
    }
    if (size > 0 && data[size - 1] != '\n') {
        nlines++;
    }
    REQUIRE(st.lines <= nlines);
    REQUIRE(st.entries + st.bad == st.lines);
    REQUIRE((unsigned int)arr->nelts == st.entries);
    REQUIRE((st.bad == 0) == (st.first_bad_line == 0));
    REQUIRE(st.first_bad_line <= nlines);

    /* Counting only (out == NULL), as a syntax check would, gives the same
     * statistics. */
    hm_storage_parse(buf, size, written_at, NULL, &st2);
    REQUIRE(memcmp(&st, &st2, sizeof(st)) == 0);

    for (int i = 0; i < arr->nelts; i++) {
        const hm_entry_t *e = &APR_ARRAY_IDX(arr, i, hm_entry_t);
        check_entry(e, written_at);
        check_round_trip(e, written_at, scratch);
    }
    return 0;
}
