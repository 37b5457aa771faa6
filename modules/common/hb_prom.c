/*
 * hb_prom.c: the Prometheus text exposition format (see hb_prom.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hb_prom.h"

static void put(hb_prom_t *w, const char *s, size_t n)
{
    if (w->failed) {
        return;
    }
    if (n > w->cap - w->len) {
        if (w->len && w->flush(w->baton, w->buf, w->len) != 0) {
            w->failed = 1;
            return;
        }
        w->len = 0;
        if (n > w->cap) {
            /* Longer than the whole buffer (a very long name): straight
             * through, in order, since the buffer is empty. */
            if (w->flush(w->baton, s, n) != 0) {
                w->failed = 1;
            }
            return;
        }
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void puts_(hb_prom_t *w, const char *s)
{
    put(w, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (n bytes left, n >= 1), or
 * 0 if there is none: Go's rules, which Prometheus applies (no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len, i;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

/*
 * The one escaping function: a label value (help = 0) or a HELP text
 * (help = 1, where a double quote needs no escape). Runs of bytes that
 * need nothing are copied in one piece.
 */
static void put_escaped(hb_prom_t *w, const char *value, int help)
{
    const unsigned char *s = (const unsigned char *)value, *run = s;
    size_t left = strlen(value);

    while (left) {
        const char *esc = NULL;
        size_t len = 1;
        if (*s == '\\') {
            esc = "\\\\";
        } else if (*s == '\n') {
            esc = "\\n";
        } else if (*s == '"' && !help) {
            esc = "\\\"";
        } else if (!(len = utf8_len(s, left))) {
            esc = "\xef\xbf\xbd"; /* U+FFFD for each byte that is not UTF-8 */
            len = 1;
        }
        if (esc) {
            put(w, (const char *)run, (size_t)(s - run));
            puts_(w, esc);
            run = s + len;
        }
        s += len;
        left -= len;
    }
    put(w, (const char *)run, (size_t)(s - run));
}

void hb_prom_init(hb_prom_t *w, char *buf, size_t cap, hb_prom_flush_fn flush, void *baton)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
    w->flush = flush;
    w->baton = baton;
}

void hb_prom_family(hb_prom_t *w, const char *name, const char *type, const char *help)
{
    w->name = name;
    w->type = type;
    w->help = help;
    w->announced = 0;
}

static void begin_sample(hb_prom_t *w, const hb_prom_label_t *labels, unsigned int n)
{
    unsigned int i;

    if (!w->announced) {
        puts_(w, "# HELP ");
        puts_(w, w->name);
        put(w, " ", 1);
        put_escaped(w, w->help, 1);
        puts_(w, "\n# TYPE ");
        puts_(w, w->name);
        put(w, " ", 1);
        puts_(w, w->type);
        put(w, "\n", 1);
        w->announced = 1;
    }
    puts_(w, w->name);
    for (i = 0; i < n; i++) {
        put(w, i ? "," : "{", 1);
        puts_(w, labels[i].name);
        put(w, "=\"", 2);
        put_escaped(w, labels[i].value, 0);
        put(w, "\"", 1);
    }
    if (n) {
        put(w, "}", 1);
    }
    put(w, " ", 1);
}

void hb_prom_u64(hb_prom_t *w, const hb_prom_label_t *labels, unsigned int n, uint64_t v)
{
    char digits[21], *p = digits + sizeof(digits);

    begin_sample(w, labels, n);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(w, p, (size_t)(digits + sizeof(digits) - p));
    put(w, "\n", 1);
}

void hb_prom_double(hb_prom_t *w, const hb_prom_label_t *labels, unsigned int n, double v)
{
    char num[40];

    begin_sample(w, labels, n);
    if (isnan(v)) {
        puts_(w, "NaN");
    } else if (isinf(v)) {
        puts_(w, v > 0 ? "+Inf" : "-Inf");
    } else {
        int len = snprintf(num, sizeof(num), "%.9g", v);
        put(w, num, len > 0 ? (size_t)len : 0);
    }
    put(w, "\n", 1);
}

int hb_prom_finish(hb_prom_t *w)
{
    if (!w->failed && w->len && w->flush(w->baton, w->buf, w->len) != 0) {
        w->failed = 1;
    }
    w->len = 0;
    return w->failed ? -1 : 0;
}
