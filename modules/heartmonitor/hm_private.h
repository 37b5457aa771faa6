/*
 * hm_private.h: what the files of mod_heartmonitor share: the server
 * record, and each file's functions for the others. The dependencies run
 * one way: mod_heartmonitor.c (hooks) calls into hm_config.c, hm_listen.c,
 * hm_receiver.c and hm_handlers.c; these use the server record and the
 * core, and call nothing in mod_heartmonitor.c or in each other, but for
 * hm_conf() and hm_listen_min_rcvbuf().
 */
#ifndef HM_PRIVATE_H
#define HM_PRIVATE_H

#include "httpd.h"
#include "http_config.h"

#include "apr_network_io.h"
#include "apr_thread_proc.h"

#include "hb_elect.h"
#include "hm_admit.h"
#include "hm_table.h"
#include "lbhb_pick.h"

extern module AP_MODULE_DECLARE_DATA heartmonitor_module;

typedef struct {
    const char *text; /* as configured */
    apr_sockaddr_t *sa;
    apr_socket_t *sock; /* bound by the parent, kept across graceful restarts */
    int shared;         /* "shared": other servers may bind the same group and port */
} hm_listen_t;

typedef struct {
    apr_array_header_t *listens; /* hm_listen_t */
    int max_servers;             /* -1 = unset (10) */
    int huge;                    /* hm_huge_e, -1 = unset (try) */
    const char *storage;         /* as configured, NULL = default */
    const char *storage_path;    /* resolved at post_config */
    int write_file;              /* write storage_path */
    apr_interval_time_t storage_interval;
    apr_interval_time_t expiry;
    apr_interval_time_t stale_after;

    /* authentication and admission (hm_auth) */
    apr_array_header_t *keys; /* hb_secret_t: every HeartbeatSecret (rotation) */
    int auth_migrate;         /* HeartbeatAuthMode migrate: unsigned accepted, marked */
    apr_interval_time_t auth_window;
    apr_array_header_t *allow; /* apr_ipsubnet_t *: HeartbeatAllow, UDP and POST */
    int max_per_addr;          /* HeartbeatMaxPerAddress, -1 = unset */
    unsigned int rate_limit;   /* packets/s per source address, 0 = off */

    /* run time */
    hm_table_t *table;
    hm_admit_t *admit;    /* with table: whether a heartbeat gets into it */
    apr_size_t huge_page; /* the table's huge page size, 0 = normal pages */
    server_rec *s;
} hm_conf_t;

/* ---- hm_config.c ---- */

hm_conf_t *hm_conf(server_rec *s);
void *hm_create_server_config(apr_pool_t *p, server_rec *s);
extern const command_rec hm_cmds[];

/* ---- hm_listen.c ---- */

/* Bind every HeartbeatListen (in the parent), or reuse the socket an
 * earlier generation bound; OK or HTTP_INTERNAL_SERVER_ERROR (logged). */
int hm_listen_bind_all(server_rec *s, hm_conf_t *conf);

/* The smallest receive buffer of the sockets, as SO_RCVBUF reports it, or
 * -1. */
long hm_listen_min_rcvbuf(const hm_conf_t *conf);

/* ---- hm_receiver.c ---- */

/* At child_init: this child's standby thread for election (NULL: no
 * receiver in this generation), and its stop when the child exits. */
void hm_receiver_child_init(apr_pool_t *pchild, server_rec *s, hb_elect_t *election);

/* ---- hm_handlers.c ---- */

/* Request handlers: "heartbeat" (POST) and "heartbeat-status". */
int hm_handler(request_rec *r);

/* At child_init: the POST handlers' rate limiter for this child. */
void hm_handlers_child_init(apr_pool_t *pchild, server_rec *s);

/* Adds our section to mod_status's /server-status (if it is loaded). */
void hm_register_status_hook(void);

#define HM_DEFAULT_MAX_SERVERS     10
#define HM_FILE_MODE_CAPACITY      1024
#define HM_DEFAULT_STORAGE_EVERY   apr_time_from_sec(1)
#define HM_DEFAULT_EXPIRY          apr_time_from_sec(30)
#define HM_DEFAULT_STALE           LBHB_FRESH_MAX /* what the balancer calls fresh at most */
#define HM_DEFAULT_AUTH_WINDOW     apr_time_from_sec(30)
#define HM_DEFAULT_RATE_LIMIT      100
#define HM_DEFAULT_MAX_PER_ADDRESS 16
#define HM_TABLE_MAX_CAPACITY      16777216

#endif
