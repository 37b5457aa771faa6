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
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "unixd.h"

#include "apr_lib.h"
#include "apr_poll.h"
#include "apr_strings.h"
#include "apr_time.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* One system call per batch instead of one per datagram: under a flood the
 * receiver's cost is almost all syscall entry. APR passes _GNU_SOURCE. */
#if defined(__linux__) && defined(_GNU_SOURCE)
#define HM_HAVE_RECVMMSG 1
#endif

#include "hb_auth.h"
#include "hb_config.h"
#include "hb_elect.h"
#include "hb_log.h"
#include "hb_net.h"
#include "hb_packet.h"
#include "hb_throttle.h"
#include "hm_admit.h"
#include "hm_pace.h"
#include "hm_ratelimit.h"
#include "hm_shm.h"
#include "hm_storage.h"
#include "hm_private.h"
#include "mod_heartmonitor.h"

#define HM_PROC_KEY_SHM   "mod_heartmonitor.shm"
#define HM_PROC_KEY_SOCKS "mod_heartmonitor.sockets"
#define HM_RECV_BATCH     1024
#define HM_RECV_VEC       64
#define HM_COALESCE_MIN   apr_time_from_msec(1)
#define HM_COALESCE_MAX   apr_time_from_msec(20)
#define HM_DGRAM_BUDGET   2048 /* receive-buffer bytes one queued datagram may take */
/* Datagrams per wait: 128 to 256 cost least per packet on the benchmark VM
 * (fewer wake-ups than 64, and 1024 was no cheaper). */
#define HM_PACE_TARGET   256
#define HM_RCVBUF        (4 * 1024 * 1024)
#define HM_POLL_TIMEOUT  apr_time_from_sec(1)
#define HM_REWRITE_EVERY apr_time_from_sec(5) /* storage rewritten unchanged */
/* Writes for state changes, at most this often: a flapping origin must not
 * make the receiver rewrite a large file for every packet. */
#define HM_STATE_WRITE_GAP apr_time_from_msec(20)
#define HM_RL_SOURCES      4096 /* addresses the rate limiter tracks at once */
#define HM_LOG_LINE_MAX    1024

/* This generation's table and file, for the optional functions. */
static hm_table_t *hm_exported_table;
static const char *hm_exported_path;

hm_conf_t *hm_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &heartmonitor_module);
}

static void *hm_create_server_config(apr_pool_t *p, server_rec *s)
{
    hm_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->listens = apr_array_make(p, 2, sizeof(hm_listen_t));
    conf->max_servers = -1;
    conf->huge = -1;
    conf->storage_interval = HM_DEFAULT_STORAGE_EVERY;
    conf->expiry = HM_DEFAULT_EXPIRY;
    conf->stale_after = HM_DEFAULT_STALE;
    conf->keys = apr_array_make(p, 2, sizeof(hb_secret_t));
    conf->auth_window = HM_DEFAULT_AUTH_WINDOW;
    conf->allow = apr_array_make(p, 2, sizeof(apr_ipsubnet_t *));
    conf->rate_limit = HM_DEFAULT_RATE_LIMIT;
    return conf;
}

/* ---------------------------------------------------------------- config */

static const char *hm_cmd_listen(cmd_parms *cmd, void *dconf, const char *arg, const char *opt)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_sockaddr_t *sa;
    hm_listen_t *l;
    int i;

    if (err || (err = hb_config_addr(cmd->pool, cmd->cmd->name, arg, 1, &sa)) != NULL) {
        return err;
    }
    if (opt && strcasecmp(opt, "shared")) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an option (the only one is 'shared')",
                            cmd->cmd->name, opt);
    }
    /* Two sockets on one unicast port split the datagrams between them,
     * so the first server would silently starve: only a multicast group
     * gives every member its own copy. */
    if (opt && !hb_is_multicast(&sa->sa)) {
        return apr_psprintf(cmd->pool,
                            "%s: %s shared: only a multicast group can be shared by several "
                            "servers (on a unicast port each datagram reaches only one of them)",
                            cmd->cmd->name, arg);
    }
    for (i = 0; i < conf->listens->nelts; i++) {
        hm_listen_t *o = &APR_ARRAY_IDX(conf->listens, i, hm_listen_t);
        if (apr_sockaddr_equal(o->sa, sa) && o->sa->port == sa->port) {
            return apr_psprintf(cmd->pool, "%s: %s is given twice", cmd->cmd->name, arg);
        }
    }
    l = apr_array_push(conf->listens);
    l->text = apr_pstrdup(cmd->pool, arg);
    l->sa = sa;
    l->sock = NULL;
    l->shared = opt != NULL;
    return NULL;
}

static const char *hm_cmd_max_servers(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    uint64_t v;

    if (err) {
        return err;
    }
    /* Stock refused 1..9 for no stated reason; any size is fine here. */
    if (hb_parse_u64(arg, strlen(arg), 1000000, &v) != HB_OK) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a number from 0 (file only) to 1000000",
                            cmd->cmd->name, arg);
    }
    conf->max_servers = (int)v;
    return NULL;
}

static const char *hm_cmd_huge_pages(cmd_parms *cmd, void *dconf, const char *arg)
{
    static const char *const words[] = {"try", "on", "off", NULL};
    static const hm_huge_e modes[] = {HM_HUGE_TRY, HM_HUGE_ON, HM_HUGE_OFF};
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    int i;

    if (!err && !(err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &i))) {
        conf->huge = modes[i];
    }
    return err;
}

static const char *hm_cmd_storage(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s: the path is empty", cmd->cmd->name);
    }
    /* mod_lbmethod_heartbeat declares this directive too and httpd hands it
     * to both: resolving happens at post_config, once DefaultRuntimeDir is
     * known wherever it appears in the file. */
    conf->storage = arg;
    return NULL;
}

static const char *hm_cmd_time(cmd_parms *cmd, const char *arg, apr_interval_time_t min,
                               apr_interval_time_t max, apr_interval_time_t *out)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    return err ? err : hb_config_time(cmd->pool, cmd->cmd->name, arg, min, max, out);
}

static const char *hm_cmd_storage_interval(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    return hm_cmd_time(cmd, arg, apr_time_from_msec(100), apr_time_from_sec(3600),
                       &conf->storage_interval);
}

static const char *hm_cmd_expiry(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    return hm_cmd_time(cmd, arg, apr_time_from_sec(1), apr_time_from_sec(86400), &conf->expiry);
}

static const char *hm_cmd_secret(cmd_parms *cmd, void *dconf, const char *path, const char *id)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char why[512];
    hb_secret_t k;
    int i;

    if (err) {
        return err;
    }
    /* Read now, as root: children inherit the keys, the files stay
     * readable by root alone. */
    if (hb_secret_load(&k, ap_server_root_relative(cmd->temp_pool, path), id, why, sizeof(why)) !=
        0) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why);
    }
    for (i = 0; i < conf->keys->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(conf->keys, i, hb_secret_t).id, k.id)) {
            return apr_psprintf(cmd->pool, "%s: key id '%s' is given twice", cmd->cmd->name, k.id);
        }
    }
    *(hb_secret_t *)apr_array_push(conf->keys) = k;
    return NULL;
}

static const char *hm_cmd_auth_mode(cmd_parms *cmd, void *dconf, const char *arg)
{
    static const char *const words[] = {"required", "migrate", NULL};
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    int i;

    if (!err && !(err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &i))) {
        conf->auth_migrate = i == 1;
    }
    return err;
}

static const char *hm_cmd_auth_window(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    return hm_cmd_time(cmd, arg, apr_time_from_sec(1), apr_time_from_sec(3600), &conf->auth_window);
}

static const char *hm_cmd_allow(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *ip = apr_pstrdup(cmd->pool, arg), *mask = strchr(ip, '/');
    apr_ipsubnet_t *sub;

    if (err) {
        return err;
    }
    if (mask) {
        *mask++ = '\0';
    }
    /* Addresses only: a name here would be looked up at every restart and
     * could silently change what is trusted. */
    if (!apr_isdigit(*ip) && !strchr(ip, ':')) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an IP address or CIDR range",
                            cmd->cmd->name, arg);
    }
    if (apr_ipsubnet_create(&sub, ip, mask, cmd->pool) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an IP address or CIDR range",
                            cmd->cmd->name, arg);
    }
    *(apr_ipsubnet_t **)apr_array_push(conf->allow) = sub;
    return NULL;
}

static const char *hm_cmd_rate_limit(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    uint64_t v;

    if (err) {
        return err;
    }
    if (hb_parse_u64(arg, strlen(arg), 1000000, &v) != HB_OK) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' must be packets per second per source, 0 (off) to 1000000",
                            cmd->cmd->name, arg);
    }
    conf->rate_limit = (unsigned int)v;
    return NULL;
}

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

/* ------------------------------------------------------------- sockets */

static apr_status_t hm_open_socket(server_rec *s, hm_listen_t *l, apr_pool_t *pp)
{
    apr_socket_t *sock;
    apr_status_t rv;

    rv = apr_socket_create(&sock, l->sa->family, SOCK_DGRAM, APR_PROTO_UDP, pp);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Only on request: without it a second server given the same port
     * fails to start (HM0206) instead of taking the datagrams away from
     * the first. A graceful restart needs no reuse: the socket is kept. */
    if (l->shared) {
        apr_socket_opt_set(sock, APR_SO_REUSEADDR, 1);
    }
    /* Bursts from many origins arrive together; let the kernel hold them.
     * The parent is root here, so it may go past net.core.rmem_max. */
    apr_socket_opt_set(sock, APR_SO_RCVBUF, HM_RCVBUF);
#ifdef SO_RCVBUFFORCE
    {
        apr_os_sock_t fd;
        int size = HM_RCVBUF;
        if (apr_os_sock_get(&fd, sock) == APR_SUCCESS) {
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        }
    }
#endif
    rv = apr_socket_bind(sock, l->sa);
    if (rv == APR_SUCCESS && hb_is_multicast(&l->sa->sa)) {
        rv = apr_mcast_join(sock, l->sa, NULL, NULL);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "HM0205: HeartbeatListen %s: cannot join the multicast group", l->text);
        }
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_set(sock, 0);
    }
    if (rv != APR_SUCCESS) {
        apr_socket_close(sock);
        return rv;
    }
    l->sock = sock;
    return APR_SUCCESS;
}

/*
 * Sockets are bound once by the parent and reused by every generation with
 * the same HeartbeatListen, so a graceful restart neither races another
 * bind of the same port nor drops packets while it rebinds.
 */
static int hm_bind_all(server_rec *s, hm_conf_t *conf)
{
    apr_pool_t *pp = s->process->pool;
    apr_hash_t *socks = NULL;
    apr_hash_t *used;
    apr_hash_index_t *hi;
    const char **keys;
    int i;

    apr_pool_userdata_get((void **)&socks, HM_PROC_KEY_SOCKS, pp);
    if (!socks) {
        socks = apr_hash_make(pp);
        apr_pool_userdata_set(socks, HM_PROC_KEY_SOCKS, apr_pool_cleanup_null, pp);
    }
    used = apr_hash_make(s->process->pconf);
    keys = apr_palloc(s->process->pconf, sizeof(*keys) * (apr_size_t)conf->listens->nelts);
    for (i = 0; i < conf->listens->nelts; i++) {
        hm_listen_t *l = &APR_ARRAY_IDX(conf->listens, i, hm_listen_t);
        char ip[HM_IP_MAX];

        apr_sockaddr_ip_getbuf(ip, sizeof(ip), l->sa);
        keys[i] = apr_psprintf(s->process->pconf, "%s|%u|%d", ip, (unsigned)l->sa->port, l->shared);
        apr_hash_set(used, keys[i], APR_HASH_KEY_STRING, l);
    }
    /* Let go of what the new configuration no longer listens on first:
     * without SO_REUSEADDR, a port moved from one local address to another
     * could not be bound while the old socket holds it. */
    for (hi = apr_hash_first(s->process->pconf, socks); hi; hi = apr_hash_next(hi)) {
        const void *key;
        void *sock;
        apr_hash_this(hi, &key, NULL, &sock);
        if (!apr_hash_get(used, key, APR_HASH_KEY_STRING)) {
            apr_socket_close(sock);
            apr_hash_set(socks, key, APR_HASH_KEY_STRING, NULL);
        }
    }
    for (i = 0; i < conf->listens->nelts; i++) {
        hm_listen_t *l = &APR_ARRAY_IDX(conf->listens, i, hm_listen_t);
        apr_socket_t *sock = apr_hash_get(socks, keys[i], APR_HASH_KEY_STRING);
        apr_status_t rv;

        if (sock) {
            l->sock = sock;
            continue;
        }
        rv = hm_open_socket(s, l, pp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "HM0206: HeartbeatListen %s: cannot listen for heartbeats%s", l->text,
                         rv == APR_FROM_OS_ERROR(EADDRINUSE)
                             ? " (another server on this host has the port; several monitors "
                               "can share a multicast group with 'HeartbeatListen group:port "
                               "shared' in each)"
                             : "");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* The key outlives this generation, as the socket does. */
        apr_hash_set(socks, apr_pstrdup(pp, keys[i]), APR_HASH_KEY_STRING, l->sock);
    }
    return OK;
}

/* ------------------------------------------------------------ receiver */

/* Receive buffers, one more byte than a packet may hold so that an
 * oversized datagram is seen as such instead of being cut to fit. */
typedef struct {
    char data[HM_RECV_VEC][HB_PACKET_MAX + 2];
    apr_sockaddr_t from[HM_RECV_VEC];
#ifdef HM_HAVE_RECVMMSG
    struct iovec iov[HM_RECV_VEC];
    struct mmsghdr msg[HM_RECV_VEC];
    hm_pending_t pend[HM_RECV_VEC];
    int ok[HM_RECV_VEC];
#endif
} hm_rxbuf_t;

typedef struct {
    hm_conf_t *conf;
    server_rec *s;
    apr_pool_t *pool;
    apr_pollset_t *pollset;
    hm_rxbuf_t *bufs;
    volatile int stop;
    apr_time_t last_write;
    apr_time_t last_expire;
    apr_time_t expire_due; /* no entry can expire before this */
    hm_pace_t pace;        /* how long to let datagrams queue up between reads */
    hm_ratelimit_t *rl;    /* HeartbeatRateLimit, per source; NULL = off */
    uint64_t written_version;
    uint64_t written_changes; /* HM_CTR_STATE_CHANGES in the file last written */
} hm_receiver_t;

/* This child's part in the election, guarded by hm_rx_guard: the receiver
 * while it runs, and whether the child is stopping. */
static hb_elect_t *hb_election; /* this generation's, made by the parent */
static pthread_mutex_t hm_rx_guard = PTHREAD_MUTEX_INITIALIZER;
static hm_receiver_t *hm_rx;
static int hm_child_stopping;
static pthread_t hm_standby;
static int hm_standby_started;

static uint64_t hm_table_version(const hm_table_t *t)
{
    return hm_table_counter(t, HM_CTR_ACCEPTED) + hm_table_counter(t, HM_CTR_EXPIRED);
}

/* When the next expiry scan is due. A scan reads every slot, so scan only
 * when an entry may have expired (the oldest entry's time plus the
 * expiry), at most once a second (a quarter of a shorter expiry), and at
 * least once per expiry in case the clock jumped. */
static apr_time_t hm_scan_due(const hm_receiver_t *rx)
{
    const hm_conf_t *conf = rx->conf;
    apr_interval_time_t scan_every = conf->expiry / 4;
    apr_time_t due = rx->expire_due < rx->last_expire + conf->expiry
                         ? rx->expire_due
                         : rx->last_expire + conf->expiry;

    if (scan_every > apr_time_from_sec(1)) {
        scan_every = apr_time_from_sec(1);
    }
    return due > rx->last_expire + scan_every ? due : rx->last_expire + scan_every;
}

/* When the storage file is next due, if it is written at all: at once
 * (HM_STATE_WRITE_GAP after the last write at the most) when an origin
 * appeared or changed state, since a drain must not wait for the next
 * interval; after HeartbeatStorageInterval once the counts changed; and
 * every few seconds even when nothing changed, so the stock lastseen field
 * keeps counting for stock readers. */
static apr_time_t hm_write_due(const hm_receiver_t *rx)
{
    const hm_conf_t *conf = rx->conf;
    apr_interval_time_t every = conf->storage_interval;

    if (hm_table_counter(conf->table, HM_CTR_STATE_CHANGES) != rx->written_changes &&
        every > HM_STATE_WRITE_GAP) {
        every = HM_STATE_WRITE_GAP;
    }

    if (hm_table_version(conf->table) == rx->written_version && every < HM_REWRITE_EVERY) {
        every = HM_REWRITE_EVERY;
    }
    return rx->last_write + every;
}

static void hm_maybe_write(hm_receiver_t *rx, apr_time_t now)
{
    hm_conf_t *conf = rx->conf;
    uint64_t version, changes;
    int rv;
    apr_pool_t *tmp;

    if (now >= hm_scan_due(rx)) {
        int64_t oldest;
        hm_table_expire_ex(conf->table, now, conf->expiry, &oldest);
        rx->last_expire = now;
        /* Empty: a new entry is at least as new as now. */
        rx->expire_due = (oldest == INT64_MAX ? now : oldest) + conf->expiry;
    }
    if (!conf->write_file || now < hm_write_due(rx)) {
        return;
    }
    version = hm_table_version(conf->table);
    changes = hm_table_counter(conf->table, HM_CTR_STATE_CHANGES);
    apr_pool_create(&tmp, rx->pool);
    rv = hm_storage_write(conf->storage_path, conf->table, now, conf->expiry, tmp);
    apr_pool_destroy(tmp);
    rx->last_write = now;
    /* Also on failure: the retry then waits for HeartbeatStorageInterval. */
    rx->written_changes = changes;
    /* Whether the file was failing lives in the table, which every child
     * and generation shares: the receiver moves between children, the
     * report should not repeat with it. */
    if (rv != 0) {
        hm_table_counter_add(conf->table, HM_CTR_STORAGE_ERRORS, 1);
        if (!hm_table_condition(conf->table, HM_COND_STORAGE_FAILING, 1)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, rx->s,
                         "HM0207: cannot write HeartbeatStorage %s; the shared table keeps "
                         "working, retrying every HeartbeatStorageInterval (failures are "
                         "counted as storage_errors on the status page)",
                         conf->storage_path);
        }
        return;
    }
    hm_table_counter_add(conf->table, HM_CTR_STORAGE_WRITES, 1);
    if (hm_table_condition(conf->table, HM_COND_STORAGE_FAILING, 0)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, rx->s,
                     "HM0208: HeartbeatStorage %s is written again", conf->storage_path);
    }
    rx->written_version = version;
}

/* How long poll may sleep: until hm_maybe_write has something to do (an
 * expiry scan or a storage write), at most HM_POLL_TIMEOUT in case the
 * clock jumps. hm_receiver_stop wakes the poll itself. */
static apr_interval_time_t hm_poll_timeout(const hm_receiver_t *rx, apr_time_t now)
{
    apr_time_t due = hm_scan_due(rx);

    if (rx->conf->write_file && hm_write_due(rx) < due) {
        due = hm_write_due(rx);
    }
    if (due <= now) {
        return 0;
    }
    /* Whole milliseconds, rounded up: epoll counts in those, and a
     * timeout rounded down to 0 would spin until the time is due. */
    due = (due - now + 999) / 1000 * 1000;
    return due < HM_POLL_TIMEOUT ? due : HM_POLL_TIMEOUT;
}

/* The buffers and, after them, rl_size bytes for the rate limiter: every
 * packet touches both, so they share one huge page (hm_shm.c). */
static hm_rxbuf_t *hm_rxbuf_init(apr_pool_t *pool, apr_size_t rl_size, void **rl_mem)
{
    apr_size_t head = APR_ALIGN(sizeof(hm_rxbuf_t), 64);
    hm_rxbuf_t *b = hm_private_huge(head + rl_size, pool);

    *rl_mem = (char *)b + head;
#ifdef HM_HAVE_RECVMMSG
    int i;

    for (i = 0; i < HM_RECV_VEC; i++) {
        b->iov[i].iov_base = b->data[i];
        b->iov[i].iov_len = sizeof(b->data[i]);
        b->msg[i].msg_hdr.msg_name = &b->from[i].sa;
        b->msg[i].msg_hdr.msg_iov = &b->iov[i];
        b->msg[i].msg_hdr.msg_iovlen = 1;
    }
#endif
    return b;
}

/* apr_socket_recvfrom and recvmmsg fill only the raw sockaddr; the family
 * and address pointer are what apr_sockaddr_ip_getbuf and
 * apr_ipsubnet_test need. */
static void hm_fix_from(apr_sockaddr_t *from)
{
    from->family = from->sa.sin.sin_family;
    from->ipaddr_ptr = from->family == AF_INET6 ? (void *)&from->sa.sin6.sin6_addr
                                                : (void *)&from->sa.sin.sin_addr;
    from->ipaddr_len = from->family == AF_INET6 ? sizeof(struct in6_addr) : sizeof(struct in_addr);
}

#ifdef HM_HAVE_RECVMMSG
static int hm_drain(hm_receiver_t *rx, apr_socket_t *sock)
{
    hm_rxbuf_t *b = rx->bufs;
    apr_os_sock_t fd;
    apr_time_t now;
    int n, i, got;

    if (apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return 0;
    }
    for (n = 0; n < HM_RECV_BATCH; n += got) {
        /* The kernel shortens msg_namelen to what it wrote; the rest of
         * the headers was set up once by hm_rxbuf_init. */
        for (i = 0; i < HM_RECV_VEC; i++) {
            b->msg[i].msg_hdr.msg_namelen = sizeof(b->from[i].sa);
        }
        got = recvmmsg(fd, b->msg, HM_RECV_VEC, MSG_DONTWAIT, NULL);
        if (got <= 0) {
            /* EAGAIN: drained. Anything else is transient on UDP. */
            return n;
        }
        /* Check the whole batch, then let the table's cache misses for
         * all of it overlap, then apply it in arrival order. One clock
         * reading serves the batch: it was read in microseconds. */
        now = apr_time_now();
        for (i = 0; i < got; i++) {
            hm_fix_from(&b->from[i]);
            b->ok[i] = hm_admit_check(rx->conf->admit, rx->rl, b->data[i], b->msg[i].msg_len,
                                      &b->from[i], 0, now, &b->pend[i]) == HM_REASON_OK;
            if (b->ok[i]) {
                hm_table_prefetch(rx->conf->table, &b->pend[i].key, 0);
            }
        }
        for (i = 0; i < got; i++) {
            if (b->ok[i]) {
                hm_table_prefetch(rx->conf->table, &b->pend[i].key, 1);
            }
        }
        for (i = 0; i < got; i++) {
            if (b->ok[i]) {
                hm_admit_commit(rx->conf->admit, &b->pend[i]);
            }
        }
        if (got < HM_RECV_VEC) {
            return n + got;
        }
    }
    return n;
}
#else
static int hm_drain(hm_receiver_t *rx, apr_socket_t *sock)
{
    char *buf = rx->bufs->data[0];
    apr_sockaddr_t *from = &rx->bufs->from[0];
    int n;

    for (n = 0; n < HM_RECV_BATCH; n++) {
        apr_size_t len = sizeof(rx->bufs->data[0]);

        memset(from, 0, sizeof(*from));
        if (apr_socket_recvfrom(from, sock, 0, buf, &len) != APR_SUCCESS) {
            /* EAGAIN: drained. Anything else is transient on UDP. */
            return n;
        }
        hm_fix_from(from);
        hm_admit(rx->conf->admit, rx->rl, buf, len, from, 0, apr_time_now());
    }
    return n;
}
#endif

/* Read every listening socket once; returns the datagrams read. */
static int hm_drain_all(hm_receiver_t *rx)
{
    int i, got = 0;

    for (i = 0; i < rx->conf->listens->nelts; i++) {
        got += hm_drain(rx, APR_ARRAY_IDX(rx->conf->listens, i, hm_listen_t).sock);
    }
    return got;
}

/* The smallest receive buffer the receiver reads from, as SO_RCVBUF
 * reports it, for hm_pace_target. */
static long hm_min_rcvbuf(const hm_conf_t *conf)
{
    long min = -1;
    int i;

    for (i = 0; i < conf->listens->nelts; i++) {
        apr_os_sock_t fd;
        int size = 0;
        socklen_t len = sizeof(size);
        if (apr_os_sock_get(&fd, APR_ARRAY_IDX(conf->listens, i, hm_listen_t).sock) ==
                APR_SUCCESS &&
            getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &len) == 0 && (min < 0 || size < min)) {
            min = size;
        }
    }
    return min;
}

static void hm_receiver_run(hm_receiver_t *rx)
{
    /* Until the child exits, or a newer generation's receiver has taken
     * over after a graceful restart (noticed at the next wake-up: at most
     * a second when idle). */
    while (!rx->stop && !hb_elect_superseded(hb_election)) {
        const apr_pollfd_t *fds = NULL;
        apr_int32_t nfds = 0, i;
        int got = 0, waited = 0, gathered;

        if (apr_pollset_poll(rx->pollset, hm_poll_timeout(rx, apr_time_now()), &nfds, &fds) ==
            APR_SUCCESS) {
            for (i = 0; i < nfds; i++) {
                got += hm_drain(rx, fds[i].desc.s);
            }
        }
        /* While datagrams keep coming, read them without polling first.
         * After a read that found less than a vector's worth, sleep a
         * while (1 to 20 ms, see hm_pace.h) and read what gathered
         * meanwhile; after a bigger one, read again at once (measured:
         * 0.63 instead of 0.88 us per packet at 50k/s on the benchmark
         * VM). A heartbeat applied a few milliseconds later changes
         * nothing. Back to poll when a wait gathers nothing. */
        gathered = got;
        while (got > 0 && !rx->stop && !hb_elect_superseded(hb_election)) {
            hm_maybe_write(rx, apr_time_now());
            if (got < HM_RECV_VEC) {
                if (waited) {
                    hm_pace_update(&rx->pace, gathered);
                }
                apr_sleep(rx->pace.wait);
                waited = 1;
                gathered = 0;
            }
            got = hm_drain_all(rx);
            gathered += got;
        }
        hm_maybe_write(rx, apr_time_now());
    }
    /* One last write so the file is current when the next receiver takes
     * over. */
    if (rx->conf->write_file) {
        rx->last_write = 0;
        rx->written_version = (uint64_t)-1;
        hm_maybe_write(rx, apr_time_now());
    }
}

static hm_receiver_t *hm_receiver_init(server_rec *s, hm_conf_t *conf)
{
    hm_receiver_t *rx;
    apr_pool_t *pool;
    apr_status_t rv;
    void *rl_mem;
    int i;

    /* A pool of its own, not the child's: the receiver may still be
     * finishing while the child's pool is cleaned up. */
    rv = apr_pool_create(&pool, NULL);
    if (rv != APR_SUCCESS) {
        pool = NULL;
        goto fail;
    }
    apr_pool_tag(pool, "heartmonitor_receiver");
    rx = apr_pcalloc(pool, sizeof(*rx));
    rx->conf = conf;
    rx->s = s;
    rx->pool = pool;
    rx->written_version = (uint64_t)-1;
    rx->bufs =
        hm_rxbuf_init(pool, conf->rate_limit ? hm_ratelimit_size(HM_RL_SOURCES) : 0, &rl_mem);
    hm_pace_init(&rx->pace, HM_COALESCE_MIN, HM_COALESCE_MAX,
                 hm_pace_target(hm_min_rcvbuf(conf), HM_DGRAM_BUDGET, HM_PACE_TARGET));
    if (conf->rate_limit) {
        /* Burst of two seconds' worth: a sender restarting or a proxy
         * catching up must not be cut off. */
        rx->rl = hm_ratelimit_init(rl_mem, HM_RL_SOURCES, conf->rate_limit, 2 * conf->rate_limit);
    }
    rv = apr_pollset_create(&rx->pollset, conf->listens->nelts + 1, pool, APR_POLLSET_WAKEABLE);
    for (i = 0; rv == APR_SUCCESS && i < conf->listens->nelts; i++) {
        hm_listen_t *l = &APR_ARRAY_IDX(conf->listens, i, hm_listen_t);
        apr_pollfd_t pfd;
        memset(&pfd, 0, sizeof(pfd));
        pfd.p = pool;
        pfd.desc_type = APR_POLL_SOCKET;
        pfd.desc.s = l->sock;
        pfd.reqevents = APR_POLLIN;
        rv = apr_pollset_add(rx->pollset, &pfd);
    }
    if (rv == APR_SUCCESS) {
        return rx;
    }
fail:
    ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "HM0209: cannot set up the heartbeat receiver");
    if (pool) {
        apr_pool_destroy(pool);
    }
    return NULL;
}

static void hm_thread_name(const char *name)
{
#ifdef __linux__
    /* So that top -H and ps -L show which thread this is. */
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}

/* One per child: waits to be elected, then is the receiver until the
 * child stops. */
static void *hm_standby_main(void *data)
{
    server_rec *s = data;
    hm_conf_t *conf = hm_conf(s);
    hm_receiver_t *rx;
    hb_elect_e won;

    hm_thread_name("hm-standby");
    won = hb_elect_wait(hb_election);
    if (won == HB_ELECT_ERROR) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s,
                     "HM0210: cannot take part in the receiver election");
        return NULL;
    }
    if (won == HB_ELECT_WON_FROM_DEAD) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "HM0211: the child running the heartbeat receiver died; this one "
                     "(pid %" APR_PID_T_FMT ") took over",
                     getpid());
    }
    pthread_mutex_lock(&hm_rx_guard);
    /* A child of an older generation that wins after its receiver left
     * has nothing to do: the newer one receives. */
    rx = hm_child_stopping || hb_elect_claim(hb_election) != 0 ? NULL : hm_receiver_init(s, conf);
    hm_rx = rx;
    pthread_mutex_unlock(&hm_rx_guard);
    if (rx) {
        hm_thread_name("hm-receiver");
        hm_receiver_run(rx);
        pthread_mutex_lock(&hm_rx_guard);
        hm_rx = NULL;
        pthread_mutex_unlock(&hm_rx_guard);
        apr_pool_destroy(rx->pool);
    }
    /* Stopping, or this child cannot receive: the next waiter's turn. */
    hb_elect_release(hb_election);
    return NULL;
}

/* When the child exits: stop the receiver if this child runs it, so that
 * another child's standby takes over. Not when it starts a graceful stop:
 * it keeps receiving while it finishes its requests, and after a graceful
 * restart until the new generation's receiver is up. */
static void hm_receiver_stop(void)
{
    hm_receiver_t *rx;

    pthread_mutex_lock(&hm_rx_guard);
    hm_child_stopping = 1;
    rx = hm_rx;
    if (rx) {
        rx->stop = 1;
        apr_pollset_wakeup(rx->pollset);
    }
    pthread_mutex_unlock(&hm_rx_guard);
    /* A standby still waiting is not joined: it can only wake to find the
     * child stopping, and dies with the process. */
    if (rx && hm_standby_started) {
        pthread_join(hm_standby, NULL);
        hm_standby_started = 0;
    }
}

static apr_status_t hm_child_cleanup(void *data)
{
    (void)data;
    hm_receiver_stop();
    return APR_SUCCESS;
}

static void hm_child_init(apr_pool_t *pchild, server_rec *s)
{
    hm_conf_t *conf = hm_conf(s);
    int rc;

    if (!hb_election || conf->listens->nelts == 0) {
        return;
    }
    hm_child_stopping = 0;
    rc = pthread_create(&hm_standby, NULL, hm_standby_main, s);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rc, s,
                     "HM0216: cannot start this child's heartbeat receiver thread");
        return;
    }
    hm_standby_started = 1;
    apr_pool_cleanup_register(pchild, NULL, hm_child_cleanup, apr_pool_cleanup_null);
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
    hm_exported_path = NULL;
    hb_election = NULL;
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
    conf->admit = hm_admit_create(p, &policy, &log);
    if (conf->max_servers > 0) {
        hm_exported_table = conf->table;
    }
    if (conf->write_file) {
        hm_exported_path = conf->storage_path;
    }

    if (conf->listens->nelts == 0) {
        return OK;
    }
    if ((rc = hm_bind_all(s, conf)) != OK) {
        return rc;
    }
    /* A new election per generation, in this generation's pool. */
    rv = hb_elect_create(&hb_election, "mod_heartmonitor", p, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "HM0215: cannot create shared memory for the receiver election");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
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

static void hm_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(hm_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(hm_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(hm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(hm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    hm_register_status_hook();
    APR_REGISTER_OPTIONAL_FN(hm_shared_table);
    APR_REGISTER_OPTIONAL_FN(hm_storage_path);
}

static const command_rec hm_cmds[] = {
    AP_INIT_TAKE12("HeartbeatListen", hm_cmd_listen, NULL, RSRC_CONF,
                   "address:port to receive heartbeats on (unicast or multicast, IPv4 or "
                   "[IPv6]), and 'shared' to let other servers on this host join the same "
                   "multicast group and port; may be repeated"),
    AP_INIT_TAKE1("HeartbeatMaxServers", hm_cmd_max_servers, NULL, RSRC_CONF,
                  "size of the shared-memory table (default 10); 0 keeps the table in "
                  "HeartbeatStorage only"),
    AP_INIT_TAKE1("HeartbeatHugePages", hm_cmd_huge_pages, NULL, RSRC_CONF,
                  "try (default: huge pages for a table of 1 MB or more, if the system has "
                  "some free), on (always, or fail to start) or off"),
    AP_INIT_TAKE1("HeartbeatStorage", hm_cmd_storage, NULL, RSRC_CONF,
                  "path of the heartbeat table file (default heartbeat/hb.dat in "
                  "DefaultRuntimeDir, a directory made for User)"),
    AP_INIT_TAKE1("HeartbeatStorageInterval", hm_cmd_storage_interval, NULL, RSRC_CONF,
                  "how often the storage file may be rewritten (default 1s)"),
    AP_INIT_TAKE12("HeartbeatSecret", hm_cmd_secret, NULL, RSRC_CONF,
                   "key file (mode 0600, owned by root) and optional key id; repeat for "
                   "several keys during a rotation: then only signed heartbeats are accepted"),
    AP_INIT_TAKE1("HeartbeatAuthMode", hm_cmd_auth_mode, NULL, RSRC_CONF,
                  "required (default with HeartbeatSecret) or migrate: accept unsigned "
                  "heartbeats too, shown as unsigned"),
    AP_INIT_TAKE1("HeartbeatAuthWindow", hm_cmd_auth_window, NULL, RSRC_CONF,
                  "how far a signed heartbeat's timestamp may be from our clock "
                  "(default 30s)"),
    AP_INIT_ITERATE("HeartbeatAllow", hm_cmd_allow, NULL, RSRC_CONF,
                    "addresses or CIDR ranges UDP heartbeats may come from (default: any)"),
    AP_INIT_TAKE1("HeartbeatRateLimit", hm_cmd_rate_limit, NULL, RSRC_CONF,
                  "UDP heartbeats accepted per second from one address (default 100, 0 = "
                  "no limit)"),
    AP_INIT_TAKE1("HeartbeatExpiry", hm_cmd_expiry, NULL, RSRC_CONF,
                  "age after which an origin that stopped sending leaves the table "
                  "(default 30s)"),
    {NULL}};

AP_DECLARE_MODULE(heartmonitor) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, hm_create_server_config, NULL, hm_cmds, hm_register_hooks,
};
