/*
 * hm_table.h: the monitor's table of origins, laid out in one flat block of
 * memory (normally shared memory) so that every proxy process can read it.
 *
 * Concurrency: writers (the monitor's receiver thread, and POST handlers in
 * any child) serialise on a small spinlock in the block. Readers never lock:
 * each slot carries a sequence counter (seqlock), and the hash index carries
 * a generation counter that is odd while the index is being changed, so a
 * reader retries instead of seeing a torn entry or a half-moved index.
 *
 * The block holds offsets, never pointers, so it may be mapped at different
 * addresses in different processes.
 */
#ifndef HM_TABLE_H
#define HM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "hb_packet.h"
#include "hm_addr.h"

/* hm_entry_t.flags */
#define HM_ENTRY_PORT_KNOWN 0x01u /* the sender named its port (port=) */
#define HM_ENTRY_VIA_HTTP   0x02u /* last update came by HTTP POST */
#define HM_ENTRY_AUTH       0x04u /* last update was signed with a valid key */

typedef struct {
    hm_addr_t key;
    char ip[HM_IP_MAX]; /* canonical text of key.addr, NUL-terminated */
    uint32_t ready;
    uint32_t busy;
    uint32_t interval_ms; /* 0 = the sender did not say */
    uint32_t state;       /* hb_state_e */
    uint32_t flags;       /* HM_ENTRY_* */
    uint64_t seq;         /* last sender sequence number, if HB_HAS_SEQ was seen */
    int64_t seen;         /* absolute time of the last update, microseconds since the epoch */
    int64_t first_seen;   /* when this entry was created */
    uint64_t packets;     /* updates applied to this entry */
    hb_join_set_t join;   /* balancers it announces (join=); signed entries only */
} hm_entry_t;

/* Table-wide counters, readable by every process. */
typedef enum {
    HM_CTR_ACCEPTED = 0,   /* updates applied */
    HM_CTR_INSERTED,       /* new entries */
    HM_CTR_REPLACED,       /* a stale entry was evicted for a new sender */
    HM_CTR_FULL,           /* a new sender was dropped: table full of fresh entries */
    HM_CTR_EXPIRED,        /* entries removed by age */
    HM_CTR_MALFORMED,      /* bad packets/bodies (counted by the caller) */
    HM_CTR_REJECTED,       /* refused for policy reasons, all reasons (counted by the caller) */
    HM_CTR_UNSIGNED,       /* ... of which: unsigned where a signature is required */
    HM_CTR_BADSIG,         /* ... bad or unknown-key signature, malformed auth fields */
    HM_CTR_REPLAY,         /* ... sequence number not newer than the last accepted */
    HM_CTR_CLOCK,          /* ... timestamp outside the window */
    HM_CTR_NOTALLOWED,     /* ... source address outside HeartbeatAllow */
    HM_CTR_RATELIMITED,    /* ... over the per-source rate */
    HM_CTR_STORAGE_WRITES, /* storage file written (counted by the caller) */
    HM_CTR_STORAGE_ERRORS, /* storage file could not be written (counted by the caller) */
    HM_CTR_STATE_CHANGES,  /* an origin appeared or its state (up, drain, ...) changed */
    HM_CTR_IDENTITY,       /* refused: signed addr= is not the packet's source address */
    HM_CTR_UNBOUND,        /* refused: signed without addr= (an older sender) */
    HM_CTR_PER_ADDRESS,    /* a new unsigned origin dropped: its address holds the maximum */
    HM_CTR_RX_STARTS,      /* a receiver thread began (start-up, restart, hand-over) */
    HM_CTR_COUNT
} hm_counter_e;

typedef enum {
    HM_UPD_UPDATED = 0, /* existing entry refreshed */
    HM_UPD_INSERTED,    /* new entry in a free slot */
    HM_UPD_REPLACED,    /* new entry in the slot of an evicted stale entry */
    HM_UPD_FULL,        /* dropped: no free slot and no stale entry */
    HM_UPD_REPLAY,      /* refused: signed, and seq not newer than the entry's */
    HM_UPD_DOWNGRADE,   /* refused: unsigned update of an entry last signed */
    HM_UPD_PER_ADDRESS  /* dropped: unsigned, and its address holds the maximum */
} hm_update_e;

typedef struct hm_table hm_table_t;

/* Bytes needed for a table of capacity entries (capacity >= 1). */
size_t hm_table_size(unsigned int capacity);

/* Format mem (size bytes, at least hm_table_size(capacity), 8-byte aligned)
 * as an empty table. Returns NULL if size is too small or capacity is 0. */
hm_table_t *hm_table_create(void *mem, size_t size, unsigned int capacity);

/* Use a block formatted earlier (possibly by another process). Returns NULL
 * if the block is not a table of this layout version or is larger than size. */
hm_table_t *hm_table_attach(void *mem, size_t size);

unsigned int hm_table_capacity(const hm_table_t *t);
unsigned int hm_table_count(const hm_table_t *t);

/*
 * What the table guards for signed origins, kept in the block so that every
 * writer applies the same (0 turns each off):
 *  - replay_window (microseconds): a signed entry that is removed (expired
 *    or evicted) leaves its key and seq behind this long, so that its own
 *    old packets cannot bring it back (HM_UPD_REPLAY). Set it to the
 *    signature's timestamp window: older packets are refused anyway.
 *  - max_per_addr: the most entries without HM_ENTRY_AUTH one address may
 *    hold (HM_UPD_PER_ADDRESS beyond). Unsigned packets name any port they
 *    like, so without it one address could fill the table.
 */
void hm_table_set_guard(hm_table_t *t, int64_t replay_window, uint32_t max_per_addr);

/*
 * Apply a parsed heartbeat from key at time now. O(1) on average.
 * entry_flags (HM_ENTRY_*) are stored with the entry; the seq, interval
 * and state of pkt are stored when pkt carries them. An entry whose last
 * update carried HM_ENTRY_AUTH refuses updates without it
 * (HM_UPD_DOWNGRADE) and signed updates whose seq is not newer
 * (HM_UPD_REPLAY); the table is unchanged then.
 *
 * When the sender is new and the table is full, the entry seen longest ago
 * gives way if it is older than stale_after, except that an unsigned
 * sender never displaces a signed entry, and a signed sender displaces the
 * unsigned entry seen longest ago however fresh it is: the key proves more
 * than a source address. Otherwise the packet is dropped (HM_UPD_FULL).
 */
hm_update_e hm_table_update(hm_table_t *t, const hm_addr_t *key, const hb_packet_t *pkt,
                            int64_t now, int64_t stale_after, uint32_t entry_flags);

/*
 * Put a copy of e (an entry of another table, or one read from a storage
 * file) into t: its key, ready, busy, seq, interval, state, flags and the
 * time it was last seen, so the copy looks no fresher than the original.
 * Its packet count starts again at 1 and its first_seen is e->seen. When t
 * is full, the entry seen longest ago gives way only if it was seen more
 * than e's age (now - e->seen) before e. Returns what hm_table_update
 * returns.
 */
hm_update_e hm_table_put_entry(hm_table_t *t, const hm_entry_t *e, int64_t now);

/*
 * Hints for a batch of updates: stage 0 asks the CPU for key's index
 * position, stage 1 (later, once that has arrived) for the slot it names.
 * Issuing them for a whole batch before applying it overlaps the cache
 * misses of a large table instead of taking them one after another. They
 * change nothing and may be skipped; any thread may call them.
 */
void hm_table_prefetch(const hm_table_t *t, const hm_addr_t *key, int stage);

/* Remove entries last seen before now - max_age. Returns how many. */
unsigned int hm_table_expire(hm_table_t *t, int64_t now, int64_t max_age);

/* The same, and *oldest (if not NULL) is the last-seen time of the oldest
 * entry left, INT64_MAX if none: until oldest + max_age no entry can
 * expire (updates only make entries newer), so a caller may skip the scan
 * till then. */
unsigned int hm_table_expire_ex(hm_table_t *t, int64_t now, int64_t max_age, int64_t *oldest);

/* Consistent copy of slot i (0 <= i < capacity). Returns 1 if the slot holds
 * an entry, 0 if it is free. Never blocks on writers. */
int hm_table_get(const hm_table_t *t, unsigned int slot, hm_entry_t *out);

/* Look key up without locking. Returns the slot number and fills *out, or -1. */
int hm_table_find(const hm_table_t *t, const hm_addr_t *key, hm_entry_t *out);

/* Changes whenever an entry is inserted or removed (not on plain updates), so
 * a reader can cache slot numbers and rebuild only when this moves. */
uint32_t hm_table_generation(const hm_table_t *t);

/* Changes whenever an entry's balancer announcement changes, appears or
 * goes (HeartbeatJoin rescans the table only then). */
uint32_t hm_table_join_generation(const hm_table_t *t);

void hm_table_counter_add(hm_table_t *t, hm_counter_e c, uint64_t n);
uint64_t hm_table_counter(const hm_table_t *t, hm_counter_e c);

/* Table-wide conditions, shared by every process and every generation
 * that uses the table, so that a condition is reported once when it
 * begins, not once per child that meets it. */
#define HM_COND_STORAGE_FAILING 0x01u

/* Set (on != 0) or clear the condition bits cond; returns 1 if any of
 * them was set before. */
int hm_table_condition(hm_table_t *t, uint32_t cond, int on);

/* The last HM_REJECTS rejected heartbeats, for the status page. */
#define HM_REJECTS 16

typedef struct {
    hm_addr_t src;   /* source address; port 0 */
    uint32_t reason; /* hb_status_e, or a caller's own code */
    uint32_t pad;
    int64_t when;
} hm_reject_t;

/* Remember a rejected heartbeat from src (any process may call this). */
void hm_table_note_reject(hm_table_t *t, const hm_addr_t *src, uint32_t reason, int64_t now);

/* Copy up to max of the most recent rejections, newest first; returns how
 * many. Never blocks on writers. */
unsigned int hm_table_rejects(const hm_table_t *t, hm_reject_t *out, unsigned int max);

/* The same for a ring of its own, for heartbeats from outside
 * HeartbeatAllow: anyone on the network can fill it, so they must not wash
 * the refusals of real origins (a replay, say) out of the main ring. */
void hm_table_note_outside(hm_table_t *t, const hm_addr_t *src, uint32_t reason, int64_t now);
unsigned int hm_table_rejects_outside(const hm_table_t *t, hm_reject_t *out, unsigned int max);

/* The sources whose heartbeats were dropped by the rate limit lately. */
#define HM_LIMITED 8

typedef struct {
    hm_addr_t src; /* port 0 */
    uint32_t pad;
    uint64_t dropped; /* since it entered the list */
    int64_t when;     /* last drop */
} hm_limited_t;

/* Count a dropped heartbeat against src; the source dropped from longest
 * ago gives way to a new one. Any process may call this. */
void hm_table_note_limited(hm_table_t *t, const hm_addr_t *src, int64_t now);

/* Copy up to max of them, most recent drop first; returns how many. */
unsigned int hm_table_limited(const hm_table_t *t, hm_limited_t *out, unsigned int max);

/*
 * White-box access, for unit tests and diagnostics only. The layout of the
 * block is private to hm_table.c; a test that plants a state no public call
 * can produce (a writer that died holding the lock, garbage in the index, a
 * damaged header) reaches it through these, never by byte offsets, so that
 * it follows any change of the layout. Nothing else writes through them.
 */

/* The writer lock: the holder's pid, 0 when free. */
int32_t *hm_table_lock_word(hm_table_t *t);

/* The hash index, *n words (a power of two): each -1 when empty, else a
 * slot number in the low 24 bits with 7 bits of the key's hash above. */
int32_t *hm_table_index_words(hm_table_t *t, uint32_t *n);

/* A header field that hm_table_attach validates, as bytes of the block. */
typedef struct {
    const char *name;
    size_t offset;
    size_t size;
} hm_table_field_t;

/* Every header field hm_table_attach validates; *n is set to how many. */
const hm_table_field_t *hm_table_checked_fields(unsigned int *n);

#endif
