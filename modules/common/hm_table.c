/*
 * hm_table.c: the origin table in one flat, position-independent block.
 *
 * Layout: [header][slot 0 .. slot capacity-1][index: int32 x index_size]
 * [tombstones: capacity].
 * The hm_table_t pointer is the block itself, so nothing inside the block
 * depends on where it is mapped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <pthread.h>
#include <unistd.h>

#include "hm_table.h"

#define HM_MAGIC          0x484d5442u /* "HMTB" */
#define HM_LAYOUT_VERSION 8u

/* Keeps slot numbers within an index entry's 24 bits and the index size
 * within uint32. */
#define HM_CAPACITY_MAX (1u << 24)

/* An index entry: -1 when empty, else the slot number in the low 24 bits
 * and 7 bits of the key's hash above it, so that a probe past another key
 * is told apart without reading that key's slot (a cache miss each in a
 * large table) in all but 1 case in 128. */
#define IDX_SLOT_BITS 24
#define IDX_SLOT_MASK ((1u << IDX_SLOT_BITS) - 1u)

/* A writer holds the lock for well under a microsecond; this many yields
 * means the holder is either descheduled for long or dead. */
#define HM_LOCK_STEAL_SPINS 100000u

/* Readers give up rather than hang behind a writer that died mid-update;
 * "absent" is the safe answer for a balancer. */
#define HM_READ_TIGHT_SPINS 64u
#define HM_READ_MAX_TRIES   200000u

struct hm_table {
    uint32_t magic;
    uint32_t layout;
    uint32_t capacity;
    uint32_t index_size; /* power of two */
    uint64_t total_size;
    int32_t lock;      /* owner pid, 0 when free */
    uint32_t gen;      /* odd while the index changes */
    uint32_t count;    /* entries in use */
    int32_t free_head; /* first free slot, -1 when none; writer-only */
    uint64_t counters[HM_CTR_COUNT];
    uint32_t conditions; /* HM_COND_* */
    uint32_t rej_seq;    /* seqlock over the ring below */
    uint32_t rej_next;   /* total rejections noted; ring position = rej_next % HM_REJECTS */
    hm_reject_t rejects[HM_REJECTS];
    uint32_t out_next; /* the same for outside[], also under rej_seq */
    uint32_t lim_seq;  /* seqlock over limited[] */
    hm_reject_t outside[HM_REJECTS];
    hm_limited_t limited[HM_LIMITED];
    /* hm_table_set_guard; the tombstones are writer-only */
    int64_t replay_window;
    uint32_t max_per_addr;
    uint32_t tomb_next;  /* tombstones written; ring position = tomb_next % capacity */
    int64_t tomb_newest; /* when the newest tombstone's entry was last seen */
    uint32_t join_gen;   /* hm_table_join_generation */
    uint32_t pad2;
};

/* What is left of a signed entry once it is gone: enough to refuse its
 * own old packets. */
typedef struct {
    hm_addr_t key;
    uint32_t pad;
    uint64_t seq;
    int64_t seen;
} hm_tomb_t;

typedef struct {
    uint32_t seq;      /* odd while the slot is written */
    uint32_t used;     /* covered by seq */
    int32_t next_free; /* writer-only free list link */
    uint32_t pad;
    hm_entry_t e; /* covered by seq */
} hm_slot_t;

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

static size_t header_size(void)
{
    return ALIGN8(sizeof(struct hm_table));
}

static uint32_t index_size_for(unsigned int capacity)
{
    uint32_t n = 1;
    while (n < 2u * capacity) {
        n <<= 1;
    }
    return n;
}

static hm_slot_t *slots_of(const hm_table_t *t)
{
    return (hm_slot_t *)((char *)(uintptr_t)t + header_size());
}

static int32_t *index_of(const hm_table_t *t)
{
    return (int32_t *)((char *)slots_of(t) + (size_t)t->capacity * sizeof(hm_slot_t));
}

static hm_tomb_t *tombs_of(const hm_table_t *t)
{
    return (hm_tomb_t *)((char *)index_of(t) + ALIGN8((size_t)t->index_size * sizeof(int32_t)));
}

size_t hm_table_size(unsigned int capacity)
{
    if (capacity == 0 || capacity > HM_CAPACITY_MAX) {
        return 0;
    }
    /* No overflow possible on 64-bit size_t given HM_CAPACITY_MAX; check
     * anyway for 32-bit builds. */
    size_t slots = (size_t)capacity * sizeof(hm_slot_t);
    if (slots / sizeof(hm_slot_t) != capacity) {
        return 0;
    }
    size_t idx = ALIGN8((size_t)index_size_for(capacity) * sizeof(int32_t));
    size_t tombs = (size_t)capacity * sizeof(hm_tomb_t);
    size_t total = header_size() + slots;
    if (total < slots || total + idx < total || total + idx + tombs < total + idx) {
        return 0;
    }
    return ALIGN8(total + idx + tombs);
}

/* ---- keys ------------------------------------------------------------- */

static size_t addr_len(uint8_t family)
{
    return family == 4 ? 4 : 16;
}

/* Zero the bytes that do not belong to the address so that copies compare
 * and hash the same whatever the caller left there. */
static void key_canon(hm_addr_t *dst, const hm_addr_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->family = src->family;
    dst->port = src->port;
    memcpy(dst->addr, src->addr, addr_len(src->family));
}

static uint32_t key_hash(const hm_addr_t *k)
{
    /* FNV-1a, then a final mix so that the low bits used by the mask depend
     * on every input byte. */
    uint64_t h = 1469598103934665603ull;
    uint8_t head[3] = {k->family, (uint8_t)(k->port >> 8), (uint8_t)k->port};
    for (size_t i = 0; i < sizeof(head); i++) {
        h = (h ^ head[i]) * 1099511628211ull;
    }
    for (size_t i = 0; i < addr_len(k->family); i++) {
        h = (h ^ k->addr[i]) * 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* ---- writer lock ------------------------------------------------------ */

static void repair(hm_table_t *t);

/* getpid() is a real system call in current glibc and the lock is taken
 * once per accepted heartbeat; a fork hook keeps the cached value true. */
static int32_t hm_my_pid;
static pthread_once_t hm_pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
    hm_my_pid = 0;
}

static void pid_hook(void)
{
    pthread_atfork(NULL, NULL, pid_forget);
}

static int32_t my_pid(void)
{
    int32_t pid = __atomic_load_n(&hm_my_pid, __ATOMIC_RELAXED);

    if (pid == 0) {
        pthread_once(&hm_pid_once, pid_hook);
        pid = (int32_t)getpid();
        __atomic_store_n(&hm_my_pid, pid, __ATOMIC_RELAXED);
    }
    return pid;
}

static void lock_table(hm_table_t *t)
{
    int32_t me = my_pid();
    unsigned int spins = 0;

    for (;;) {
        int32_t owner = 0;
        if (__atomic_compare_exchange_n(&t->lock, &owner, me, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            return;
        }
        if (++spins >= HM_LOCK_STEAL_SPINS) {
            spins = 0;
            if (owner != 0 && owner != me && kill((pid_t)owner, 0) == -1 && errno == ESRCH) {
                if (__atomic_compare_exchange_n(&t->lock, &owner, me, 0, __ATOMIC_ACQUIRE,
                                                __ATOMIC_RELAXED)) {
                    /* The dead writer may have left a slot or the index
                     * half-changed; make the table consistent again. */
                    repair(t);
                    return;
                }
            }
        }
        sched_yield();
    }
}

static void unlock_table(hm_table_t *t)
{
    __atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

/* ---- seqlocks --------------------------------------------------------- */

static void seq_begin(uint32_t *seq)
{
    __atomic_store_n(seq, *seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void seq_end(uint32_t *seq)
{
    __atomic_store_n(seq, *seq + 1, __ATOMIC_RELEASE);
}

static void slot_write(hm_slot_t *s, const hm_entry_t *e, uint32_t used)
{
    seq_begin(&s->seq);
    if (e != NULL) {
        memcpy(&s->e, e, sizeof(*e));
    } else {
        memset(&s->e, 0, sizeof(s->e));
    }
    s->used = used;
    seq_end(&s->seq);
}

static void read_backoff(unsigned int tries)
{
    if (tries % HM_READ_TIGHT_SPINS == 0) {
        sched_yield();
    }
}

/* Returns 1 used (out filled), 0 free, -1 gave up. */
static int slot_read(const hm_slot_t *s, hm_entry_t *out)
{
    for (unsigned int tries = 1; tries <= HM_READ_MAX_TRIES; tries++) {
        uint32_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1u) {
            read_backoff(tries);
            continue;
        }
        uint32_t used = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
        hm_entry_t tmp;
        if (used) {
            memcpy(&tmp, &s->e, sizeof(tmp));
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != s1) {
            read_backoff(tries);
            continue;
        }
        if (used && out != NULL) {
            memcpy(out, &tmp, sizeof(tmp));
        }
        return used ? 1 : 0;
    }
    return -1;
}

/* ---- index (writer side) ---------------------------------------------- */

static int32_t idx_entry(int32_t slot, uint32_t hash)
{
    return (int32_t)(((hash >> 25) << IDX_SLOT_BITS) | (uint32_t)slot);
}

static int32_t idx_slot(int32_t v)
{
    return (int32_t)((uint32_t)v & IDX_SLOT_MASK);
}

static int idx_tag_matches(int32_t v, uint32_t hash)
{
    return ((uint32_t)v >> IDX_SLOT_BITS) == (hash >> 25);
}

static void idx_store(int32_t *idx, uint32_t pos, int32_t v)
{
    __atomic_store_n(&idx[pos], v, __ATOMIC_RELAXED);
}

static int32_t idx_load(const int32_t *idx, uint32_t pos)
{
    return __atomic_load_n(&idx[pos], __ATOMIC_RELAXED);
}

void hm_table_prefetch(const hm_table_t *t, const hm_addr_t *key, int stage)
{
    const int32_t *idx = index_of(t);
    hm_addr_t k;
    uint32_t hash, pos;
    int32_t sn;

    key_canon(&k, key);
    hash = key_hash(&k);
    pos = hash & (t->index_size - 1);
    if (stage == 0) {
        __builtin_prefetch(&idx[pos], 0, 3);
        return;
    }
    sn = idx_load(idx, pos);
    /* Range-checked like any reader's: the block is shared. */
    if (sn >= 0 && idx_tag_matches(sn, hash) && (uint32_t)idx_slot(sn) < t->capacity) {
        /* Every cache line of the slot: an update rewrites all of it. */
        const char *slot = (const char *)&slots_of(t)[idx_slot(sn)];
        uintptr_t line = (uintptr_t)slot & ~(uintptr_t)63;
        for (; line < (uintptr_t)slot + sizeof(hm_slot_t); line += 64) {
            __builtin_prefetch((const void *)line, 1, 3);
        }
    }
}

/* Writer-only lookup: returns the index position holding key, or -1. */
static int64_t idx_find_pos(const hm_table_t *t, const hm_addr_t *key)
{
    const int32_t *idx = index_of(t);
    const hm_slot_t *slots = slots_of(t);
    uint32_t mask = t->index_size - 1;
    uint32_t hash = key_hash(key);
    uint32_t pos = hash & mask;

    for (uint32_t n = 0; n < t->index_size; n++, pos = (pos + 1) & mask) {
        int32_t v = idx[pos];
        if (v < 0) {
            return -1;
        }
        if (idx_tag_matches(v, hash) && hm_addr_equal(&slots[idx_slot(v)].e.key, key)) {
            return pos;
        }
    }
    return -1;
}

static void idx_insert(hm_table_t *t, int32_t slot)
{
    int32_t *idx = index_of(t);
    uint32_t mask = t->index_size - 1;
    uint32_t hash = key_hash(&slots_of(t)[slot].e.key);
    uint32_t pos = hash & mask;

    /* The index is at least twice the capacity, so a hole always exists. */
    while (idx[pos] >= 0) {
        pos = (pos + 1) & mask;
    }
    idx_store(idx, pos, idx_entry(slot, hash));
}

/* Backward-shift deletion: pull later members of the probe run into the
 * hole so lookups never need tombstones. */
static void idx_delete_at(hm_table_t *t, uint32_t hole)
{
    int32_t *idx = index_of(t);
    const hm_slot_t *slots = slots_of(t);
    uint32_t mask = t->index_size - 1;
    uint32_t j = hole;

    for (;;) {
        j = (j + 1) & mask;
        int32_t v = idx[j];
        if (v < 0) {
            break;
        }
        uint32_t home = key_hash(&slots[idx_slot(v)].e.key) & mask;
        /* Move v unless its home lies cyclically in (hole, j]. */
        int stays = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            idx_store(idx, hole, v);
            hole = j;
        }
    }
    idx_store(idx, hole, -1);
}

static void gen_begin(hm_table_t *t)
{
    seq_begin(&t->gen);
}

static void gen_end(hm_table_t *t)
{
    seq_end(&t->gen);
}

static void free_push(hm_table_t *t, int32_t slot)
{
    slots_of(t)[slot].next_free = t->free_head;
    t->free_head = slot;
}

static int32_t free_pop(hm_table_t *t)
{
    int32_t slot = t->free_head;
    if (slot >= 0) {
        t->free_head = slots_of(t)[slot].next_free;
        slots_of(t)[slot].next_free = -1;
    }
    return slot;
}

/* Called with the lock held, before a signed entry leaves its slot. */
static void tomb_leave(hm_table_t *t, const hm_entry_t *e)
{
    hm_tomb_t *tb;

    if (t->replay_window <= 0 || !(e->flags & HM_ENTRY_AUTH)) {
        return;
    }
    tb = &tombs_of(t)[t->tomb_next % t->capacity];
    memset(tb, 0, sizeof(*tb));
    tb->key = e->key;
    tb->seq = e->seq;
    tb->seen = e->seen;
    t->tomb_next++;
    if (e->seen > t->tomb_newest) {
        t->tomb_newest = e->seen;
    }
}

/* The newest seq a removed signed entry for key left behind within the
 * window, or 0 if none. A scan, but only when a signed sender is new and
 * some signed entry went away within the window: rare on both counts. */
static uint64_t tomb_seq(const hm_table_t *t, const hm_addr_t *key, int64_t now)
{
    const hm_tomb_t *tombs = tombs_of(t);
    uint32_t n = t->tomb_next < t->capacity ? t->tomb_next : t->capacity;
    int64_t since;
    uint64_t seq = 0;

    if (t->replay_window <= 0 || __builtin_sub_overflow(now, t->replay_window, &since) ||
        t->tomb_newest < since) {
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (tombs[i].seen >= since && tombs[i].seq > seq && hm_addr_equal(&tombs[i].key, key)) {
            seq = tombs[i].seq;
        }
    }
    return seq;
}

static void join_moved(hm_table_t *t)
{
    __atomic_fetch_add(&t->join_gen, 1, __ATOMIC_RELEASE);
}

static void remove_slot(hm_table_t *t, int32_t slot)
{
    hm_slot_t *s = &slots_of(t)[slot];
    int64_t pos = idx_find_pos(t, &s->e.key);

    if (s->e.join.n) {
        join_moved(t);
    }
    tomb_leave(t, &s->e);
    if (pos >= 0) {
        idx_delete_at(t, (uint32_t)pos);
    }
    slot_write(s, NULL, 0);
    free_push(t, slot);
    __atomic_store_n(&t->count, t->count - 1, __ATOMIC_RELAXED);
}

/* Rebuild everything the writer owns from the slots' used flags. Called with
 * the lock held after stealing it from a dead writer. */
static void repair(hm_table_t *t)
{
    hm_slot_t *slots = slots_of(t);
    int32_t *idx = index_of(t);
    uint32_t count = 0;

    if ((t->gen & 1u) == 0) {
        gen_begin(t);
    }
    for (uint32_t i = 0; i < t->index_size; i++) {
        idx_store(idx, i, -1);
    }
    t->free_head = -1;
    for (uint32_t i = t->capacity; i-- > 0;) {
        hm_slot_t *s = &slots[i];
        if (s->seq & 1u) {
            /* Interrupted mid-write: the entry may be torn, so drop it. */
            s->used = 0;
            memset(&s->e, 0, sizeof(s->e));
            __atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
        }
        if (s->used) {
            idx_insert(t, (int32_t)i);
            count++;
        } else {
            free_push(t, (int32_t)i);
        }
    }
    __atomic_store_n(&t->count, count, __ATOMIC_RELAXED);
    if (t->rej_seq & 1u) {
        /* The ring entry being written may be torn; it is only a report. */
        __atomic_store_n(&t->rej_seq, t->rej_seq + 1, __ATOMIC_RELEASE);
    }
    if (t->lim_seq & 1u) {
        __atomic_store_n(&t->lim_seq, t->lim_seq + 1, __ATOMIC_RELEASE);
    }
    gen_end(t);
}

/* ---- lifecycle -------------------------------------------------------- */

hm_table_t *hm_table_create(void *mem, size_t size, unsigned int capacity)
{
    size_t need = hm_table_size(capacity);
    hm_table_t *t = mem;

    if (mem == NULL || need == 0 || size < need || ((uintptr_t)mem & 7u) != 0) {
        return NULL;
    }
    memset(mem, 0, need);
    t->layout = HM_LAYOUT_VERSION;
    t->capacity = capacity;
    t->index_size = index_size_for(capacity);
    t->total_size = need;
    t->free_head = -1;
    int32_t *idx = index_of(t);
    for (uint32_t i = 0; i < t->index_size; i++) {
        idx[i] = -1;
    }
    /* Push in reverse so that inserts fill slot 0 first. */
    for (uint32_t i = capacity; i-- > 0;) {
        free_push(t, (int32_t)i);
    }
    /* Magic last, so an attacher never accepts a half-formatted block. */
    __atomic_store_n(&t->magic, HM_MAGIC, __ATOMIC_RELEASE);
    return t;
}

hm_table_t *hm_table_attach(void *mem, size_t size)
{
    hm_table_t *t = mem;
    size_t need;

    if (mem == NULL || ((uintptr_t)mem & 7u) != 0 || size < header_size()) {
        return NULL;
    }
    if (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != HM_MAGIC ||
        t->layout != HM_LAYOUT_VERSION) {
        return NULL;
    }
    need = hm_table_size(t->capacity);
    if (need == 0 || need > size || t->total_size != need ||
        t->index_size != index_size_for(t->capacity)) {
        return NULL;
    }
    return t;
}

/* ---- white-box access (tests, diagnostics) ---------------------------- */

int32_t *hm_table_lock_word(hm_table_t *t)
{
    return &t->lock;
}

int32_t *hm_table_index_words(hm_table_t *t, uint32_t *n)
{
    *n = t->index_size;
    return index_of(t);
}

/* What hm_table_attach compares: keep the two in step. */
#define HEADER_FIELD(f) #f, offsetof(struct hm_table, f), sizeof(((struct hm_table *)0)->f)
static const hm_table_field_t checked_fields[] = {
    {HEADER_FIELD(magic)},      {HEADER_FIELD(layout)},     {HEADER_FIELD(capacity)},
    {HEADER_FIELD(index_size)}, {HEADER_FIELD(total_size)},
};
#undef HEADER_FIELD

const hm_table_field_t *hm_table_checked_fields(unsigned int *n)
{
    *n = sizeof(checked_fields) / sizeof(checked_fields[0]);
    return checked_fields;
}

unsigned int hm_table_capacity(const hm_table_t *t)
{
    return t->capacity;
}

unsigned int hm_table_count(const hm_table_t *t)
{
    return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

uint32_t hm_table_join_generation(const hm_table_t *t)
{
    return __atomic_load_n(&t->join_gen, __ATOMIC_ACQUIRE);
}

uint32_t hm_table_generation(const hm_table_t *t)
{
    return __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE);
}

void hm_table_counter_add(hm_table_t *t, hm_counter_e c, uint64_t n)
{
    if ((unsigned)c < HM_CTR_COUNT) {
        __atomic_fetch_add(&t->counters[c], n, __ATOMIC_RELAXED);
    }
}

int hm_table_condition(hm_table_t *t, uint32_t cond, int on)
{
    uint32_t before = on ? __atomic_fetch_or(&t->conditions, cond, __ATOMIC_ACQ_REL)
                         : __atomic_fetch_and(&t->conditions, ~cond, __ATOMIC_ACQ_REL);

    return (before & cond) != 0;
}

static void note_ring(hm_table_t *t, hm_reject_t *ring, uint32_t *next, const hm_addr_t *src,
                      uint32_t reason, int64_t now)
{
    hm_reject_t *r;

    /* Rejections come from the receiver and from request threads alike:
     * the writer lock keeps the ring's writers apart, the seqlock its
     * lock-free readers. */
    lock_table(t);
    seq_begin(&t->rej_seq);
    r = &ring[*next % HM_REJECTS];
    key_canon(&r->src, src);
    r->src.port = 0;
    r->reason = reason;
    r->when = now;
    (*next)++;
    seq_end(&t->rej_seq);
    unlock_table(t);
}

void hm_table_note_reject(hm_table_t *t, const hm_addr_t *src, uint32_t reason, int64_t now)
{
    note_ring(t, t->rejects, &t->rej_next, src, reason, now);
}

void hm_table_note_outside(hm_table_t *t, const hm_addr_t *src, uint32_t reason, int64_t now)
{
    note_ring(t, t->outside, &t->out_next, src, reason, now);
}

static unsigned int read_ring(const hm_table_t *t, const hm_reject_t *ring, const uint32_t *nextp,
                              hm_reject_t *out, unsigned int max)
{
    for (unsigned int tries = 1; tries <= HM_READ_MAX_TRIES; tries++) {
        uint32_t s1 = __atomic_load_n(&t->rej_seq, __ATOMIC_ACQUIRE);
        hm_reject_t copy[HM_REJECTS];
        uint32_t next, n, i;

        if (s1 & 1u) {
            read_backoff(tries);
            continue;
        }
        next = __atomic_load_n(nextp, __ATOMIC_RELAXED);
        memcpy(copy, ring, sizeof(copy));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&t->rej_seq, __ATOMIC_RELAXED) != s1) {
            read_backoff(tries);
            continue;
        }
        n = next < HM_REJECTS ? next : HM_REJECTS;
        if (n > max) {
            n = max;
        }
        for (i = 0; i < n; i++) {
            out[i] = copy[(next - 1 - i) % HM_REJECTS];
        }
        return n;
    }
    return 0;
}

unsigned int hm_table_rejects(const hm_table_t *t, hm_reject_t *out, unsigned int max)
{
    return read_ring(t, t->rejects, &t->rej_next, out, max);
}

unsigned int hm_table_rejects_outside(const hm_table_t *t, hm_reject_t *out, unsigned int max)
{
    return read_ring(t, t->outside, &t->out_next, out, max);
}

void hm_table_note_limited(hm_table_t *t, const hm_addr_t *src, int64_t now)
{
    hm_limited_t *l = NULL;
    hm_addr_t k;

    key_canon(&k, src);
    k.port = 0;
    lock_table(t);
    seq_begin(&t->lim_seq);
    for (unsigned int i = 0; i < HM_LIMITED; i++) {
        hm_limited_t *c = &t->limited[i];
        if (c->when != 0 && hm_addr_equal(&c->src, &k)) {
            l = c;
            break;
        }
        if (l == NULL || c->when < l->when) {
            l = c;
        }
    }
    if (l->when == 0 || !hm_addr_equal(&l->src, &k)) {
        memset(l, 0, sizeof(*l));
        l->src = k;
    }
    l->dropped++;
    l->when = now;
    seq_end(&t->lim_seq);
    unlock_table(t);
}

unsigned int hm_table_limited(const hm_table_t *t, hm_limited_t *out, unsigned int max)
{
    for (unsigned int tries = 1; tries <= HM_READ_MAX_TRIES; tries++) {
        uint32_t s1 = __atomic_load_n(&t->lim_seq, __ATOMIC_ACQUIRE);
        hm_limited_t copy[HM_LIMITED];
        unsigned int n = 0;

        if (s1 & 1u) {
            read_backoff(tries);
            continue;
        }
        memcpy(copy, t->limited, sizeof(copy));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&t->lim_seq, __ATOMIC_RELAXED) != s1) {
            read_backoff(tries);
            continue;
        }
        /* Newest first: an insertion sort of at most HM_LIMITED. */
        for (unsigned int i = 0; i < HM_LIMITED; i++) {
            hm_limited_t v = copy[i];
            unsigned int j;
            if (v.when == 0) {
                continue;
            }
            for (j = n; j > 0 && copy[j - 1].when < v.when; j--) {
                copy[j] = copy[j - 1];
            }
            copy[j] = v;
            n++;
        }
        if (n > max) {
            n = max;
        }
        memcpy(out, copy, n * sizeof(*out));
        return n;
    }
    return 0;
}

void hm_table_set_guard(hm_table_t *t, int64_t replay_window, uint32_t max_per_addr)
{
    lock_table(t);
    t->replay_window = replay_window > 0 ? replay_window : 0;
    t->max_per_addr = max_per_addr;
    unlock_table(t);
}

uint64_t hm_table_counter(const hm_table_t *t, hm_counter_e c)
{
    if ((unsigned)c >= HM_CTR_COUNT) {
        return 0;
    }
    return __atomic_load_n(&t->counters[c], __ATOMIC_RELAXED);
}

/* ---- updates ---------------------------------------------------------- */

/* seen < now - age, without overflowing for extreme arguments. */
static int older_than(int64_t seen, int64_t now, int64_t age)
{
    int64_t limit;
    if (__builtin_sub_overflow(now, age, &limit)) {
        return age < 0; /* limit beyond +inf: everything is older */
    }
    return seen < limit;
}

/* Returns 1 if the entry's announcement changed. Only a signed packet may
 * announce balancers: joining one takes a key (HeartbeatJoin). */
static int apply_packet(hm_entry_t *e, const hb_packet_t *pkt, int64_t now, uint32_t flags)
{
    hb_join_set_t join;
    int moved;

    memset(&join, 0, sizeof(join));
    if ((pkt->flags & HB_HAS_JOIN) && (flags & HM_ENTRY_AUTH) && pkt->join.n <= HB_JOIN_MAX) {
        join = pkt->join;
    }
    moved = !hb_join_equal(&e->join, &join);
    e->join = join;
    e->ready = pkt->ready;
    e->busy = pkt->busy;
    e->seen = now;
    e->packets++;
    e->flags = flags;
    if (pkt->flags & HB_HAS_SEQ) {
        e->seq = pkt->seq;
    }
    if (pkt->flags & HB_HAS_INTERVAL) {
        e->interval_ms = pkt->interval_ms;
    }
    e->state = (pkt->flags & HB_HAS_STATE) ? (uint32_t)pkt->state : (uint32_t)HB_STATE_UP;
    return moved;
}

static void new_entry(hm_entry_t *e, const hm_addr_t *key, const hb_packet_t *pkt, int64_t now,
                      uint32_t flags)
{
    memset(e, 0, sizeof(*e));
    e->key = *key;
    hm_addr_to_string(key, e->ip);
    e->first_seen = now;
    apply_packet(e, pkt, now, flags);
}

/* Entries without HM_ENTRY_AUTH whose address is key's (any port). */
static uint32_t unsigned_at(const hm_table_t *t, const hm_addr_t *key)
{
    const hm_slot_t *slots = slots_of(t);
    uint32_t n = 0;

    for (uint32_t i = 0; i < t->capacity; i++) {
        const hm_entry_t *e = &slots[i].e;
        if (slots[i].used && !(e->flags & HM_ENTRY_AUTH) && e->key.family == key->family &&
            memcmp(e->key.addr, key->addr, addr_len(key->family)) == 0) {
            n++;
        }
    }
    return n;
}

/* The slot a new sender may take in a full table, or -1 (see
 * hm_table_update). A linear scan, but only on this path: a table that is
 * full of live senders is misconfigured, and one full of stale ones is
 * rare. */
static int32_t eviction_victim(const hm_table_t *t, int64_t now, int64_t stale_after,
                               uint32_t entry_flags)
{
    const hm_slot_t *slots = slots_of(t);
    int32_t oldest = -1, oldest_unsigned = -1;

    for (uint32_t i = 0; i < t->capacity; i++) {
        if (!slots[i].used) {
            continue;
        }
        if (oldest < 0 || slots[i].e.seen < slots[oldest].e.seen) {
            oldest = (int32_t)i;
        }
        if (!(slots[i].e.flags & HM_ENTRY_AUTH) &&
            (oldest_unsigned < 0 || slots[i].e.seen < slots[oldest_unsigned].e.seen)) {
            oldest_unsigned = (int32_t)i;
        }
    }
    if (entry_flags & HM_ENTRY_AUTH) {
        if (oldest >= 0 && older_than(slots[oldest].e.seen, now, stale_after)) {
            return oldest;
        }
        return oldest_unsigned;
    }
    if (oldest_unsigned >= 0 && older_than(slots[oldest_unsigned].e.seen, now, stale_after)) {
        return oldest_unsigned;
    }
    return -1;
}

hm_update_e hm_table_update(hm_table_t *t, const hm_addr_t *key, const hb_packet_t *pkt,
                            int64_t now, int64_t stale_after, uint32_t entry_flags)
{
    hm_slot_t *slots = slots_of(t);
    hm_addr_t k;
    hm_entry_t e;
    hm_update_e res;
    int64_t pos;
    int32_t slot;

    key_canon(&k, key);
    lock_table(t);

    pos = idx_find_pos(t, &k);
    if (pos >= 0) {
        slot = idx_slot(index_of(t)[pos]);
        e = slots[slot].e;
        /* Once an origin has proved itself with a key, only signed packets
         * may speak for it, each with a newer sequence number; checked
         * under the writer lock so two writers cannot both pass. */
        if ((e.flags & HM_ENTRY_AUTH) && !(entry_flags & HM_ENTRY_AUTH)) {
            unlock_table(t);
            return HM_UPD_DOWNGRADE;
        }
        if ((entry_flags & HM_ENTRY_AUTH) && (e.flags & HM_ENTRY_AUTH) &&
            (pkt->flags & HB_HAS_SEQ) && pkt->seq <= e.seq) {
            unlock_table(t);
            return HM_UPD_REPLAY;
        }
        uint32_t was = e.state;
        int moved = apply_packet(&e, pkt, now, entry_flags);
        slot_write(&slots[slot], &e, 1);
        if (moved) {
            join_moved(t);
        }
        if (e.state != was) {
            hm_table_counter_add(t, HM_CTR_STATE_CHANGES, 1);
        }
        res = HM_UPD_UPDATED;
        goto done;
    }

    /* A new key. A signed sender must be newer than what a removed signed
     * entry of the same key left behind; an unsigned one must leave room
     * for other addresses. */
    if ((entry_flags & HM_ENTRY_AUTH) && (pkt->flags & HB_HAS_SEQ) &&
        pkt->seq <= tomb_seq(t, &k, now)) {
        unlock_table(t);
        return HM_UPD_REPLAY;
    }
    if (!(entry_flags & HM_ENTRY_AUTH) && t->max_per_addr > 0 &&
        unsigned_at(t, &k) >= t->max_per_addr) {
        hm_table_counter_add(t, HM_CTR_PER_ADDRESS, 1);
        unlock_table(t);
        return HM_UPD_PER_ADDRESS;
    }
    new_entry(&e, &k, pkt, now, entry_flags);
    slot = free_pop(t);
    if (slot >= 0) {
        gen_begin(t);
        slot_write(&slots[slot], &e, 1);
        idx_insert(t, slot);
        __atomic_store_n(&t->count, t->count + 1, __ATOMIC_RELAXED);
        gen_end(t);
        if (e.join.n) {
            join_moved(t);
        }
        hm_table_counter_add(t, HM_CTR_INSERTED, 1);
        hm_table_counter_add(t, HM_CTR_STATE_CHANGES, 1);
        res = HM_UPD_INSERTED;
        goto done;
    }

    int32_t victim = eviction_victim(t, now, stale_after, entry_flags);
    if (victim < 0) {
        hm_table_counter_add(t, HM_CTR_FULL, 1);
        unlock_table(t);
        return HM_UPD_FULL;
    }
    /* One generation window covers removal and reuse, so a reader never
     * mistakes the slot's new occupant for the old key. */
    gen_begin(t);
    if (slots[victim].e.join.n || e.join.n) {
        join_moved(t);
    }
    tomb_leave(t, &slots[victim].e);
    int64_t opos = idx_find_pos(t, &slots[victim].e.key);
    if (opos >= 0) {
        idx_delete_at(t, (uint32_t)opos);
    }
    slot_write(&slots[victim], &e, 1);
    idx_insert(t, victim);
    gen_end(t);
    hm_table_counter_add(t, HM_CTR_REPLACED, 1);
    hm_table_counter_add(t, HM_CTR_STATE_CHANGES, 1);
    res = HM_UPD_REPLACED;

done:
    hm_table_counter_add(t, HM_CTR_ACCEPTED, 1);
    unlock_table(t);
    return res;
}

hm_update_e hm_table_put_entry(hm_table_t *t, const hm_entry_t *e, int64_t now)
{
    hb_packet_t pkt;
    int64_t age;

    memset(&pkt, 0, sizeof(pkt));
    pkt.version = 1;
    pkt.ready = e->ready;
    pkt.busy = e->busy;
    pkt.seq = e->seq;
    pkt.interval_ms = e->interval_ms;
    pkt.state = (hb_state_e)e->state;
    pkt.flags = HB_HAS_SEQ | HB_HAS_STATE | (e->interval_ms ? HB_HAS_INTERVAL : 0);
    if (e->join.n) {
        pkt.join = e->join;
        pkt.flags |= HB_HAS_JOIN;
    }
    if (__builtin_sub_overflow(now, e->seen, &age) || age == INT64_MAX) {
        age = INT64_MAX - 1;
    }
    /* Applied as of e->seen, so the copy is exactly as old as the entry. */
    return hm_table_update(t, &e->key, &pkt, e->seen, age + 1, e->flags);
}

unsigned int hm_table_expire(hm_table_t *t, int64_t now, int64_t max_age)
{
    return hm_table_expire_ex(t, now, max_age, NULL);
}

unsigned int hm_table_expire_ex(hm_table_t *t, int64_t now, int64_t max_age, int64_t *oldest)
{
    hm_slot_t *slots = slots_of(t);
    unsigned int n = 0;
    int64_t left = INT64_MAX;

    lock_table(t);
    for (uint32_t i = 0; i < t->capacity; i++) {
        if (!slots[i].used) {
            continue;
        }
        if (older_than(slots[i].e.seen, now, max_age)) {
            /* One window per entry keeps readers from spinning through a
             * whole sweep. */
            gen_begin(t);
            remove_slot(t, (int32_t)i);
            gen_end(t);
            n++;
        } else if (slots[i].e.seen < left) {
            left = slots[i].e.seen;
        }
    }
    if (oldest != NULL) {
        *oldest = left;
    }
    if (n > 0) {
        hm_table_counter_add(t, HM_CTR_EXPIRED, n);
    }
    unlock_table(t);
    return n;
}

/* ---- readers ---------------------------------------------------------- */

int hm_table_get(const hm_table_t *t, unsigned int slot, hm_entry_t *out)
{
    if (slot >= t->capacity) {
        return 0;
    }
    return slot_read(&slots_of(t)[slot], out) == 1;
}

int hm_table_find(const hm_table_t *t, const hm_addr_t *key, hm_entry_t *out)
{
    const int32_t *idx = index_of(t);
    const hm_slot_t *slots = slots_of(t);
    uint32_t mask = t->index_size - 1;
    hm_addr_t k;

    key_canon(&k, key);
    uint32_t hash = key_hash(&k);
    uint32_t home = hash & mask;

    for (unsigned int tries = 1; tries <= HM_READ_MAX_TRIES; tries++) {
        uint32_t g1 = __atomic_load_n(&t->gen, __ATOMIC_ACQUIRE);
        if (g1 & 1u) {
            read_backoff(tries);
            continue;
        }
        int found = -1;
        hm_entry_t e;
        uint32_t pos = home;
        for (uint32_t n = 0; n < t->index_size; n++, pos = (pos + 1) & mask) {
            int32_t v = idx_load(idx, pos);
            if (v < 0) {
                break;
            }
            if (!idx_tag_matches(v, hash)) {
                continue;
            }
            int32_t sn = idx_slot(v);
            /* Range-check: the block is shared with other processes and a
             * reader must not trust it enough to index out of bounds. */
            if ((uint32_t)sn >= t->capacity) {
                break;
            }
            if (slot_read(&slots[sn], &e) == 1 && hm_addr_equal(&e.key, &k)) {
                found = sn;
                break;
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&t->gen, __ATOMIC_RELAXED) != g1) {
            read_backoff(tries);
            continue;
        }
        if (found >= 0 && out != NULL) {
            *out = e;
        }
        return found;
    }
    return -1;
}
