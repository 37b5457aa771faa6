/*
 * hb_config.h: strict parsing of directive values shared by the modules, and
 * the directive helpers that turn a bad value into a message naming the
 * directive, so that the three modules say it the same way.
 */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include <stdint.h>

#include "apr_network_io.h"
#include "apr_pools.h"

/*
 * Where HeartbeatStorage goes when not given, relative to DefaultRuntimeDir.
 * A directory of its own because the runtime directory is root's (Debian's
 * /run/apache2 is root 0755) while the file is rewritten, by rename, by an
 * unprivileged child: the monitor's parent creates this one for User.
 * Stock used "hb.dat" in the runtime directory itself, which that child
 * could not write without a manual chown.
 */
#define HB_STORAGE_DIR     "heartbeat"
#define HB_STORAGE_DEFAULT HB_STORAGE_DIR "/hb.dat"
/* Stock's default, still read when a stock monitor writes the file. */
#define HB_STORAGE_STOCK "hb.dat"

/*
 * A time as httpd administrators write it: digits, then an optional unit
 * "ms", "s", "mi" (minutes) or "h"; no unit means seconds. Anything else
 * (signs, spaces, fractions, unknown units, overflow) is refused, unlike
 * ap_timeout_parameter_parse, which takes "soon" for 0 seconds.
 * Returns 0 and sets *usec, or -1.
 */
int hb_parse_duration(const char *s, int64_t *usec);

/* ---- directive helpers: NULL, or an error message (allocated from p)
 * that starts with the directive's name, as httpd prints it. ---- */

/* arg is one of words (a NULL-terminated list, compared without case):
 * *index gets its position. Else "NAME: 'arg' must be a, b or c". */
const char *hb_config_choice(apr_pool_t *p, const char *name, const char *arg,
                             const char *const *words, int *index);

/* A time (hb_parse_duration) from min to max microseconds. */
const char *hb_config_time(apr_pool_t *p, const char *name, const char *arg, int64_t min,
                           int64_t max, int64_t *usec);

/* "host:port" (need_port) or "host" (no port allowed): an address or a
 * name, bracketed IPv6 with a port; scoped IPv6 addresses are refused.
 * Resolved now; *sa gets the first address. */
const char *hb_config_addr(apr_pool_t *p, const char *name, const char *arg, int need_port,
                           apr_sockaddr_t **sa);

/*
 * An address or CIDR range of HeartbeatAllow: a whole IPv4 address (four
 * decimal parts) or an IPv6 address, then optionally "/" and a prefix
 * length (1-32, 1-128). No names, no netmasks, no scope ids, and none of
 * the shortened IPv4 forms apr_ipsubnet_create still takes ("10" for
 * 10.0.0.0/8, "10.1" for 10.1.0.0/16): a typo there would silently trust
 * a whole network. *sub is made from p.
 */
const char *hb_config_subnet(apr_pool_t *p, const char *name, const char *arg,
                             apr_ipsubnet_t **sub);

#endif
