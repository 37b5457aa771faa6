/*
 * hm_storage.c: read and write the HeartbeatStorage file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "apr_strings.h"

#include "hm_storage.h"

#define USEC_PER_SEC 1000000

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif

size_t hm_storage_format_line(const hm_entry_t *e, int64_t now, char *buf, size_t cap)
{
    char ip[HM_IP_MAX];
    int64_t age = 0, lastseen = 0;
    unsigned int port = HM_DEFAULT_PORT;
    int known = (e->flags & HM_ENTRY_PORT_KNOWN) != 0;
    size_t len;
    int n;

    if (buf == NULL || cap == 0) {
        return 0;
    }
    /* Regenerate the text from the key: the key is what identifies the entry,
     * and a reader must be able to turn the text back into the same key. */
    hm_addr_to_string(&e->key, ip);
    if (ip[0] == '\0') {
        goto toosmall;
    }
    if (now > e->seen && !__builtin_sub_overflow(now, e->seen, &age)) {
        lastseen = age / USEC_PER_SEC;
    } else if (now > e->seen) {
        lastseen = INT64_MAX / USEC_PER_SEC;
    }
    if (known) {
        port = e->key.port;
    }

    n = snprintf(buf, cap, "%s &ready=%" PRIu32 "&busy=%" PRIu32 "&lastseen=%" PRId64 "&port=%u",
                 ip, e->ready, e->busy, lastseen, port);
    if (n < 0 || (size_t)n >= cap) {
        goto toosmall;
    }
    len = (size_t)n;
    /* A negative time cannot be parsed back; the reader then falls back to
     * lastseen, which is what a stock file gives it anyway. */
    if (e->seen >= 0) {
        n = snprintf(buf + len, cap - len, "&seen=%" PRId64, e->seen);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    if (e->interval_ms != 0) {
        n = snprintf(buf + len, cap - len, "&int=%" PRIu32, e->interval_ms);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    n = snprintf(buf + len, cap - len, "&state=%s",
                 e->state <= HB_STATE_STOPPING ? hb_state_str((hb_state_e)e->state) : "up");
    if (n < 0 || (size_t)n >= cap - len) {
        goto toosmall;
    }
    len += (size_t)n;
    if (e->seq != 0) {
        n = snprintf(buf + len, cap - len, "&seq=%" PRIu64, e->seq);
        if (n < 0 || (size_t)n >= cap - len) {
            goto toosmall;
        }
        len += (size_t)n;
    }
    n = snprintf(buf + len, cap - len, "&portknown=%d\n", known);
    if (n < 0 || (size_t)n >= cap - len) {
        goto toosmall;
    }
    len += (size_t)n;
    if (len > HM_STORAGE_LINE_MAX) {
        goto toosmall;
    }
    return len;

toosmall:
    buf[0] = '\0';
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

enum {
    L_READY = 0x001,
    L_BUSY = 0x002,
    L_LASTSEEN = 0x004,
    L_PORT = 0x008,
    L_SEEN = 0x010,
    L_INT = 0x020,
    L_STATE = 0x040,
    L_SEQ = 0x080,
    L_PORTKNOWN = 0x100
};

static const struct {
    const char *name;
    unsigned int bit;
} line_keys[] = {{"ready", L_READY}, {"busy", L_BUSY}, {"lastseen", L_LASTSEEN},
                 {"port", L_PORT},   {"seen", L_SEEN}, {"int", L_INT},
                 {"state", L_STATE}, {"seq", L_SEQ},   {"portknown", L_PORTKNOWN}};

static unsigned int line_key_bit(const hb_kv_t *kv)
{
    for (size_t i = 0; i < sizeof(line_keys) / sizeof(line_keys[0]); i++) {
        size_t n = strlen(line_keys[i].name);
        if (kv->key_len == n && memcmp(kv->key, line_keys[i].name, n) == 0) {
            return line_keys[i].bit;
        }
    }
    return 0;
}

/* Parse one content line (no terminator, not blank, not a comment). */
static int parse_line(const char *s, size_t len, int64_t written_at, hm_entry_t *e)
{
    const char *end = s + len, *p = s, *ip_end, *pos;
    char ip[HM_IP_MAX + 3];
    uint64_t ready = 0, busy = 0, lastseen = 0, port = HM_DEFAULT_PORT, seen = 0, interval = 0;
    uint64_t seq = 0, portknown = 0;
    hb_state_e state = HB_STATE_UP;
    unsigned int have = 0;
    hb_kv_t kv;
    int r;

    if (len > HM_STORAGE_LINE_MAX) {
        return -1;
    }
    while (p < end && is_blank(*p)) {
        p++;
    }
    ip_end = p;
    while (ip_end < end && !is_blank(*ip_end)) {
        ip_end++;
    }
    if (ip_end == p || (size_t)(ip_end - p) >= sizeof(ip) || ip_end == end) {
        return -1;
    }
    memcpy(ip, p, (size_t)(ip_end - p));
    ip[ip_end - p] = '\0';
    /* An embedded NUL would let inet_pton see a shorter, valid address. */
    if (strlen(ip) != (size_t)(ip_end - p)) {
        return -1;
    }
    pos = ip_end;
    while (pos < end && is_blank(*pos)) {
        pos++;
    }
    while (end > pos && is_blank(end[-1])) {
        end--;
    }

    while ((r = hb_query_next(&pos, end, &kv)) != 0) {
        unsigned int bit;
        hb_status_e st = HB_OK;

        if (r < 0) {
            return -1;
        }
        bit = line_key_bit(&kv);
        if (bit == 0) {
            continue;
        }
        if (have & bit) {
            return -1;
        }
        have |= bit;
        switch (bit) {
        case L_READY:
            st = hb_parse_u64(kv.val, kv.val_len, HB_COUNT_MAX, &ready);
            break;
        case L_BUSY:
            st = hb_parse_u64(kv.val, kv.val_len, HB_COUNT_MAX, &busy);
            break;
        case L_LASTSEEN:
            st = hb_parse_u64(kv.val, kv.val_len, UINT64_MAX, &lastseen);
            break;
        case L_PORT:
            st = hb_parse_u64(kv.val, kv.val_len, 65535, &port);
            if (st == HB_OK && port == 0) {
                st = HB_E_RANGE;
            }
            break;
        case L_SEEN:
            st = hb_parse_u64(kv.val, kv.val_len, INT64_MAX, &seen);
            break;
        case L_INT:
            st = hb_parse_u64(kv.val, kv.val_len, HB_INTERVAL_MAX_MS, &interval);
            if (st == HB_OK && interval < HB_INTERVAL_MIN_MS) {
                st = HB_E_RANGE;
            }
            break;
        case L_STATE:
            st = hb_state_parse(kv.val, kv.val_len, &state) == 0 ? HB_OK : HB_E_STATE;
            break;
        case L_SEQ:
            st = hb_parse_u64(kv.val, kv.val_len, UINT64_MAX, &seq);
            break;
        default: /* L_PORTKNOWN */
            st = hb_parse_u64(kv.val, kv.val_len, 1, &portknown);
            break;
        }
        if (st != HB_OK) {
            return -1;
        }
    }
    if ((have & (L_READY | L_BUSY)) != (L_READY | L_BUSY)) {
        return -1;
    }

    memset(e, 0, sizeof(*e));
    if (hm_addr_from_string(&e->key, ip, (uint16_t)port) != 0) {
        return -1;
    }
    hm_addr_to_string(&e->key, e->ip);
    e->ready = (uint32_t)ready;
    e->busy = (uint32_t)busy;
    e->interval_ms = (uint32_t)interval;
    e->state = (uint32_t)state;
    e->seq = seq;
    /* The stock monitor writes port=80 for senders that never named a port,
     * so in a file without our portknown field, 80 proves nothing. */
    if (have & L_PORTKNOWN) {
        if (portknown) {
            e->flags |= HM_ENTRY_PORT_KNOWN;
        }
    } else if ((have & L_PORT) && port != HM_DEFAULT_PORT) {
        e->flags |= HM_ENTRY_PORT_KNOWN;
    }
    if (have & L_SEEN) {
        /* A clock step or a hand-edited file must not make an entry look
         * fresher than the file that holds it. */
        e->seen = (int64_t)seen < written_at ? (int64_t)seen : written_at;
    } else {
        int64_t back;
        if (lastseen > (uint64_t)(INT64_MAX / USEC_PER_SEC) ||
            __builtin_sub_overflow(written_at, (int64_t)lastseen * USEC_PER_SEC, &back)) {
            back = INT64_MIN;
        }
        e->seen = back;
    }
    e->first_seen = e->seen;
    return 0;
}

void hm_storage_parse(const char *buf, size_t len, int64_t written_at, apr_array_header_t *out,
                      hm_storage_stats_t *st)
{
    hm_storage_stats_t local;
    const char *p, *end;
    unsigned int lineno = 0;

    if (st == NULL) {
        st = &local;
    }
    memset(st, 0, sizeof(*st));
    if (buf == NULL) {
        return;
    }
    p = buf;
    end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        hm_entry_t e;

        lineno++;
        if (le > p && le[-1] == '\r') {
            le--;
        }
        while (q < le && is_blank(*q)) {
            q++;
        }
        if (q < le && *q != '#') {
            st->lines++;
            if (parse_line(p, (size_t)(le - p), written_at, &e) == 0) {
                if (out != NULL) {
                    *(hm_entry_t *)apr_array_push(out) = e;
                }
                st->entries++;
            } else {
                st->bad++;
                if (st->first_bad_line == 0) {
                    st->first_bad_line = lineno;
                }
            }
        }
        p = nl ? nl + 1 : end;
    }
}

/* ---- file I/O --------------------------------------------------------- */

typedef struct {
    int fd;
    int err;
    size_t used;
    char buf[16384];
} wbuf_t;

static void wb_flush(wbuf_t *w)
{
    size_t off = 0;
    while (w->err == 0 && off < w->used) {
        ssize_t n = write(w->fd, w->buf + off, w->used - off);
        if (n < 0) {
            if (errno != EINTR) {
                w->err = errno;
            }
            continue;
        }
        off += (size_t)n;
    }
    w->used = 0;
}

static void wb_put(wbuf_t *w, const char *s, size_t n)
{
    if (sizeof(w->buf) - w->used < n) {
        wb_flush(w);
    }
    memcpy(w->buf + w->used, s, n);
    w->used += n;
}

int hm_storage_write(const char *path, const hm_table_t *t, int64_t now, int64_t max_age,
                     apr_pool_t *p)
{
    char line[HM_STORAGE_LINE_MAX + 1];
    char stamp[64];
    wbuf_t *w;
    const char *tmp;
    time_t secs = (time_t)(now / USEC_PER_SEC);
    struct tm tm;
    int rv;

    if (path == NULL || t == NULL || p == NULL) {
        return EINVAL;
    }
    /* Appending to the name keeps the temp file in the target's directory,
     * hence on its filesystem, which rename() needs to be atomic. */
    tmp = apr_psprintf(p, "%s.tmp.%ld", path, (long)getpid());
    w = apr_palloc(p, sizeof(*w));
    w->err = 0;
    w->used = 0;
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (w->fd < 0) {
        return errno;
    }

    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(stamp, sizeof(stamp), "@%" PRId64, now);
    }
    rv = snprintf(line, sizeof(line), "# heartbeat table, written %s\n", stamp);
    wb_put(w, line, (size_t)rv);

    for (unsigned int i = 0; i < hm_table_capacity(t) && w->err == 0; i++) {
        hm_entry_t e;
        size_t n;
        if (!hm_table_get(t, i, &e)) {
            continue;
        }
        if (max_age > 0) {
            int64_t limit;
            if (!__builtin_sub_overflow(now, max_age, &limit) && e.seen < limit) {
                continue;
            }
        }
        n = hm_storage_format_line(&e, now, line, sizeof(line));
        if (n > 0) {
            wb_put(w, line, n);
        }
    }
    wb_flush(w);
    rv = w->err;
    if (close(w->fd) != 0 && rv == 0) {
        rv = errno;
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = errno;
    }
    if (rv != 0) {
        unlink(tmp);
    }
    return rv;
}

int hm_storage_read(const char *path, size_t max_bytes, apr_pool_t *p, apr_array_header_t **out,
                    int64_t *mtime, hm_storage_stats_t *st)
{
    struct stat sb;
    char *buf;
    size_t len = 0, cap;
    int64_t written;
    int fd, rv = 0;

    if (path == NULL || p == NULL || out == NULL) {
        return EINVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    if (fstat(fd, &sb) != 0) {
        rv = errno;
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        rv = EISDIR;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rv = EINVAL;
        goto out;
    }
    if ((uint64_t)sb.st_size > (uint64_t)max_bytes) {
        rv = EFBIG;
        goto out;
    }
    /* Sized from fstat() but grown if the file grows while we read it, up to
     * one byte past the limit so that growth beyond it is still caught. */
    cap = (size_t)sb.st_size + 1;
    buf = apr_palloc(p, cap);
    for (;;) {
        ssize_t n;
        if (len == cap) {
            size_t ncap = cap > max_bytes / 2 ? max_bytes + 1 : cap * 2;
            char *nbuf;
            if (ncap <= cap) {
                rv = EFBIG;
                goto out;
            }
            nbuf = apr_palloc(p, ncap);
            memcpy(nbuf, buf, len);
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rv = errno;
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > max_bytes) {
            rv = EFBIG;
            goto out;
        }
    }
    written = (int64_t)sb.st_mtim.tv_sec * USEC_PER_SEC + sb.st_mtim.tv_nsec / 1000;
    if (mtime != NULL) {
        *mtime = written;
    }
    *out = apr_array_make(p, 16, sizeof(hm_entry_t));
    hm_storage_parse(buf, len, written, *out, st);

out:
    close(fd);
    return rv;
}
