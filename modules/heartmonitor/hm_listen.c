/*
 * hm_listen.c: the HeartbeatListen sockets. The parent (root) binds them,
 * so privileged ports work and a bind error stops the start-up, and keeps
 * them in the process pool: every generation with the same HeartbeatListen
 * reuses them, so a graceful restart neither rebinds nor loses packets.
 * The receiver (hm_receiver.c) reads them.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "apr_hash.h"
#include "apr_portable.h"
#include "apr_strings.h"

#include <errno.h>
#include <sys/socket.h>

#include "hb_net.h"
#include "hm_addr.h"
#include "hm_private.h"

APLOG_USE_MODULE(heartmonitor);

#define HM_PROC_KEY_SOCKS "mod_heartmonitor.sockets"
#define HM_RCVBUF         (4 * 1024 * 1024)

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
int hm_listen_bind_all(server_rec *s, hm_conf_t *conf)
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

/* The smallest receive buffer the receiver reads from, as SO_RCVBUF
 * reports it, for hm_pace_target. */
long hm_listen_min_rcvbuf(const hm_conf_t *conf)
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
