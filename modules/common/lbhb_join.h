/*
 * lbhb_join.h: which balancer slot an origin that joins gets
 * (HeartbeatJoin). httpd-independent, so that the rules unit tests check
 * are the rules the module applies.
 *
 * A balancer's member slots are fixed at start-up (its members plus
 * ProxySet growth=N), and mod_proxy frees none. So an origin that comes
 * back gets its own slot again; a new one takes a slot never used, and
 * only when there is none, the slot of a joined member that has been
 * disabled (silent) long enough and has no request in flight: children of
 * the proxy keep their own objects for a slot, and one must never be left
 * sending an old address's requests into a slot given to another.
 */
#ifndef LBHB_JOIN_H
#define LBHB_JOIN_H

#include <stdint.h>

typedef struct {
    int used;      /* holds a member, static or joined */
    int joined;    /* added by HeartbeatJoin */
    int disabled;  /* joined, and disabled for silence since `since` */
    int same;      /* holds this very origin (scheme, address and port) */
    int64_t since; /* when it was disabled */
    uint64_t busy; /* requests in flight on it now */
} lbhb_jslot_t;

typedef enum {
    LBHB_JOIN_HAVE = 0, /* it holds a slot already (*index): enable it if disabled */
    LBHB_JOIN_NEW,      /* a slot never used (*index) */
    LBHB_JOIN_REUSE,    /* the slot of a joined member gone long enough (*index) */
    LBHB_JOIN_FULL      /* nothing: every slot is taken (ProxySet growth) */
} lbhb_join_e;

/*
 * Choose among n slots at time now. A disabled joined slot may pass to
 * another origin once disabled for reuse_after and idle; of several, the
 * one disabled longest ago.
 */
lbhb_join_e lbhb_join_choose(const lbhb_jslot_t *s, unsigned int n, int64_t now,
                             int64_t reuse_after, unsigned int *index);

#endif
