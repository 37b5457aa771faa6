/*
 * hb_log.h: how the core reports. It never calls httpd: a core unit with
 * something to say is handed an hb_log_t by the glue, whose callback
 * passes the line on to ap_log_error, as mod_md's core logs through the
 * callback mod_md sets with md_log_set. Tests pass a callback that
 * records the lines. Every line starts with its stable ID
 * (docs/log-messages.md).
 */
#ifndef HB_LOG_H
#define HB_LOG_H

#include <stdarg.h>

/* syslog's numbers, which are httpd's APLOG_* too. */
typedef enum {
    HB_LOG_EMERG = 0,
    HB_LOG_ALERT,
    HB_LOG_CRIT,
    HB_LOG_ERR,
    HB_LOG_WARNING,
    HB_LOG_NOTICE,
    HB_LOG_INFO,
    HB_LOG_DEBUG
} hb_log_level_e;

/* file and line: where in the core the line comes from. The callback may
 * drop lines below the level it logs at before formatting them. */
typedef void hb_log_fn(void *baton, hb_log_level_e level, const char *file, int line,
                       const char *fmt, va_list ap);

typedef struct {
    hb_log_fn *print; /* NULL: nothing is logged */
    void *baton;
} hb_log_t;

#define HB_LOG_MARK __FILE__, __LINE__

/* printf formats that apr_vsnprintf takes as well (the glue formats with
 * it): APR_UINT64_T_FMT for a uint64_t, no %zu. */
void hb_log(const hb_log_t *log, hb_log_level_e level, const char *file, int line, const char *fmt,
            ...) __attribute__((format(printf, 5, 6)));

#endif
