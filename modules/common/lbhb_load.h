/*
 * lbhb_load.h: per-response load reports (HeartbeatResponseHeader).
 *
 * With several proxies in front of the same origins, each proxy corrects
 * an origin's heartbeat only for the requests it sent itself; the others'
 * traffic stays invisible until the next heartbeat. The origin is the one
 * party that knows its total load, so it can also report it on every
 * response, in a header that the proxy reads and removes:
 *
 *     Heartbeat-Load: ready=12&busy=20&port=8080
 *
 * or, with HeartbeatSecret, signed as a heartbeat is, naming the address
 * the proxy reached it at:
 *
 *     Heartbeat-Load: ready=12&busy=20&port=8080&addr=10.0.0.5&ts=..&kid=..&sig=..
 *
 * Heartbeats stay the source of truth for liveness; a report only makes a
 * live member's ready count fresher. This file is the format, and the
 * report slot a proxy shares between its processes.
 */
#ifndef LBHB_LOAD_H
#define LBHB_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "hb_auth.h"
#include "hb_packet.h"

#define LBHB_LOAD_HEADER "Heartbeat-Load"
/* Longest header value accepted (a signed one is about 190 bytes). */
#define LBHB_LOAD_MAX 512

typedef struct {
    uint32_t ready;
    uint32_t busy;
    uint16_t port;               /* 0: not given */
    char addr[HB_ADDR_TEXT_MAX]; /* "" unless given */
} lbhb_load_t;

typedef enum {
    LBHB_LOAD_OK = 0,
    LBHB_LOAD_MALFORMED, /* syntax, a count out of range, a field twice, too long */
    LBHB_LOAD_UNSIGNED,  /* keys configured, and the report is not signed */
    LBHB_LOAD_BADSIG,    /* signed, and not by a configured key, or out of the window */
    LBHB_LOAD_IDENTITY   /* signed for another address or port than the member's */
} lbhb_load_e;

/*
 * Format a report into buf (cap bytes): unsigned unless key; a signed one
 * names addr (the address the proxy reached this origin at) and is signed
 * at now_ms. Returns the length, 0 if cap is too small.
 */
size_t lbhb_load_format(char *buf, size_t cap, uint32_t ready, uint32_t busy, uint16_t port,
                        const char *addr, const hb_secret_t *key, int64_t now_ms);

/*
 * Read a report (len bytes, no NUL needed). With nkeys > 0 it must be
 * signed by one of keys within window_ms of now_ms; without keys a
 * signature is not checked (nothing to check it with) and the fields
 * before it are read. Unknown fields are ignored. Identity is the caller's
 * to check (lbhb_load_identity).
 */
lbhb_load_e lbhb_load_parse(const char *v, size_t len, const hb_secret_t *keys, unsigned int nkeys,
                            int64_t now_ms, int64_t window_ms, lbhb_load_t *out);

/*
 * A report's shared slot, one per member: written by whichever process got
 * the response, read by every process when it picks. A seqlock: a writer
 * that finds another writing skips (its report is no fresher), a reader
 * that finds the slot changing uses the heartbeat instead.
 */
typedef struct {
    uint32_t seq; /* odd while written */
    uint32_t ready;
    uint32_t busy;
    uint32_t pad;
    int64_t at;       /* when the proxy got the report (usec), 0 = never */
    uint64_t used;    /* reports taken */
    uint64_t ignored; /* reports refused (lbhb_load_e other than OK, or no entry) */
} lbhb_load_slot_t;

void lbhb_load_put(lbhb_load_slot_t *s, uint32_t ready, uint32_t busy, int64_t at);

/* 1 and the report if the slot holds one, 0 if none or it is being
 * written. */
int lbhb_load_get(const lbhb_load_slot_t *s, uint32_t *ready, uint32_t *busy, int64_t *at);

#endif
