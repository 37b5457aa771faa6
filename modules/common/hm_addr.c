/*
 * hm_addr.c: an origin's address and port (see hm_addr.h).
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hm_addr.h"

static size_t addr_len(uint8_t family)
{
    return family == 4 ? 4 : 16;
}

int hm_addr_equal(const hm_addr_t *a, const hm_addr_t *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->addr, b->addr, addr_len(a->family)) == 0;
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void key_set_v6(hm_addr_t *key, const uint8_t addr[16], uint16_t port)
{
    memset(key, 0, sizeof(*key));
    key->port = port;
    if (memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        key->family = 4;
        memcpy(key->addr, addr + 12, 4);
    } else {
        key->family = 6;
        memcpy(key->addr, addr, 16);
    }
}

int hm_addr_from_string(hm_addr_t *key, const char *text, uint16_t port)
{
    char buf[HM_IP_MAX + 2], *pct;
    size_t len;
    struct in_addr a4;
    struct in6_addr a6;

    if (text == NULL) {
        return -1;
    }
    len = strnlen(text, sizeof(buf));
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    if (text[0] == '[') {
        if (len < 3 || text[len - 1] != ']') {
            return -1;
        }
        memcpy(buf, text + 1, len - 2);
        buf[len - 2] = '\0';
        /* Brackets only make sense around IPv6. */
        if (inet_pton(AF_INET6, buf, &a6) != 1) {
            return -1;
        }
        key_set_v6(key, a6.s6_addr, port);
        return 0;
    }
    memcpy(buf, text, len + 1);
    if ((pct = strchr(buf, '%')) != NULL) {
        /* fe80::1%2 or fe80::1%eth0, as hm_addr_to_string writes it and
         * as an administrator writes it. */
        char *end;
        unsigned long scope;
        uint32_t be;
        *pct++ = '\0';
        scope = strtoul(pct, &end, 10);
        if (end == pct || *end != '\0') {
            scope = if_nametoindex(pct);
        }
        if (scope == 0 || scope > UINT32_MAX || inet_pton(AF_INET6, buf, &a6) != 1) {
            return -1;
        }
        key_set_v6(key, a6.s6_addr, port);
        if (!hm_addr_link_local(key)) {
            return -1;
        }
        be = htonl((uint32_t)scope);
        memcpy(key->addr + 4, &be, sizeof(be));
        return 0;
    }
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(key, 0, sizeof(*key));
        key->family = 4;
        key->port = port;
        memcpy(key->addr, &a4.s_addr, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        key_set_v6(key, a6.s6_addr, port);
        return 0;
    }
    return -1;
}

int hm_addr_from_sockaddr(hm_addr_t *key, const void *sockaddr, uint16_t port)
{
    const struct sockaddr *sa = sockaddr;
    sa_family_t fam;

    if (sa == NULL) {
        return -1;
    }
    /* Copy out instead of casting: the caller's buffer need not be aligned
     * for the wider sockaddr types. */
    memcpy(&fam, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof(fam));
    if (fam == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        memset(key, 0, sizeof(*key));
        key->family = 4;
        key->port = port;
        memcpy(key->addr, &sin.sin_addr.s_addr, 4);
        return 0;
    }
    if (fam == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        key_set_v6(key, sin6.sin6_addr.s6_addr, port);
        if (hm_addr_link_local(key) && sin6.sin6_scope_id != 0) {
            /* fe80::1 on eth0 and fe80::1 on eth1 are two hosts. The
             * scope goes where link-local addresses are zero by
             * definition (fe80::/64), as BSD kernels keep it. */
            uint32_t scope = htonl(sin6.sin6_scope_id);
            memcpy(key->addr + 4, &scope, sizeof(scope));
        }
        return 0;
    }
    return -1;
}

int hm_addr_link_local(const hm_addr_t *key)
{
    return key->family == 6 && key->addr[0] == 0xfe && (key->addr[1] & 0xc0) == 0x80;
}

uint32_t hm_addr_scope(const hm_addr_t *key)
{
    uint32_t scope;

    if (!hm_addr_link_local(key)) {
        return 0;
    }
    memcpy(&scope, key->addr + 4, sizeof(scope));
    return ntohl(scope);
}

int hm_addr_same_host(const hm_addr_t *a, const hm_addr_t *b)
{
    uint8_t x[16], y[16];

    if (a->family != b->family) {
        return 0;
    }
    memcpy(x, a->addr, sizeof(x));
    memcpy(y, b->addr, sizeof(y));
    if (hm_addr_link_local(a)) {
        memset(x + 4, 0, 4);
        memset(y + 4, 0, 4);
    }
    return memcmp(x, y, addr_len(a->family)) == 0;
}

void hm_addr_to_string(const hm_addr_t *key, char *buf)
{
    const char *r = NULL;

    if (key->family == 4) {
        r = inet_ntop(AF_INET, key->addr, buf, HM_IP_MAX);
    } else if (key->family == 6) {
        uint8_t a[16];
        uint32_t scope = hm_addr_scope(key);
        memcpy(a, key->addr, sizeof(a));
        if (scope) {
            memset(a + 4, 0, 4);
        }
        r = inet_ntop(AF_INET6, a, buf, HM_IP_MAX);
        if (r != NULL && scope) {
            size_t len = strlen(buf);
            /* "%" and up to 10 digits; an address this long with a scope
             * does not occur (fe80::/64 leaves 19 characters at most). */
            if (len + 12 <= HM_IP_MAX) {
                snprintf(buf + len, HM_IP_MAX - len, "%%%u", (unsigned int)scope);
            }
        }
    }
    if (r == NULL) {
        buf[0] = '\0';
    }
}
