/*
 * lbhb_file.c: the balancer's view of a HeartbeatStorage file, for servers
 * without a shared table (no monitor here, or HeartbeatMaxServers 0, or a
 * file written by a stock monitor). Parsed once per change, not on every
 * request as stock did, and aged by the file's own mtime so that the data
 * of a monitor that stopped writing goes stale instead of being trusted.
 */
#include <stdlib.h>

#include "lbhb_private.h"

#include "http_log.h"

#include "apr_file_info.h"
#include "apr_thread_mutex.h"

#include "hm_storage.h"

/* Log lines carry this module's name and obey its LogLevel. */
APLOG_USE_MODULE(lbmethod_heartbeat);

#define LBHB_FILE_CHECK_EVERY apr_time_from_msec(100)
#define LBHB_FILE_MAX_BYTES   (16 * 1024 * 1024)

typedef struct {
    hm_table_t *table; /* private table built from the file */
    apr_time_t mtime;
    apr_off_t size;
} lbhb_file_snap_t;

static const char *lbhb_path;
static apr_thread_mutex_t *lbhb_mutex;
static lbhb_file_snap_t *lbhb_snap;
static apr_time_t lbhb_checked;

static hm_table_t *lbhb_snapshot_table(apr_array_header_t *entries, apr_time_t now)
{
    unsigned int cap = entries->nelts > 0 ? (unsigned int)entries->nelts : 1;
    size_t size = hm_table_size(cap);
    void *mem = malloc(size);
    hm_table_t *t;
    int i;

    if (!mem) {
        return NULL;
    }
    t = hm_table_create(mem, size, cap);
    /* Room for every line: no entry is ever turned away. */
    for (i = 0; i < entries->nelts; i++) {
        hm_table_put_entry(t, &APR_ARRAY_IDX(entries, i, hm_entry_t), now);
    }
    return t;
}

static void lbhb_snap_free(lbhb_file_snap_t *snap)
{
    if (snap) {
        free(snap->table);
        free(snap);
    }
}

static void lbhb_refresh(server_rec *s, apr_time_t now)
{
    apr_finfo_t fi;
    apr_pool_t *tmp;
    apr_array_header_t *entries = NULL;
    hm_storage_stats_t st;
    int64_t mtime;
    lbhb_file_snap_t *snap;

    if (lbhb_snap && now - lbhb_checked < LBHB_FILE_CHECK_EVERY) {
        return;
    }
    lbhb_checked = now;
    if (apr_pool_create(&tmp, NULL) != APR_SUCCESS) {
        return;
    }
    if (apr_stat(&fi, lbhb_path, APR_FINFO_MTIME | APR_FINFO_SIZE, tmp) == APR_SUCCESS &&
        lbhb_snap && fi.mtime == lbhb_snap->mtime && fi.size == lbhb_snap->size) {
        apr_pool_destroy(tmp);
        return;
    }
    if (hm_storage_read(lbhb_path, LBHB_FILE_MAX_BYTES, tmp, &entries, &mtime, &st) != 0) {
        /* Keep the old snapshot: its entries age out by themselves. */
        apr_pool_destroy(tmp);
        return;
    }
    if (st.bad) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "LB0301: %s: %u malformed line(s) skipped, first at line %u", lbhb_path,
                     st.bad, st.first_bad_line);
    }
    snap = calloc(1, sizeof(*snap));
    if (snap) {
        snap->table = lbhb_snapshot_table(entries, now);
        snap->mtime = mtime;
        snap->size = fi.size;
        if (!snap->table) {
            free(snap);
            snap = NULL;
        }
    }
    if (snap) {
        lbhb_snap_free(lbhb_snap);
        lbhb_snap = snap;
    }
    apr_pool_destroy(tmp);
}

const hm_table_t *lbhb_file_acquire(server_rec *s, apr_time_t now)
{
    if (!lbhb_mutex) {
        return NULL;
    }
    apr_thread_mutex_lock(lbhb_mutex);
    lbhb_refresh(s, now);
    return lbhb_snap ? lbhb_snap->table : NULL;
}

void lbhb_file_release(void)
{
    apr_thread_mutex_unlock(lbhb_mutex);
}

static apr_status_t lbhb_file_cleanup(void *data)
{
    lbhb_snap_free(lbhb_snap);
    lbhb_snap = NULL;
    lbhb_mutex = NULL;
    return APR_SUCCESS;
}

const char *lbhb_file_path(void)
{
    return lbhb_path;
}

void lbhb_file_child_init(apr_pool_t *p, const char *path)
{
    lbhb_path = path;
    lbhb_snap = NULL;
    lbhb_checked = 0;
    lbhb_mutex = NULL;
    if (path && apr_thread_mutex_create(&lbhb_mutex, APR_THREAD_MUTEX_DEFAULT, p) == APR_SUCCESS) {
        apr_pool_cleanup_register(p, NULL, lbhb_file_cleanup, apr_pool_cleanup_null);
    }
}
