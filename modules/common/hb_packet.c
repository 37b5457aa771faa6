/*
 * hb_packet.c: strict parser and formatter for the heartbeat wire format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hb_packet.h"

/* 2^64 - 1 has 20 digits; anything longer cannot fit, and capping the
 * length keeps the work per field bounded whatever a sender throws at us. */
#define HB_U64_DIGITS_MAX 20

static int key_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int hb_query_next(const char **pos, const char *end, hb_kv_t *kv)
{
    const char *p = *pos;
    const char *pair, *eq = NULL;

    while (p < end && *p == '&') {
        p++;
    }
    if (p >= end) {
        *pos = end;
        return 0;
    }
    pair = p;
    while (p < end && *p != '&') {
        if (*p == '=' && eq == NULL) {
            eq = p;
        }
        p++;
    }
    /* Advance even on error so a caller that wants to skip bad pairs can. */
    *pos = p;

    if (eq == NULL || eq == pair || (size_t)(eq - pair) > HB_KEY_MAX) {
        return -1;
    }
    for (const char *k = pair; k < eq; k++) {
        if (!key_byte_ok((unsigned char)*k)) {
            return -1;
        }
    }
    for (const char *v = eq + 1; v < p; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 0x21 || c > 0x7e) {
            return -1;
        }
    }
    kv->key = pair;
    kv->key_len = (size_t)(eq - pair);
    kv->val = eq + 1;
    kv->val_len = (size_t)(p - (eq + 1));
    return 1;
}

hb_status_e hb_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || len == 0) {
        return HB_E_NUMBER;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return HB_E_NUMBER;
        }
    }
    /* Well-formed but too long: too big for any field, so a range error. */
    if (len > HB_U64_DIGITS_MAX) {
        return HB_E_RANGE;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return HB_E_RANGE;
        }
        v = v * 10 + d;
    }
    if (v > max) {
        return HB_E_RANGE;
    }
    *out = v;
    return HB_OK;
}

static int key_is(const hb_kv_t *kv, const char *name)
{
    size_t n = strlen(name);
    return kv->key_len == n && memcmp(kv->key, name, n) == 0;
}

enum {
    F_V = 0x01,
    F_READY = 0x02,
    F_BUSY = 0x04,
    F_PORT = 0x08,
    F_SEQ = 0x10,
    F_INT = 0x20,
    F_STATE = 0x40
};

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
        if (key_is(&kv, "v")) {
            bit = F_V;
        } else if (key_is(&kv, "ready")) {
            bit = F_READY;
        } else if (key_is(&kv, "busy")) {
            bit = F_BUSY;
        } else if (key_is(&kv, "port")) {
            bit = F_PORT;
        } else if (key_is(&kv, "seq")) {
            bit = F_SEQ;
        } else if (key_is(&kv, "int")) {
            bit = F_INT;
        } else if (key_is(&kv, "state")) {
            bit = F_STATE;
        } else {
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
