/*
 * hb_config.h: strict parsing of directive values shared by the modules.
 */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include <stdint.h>

/*
 * A time as httpd administrators write it: digits, then an optional unit
 * "ms", "s", "mi" (minutes) or "h"; no unit means seconds. Anything else
 * (signs, spaces, fractions, unknown units, overflow) is refused, unlike
 * ap_timeout_parameter_parse, which takes "soon" for 0 seconds.
 * Returns 0 and sets *usec, or -1.
 */
int hb_parse_duration(const char *s, int64_t *usec);

#endif
