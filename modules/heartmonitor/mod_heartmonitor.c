/*
 * mod_heartmonitor: the proxy side. Receives heartbeats on HeartbeatListen
 * (UDP, unicast or multicast, IPv4 or IPv6) and by HTTP POST, keeps the
 * table of origins in shared memory that every proxy process reads, and
 * writes it to HeartbeatStorage in the stock line format.
 *
 * Where things run:
 *  - the parent (root) binds the listening sockets and creates the shared
 *    table, and keeps both across graceful restarts, so a restart neither
 *    loses the table nor fails to rebind;
 *  - one child (unprivileged, elected per generation: hb_elect.h) runs the
 *    receiver thread, which applies packets as they arrive and writes the
 *    file; a thread in every other child stands by to take over.
 *
 * This file holds the hooks, the set-up of each generation at post_config
 * (the table, the admission rules, the election) and the optional
 * functions; the rest of the module is hm_config.c (directives),
 * hm_listen.c (sockets), hm_receiver.c (the receiver thread) and
 * hm_handlers.c (POST and status pages). Whether a heartbeat gets into
 * the table is the core's hm_admit.c.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "unixd.h"

#include "apr_strings.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hb_auth.h"
#include "hb_config.h"
#include "hb_elect.h"
#include "hb_log.h"
#include "hm_admit.h"
#include "hm_shm.h"
#include "hm_storage.h"
#include "hm_private.h"
#include "mod_heartmonitor.h"

#define HM_PROC_KEY_SHM "mod_heartmonitor.shm"
#define HM_LOG_LINE_MAX 1024

/* This generation's table and file, for the optional functions, and its
 * receiver election, made by the parent for the children. */
static hm_table_t *hm_exported_table;
static const char *hm_exported_path;
static const hm_conf_t *hm_exported_conf;
static hb_elect_t *hm_election;

/* ------------------------------------------------------------- logging */

/* The core's lines (hb_log.h) into this server's error log, tagged with
 * this module; dropped before formatting when below the LogLevel. */
static void hm_log_print(void *baton, hb_log_level_e level, const char *file, int line,
                         const char *fmt, va_list ap)
{
    server_rec *s = baton;
    char msg[HM_LOG_LINE_MAX];

    if (!APLOG_IS_LEVEL(s, (int)level)) {
        return;
    }
    apr_vsnprintf(msg, sizeof(msg), fmt, ap);
    ap_log_error(file, line, APLOG_MODULE_INDEX, (int)level, 0, s, "%s", msg);
}

/* hb_log_level_e is syslog's order, as APLOG_* is. */
typedef char hm_log_levels_match[HB_LOG_EMERG == APLOG_EMERG && HB_LOG_WARNING == APLOG_WARNING &&
                                         HB_LOG_DEBUG == APLOG_DEBUG
                                     ? 1
                                     : -1];

/* ------------------------------------------------------- shared memory */

/* Largest storage file read back at start-up (HM_FILE_MODE_CAPACITY lines
 * and then some). */
#define HM_SEED_MAX_BYTES (4 * 1024 * 1024)

/*
 * A full start begins with an empty table, and until every origin has
 * reported (up to an interval) the balancer cannot tell a small origin from
 * a big one: it sends both the same, and the small one queues. So the last
 * reports of the previous run, which the parent saves at every stop
 * (hm_save_table), go back into the new table as they were, with the time
 * they were made: the balancer takes those from before its start as what
 * each origin can take, until it hears from it (lbhb_collect). Entries
 * older than HeartbeatExpiry are left out.
 */
static void hm_seed_table(server_rec *s, hm_conf_t *conf, hm_table_t *t)
{
    apr_array_header_t *entries = NULL;
    apr_pool_t *tmp;
    int64_t mtime, now = apr_time_now();
    hm_storage_stats_t st;
    unsigned int n = 0;
    int i;

    if (apr_pool_create(&tmp, s->process->pool) != APR_SUCCESS) {
        return;
    }
    if (hm_storage_read(conf->storage_path, HM_SEED_MAX_BYTES, tmp, &entries, &mtime, &st) == 0) {
        for (i = 0; i < entries->nelts; i++) {
            const hm_entry_t *e = &APR_ARRAY_IDX(entries, i, hm_entry_t);
            if (now - e->seen < conf->expiry && hm_table_put_entry(t, e, now) <= HM_UPD_REPLACED) {
                n++;
            }
        }
    }
    if (n) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "HM0218: %u origins' last reports read back from %s, for the balancer's "
                     "start until they report again",
                     n, conf->storage_path);
    }
    apr_pool_destroy(tmp);
}

/* At every stop and restart, in the parent: the table's entries to the
 * storage file, for hm_seed_table (when the receiver does not write it
 * anyway). Best effort: a stop must not fail for it. */
static apr_status_t hm_save_table(void *data)
{
    hm_conf_t *conf = data;
    apr_pool_t *tmp;

    if (!conf->table || conf->write_file || hm_table_count(conf->table) == 0 ||
        apr_pool_create(&tmp, NULL) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    if (!conf->storage && geteuid() == 0) {
        /* The default directory is ours, given to User as hm_check_config
         * does when the file is written while running. */
        const char *dir = ap_make_dirstr_parent(tmp, conf->storage_path);
        if (mkdir(dir, 0755) == 0 &&
            chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
            rmdir(dir);
        }
    }
    hm_storage_write(conf->storage_path, conf->table, apr_time_now(), conf->expiry, tmp);
    apr_pool_destroy(tmp);
    return APR_SUCCESS;
}

/*
 * The table lives in anonymous shared memory owned by the process pool, so
 * it outlives graceful restarts: children of the next generation inherit
 * the same mapping and nothing is lost. A new size, or a change between
 * huge and normal pages, gets a new block, filled from the old one.
 */
static hm_table_t *hm_get_table(server_rec *s, hm_conf_t *conf, unsigned int capacity)
{
    apr_pool_t *pp = s->process->pool;
    hm_shm_t *shm = NULL, *old = NULL;
    hm_table_t *t, *ot = NULL;
    apr_size_t size = hm_table_size(capacity);
    hm_huge_e huge = conf->huge < 0 ? HM_HUGE_TRY : (hm_huge_e)conf->huge;
    const char *why = NULL;
    apr_status_t rv;
    unsigned int i;
    int keep_old = 0;

    /* A small table would leave most of a huge page unused. */
    if (huge == HM_HUGE_TRY && size < HM_HUGE_MIN_TABLE) {
        huge = HM_HUGE_OFF;
    }
    apr_pool_userdata_get((void **)&old, HM_PROC_KEY_SHM, pp);
    if (old) {
        ot = hm_table_attach(hm_shm_base(old), hm_shm_size(old));
        if (ot && hm_table_capacity(ot) == capacity &&
            (hm_shm_huge_page(old) != 0) == (huge != HM_HUGE_OFF)) {
            conf->huge_page = hm_shm_huge_page(old);
            return ot;
        }
        /* Normal pages of the right size already: only huge ones would be
         * worth a move, so ask for them without a fallback. */
        keep_old = ot && hm_table_capacity(ot) == capacity && huge == HM_HUGE_TRY;
    }
    rv = hm_shm_create(&shm, size, keep_old ? HM_HUGE_ON : huge, pp, &why);
    if (rv != APR_SUCCESS && keep_old) {
        conf->huge_page = 0;
        return ot;
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "HM0204: cannot create %" APR_SIZE_T_FMT " bytes of shared memory for %u "
                     "origins (HeartbeatMaxServers)%s%s",
                     size, capacity, why ? ": " : "", why ? why : "");
        return NULL;
    }
    if (why) {
        /* Huge pages were asked for and not had: still a working table. */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "HM0213: the table for %u origins (%" APR_SIZE_T_FMT
                     " kB) is in normal pages: %s; see HeartbeatHugePages",
                     capacity, size / 1024, why);
    } else if (hm_shm_huge_page(shm)) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "HM0214: the table for %u origins is in %" APR_SIZE_T_FMT " kB of huge pages",
                     capacity, hm_shm_size(shm) / 1024);
    }
    conf->huge_page = hm_shm_huge_page(shm);
    t = hm_table_create(hm_shm_base(shm), hm_shm_size(shm), capacity);
    if (!ot && t) {
        hm_seed_table(s, conf, t);
    }
    if (ot) {
        int64_t now = apr_time_now();
        for (i = 0; i < hm_table_capacity(ot); i++) {
            hm_entry_t e;
            if (hm_table_get(ot, i, &e)) {
                hm_table_put_entry(t, &e, now);
            }
        }
    }
    if (old) {
        /* Old children keep their own mapping until they exit. */
        hm_shm_destroy(old);
    }
    apr_pool_userdata_set(shm, HM_PROC_KEY_SHM, apr_pool_cleanup_null, pp);
    return t;
}

/* --------------------------------------------------------------- hooks */

/*
 * The file is written by an unprivileged child, so a directory only root
 * may write would fail every time, silently in stock. The default
 * directory is ours: the parent (root) makes it and gives it to User. Any
 * other is the administrator's, and only checked. Runs for configtest
 * too, so `apachectl -t` reports an unwritable path; refuses to start
 * when the file is the only way to the balancer.
 */
static int hm_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    hm_conf_t *conf = hm_conf(s);
    int file_only = conf->max_servers == 0;
    int testing = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
    const char *path, *dir, *why = NULL;
    uid_t uid = ap_unixd_config.user_id;
    gid_t gid = ap_unixd_config.group_id;
    struct stat st;

    if (!conf->storage && !file_only) {
        return OK; /* no file is written */
    }
    path = ap_runtime_dir_relative(ptemp, conf->storage ? conf->storage : HB_STORAGE_DEFAULT);
    dir = ap_make_dirstr_parent(ptemp, path);
    if (!conf->storage && stat(dir, &st) != 0 && geteuid() == 0) {
        if (testing) {
            /* Made at start-up; its parent must be there for that. */
            dir = ap_make_dirstr_parent(ptemp, apr_pstrndup(ptemp, dir, strlen(dir) - 1));
        } else if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            why = apr_psprintf(ptemp, "cannot create %s: %s", dir, strerror(errno));
        }
    }
    if (!why && !conf->storage && !testing && geteuid() == 0 && stat(dir, &st) == 0 &&
        (st.st_uid != uid || st.st_gid != gid) && chown(dir, uid, gid) != 0) {
        why = apr_psprintf(ptemp, "cannot give %s to User: %s", dir, strerror(errno));
    }
    if (!why && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        why = apr_psprintf(ptemp, "directory %s does not exist", dir);
    } else if (!why) {
        int writable;
        if (geteuid() == 0) {
            writable = uid == 0 || (st.st_uid == uid && (st.st_mode & S_IWUSR)) ||
                       (st.st_gid == gid && (st.st_mode & S_IWGRP)) || (st.st_mode & S_IWOTH) ||
                       (!conf->storage && testing); /* ours: given to User at start-up */
        } else {
            writable = access(dir, W_OK) == 0;
        }
        if (!writable) {
            why = apr_psprintf(ptemp,
                               "directory %s is not writable by user %s (User); give it to "
                               "that user, or leave HeartbeatStorage unset to use %s",
                               dir, ap_unixd_config.user_name ? ap_unixd_config.user_name : "?",
                               ap_runtime_dir_relative(ptemp, HB_STORAGE_DEFAULT));
        }
    }
    if (!why) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_STARTUP | (file_only ? APLOG_EMERG : APLOG_WARNING), 0, s,
                 "HM0212: HeartbeatStorage %s cannot be written: %s%s", path, why,
                 file_only ? "; with HeartbeatMaxServers 0 the file is the only table, so the "
                             "server does not start"
                           : "; the shared-memory table works, the file will not be written");
    return file_only ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

static int hm_post_config(apr_pool_t *p, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    hm_conf_t *conf = hm_conf(s);
    hm_admit_policy_t policy;
    hb_log_t log = {hm_log_print, s};
    unsigned int capacity;
    apr_status_t rv;
    int rc;

    hm_exported_table = NULL;
    hm_exported_conf = NULL;
    hm_exported_path = NULL;
    hm_election = NULL;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    conf->s = s;
    if (conf->max_servers < 0) {
        conf->max_servers = HM_DEFAULT_MAX_SERVERS;
    }
    /* An entry may give way to a new origin once it has missed what the
     * balancer would call fresh: a third of the expiry, 1 to 10 s (stock's
     * 30 s expiry gives stock's 10 s freshness). */
    conf->stale_after = conf->expiry / 3;
    if (conf->stale_after < apr_time_from_sec(1)) {
        conf->stale_after = apr_time_from_sec(1);
    }
    if (conf->stale_after > HM_DEFAULT_STALE) {
        conf->stale_after = HM_DEFAULT_STALE;
    }
    /* Resolved now, not when the directive was read, so DefaultRuntimeDir
     * applies wherever it stands in the configuration. */
    conf->storage_path =
        ap_runtime_dir_relative(p, conf->storage ? conf->storage : HB_STORAGE_DEFAULT);
    conf->write_file = conf->storage != NULL || conf->max_servers == 0;

    /* File mode still collects into shared memory first: the POST handler
     * runs in any child and must reach the same table as the receiver. */
    capacity = conf->max_servers > 0 ? (unsigned int)conf->max_servers : HM_FILE_MODE_CAPACITY;
    conf->table = hm_get_table(s, conf, capacity);
    if (!conf->table) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    memset(&policy, 0, sizeof(policy));
    policy.table = conf->table;
    policy.stale_after = conf->stale_after;
    policy.keys = (const hb_secret_t *)conf->keys->elts;
    policy.nkeys = (unsigned int)conf->keys->nelts;
    policy.migrate = conf->auth_migrate;
    policy.auth_window = conf->auth_window;
    policy.allow = (apr_ipsubnet_t *const *)conf->allow->elts;
    policy.nallow = (unsigned int)conf->allow->nelts;
    policy.max_per_addr =
        conf->max_per_addr < 0 ? HM_DEFAULT_MAX_PER_ADDRESS : (unsigned int)conf->max_per_addr;
    conf->admit = hm_admit_create(p, &policy, &log);
    hm_exported_conf = conf;
    if (conf->max_servers > 0) {
        hm_exported_table = conf->table;
    }
    if (conf->write_file) {
        hm_exported_path = conf->storage_path;
    }
    apr_pool_cleanup_register(p, conf, hm_save_table, apr_pool_cleanup_null);

    if (conf->listens->nelts == 0) {
        return OK;
    }
    if ((rc = hm_listen_bind_all(s, conf)) != OK) {
        return rc;
    }
    /* A new election per generation, in this generation's pool. */
    rv = hb_elect_create(&hm_election, "mod_heartmonitor", p, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "HM0215: cannot create shared memory for the receiver election");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static void hm_child_init(apr_pool_t *pchild, server_rec *s)
{
    hm_receiver_child_init(pchild, s, hm_election);
    hm_handlers_child_init(pchild, s);
}

/* Named as the optional functions they implement (mod_heartmonitor.h). */
static hm_table_t *hm_shared_table(void)
{
    return hm_exported_table;
}

static const char *hm_storage_path(void)
{
    return hm_exported_path;
}

static const hb_secret_t *hm_auth_keys(unsigned int *n, apr_interval_time_t *window)
{
    if (!hm_exported_conf) {
        *n = 0;
        return NULL;
    }
    *n = (unsigned int)hm_exported_conf->keys->nelts;
    *window = hm_exported_conf->auth_window;
    return (const hb_secret_t *)hm_exported_conf->keys->elts;
}

static void hm_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(hm_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(hm_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(hm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    hm_register_status_hook();
    APR_REGISTER_OPTIONAL_FN(hm_shared_table);
    APR_REGISTER_OPTIONAL_FN(hm_storage_path);
    APR_REGISTER_OPTIONAL_FN(hm_auth_keys);
}

AP_DECLARE_MODULE(heartmonitor) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, hm_create_server_config, NULL, hm_cmds, hm_register_hooks,
};
