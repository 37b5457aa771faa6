/*
 * hb_config.c: strict parsing of directive values.
 */
#include <string.h>

#include "hb_config.h"
#include "hb_packet.h"

int hb_parse_duration(const char *s, int64_t *usec)
{
    static const struct {
        const char *name;
        int64_t usec;
    } units[] = {{"", 1000000}, {"s", 1000000}, {"ms", 1000}, {"mi", 60000000}, {"h", 3600000000}};
    size_t digits = 0, i;
    uint64_t v;

    if (!s) {
        return -1;
    }
    while (s[digits] >= '0' && s[digits] <= '9') {
        digits++;
    }
    /* Ten digits of hours is already far beyond any sensible interval. */
    if (digits == 0 || hb_parse_u64(s, digits, 9999999999ull, &v) != HB_OK) {
        return -1;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcmp(s + digits, units[i].name)) {
            if (v > (uint64_t)(INT64_MAX / units[i].usec)) {
                return -1;
            }
            *usec = (int64_t)v * units[i].usec;
            return 0;
        }
    }
    return -1;
}
