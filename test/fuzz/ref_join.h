/*
 * ref_join.h: a second parser of the balancer announcement (join=, see
 * hb_join.h), for the fuzz targets to hold hb_join_parse against. Written
 * from the rules, not from hb_join.c: it splits the text first and judges
 * the pieces afterwards, compares names as lower-case strings rather than
 * by hash, and reads ports as digit strings.
 */
#ifndef REF_JOIN_H
#define REF_JOIN_H

#include <stddef.h>
#include <string.h>

#include "hb_join.h"

typedef struct {
    unsigned int n;
    struct {
        char name[HB_JOIN_NAME_MAX + 1]; /* lower-case */
        int scheme;                      /* hb_scheme_e */
        unsigned int port;
    } j[HB_JOIN_MAX];
} ref_join_t;

static const char *const ref_join_schemes[] = {"http", "https", "h2c",   "h2", "ajp",
                                               "fcgi", "scgi",  "uwsgi", "ws", "wss"};

static char ref_join_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* One piece "name[:scheme[:port]]" of len bytes into r->j[r->n]. */
static int ref_join_item(const char *s, size_t len, ref_join_t *r)
{
    const char *part[3];
    size_t plen[3], np = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ':') {
            if (np == 3) {
                return 0; /* a fourth part */
            }
            part[np] = s + start;
            plen[np] = i - start;
            np++;
            start = i + 1;
        }
    }
    /* name: 1..64 of [A-Za-z0-9_.-] */
    if (plen[0] < 1 || plen[0] > HB_JOIN_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < plen[0]; i++) {
        char c = ref_join_lower(part[0][i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-')) {
            return 0;
        }
        r->j[r->n].name[i] = c;
    }
    r->j[r->n].name[plen[0]] = '\0';
    r->j[r->n].scheme = 1; /* http */
    r->j[r->n].port = 0;
    if (np > 1) {
        int found = 0;
        for (size_t k = 0; k < sizeof(ref_join_schemes) / sizeof(ref_join_schemes[0]); k++) {
            size_t sl = strlen(ref_join_schemes[k]), i;
            if (sl != plen[1]) {
                continue;
            }
            for (i = 0; i < sl && ref_join_lower(part[1][i]) == ref_join_schemes[k][i]; i++) {
            }
            if (i == sl) {
                r->j[r->n].scheme = (int)k + 1;
                found = 1;
            }
        }
        if (!found) {
            return 0;
        }
    }
    if (np > 2) {
        /* 1..5 digits, and from 1 to 65535: leading zeros stripped,
         * shorter than "65535" is smaller, as long compares as text. */
        size_t z = 0;
        if (plen[2] < 1 || plen[2] > 5) {
            return 0;
        }
        for (size_t i = 0; i < plen[2]; i++) {
            if (part[2][i] < '0' || part[2][i] > '9') {
                return 0;
            }
        }
        while (z < plen[2] && part[2][z] == '0') {
            z++;
        }
        if (z == plen[2] || (plen[2] - z == 5 && memcmp(part[2] + z, "65535", 5) > 0)) {
            return 0;
        }
        for (size_t i = z; i < plen[2]; i++) {
            r->j[r->n].port = r->j[r->n].port * 10 + (unsigned int)(part[2][i] - '0');
        }
    }
    return 1;
}

/* 1 if s is an announcement the rules allow, with r filled; 0 if not. */
static int ref_join_parse(const char *s, size_t len, ref_join_t *r)
{
    size_t start = 0;

    memset(r, 0, sizeof(*r));
    if (len == 0) {
        return 0;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') {
            continue;
        }
        if (r->n == HB_JOIN_MAX || !ref_join_item(s + start, i - start, r)) {
            return 0;
        }
        for (unsigned int k = 0; k < r->n; k++) {
            if (strcmp(r->j[k].name, r->j[r->n].name) == 0) {
                return 0; /* the same balancer twice */
            }
        }
        r->n++;
        start = i + 1;
    }
    return 1;
}

/* Two different names of r with one hash (hb_join_hash): the table keeps
 * a hash per name, so to it they are one balancer, announced twice. */
static int ref_join_collides(const ref_join_t *r)
{
    for (unsigned int a = 0; a < r->n; a++) {
        for (unsigned int b = a + 1; b < r->n; b++) {
            if (hb_join_hash(r->j[a].name, strlen(r->j[a].name)) ==
                hb_join_hash(r->j[b].name, strlen(r->j[b].name))) {
                return 1;
            }
        }
    }
    return 0;
}

/*
 * Whether hb_join_parse's verdict and result on s agree with the
 * reference's. The one difference allowed: the table keeps a hash per
 * name, so two different names with one hash are one balancer to it, and
 * hb_join_parse refuses them as a duplicate.
 */
static int ref_join_agrees(const char *s, size_t len, int got, const hb_join_set_t *set)
{
    ref_join_t r;
    int want = ref_join_parse(s, len, &r);

    if (want && ref_join_collides(&r)) {
        return got != 0;
    }
    if (!want) {
        return got != 0;
    }
    if (set->n != r.n) {
        return 0;
    }
    for (unsigned int i = 0; i < r.n; i++) {
        if (set->j[i].name_hash != hb_join_hash(r.j[i].name, strlen(r.j[i].name)) ||
            set->j[i].scheme != r.j[i].scheme || set->j[i].port != r.j[i].port) {
            return 0;
        }
    }
    return 1;
}

#endif
