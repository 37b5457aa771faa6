/*
 * hb_config.c: strict parsing of directive values.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "apr_lib.h"
#include "apr_strings.h"

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

const char *hb_config_choice(apr_pool_t *p, const char *name, const char *arg,
                             const char *const *words, int *index)
{
    const char *list = "";
    int i, n;

    for (n = 0; words[n]; n++) {
        if (!strcasecmp(arg, words[n])) {
            *index = n;
            return NULL;
        }
    }
    for (i = 0; i < n; i++) {
        list = apr_pstrcat(p, list, i == 0 ? "" : i == n - 1 ? " or " : ", ", words[i], NULL);
    }
    return apr_psprintf(p, "%s: '%s' must be %s", name, arg, list);
}

/* 250ms, 2s: as an administrator would write the bound. */
static const char *time_text(apr_pool_t *p, int64_t usec)
{
    if (usec % 1000000 == 0) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "s", usec / 1000000);
    }
    return apr_psprintf(p, "%" APR_INT64_T_FMT "ms", usec / 1000);
}

const char *hb_config_time(apr_pool_t *p, const char *name, const char *arg, int64_t min,
                           int64_t max, int64_t *usec)
{
    int64_t t;

    if (hb_parse_duration(arg, &t) != 0) {
        return apr_psprintf(p, "%s: '%s' is not a time (e.g. 2s or 500ms; from %s to %s)", name,
                            arg, time_text(p, min), time_text(p, max));
    }
    if (t < min || t > max) {
        return apr_psprintf(p, "%s: '%s' is out of range (%s to %s)", name, arg, time_text(p, min),
                            time_text(p, max));
    }
    *usec = t;
    return NULL;
}

const char *hb_config_addr(apr_pool_t *p, const char *name, const char *arg, int need_port,
                           apr_sockaddr_t **sa)
{
    char *host = NULL, *scope = NULL;
    apr_port_t port = 0;
    apr_status_t rv;

    rv = apr_parse_addr_port(&host, &scope, &port, arg, p);
    if (rv != APR_SUCCESS || host == NULL) {
        return apr_psprintf(p, "%s: '%s' is not an address%s", name, arg,
                            need_port ? " of the form host:port or [ipv6]:port" : "");
    }
    if (need_port && port == 0) {
        return apr_psprintf(p, "%s: '%s' has no port (host:port or [ipv6]:port)", name, arg);
    }
    if (!need_port && port != 0) {
        return apr_psprintf(p, "%s: '%s' takes an address without a port", name, arg);
    }
    if (scope) {
        return apr_psprintf(p, "%s: '%s': scoped IPv6 addresses are not supported", name, arg);
    }
    rv = apr_sockaddr_info_get(sa, host, APR_UNSPEC, port, 0, p);
    if (rv != APR_SUCCESS) {
        char err[128];
        return apr_psprintf(p, "%s: cannot resolve '%s': %s", name, host,
                            apr_strerror(rv, err, sizeof(err)));
    }
    return NULL;
}

const char *hb_config_subnet(apr_pool_t *p, const char *name, const char *arg, apr_ipsubnet_t **sub)
{
    char *ip = apr_pstrdup(p, arg), *bits = strchr(ip, '/');
    unsigned char bin[16];
    int v6 = strchr(ip, ':') != NULL, max = v6 ? 128 : 32;
    uint64_t n;
    const char *c;

    if (bits) {
        *bits++ = '\0';
    }
    if (v6 ? inet_pton(AF_INET6, ip, bin) != 1 : inet_pton(AF_INET, ip, bin) != 1) {
        /* Digits and dots, but not four parts: the shorthand this refuses. */
        for (c = ip; *c && (apr_isdigit(*c) || *c == '.'); c++) {
        }
        if (*ip && !*c && !v6) {
            return apr_psprintf(p,
                                "%s: '%s' is not a whole IPv4 address: write all four parts "
                                "(e.g. 10.0.0.0/8, not 10)",
                                name, arg);
        }
        return apr_psprintf(p, "%s: '%s' is not an IP address or CIDR range (no names)", name, arg);
    }
    /* /0 is refused as APR does: it would trust every address, which is
     * what leaving HeartbeatAllow out says plainly. */
    if (bits &&
        (!*bits || hb_parse_u64(bits, strlen(bits), (uint64_t)max, &n) != HB_OK || n == 0)) {
        return apr_psprintf(p,
                            "%s: '%s' is not an IP address or CIDR range: the prefix length "
                            "after / must be a number from 1 to %d",
                            name, arg, max);
    }
    if (apr_ipsubnet_create(sub, ip, bits, p) != APR_SUCCESS) {
        return apr_psprintf(p, "%s: '%s' is not an IP address or CIDR range", name, arg);
    }
    return NULL;
}
