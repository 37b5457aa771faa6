/*
 * hm_ratelimit.c: per-source token buckets in a small open-addressing
 * table. Tokens are kept in millionths of a packet, so a microsecond of
 * elapsed time at any rate adds a whole number of them: no rounding drift.
 */
#include <string.h>

#include "hm_ratelimit.h"

#define PROBE 8

typedef struct {
    uint8_t used;
    uint8_t family;
    uint8_t addr[16];
    int64_t last;   /* microseconds */
    int64_t tokens; /* millionths of a packet */
} rl_slot_t;

struct hm_ratelimit {
    unsigned int size; /* power of two */
    int64_t rate;      /* packets per second */
    int64_t cap;       /* burst, in millionths */
    rl_slot_t budget;  /* hm_ratelimit_budget's bucket */
    rl_slot_t slots[];
};

static unsigned int pow2(unsigned int n)
{
    unsigned int s = PROBE;
    while (s < n) {
        s <<= 1;
    }
    return s;
}

size_t hm_ratelimit_size(unsigned int sources)
{
    return sizeof(struct hm_ratelimit) + (size_t)pow2(sources) * sizeof(rl_slot_t);
}

hm_ratelimit_t *hm_ratelimit_init(void *mem, unsigned int sources, uint32_t rate, uint32_t burst)
{
    hm_ratelimit_t *rl = mem;
    unsigned int size = pow2(sources);

    memset(rl, 0, sizeof(*rl) + (size_t)size * sizeof(rl_slot_t));
    rl->size = size;
    rl->rate = rate ? rate : 1;
    rl->cap = (int64_t)(burst ? burst : 1) * 1000000;
    return rl;
}

static uint32_t hash(const hm_addr_t *k)
{
    uint32_t h = 2166136261u;
    size_t n = k->family == 4 ? 4 : 16, i;
    for (i = 0; i < n; i++) {
        h = (h ^ k->addr[i]) * 16777619u;
    }
    return h ^ (h >> 15);
}

/* Refill s at rate per second up to cap, then take one packet if there is
 * one. */
static int take(rl_slot_t *s, int64_t rate, int64_t cap, int64_t now)
{
    if (now > s->last) {
        /* Past a minute the bucket is full anyway; capping dt keeps the
         * product far from overflow. */
        int64_t dt = now - s->last > 60000000 ? 60000000 : now - s->last;
        int64_t add = dt * rate;
        s->tokens = s->tokens + add > cap ? cap : s->tokens + add;
        s->last = now;
    }
    if (s->tokens < 1000000) {
        return 0;
    }
    s->tokens -= 1000000;
    return 1;
}

int hm_ratelimit_budget(hm_ratelimit_t *rl, int64_t now)
{
    if (!rl->budget.used) {
        rl->budget.used = 1;
        rl->budget.last = now;
        rl->budget.tokens = (int64_t)HM_VERIFY_BUDGET * 1000000;
    }
    return take(&rl->budget, HM_VERIFY_BUDGET, (int64_t)HM_VERIFY_BUDGET * 1000000, now);
}

int hm_ratelimit_allow(hm_ratelimit_t *rl, const hm_addr_t *from, int64_t now)
{
    size_t n = from->family == 4 ? 4 : 16;
    hm_addr_t net = *from;
    const hm_addr_t *src = &net;
    uint32_t h, i;
    rl_slot_t *s = NULL, *victim = NULL;

    /* One holder of an IPv6 /64 has 2^64 addresses to send from: the
     * /64 is the unit that gets one bucket, as one IPv4 address does. A
     * link-local key keeps its scope (bytes 4-7), so each link is its own
     * /64. */
    if (net.family == 6) {
        memset(net.addr + 8, 0, 8);
    }
    h = hash(src);

    for (i = 0; i < PROBE; i++) {
        rl_slot_t *c = &rl->slots[(h + i) & (rl->size - 1)];
        if (c->used && c->family == src->family && !memcmp(c->addr, src->addr, n)) {
            s = c;
            break;
        }
        if (!victim || !c->used || (victim->used && c->last < victim->last)) {
            victim = c;
        }
    }
    if (!s) {
        s = victim;
        memset(s, 0, sizeof(*s));
        s->used = 1;
        s->family = src->family;
        memcpy(s->addr, src->addr, n);
        s->last = now;
        s->tokens = rl->cap;
    }
    return take(s, rl->rate, rl->cap, now);
}
