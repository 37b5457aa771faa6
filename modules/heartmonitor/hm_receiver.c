/*
 * hm_receiver.c: mod_heartmonitor's receiver. Every child has a standby
 * thread waiting on this generation's election (hb_elect.h); the winner
 * reads the HeartbeatListen sockets in batches (recvmmsg where there is
 * one), paces its reads (hm_pace.h), puts each datagram through admission
 * (hm_admit.h), expires entries and writes HeartbeatStorage when due
 * (hm_due.h), until its child exits or a newer generation's receiver takes
 * over; then the next standby's turn (docs/architecture.md, "The receiver
 * election").
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_mpm.h"

#include "apr_poll.h"
#include "apr_portable.h"
#include "apr_time.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* One system call per batch instead of one per datagram: under a flood the
 * receiver's cost is almost all syscall entry. APR passes _GNU_SOURCE. */
#if defined(__linux__) && defined(_GNU_SOURCE)
#define HM_HAVE_RECVMMSG 1
#endif

#include "hb_elect.h"
#include "hb_packet.h"
#include "hm_admit.h"
#include "hm_due.h"
#include "hm_pace.h"
#include "hm_ratelimit.h"
#include "hm_shm.h"
#include "hm_storage.h"
#include "hm_private.h"

APLOG_USE_MODULE(heartmonitor);

#define HM_RECV_BATCH   1024
#define HM_RECV_VEC     64
#define HM_COALESCE_MIN apr_time_from_msec(1)
#define HM_COALESCE_MAX apr_time_from_msec(20)
#define HM_DGRAM_BUDGET 2048 /* receive-buffer bytes one queued datagram may take */
/* Datagrams per wait: 128 to 256 cost least per packet on the benchmark VM
 * (fewer wake-ups than 64, and 1024 was no cheaper). */
#define HM_PACE_TARGET 256
#define HM_RL_SOURCES  4096 /* addresses the rate limiter tracks at once */

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
    hm_due_t due;       /* when the expiry scan and the storage write are next due */
    hm_pace_t pace;     /* how long to let datagrams queue up between reads */
    hm_ratelimit_t *rl; /* HeartbeatRateLimit, per source; NULL = off */
} hm_receiver_t;

/* This child's part in the election, guarded by hm_rx_guard: the receiver
 * while it runs, and whether the child is stopping. */
static hb_elect_t *hm_election; /* this generation's, made by the parent */
static pthread_mutex_t hm_rx_guard = PTHREAD_MUTEX_INITIALIZER;
static hm_receiver_t *hm_rx;
static int hm_child_stopping;
static pthread_t hm_standby;
static int hm_standby_started;

static uint64_t hm_table_version(const hm_table_t *t)
{
    return hm_table_counter(t, HM_CTR_ACCEPTED) + hm_table_counter(t, HM_CTR_EXPIRED);
}

static void hm_maybe_write(hm_receiver_t *rx, apr_time_t now)
{
    hm_conf_t *conf = rx->conf;
    uint64_t version, changes;
    int rv;
    apr_pool_t *tmp;

    if (now >= hm_due_scan(&rx->due)) {
        int64_t oldest;
        hm_table_expire_ex(conf->table, now, conf->expiry, &oldest);
        hm_due_scanned(&rx->due, now, oldest);
    }
    version = hm_table_version(conf->table);
    changes = hm_table_counter(conf->table, HM_CTR_STATE_CHANGES);
    if (now < hm_due_write(&rx->due, version, changes)) {
        return;
    }
    apr_pool_create(&tmp, rx->pool);
    rv = hm_storage_write(conf->storage_path, conf->table, now, conf->expiry, tmp);
    apr_pool_destroy(tmp);
    hm_due_wrote(&rx->due, now, version, changes, rv == 0);
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
}

/* How long poll may sleep: until hm_maybe_write has something to do (an
 * expiry scan or a storage write). hm_receiver_stop wakes the poll itself. */
static apr_interval_time_t hm_poll_timeout(const hm_receiver_t *rx, apr_time_t now)
{
    const hm_table_t *t = rx->conf->table;

    return hm_due_poll(&rx->due, now, hm_table_version(t),
                       hm_table_counter(t, HM_CTR_STATE_CHANGES));
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

static void hm_receiver_run(hm_receiver_t *rx)
{
    /* Until the child exits, or a newer generation's receiver has taken
     * over after a graceful restart (noticed at the next wake-up: at most
     * a second when idle). */
    while (!rx->stop && !hb_elect_superseded(hm_election)) {
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
        while (got > 0 && !rx->stop && !hb_elect_superseded(hm_election)) {
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
        hm_due_write_now(&rx->due);
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
    hm_due_init(&rx->due, conf->expiry, conf->storage_interval, conf->write_file);
    rx->bufs =
        hm_rxbuf_init(pool, conf->rate_limit ? hm_ratelimit_size(HM_RL_SOURCES) : 0, &rl_mem);
    hm_pace_init(&rx->pace, HM_COALESCE_MIN, HM_COALESCE_MAX,
                 hm_pace_target(hm_listen_min_rcvbuf(conf), HM_DGRAM_BUDGET, HM_PACE_TARGET));
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

static void hm_standby_failed(void *baton, int err)
{
    ap_log_error(APLOG_MARK, APLOG_CRIT, err, baton,
                 "HM0210: cannot take part in the receiver election");
}

static void hm_standby_took_over(void *baton)
{
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, baton,
                 "HM0211: the child running the heartbeat receiver died; this one "
                 "(pid %" APR_PID_T_FMT ") took over",
                 getpid());
}

static int hm_standby_may_run(void *baton)
{
    return !hm_child_stopping;
}

static int hm_standby_prepare(void *baton)
{
    server_rec *s = baton;

    hm_rx = hm_receiver_init(s, hm_conf(s));
    return hm_rx != NULL;
}

static void hm_standby_run(void *baton)
{
    hb_thread_name("hm-receiver");
    /* Counted in the table, which outlives children and generations: a
     * start-up, a graceful restart and a hand-over to another child (its
     * holder exited or crashed) each count one. */
    hm_table_counter_add(hm_rx->conf->table, HM_CTR_RX_STARTS, 1);
    hm_receiver_run(hm_rx);
}

static void hm_standby_finish(void *baton)
{
    hm_receiver_t *rx = hm_rx;

    hm_rx = NULL;
    apr_pool_destroy(rx->pool);
}

/* One per child: waits to be elected, then is the receiver until the
 * child stops. */
static void *hm_standby_main(void *data)
{
    static const hb_standby_t hooks = {hm_standby_failed,  hm_standby_took_over, hm_standby_may_run,
                                       hm_standby_prepare, hm_standby_run,       hm_standby_finish};

    hb_thread_name("hm-standby");
    hb_elect_standby(hm_election, &hm_rx_guard, &hooks, data);
    return NULL;
}

/* When the child exits: stop the receiver if this child runs it, so that
 * another child's standby takes over. Not when it starts a graceful stop:
 * it keeps receiving while it finishes its requests, and after a graceful
 * restart until the new generation's receiver is up. */
static void hm_receiver_stop(void)
{
    hm_receiver_t *rx;
    int limit = 0;

    pthread_mutex_lock(&hm_rx_guard);
    rx = hm_child_stopping ? NULL : hm_rx;
    pthread_mutex_unlock(&hm_rx_guard);
    /* Receiving until the next generation's receiver is up, if a graceful
     * restart is under way: the table would go stale meanwhile (up to a
     * second, packets waiting in the sockets' buffers). */
    if (rx && hm_election &&
        !(ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) == APR_SUCCESS && limit <= 1)) {
        hb_elect_handover_wait(hm_election, apr_time_from_msec(300), apr_time_from_sec(3));
    }
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

void hm_receiver_child_init(apr_pool_t *pchild, server_rec *s, hb_elect_t *election)
{
    hm_conf_t *conf = hm_conf(s);
    int rc;

    hm_election = election;
    if (!hm_election || conf->listens->nelts == 0) {
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
