/*
 * hb_net.c: socket-address helpers.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "hb_net.h"

int hb_is_multicast(const void *sa)
{
    const struct sockaddr *a = sa;

    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *in = sa;
        return IN_MULTICAST(ntohl(in->sin_addr.s_addr));
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = sa;
        return IN6_IS_ADDR_MULTICAST(&in6->sin6_addr);
    }
    return 0;
}
