/*
 * hb_config.h: strict parsing of directive values shared by the modules.
 */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include <stdint.h>

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

#endif
