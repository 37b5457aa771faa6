/*
 * hb_join.c: parse and check the balancer announcement (hb_join.h).
 */
#include <string.h>

#include "hb_join.h"

static const char *const hb_schemes[HB_SCHEME_COUNT] = {
    "", "http", "https", "h2c", "h2", "ajp", "fcgi", "scgi", "uwsgi", "ws", "wss",
};

static unsigned char hb_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

uint32_t hb_join_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= hb_lower((unsigned char)name[i]);
        h *= 16777619u;
    }
    return h ? h : 1;
}

hb_scheme_e hb_scheme_parse(const char *s, size_t len)
{
    int i;

    for (i = 1; i < HB_SCHEME_COUNT; i++) {
        size_t n = strlen(hb_schemes[i]);
        size_t k;
        if (n != len) {
            continue;
        }
        for (k = 0; k < n && hb_lower((unsigned char)s[k]) == (unsigned char)hb_schemes[i][k];
             k++) {
        }
        if (k == n) {
            return (hb_scheme_e)i;
        }
    }
    return HB_SCHEME_NONE;
}

const char *hb_scheme_str(hb_scheme_e s)
{
    return s > HB_SCHEME_NONE && s < HB_SCHEME_COUNT ? hb_schemes[s] : "?";
}

int hb_join_name_ok(const char *name, size_t len)
{
    size_t i;

    if (len == 0 || len > HB_JOIN_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* One item "name[:scheme[:port]]" of len bytes. */
static int hb_join_item(const char *s, size_t len, hb_join_t *j)
{
    const char *end = s + len, *c1 = memchr(s, ':', len), *c2 = NULL;
    size_t nlen = c1 ? (size_t)(c1 - s) : len;

    memset(j, 0, sizeof(*j));
    if (!hb_join_name_ok(s, nlen)) {
        return -1;
    }
    j->name_hash = hb_join_hash(s, nlen);
    j->scheme = HB_SCHEME_HTTP;
    if (!c1) {
        return 0;
    }
    c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
    j->scheme = (uint8_t)hb_scheme_parse(c1 + 1, (size_t)((c2 ? c2 : end) - c1 - 1));
    if (j->scheme == HB_SCHEME_NONE) {
        return -1;
    }
    if (c2) {
        const char *p = c2 + 1;
        uint32_t v = 0;
        if (p == end || end - p > 5) {
            return -1;
        }
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') {
                return -1;
            }
            v = v * 10 + (uint32_t)(*p - '0');
        }
        if (v == 0 || v > 65535) {
            return -1;
        }
        j->port = (uint16_t)v;
    }
    return 0;
}

int hb_join_parse(const char *s, size_t len, hb_join_set_t *out)
{
    const char *p = s, *end = s + len;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > HB_JOIN_TEXT_MAX) {
        return -1;
    }
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        hb_join_t j;
        uint32_t k;

        if (out->n == HB_JOIN_MAX || hb_join_item(p, (size_t)(stop - p), &j) != 0) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
        for (k = 0; k < out->n; k++) {
            if (out->j[k].name_hash == j.name_hash) {
                memset(out, 0, sizeof(*out));
                return -1;
            }
        }
        out->j[out->n++] = j;
        if (!comma) {
            return 0;
        }
        p = comma + 1;
    }
}

int hb_join_find(const hb_join_set_t *set, uint32_t h, hb_join_t *j)
{
    uint32_t i;

    for (i = 0; i < set->n && i < HB_JOIN_MAX; i++) {
        if (set->j[i].name_hash == h) {
            if (j) {
                *j = set->j[i];
            }
            return 1;
        }
    }
    return 0;
}

int hb_join_equal(const hb_join_set_t *a, const hb_join_set_t *b)
{
    return a->n == b->n && memcmp(a->j, b->j, a->n * sizeof(hb_join_t)) == 0;
}
