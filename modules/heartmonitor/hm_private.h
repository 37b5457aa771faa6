/*
 * hm_private.h: state shared by the files of mod_heartmonitor.
 */
#ifndef HM_PRIVATE_H
#define HM_PRIVATE_H

#include "httpd.h"
#include "http_config.h"

#include "apr_network_io.h"
#include "apr_thread_proc.h"

#include "hm_table.h"

extern module AP_MODULE_DECLARE_DATA heartmonitor_module;

typedef struct {
    const char *text; /* as configured */
    apr_sockaddr_t *sa;
    apr_socket_t *sock; /* bound by the parent, kept across graceful restarts */
} hm_listen_t;

typedef struct {
    apr_array_header_t *listens; /* hm_listen_t */
    int max_servers;             /* -1 = unset (10) */
    const char *storage;         /* as configured, NULL = default */
    const char *storage_path;    /* resolved at post_config */
    int write_file;              /* write storage_path */
    apr_interval_time_t storage_interval;
    apr_interval_time_t expiry;
    apr_interval_time_t stale_after;
    int storage_interval_set, expiry_set;

    /* run time */
    hm_table_t *table;
    server_rec *s;
} hm_conf_t;

hm_conf_t *hm_conf(server_rec *s);

/* Apply one heartbeat from addr (port taken from the packet or the default).
 * Returns the parse status; via_http marks entries fed by POST. */
int hm_apply(hm_conf_t *conf, const char *buf, apr_size_t len, const apr_sockaddr_t *addr,
             int via_http, server_rec *s);

/* Count, remember (status page) and log a rejected heartbeat; reason is
 * an hb_status_e. */
void hm_reject(hm_conf_t *conf, const apr_sockaddr_t *addr, int via_http, int reason,
               server_rec *s);

/* Request handlers: "heartbeat" (POST) and "heartbeat-status". */
int hm_handler(request_rec *r);

/* Adds our section to mod_status's /server-status (if it is loaded). */
void hm_register_status_hook(void);

#define HM_DEFAULT_MAX_SERVERS   10
#define HM_FILE_MODE_CAPACITY    1024
#define HM_DEFAULT_STORAGE_EVERY apr_time_from_sec(1)
#define HM_DEFAULT_EXPIRY        apr_time_from_sec(30)
#define HM_DEFAULT_STALE         apr_time_from_sec(10)

#endif
