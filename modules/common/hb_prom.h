/*
 * hb_prom.h: the Prometheus text exposition format (version 0.0.4), as the
 * status page's ?prometheus writes it: metric families with their HELP and
 * TYPE lines, and samples whose label values are escaped, into a buffer
 * handed to the caller's flush function whenever it fills up. No
 * allocation and no httpd: the glue passes a function that calls
 * ap_rwrite, the unit test one that appends to a string.
 *
 * Every label value goes through one escaping function: backslash, double
 * quote and newline are escaped as the format says, and bytes that are not
 * valid UTF-8 (which Prometheus refuses, failing the whole scrape) become
 * U+FFFD. Names come from the configuration (a balancer, a member's URL),
 * so they may hold any of these.
 */
#ifndef HB_PROM_H
#define HB_PROM_H

#include <stddef.h>
#include <stdint.h>

#define HB_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes len bytes somewhere; returns 0, or -1 when it could not (then
 * nothing more is written). */
typedef int (*hb_prom_flush_fn)(void *baton, const char *data, size_t len);

typedef struct {
    char *buf;
    size_t cap, len;
    hb_prom_flush_fn flush;
    void *baton;
    int failed;
    /* The current family; its HELP and TYPE lines are written before its
     * first sample, so that a family without samples leaves no trace. */
    const char *name, *type, *help;
    int announced;
} hb_prom_t;

typedef struct {
    const char *name; /* a valid label name (ours, never escaped) */
    const char *value;
} hb_prom_label_t;

/* buf (cap bytes, at least 64) is where lines gather between flushes. */
void hb_prom_init(hb_prom_t *w, char *buf, size_t cap, hb_prom_flush_fn flush, void *baton);

/* Start a family: name is a valid metric name, type "counter" or
 * "gauge"; the samples that follow, up to the next family, are its. A
 * family's samples must not be split: the format wants them together. */
void hb_prom_family(hb_prom_t *w, const char *name, const char *type, const char *help);

/* One sample of the current family, with n labels. */
void hb_prom_u64(hb_prom_t *w, const hb_prom_label_t *labels, unsigned int n, uint64_t v);
void hb_prom_double(hb_prom_t *w, const hb_prom_label_t *labels, unsigned int n, double v);

/* Flush what is left; returns 0, or -1 if any flush failed. */
int hb_prom_finish(hb_prom_t *w);

#endif
