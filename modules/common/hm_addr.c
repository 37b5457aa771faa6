/*
 * hm_addr.c: an origin's address and port (see hm_addr.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
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
    char buf[HM_IP_MAX + 2];
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
        return 0;
    }
    return -1;
}

void hm_addr_to_string(const hm_addr_t *key, char *buf)
{
    const char *r = NULL;

    if (key->family == 4) {
        r = inet_ntop(AF_INET, key->addr, buf, HM_IP_MAX);
    } else if (key->family == 6) {
        r = inet_ntop(AF_INET6, key->addr, buf, HM_IP_MAX);
    }
    if (r == NULL) {
        buf[0] = '\0';
    }
}
