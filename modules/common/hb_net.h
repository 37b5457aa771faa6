/*
 * hb_net.h: small socket-address helpers APR does not offer.
 */
#ifndef HB_NET_H
#define HB_NET_H

/* Nonzero if sa (a struct sockaddr_in or sockaddr_in6) is a multicast
 * group address: 224.0.0.0/4 or ff00::/8. */
int hb_is_multicast(const void *sa);

#endif
