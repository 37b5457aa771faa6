/*
 * mod_lbmethod_heartbeat: lbmethod=heartbeat for mod_proxy_balancer.
 *
 * By default each request goes to the usable member with the most
 * effective ready slots: what the member last reported, minus the rise of
 * this proxy's own in-flight requests to it since that report, so between
 * two heartbeats we do not herd onto one member. Ties rotate. Two other
 * modes, per balancer: weighted (stock's random choice weighted by ready)
 * and p2c (power of two choices on effective ready).
 *
 * Data comes from mod_heartmonitor's shared table when that module runs in
 * this server (no file I/O, no lock and no allocation per request), or else
 * from the HeartbeatStorage file, parsed once per change.
 *
 * The balancer's own rules come first: ap_proxy_balancer_get_best_worker
 * walks lbsets in order, then hot standbys, skipping disabled, stopped,
 * draining and in-error members (retrying them as due). We let it find the
 * first tier that has a member with fresh data, collect every such member of
 * that tier, and choose among them.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "mod_proxy.h"

#include "apr_atomic.h"
#include "apr_file_info.h"
#include "apr_hash.h"
#include "apr_strings.h"

#include "hb_config.h"
#include "hb_join.h"
#include "hb_packet.h"
#include "hb_throttle.h"
#include "hm_table.h"
#include "lbhb_pick.h"
#include "lbhb_private.h"
#include "mod_heartmonitor.h"
#include "mod_lbmethod_heartbeat.h"

#define LBHB_RESOLVE_EVERY apr_time_from_sec(30)
/* How long after a start with no report at all the first picks wait for
 * one (lbhb_choose). */
#define LBHB_COLD_WAIT   apr_time_from_msec(250)
#define LBHB_STACK_CANDS 64
/* Outlier ejection defaults (lbhb_outlier.h): five failures in a row with
 * a rate 30 points above the peers', out for 10 s, doubling up to 30 times
 * that, at most half of the members out. */
#define LBHB_EJECT_AFTER  5
#define LBHB_EJECT_TIME   apr_time_from_sec(10)
#define LBHB_EJECT_MAX    50
#define LBHB_SLOW_START   0 /* HeartbeatSlowStart: off (docs/directives.md says why) */
#define LBHB_EJECT_EXCESS (LBHB_RATE_ONE * 3 / 10)
/* HeartbeatJoinExpire: a joined member silent this long is disabled, and
 * its slot may go to another origin after as long again. */
#define LBHB_JOIN_EXPIRE apr_time_from_sec(60)

typedef enum { LBHB_MODE_UNSET = 0, LBHB_MODE_MOST, LBHB_MODE_WEIGHTED, LBHB_MODE_P2C } lbhb_mode_e;
typedef enum { LBHB_FB_UNSET = 0, LBHB_FB_NONE, LBHB_FB_ROUNDROBIN } lbhb_fallback_e;

/* Settings that may differ per balancer: given in a <Proxy balancer://...>
 * section, or server-wide. */
typedef struct {
    lbhb_mode_e mode;
    lbhb_fallback_e fallback;
    apr_interval_time_t max_age;    /* 0 = unset */
    apr_interval_time_t warm_up;    /* -1 = unset */
    int eject;                      /* -1 = unset, 0 off, 1 on */
    int eject_after;                /* failures in a row; 0 = unset */
    apr_interval_time_t eject_time; /* 0 = unset */
    int eject_max;                  /* percent; -1 = unset */
    apr_interval_time_t slow_start; /* -1 = unset; 0 = off */
} lbhb_dconf_t;

static APR_OPTIONAL_FN_TYPE(proxy_balancer_get_best_worker) * lbhb_get_best_worker;

static hm_table_t *lbhb_shared;   /* the monitor's table, if any (per child) */
static const char *lbhb_own_path; /* our HeartbeatStorage (or its default), resolved */
static int lbhb_own_path_set;
static volatile apr_uint32_t lbhb_rand_counter;
/* When this server started (kept across graceful restarts, which keep the
 * table too): HeartbeatWarmUp counts from here. */
static apr_time_t lbhb_started_at;
/* When this child started: the cold-start wait (LBHB_COLD_WAIT) counts
 * from the later of the two, since a start can take a while between the
 * parent's configuration and the first child accepting. */
static apr_time_t lbhb_child_at;

/* ------------------------------------------------------------- config */

static void *lbhb_create_dir_config(apr_pool_t *p, char *dir)
{
    lbhb_dconf_t *d = apr_pcalloc(p, sizeof(*d));
    d->warm_up = -1;
    d->eject = -1;
    d->eject_max = -1;
    d->slow_start = -1;
    return d;
}

static void *lbhb_merge_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    lbhb_dconf_t *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    c->mode = add->mode ? add->mode : base->mode;
    c->fallback = add->fallback ? add->fallback : base->fallback;
    c->max_age = add->max_age ? add->max_age : base->max_age;
    c->warm_up = add->warm_up >= 0 ? add->warm_up : base->warm_up;
    c->eject = add->eject >= 0 ? add->eject : base->eject;
    c->eject_after = add->eject_after ? add->eject_after : base->eject_after;
    c->eject_time = add->eject_time ? add->eject_time : base->eject_time;
    c->eject_max = add->eject_max >= 0 ? add->eject_max : base->eject_max;
    c->slow_start = add->slow_start >= 0 ? add->slow_start : base->slow_start;
    return c;
}

static void *lbhb_create_server_config(apr_pool_t *p, server_rec *s)
{
    lbhb_sconf_t *conf = apr_pcalloc(p, sizeof(*conf));
    conf->resolve_every = LBHB_RESOLVE_EVERY;
    conf->join_expire = LBHB_JOIN_EXPIRE;
    return conf;
}

static lbhb_sconf_t *lbhb_sconf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &lbmethod_heartbeat_module);
}

static const char *lbhb_cmd_storage(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    lbhb_sconf(cmd->server)->storage = arg;
    return NULL;
}

static const char *lbhb_cmd_resolve(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    return err ? err
               : hb_config_time(cmd->pool, cmd->cmd->name, arg, apr_time_from_sec(1),
                                apr_time_from_sec(86400), &lbhb_sconf(cmd->server)->resolve_every);
}

/*
 * The pick settings reach a balancer from the main server configuration or
 * from its own <Proxy balancer://...> section; anywhere else (a
 * <Location>, a <VirtualHost> outside such a section) they would be read
 * by no balancer, so say where they belong instead of ignoring them.
 */
static const char *lbhb_where(cmd_parms *cmd)
{
    /* Directives at the top of a <VirtualHost> have it as their parent. */
    const ap_directive_t *parent = cmd->directive ? cmd->directive->parent : NULL;
    const char *args, *end;

    if (!parent || ((!strcasecmp(parent->directive, "<Proxy") ||
                     !strcasecmp(parent->directive, "<ProxyMatch")) &&
                    cmd->path && !strncasecmp(cmd->path, "balancer://", 11))) {
        return NULL;
    }
    /* A section's args keep their closing '>'. */
    args = parent->args ? parent->args : "";
    end = *args && args[strlen(args) - 1] == '>' ? "" : ">";
    return apr_psprintf(cmd->pool,
                        "%s is not allowed in %s %s%s: it belongs in the main server "
                        "configuration (every balancer) or in a <Proxy balancer://name> section "
                        "(that balancer)",
                        cmd->cmd->name, parent->directive, args, end);
}

/* The <Proxy balancer://name> section a directive stands in, or NULL. */
static const char *lbhb_section_balancer(cmd_parms *cmd)
{
    const ap_directive_t *parent = cmd->directive ? cmd->directive->parent : NULL;

    if (parent && !strcasecmp(parent->directive, "<Proxy") && cmd->path &&
        !strncasecmp(cmd->path, "balancer://", 11) && cmd->path[11]) {
        return cmd->path;
    }
    return NULL;
}

static lbhb_join_conf_t *lbhb_join_conf(cmd_parms *cmd, const char *name)
{
    lbhb_sconf_t *sc = lbhb_sconf(cmd->server);
    lbhb_join_conf_t *jc;
    int i;

    if (!sc->joins) {
        sc->joins = apr_array_make(cmd->pool, 2, sizeof(lbhb_join_conf_t));
    }
    for (i = 0; i < sc->joins->nelts; i++) {
        jc = &APR_ARRAY_IDX(sc->joins, i, lbhb_join_conf_t);
        if (!strcasecmp(jc->name, name)) {
            return jc;
        }
    }
    jc = apr_array_push(sc->joins);
    memset(jc, 0, sizeof(*jc));
    jc->name = apr_pstrdup(cmd->pool, name);
    ap_str_tolower((char *)jc->name);
    return jc;
}

static const char *lbhb_cmd_join(cmd_parms *cmd, void *dconf, int on)
{
    const char *name = lbhb_section_balancer(cmd);
    lbhb_join_conf_t *jc;

    if (!name) {
        return "HeartbeatJoin belongs in a <Proxy balancer://name> section: it lets origins "
               "join that balancer";
    }
    if (!hb_join_name_ok(name + 11, strlen(name + 11))) {
        return apr_psprintf(cmd->pool,
                            "HeartbeatJoin: origins can announce only balancer names of 1 to "
                            "%d letters, digits, '_', '.' and '-', not %s",
                            HB_JOIN_NAME_MAX, name);
    }
    jc = lbhb_join_conf(cmd, name);
    jc->on = on;
    jc->file = cmd->directive->filename;
    jc->line = cmd->directive->line_num;
    return NULL;
}

static const char *lbhb_cmd_join_member(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *name = lbhb_section_balancer(cmd);

    if (!name) {
        return "HeartbeatJoinMember belongs in a <Proxy balancer://name> section with "
               "HeartbeatJoin on";
    }
    return lbhb_join_param(cmd->pool, &lbhb_join_conf(cmd, name)->params, arg);
}

static const char *lbhb_cmd_join_expire(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *name = lbhb_section_balancer(cmd);
    apr_interval_time_t v;
    const char *err = lbhb_where(cmd);

    if (err) {
        return err;
    }
    err = hb_config_time(cmd->pool, cmd->cmd->name, arg, apr_time_from_sec(1),
                         apr_time_from_sec(86400), &v);
    if (err) {
        return err;
    }
    if (name) {
        lbhb_join_conf(cmd, name)->expire = v;
    } else {
        lbhb_sconf(cmd->server)->join_expire = v;
    }
    return NULL;
}

static const char *lbhb_cmd_max_age(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);

    return err ? err
               : hb_config_time(cmd->pool, cmd->cmd->name, arg, apr_time_from_msec(100),
                                apr_time_from_sec(3600), &d->max_age);
}

static const char *lbhb_cmd_warm_up(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);

    return err ? err
               : hb_config_time(cmd->pool, cmd->cmd->name, arg, 0, apr_time_from_sec(3600),
                                &d->warm_up);
}

static const char *lbhb_cmd_slow_start(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);

    return err ? err
               : hb_config_time(cmd->pool, cmd->cmd->name, arg, 0, apr_time_from_sec(600),
                                &d->slow_start);
}

static const char *lbhb_cmd_eject(cmd_parms *cmd, void *dconf, const char *arg)
{
    static const char *const words[] = {"off", "on", NULL};
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);

    if (!err) {
        err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &d->eject);
    }
    return err;
}

static const char *lbhb_cmd_eject_after(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);
    uint64_t v;

    if (err) {
        return err;
    }
    if (hb_parse_u64(arg, strlen(arg), 1000, &v) != HB_OK || v < 1) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a number of failures from 1 to 1000",
                            cmd->cmd->name, arg);
    }
    d->eject_after = (int)v;
    return NULL;
}

static const char *lbhb_cmd_eject_time(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);

    return err ? err
               : hb_config_time(cmd->pool, cmd->cmd->name, arg, apr_time_from_sec(1),
                                apr_time_from_sec(3600), &d->eject_time);
}

static const char *lbhb_cmd_eject_max(cmd_parms *cmd, void *dconf, const char *arg)
{
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);
    uint64_t v;

    if (err) {
        return err;
    }
    if (hb_parse_u64(arg, strlen(arg), 100, &v) != HB_OK) {
        return apr_psprintf(cmd->pool, "%s: '%s' must be a percentage from 0 to 100",
                            cmd->cmd->name, arg);
    }
    d->eject_max = (int)v;
    return NULL;
}

static const char *lbhb_cmd_mode(cmd_parms *cmd, void *dconf, const char *arg)
{
    /* In lbhb_mode_e order, after LBHB_MODE_UNSET. */
    static const char *const words[] = {"most", "weighted", "p2c", NULL};
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);
    int i;

    if (!err && !(err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &i))) {
        d->mode = (lbhb_mode_e)(LBHB_MODE_MOST + i);
    }
    return err;
}

static const char *lbhb_cmd_fallback(cmd_parms *cmd, void *dconf, const char *arg)
{
    /* In lbhb_fallback_e order, after LBHB_FB_UNSET. */
    static const char *const words[] = {"none", "roundrobin", NULL};
    lbhb_dconf_t *d = dconf;
    const char *err = lbhb_where(cmd);
    int i;

    if (!err && !(err = hb_config_choice(cmd->pool, cmd->cmd->name, arg, words, &i))) {
        d->fallback = (lbhb_fallback_e)(LBHB_FB_NONE + i);
    }
    return err;
}

/*
 * mod_proxy has merged the <Proxy balancer://...> section into the request's
 * configuration by the time a balancer picks, so the section's values win
 * over the server-wide ones as for any other directive.
 */
static lbhb_dconf_t lbhb_settings(request_rec *r)
{
    lbhb_dconf_t out = {
        LBHB_MODE_MOST, LBHB_FB_NONE,   0, LBHB_FRESH_MAX, 1, LBHB_EJECT_AFTER, LBHB_EJECT_TIME,
        LBHB_EJECT_MAX, LBHB_SLOW_START};
    const lbhb_dconf_t *d = ap_get_module_config(r->per_dir_config, &lbmethod_heartbeat_module);

    if (d) {
        out.mode = d->mode ? d->mode : out.mode;
        out.fallback = d->fallback ? d->fallback : out.fallback;
        out.max_age = d->max_age;
        out.warm_up = d->warm_up >= 0 ? d->warm_up : out.warm_up;
        out.eject = d->eject >= 0 ? d->eject : out.eject;
        out.eject_after = d->eject_after ? d->eject_after : out.eject_after;
        out.eject_time = d->eject_time ? d->eject_time : out.eject_time;
        out.eject_max = d->eject_max >= 0 ? d->eject_max : out.eject_max;
        out.slow_start = d->slow_start >= 0 ? d->slow_start : out.slow_start;
    }
    return out;
}

/* --------------------------------------------------------------- pick */

typedef struct {
    proxy_worker *worker;
    lbhb_cand_t cand;
} lbhb_found_t;

typedef struct {
    const hm_table_t *table;
    request_rec *r;
    apr_time_t now;
    apr_interval_time_t max_age; /* 0 = from the sender's interval */
    lbhb_found_t *found;
    unsigned int nfound, cap;
    unsigned int with_entry;        /* members offered that have any entry */
    int warming;                    /* within HeartbeatWarmUp of the start */
    int eject;                      /* HeartbeatEject on */
    apr_interval_time_t slow_start; /* HeartbeatSlowStart; 0 = off */
    /* An entry first seen after this is a member that joined (or came
     * back) after the start-up; INT64_MAX when the table cannot tell (the
     * storage file's entries have no creation time). */
    apr_time_t joined_after;
    unsigned int ejected; /* members skipped as ejected */
    unsigned int unknown; /* candidates not heard from yet */
    int weighted;         /* HeartbeatPickMode weighted: by the reports alone */
    /* Why nothing was found, for LB0304: of the members with an entry,
     * how many had fresh data but were not up, and the newest stale one. */
    unsigned int not_up;
    unsigned int unsigned_only; /* heard signed, now only unsigned entries */
    apr_time_t stale_seen;
    apr_interval_time_t stale_max_age;
    apr_uint32_t cursor;
    unsigned int n;
    lbhb_score_t best; /* round-robin fallback */
} lbhb_baton_t;

static apr_interval_time_t lbhb_entry_max_age(const lbhb_baton_t *b, const hm_entry_t *e)
{
    return lbhb_max_age(b->max_age, e->interval_ms);
}

/* The freshest entry among a member's addresses, a signed one only once
 * the member was found signed (lbhb_find_member: 1, 0 or -1). The word
 * that remembers it is shared by every child; without a shared slot it is
 * this process's, and without even a cache slot the rule has no memory. */
static int lbhb_lookup(const hm_table_t *t, proxy_worker *w, lbhb_member_t *m, hm_entry_t *e)
{
    hm_addr_t keys[LBHB_MAX_ADDRS];
    uint32_t *seen = lbhb_inflight_seen(w);

    return lbhb_find_member(t, keys, lbhb_member_keys(m, keys), seen ? seen : &m->seen, e);
}

/* Add a candidate; returns what the balancer's walk wants from its
 * callback: accepting the first one makes the walk settle on this tier
 * (lbset or standby set); the choice among the collected members is ours. */
static int lbhb_offer(lbhb_baton_t *b, proxy_worker *w, uint32_t ready, uint64_t started,
                      int unknown)
{
    lbhb_found_t *f;

    if (b->nfound == b->cap) {
        return 0;
    }
    f = &b->found[b->nfound++];
    f->worker = w;
    f->cand.usable = 1;
    f->cand.ready = ready;
    f->cand.started = started;
    f->cand.unknown = unknown;
    /* loadfactor: mod_proxy keeps it at least 1 (some versions scaled by
     * 100); only the ratio between members matters. */
    f->cand.weight = w->s->lbfactor > 0 ? (uint32_t)w->s->lbfactor : 1;
    b->unknown += unknown;
    return b->nfound == 1;
}

/* HeartbeatSlowStart: the ready count to rank a member on while it comes
 * (back) into service (lbhb_ramp_ready). */
static uint32_t lbhb_slow_ready(const lbhb_baton_t *b, proxy_worker *w, const hm_entry_t *e,
                                uint32_t ready)
{
    lbhb_ramp_t *rp = lbhb_inflight_ramp(w);
    lbhb_outlier_t *o = lbhb_inflight_outlier(w);
    int64_t until = o ? __atomic_load_n(&o->until, __ATOMIC_ACQUIRE) : 0;
    int64_t since;

    if (rp) {
        lbhb_ramp_observe(rp, e->seq, e->seen);
    }
    since = lbhb_ramp_since(rp, e->first_seen, b->joined_after, until);
    return lbhb_ramp_ready(ready, since, b->now, b->slow_start);
}

static int lbhb_collect(proxy_worker *current, proxy_worker *prev_best, void *data)
{
    lbhb_baton_t *b = data;
    lbhb_member_t *m = lbhb_member(current);
    lbhb_member_t local;
    hm_entry_t e = {{0}};
    apr_size_t busy_now;
    uint64_t started = 0, base = 0;
    uint32_t ready, report_busy, load_ready, load_busy;
    int64_t load_at;
    apr_time_t report_seen;
    lbhb_load_slot_t *load;
    int found, prior, have_base;

    if (!LBHB_WORKER_CURRENT(current)) {
        return 0; /* its slot went to another origin (lbhb_joiner.c) */
    }
    if (b->eject) {
        lbhb_outlier_t *o = lbhb_inflight_outlier(current);
        if (o && lbhb_outlier_ejected(o, b->now)) {
            b->ejected++;
            return 0;
        }
    }
    if (!m) {
        memset(&local, 0, sizeof(local));
        lbhb_member_fill(current, &local);
        m = &local;
    }
    found = b->table ? lbhb_lookup(b->table, current, m, &e) : 0;
    if (found < 0) {
        /* Heard signed before: an unsigned entry of its address could be
         * anyone's (HeartbeatAuthMode migrate), not a reason to send it
         * requests, not even in the warm-up. */
        b->with_entry++;
        b->unsigned_only++;
        if (m != &local && !apr_atomic_xchg32(&m->warned_unsigned, 1)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, b->r,
                          "LB0312: BalancerMember %s sent signed heartbeats before, and has "
                          "only unsigned ones now: they cannot speak for it, so it gets no "
                          "requests from lbmethod=heartbeat until it signs again, or until "
                          "this server restarts (logged once)",
                          current->s->name);
        }
        return 0;
    }
    if (!found) {
        if (b->warming) {
            /* Not heard from yet, and the proxy has just started: it stands
             * in as the mean of the others (lbhb_fill_unknown). */
            return lbhb_offer(b, current, 0, current->s->busy, 1);
        }
        if (m != &local && !apr_atomic_xchg32(&m->warned, 1)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, b->r,
                          "LB0302: BalancerMember %s has no heartbeat entry%s; it gets no "
                          "requests from lbmethod=heartbeat until it reports (logged once)",
                          current->s->name,
                          m->is_name && !m->nkeys ? " (its host name does not resolve)" : "");
        }
        return 0;
    }
    b->with_entry++;
    /* Heard before this server started and not since: a report the
     * monitor read back from its last run (hm_seed_table). During the
     * warm-up it stands in for the member, as what it can take (ready +
     * busy then), so that a small origin does not get as much as a big one
     * until both have reported. Not from a storage file someone else
     * writes: a stale one there may be a dead monitor's. */
    prior = b->warming && b->table == lbhb_shared && e.seen < lbhb_started_at;
    if (!prior && b->now - e.seen > lbhb_entry_max_age(b, &e)) {
        if (e.seen > b->stale_seen) {
            b->stale_seen = e.seen;
            b->stale_max_age = lbhb_entry_max_age(b, &e);
        }
        return 0;
    }
    if (e.state != HB_STATE_UP) {
        b->not_up++;
        return 0;
    }
    report_seen = e.seen;
    ready = prior ? (e.ready > UINT32_MAX - e.busy ? UINT32_MAX : e.ready + e.busy) : e.ready;
    report_busy = prior ? 0 : e.busy;
    if ((load = lbhb_inflight_load(current)) &&
        lbhb_load_get(load, &load_ready, &load_busy, &load_at) && load_at > e.seen) {
        /* The member's answer to a request, newer than its heartbeat: the
         * same kind of report, only fresher (lbhb_load.h). */
        report_seen = load_at;
        ready = load_ready;
        report_busy = load_busy;
    }
    busy_now = current->s->busy;
    have_base = lbhb_inflight_baseline(current, report_seen, busy_now, &base);
    if (!have_base && m != &local) {
        /* No shared slot: a per-process baseline, blurred by the requests
         * other children start before this one looks. */
        base = lbhb_baseline(&m->baseline, report_seen, busy_now);
        have_base = 1;
    }
    if (have_base && b->weighted) {
        /* Stock's mode draws by the reports alone; the requests started
         * since count only when every member is full (its fallback). */
        started = busy_now > base ? busy_now - base : 0;
    } else if (have_base) {
        ready = lbhb_credit(ready, report_busy, base, busy_now, &started);
    }
    if (b->slow_start > 0) {
        ready = lbhb_slow_ready(b, current, &e, ready);
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, b->r,
                  "LB0309: %s: ready=%u (ranked as %u) seen=%" APR_TIME_T_FMT
                  " busy_now=%" APR_SIZE_T_FMT " started=%" APR_UINT64_T_FMT,
                  current->s->name, e.ready, ready, e.seen, busy_now, started);
    return lbhb_offer(b, current, ready, started, 0);
}

/* Fallback: plain rotation over the usable members, same tiers. */
static int lbhb_rotate(proxy_worker *current, proxy_worker *prev_best, void *data)
{
    lbhb_baton_t *b = data;
    lbhb_score_t score;

    if (!LBHB_WORKER_CURRENT(current)) {
        return 0;
    }
    score.eff = 0;
    score.order = lbhb_order((unsigned int)current->s->index % b->n, b->cursor, b->n);
    if (prev_best && !lbhb_better(&score, &b->best)) {
        return 0;
    }
    b->best = score;
    return 1;
}

/* Says which of the reasons it is: they have different fixes, and "no
 * fresh data" alone sends people checking firewalls for a member that is
 * merely draining. */
static void lbhb_warn_no_data(request_rec *r, proxy_balancer *balancer, int fallback,
                              const hm_table_t *t, const lbhb_baton_t *b)
{
    static hb_throttle_t throttle;
    const char *why;

    if (!hb_throttle(&throttle, apr_time_now(), HB_REPORT_EVERY, NULL)) {
        return;
    }
    if (!t) {
        why = apr_psprintf(r->pool,
                           "there is no heartbeat data to read: mod_heartmonitor does not "
                           "keep a table in this server and HeartbeatStorage %s has not been "
                           "read (load mod_heartmonitor with HeartbeatListen here, or point "
                           "HeartbeatStorage at the file a monitor writes)",
                           lbhb_file_path() ? lbhb_file_path() : "(none)");
    } else if (b->with_entry == 0) {
        why = "no member has ever been heard from (no heartbeat entry: check HeartbeatAddress "
              "on the origins and HeartbeatListen, HeartbeatAllow and firewalls here)";
    } else if (b->stale_seen == 0 && b->unsigned_only == 0) {
        why = apr_psprintf(r->pool, "every member with heartbeat data (%u) is draining or stopping",
                           b->not_up);
    } else if (b->stale_seen == 0) {
        why = apr_psprintf(r->pool,
                           "of the members with heartbeat data, %u are draining or stopping and "
                           "%u sent signed heartbeats before and only unsigned ones now (LB0312)",
                           b->not_up, b->unsigned_only);
    } else {
        why =
            apr_psprintf(r->pool,
                         "the newest heartbeat data is %.1f s old, older than its max age of "
                         "%.1f s (HeartbeatMaxAge); %u more member(s) draining or stopping, "
                         "%u with only unsigned heartbeats since they were heard signed",
                         (double)(b->now - b->stale_seen) / APR_USEC_PER_SEC,
                         (double)b->stale_max_age / APR_USEC_PER_SEC, b->not_up, b->unsigned_only);
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "LB0304: no member of %s can be picked: %s%s; %s (HeartbeatFallback; logged "
                  "at most once a minute)",
                  balancer->s->name, why,
                  b->ejected ? apr_psprintf(r->pool,
                                            " (%u more ejected for failing, "
                                            "HeartbeatEject)",
                                            b->ejected)
                             : "",
                  fallback ? "rotating over the usable members" : "refusing with 503");
}

/* One pick's outcome in the balancer's shared counters (NULL: no slot). */
static void lbhb_count(uint64_t *counters, int which)
{
    if (counters) {
        __atomic_fetch_add(&counters[which], 1, __ATOMIC_RELAXED);
    }
}

static uint64_t lbhb_random(void)
{
    return lbhb_mix64(((uint64_t)apr_atomic_inc32(&lbhb_rand_counter) << 32) ^
                      (uint64_t)apr_time_now());
}

static proxy_worker *lbhb_choose(proxy_balancer *balancer, request_rec *r, const hm_table_t *t,
                                 const lbhb_dconf_t *set)
{
    lbhb_found_t stack[LBHB_STACK_CANDS];
    lbhb_cand_t cands[LBHB_STACK_CANDS], *cs = cands;
    lbhb_baton_t b;
    uint64_t *counters;
    proxy_worker *w;
    unsigned int i;
    int pick = -1;

    memset(&b, 0, sizeof(b));
    b.table = t;
    b.r = r;
    b.now = apr_time_now();
    b.max_age = set->max_age;
    b.n = balancer->workers->nelts > 0 ? (unsigned int)balancer->workers->nelts : 1;
    b.cursor = lbhb_inflight_cursor(balancer, &counters) % b.n;
    b.found = stack;
    b.cap = LBHB_STACK_CANDS;
    if (b.n > LBHB_STACK_CANDS) {
        b.found = apr_palloc(r->pool, b.n * sizeof(lbhb_found_t));
        cs = apr_palloc(r->pool, b.n * sizeof(lbhb_cand_t));
        b.cap = b.n;
    }

    b.warming = b.now - lbhb_started_at < set->warm_up;
    b.eject = set->eject;
    b.slow_start = set->slow_start;
    b.weighted = set->mode == LBHB_MODE_WEIGHTED;
    b.joined_after = t && t == lbhb_shared ? lbhb_started_at + set->warm_up : INT64_MAX;
    if (t || b.warming) {
        lbhb_baton_t init = b;
        lbhb_get_best_worker(balancer, r, lbhb_collect, &b);
        /* Just started, with nothing to go on: no report saved from before
         * the start, none since. Origins that beat at a closed port while
         * the proxy was down retry every 100 ms (mod_heartbeat), so their
         * first reports are due any moment: wait for them a little rather
         * than split the first requests blindly between a small origin
         * and a big one. Only once per start, and only while some member
         * of this balancer has no report: their beats are 0-100 ms apart,
         * and the first one heard alone would make every unheard member
         * stand in as its equal (lbhb_fill_unknown). */
        while (b.warming && t && t == lbhb_shared && b.unknown > 0 &&
               apr_time_now() <
                   (lbhb_child_at > lbhb_started_at ? lbhb_child_at : lbhb_started_at) +
                       LBHB_COLD_WAIT) {
            apr_sleep(apr_time_from_msec(5));
            b = init;
            b.now = apr_time_now();
            lbhb_get_best_worker(balancer, r, lbhb_collect, &b);
        }
    }
    if (b.nfound) {
        for (i = 0; i < b.nfound; i++) {
            cs[i] = b.found[i].cand;
        }
        if (b.unknown) {
            lbhb_fill_unknown(cs, b.nfound);
        }
        switch (set->mode) {
        case LBHB_MODE_WEIGHTED:
            pick = lbhb_pick_weighted(cs, b.nfound, lbhb_random());
            break;
        case LBHB_MODE_P2C:
            pick = lbhb_pick_p2c(cs, b.nfound, lbhb_random());
            break;
        default:
            pick = lbhb_pick_most(cs, b.nfound, b.cursor);
        }
        if (pick >= 0) {
            lbhb_count(counters, set->mode == LBHB_MODE_WEIGHTED ? LBHB_BAL_WEIGHTED
                                 : set->mode == LBHB_MODE_P2C    ? LBHB_BAL_P2C
                                                                 : LBHB_BAL_MOST);
            return b.found[pick].worker;
        }
    }
    lbhb_warn_no_data(r, balancer, set->fallback == LBHB_FB_ROUNDROBIN, t, &b);
    w = set->fallback == LBHB_FB_ROUNDROBIN ? lbhb_get_best_worker(balancer, r, lbhb_rotate, &b)
                                            : NULL;
    lbhb_count(counters, w ? LBHB_BAL_FALLBACK : LBHB_BAL_NO_DATA);
    return w;
}

static proxy_worker *lbhb_finder(proxy_balancer *balancer, request_rec *r)
{
    lbhb_dconf_t set = lbhb_settings(r);
    proxy_worker *w;

    if (!lbhb_get_best_worker) {
        return NULL;
    }
    if (lbhb_shared) {
        w = lbhb_choose(balancer, r, lbhb_shared, &set);
    } else {
        w = lbhb_choose(balancer, r, lbhb_file_acquire(r->server, apr_time_now()), &set);
        lbhb_file_release();
    }
    if (w) {
        /* For the answer's load report and for ejection (a retry after a
         * failed connect picks again: the last one counts). */
        lbhb_picked_t *pk = ap_get_module_config(r->request_config, &lbmethod_heartbeat_module);
        if (!pk) {
            pk = apr_palloc(r->pool, sizeof(*pk));
            ap_set_module_config(r->request_config, &lbmethod_heartbeat_module, pk);
        }
        pk->worker = w;
        pk->balancer = balancer;
    }
    return w;
}

/*
 * After each answer of a member we picked: a 5xx (the member's own, or the
 * proxy's when it could not reach it) is a failure. Only a failure needs
 * the peers' rates, so a success costs one shared-memory update.
 */
static void lbhb_record(request_rec *r, const lbhb_picked_t *pk)
{
    lbhb_dconf_t set = lbhb_settings(r);
    lbhb_outlier_conf_t c;
    lbhb_outlier_t *o = lbhb_inflight_outlier(pk->worker);
    proxy_worker **ws = (proxy_worker **)pk->balancer->workers->elts;
    unsigned int members = (unsigned int)pk->balancer->workers->nelts, out = 0, n = 0, i;
    uint64_t sum = 0;
    int failed = r->status >= 500;
    apr_time_t now = apr_time_now();
    lbhb_outlier_e ev;

    if (!o || !set.eject) {
        return;
    }
    c.consecutive = (uint32_t)set.eject_after;
    c.excess = LBHB_EJECT_EXCESS;
    c.base = set.eject_time;
    c.max = 30 * set.eject_time;
    c.max_share = (unsigned int)set.eject_max;
    for (i = 0; failed && i < members; i++) {
        lbhb_outlier_t *po = ws[i] == pk->worker || !LBHB_WORKER_CURRENT(ws[i])
                                 ? NULL
                                 : lbhb_inflight_outlier(ws[i]);
        if (!po) {
            continue;
        }
        if (lbhb_outlier_ejected(po, now)) {
            out++;
        } else {
            sum += __atomic_load_n(&po->rate, __ATOMIC_RELAXED);
            n++;
        }
    }
    ev = lbhb_outlier_record(o, failed, now, &c, n ? (uint32_t)(sum / n) : 0, out, members);
    if (ev == LBHB_OUTLIER_EJECTED) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "LB0310: %s ejected from %s for %" APR_TIME_T_FMT
                      " s: it failed %d times in a row (status %d), far more than the other "
                      "members (HeartbeatEject)",
                      pk->worker->s->name, pk->balancer->s->name,
                      apr_time_sec(__atomic_load_n(&o->until, __ATOMIC_RELAXED) - now),
                      set.eject_after, r->status);
    } else if (ev == LBHB_OUTLIER_RETURNED) {
        ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r,
                      "LB0311: %s is back in %s: it answered after its ejection",
                      pk->worker->s->name, pk->balancer->s->name);
    }
}

static int lbhb_log_transaction(request_rec *r)
{
    const lbhb_picked_t *pk = NULL;
    request_rec *at = r, *rr;

    /* The request that was proxied: the last one of an internal redirect
     * chain that we picked for. */
    for (rr = r; rr; rr = rr->next) {
        const lbhb_picked_t *p =
            ap_get_module_config(rr->request_config, &lbmethod_heartbeat_module);
        if (p) {
            pk = p;
            at = rr;
        }
    }
    if (pk) {
        lbhb_record(at, pk);
    }
    return DECLINED;
}

static apr_status_t lbhb_reset(proxy_balancer *balancer, server_rec *s)
{
    return APR_SUCCESS;
}

static apr_status_t lbhb_age(proxy_balancer *balancer, server_rec *s)
{
    return APR_SUCCESS;
}

static const proxy_balancer_method lbhb_method = {"heartbeat", &lbhb_finder, NULL,
                                                  &lbhb_reset, &lbhb_age,    NULL};

/* --------------------------------------------------------------- hooks */

/* Calls fn for every balancer that uses lbmethod=heartbeat in s and its
 * virtual hosts, until fn returns non-zero. A balancer of the main server
 * is met again in each virtual host that inherits it (BalancerInherit). */
static int lbhb_each_balancer(server_rec *s, int (*fn)(proxy_balancer *b, void *baton), void *baton)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");

    for (; proxy && s; s = s->next) {
        proxy_server_conf *psf = ap_get_module_config(s->module_config, proxy);
        proxy_balancer *b = psf && psf->balancers ? (proxy_balancer *)psf->balancers->elts : NULL;
        int i;

        for (i = 0; b && i < psf->balancers->nelts; i++) {
            if (b[i].lbmethod && b[i].lbmethod->name && !strcmp(b[i].lbmethod->name, "heartbeat") &&
                fn(&b[i], baton)) {
                return 1;
            }
        }
    }
    return 0;
}

typedef struct {
    apr_pool_t *p;
    server_rec *s;
    apr_array_header_t *out;
    apr_hash_t *rows; /* name(s) -> row + 1 */
    apr_hash_t *seen; /* proxy_worker_shared * already counted */
    apr_time_t now;
} lbhb_status_walk_t;

static void lbhb_member_fill_status(lbhb_member_status_t *m, proxy_balancer *b, proxy_worker *w,
                                    apr_time_t now)
{
    lbhb_outlier_t *o = lbhb_inflight_outlier(w);
    lbhb_load_slot_t *ld;

    memset(m, 0, sizeof(*m));
    m->balancer = b->s->name;
    m->member = w->s->name;
    m->joined = lbhb_join_mark(w);
    if (o) {
        m->until = __atomic_load_n(&o->until, __ATOMIC_RELAXED);
        m->ejected = lbhb_outlier_ejected(o, now);
        m->ejections = __atomic_load_n(&o->ejections, __ATOMIC_RELAXED);
        m->ejections_total = __atomic_load_n(&o->total, __ATOMIC_RELAXED);
        m->failure_rate = (double)__atomic_load_n(&o->rate, __ATOMIC_RELAXED) / LBHB_RATE_ONE;
    }
    if ((ld = lbhb_inflight_load(w)) != NULL) {
        uint32_t ready, busy;
        m->load_reports = __atomic_load_n(&ld->used, __ATOMIC_RELAXED);
        m->load_ignored = __atomic_load_n(&ld->ignored, __ATOMIC_RELAXED);
        if (lbhb_load_get(ld, &ready, &busy, &m->load_at)) {
            m->load_ready = ready;
            m->load_busy = busy;
        }
    }
}

/*
 * One row per balancer name and member URL. A balancer inherited by
 * virtual hosts is the same balancer to us (its shared slots are keyed by
 * name), but mod_proxy may keep a record of its own per host: the
 * requests each counts add up, and a record met twice counts once.
 */
static int lbhb_member_rows(proxy_balancer *b, void *baton)
{
    lbhb_status_walk_t *sw = baton;
    proxy_worker **ws;
    int j;

    /* Members that joined since this child last looked: list them too. */
    lbhb_join_sync(b, sw->s);
    ws = (proxy_worker **)b->workers->elts;

    for (j = 0; j < b->workers->nelts; j++) {
        proxy_worker_shared *ps = ws[j]->s;
        const char *key;
        lbhb_member_status_t *m;
        apr_uintptr_t row;

        if (apr_hash_get(sw->seen, &ps, sizeof(ps)) || !LBHB_WORKER_CURRENT(ws[j]) ||
            !(ps->hash.def || ps->hash.fnv)) {
            continue;
        }
        apr_hash_set(sw->seen, apr_pmemdup(sw->p, &ps, sizeof(ps)), sizeof(ps), ps);
        key = apr_pstrcat(sw->p, b->s->name, "\n", ps->name, NULL);
        row = (apr_uintptr_t)apr_hash_get(sw->rows, key, APR_HASH_KEY_STRING);
        if (!row) {
            m = apr_array_push(sw->out);
            lbhb_member_fill_status(m, b, ws[j], sw->now);
            apr_hash_set(sw->rows, key, APR_HASH_KEY_STRING, (void *)(apr_uintptr_t)sw->out->nelts);
        } else {
            m = &APR_ARRAY_IDX(sw->out, (int)row - 1, lbhb_member_status_t);
        }
        m->elected += ps->elected;
        m->busy += ps->busy;
    }
    return 0;
}

/* Named as the optional function it implements (mod_lbmethod_heartbeat.h). */
static apr_array_header_t *lbhb_member_status(apr_pool_t *p, server_rec *s)
{
    lbhb_status_walk_t sw;

    sw.p = p;
    sw.s = s;
    sw.out = apr_array_make(p, 8, sizeof(lbhb_member_status_t));
    sw.rows = apr_hash_make(p);
    sw.seen = apr_hash_make(p);
    sw.now = apr_time_now();
    lbhb_each_balancer(s, lbhb_member_rows, &sw);
    return sw.out;
}

static int lbhb_balancer_row(proxy_balancer *b, void *baton)
{
    lbhb_status_walk_t *sw = baton;
    const uint64_t *c;
    lbhb_balancer_status_t *st;

    if (apr_hash_get(sw->rows, b->s->name, APR_HASH_KEY_STRING) ||
        !(c = lbhb_inflight_counters(b))) {
        return 0;
    }
    apr_hash_set(sw->rows, b->s->name, APR_HASH_KEY_STRING, b);
    st = apr_array_push(sw->out);
    st->balancer = b->s->name;
    st->picks_most = __atomic_load_n(&c[LBHB_BAL_MOST], __ATOMIC_RELAXED);
    st->picks_weighted = __atomic_load_n(&c[LBHB_BAL_WEIGHTED], __ATOMIC_RELAXED);
    st->picks_p2c = __atomic_load_n(&c[LBHB_BAL_P2C], __ATOMIC_RELAXED);
    st->fallback = __atomic_load_n(&c[LBHB_BAL_FALLBACK], __ATOMIC_RELAXED);
    st->no_data = __atomic_load_n(&c[LBHB_BAL_NO_DATA], __ATOMIC_RELAXED);
    st->joined = __atomic_load_n(&c[LBHB_BAL_JOINED], __ATOMIC_RELAXED);
    st->left = __atomic_load_n(&c[LBHB_BAL_LEFT], __ATOMIC_RELAXED);
    st->join_full = __atomic_load_n(&c[LBHB_BAL_JOIN_FULL], __ATOMIC_RELAXED);
    st->join = lbhb_join_enabled(b->s->name);
    return 0;
}

/* Named as the optional function it implements (mod_lbmethod_heartbeat.h). */
static apr_array_header_t *lbhb_balancer_status(apr_pool_t *p, server_rec *s)
{
    lbhb_status_walk_t sw;

    memset(&sw, 0, sizeof(sw));
    sw.out = apr_array_make(p, 4, sizeof(lbhb_balancer_status_t));
    sw.rows = apr_hash_make(p);
    lbhb_each_balancer(s, lbhb_balancer_row, &sw);
    return sw.out;
}

static int lbhb_first_found(proxy_balancer *b, void *baton)
{
    *(const char **)baton = b->s->name;
    return 1;
}

/* The first balancer of any virtual host that uses lbmethod=heartbeat. */
static const char *lbhb_first_user(server_rec *s)
{
    const char *name = NULL;

    lbhb_each_balancer(s, lbhb_first_found, &name);
    return name;
}

/* The file to read when there is no shared table: our HeartbeatStorage,
 * else where a stock monitor loaded here writes by default, else ours. */
static const char *lbhb_default_path(apr_pool_t *p, const lbhb_sconf_t *conf)
{
    int stock_monitor =
        ap_find_linked_module("mod_heartmonitor.c") && !APR_RETRIEVE_OPTIONAL_FN(hm_storage_path);

    if (conf->storage) {
        return ap_runtime_dir_relative(p, conf->storage);
    }
    return ap_runtime_dir_relative(p, stock_monitor ? HB_STORAGE_STOCK : HB_STORAGE_DEFAULT);
}

static int lbhb_post_config(apr_pool_t *p, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    lbhb_sconf_t *conf = lbhb_sconf(s);
    const char *user;
    apr_finfo_t fi;

    lbhb_shared = NULL;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    lbhb_get_best_worker = APR_RETRIEVE_OPTIONAL_FN(proxy_balancer_get_best_worker);
    if (!lbhb_get_best_worker) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "LB0303: lbmethod_heartbeat needs mod_proxy (2.4.26 or later) loaded");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    {
        apr_time_t *first = NULL;
        apr_pool_userdata_get((void **)&first, "lbhb.started", s->process->pool);
        if (!first) {
            first = apr_palloc(s->process->pool, sizeof(*first));
            *first = apr_time_now();
            apr_pool_userdata_set(first, "lbhb.started", apr_pool_cleanup_null, s->process->pool);
        }
        lbhb_started_at = *first;
    }
    /* Resolved now, so DefaultRuntimeDir counts wherever it stands. */
    lbhb_own_path = lbhb_default_path(p, conf);
    lbhb_own_path_set = conf->storage != NULL;
    lbhb_inflight_init(p, s);
    {
        APR_OPTIONAL_FN_TYPE(hm_shared_table) *table_fn = APR_RETRIEVE_OPTIONAL_FN(hm_shared_table);
        int rv = lbhb_join_post_config(p, ptemp, s, table_fn ? table_fn() : NULL);
        if (rv != OK) {
            return rv;
        }
    }

    /* Without a monitor in this server the balancer reads a file that
     * something else must write; if there is none, every request to a
     * heartbeat balancer would fail with only LB0304 to go by. */
    user = lbhb_first_user(s);
    if (user && !ap_find_linked_module("mod_heartmonitor.c") &&
        apr_stat(&fi, lbhb_own_path, APR_FINFO_TYPE, ptemp) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "LB0308: %s uses lbmethod=heartbeat, but this server has no heartbeat "
                     "data: mod_heartmonitor is not loaded and HeartbeatStorage %s does not "
                     "exist. Load mod_heartmonitor (with HeartbeatListen) in this server, or "
                     "set HeartbeatStorage to the file a monitor on this host writes; until "
                     "then its requests get 503 (or rotate, with HeartbeatFallback roundrobin)",
                     user, lbhb_own_path);
    }
    return OK;
}

/*
 * Where the data comes from is settled per child, once every module's
 * post_config has run: the monitor sets its table up in its own post_config,
 * and hook order between separately built modules is not to be relied on.
 */
static void lbhb_child_init(apr_pool_t *p, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(hm_shared_table) *table_fn = APR_RETRIEVE_OPTIONAL_FN(hm_shared_table);
    APR_OPTIONAL_FN_TYPE(hm_storage_path) *path_fn = APR_RETRIEVE_OPTIONAL_FN(hm_storage_path);
    const char *path = NULL;

    lbhb_child_at = apr_time_now();
    lbhb_shared = table_fn ? table_fn() : NULL;
    if (!lbhb_shared) {
        /* Our own HeartbeatStorage, else the file the monitor writes, else
         * the default. */
        path = (!lbhb_own_path_set && path_fn && path_fn()) ? path_fn() : lbhb_own_path;
    }
    lbhb_file_child_init(p, path);
    lbhb_members_child_init(p, s, lbhb_sconf(s)->resolve_every, lbhb_shared);
    lbhb_reports_child_init();
}

int lbhb_member_heard(request_rec *r, proxy_worker *w)
{
    lbhb_member_t *m = lbhb_member(w), local;
    const hm_table_t *t;
    hm_entry_t e;
    int found;

    if (!m) {
        memset(&local, 0, sizeof(local));
        lbhb_member_fill(w, &local);
        m = &local;
    }
    if (lbhb_shared) {
        return lbhb_lookup(lbhb_shared, w, m, &e) > 0;
    }
    t = lbhb_file_acquire(r->server, apr_time_now());
    found = t ? lbhb_lookup(t, w, m, &e) > 0 : 0;
    lbhb_file_release();
    return found;
}

void lbhb_member_answered(proxy_worker *w)
{
    lbhb_member_t *m = lbhb_member(w), local;
    lbhb_load_slot_t *load;
    uint32_t load_ready, load_busy;
    int64_t report_seen, load_at;
    uint64_t base;
    hm_entry_t e;

    if (!lbhb_shared || !LBHB_WORKER_CURRENT(w)) {
        return;
    }
    if (!m) {
        memset(&local, 0, sizeof(local));
        lbhb_member_fill(w, &local);
        m = &local;
    }
    if (lbhb_lookup(lbhb_shared, w, m, &e) <= 0) {
        return;
    }
    report_seen = e.seen;
    if ((load = lbhb_inflight_load(w)) && lbhb_load_get(load, &load_ready, &load_busy, &load_at) &&
        load_at > e.seen) {
        report_seen = load_at;
    }
    /* The same report lbhb_collect would rank it by; its baseline, if this
     * is the first look since the report, counts this request too. */
    if (!lbhb_inflight_baseline(w, report_seen, w->s->busy, &base) && m != &local) {
        lbhb_baseline(&m->baseline, report_seen, w->s->busy);
    }
}

static void lbhb_register_hooks(apr_pool_t *p)
{
    /* After the monitor's (its table) and mod_proxy_balancer's (the
     * balancers' slots), for HeartbeatJoin. */
    static const char *const after[] = {"mod_heartmonitor.c", "mod_proxy_balancer.c", NULL};

    ap_register_provider(p, PROXY_LBMETHOD, "heartbeat", "0", &lbhb_method);
    ap_hook_post_config(lbhb_post_config, after, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(lbhb_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(lbhb_log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
    lbhb_reports_register(p);
    APR_REGISTER_OPTIONAL_FN(lbhb_member_status);
    APR_REGISTER_OPTIONAL_FN(lbhb_balancer_status);
    APR_REGISTER_OPTIONAL_FN(lbhb_join_name);
}

static const command_rec lbhb_cmds[] = {
    AP_INIT_TAKE1("HeartbeatStorage", lbhb_cmd_storage, NULL, RSRC_CONF,
                  "path of the heartbeat table file, when mod_heartmonitor does not run in "
                  "this server (default heartbeat/hb.dat in DefaultRuntimeDir)"),
    AP_INIT_TAKE1("HeartbeatMaxAge", lbhb_cmd_max_age, NULL, RSRC_CONF | ACCESS_CONF,
                  "ignore heartbeat data older than this (default: 3 sender intervals + "
                  "500ms, between 1s and 10s; 10s when the sender does not say)"),
    AP_INIT_TAKE1("HeartbeatWarmUp", lbhb_cmd_warm_up, NULL, RSRC_CONF | ACCESS_CONF,
                  "after start-up, how long members not heard from yet count as the mean of "
                  "those that have (default 10s; 0: they get nothing until they report)"),
    AP_INIT_TAKE1("HeartbeatSlowStart", lbhb_cmd_slow_start, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long a member that joins, restarts or returns from ejection takes to "
                  "get its full share (default 0: at once; up to 10m)"),
    AP_INIT_TAKE1("HeartbeatEject", lbhb_cmd_eject, NULL, RSRC_CONF | ACCESS_CONF,
                  "on (default): take a member that fails in a row, far more than its "
                  "peers, out of rotation for a while; off"),
    AP_INIT_TAKE1("HeartbeatEjectAfter", lbhb_cmd_eject_after, NULL, RSRC_CONF | ACCESS_CONF,
                  "failures (5xx or no answer) in a row that may eject a member (default 5)"),
    AP_INIT_TAKE1("HeartbeatEjectTime", lbhb_cmd_eject_time, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long a first ejection lasts (default 10s; doubles with each one "
                  "in a row, up to 30 times this)"),
    AP_INIT_TAKE1("HeartbeatEjectMaxPercent", lbhb_cmd_eject_max, NULL, RSRC_CONF | ACCESS_CONF,
                  "largest share of a balancer's members out at once (default 50)"),
    AP_INIT_TAKE1("HeartbeatPickMode", lbhb_cmd_mode, NULL, RSRC_CONF | ACCESS_CONF,
                  "most (default: most effective ready slots), weighted (stock: random "
                  "weighted by ready) or p2c (best of two random members)"),
    AP_INIT_TAKE1("HeartbeatFallback", lbhb_cmd_fallback, NULL, RSRC_CONF | ACCESS_CONF,
                  "when no member has fresh data: none (default, 503 as stock) or "
                  "roundrobin over the usable members"),
    AP_INIT_FLAG("HeartbeatJoin", lbhb_cmd_join, NULL, RSRC_CONF | ACCESS_CONF,
                 "in a <Proxy balancer://name>: origins whose signed heartbeats announce the "
                 "balancer (HeartbeatBalancer) become its members (needs ProxySet growth=N and "
                 "HeartbeatSecret; default off)"),
    AP_INIT_ITERATE("HeartbeatJoinMember", lbhb_cmd_join_member, NULL, RSRC_CONF | ACCESS_CONF,
                    "BalancerMember parameters for members that join: disablereuse, keepalive, "
                    "retry, timeout, connectiontimeout, ttl, lbset, loadfactor (key=value)"),
    AP_INIT_TAKE1("HeartbeatJoinExpire", lbhb_cmd_join_expire, NULL, RSRC_CONF | ACCESS_CONF,
                  "how long a member that joined may be silent before it is disabled, and "
                  "then before its slot may go to another origin (default 60s)"),
    AP_INIT_TAKE1("HeartbeatResolveInterval", lbhb_cmd_resolve, NULL, RSRC_CONF,
                  "how often members written as host names are resolved again "
                  "(default 30s)"),
    {NULL}};

AP_DECLARE_MODULE(lbmethod_heartbeat) = {
    STANDARD20_MODULE_STUFF,
    lbhb_create_dir_config,
    lbhb_merge_dir_config,
    lbhb_create_server_config,
    NULL,
    lbhb_cmds,
    lbhb_register_hooks,
};
