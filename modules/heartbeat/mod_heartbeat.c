/*
 * mod_heartbeat: the origin side. Every HeartbeatInterval, count this
 * server's ready and busy workers from the scoreboard and send
 * "v=1&ready=N&busy=M&port=P&seq=S&int=I&state=X" by UDP to every
 * HeartbeatAddress, followed by "&join=..." naming the balancers of
 * HeartbeatBalancer, if any.
 *
 * The periodic sender is a thread in one child, elected per generation
 * (hb_elect.h): httpd offers no parent-process timer to forked MPMs, and
 * mod_watchdog, which stock uses, wakes in 100 ms steps (a 250 ms interval
 * became 300 ms) and leaves a gap of up to a second at each graceful
 * restart. Ours sleeps until each beat is due on the monotonic clock, and
 * the old generation's sender keeps going until the new one's is up.
 * Saying "stopping" is split between the two sides of the fork:
 *  - the child reports state=stopping as soon as no process of the current
 *    generation accepts connections (a graceful stop quiesces them all),
 *    while the recycling of one child among several changes nothing;
 *  - the parent sends one last ready=0&state=stopping when its
 *    configuration pool is cleared, i.e. on every stop and restart.
 *
 * With HeartbeatResponseHeader on, every response also carries the load at
 * the moment it is sent (lbhb_load.h): the requests in flight in all
 * children, counted in shared memory as they come and go, and the ready
 * slots that leaves of what the last beat counted.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "scoreboard.h"

#include "apr_file_io.h"
#include "apr_network_io.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#endif

#include "hb_auth.h"
#include "hb_config.h"
#include "hb_elect.h"
#include "hb_net.h"
#include "hb_packet.h"
#include "hb_throttle.h"
#include "lbhb_load.h"

module AP_MODULE_DECLARE_DATA heartbeat_module;

#define HB_THREAD_STACK     (256 * 1024) /* one per child, parked in most of them */
#define HB_DEFAULT_INTERVAL apr_time_from_sec(1)
#define HB_MIN_INTERVAL     apr_time_from_msec(100)
#define HB_MAX_INTERVAL     apr_time_from_sec(3600)

typedef enum { HB_READY_IDLE = 0, HB_READY_SPARE } hb_ready_mode_e;

typedef struct {
    const char *text;   /* as configured, for log lines */
    apr_sockaddr_t *sa; /* resolved at configuration time */
    apr_socket_t *sock; /* opened once by the sender thread, reused */
    /* The address the proxy sees this origin's packets come from, named in
     * signed packets (addr=) so that a signature also proves which origin
     * a packet speaks for; learnt when the socket is opened. */
    char self[HB_ADDR_TEXT_MAX];
    int recverr; /* ICMP errors come back on the socket (unicast, Linux) */
    int refused; /* one of them said the monitor's port is closed */
} hb_dest_t;

typedef struct {
    apr_array_header_t *dests; /* hb_dest_t */
    apr_interval_time_t interval;
    int ttl; /* multicast hops; 0 = unset (1) */
    const char *source_text;
    apr_sockaddr_t *source; /* HeartbeatSource, or NULL */
    apr_port_t port;        /* HeartbeatPort; 0 = first Listen port */
    int port_set;
    hb_state_e state; /* HeartbeatState up|drain */
    hb_ready_mode_e ready_mode;
    int interval_set, ttl_set, state_set, ready_mode_set;
    hb_secret_t *key;    /* HeartbeatSecret: sign every packet (the last one given) */
    int response_header; /* HeartbeatResponseHeader on */
    int response_header_set;
    const char *state_file; /* HeartbeatStateFile: "drain" in it drains at run time */
    /* HeartbeatBalancer: the balancers this origin announces (join=), as
     * checked item by item, and the text every heartbeat carries, built
     * once here rather than per beat. */
    hb_join_set_t join;
    const char *join_text;
    size_t join_len;

    /* run time: the sender thread of the elected child, or the parent
     * when it says "stopping" at the end */
    apr_pool_t *sock_pool;
    hb_throttle_t send_errors;
    uint32_t last_ready; /* what the last beat said */
    int refused;         /* the last round found a monitor's port closed */
} hb_conf_t;

/* This child's part in the election. hb_guard covers the flag and the
 * wake-up pipe's use by hb_sender_stop. */
static hb_elect_t *hb_election; /* this generation's, made by the parent */
static pthread_mutex_t hb_guard = PTHREAD_MUTEX_INITIALIZER;
static volatile int hb_stopping;
static int hb_running; /* this child's thread is the sender */
/* The last sequence number sent by any process of this server, and the
 * lock under which a number is taken and its packets sent, in shared
 * memory that outlives generations (see hb_seq_take). */
typedef struct {
    pthread_mutex_t lock; /* robust, process-shared */
    uint64_t last;
    int ready; /* lock initialised */
    /* HeartbeatResponseHeader: requests in flight in every child now, and
     * ready + busy as the last beat counted them (0: no beat yet). */
    int64_t inflight;
    uint32_t total;
} hb_seq_t;
static hb_seq_t *hb_seq;
/* HeartbeatResponseHeader, of the main server (set at post_config). */
static int hb_header_on;
static const hb_secret_t *hb_header_key;
static apr_port_t hb_header_port;
static int hb_wake_fd[2] = {-1, -1}; /* written to stop the sender at once */
static pthread_t hb_thread;
static int hb_thread_started;

static void *hb_create_server_config(apr_pool_t *p, server_rec *s)
{
    hb_conf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->dests = apr_array_make(p, 2, sizeof(hb_dest_t));
    conf->interval = HB_DEFAULT_INTERVAL;
    conf->ttl = 1;
    conf->state = HB_STATE_UP;
    return conf;
}

static hb_conf_t *hb_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &heartbeat_module);
}

/* All our directives configure the one sender of the whole server, so a
 * value inside a <VirtualHost> would be silently ignored: refuse it. */
static const char *hb_global_only(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

static const char *hb_cmd_address(cmd_parms *cmd, void *dconf, const char *arg)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    hb_dest_t *d;
    apr_sockaddr_t *sa;
    int i;

    if (err) {
        return err;
    }
    if ((err = hb_config_addr(cmd->pool, cmd->cmd->name, arg, 1, &sa)) != NULL) {
        return err;
    }
    for (i = 0; i < conf->dests->nelts; i++) {
        hb_dest_t *o = &APR_ARRAY_IDX(conf->dests, i, hb_dest_t);
        if (apr_sockaddr_equal(o->sa, sa) && o->sa->port == sa->port) {
            return apr_psprintf(cmd->pool, "%s: %s is given twice", cmd->cmd->name, arg);
        }
    }
    d = apr_array_push(conf->dests);
    d->text = arg;
    d->sa = sa;
    d->sock = NULL;
    return NULL;
}

static const char *hb_cmd_interval(cmd_parms *cmd, void *dconf, const char *arg)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);

    if (!err) {
        err = hb_config_time(cmd->pool, cmd->cmd->name, arg, HB_MIN_INTERVAL, HB_MAX_INTERVAL,
                             &conf->interval);
    }
    conf->interval_set = !err;
    return err;
}

static const char *hb_cmd_ttl(cmd_parms *cmd, void *dconf, const char *arg)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    uint64_t v;

    if (err) {
        return err;
    }
    if (hb_parse_u64(arg, strlen(arg), 255, &v) != HB_OK || v < 1) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a number of hops from 1 to 255",
                            cmd->cmd->name, arg);
    }
    conf->ttl = (int)v;
    conf->ttl_set = 1;
    return NULL;
}

static const char *hb_cmd_source(cmd_parms *cmd, void *dconf, const char *arg)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);

    if (err) {
        return err;
    }
    conf->source_text = arg;
    return hb_config_addr(cmd->pool, cmd->cmd->name, arg, 0, &conf->source);
}

static const char *hb_cmd_port(cmd_parms *cmd, void *dconf, const char *arg)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    uint64_t v;

    if (err) {
        return err;
    }
    if (hb_parse_u64(arg, strlen(arg), 65535, &v) != HB_OK || v < 1) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a port from 1 to 65535", cmd->cmd->name,
                            arg);
    }
    conf->port = (apr_port_t)v;
    conf->port_set = 1;
    return NULL;
}

static const char *hb_cmd_state(cmd_parms *cmd, void *dconf, const char *arg)
{
    static const char *const words[] = {"up", "drain", NULL};
    static const hb_state_e states[] = {HB_STATE_UP, HB_STATE_DRAIN};
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    int i;

    if (!err && !(err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &i))) {
        conf->state = states[i];
        conf->state_set = 1;
    }
    return err;
}

static const char *hb_cmd_secret(cmd_parms *cmd, void *dconf, const char *path, const char *id)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    char why[512];
    hb_secret_t *k;

    if (err) {
        return err;
    }
    /* Read now, as root: the children inherit the key, and the file can
     * stay readable by root alone. */
    k = apr_pcalloc(cmd->pool, sizeof(*k));
    if (hb_secret_load(k, ap_server_root_relative(cmd->temp_pool, path), id, why, sizeof(why)) !=
        0) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why);
    }
    /* Wiped when the configuration is let go (every restart). Registered
     * before post_config's hb_parent_cleanup, so it runs after it: the
     * parent's last "stopping" packet is still signed. */
    apr_pool_cleanup_register(cmd->pool, k, hb_secret_cleanup, apr_pool_cleanup_null);
    conf->key = k;
    return NULL;
}

static const char *hb_cmd_state_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);

    if (err) {
        return err;
    }
    conf->state_file = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

/*
 * HeartbeatBalancer NAME [URL]: announce that this origin serves balancer
 * NAME, reached by URL's scheme and port (default http, and the port the
 * heartbeat names). The URL's host must be "*": a proxy makes the member's
 * host the address the signed heartbeat came from, never anything a
 * packet says, so a host here could only mislead.
 */
static const char *hb_join_url(cmd_parms *cmd, const char *url, hb_scheme_e *scheme, uint16_t *port)
{
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : NULL, *p, *end;
    uint64_t v;

    *port = 0;
    if (!host || host[0] != '*') {
        goto form;
    }
    *scheme = hb_scheme_parse(url, (size_t)(sep - url));
    if (*scheme == HB_SCHEME_NONE) {
        return apr_psprintf(cmd->pool,
                            "%s: the scheme of '%s' must be http, https, h2c, h2, ajp, fcgi, "
                            "scgi, uwsgi, ws or wss",
                            cmd->cmd->name, url);
    }
    p = host + 1;
    end = p + strlen(p);
    if (end > p && end[-1] == '/') {
        end--; /* a trailing slash, as BalancerMember URLs are often written */
    }
    if (p == end) {
        return NULL;
    }
    if (*p != ':' || p + 1 == end || strspn(p + 1, "0123456789") != (size_t)(end - p - 1)) {
        goto form;
    }
    p++;
    if (hb_parse_u64(p, (size_t)(end - p), 65535, &v) != HB_OK || v < 1) {
        return apr_psprintf(cmd->pool, "%s: the port of '%s' must be from 1 to 65535",
                            cmd->cmd->name, url);
    }
    *port = (uint16_t)v;
    return NULL;

form:
    return apr_psprintf(cmd->pool,
                        "%s: '%s' must be scheme://* or scheme://*:port: the member's host is "
                        "always the address its heartbeats come from",
                        cmd->cmd->name, url);
}

static const char *hb_cmd_balancer(cmd_parms *cmd, void *dconf, const char *arg, const char *url)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    const char *name = arg, *item, *text;
    hb_scheme_e scheme = HB_SCHEME_HTTP;
    uint16_t port = 0;
    size_t len;
    uint32_t h, i;
    hb_join_set_t check;

    if (err) {
        return err;
    }
    if (!strncasecmp(name, "balancer://", 11)) {
        name += 11;
    }
    len = strlen(name);
    if (!hb_join_name_ok(name, len)) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a balancer name: 1 to %d letters, digits, '_', '.' "
                            "or '-', with or without balancer:// before it",
                            cmd->cmd->name, arg, HB_JOIN_NAME_MAX);
    }
    h = hb_join_hash(name, len);
    for (i = 0; i < conf->join.n; i++) {
        /* mod_proxy ignores the case of balancer names, and so do proxies
         * reading the announcement. */
        if (conf->join.j[i].name_hash == h) {
            return apr_psprintf(cmd->pool,
                                "%s: balancer '%s' is given twice (names are compared without "
                                "regard to case)",
                                cmd->cmd->name, name);
        }
    }
    if (conf->join.n >= HB_JOIN_MAX) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is one too many: an origin announces at most %d balancers",
                            cmd->cmd->name, arg, HB_JOIN_MAX);
    }
    if (url && (err = hb_join_url(cmd, url, &scheme, &port)) != NULL) {
        return err;
    }
    if (port) {
        item = apr_psprintf(cmd->pool, "%s:%s:%u", name, hb_scheme_str(scheme), (unsigned)port);
    } else if (scheme != HB_SCHEME_HTTP) {
        item = apr_pstrcat(cmd->pool, name, ":", hb_scheme_str(scheme), NULL);
    } else {
        item = name;
    }
    text = conf->join_text ? apr_pstrcat(cmd->pool, conf->join_text, ",", item, NULL) : item;
    /* What the proxies will parse, so what we check: a heartbeat must
     * never carry an announcement they would refuse. */
    if (hb_join_parse(text, strlen(text), &check) != 0 || check.n != conf->join.n + 1) {
        return apr_psprintf(cmd->pool, "%s: cannot announce '%s'", cmd->cmd->name, item);
    }
    conf->join = check;
    conf->join_text = text;
    conf->join_len = strlen(text);
    return NULL;
}

/*
 * An operator (or hbctl drain) can drain this origin without touching the
 * configuration: "drain" in the state file drains it whatever
 * HeartbeatState says. Anything else ("up", written by hbctl undrain, or
 * a missing or unreadable file) leaves HeartbeatState in force, so that
 * undrain cannot undo a drain the configuration asks for. Read once per
 * beat, and when the file changes.
 */
static hb_state_e hb_current_state(const hb_conf_t *conf)
{
    char buf[16];
    apr_file_t *f;
    apr_size_t n = sizeof(buf) - 1;
    apr_pool_t *p;
    hb_state_e st = conf->state;

    if (!conf->state_file || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return st;
    }
    if (apr_file_open(&f, conf->state_file, APR_FOPEN_READ, APR_OS_DEFAULT, p) == APR_SUCCESS) {
        if (apr_file_read(f, buf, &n) == APR_SUCCESS && n > 0) {
            buf[n] = '\0';
            if (!strncasecmp(buf, "drain", 5)) {
                st = HB_STATE_DRAIN;
            }
        }
        apr_file_close(f);
    }
    apr_pool_destroy(p);
    return st;
}

static const char *hb_cmd_response_header(cmd_parms *cmd, void *dconf, int on)
{
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);

    if (!err) {
        conf->response_header = on;
        conf->response_header_set = 1;
    }
    return err;
}

static const char *hb_cmd_ready_mode(cmd_parms *cmd, void *dconf, const char *arg)
{
    /* In hb_ready_mode_e order. */
    static const char *const words[] = {"idle", "spare", NULL};
    hb_conf_t *conf = hb_conf(cmd->server);
    const char *err = hb_global_only(cmd);
    int i;

    if (!err && !(err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &i))) {
        conf->ready_mode = (hb_ready_mode_e)i;
        conf->ready_mode_set = 1;
    }
    return err;
}

/*
 * Count workers of the current generation only: after a graceful restart the
 * old generation's slots linger while they finish, and stock-style counting of
 * them would report capacity that no longer accepts work. Processes that are
 * quiescing or not accepting are not ready either, whatever their slots say.
 * Only quiescing means the server is going away: the event MPM stops
 * accepting in a process whose workers are all taken, which is "full", not
 * "stopping", and must not take the origin out of the balancer.
 */
static void hb_count_workers(int *ready, int *busy, int *capacity, int *live_procs)
{
    int server_limit = 0, thread_limit = 0, max_daemons = 0, max_threads = 0;
    int i, j, gen, r = 0, b = 0, a = 0;

    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &server_limit);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &thread_limit);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &max_daemons);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &max_threads);
    if (thread_limit < 1) {
        thread_limit = 1;
    }
    gen = ap_scoreboard_image->global->running_generation;

    for (i = 0; i < server_limit; i++) {
        process_score *ps = ap_get_scoreboard_process(i);
        int accepting;

        if (ps->pid == 0 || ps->generation != gen) {
            continue;
        }
        accepting = !ps->quiescing && !ps->not_accepting;
        a += !ps->quiescing;
        for (j = 0; j < thread_limit; j++) {
            worker_score *ws = ap_get_scoreboard_worker_from_indexes(i, j);
            switch (ws->status) {
            case SERVER_DEAD:
            case SERVER_STARTING:
            case SERVER_IDLE_KILL:
                break;
            case SERVER_READY:
                if (accepting) {
                    r++;
                }
                break;
            default:
                b++;
            }
        }
    }
    *ready = r;
    *busy = b;
    *live_procs = a;
    *capacity = (max_daemons > 0 ? max_daemons : 1) * (max_threads > 0 ? max_threads : 1);
}

static apr_port_t hb_advertised_port(const hb_conf_t *conf)
{
    if (conf->port_set) {
        return conf->port;
    }
    if (ap_listeners && ap_listeners->bind_addr) {
        return ap_listeners->bind_addr->port;
    }
    return 0;
}

static void hb_log_send_error(server_rec *s, hb_conf_t *conf, const hb_dest_t *d, apr_status_t rv)
{
    /* An unreachable proxy fails every interval; once a minute is plenty. */
    if (hb_throttle(&conf->send_errors, apr_time_now(), HB_REPORT_EVERY, NULL)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s,
                     "HB0101: cannot send heartbeat to %s (HeartbeatAddress); "
                     "will retry every interval, next report of this error in 60s",
                     d->text);
    }
}

/*
 * Which of our addresses the kernel sends from to reach d: HeartbeatSource
 * if given, else what routing picks, found by connecting a throwaway socket
 * (connecting the real one would turn a proxy that is down into send
 * errors through ICMP). A route change is noticed when a send fails and
 * the socket is opened again.
 */
static apr_status_t hb_source_for(hb_conf_t *conf, hb_dest_t *d)
{
    apr_socket_t *probe;
    apr_sockaddr_t *local;
    apr_status_t rv;

    rv = apr_socket_create(&probe, d->sa->family, SOCK_DGRAM, APR_PROTO_UDP, conf->sock_pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (conf->source) {
        rv = apr_socket_bind(probe, conf->source);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_connect(probe, d->sa);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_addr_get(&local, APR_LOCAL, probe);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_sockaddr_ip_getbuf(d->self, sizeof(d->self), local);
    }
    apr_socket_close(probe);
    return rv;
}

/*
 * A unicast monitor that is down (a proxy stopped, or not started yet)
 * answers each heartbeat with an ICMP "port unreachable". Reading those
 * back, the sender beats every HB_REFUSED_RETRY instead of every interval
 * while a monitor refuses, so that a proxy that starts hears from it at
 * once, not up to an interval later: the first requests of a proxy that
 * has never run have nothing else to go on. Without IP_RECVERR an
 * unconnected socket hears nothing of it, and with it the error also
 * fails the next send unless read first, so hb_refused reads the queue
 * before each send. Multicast gets no such answers.
 */
#define HB_REFUSED_RETRY apr_time_from_msec(100)
/* How long the fast beats go on after the last refusal seen: Linux sends a
 * host at most about one "port unreachable" a second after a burst of six
 * (icmp_ratelimit; loopback is exempt), so most fast beats to a monitor
 * that is still down get no answer at all. */
#define HB_REFUSED_HOLD apr_time_from_msec(2500)
/* Sockets whose errors the sender's sleep watches (HeartbeatAddress
 * destinations beyond these are seen at their next send only). */
#define HB_MAX_WATCHED 16

static int hb_want_errors(apr_socket_t *sock, int family)
{
#ifdef __linux__
    apr_os_sock_t fd;
    int on = 1;

    if (apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return 0;
    }
    return family == APR_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on)) == 0
                               : setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on)) == 0;
#else
    (void)sock;
    (void)family;
    return 0;
#endif
}

/* Read the errors queued on d's socket; d->refused is set if one says that
 * the monitor's port was closed. Returns d->refused. */
static int hb_refused(hb_dest_t *d)
{
#ifdef __linux__
    apr_os_sock_t fd;
    int refused = 0, i;

    if (!d->recverr || apr_os_sock_get(&fd, d->sock) != APR_SUCCESS) {
        return 0;
    }
    for (i = 0; i < 64; i++) {
        char data[64], control[256];
        struct iovec iov = {data, sizeof(data)};
        struct msghdr msg;
        struct cmsghdr *c;

        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
            break;
        }
        for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
                const struct sock_extended_err *ee = (const void *)CMSG_DATA(c);
                refused |= ee->ee_errno == ECONNREFUSED;
            }
        }
    }
    d->refused |= refused;
    return d->refused;
#else
    (void)d;
    return 0;
#endif
}

static apr_status_t hb_open(server_rec *s, hb_conf_t *conf, hb_dest_t *d)
{
    apr_status_t rv;
    apr_socket_t *sock;

    rv = apr_socket_create(&sock, d->sa->family, SOCK_DGRAM, APR_PROTO_UDP, conf->sock_pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (conf->source) {
        apr_sockaddr_t *src = conf->source;
        if (src->family != d->sa->family) {
            apr_socket_close(sock);
            return APR_EAFNOSUPPORT;
        }
        rv = apr_socket_bind(sock, src);
        if (rv != APR_SUCCESS) {
            apr_socket_close(sock);
            return rv;
        }
        if (hb_is_multicast(&d->sa->sa)) {
            apr_mcast_interface(sock, src);
        }
    }
    if (hb_is_multicast(&d->sa->sa)) {
        /* Hop limit 1 keeps heartbeats on the local link unless asked. */
        apr_mcast_hops(sock, (apr_byte_t)conf->ttl);
    } else {
        d->recverr = hb_want_errors(sock, d->sa->family);
    }
    if (conf->key && (rv = hb_source_for(conf, d)) != APR_SUCCESS) {
        apr_socket_close(sock);
        return rv;
    }
    d->sock = sock;
    return APR_SUCCESS;
}

static void hb_close_all(hb_conf_t *conf)
{
    int i;

    for (i = 0; i < conf->dests->nelts; i++) {
        hb_dest_t *d = &APR_ARRAY_IDX(conf->dests, i, hb_dest_t);
        if (d->sock) {
            apr_socket_close(d->sock);
            d->sock = NULL;
        }
    }
}

/*
 * Sequence numbers rise by one per packet, so a receiver can count what
 * was lost, and start from the clock in ms (or one more than the last one
 * sent, if the clock is behind that) whenever a sender starts, so they keep
 * rising across full restarts without state kept on disk. The last one is
 * shared by every process of this server: after a graceful restart the
 * senders of two generations overlap for up to an interval, and the
 * parent's last "stopping" packet must come after both. A receiver treats
 * a lower number as a replay, so a number is taken and its packets sent
 * under one lock: otherwise a sender preempted between the two would send
 * its number after a newer one (seen on a loaded machine).
 */
static uint64_t hb_seq_take(int from_clock)
{
    uint64_t now = (uint64_t)apr_time_as_msec(apr_time_now());
    int rc;

    if (!hb_seq || !hb_seq->ready) {
        return now;
    }
    rc = pthread_mutex_lock(&hb_seq->lock);
    if (rc == EOWNERDEAD) {
        /* A sender died holding it: the number it took is spent, which
         * is all the lock guards. */
        pthread_mutex_consistent(&hb_seq->lock);
    } else if (rc != 0) {
        return now;
    }
    hb_seq->last = from_clock && now > hb_seq->last + 1 ? now : hb_seq->last + 1;
    return hb_seq->last;
}

static void hb_seq_done(void)
{
    if (hb_seq && hb_seq->ready) {
        pthread_mutex_unlock(&hb_seq->lock);
    }
}

/*
 * Send one heartbeat with the given counts and state to every
 * HeartbeatAddress. Unsigned, every destination gets the same bytes; with
 * HeartbeatSecret each gets its own, naming the address it comes from
 * (addr=) inside the signed part, then ts, kid and sig.
 */
static void hb_send_all(server_rec *s, hb_conf_t *conf, uint64_t seq, uint32_t ready, uint32_t busy,
                        hb_state_e state)
{
    char buf[HB_PACKET_MAX + 1];
    apr_port_t port = hb_advertised_port(conf);
    apr_size_t len = 0;
    hb_packet_t pkt;
    int i, refused = 0;

    memset(&pkt, 0, sizeof(pkt));
    pkt.version = 1;
    pkt.ready = ready;
    pkt.busy = busy;
    pkt.seq = seq;
    pkt.interval_ms = (uint32_t)apr_time_as_msec(conf->interval);
    pkt.state = state;
    pkt.flags = HB_HAS_SEQ | HB_HAS_INTERVAL | HB_HAS_STATE;
    if (port) {
        pkt.port = port;
        pkt.flags |= HB_HAS_PORT;
    }
    if (conf->join_text) {
        /* Before addr=, ts and kid: inside the signed part. */
        pkt.join_text = conf->join_text;
        pkt.join_len = conf->join_len;
        pkt.flags |= HB_HAS_JOIN;
    }
    if (!conf->key) {
        len = hb_packet_format(&pkt, buf, sizeof(buf));
    }
    for (i = 0; i < conf->dests->nelts; i++) {
        hb_dest_t *d = &APR_ARRAY_IDX(conf->dests, i, hb_dest_t);
        apr_size_t n;
        apr_status_t rv = APR_SUCCESS;

        if (!d->sock) {
            rv = hb_open(s, conf, d);
        }
        if (rv == APR_SUCCESS && conf->key) {
            memcpy(pkt.addr, d->self, sizeof(pkt.addr));
            pkt.flags |= HB_HAS_ADDR;
            len = hb_packet_format(&pkt, buf, sizeof(buf));
            len = len ? hb_auth_sign(conf->key, buf, len, sizeof(buf),
                                     apr_time_as_msec(apr_time_now()))
                      : 0;
        }
        n = len;
        if (rv == APR_SUCCESS) {
            refused |= hb_refused(d);
            d->refused = 0;
            rv = apr_socket_sendto(d->sock, d->sa, 0, buf, &n);
            if (d->recverr && APR_TO_OS_ERROR(rv) == ECONNREFUSED) {
                /* Its port closed again since we looked: the error took
                 * the place of this send. */
                refused = 1;
                hb_refused(d);
                d->refused = 0;
                n = len;
                rv = apr_socket_sendto(d->sock, d->sa, 0, buf, &n);
            }
        }
        if (rv != APR_SUCCESS) {
            /* Re-create the socket next time: a route or source address
             * may have changed under it. */
            if (d->sock) {
                apr_socket_close(d->sock);
                d->sock = NULL;
            }
            hb_log_send_error(s, conf, d, rv);
        } else {
            ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, s, "HB0102: sent %.*s", (int)len, buf);
        }
    }
    conf->refused = refused;
}

/* One beat from the sender thread (its first if `first`); returns the
 * state it reported. */
static hb_state_e hb_send(server_rec *s, hb_conf_t *conf, int first)
{
    int ready, busy, capacity, live;
    hb_state_e state;

    hb_count_workers(&ready, &busy, &capacity, &live);
    if (conf->ready_mode == HB_READY_SPARE) {
        ready = capacity > busy ? capacity - busy : 0;
    }
    state = hb_current_state(conf);
    if (live == 0) {
        ready = 0;
        state = HB_STATE_STOPPING;
    }
    if (hb_seq) {
        __atomic_store_n(&hb_seq->total, (uint32_t)(ready + busy), __ATOMIC_RELAXED);
    }
    hb_send_all(s, conf, hb_seq_take(first), (uint32_t)ready, (uint32_t)busy, state);
    hb_seq_done();
    conf->last_ready = (uint32_t)ready;
    return state;
}

/* ------------------------------------------------------------- sender */

static int64_t hb_mono_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Watch the state file's directory, so that "hbctl drain" takes effect at
 * once instead of at the next beat: hbctl replaces the file by rename, so
 * the file itself cannot be watched. -1 if there is nothing to watch
 * (no HeartbeatStateFile, no inotify): the file is then read every beat.
 */
static int hb_watch_state_file(const hb_conf_t *conf, apr_pool_t *p)
{
#ifdef __linux__
    char *dir;
    int fd;

    if (!conf->state_file) {
        return -1;
    }
    dir = ap_make_dirstr_parent(p, conf->state_file);
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 &&
        inotify_add_watch(
            fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
#else
    (void)conf;
    (void)p;
    return -1;
#endif
}

/* Sleep until the monotonic time `until`, or less: returns 1 if the state
 * file's directory changed, 0 otherwise (time up, woken to stop, or an
 * error came back on a socket: then *refused is set if a monitor's port
 * was closed, hb_refused). */
static int hb_sleep_until(hb_conf_t *conf, int64_t until, int watch_fd, int *refused)
{
    struct pollfd fds[2 + HB_MAX_WATCHED];
    hb_dest_t *watched[HB_MAX_WATCHED];
    nfds_t n = 0, nw = 0, k;
    int i;
    int64_t left = until - hb_mono_usec();
    int changed = 0;

    if (left <= 0) {
        return 0;
    }
    fds[n].fd = hb_wake_fd[0];
    fds[n].events = POLLIN;
    n++;
    if (watch_fd >= 0) {
        fds[n].fd = watch_fd;
        fds[n].events = POLLIN;
        n++;
    }
    for (i = 0; i < conf->dests->nelts && nw < HB_MAX_WATCHED; i++) {
        hb_dest_t *d = &APR_ARRAY_IDX(conf->dests, i, hb_dest_t);
        apr_os_sock_t fd;
        if (d->sock && d->recverr && apr_os_sock_get(&fd, d->sock) == APR_SUCCESS) {
            fds[n + nw].fd = fd;
            fds[n + nw].events = 0; /* POLLERR comes anyway */
            watched[nw++] = d;
        }
    }
#ifdef __linux__
    {
        /* ppoll for microseconds: poll's whole milliseconds would make a
         * 250 ms interval drift by up to a millisecond each beat. */
        struct timespec ts = {(time_t)(left / 1000000), (long)(left % 1000000) * 1000};
        if (ppoll(fds, n + nw, &ts, NULL) <= 0) {
            return 0;
        }
    }
#else
    if (poll(fds, n + nw, (int)((left + 999) / 1000)) <= 0) {
        return 0;
    }
#endif
    for (k = 0; k < nw; k++) {
        if (fds[n + k].revents & POLLERR) {
            *refused |= hb_refused(watched[k]);
        }
    }
    if (n > 1 && (fds[1].revents & POLLIN)) {
        char drain[4096];
        while (read(watch_fd, drain, sizeof(drain)) > 0) {
        }
        changed = 1;
    }
    return changed;
}

/*
 * The elected child's sender: a beat at start, then one every interval on
 * a fixed schedule (next = previous + interval, so sending time and
 * wake-up latency do not add up into drift), until the child exits or a
 * newer generation's sender has taken over. A change of the state file is
 * sent at once, between beats.
 */
/* With HeartbeatResponseHeader on, how often the sender looks at the
 * requests in flight between beats, and how soon after an extra beat
 * another may go. */
#define HB_WATCH_STEP  apr_time_from_msec(20)
#define HB_EXTRA_AFTER apr_time_from_msec(100)

/*
 * An origin that fills up answers nothing until a request ends, so no
 * response header can tell the proxies; its next beat may be an interval
 * away. So between beats the sender looks at the scoreboard (a few
 * microseconds, 50 times a second, in one thread) and beats at once when
 * the ready workers have halved since the last beat, or run out.
 */
static int hb_filling_up(const hb_conf_t *conf)
{
    int ready, busy, capacity, live;

    if (conf->last_ready == 0) {
        return 0;
    }
    hb_count_workers(&ready, &busy, &capacity, &live);
    if (conf->ready_mode == HB_READY_SPARE) {
        ready = capacity > busy ? capacity - busy : 0;
    }
    return ready == 0 || (uint32_t)ready * 2 <= conf->last_ready;
}

static void hb_sender_run(server_rec *s, hb_conf_t *conf)
{
    apr_interval_time_t every = conf->interval;
    int64_t next;
    hb_state_e sent = HB_STATE_UP;
    int watch_fd, first = 1, refused = 0;
    int64_t extra_ok = 0, refused_until = 0;

    if (apr_pool_create(&conf->sock_pool, NULL) != APR_SUCCESS) {
        return;
    }
    apr_pool_tag(conf->sock_pool, "heartbeat_sockets");
    watch_fd = hb_watch_state_file(conf, conf->sock_pool);
    next = hb_mono_usec();
    while (!hb_stopping && !hb_elect_superseded(hb_election)) {
        int64_t now = hb_mono_usec();

        if (now >= next) {
            sent = hb_send(s, conf, first);
            first = 0;
            next += every;
            if (next <= now) {
                /* Far behind (the machine was suspended, or the thread not
                 * scheduled for a whole interval): start afresh, no burst. */
                next = now + every;
            }
            if (conf->refused) {
                refused_until = now + HB_REFUSED_HOLD;
            }
            if (now < refused_until && next > now + HB_REFUSED_RETRY) {
                next = now + HB_REFUSED_RETRY; /* a monitor is down: see hb_refused */
            }
        }
        if (hb_header_on && hb_seq) {
            int64_t wake = now + HB_WATCH_STEP < next ? now + HB_WATCH_STEP : next;
            if (hb_sleep_until(conf, wake, watch_fd, &refused) && !hb_stopping &&
                hb_current_state(conf) != sent) {
                sent = hb_send(s, conf, 0);
            } else if (!hb_stopping && (now = hb_mono_usec()) < next && now >= extra_ok &&
                       hb_filling_up(conf)) {
                sent = hb_send(s, conf, 0); /* an extra beat; the schedule stays */
                extra_ok = now + HB_EXTRA_AFTER;
            }
        } else if (hb_sleep_until(conf, next, watch_fd, &refused) && !hb_stopping &&
                   hb_current_state(conf) != sent) {
            sent = hb_send(s, conf, 0); /* an extra beat; the schedule stays */
        }
        if (refused) {
            /* A monitor's port is closed: the next beat soon (hb_refused). */
            now = hb_mono_usec();
            refused_until = now + HB_REFUSED_HOLD;
            if (next > now + HB_REFUSED_RETRY) {
                next = now + HB_REFUSED_RETRY;
            }
            refused = 0;
        }
    }
    if (watch_fd >= 0) {
        close(watch_fd);
    }
    /* One child leaving says nothing about the server: the parent speaks
     * for a real stop or restart (hb_parent_cleanup). */
    hb_close_all(conf);
    apr_pool_destroy(conf->sock_pool);
    conf->sock_pool = NULL;
}

static void hb_standby_failed(void *baton, int err)
{
    ap_log_error(APLOG_MARK, APLOG_CRIT, err, baton,
                 "HB0111: cannot take part in the heartbeat sender election");
}

static void hb_standby_took_over(void *baton)
{
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, baton,
                 "HB0110: the child sending heartbeats died; this one "
                 "(pid %" APR_PID_T_FMT ") took over",
                 getpid());
}

static int hb_standby_may_run(void *baton)
{
    return !hb_stopping;
}

static int hb_standby_prepare(void *baton)
{
    hb_running = 1;
    return 1;
}

static void hb_standby_run(void *baton)
{
    server_rec *s = baton;

    hb_thread_name("hb-sender");
    hb_sender_run(s, hb_conf(s));
}

/* One per child: waits to be elected, then sends until the child stops. */
static void *hb_standby_main(void *data)
{
    static const hb_standby_t hooks = {hb_standby_failed,  hb_standby_took_over, hb_standby_may_run,
                                       hb_standby_prepare, hb_standby_run,       NULL};

    hb_thread_name("hb-standby");
    hb_elect_standby(hb_election, &hb_guard, &hooks, data);
    return NULL;
}

/* The sender keeps going until the next generation's is up, if a
 * graceful restart is under way (hb_elect_handover_wait). */
static void hb_wait_handover(void)
{
    int limit = 0;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) == APR_SUCCESS && limit <= 1) {
        return;
    }
    hb_elect_handover_wait(hb_election, apr_time_from_msec(300), apr_time_from_sec(3));
}

/* When the child exits (not when it starts a graceful stop: it keeps
 * sending while it finishes its requests, and after a graceful restart
 * until the new generation's sender is up). A standby still waiting is not
 * joined: it can only wake to find the child stopping, and dies with the
 * process. */
static apr_status_t hb_child_cleanup(void *data)
{
    int running;

    pthread_mutex_lock(&hb_guard);
    running = hb_running && !hb_stopping;
    pthread_mutex_unlock(&hb_guard);
    if (running && hb_thread_started && hb_election) {
        hb_wait_handover();
    }
    pthread_mutex_lock(&hb_guard);
    hb_stopping = 1;
    running = hb_running;
    if (hb_wake_fd[1] >= 0) {
        (void)!write(hb_wake_fd[1], "x", 1);
    }
    pthread_mutex_unlock(&hb_guard);
    /* Joined only if it runs the sender: then it has left the election
     * wait and sees hb_stopping at once. */
    if (running && hb_thread_started) {
        pthread_join(hb_thread, NULL);
    }
    hb_thread_started = 0;
    return APR_SUCCESS;
}

static void hb_child_init(apr_pool_t *pchild, server_rec *s)
{
    hb_conf_t *conf = hb_conf(s);
    pthread_attr_t attr;
    int rc;

    if (!hb_election || conf->dests->nelts == 0) {
        return;
    }
    hb_stopping = 0;
    if (pipe(hb_wake_fd) != 0) {
        hb_wake_fd[0] = hb_wake_fd[1] = -1;
    } else {
        (void)fcntl(hb_wake_fd[0], F_SETFD, FD_CLOEXEC);
        (void)fcntl(hb_wake_fd[1], F_SETFD, FD_CLOEXEC);
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HB_THREAD_STACK);
    rc = pthread_create(&hb_thread, &attr, hb_standby_main, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rc, s,
                     "HB0109: cannot start this child's heartbeat sender thread");
        return;
    }
    hb_thread_started = 1;
    apr_pool_cleanup_register(pchild, NULL, hb_child_cleanup, apr_pool_cleanup_null);
}

typedef struct {
    server_rec *s;
    pid_t parent;
} hb_parent_t;

/*
 * Runs when the parent's configuration pool is cleared: on graceful or hard
 * stop and on every restart. Children inherit the registration through
 * fork(), hence the pid check. The scoreboard may already be gone here, so
 * the packet carries no counts: ready=0 is the point.
 */
static apr_status_t hb_parent_cleanup(void *data)
{
    hb_parent_t *pc = data;
    hb_conf_t *conf = hb_conf(pc->s);
    int i;

    if (getpid() != pc->parent) {
        return APR_SUCCESS;
    }
    if (apr_pool_create(&conf->sock_pool, NULL) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    for (i = 0; i < conf->dests->nelts; i++) {
        APR_ARRAY_IDX(conf->dests, i, hb_dest_t).sock = NULL;
    }
    hb_send_all(pc->s, conf, hb_seq_take(1), 0, 0, HB_STATE_STOPPING);
    hb_seq_done();
    hb_close_all(conf);
    apr_pool_destroy(conf->sock_pool);
    conf->sock_pool = NULL;
    return APR_SUCCESS;
}

/* The shared sequence word, made once per server process lifetime. */
static apr_status_t hb_seq_init(apr_pool_t *pproc)
{
    apr_status_t rv =
        hb_shm_once((void **)&hb_seq, "mod_heartbeat.seqlock", sizeof(*hb_seq), pproc);

    /* Once, in the parent, before any child exists. */
    if (rv != APR_SUCCESS || hb_seq->ready) {
        return rv;
    }
    if ((rv = hb_robust_mutex_init(&hb_seq->lock)) == APR_SUCCESS) {
        hb_seq->ready = 1;
    }
    return rv;
}

static int hb_post_config(apr_pool_t *p, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    hb_conf_t *conf = hb_conf(s);
    apr_status_t rv;
    int i;

    hb_election = NULL;
    hb_header_on = 0;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (conf->dests->nelts == 0) {
        if (conf->interval_set || conf->ttl_set || conf->source || conf->port_set ||
            conf->state_set || conf->ready_mode_set || conf->response_header || conf->join_text) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "HB0103: heartbeat directives are set but no HeartbeatAddress: "
                         "no heartbeats will be sent");
        }
        return OK;
    }
    if (conf->source) {
        for (i = 0; i < conf->dests->nelts; i++) {
            hb_dest_t *d = &APR_ARRAY_IDX(conf->dests, i, hb_dest_t);
            if (d->sa->family != conf->source->family) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                             "HB0104: HeartbeatSource %s and HeartbeatAddress %s are of "
                             "different address families",
                             conf->source_text, d->text);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }
    if (conf->join_text && !conf->key) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "HB0112: HeartbeatBalancer is set but no HeartbeatSecret: proxies ignore "
                     "the balancers an unsigned heartbeat announces, so this origin joins none");
    }
    if ((rv = hb_seq_init(s->process->pool)) == APR_SUCCESS) {
        /* A new election per generation, in this generation's pool. */
        rv = hb_elect_create(&hb_election, "mod_heartbeat", p, s->process->pool);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "HB0108: cannot create shared memory for the heartbeat sender");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    hb_header_on = conf->response_header;
    hb_header_key = conf->key;
    hb_header_port = hb_advertised_port(conf);
    {
        hb_parent_t *pc = apr_palloc(p, sizeof(*pc));
        pc->s = s;
        pc->parent = getpid();
        apr_pool_cleanup_register(p, pc, hb_parent_cleanup, apr_pool_cleanup_null);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                 "HB0107: sending heartbeats every %" APR_TIME_T_FMT "ms to %d address(es)",
                 apr_time_as_msec(conf->interval), conf->dests->nelts);
    return OK;
}

/* ---- HeartbeatResponseHeader */

static apr_status_t hb_request_done(void *data)
{
    __atomic_fetch_sub(&hb_seq->inflight, 1, __ATOMIC_RELAXED);
    return APR_SUCCESS;
}

/* Count the request in flight until its pool goes (also when it fails,
 * and once for all its internal redirects, which share that pool). */
static int hb_request_start(request_rec *r)
{
    if (hb_header_on && hb_seq && !r->main && !r->prev) {
        __atomic_fetch_add(&hb_seq->inflight, 1, __ATOMIC_RELAXED);
        apr_pool_cleanup_register(r->pool, NULL, hb_request_done, apr_pool_cleanup_null);
    }
    return DECLINED;
}

static void hb_insert_load(request_rec *r)
{
    if (hb_header_on && hb_seq && !r->main) {
        ap_add_output_filter("HEARTBEAT_LOAD", NULL, r, r->connection);
    }
}

/* Sets the header as the response leaves, replacing any the content put
 * there: the load is this server's to say. The request itself is about to
 * end, so it counts as done. */
static apr_status_t hb_load_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    int64_t inflight = __atomic_load_n(&hb_seq->inflight, __ATOMIC_RELAXED) - 1;
    uint32_t total = __atomic_load_n(&hb_seq->total, __ATOMIC_RELAXED);
    uint32_t busy = inflight > 0 ? (uint32_t)inflight : 0;
    char buf[LBHB_LOAD_MAX + 1], addr[HB_ADDR_TEXT_MAX] = "";
    size_t n;

    apr_table_unset(r->err_headers_out, LBHB_LOAD_HEADER);
    apr_table_unset(r->headers_out, LBHB_LOAD_HEADER);
    if (total > 0) {
        if (hb_header_key) {
            /* Where the proxy reached us: it checks that against the
             * member it sent the request to. */
            apr_sockaddr_ip_getbuf(addr, sizeof(addr), r->connection->local_addr);
        }
        n = lbhb_load_format(buf, sizeof(buf), total > busy ? total - busy : 0, busy,
                             hb_header_port, addr, hb_header_key, apr_time_as_msec(apr_time_now()));
        if (n) {
            apr_table_setn(r->headers_out, LBHB_LOAD_HEADER, apr_pstrmemdup(r->pool, buf, n));
        }
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void hb_register_hooks(apr_pool_t *p)
{
    ap_hook_post_config(hb_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(hb_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(hb_request_start, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_filter(hb_insert_load, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(hb_insert_load, NULL, NULL, APR_HOOK_MIDDLE);
    /* After the content (CGI, a proxied answer, ...) has set its headers,
     * before the protocol filters send them. */
    ap_register_output_filter("HEARTBEAT_LOAD", hb_load_filter, NULL, AP_FTYPE_CONTENT_SET + 5);
}

static const command_rec hb_cmds[] = {
    AP_INIT_TAKE1("HeartbeatAddress", hb_cmd_address, NULL, RSRC_CONF,
                  "host:port (IPv4, [IPv6], multicast or unicast) to send heartbeats to; "
                  "may be repeated"),
    AP_INIT_TAKE1("HeartbeatInterval", hb_cmd_interval, NULL, RSRC_CONF,
                  "time between heartbeats, e.g. 1s or 250ms (default 1s, minimum 100ms)"),
    AP_INIT_TAKE1("HeartbeatTTL", hb_cmd_ttl, NULL, RSRC_CONF,
                  "multicast hop limit, 1-255 (default 1)"),
    AP_INIT_TAKE1("HeartbeatSource", hb_cmd_source, NULL, RSRC_CONF,
                  "local address to send heartbeats from"),
    AP_INIT_TAKE1("HeartbeatPort", hb_cmd_port, NULL, RSRC_CONF,
                  "port advertised to the proxies (default: the first Listen port)"),
    AP_INIT_TAKE1("HeartbeatState", hb_cmd_state, NULL, RSRC_CONF,
                  "'up' (default) or 'drain': a draining origin gets no new requests"),
    AP_INIT_TAKE12("HeartbeatSecret", hb_cmd_secret, NULL, RSRC_CONF,
                   "key file (mode 0600, owned by root) to sign heartbeats with, and an "
                   "optional key id (default: the file name without extension)"),
    AP_INIT_TAKE1("HeartbeatStateFile", hb_cmd_state_file, NULL, RSRC_CONF,
                  "file whose content 'drain' drains this origin at run time, whatever "
                  "HeartbeatState says (see hbctl drain)"),
    AP_INIT_FLAG("HeartbeatResponseHeader", hb_cmd_response_header, NULL, RSRC_CONF,
                 "On: every response carries this server's load now (Heartbeat-Load), for "
                 "the proxies of the suite (default Off)"),
    AP_INIT_TAKE1("HeartbeatReadyMode", hb_cmd_ready_mode, NULL, RSRC_CONF,
                  "'idle' (default, stock: idle worker threads) or 'spare' "
                  "(MaxRequestWorkers minus busy)"),
    AP_INIT_TAKE12("HeartbeatBalancer", hb_cmd_balancer, NULL, RSRC_CONF,
                   "a balancer this origin serves, announced to proxies with HeartbeatJoin on, "
                   "and optionally scheme://* or scheme://*:port to reach it by (default "
                   "http and the advertised port); at most 4"),
    {NULL}};

AP_DECLARE_MODULE(heartbeat) = {
    STANDARD20_MODULE_STUFF,
    NULL,                    /* dir config */
    NULL,                    /* merge dir config */
    hb_create_server_config, /* server config */
    NULL,                    /* merge server config: the sender is global */
    hb_cmds,
    hb_register_hooks,
};
