/*
 * hb_packet.c: strict parser and formatter for the heartbeat wire format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <string.h>

#include "hb_packet.h"

/* 2^64 - 1 has 20 digits; anything longer cannot fit, and capping the
 * length keeps the work per field bounded whatever a sender throws at us. */
#define HB_U64_DIGITS_MAX 20

/* Byte classes for the query parser, one table lookup per byte. */
enum { C_KEY = 1, C_VAL = 2, C_AMP = 4, C_EQ = 8 };

#define C_KV (C_KEY | C_VAL)
/* Printable ASCII 0x21..0x7e may appear in values, '&' only separates,
 * keys are [A-Za-z0-9_.-]. Ranges in byte order, none overlapping. */
static const unsigned char byte_class[256] = {
    [0x21 ... 0x25] = C_VAL,
    ['&'] = C_AMP,
    [0x27 ... 0x2c] = C_VAL,
    ['-'] = C_KV,
    ['.'] = C_KV,
    ['/'] = C_VAL,
    ['0' ... '9'] = C_KV,
    [0x3a ... 0x3c] = C_VAL,
    ['='] = C_EQ | C_VAL,
    [0x3e ... 0x40] = C_VAL,
    ['A' ... 'Z'] = C_KV,
    [0x5b ... 0x5e] = C_VAL,
    ['_'] = C_KV,
    ['`'] = C_VAL,
    ['a' ... 'z'] = C_KV,
    [0x7b ... 0x7e] = C_VAL,
};

int hb_query_next(const char **pos, const char *end, hb_kv_t *kv)
{
    const unsigned char *p = (const unsigned char *)*pos;
    const unsigned char *e = (const unsigned char *)end;
    const unsigned char *pair, *eq;
    unsigned bad = 0;

    while (p < e && *p == '&') {
        p++;
    }
    if (p >= e) {
        *pos = end;
        return 0;
    }
    /* One pass over the pair, checking each byte as it goes: this runs for
     * every field of every packet. Keep going after a bad byte, to the end
     * of the pair, so that *pos always advances past it. */
    pair = p;
    while (p < e && !(byte_class[*p] & (C_AMP | C_EQ))) {
        bad |= ~byte_class[*p] & C_KEY;
        p++;
    }
    eq = p;
    if (p < e && *p == '=') {
        for (p++; p < e && !(byte_class[*p] & C_AMP); p++) {
            bad |= ~byte_class[*p] & C_VAL;
        }
    } else {
        bad = 1; /* no '=' */
    }
    *pos = (const char *)p;

    if (bad || eq == pair || (size_t)(eq - pair) > HB_FIELD_NAME_MAX) {
        return -1;
    }
    kv->key = (const char *)pair;
    kv->key_len = (size_t)(eq - pair);
    kv->val = (const char *)eq + 1;
    kv->val_len = (size_t)(p - (eq + 1));
    return 1;
}

hb_status_e hb_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    int overflow = 0;

    if (s == NULL || len == 0) {
        return HB_E_NUMBER;
    }
    /* A non-digit anywhere is a syntax error even in a number too long or
     * too big, so the range is judged only after the whole field. */
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)((unsigned char)s[i] - '0');
        if (d > 9) {
            return HB_E_NUMBER;
        }
        overflow |= __builtin_mul_overflow(v, 10, &v);
        overflow |= __builtin_add_overflow(v, d, &v);
    }
    /* Well-formed but too long: too big for any field, so a range error. */
    if (overflow || len > HB_U64_DIGITS_MAX || v > max) {
        return HB_E_RANGE;
    }
    *out = v;
    return HB_OK;
}

static int key_is(const hb_kv_t *kv, const char *name, size_t n)
{
    return kv->key_len == n && memcmp(kv->key, name, n) == 0;
}

enum {
    F_V = 0x01,
    F_READY = 0x02,
    F_BUSY = 0x04,
    F_PORT = 0x08,
    F_SEQ = 0x10,
    F_INT = 0x20,
    F_STATE = 0x40,
    F_ADDR = 0x80,
    F_JOIN = 0x100
};

/* An IPv4 or IPv6 literal (no brackets, no scope), copied NUL-terminated. */
static hb_status_e parse_addr(const char *s, size_t len, char out[HB_ADDR_TEXT_MAX])
{
    unsigned char bin[16];

    if (len == 0 || len >= HB_ADDR_TEXT_MAX) {
        return HB_E_SYNTAX;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    if (inet_pton(AF_INET, out, bin) != 1 && inet_pton(AF_INET6, out, bin) != 1) {
        return HB_E_SYNTAX;
    }
    return HB_OK;
}

hb_status_e hb_packet_parse(const char *buf, size_t len, hb_packet_t *pkt)
{
    const char *pos = buf, *end;
    unsigned int seen = 0;
    uint64_t version = 0;
    hb_kv_t kv;
    int r;

    if (len == 0 || buf == NULL) {
        return HB_E_EMPTY;
    }
    if (len > HB_PACKET_MAX) {
        return HB_E_TOOLONG;
    }
    end = buf + len;
    memset(pkt, 0, sizeof(*pkt));
    pkt->state = HB_STATE_UP;

    while ((r = hb_query_next(&pos, end, &kv)) != 0) {
        unsigned int bit;
        uint64_t v;
        hb_status_e st;

        if (r < 0) {
            return HB_E_SYNTAX;
        }
        /* By length first: one or two comparisons per field. */
        switch (kv.key_len) {
        case 1:
            bit = kv.key[0] == 'v' ? F_V : 0;
            break;
        case 3:
            bit = key_is(&kv, "seq", 3) ? F_SEQ : key_is(&kv, "int", 3) ? F_INT : 0;
            break;
        case 4:
            bit = key_is(&kv, "busy", 4)   ? F_BUSY
                  : key_is(&kv, "port", 4) ? F_PORT
                  : key_is(&kv, "addr", 4) ? F_ADDR
                  : key_is(&kv, "join", 4) ? F_JOIN
                                           : 0;
            break;
        case 5:
            bit = key_is(&kv, "ready", 5) ? F_READY : key_is(&kv, "state", 5) ? F_STATE : 0;
            break;
        default:
            bit = 0;
            break;
        }
        if (!bit) {
            /* Unknown keys let future senders add fields without breaking us. */
            continue;
        }
        /* Two values for one field means we cannot know which the sender meant. */
        if (seen & bit) {
            return HB_E_DUPLICATE;
        }
        seen |= bit;

        switch (bit) {
        case F_V:
            st = hb_parse_u64(kv.val, kv.val_len, UINT64_MAX, &version);
            break;
        case F_READY:
            st = hb_parse_u64(kv.val, kv.val_len, HB_COUNT_MAX, &v);
            pkt->ready = (uint32_t)v;
            break;
        case F_BUSY:
            st = hb_parse_u64(kv.val, kv.val_len, HB_COUNT_MAX, &v);
            pkt->busy = (uint32_t)v;
            break;
        case F_PORT:
            st = hb_parse_u64(kv.val, kv.val_len, 65535, &v);
            if (st == HB_OK && v == 0) {
                st = HB_E_RANGE;
            }
            pkt->port = (uint16_t)v;
            pkt->flags |= HB_HAS_PORT;
            break;
        case F_SEQ:
            st = hb_parse_u64(kv.val, kv.val_len, UINT64_MAX, &pkt->seq);
            pkt->flags |= HB_HAS_SEQ;
            break;
        case F_INT:
            st = hb_parse_u64(kv.val, kv.val_len, HB_INTERVAL_MAX_MS, &v);
            if (st == HB_OK && v < HB_INTERVAL_MIN_MS) {
                st = HB_E_RANGE;
            }
            pkt->interval_ms = (uint32_t)v;
            pkt->flags |= HB_HAS_INTERVAL;
            break;
        case F_ADDR:
            st = parse_addr(kv.val, kv.val_len, pkt->addr);
            pkt->flags |= HB_HAS_ADDR;
            break;
        case F_JOIN:
            st = hb_join_parse(kv.val, kv.val_len, &pkt->join) == 0 ? HB_OK : HB_E_SYNTAX;
            pkt->join_text = kv.val;
            pkt->join_len = kv.val_len;
            pkt->flags |= HB_HAS_JOIN;
            break;
        default: /* F_STATE */
            st = hb_state_parse(kv.val, kv.val_len, &pkt->state) == 0 ? HB_OK : HB_E_STATE;
            pkt->flags |= HB_HAS_STATE;
            break;
        }
        if (st != HB_OK) {
            return st;
        }
    }

    if ((seen & (F_V | F_READY | F_BUSY)) != (F_V | F_READY | F_BUSY)) {
        return HB_E_MISSING;
    }
    if (version != 1) {
        return HB_E_VERSION;
    }
    pkt->version = 1;
    return HB_OK;
}

size_t hb_packet_format(const hb_packet_t *pkt, char *buf, size_t cap)
{
    size_t len;
    int n;

    if (buf == NULL || cap == 0) {
        return 0;
    }
    n = snprintf(buf, cap, "v=1&ready=%" PRIu32 "&busy=%" PRIu32, pkt->ready, pkt->busy);
    if (n < 0 || (size_t)n >= cap) {
        goto toosmall;
    }
    len = (size_t)n;
    if (pkt->flags & HB_HAS_PORT) {
        n = snprintf(buf + len, cap - len, "&port=%u", (unsigned)pkt->port);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    if (pkt->flags & HB_HAS_SEQ) {
        n = snprintf(buf + len, cap - len, "&seq=%" PRIu64, pkt->seq);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    if (pkt->flags & HB_HAS_INTERVAL) {
        n = snprintf(buf + len, cap - len, "&int=%" PRIu32, pkt->interval_ms);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    if (pkt->flags & HB_HAS_STATE) {
        hb_state_e dummy;
        const char *s = hb_state_str(pkt->state);
        /* Refuse what our own parser would reject rather than emit it. */
        if (hb_state_parse(s, strlen(s), &dummy) != 0) {
            goto toosmall;
        }
        n = snprintf(buf + len, cap - len, "&state=%s", s);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    if (pkt->flags & HB_HAS_JOIN) {
        hb_join_set_t check;
        if (!pkt->join_text || hb_join_parse(pkt->join_text, pkt->join_len, &check) != 0 ||
            pkt->join_len + 6 >= cap - len) {
            goto toosmall;
        }
        memcpy(buf + len, "&join=", 6);
        memcpy(buf + len + 6, pkt->join_text, pkt->join_len);
        len += 6 + pkt->join_len;
        buf[len] = '\0';
    }
    if (pkt->flags & HB_HAS_ADDR) {
        char check[HB_ADDR_TEXT_MAX];
        if (parse_addr(pkt->addr, strnlen(pkt->addr, HB_ADDR_TEXT_MAX), check) != HB_OK) {
            goto toosmall;
        }
        n = snprintf(buf + len, cap - len, "&addr=%s", pkt->addr);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    return len;

toosmall:
    /* Never leave a truncated packet behind that a careless caller might send. */
    buf[0] = '\0';
    return 0;
}

const char *hb_status_str(hb_status_e st)
{
    switch (st) {
    case HB_OK:
        return "ok";
    case HB_E_EMPTY:
        return "empty packet";
    case HB_E_TOOLONG:
        return "packet too long";
    case HB_E_SYNTAX:
        return "syntax error";
    case HB_E_NUMBER:
        return "malformed number";
    case HB_E_RANGE:
        return "number out of range";
    case HB_E_MISSING:
        return "required field missing";
    case HB_E_VERSION:
        return "unsupported version";
    case HB_E_DUPLICATE:
        return "duplicate field";
    case HB_E_STATE:
        return "unknown state";
    }
    return "unknown status";
}

const char *hb_state_str(hb_state_e st)
{
    switch (st) {
    case HB_STATE_UP:
        return "up";
    case HB_STATE_DRAIN:
        return "drain";
    case HB_STATE_STOPPING:
        return "stopping";
    }
    return "unknown";
}

int hb_state_parse(const char *s, size_t len, hb_state_e *out)
{
    static const struct {
        const char *name;
        hb_state_e st;
    } states[] = {{"up", HB_STATE_UP}, {"drain", HB_STATE_DRAIN}, {"stopping", HB_STATE_STOPPING}};

    if (s == NULL) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (strlen(states[i].name) == len && memcmp(states[i].name, s, len) == 0) {
            *out = states[i].st;
            return 0;
        }
    }
    return -1;
}
