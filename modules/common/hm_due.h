/*
 * hm_due.h: when the monitor's receiver next has housekeeping to do: the
 * expiry scan, which reads every slot, and the HeartbeatStorage write. It
 * keeps an hm_due_t, asks what is due after every read, and sleeps in poll
 * until the earlier of the two. Arithmetic on the times and table counters
 * it is given: no clock, no table, no I/O. One thread (the receiver) uses
 * it: no locking.
 */
#ifndef HM_DUE_H
#define HM_DUE_H

#include <stdint.h>

/* Times in microseconds. Scans at most once a second, or four times per
 * HeartbeatExpiry if that is shorter than four seconds. */
#define HM_DUE_SCAN_EVERY_MAX ((int64_t)1000000)
/* A file with a state change is written this long after the last write,
 * not sooner: a flapping origin must not make the receiver rewrite a large
 * file for every packet. */
#define HM_DUE_WRITE_GAP ((int64_t)20000)
#define HM_DUE_REWRITE   ((int64_t)5000000) /* an unchanged table rewritten this often */
#define HM_DUE_POLL_MAX  ((int64_t)1000000) /* the longest sleep, in case the clock jumps */

typedef struct {
    /* settings */
    int64_t expiry;      /* HeartbeatExpiry */
    int64_t write_every; /* HeartbeatStorageInterval */
    int write_file;      /* 0: no file is written, only the scan is ever due */
    /* what was done last */
    int64_t last_scan;
    int64_t scan_after;       /* no entry can expire before this */
    int64_t last_write;       /* written, or tried */
    uint64_t written_version; /* the table's version in the file, UINT64_MAX: none */
    uint64_t written_changes; /* its count of state changes then */
} hm_due_t;

/* Nothing done yet: the scan is due at once, and the write once the
 * table's version is known (it differs from "none"). */
void hm_due_init(hm_due_t *d, int64_t expiry, int64_t write_every, int write_file);

/* When the expiry scan is due: once the oldest entry can have expired
 * (hm_due_scanned), at most once a second (a quarter of a shorter expiry),
 * and at least once per expiry in case the clock jumped. */
int64_t hm_due_scan(const hm_due_t *d);

/* The scan ran at now; oldest is the last-seen time of the oldest entry
 * left, INT64_MAX if none (as hm_table_expire_ex says). */
void hm_due_scanned(hm_due_t *d, int64_t now, int64_t oldest);

/*
 * When the file is due, given the table's version (updates plus
 * expiries) and its count of state changes now; INT64_MAX if no file is
 * written. HM_DUE_WRITE_GAP after the last write when an origin appeared
 * or changed state, since a drain must not wait for the interval; after
 * HeartbeatStorageInterval once the counts changed; and every
 * HM_DUE_REWRITE even when nothing changed, so the stock lastseen field
 * keeps counting for stock readers.
 */
int64_t hm_due_write(const hm_due_t *d, uint64_t version, uint64_t changes);

/* The file was written (ok) or tried at now, for version and changes: a
 * failed write is retried after the interval, not at once. */
void hm_due_wrote(hm_due_t *d, int64_t now, uint64_t version, uint64_t changes, int ok);

/* Make the write due at once (the last one, before the receiver hands
 * over). */
void hm_due_write_now(hm_due_t *d);

/* How long poll may sleep at now: until the scan or the write is due, in
 * whole milliseconds rounded up (epoll counts in those, and a timeout
 * rounded down to 0 would spin until the time comes), at most
 * HM_DUE_POLL_MAX; 0 if something is due already. */
int64_t hm_due_poll(const hm_due_t *d, int64_t now, uint64_t version, uint64_t changes);

#endif
