/*
 * hb_log.c: the core's reports, through the glue's callback (hb_log.h).
 */
#include "hb_log.h"

void hb_log(const hb_log_t *log, hb_log_level_e level, const char *file, int line, const char *fmt,
            ...)
{
    va_list ap;

    if (!log || !log->print) {
        return;
    }
    va_start(ap, fmt);
    log->print(log->baton, level, file, line, fmt, ap);
    va_end(ap);
}
