/*
 * hm_addr.h: how an origin is named in the table, the rate limiter and the
 * balancer: its address and port, compared and hashed as bytes. IPv4-mapped
 * IPv6 (::ffff:a.b.c.d) is folded to IPv4, so a dual-stack socket and an
 * IPv4 socket name one sender the same way. A link-local IPv6 address
 * from a socket address keeps its scope (interface) inside the bytes that
 * are zero in fe80::/64, so the same address on two links is two keys.
 */
#ifndef HM_ADDR_H
#define HM_ADDR_H

#include <stdint.h>

/* Text form of an address, as INET6_ADDRSTRLEN (and the stock MAXIPSIZE). */
#define HM_IP_MAX 46

/* The port assumed for senders that do not say theirs, as stock does. */
#define HM_DEFAULT_PORT 80

typedef struct {
    uint8_t family; /* 4 or 6 */
    uint8_t pad;
    uint16_t port;    /* host byte order */
    uint8_t addr[16]; /* IPv4 in the first 4 bytes, rest zero */
} hm_addr_t;

/* hm_addr_from_string returns 0 on success, -1 if text is not an IP
 * literal (bracketed IPv6 accepted); hm_addr_from_sockaddr -1 for a family
 * other than IPv4 and IPv6. */
int hm_addr_from_string(hm_addr_t *addr, const char *text, uint16_t port);
int hm_addr_from_sockaddr(hm_addr_t *addr, const void *sockaddr, uint16_t port);
/* Writes the canonical text (inet_ntop) into buf (HM_IP_MAX bytes). */
void hm_addr_to_string(const hm_addr_t *addr, char *buf);
int hm_addr_equal(const hm_addr_t *a, const hm_addr_t *b);

/* 1 if addr is IPv6 link-local (fe80::/10). */
int hm_addr_link_local(const hm_addr_t *addr);
/* The scope kept in a link-local key, 0 if none. */
uint32_t hm_addr_scope(const hm_addr_t *addr);
/* 1 if a and b are the same address, ports aside; a scope on only one of
 * them does not matter (an address written in a packet has none). */
int hm_addr_same_host(const hm_addr_t *a, const hm_addr_t *b);

#endif
