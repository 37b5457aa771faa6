/*
 * hm_admit.h: whether a heartbeat gets into the monitor's table, and what
 * is counted, remembered and logged when it does not. The receiver (UDP)
 * and the POST handler of mod_heartmonitor both come here, and so do the
 * unit tests (check_admit) and the fuzzer (fuzz_post): they run this code,
 * not a copy of it.
 *
 * A heartbeat passes these stages in order; the first that refuses it
 * names the reason:
 *
 *  1. source     The sender's address (a datagram's source, a POST's
 *                connection peer) is in HeartbeatAllow, and within
 *                HeartbeatRateLimit: before any parsing, except that a
 *                packet that carries a signature is checked first (within
 *                a global budget, HM_VERIFY_BUDGET) and charged to its
 *                source's bucket only if it is refused, so forgeries sent
 *                from an origin's address cannot starve that origin.
 *  2. signature  With HeartbeatSecret: signed with a configured key, its
 *                timestamp within HeartbeatAuthWindow; or unsigned under
 *                HeartbeatAuthMode migrate (then marked unsigned).
 *  3. content    The (signed part of the) packet parses. A signed packet
 *                carries seq= and names the address it comes from (addr=),
 *                which must be the sender's address: a key proves who
 *                wrote the bytes, addr= which origin they speak for. One
 *                without addr= (an older sender) is refused, or under
 *                migrate taken as unsigned. Its key: the sender's address
 *                and the port the packet names.
 *  4. table      An origin whose last heartbeat was signed takes only
 *                signed heartbeats with a newer seq=, also for a while
 *                after it left the table (hm_table_set_guard). A new origin
 *                that a full table, or HeartbeatMaxPerAddress, turns away
 *                is counted (full, per_address) and logged, but is no
 *                rejection.
 *
 * Stages 1 to 3 touch no table lock (hm_admit_check), so the receiver runs
 * them over a whole batch and prefetches the table before stage 4
 * (hm_admit_commit) for each.
 *
 * Every refusal is counted in the table (one counter per reason, see
 * hm_reason_counter), remembered in its ring of recent rejections for the
 * status page, and logged: every one at debug (HM0201), at most one a
 * minute as a warning (HM0202). Time is always passed in: this file
 * neither reads the clock nor calls httpd.
 */
#ifndef HM_ADMIT_H
#define HM_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "apr_network_io.h"
#include "apr_pools.h"

#include "hb_auth.h"
#include "hb_log.h"
#include "hb_packet.h"
#include "hm_ratelimit.h"
#include "hm_table.h"

/* Why a heartbeat was refused; stored as is in the table's rejection ring. */
typedef enum {
    HM_REASON_OK = 0,
    /* Malformed (counted as malformed): the parser's verdict. */
    HM_REASON_EMPTY,
    HM_REASON_TOOLONG,
    HM_REASON_SYNTAX,
    HM_REASON_NUMBER,
    HM_REASON_RANGE,
    HM_REASON_MISSING,
    HM_REASON_VERSION,
    HM_REASON_DUPLICATE,
    HM_REASON_STATE,
    /* Refused by policy (counted as rejected, and on a counter of its own). */
    HM_REASON_UNSIGNED,   /* unsigned where a signature is required */
    HM_REASON_BADSIG,     /* bad or unknown-key signature, malformed auth fields */
    HM_REASON_REPLAY,     /* signed, seq not newer than the origin's last */
    HM_REASON_CLOCK,      /* signed, timestamp outside the window */
    HM_REASON_NOTALLOWED, /* source outside HeartbeatAllow */
    HM_REASON_RATE,       /* over HeartbeatRateLimit */
    HM_REASON_DOWNGRADE,  /* unsigned update of an origin that signed */
    HM_REASON_IDENTITY,   /* signed, and addr= is not the sender's address */
    HM_REASON_UNBOUND,    /* signed without addr= (required mode) */
    HM_REASON_COUNT
} hm_reason_e;

/* What the monitor's configuration says about admission. The arrays are
 * not copied: they must outlive the hm_admit_t. */
typedef struct {
    hm_table_t *table;
    /* A full table's least recently seen entry gives way to a new origin
     * once it is this old (microseconds). */
    int64_t stale_after;
    /* HeartbeatSecret: when nkeys > 0, heartbeats must be signed with one
     * of keys, unless migrate (HeartbeatAuthMode migrate). */
    const hb_secret_t *keys;
    unsigned int nkeys;
    int migrate;
    int64_t auth_window; /* HeartbeatAuthWindow, microseconds */
    /* HeartbeatAllow: the networks heartbeats may come from; none = any. */
    apr_ipsubnet_t *const *allow;
    unsigned int nallow;
    /* HeartbeatMaxPerAddress: in migrate mode, the most unsigned origins
     * one address may hold in the table (0: no limit). */
    unsigned int max_per_addr;
} hm_admit_policy_t;

typedef struct hm_admit hm_admit_t;

/* An admission context for policy, logging through log (copied; NULL:
 * silent). Any thread may use it; the counters and log throttles it keeps
 * are per process. Sets the table's guard (hm_table_set_guard) from the
 * policy. */
hm_admit_t *hm_admit_create(apr_pool_t *p, const hm_admit_policy_t *policy, const hb_log_t *log);

/* A heartbeat that passed stages 1 to 3, waiting for the table. */
typedef struct {
    hb_packet_t pkt;
    hm_addr_t key;
    uint32_t flags; /* HM_ENTRY_* to store with the entry */
    int64_t now;
    const apr_sockaddr_t *from; /* the caller's: must live until the commit */
    int via_http;
} hm_pending_t;

/*
 * Stages 1 to 3 for the heartbeat in buf (len bytes) that came from `from`
 * at now (microseconds), by POST if via_http, else by UDP. rl is the
 * caller's per-source limiter (NULL: none; a limiter is not thread-safe:
 * each receiving thread has its own, and POST handlers share one under a
 * lock). Returns
 * HM_REASON_OK with *pd ready for hm_admit_commit, or why the heartbeat
 * was refused (counted, remembered and logged already).
 */
hm_reason_e hm_admit_check(hm_admit_t *adm, hm_ratelimit_t *rl, const char *buf, size_t len,
                           const apr_sockaddr_t *from, int via_http, int64_t now, hm_pending_t *pd);

/* Stage 4: apply *pd to the table. HM_REASON_OK (also when a full table
 * turned a new origin away: counted as full, logged at most once a
 * minute, HM0203), or HM_REASON_REPLAY or HM_REASON_DOWNGRADE (refused:
 * counted, remembered and logged). */
hm_reason_e hm_admit_commit(hm_admit_t *adm, const hm_pending_t *pd);

/* hm_admit_check, then hm_admit_commit if it passed. */
hm_reason_e hm_admit(hm_admit_t *adm, hm_ratelimit_t *rl, const char *buf, size_t len,
                     const apr_sockaddr_t *from, int via_http, int64_t now);

/* Count, remember and log a heartbeat refused for reason (not
 * HM_REASON_OK) before it reached the stages, e.g. a POST body longer
 * than HB_PACKET_MAX. Rate-capped heartbeats are counted, and against
 * their source (hm_table_note_limited), but neither logged nor put in the
 * ring: that would cost what the cap is there to save, and wash the useful
 * entries out of the ring. Refusals of sources outside HeartbeatAllow go
 * to a ring of their own. */
void hm_admit_reject(hm_admit_t *adm, const apr_sockaddr_t *from, int via_http, hm_reason_e reason,
                     int64_t now);

/* The parser's verdict (not HB_OK) as a reason. */
hm_reason_e hm_reason_of_status(hb_status_e st);

/* The words for a reason, as logged and shown on the status page; any
 * value, since the table's ring holds plain numbers. */
const char *hm_reason_str(uint32_t reason);

/* 1 if the reason is a refusal by policy (a POST gets 403), 0 if the input
 * was malformed (400). */
int hm_reason_refused(hm_reason_e reason);

/* The counter of the reason's own (HM_CTR_MALFORMED for every malformed
 * one); a refusal by policy also counts in HM_CTR_REJECTED. */
hm_counter_e hm_reason_counter(hm_reason_e reason);

#endif
