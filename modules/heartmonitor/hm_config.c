/*
 * hm_config.c: mod_heartmonitor's configuration: the server record and the
 * directives. Each value is checked as httpd reads it; what depends on the
 * whole configuration (defaults that follow from others, the storage path
 * under DefaultRuntimeDir, the table) is settled at post_config
 * (mod_heartmonitor.c).
 */
#include "httpd.h"
#include "http_config.h"

#include "apr_lib.h"
#include "apr_strings.h"

#include "hb_auth.h"
#include "hb_config.h"
#include "hb_net.h"
#include "hb_packet.h"
#include "hm_shm.h"
#include "hm_private.h"

hm_conf_t *hm_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &heartmonitor_module);
}

void *hm_create_server_config(apr_pool_t *p, server_rec *s)
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
    conf->max_per_addr = -1;
    return conf;
}

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
            err = apr_psprintf(cmd->pool, "%s: key id '%s' is given twice", cmd->cmd->name, k.id);
            hb_secret_clear(&k);
            return err;
        }
    }
    hb_secret_push(conf->keys, &k);
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
    apr_ipsubnet_t *sub;

    /* Whole addresses only: a name here would be looked up at every
     * restart and could silently change what is trusted, and "10" would
     * be taken for 10.0.0.0/8 (hb_config_subnet). */
    if (err || (err = hb_config_subnet(cmd->pool, cmd->cmd->name, arg, &sub)) != NULL) {
        return err;
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

static const char *hm_cmd_max_per_address(cmd_parms *cmd, void *dconf, const char *arg)
{
    hm_conf_t *conf = hm_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    uint64_t v;

    if (err) {
        return err;
    }
    if (hb_parse_u64(arg, strlen(arg), HM_TABLE_MAX_CAPACITY, &v) != HB_OK) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a number of origins, 0 (no limit) to %u",
                            cmd->cmd->name, arg, (unsigned int)HM_TABLE_MAX_CAPACITY);
    }
    conf->max_per_addr = (int)v;
    return NULL;
}

const command_rec hm_cmds[] = {
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
    AP_INIT_ITERATE(
        "HeartbeatAllow", hm_cmd_allow, NULL, RSRC_CONF,
        "addresses or CIDR ranges heartbeats (UDP and POST) may come from (default: any)"),
    AP_INIT_TAKE1("HeartbeatMaxPerAddress", hm_cmd_max_per_address, NULL, RSRC_CONF,
                  "with HeartbeatAuthMode migrate: the most unsigned origins one address may "
                  "hold in the table (default 16, 0 = no limit)"),
    AP_INIT_TAKE1("HeartbeatRateLimit", hm_cmd_rate_limit, NULL, RSRC_CONF,
                  "UDP heartbeats accepted per second from one address (default 100, 0 = "
                  "no limit)"),
    AP_INIT_TAKE1("HeartbeatExpiry", hm_cmd_expiry, NULL, RSRC_CONF,
                  "age after which an origin that stopped sending leaves the table "
                  "(default 30s)"),
    {NULL}};
