/*
 * hb_auth.h: authenticated heartbeats.
 *
 * A signed packet is an ordinary packet followed by our fields
 *
 *     ...&ts=<sender clock, ms since the epoch>&kid=<key id>&sig=<64 hex>
 *
 * where sig is HMAC-SHA256, under the key named by kid, of every byte
 * before "&sig=". The signature is the last field, so stock receivers
 * still read the stock fields and ignore ours; the timestamp and the
 * sequence number (seq=, required in signed packets) are inside the signed
 * part, so neither can be altered or replayed undetected.
 */
#ifndef HB_AUTH_H
#define HB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "apr_pools.h"
#include "apr_tables.h"

#define HB_SECRET_ID_MAX 32 /* key ids: [A-Za-z0-9_.-]{1,32} */
#define HB_SECRET_MIN    16 /* bytes of key material, at least */
#define HB_SECRET_MAX    256
#define HB_SIG_HEX_LEN   64

typedef struct {
    char id[HB_SECRET_ID_MAX + 1];
    unsigned char key[HB_SECRET_MAX];
    size_t len;
} hb_secret_t;

typedef enum {
    HB_AUTH_OK = 0,
    HB_AUTH_UNSIGNED,    /* no sig= field */
    HB_AUTH_MALFORMED,   /* sig= not last, not 64 hex, ts= or kid= missing or bad, or
                          * longer than HB_PACKET_MAX */
    HB_AUTH_UNKNOWN_KEY, /* kid names no configured key */
    HB_AUTH_BADSIG,      /* the HMAC does not match: forged or modified */
    HB_AUTH_CLOCK        /* ts= further than the window from our clock */
} hb_auth_e;

/*
 * Load a key: material is the file's bytes with trailing whitespace
 * removed. Returns 0, or -1 if it is shorter than HB_SECRET_MIN or longer than
 * HB_SECRET_MAX, or id is not a valid key id.
 */
int hb_secret_set(hb_secret_t *k, const char *id, const unsigned char *material, size_t len);
int hb_secret_id_valid(const char *id);

/*
 * Read a key file. It must be a regular file that only its owner can read
 * or write (mode 0600 or 0400), owned by root or by the caller, holding at
 * least HB_SECRET_MIN bytes. id may be NULL: the file's name without
 * directory and extension. Returns 0, or -1 with a reason in err. A path
 * that cannot be opened is named in err only if it looks like one (its
 * file name has an extension, as in site.key): otherwise it may be key
 * material pasted in place of a path, which must not reach the error log.
 */
int hb_secret_load(hb_secret_t *k, const char *path, const char *id, char *err, size_t errlen);

/*
 * Wipe a key's material, id and length with OPENSSL_cleanse (a memset of
 * memory that is about to be freed may be optimised away).
 */
void hb_secret_clear(hb_secret_t *k);

/*
 * Pool cleanups: hb_secret_cleanup wipes the hb_secret_t it is given,
 * hb_secret_array_cleanup every hb_secret_t of an apr_array_header_t, so
 * that no key stays in a configuration pool's memory after the pool is
 * cleared (at every restart) or destroyed. Register them with
 * apr_pool_cleanup_register(pool, k, hb_secret_cleanup,
 * apr_pool_cleanup_null).
 */
apr_status_t hb_secret_cleanup(void *k);
apr_status_t hb_secret_array_cleanup(void *keys);

/*
 * Append *k to keys (an array of hb_secret_t) and wipe *k; returns the
 * element, or NULL if keys does not hold hb_secret_t. The first push
 * registers hb_secret_array_cleanup on the array's pool; when the array
 * grows, its old storage is wiped (apr_array_push would leave that copy
 * of every key behind in the pool).
 */
hb_secret_t *hb_secret_push(apr_array_header_t *keys, hb_secret_t *k);

/*
 * Append "&ts=..&kid=..&sig=.." to the packet in buf (len bytes, NUL not
 * counted) for time now_ms. Returns the new length, or 0 if cap (including
 * the NUL) is too small or k holds no key (wiped). A sender passes a cap
 * of HB_PACKET_MAX + 1: hb_auth_verify refuses anything longer.
 */
size_t hb_auth_sign(const hb_secret_t *k, char *buf, size_t len, size_t cap, int64_t now_ms);

/*
 * Check a packet. A signed packet longer than HB_PACKET_MAX, signature
 * included, is HB_AUTH_MALFORMED: the limit is the datagram's, and the
 * parser sees only the signed part. On HB_AUTH_OK, *signed_len is the length of the part
 * before "&sig=" (parse that part) and *key is the key that verified.
 * window_ms bounds |now_ms - ts|. Unknown kid: each key is tried only if
 * the packet names none. Comparison is constant-time.
 */
hb_auth_e hb_auth_verify(const hb_secret_t *keys, unsigned int nkeys, const char *buf, size_t len,
                         int64_t now_ms, int64_t window_ms, size_t *signed_len,
                         const hb_secret_t **key);

const char *hb_auth_str(hb_auth_e e);

#endif
