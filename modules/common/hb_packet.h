/*
 * hb_packet.h: the heartbeat wire format, "v=1&ready=N&busy=M" plus our
 * optional fields. httpd-independent: unit tests link it directly.
 *
 * The stock receiver fed every value through atoi(); we parse strictly so
 * that a hostile or broken sender can never plant a negative, wrapped or
 * partial number in the table.
 */
#ifndef HB_PACKET_H
#define HB_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "hb_join.h"

/* Largest datagram/body we accept or produce. Stays under a 1500-byte MTU
 * so a heartbeat is never fragmented. */
#define HB_PACKET_MAX 1400

/* Counts are stored as int by the stock shared-memory layout, so anything
 * above INT_MAX could not be represented there. */
#define HB_COUNT_MAX 2147483647u

/* Longest key we accept; unknown keys are skipped but must still look sane. */
#define HB_FIELD_NAME_MAX 32

/* Sender interval limits for the int= field, in milliseconds. */
#define HB_INTERVAL_MIN_MS 1u
#define HB_INTERVAL_MAX_MS 3600000u

typedef enum { HB_STATE_UP = 0, HB_STATE_DRAIN = 1, HB_STATE_STOPPING = 2 } hb_state_e;

typedef enum {
    HB_OK = 0,
    HB_E_EMPTY,     /* zero bytes */
    HB_E_TOOLONG,   /* more than HB_PACKET_MAX bytes */
    HB_E_SYNTAX,    /* bad key, missing '=', control/non-ASCII byte, NUL */
    HB_E_NUMBER,    /* a numeric field is not plain decimal digits */
    HB_E_RANGE,     /* a numeric field is outside its allowed range */
    HB_E_MISSING,   /* v, ready or busy is absent */
    HB_E_VERSION,   /* v is not 1 */
    HB_E_DUPLICATE, /* a known key appears twice */
    HB_E_STATE      /* state= is not up, drain or stopping */
} hb_status_e;

/* Which optional fields a packet carried. */
#define HB_HAS_PORT     0x01u
#define HB_HAS_SEQ      0x02u
#define HB_HAS_INTERVAL 0x04u
#define HB_HAS_STATE    0x08u
#define HB_HAS_ADDR     0x10u
#define HB_HAS_JOIN     0x20u

/* Room for the text of an IPv4 or IPv6 address and its NUL
 * (INET6_ADDRSTRLEN). */
#define HB_ADDR_TEXT_MAX 46

typedef struct {
    uint32_t version;     /* always 1 after a successful parse */
    uint32_t ready;       /* 0..HB_COUNT_MAX */
    uint32_t busy;        /* 0..HB_COUNT_MAX */
    uint16_t port;        /* 1..65535 when HB_HAS_PORT */
    uint64_t seq;         /* when HB_HAS_SEQ */
    uint32_t interval_ms; /* HB_INTERVAL_MIN_MS..HB_INTERVAL_MAX_MS when HB_HAS_INTERVAL */
    hb_state_e state;     /* HB_STATE_UP unless HB_HAS_STATE says otherwise */
    unsigned int flags;   /* HB_HAS_* */
    /* addr=: the address the sender sends from, as it names itself inside
     * a signed packet (an IP literal, NUL-terminated) when HB_HAS_ADDR. */
    char addr[HB_ADDR_TEXT_MAX];
    /* join=: the balancers the origin announces (HeartbeatBalancer), when
     * HB_HAS_JOIN. To format, join_text is written out as it is (checked
     * first); a parse points it into the packet and fills join. */
    hb_join_set_t join;
    const char *join_text;
    size_t join_len;
} hb_packet_t;

/* One key=value pair as found by hb_query_next(); not NUL-terminated. */
typedef struct {
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
} hb_kv_t;

/*
 * Step through a query string "k=v&k=v". Empty pairs ("&&", a leading or
 * trailing '&') are skipped, since the stock storage file starts its query
 * with '&'. Returns 1 with *kv filled, 0 at the end, or -1 on a syntax error
 * (key empty, longer than HB_FIELD_NAME_MAX or not [A-Za-z0-9_.-]; no '='; a value
 * byte outside printable ASCII 0x21..0x7e). *pos advances past the pair.
 */
int hb_query_next(const char **pos, const char *end, hb_kv_t *kv);

/* Strict decimal: digits only, no sign or space, at least one digit, no
 * more than 20 digits, value <= max. Returns HB_OK, HB_E_NUMBER or HB_E_RANGE. */
hb_status_e hb_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Parse a whole packet. *pkt is fully written on HB_OK and unspecified otherwise. */
hb_status_e hb_packet_parse(const char *buf, size_t len, hb_packet_t *pkt);

/*
 * Write "v=1&ready=N&busy=M" followed by the optional fields named in
 * pkt->flags, in the order port, seq, int, state, join, addr. Returns the length
 * written (without the NUL it also writes), or 0 if cap is too small.
 */
size_t hb_packet_format(const hb_packet_t *pkt, char *buf, size_t cap);

const char *hb_status_str(hb_status_e st);
const char *hb_state_str(hb_state_e st);
/* "up", "drain", "stopping" -> state; returns -1 for anything else. */
int hb_state_parse(const char *s, size_t len, hb_state_e *out);

#endif
