/*
 * pick_bench: micro-benchmark of the balancer's per-request core, linked
 * against the same core library the modules use (libhbcore).
 *
 * What a pick by lbmethod=heartbeat costs, split into its parts:
 *   - lbhb_pick_most (and, for comparison, p2c and weighted) over n
 *     candidates: a linear scan, so the time per pick should grow linearly
 *     with n and the time per member stay flat;
 *   - hm_table_find: one lock-free lookup per member in the shared table,
 *     which should cost the same whatever the table holds (hash index);
 *   - the two together, as the balancer does them for every request.
 * And, for the monitor-ingest analysis, what applying one packet costs once
 * it is received: hb_packet_parse + hm_table_update (no receive system call),
 * and what the getpid() call inside the table's writer lock costs alone.
 *
 * Each figure is the median of several timed repetitions (the machine is
 * shared and noisy; the median resists a descheduled repetition). The
 * result is one JSON object on stdout, read by bench/run.py.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hb_packet.h"
#include "hm_table.h"
#include "lbhb_pick.h"

#define REPEATS 7
/* Member visits per timed repetition: enough to dwarf the clock reads,
 * small enough that the whole program runs in a few seconds. */
#define VISITS_PER_REPEAT 2000000u

static const unsigned int sizes[] = {4, 64, 1024};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* Keeps the compiler from dropping the work whose result nobody reads. */
static volatile int64_t sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64: deterministic inputs, so every run measures the same work. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_cands(lbhb_cand_t *c, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++) {
        c[i].usable = 1;
        c[i].ready = (uint32_t)(rng() % 100);
        c[i].started = rng() % 8;
    }
}

static unsigned int iters_for(unsigned int n)
{
    unsigned int it = VISITS_PER_REPEAT / n;
    return it < 5000 ? 5000 : it;
}

typedef enum { MODE_MOST, MODE_P2C, MODE_WEIGHTED } mode_e;

/* ns per pick over n candidates. The cursor and the random value change on
 * every call, as they do per request in the module. */
static double bench_pick(const lbhb_cand_t *c, unsigned int n, mode_e mode)
{
    double t[REPEATS];
    unsigned int iters = iters_for(n);

    for (unsigned int r = 0; r < REPEATS; r++) {
        int64_t acc = 0;
        double t0 = now_ns();
        for (unsigned int i = 0; i < iters; i++) {
            switch (mode) {
            case MODE_MOST:
                acc += lbhb_pick_most(c, n, i);
                break;
            case MODE_P2C:
                acc += lbhb_pick_p2c(c, n, lbhb_mix64(i));
                break;
            case MODE_WEIGHTED:
                acc += lbhb_pick_weighted(c, n, lbhb_mix64(i));
                break;
            }
        }
        t[r] = (now_ns() - t0) / iters;
        sink += acc;
    }
    return median(t, REPEATS);
}

/* A table of the given capacity holding n origins 10.x.y.z:8000+i. The
 * addresses only name entries in memory; nothing is sent anywhere. */
static hm_table_t *make_table(unsigned int capacity, unsigned int n, hm_addr_t *keys)
{
    size_t size = hm_table_size(capacity);
    void *mem = aligned_alloc(64, (size + 63) & ~(size_t)63);
    hm_table_t *t;
    hb_packet_t pkt;

    if (mem == NULL || (t = hm_table_create(mem, size, capacity)) == NULL) {
        fprintf(stderr, "pick_bench: cannot make a table of %u\n", capacity);
        exit(1);
    }
    memset(&pkt, 0, sizeof(pkt));
    pkt.version = 1;
    pkt.flags = HB_HAS_PORT;
    for (unsigned int i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        if (hm_addr_from_string(&keys[i], ip, (uint16_t)(8000 + i % 1000)) != 0) {
            exit(1);
        }
        pkt.ready = 10;
        pkt.port = keys[i].port;
        hm_table_update(t, &keys[i], &pkt, 1000000, INT64_MAX, HM_ENTRY_PORT_KNOWN);
    }
    return t;
}

/* ns per hm_table_find, looking up every key of the table in turn. */
static double bench_find(const hm_table_t *t, const hm_addr_t *keys, unsigned int n)
{
    double tm[REPEATS];
    unsigned int iters = VISITS_PER_REPEAT / 4;

    for (unsigned int r = 0; r < REPEATS; r++) {
        int64_t acc = 0;
        hm_entry_t e;
        double t0 = now_ns();
        for (unsigned int i = 0; i < iters; i++) {
            acc += hm_table_find(t, &keys[i % n], &e);
        }
        tm[r] = (now_ns() - t0) / iters;
        sink += acc;
    }
    return median(tm, REPEATS);
}

/* ns for what the balancer does per request with n members: one lookup
 * per member, then the choice among them. */
static double bench_full(const hm_table_t *t, const hm_addr_t *keys, unsigned int n, lbhb_cand_t *c)
{
    double tm[REPEATS];
    unsigned int iters = iters_for(n) / 4 + 1000;

    for (unsigned int r = 0; r < REPEATS; r++) {
        int64_t acc = 0;
        double t0 = now_ns();
        for (unsigned int i = 0; i < iters; i++) {
            for (unsigned int m = 0; m < n; m++) {
                hm_entry_t e;
                c[m].usable = hm_table_find(t, &keys[m], &e) >= 0;
                c[m].ready = e.ready;
                c[m].started = m & 3;
            }
            acc += lbhb_pick_most(c, n, i);
        }
        tm[r] = (now_ns() - t0) / iters;
        sink += acc;
    }
    return median(tm, REPEATS);
}

/* ns per packet for parse + table update, from `senders` distinct
 * senders in turn (10: always a hot entry; 10,000: cache misses). */
static double bench_apply(unsigned int senders)
{
    double tm[REPEATS];
    unsigned int capacity = senders + senders / 5 + 16;
    hm_addr_t *keys = calloc(senders, sizeof(*keys));
    hm_table_t *t = make_table(capacity, senders, keys);
    const unsigned int iters = 50000;
    char buf[160];
    int64_t now = 2000000;

    for (unsigned int r = 0; r < REPEATS; r++) {
        int64_t acc = 0;
        double t0 = now_ns();
        for (unsigned int i = 0; i < iters; i++) {
            hb_packet_t pkt;
            unsigned int s = i % senders;
            int len =
                snprintf(buf, sizeof(buf), "v=1&ready=%u&busy=2&port=%u&seq=%u&int=1000&state=up",
                         10 + i % 50, (unsigned int)keys[s].port, i);
            if (hb_packet_parse(buf, (size_t)len, &pkt) == HB_OK) {
                acc += hm_table_update(t, &keys[s], &pkt, now++, INT64_MAX, HM_ENTRY_PORT_KNOWN);
            }
        }
        tm[r] = (now_ns() - t0) / iters;
        sink += acc;
    }
    /* The snprintf that makes each packet is not part of the monitor's work:
     * time it alone and take it off. */
    {
        double f[REPEATS];
        for (unsigned int r = 0; r < REPEATS; r++) {
            int64_t acc = 0;
            double t0 = now_ns();
            for (unsigned int i = 0; i < iters; i++) {
                acc += snprintf(buf, sizeof(buf),
                                "v=1&ready=%u&busy=2&port=%u&seq=%u&int=1000&state=up", 10 + i % 50,
                                (unsigned int)keys[i % senders].port, i);
            }
            f[r] = (now_ns() - t0) / iters;
            sink += acc;
        }
        free(keys);
        free(t);
        return median(tm, REPEATS) - median(f, REPEATS);
    }
}

/* ns per getpid(): hm_table_update takes the writer lock with the caller's
 * pid, so every packet the monitor applies makes this system call; what it
 * costs on the machine at hand explains much of the apply figure. */
static double bench_getpid(void)
{
    double tm[REPEATS];
    const unsigned int iters = 50000;

    for (unsigned int r = 0; r < REPEATS; r++) {
        int64_t acc = 0;
        double t0 = now_ns();
        for (unsigned int i = 0; i < iters; i++) {
            acc += getpid();
        }
        tm[r] = (now_ns() - t0) / iters;
        sink += acc;
    }
    return median(tm, REPEATS);
}

int main(void)
{
    printf("{\n  \"pick\": [");
    for (unsigned int s = 0; s < NSIZES; s++) {
        unsigned int n = sizes[s];
        lbhb_cand_t *c = calloc(n, sizeof(*c));
        double most, p2c, weighted;

        fill_cands(c, n);
        most = bench_pick(c, n, MODE_MOST);
        p2c = bench_pick(c, n, MODE_P2C);
        weighted = bench_pick(c, n, MODE_WEIGHTED);
        printf("%s\n    {\"members\": %u, \"most_ns\": %.2f, \"most_ns_per_member\": %.3f, "
               "\"p2c_ns\": %.2f, \"weighted_ns\": %.2f}",
               s ? "," : "", n, most, most / n, p2c, weighted);
        free(c);
    }
    printf("\n  ],\n  \"table\": [");
    for (unsigned int s = 0; s < NSIZES; s++) {
        unsigned int n = sizes[s];
        /* Sized like HeartbeatMaxServers would be for n origins and then
         * some; lookups do not depend on the capacity. */
        unsigned int capacity = n * 2 < 16 ? 16 : n * 2;
        hm_addr_t *keys = calloc(n, sizeof(*keys));
        lbhb_cand_t *c = calloc(n, sizeof(*c));
        hm_table_t *t = make_table(capacity, n, keys);
        double find = bench_find(t, keys, n);
        double full = bench_full(t, keys, n, c);

        printf("%s\n    {\"members\": %u, \"find_ns\": %.2f, \"lookup_and_pick_ns\": %.2f, "
               "\"lookup_and_pick_ns_per_member\": %.3f}",
               s ? "," : "", n, find, full, full / n);
        free(keys);
        free(c);
        free(t);
    }
    printf("\n  ],\n  \"apply\": [");
    {
        static const unsigned int senders[] = {10, 10000};
        for (unsigned int s = 0; s < 2; s++) {
            printf("%s\n    {\"senders\": %u, \"parse_and_update_ns\": %.2f}", s ? "," : "",
                   senders[s], bench_apply(senders[s]));
        }
    }
    printf("\n  ],\n  \"getpid_ns\": %.2f\n}\n", bench_getpid());
    return sink == 42 ? 1 : 0;
}
