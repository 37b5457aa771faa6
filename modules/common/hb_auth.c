/*
 * hb_auth.c: HMAC-SHA256 signing and verification of heartbeats, with
 * OpenSSL's libcrypto (which httpd itself links): no hand-written crypto.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hb_auth.h"
#include "hb_packet.h"

static const char hex[] = "0123456789abcdef";

int hb_secret_id_valid(const char *id)
{
    size_t n = 0;

    if (!id) {
        return 0;
    }
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return 0;
        }
    }
    return n >= 1 && n <= HB_SECRET_ID_MAX;
}

int hb_secret_set(hb_secret_t *k, const char *id, const unsigned char *material, size_t len)
{
    while (len > 0 && (material[len - 1] == '\n' || material[len - 1] == '\r' ||
                       material[len - 1] == ' ' || material[len - 1] == '\t')) {
        len--;
    }
    if (!hb_secret_id_valid(id) || len < HB_SECRET_MIN || len > HB_SECRET_MAX) {
        return -1;
    }
    memset(k, 0, sizeof(*k));
    memcpy(k->id, id, strlen(id) + 1);
    memcpy(k->key, material, len);
    k->len = len;
    return 0;
}

/*
 * Whether a path that could not be opened may be named in an error
 * message. A key pasted where the path of its file belongs fails to open
 * like a mistyped path, and the message goes to the console and the error
 * log: name it only if its file name has an extension (site.key), which
 * hex and base64 key material never has, and it holds nothing but the
 * characters of ordinary paths.
 */
static int looks_like_path(const char *path)
{
    const char *base = strrchr(path, '/'), *dot;
    const char *c;

    for (c = path; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '/' || *c == '.' || *c == '_' || *c == '-')) {
            return 0;
        }
    }
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    return dot && dot > base && dot[1] != '\0';
}

int hb_secret_load(hb_secret_t *k, const char *path, const char *id, char *err, size_t errlen)
{
    unsigned char material[HB_SECRET_MAX + 64];
    char defid[HB_SECRET_ID_MAX + 1];
    struct stat st;
    ssize_t n;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (looks_like_path(path)) {
            snprintf(err, errlen,
                     "cannot open key file %s (%s); give the path of a file holding the key, "
                     "never the key itself",
                     path, strerror(errno));
        } else {
            snprintf(err, errlen,
                     "cannot open the key file (%s); the argument does not look like a path "
                     "(a file name such as site.key) and may be key material, so it is not "
                     "repeated here: give the path of a file holding the key, never the key "
                     "itself",
                     strerror(errno));
        }
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "key file %s is accessible to others (mode %04o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "key file %s must be owned by root", path);
        close(fd);
        return -1;
    }
    n = read(fd, material, sizeof(material));
    close(fd);
    if (n < 0 || (size_t)n >= sizeof(material)) {
        snprintf(err, errlen, "cannot read key file %s, or it is larger than %d bytes", path,
                 HB_SECRET_MAX);
        goto done;
    }
    if (!id) {
        const char *base = strrchr(path, '/');
        size_t len;
        base = base ? base + 1 : path;
        len = strcspn(base, ".");
        if (len > HB_SECRET_ID_MAX) {
            len = HB_SECRET_ID_MAX;
        }
        memcpy(defid, base, len);
        defid[len] = '\0';
        id = defid;
    }
    if (!hb_secret_id_valid(id)) {
        snprintf(err, errlen, "key id '%s' must be 1 to %d of A-Z a-z 0-9 _ . -", id,
                 HB_SECRET_ID_MAX);
        goto done;
    }
    if (hb_secret_set(k, id, material, (size_t)n) != 0) {
        snprintf(err, errlen, "key file %s must hold %d to %d bytes of key", path, HB_SECRET_MIN,
                 HB_SECRET_MAX);
        goto done;
    }
    rc = 0;
done:
    OPENSSL_cleanse(material, sizeof(material));
    return rc;
}

void hb_secret_clear(hb_secret_t *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

apr_status_t hb_secret_cleanup(void *k)
{
    hb_secret_clear(k);
    return APR_SUCCESS;
}

apr_status_t hb_secret_array_cleanup(void *keys)
{
    apr_array_header_t *a = keys;

    if (a->elt_size == (int)sizeof(hb_secret_t) && a->nalloc > 0) {
        OPENSSL_cleanse(a->elts, (size_t)a->nalloc * sizeof(hb_secret_t));
    }
    return APR_SUCCESS;
}

hb_secret_t *hb_secret_push(apr_array_header_t *keys, hb_secret_t *k)
{
    hb_secret_t *slot;

    if (keys->elt_size != (int)sizeof(hb_secret_t)) {
        return NULL;
    }
    if (keys->nelts == 0) {
        apr_pool_cleanup_register(keys->pool, keys, hb_secret_array_cleanup, apr_pool_cleanup_null);
    }
    if (keys->nelts == keys->nalloc) {
        /* Grow it here, as apr_array_push would, but wipe the old copy. */
        int nalloc = keys->nalloc > 0 ? keys->nalloc * 2 : 1;
        char *elts = apr_pcalloc(keys->pool, (apr_size_t)nalloc * sizeof(hb_secret_t));

        if (keys->nalloc > 0) {
            memcpy(elts, keys->elts, (size_t)keys->nelts * sizeof(hb_secret_t));
            OPENSSL_cleanse(keys->elts, (size_t)keys->nalloc * sizeof(hb_secret_t));
        }
        keys->elts = elts;
        keys->nalloc = nalloc;
    }
    slot = apr_array_push(keys);
    *slot = *k;
    hb_secret_clear(k);
    return slot;
}

static int mac(const hb_secret_t *k, const char *buf, size_t len, unsigned char out[32])
{
    unsigned int outlen = 0;

    return HMAC(EVP_sha256(), k->key, (int)k->len, (const unsigned char *)buf, len, out, &outlen) !=
               NULL &&
           outlen == 32;
}

size_t hb_auth_sign(const hb_secret_t *k, char *buf, size_t len, size_t cap, int64_t now_ms)
{
    unsigned char m[32];
    int n;
    size_t i;

    if (k->len < HB_SECRET_MIN) {
        return 0; /* wiped, or never set: signing with no key proves nothing */
    }
    n = snprintf(buf + len, cap > len ? cap - len : 0, "&ts=%lld&kid=%s", (long long)now_ms, k->id);
    if (n < 0 || len + (size_t)n + 5 + HB_SIG_HEX_LEN + 1 > cap) {
        return 0;
    }
    len += (size_t)n;
    if (!mac(k, buf, len, m)) {
        return 0;
    }
    memcpy(buf + len, "&sig=", 5);
    len += 5;
    for (i = 0; i < 32; i++) {
        buf[len++] = hex[m[i] >> 4];
        buf[len++] = hex[m[i] & 15];
    }
    buf[len] = '\0';
    return len;
}

static int unhex(const char *s, unsigned char out[32])
{
    size_t i;

    for (i = 0; i < HB_SIG_HEX_LEN; i++) {
        char c = s[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0) {
            return -1;
        }
        out[i / 2] = (unsigned char)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return 0;
}

hb_auth_e hb_auth_verify(const hb_secret_t *keys, unsigned int nkeys, const char *buf, size_t len,
                         int64_t now_ms, int64_t window_ms, size_t *signed_len,
                         const hb_secret_t **key)
{
    const char *sig = NULL, *p, *end;
    unsigned char want[32], got[32];
    hb_kv_t kv;
    uint64_t ts = 0;
    int have_ts = 0, r;
    const char *kid = NULL;
    size_t kid_len = 0, slen, i;

    /* The last "&sig=" (a value never contains '&'). */
    for (i = len; i >= 5; i--) {
        if (!memcmp(buf + i - 5, "&sig=", 5)) {
            sig = buf + i;
            break;
        }
    }
    if (!sig) {
        return HB_AUTH_UNSIGNED;
    }
    slen = (size_t)(sig - 5 - buf);
    /* The limit is the datagram's, signature included: the parser, which
     * enforces it, sees only the signed part. */
    if (len > HB_PACKET_MAX || (size_t)(buf + len - sig) != HB_SIG_HEX_LEN ||
        unhex(sig, got) != 0) {
        return HB_AUTH_MALFORMED;
    }
    p = buf;
    end = buf + slen;
    while ((r = hb_query_next(&p, end, &kv)) != 0) {
        if (r < 0) {
            return HB_AUTH_MALFORMED;
        }
        if (kv.key_len == 2 && !memcmp(kv.key, "ts", 2)) {
            if (have_ts || hb_parse_u64(kv.val, kv.val_len, INT64_MAX, &ts) != HB_OK) {
                return HB_AUTH_MALFORMED;
            }
            have_ts = 1;
        } else if (kv.key_len == 3 && !memcmp(kv.key, "kid", 3)) {
            if (kid || kv.val_len == 0 || kv.val_len > HB_SECRET_ID_MAX) {
                return HB_AUTH_MALFORMED;
            }
            kid = kv.val;
            kid_len = kv.val_len;
        }
    }
    if (!have_ts) {
        return HB_AUTH_MALFORMED;
    }
    for (i = 0; i < nkeys; i++) {
        const hb_secret_t *k = &keys[i];
        if (kid && (strlen(k->id) != kid_len || memcmp(k->id, kid, kid_len))) {
            continue;
        }
        if (!mac(k, buf, slen, want)) {
            continue;
        }
        if (CRYPTO_memcmp(want, got, sizeof(want)) == 0) {
            /* Only an authentic packet gets its clock judged: a forger
             * learns nothing from which check failed. */
            if ((int64_t)ts > now_ms + window_ms || (int64_t)ts < now_ms - window_ms) {
                return HB_AUTH_CLOCK;
            }
            *signed_len = slen;
            if (key) {
                *key = k;
            }
            return HB_AUTH_OK;
        }
        if (kid) {
            return HB_AUTH_BADSIG;
        }
    }
    return kid ? HB_AUTH_UNKNOWN_KEY : HB_AUTH_BADSIG;
}

const char *hb_auth_str(hb_auth_e e)
{
    switch (e) {
    case HB_AUTH_OK:
        return "ok";
    case HB_AUTH_UNSIGNED:
        return "unsigned";
    case HB_AUTH_MALFORMED:
        return "malformed signature fields";
    case HB_AUTH_UNKNOWN_KEY:
        return "unknown key id";
    case HB_AUTH_BADSIG:
        return "bad signature";
    case HB_AUTH_CLOCK:
        return "timestamp outside the window";
    }
    return "?";
}
