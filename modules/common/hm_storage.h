/*
 * hm_storage.h: the HeartbeatStorage file, in the stock line format
 *
 *     10.0.0.11 &ready=75&busy=0&lastseen=1&port=80
 *
 * one line per origin, '#' lines are comments. lastseen is whole seconds
 * since the last heartbeat at the time the file was written. We append our
 * own fields after the stock ones (the stock reader ignores unknown keys):
 *
 *     &seen=<microseconds since the epoch>&int=<ms>&state=up|drain|stopping
 *     &seq=<n>&portknown=0|1
 *
 * so that our reader gets sub-second freshness while stock readers and files
 * written by the stock monitor keep working.
 */
#ifndef HM_STORAGE_H
#define HM_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "apr_pools.h"
#include "apr_tables.h"

#include "hm_table.h"

/* Longest line we write or accept. */
#define HM_STORAGE_LINE_MAX 512

typedef struct {
    unsigned int lines;          /* non-empty, non-comment lines */
    unsigned int entries;        /* lines turned into entries */
    unsigned int bad;            /* lines skipped as malformed */
    unsigned int first_bad_line; /* 1-based line number of the first bad line, 0 if none */
} hm_storage_stats_t;

/*
 * Format one entry as a line (with the trailing '\n'), lastseen counted at
 * time now. Returns the length, or 0 if cap is too small.
 */
size_t hm_storage_format_line(const hm_entry_t *e, int64_t now, char *buf, size_t cap);

/*
 * Parse a whole file's contents. written_at is when the file was written
 * (its mtime): an entry's absolute time is written_at - lastseen, unless the
 * line carries our seen= field (never later than written_at). Good entries are
 * appended to out (an array of hm_entry_t); bad lines are skipped and counted,
 * so one broken line never costs the others.
 */
void hm_storage_parse(const char *buf, size_t len, int64_t written_at, apr_array_header_t *out,
                      hm_storage_stats_t *st);

/*
 * Write every entry of t to path atomically: a temporary file in the same
 * directory, then rename(), so a reader sees the old file or the new one,
 * never a partial one. Entries last seen before now - max_age are left out.
 */
int hm_storage_write(const char *path, const hm_table_t *t, int64_t now, int64_t max_age,
                     apr_pool_t *p);

/*
 * Read and parse path. *mtime gets the file's modification time. Returns 0,
 * or an errno value (the file is missing, unreadable, or larger than max_bytes).
 */
int hm_storage_read(const char *path, size_t max_bytes, apr_pool_t *p, apr_array_header_t **out,
                    int64_t *mtime, hm_storage_stats_t *st);

#endif
