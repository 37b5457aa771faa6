/*
 * hm_due.c: when the receiver's scan and storage write are due (see
 * hm_due.h).
 */
#include "hm_due.h"

void hm_due_init(hm_due_t *d, int64_t expiry, int64_t write_every, int write_file)
{
    d->expiry = expiry;
    d->write_every = write_every;
    d->write_file = write_file;
    d->last_scan = 0;
    d->scan_after = 0;
    d->last_write = 0;
    d->written_version = UINT64_MAX;
    d->written_changes = 0;
}

int64_t hm_due_scan(const hm_due_t *d)
{
    int64_t every = d->expiry / 4;
    int64_t due =
        d->scan_after < d->last_scan + d->expiry ? d->scan_after : d->last_scan + d->expiry;

    if (every > HM_DUE_SCAN_EVERY_MAX) {
        every = HM_DUE_SCAN_EVERY_MAX;
    }
    return due > d->last_scan + every ? due : d->last_scan + every;
}

void hm_due_scanned(hm_due_t *d, int64_t now, int64_t oldest)
{
    d->last_scan = now;
    /* Empty: a new entry is at least as new as now. */
    d->scan_after = (oldest == INT64_MAX ? now : oldest) + d->expiry;
}

int64_t hm_due_write(const hm_due_t *d, uint64_t version, uint64_t changes)
{
    int64_t every = d->write_every;

    if (!d->write_file) {
        return INT64_MAX;
    }
    if (changes != d->written_changes && every > HM_DUE_WRITE_GAP) {
        every = HM_DUE_WRITE_GAP;
    }
    if (version == d->written_version && every < HM_DUE_REWRITE) {
        every = HM_DUE_REWRITE;
    }
    return d->last_write + every;
}

void hm_due_wrote(hm_due_t *d, int64_t now, uint64_t version, uint64_t changes, int ok)
{
    d->last_write = now;
    d->written_changes = changes;
    if (ok) {
        d->written_version = version;
    }
}

void hm_due_write_now(hm_due_t *d)
{
    d->last_write = 0;
    d->written_version = UINT64_MAX;
}

int64_t hm_due_poll(const hm_due_t *d, int64_t now, uint64_t version, uint64_t changes)
{
    int64_t due = hm_due_scan(d), write = hm_due_write(d, version, changes);

    if (write < due) {
        due = write;
    }
    if (due <= now) {
        return 0;
    }
    due = (due - now + 999) / 1000 * 1000;
    return due < HM_DUE_POLL_MAX ? due : HM_DUE_POLL_MAX;
}
