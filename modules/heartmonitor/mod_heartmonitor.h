/*
 * mod_heartmonitor.h: what mod_heartmonitor offers other modules of this
 * suite in the same server, through APR optional functions (so neither
 * module needs the other to be loaded, and load order does not matter).
 */
#ifndef MOD_HEARTMONITOR_H
#define MOD_HEARTMONITOR_H

#include "apr_optional.h"

#include "hb_auth.h"
#include "hm_table.h"

/* The shared-memory table of this generation, or NULL when the monitor keeps
 * none for others (HeartbeatMaxServers 0 selects the storage file). The
 * table stays mapped for the life of every process that got it. */
APR_DECLARE_OPTIONAL_FN(hm_table_t *, hm_shared_table, (void));

/* The absolute HeartbeatStorage path the monitor writes, or NULL if it
 * writes no file. */
APR_DECLARE_OPTIONAL_FN(const char *, hm_storage_path, (void));

/* The monitor's keys (HeartbeatSecret; *n set to how many, 0 if none) and
 * HeartbeatAuthWindow, for the balancer to check what origins sign in
 * their responses (HeartbeatResponseHeader). */
APR_DECLARE_OPTIONAL_FN(const hb_secret_t *, hm_auth_keys,
                        (unsigned int *n, apr_interval_time_t *window));

#endif
