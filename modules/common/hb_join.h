/*
 * hb_join.h: the balancer announcement an origin puts in its heartbeats
 * (HeartbeatBalancer), "join=shop,api:https:8443": the balancers it serves
 * on the proxies, each with the scheme and port to reach it by.
 * httpd-independent: unit tests and the fuzz target link it directly.
 *
 * A proxy never takes a host from it: a member that joins is always the
 * address the signed heartbeat came from. So the announcement carries only
 * names, schemes and ports, and the table keeps only a hash of each name
 * (HB_JOIN_MAX of them fit in an entry of fixed size).
 */
#ifndef HB_JOIN_H
#define HB_JOIN_H

#include <stddef.h>
#include <stdint.h>

/* Balancers one origin may announce. */
#define HB_JOIN_MAX 4

/* Longest balancer name (without "balancer://"); mod_proxy allows more,
 * but a heartbeat must stay one unfragmented datagram. */
#define HB_JOIN_NAME_MAX 64

/* Longest announcement text: HB_JOIN_MAX times name:scheme:port and commas. */
#define HB_JOIN_TEXT_MAX (HB_JOIN_MAX * (HB_JOIN_NAME_MAX + 13))

/* The schemes a member may be reached by: mod_proxy's backends that speak
 * to one host and port. */
typedef enum {
    HB_SCHEME_NONE = 0,
    HB_SCHEME_HTTP,
    HB_SCHEME_HTTPS,
    HB_SCHEME_H2C,
    HB_SCHEME_H2,
    HB_SCHEME_AJP,
    HB_SCHEME_FCGI,
    HB_SCHEME_SCGI,
    HB_SCHEME_UWSGI,
    HB_SCHEME_WS,
    HB_SCHEME_WSS,
    HB_SCHEME_COUNT
} hb_scheme_e;

typedef struct {
    uint32_t name_hash; /* hb_join_hash of the balancer's name; never 0 */
    uint16_t port;      /* 0: the port the heartbeat names (port=) */
    uint8_t scheme;     /* hb_scheme_e */
    uint8_t pad;
} hb_join_t;

typedef struct {
    uint32_t n; /* 0..HB_JOIN_MAX */
    hb_join_t j[HB_JOIN_MAX];
} hb_join_set_t;

/* Case-insensitive hash of a balancer name (without "balancer://"), never
 * 0. mod_proxy compares balancer names without regard to case. */
uint32_t hb_join_hash(const char *name, size_t len);

/* "http" -> HB_SCHEME_HTTP, ...; HB_SCHEME_NONE if unknown. */
hb_scheme_e hb_scheme_parse(const char *s, size_t len);
const char *hb_scheme_str(hb_scheme_e s);

/* A name is 1..HB_JOIN_NAME_MAX bytes of [A-Za-z0-9_.-]. */
int hb_join_name_ok(const char *name, size_t len);

/*
 * Parse "name[:scheme[:port]][,...]" (the scheme defaults to http, the port
 * to 0). Returns 0 with *out filled, or -1 if anything is wrong: an empty
 * item, a bad name, an unknown scheme, a port outside 1..65535, more than
 * HB_JOIN_MAX items, the same name twice. All or nothing.
 */
int hb_join_parse(const char *s, size_t len, hb_join_set_t *out);

/* 1 if set announces the balancer whose name hash is h; *j then says how. */
int hb_join_find(const hb_join_set_t *set, uint32_t h, hb_join_t *j);

/* 1 if both announce the same, in the same order. */
int hb_join_equal(const hb_join_set_t *a, const hb_join_set_t *b);

#endif
