/*
 * lbhb_load.c: per-response load reports (see lbhb_load.h).
 */
#include <stdio.h>
#include <string.h>

#include "lbhb_load.h"

size_t lbhb_load_format(char *buf, size_t cap, uint32_t ready, uint32_t busy, uint16_t port,
                        const char *addr, const hb_secret_t *key, int64_t now_ms)
{
    int n;

    if (key) {
        n = snprintf(buf, cap, "ready=%u&busy=%u&port=%u&addr=%s", (unsigned)ready, (unsigned)busy,
                     (unsigned)port, addr ? addr : "");
    } else {
        n = snprintf(buf, cap, "ready=%u&busy=%u&port=%u", (unsigned)ready, (unsigned)busy,
                     (unsigned)port);
    }
    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    return key ? hb_auth_sign(key, buf, (size_t)n, cap, now_ms) : (size_t)n;
}

static int field_is(const hb_kv_t *kv, const char *name)
{
    size_t n = strlen(name);
    return kv->key_len == n && memcmp(kv->key, name, n) == 0;
}

lbhb_load_e lbhb_load_parse(const char *v, size_t len, const hb_secret_t *keys, unsigned int nkeys,
                            int64_t now_ms, int64_t window_ms, lbhb_load_t *out)
{
    const char *pos = v, *end;
    unsigned int seen = 0;
    size_t slen = len;
    hb_kv_t kv;
    uint64_t n;
    int r;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > LBHB_LOAD_MAX) {
        return LBHB_LOAD_MALFORMED;
    }
    if (nkeys > 0) {
        switch (hb_auth_verify(keys, nkeys, v, len, now_ms, window_ms, &slen, NULL)) {
        case HB_AUTH_OK:
            break;
        case HB_AUTH_UNSIGNED:
            return LBHB_LOAD_UNSIGNED;
        case HB_AUTH_MALFORMED:
            return LBHB_LOAD_MALFORMED;
        case HB_AUTH_UNKNOWN_KEY:
        case HB_AUTH_BADSIG:
        case HB_AUTH_CLOCK:
            return LBHB_LOAD_BADSIG;
        }
    }
    end = v + slen;
    while ((r = hb_query_next(&pos, end, &kv)) != 0) {
        unsigned int bit = 0;
        if (r < 0) {
            return LBHB_LOAD_MALFORMED;
        }
        if (field_is(&kv, "ready") || field_is(&kv, "busy")) {
            bit = field_is(&kv, "ready") ? 1u : 2u;
            if (hb_parse_u64(kv.val, kv.val_len, HB_COUNT_MAX, &n) != HB_OK) {
                return LBHB_LOAD_MALFORMED;
            }
            *(bit == 1u ? &out->ready : &out->busy) = (uint32_t)n;
        } else if (field_is(&kv, "port")) {
            bit = 4u;
            if (hb_parse_u64(kv.val, kv.val_len, 65535, &n) != HB_OK || n == 0) {
                return LBHB_LOAD_MALFORMED;
            }
            out->port = (uint16_t)n;
        } else if (field_is(&kv, "addr")) {
            bit = 8u;
            if (kv.val_len == 0 || kv.val_len >= sizeof(out->addr)) {
                return LBHB_LOAD_MALFORMED;
            }
            memcpy(out->addr, kv.val, kv.val_len);
            out->addr[kv.val_len] = '\0';
        } else if (nkeys == 0 &&
                   (field_is(&kv, "ts") || field_is(&kv, "kid") || field_is(&kv, "sig"))) {
            /* A signature nobody here can check: the fields before it
             * count as they would unsigned. */
            continue;
        }
        if (seen & bit) {
            return LBHB_LOAD_MALFORMED;
        }
        seen |= bit;
    }
    if ((seen & 3u) != 3u || (nkeys > 0 && (seen & 12u) != 12u)) {
        /* Signed, it must say whose it is. */
        return nkeys > 0 && (seen & 3u) == 3u ? LBHB_LOAD_IDENTITY : LBHB_LOAD_MALFORMED;
    }
    return LBHB_LOAD_OK;
}

void lbhb_load_put(lbhb_load_slot_t *s, uint32_t ready, uint32_t busy, int64_t at)
{
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

    if ((seq & 1u) || !__atomic_compare_exchange_n(&s->seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE,
                                                   __ATOMIC_RELAXED)) {
        return;
    }
    __atomic_store_n(&s->ready, ready, __ATOMIC_RELAXED);
    __atomic_store_n(&s->busy, busy, __ATOMIC_RELAXED);
    __atomic_store_n(&s->at, at, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

int lbhb_load_get(const lbhb_load_slot_t *s, uint32_t *ready, uint32_t *busy, int64_t *at)
{
    for (int tries = 0; tries < 4; tries++) {
        uint32_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1u) {
            continue;
        }
        *ready = __atomic_load_n(&s->ready, __ATOMIC_RELAXED);
        *busy = __atomic_load_n(&s->busy, __ATOMIC_RELAXED);
        *at = __atomic_load_n(&s->at, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == s1) {
            return *at != 0;
        }
    }
    return 0;
}
